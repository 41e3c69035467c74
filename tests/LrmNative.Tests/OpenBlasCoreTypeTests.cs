using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace LrmNative.Tests;

/// <summary>
/// The OpenBLAS core type on AMD CPUs with AVX-512, which Debian's OpenBLAS 0.3.21 does not recognise: unset, the engine
/// picks SkylakeX's AVX-512 kernels (and OpenBLAS really uses them); given in the environment, the choice is kept, and
/// when it holds OpenBLAS to AVX2 kernels `lrm info` says so and how to change it. Seen through `lrm info` processes,
/// since OpenBLAS reads the variable once, when it loads.
/// </summary>
public sealed class OpenBlasCoreTypeTests
{
    private static string BlasLine(string coreType)
    {
        var (exit, output, errors) = ExternalProcess.Run(Path.Combine(AppContext.BaseDirectory, "lrm"), ["info"],
            new Dictionary<string, string> { ["OPENBLAS_CORETYPE"] = coreType, ["LRM_OPENBLAS_CORETYPE_AUTO"] = "" }, TimeSpan.FromMinutes(2));
        Assert.That(exit, Is.EqualTo(0), errors);
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("BLAS", StringComparison.Ordinal));
        Assert.That(line, Is.Not.Null, output);
        return line!;
    }

    // Independent of the engine's own check: the CPUID vendor string and .NET's view of the AVX-512 subsets.
    private static bool AmdWithAvx512()
    {
        if (!X86Base.IsSupported || !Avx512F.IsSupported || !Avx512BW.IsSupported || !Avx512DQ.IsSupported || !Avx512F.VL.IsSupported)
        {
            return false;
        }
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes<int>([ebx, edx, ecx])) == "AuthenticAMD";
    }

    [Test]
    public void OnAnAmdAvx512CpuTheEngineChoosesSkylakeXOrSaysWhatAGivenCoreTypeCosts()
    {
        if (!AmdWithAvx512())
        {
            Assert.Ignore("about AMD CPUs with AVX-512 (Zen 4/5); this CPU is not one");
        }
        var chosen = BlasLine("");
        Assert.That(chosen, Does.Contain(" SkylakeX ").And.Contain("set automatically"), "OpenBLAS itself reports the AVX-512 kernels");
        Assert.That(chosen, Does.Not.Contain("note:"));

        var held = BlasLine("Haswell");
        Assert.That(held, Does.Contain(" Haswell ").And.Not.Contain("set automatically"), "an explicit core type wins");
        Assert.That(held, Does.Contain("note: OPENBLAS_CORETYPE=Haswell from the environment keeps OpenBLAS off its AVX-512 kernels")
            .And.Contain("unset OPENBLAS_CORETYPE"));

        var given = BlasLine("skylakex");
        Assert.That(given, Does.Not.Contain("note:").And.Not.Contain("set automatically"), "an AVX-512 core type is fine, in any case");
    }

    [Test]
    public void ElsewhereAGivenCoreTypeIsLeftAloneWithoutANote()
    {
        if (AmdWithAvx512())
        {
            Assert.Ignore("about CPUs other than AMD with AVX-512; this CPU is one");
        }
        Assert.That(BlasLine("Haswell"), Does.Not.Contain("note:").And.Not.Contain("set automatically"));
    }
}
