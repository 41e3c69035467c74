using System.CommandLine;
using LrmNative;

namespace LrmNative.Cli;

/// <summary>`lrm info`: version, build, native library, threads, BLAS, CUDA driver.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Print version, build, native library, threads, BLAS and whether a CUDA driver was found");
        command.SetAction(_ =>
        {
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
}
