using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace LrmNative.Interop;

/// <summary>
/// OpenBLAS 0.3.21 (Debian 12) does not recognise AMD Zen 4/5 and falls back to its AVX2
/// "Haswell" kernels, half the speed of its AVX-512 "SkylakeX" kernels on those CPUs
/// (benchmarks/results/cpu-baseline.md: 209 vs 422 GFLOP/s for sgemm 1024³ on 2 Zen 5 cores).
/// Before liblrm_native (and with it libopenblas) is loaded, this sets OPENBLAS_CORETYPE=SkylakeX
/// when the CPU is an AMD one with AVX-512 F/BW/DQ/VL and the user has not chosen a core type.
/// LRM_OPENBLAS_CORETYPE_AUTO=0 turns it off; an explicit OPENBLAS_CORETYPE always wins.
/// </summary>
internal static partial class OpenBlasCoreType
{
    /// <summary>The value this process set, or null if it left OpenBLAS alone.</summary>
    public static string? Applied { get; private set; }

    public static void Apply()
    {
        if (Environment.GetEnvironmentVariable("LRM_OPENBLAS_CORETYPE_AUTO") == "0"
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE"))
            || !IsAmdWithAvx512())
        {
            return;
        }
        // OpenBLAS reads the variable with getenv() when it loads, so the C environment must hold it.
        if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 0) == 0)
        {
            Applied = "SkylakeX";
        }
    }

    private static bool IsAmdWithAvx512()
    {
        if (!X86Base.IsSupported || !Avx512F.IsSupported || !Avx512BW.IsSupported || !Avx512DQ.IsSupported || !Avx512F.VL.IsSupported)
        {
            return false;
        }
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(vendor)) == "AuthenticAMD";
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
