using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Running;
using LrmNative;
using LrmNative.Benchmarks;

[assembly: DisableRuntimeMarshalling]

// Name what is being measured before BenchmarkDotNet prints its own host summary:
// the native build, its thread count and the BLAS both our engine and the raw baseline use
// (the raw GEMM baseline runs OpenBLAS with one thread per core, see GemmBenchmarks).
var info = EngineInfo.Query();
Console.WriteLine($"liblrm_native {info.NativeVersion} ({info.NativeLibraryPath})");
Console.WriteLine($"  build:   {info.NativeBuild}");
Console.WriteLine($"  threads: {info.Threads}");
Console.WriteLine($"  BLAS:    {info.Blas}");
unsafe
{
    Console.WriteLine($"OpenBLAS: kernels for {Marshal.PtrToStringUTF8((nint)OpenBlasMethods.openblas_get_corename())}, " +
        $"{OpenBlasMethods.openblas_get_num_procs()} processors, {OpenBlasMethods.openblas_get_num_threads()} thread(s) as the engine set it");
}

BenchmarkSwitcher.FromAssembly(typeof(RateColumn).Assembly).Run(args, BenchmarkConfig.Create());
