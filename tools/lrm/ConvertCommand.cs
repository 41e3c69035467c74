using System.CommandLine;
using LrmNative.Model;

namespace LrmNative.Cli;

/// <summary>`lrm convert`: an OpenLRM folder (or a model file) → LrmNative's single-file format.</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The source: an OpenLRM-style folder (config.json + model.safetensors) or an LrmNative model file", Required = true };
        var output = new Option<string>("--out") { Description = "The LrmNative model file to write (one safetensors file, config in its metadata)", Required = true };
        var command = new Command("convert", "Convert a model into LrmNative's single-file format (the tensors the model uses + its config)") { model, output };
        command.SetAction(result =>
        {
            var source = result.GetValue(model)!;
            var destination = result.GetValue(output)!;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            LrmModel.SaveSingleFile(source, destination);
            var (config, _) = LrmModel.Inspect(destination);
            Console.Error.WriteLine($"lrm: wrote {destination}: {config.ParameterCountText} parameters ({new FileInfo(destination).Length / (1024.0 * 1024):F1} MiB) in {clock.Elapsed.TotalSeconds:F2} s");
            return 0;
        });
        return command;
    }
}
