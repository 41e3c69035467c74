using System.CommandLine;
using LrmNative;
using LrmNative.Model;

namespace LrmNative.Cli;

/// <summary>
/// `lrm info`: version, build, native library, threads, BLAS, CUDA driver; with --model DIR, the model's
/// config and parameter count (its weights checked against the config from the file header, not loaded); with
/// --model CONFIG.json, the architecture and parameter count of a config alone (no weights).
/// </summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Print version, build, native library, threads, BLAS and whether a CUDA driver was found; with --model, a model's config and parameter count");
        var model = new Option<string?>("--model")
        {
            Description = "A model to describe: an OpenLRM-style folder (config.json + model.safetensors), an LrmNative model file, or a config .json alone (architecture and parameter count, no weights)",
        };
        var verbose = new Option<bool>("--verbose")
        {
            Description = "Also list the checkpoint tensors the model does not use (e.g. encoder.model.mask_token)",
        };
        command.Options.Add(model);
        command.Options.Add(verbose);
        command.SetAction(parse =>
        {
            var directory = parse.GetValue(model);
            if (directory is not null)
            {
                // Reported here: System.CommandLine's own handler would print a stack trace instead.
                try
                {
                    PrintModel(directory, parse.GetValue(verbose));
                    return 0;
                }
                catch (LrmException error)
                {
                    Console.Error.WriteLine($"lrm: error: {error.Message}");
                    return 1;
                }
            }
            var info = EngineInfo.Query();
            Console.WriteLine($"LrmNative       {info.Version}");
            Console.WriteLine($"native library  {info.NativeLibraryPath} (liblrm_native {info.NativeVersion})");
            Console.WriteLine($"native build    {info.NativeBuild}");
            Console.WriteLine($"runtime         .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription} {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}");
            Console.WriteLine($"OpenMP threads  {info.Threads} (of {Environment.ProcessorCount} logical CPUs)");
            Console.WriteLine($"BLAS            {info.Blas}");
            Console.WriteLine($"CUDA            {info.Cuda.Summary}");
            foreach (var device in info.Cuda.Devices)
            {
                Console.WriteLine($"                {device}");
            }
            return 0;
        });
        return command;
    }

    private static void PrintModel(string directory, bool verbose)
    {
        // A config file alone: the architecture and what its weights would count.
        var configOnly = File.Exists(directory) && Path.GetExtension(directory).Equals(".json", StringComparison.OrdinalIgnoreCase)
            && !directory.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase);
        var (config, ignored) = configOnly ? (ModelConfig.Load(directory), []) : LrmModel.Inspect(directory);
        Console.WriteLine($"{(configOnly ? "config" : "model"),-16}{Path.GetFullPath(directory)}{(configOnly ? " (no weights: the counts are the architecture's)" : "")}");
        Console.WriteLine($"parameters      {config.ParameterCountText} ({config.ParameterCount:N0})");
        Console.WriteLine($"encoder         {config.EncoderModelName}: {config.EncoderDepth} blocks × {config.EncoderFeatDim}, {config.EncoderHeads} heads, {config.EncoderRegisters} registers, {config.EncoderImageSize}² input ({config.PatchGridSize}² patches of {config.EncoderPatchSize})");
        Console.WriteLine($"decoder         {config.TransformerLayers} ModLN blocks × {config.TransformerDim}, {config.TransformerHeads} heads, {config.TriplaneTokens} tokens, camera {config.CameraInputDim} values → embedding {config.CameraEmbedDim}");
        Console.WriteLine($"triplane        3 × {config.TriplaneDim} × {config.TriplaneHighRes}², NeRF MLP {config.NerfLayerCount} × {config.NerfHiddenWidth}, {config.RenderingSamplesPerRay} samples per ray");
        if (!configOnly)
        {
            Console.WriteLine($"unused tensors  {ignored.Count}");
        }
        if (verbose)
        {
            foreach (var name in ignored)
            {
                Console.WriteLine($"                {name}");
            }
        }
        Console.WriteLine("config:");
        Console.WriteLine(config.ToJson());
    }
}
