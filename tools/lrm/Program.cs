using System.CommandLine;
using LrmNative;

namespace LrmNative.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var root = CreateRoot();
        try
        {
            // Our own handler below prints one clear line for LrmException instead of a stack trace.
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (LrmException error)
        {
            Console.Error.WriteLine($"lrm: error: {error.Message}");
            return 1;
        }
        catch (Exception error) when (EngineUnavailable(error) is { } reason)
        {
            // The engine library is missing, does not load, or was built for a newer CPU (LibraryResolver says which).
            Console.Error.WriteLine($"lrm: error: {reason.Message}");
            return 1;
        }
    }

    private static Exception? EngineUnavailable(Exception error) => error switch
    {
        DllNotFoundException or PlatformNotSupportedException => error,
        TypeInitializationException { InnerException: { } inner } => EngineUnavailable(inner),
        _ => null,
    };

    /// <summary>The whole `lrm` command tree, with <see cref="CliConventions"/> applied.</summary>
    internal static RootCommand CreateRoot()
    {
        var root = new RootCommand("lrm — LrmNative: one photo in, a 3D asset out (Large Reconstruction Model, arXiv 2311.04400)");
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(ReconstructCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(MeshCommand.Create());
        root.Subcommands.Add(DatasetCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(ShowcaseCommand.Create());
        root.Subcommands.Add(BenchCudaCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(CliReference.Create());
        root.Subcommands.Add(ApiReference.Create());
        return CliConventions.Apply(root);
    }
}
