using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace LrmNative.Interop;

/// <summary>
/// OpenBLAS' AVX2 "Haswell" kernels run sgemm at half the speed of its AVX-512 "SkylakeX" ones on AMD Zen 4/5
/// (benchmarks/results/cpu-baseline.md: 209 vs 422 GFLOP/s for sgemm 1024³ on 2 Zen 5 cores). Before liblrm_native
/// (and with it libopenblas) is loaded, this sets OPENBLAS_CORETYPE=SkylakeX when the CPU is an AMD one with AVX-512
/// F/BW/DQ/VL and no core type is chosen, so OpenBLAS versions that map these CPUs to Haswell do not. (Debian 12's 0.3.21
/// picks "Cooperlake", whose sgemm kernels are SkylakeX's, on a Zen 5 by itself.) LRM_OPENBLAS_CORETYPE_AUTO=0 turns it
/// off. An OPENBLAS_CORETYPE from the environment always wins; when it is an AVX2 (or older) core type on such a CPU,
/// <see cref="HeldBack"/> says what that costs (the image of this project's build machines sets Haswell).
/// </summary>
internal static partial class OpenBlasCoreType
{
    /// <summary>The value this process set, or null if it left OpenBLAS alone.</summary>
    public static string? Applied { get; private set; }

    /// <summary>
    /// Set when OPENBLAS_CORETYPE came from the environment and holds OpenBLAS to AVX2 (or older) kernels on an AMD CPU
    /// with AVX-512: the explicit choice is kept, and this says what it costs and how to change it.
    /// </summary>
    public static string? HeldBack { get; private set; }

    /// <summary>OpenBLAS core types whose sgemm kernels use AVX-512.</summary>
    private static readonly string[] Avx512CoreTypes = ["SkylakeX", "CooperLake", "SapphireRapids"];

    public static void Apply()
    {
        var given = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE");
        if (!string.IsNullOrEmpty(given))
        {
            if (!Avx512CoreTypes.Contains(given, StringComparer.OrdinalIgnoreCase) && IsAmdWithAvx512())
            {
                HeldBack = $"OPENBLAS_CORETYPE={given} from the environment keeps OpenBLAS off its AVX-512 kernels on this CPU, "
                    + "which has them; SkylakeX's are about 2x faster for GEMM (unset OPENBLAS_CORETYPE and the engine picks them)";
            }
            return;
        }
        if (Environment.GetEnvironmentVariable("LRM_OPENBLAS_CORETYPE_AUTO") == "0" || !IsAmdWithAvx512())
        {
            return;
        }
        // OpenBLAS reads the variable with getenv() when it loads, so the C environment must hold it. Set but empty
        // counts as unset (OpenBLAS detects the CPU then), so it is overwritten.
        if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) == 0)
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
