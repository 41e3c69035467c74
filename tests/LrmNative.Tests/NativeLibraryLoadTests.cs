using System.Text.RegularExpressions;

namespace LrmNative.Tests;

/// <summary>
/// How the engine library refuses to run where it cannot: a liblrm_native.so built for extensions the CPU lacks
/// (LRM_CPU_PRETEND_MISSING stands in for an older CPU), a missing library and a file that is not one. Each is one
/// `lrm: error:` line naming the file and what is wrong, exit code 1 — never a SIGILL or a .NET stack trace. And the
/// thread count the loader gives it where a CPU quota is smaller than the core count.
/// The runs are `lrm` processes, since a process loads the library once.
/// </summary>
public sealed partial class NativeLibraryLoadTests : TemporaryFolderFixture
{
    // The x86-64 psABI's micro-architecture levels (x86-64-v2 adds to the baseline, x86-64-v3 to v2), in the
    // engine's order and names, left out the flags compilers do not emit code for (CMPXCHG16B, LAHF, XSAVE).
    private static readonly string[] LevelV2 = ["sse3", "ssse3", "sse4.1", "sse4.2", "popcnt"];
    private static readonly string[] LevelV3Extra = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt", "movbe"];
    private static readonly string AllNames = string.Join(',', [.. LevelV2, .. LevelV3Extra,
        "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]);

    private static (int? ExitCode, string Output, string Errors) Lrm(IReadOnlyDictionary<string, string> environment, params string[] arguments) =>
        ExternalProcess.Run(Path.Combine(AppContext.BaseDirectory, "lrm"), arguments, environment, TimeSpan.FromMinutes(2));

    private static string BuildTarget() =>
        MarchPattern().Match(EngineInfo.Query().NativeBuild) is { Success: true } match ? match.Groups[1].Value : "";

    private static void AssertOneErrorLine(string errors)
    {
        var lines = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), errors);
        Assert.That(lines[0], Does.StartWith("lrm: error: "));
        Assert.That(errors, Does.Not.Contain("Unhandled exception").And.Not.Contain("   at "));
    }

    [Test]
    public void TheLibraryRunsOnThisMachine()
    {
        // This process got this far, so the check passed; `lrm info` in a fresh process must agree.
        var (exit, output, errors) = Lrm(new Dictionary<string, string>(), "info");
        Assert.That(exit, Is.EqualTo(0), errors);
        Assert.That(output, Does.Contain("native build"));
    }

    [Test]
    public void ALibraryBuiltForExtensionsTheCpuLacksIsRefusedNamingThem()
    {
        var target = BuildTarget();
        if (target != "x86-64-v3")
        {
            Assert.Ignore($"the library here is built for -march={target}, not the default x86-64-v3 this test knows the extensions of");
        }
        // Every name the check knows pretended absent: the message lists exactly what -march=x86-64-v3 compiles for.
        var (exit, _, errors) = Lrm(new Dictionary<string, string> { ["LRM_CPU_PRETEND_MISSING"] = AllNames }, "info");
        Assert.That(exit, Is.EqualTo(1), errors);
        AssertOneErrorLine(errors);
        Assert.That(errors, Does.Contain("liblrm_native.so was built for -march=x86-64-v3"));
        Assert.That(errors, Does.Contain($"lacks {string.Join(", ", [.. LevelV2, .. LevelV3Extra])}."));
        Assert.That(errors, Does.Contain("-DLRM_CPU_ARCH=x86-64"));

        // Only what is compiled for counts: AVX-512 (used only after its own run-time check) and unknown names do not.
        var (partExit, _, partErrors) = Lrm(new Dictionary<string, string> { ["LRM_CPU_PRETEND_MISSING"] = "avx512f,bogus,fma" },
            "reconstruct", Golden.ExampleImagePath, "--model", Golden.TinyModelDirectory, "--out", PathOf("out"));
        Assert.That(partExit, Is.EqualTo(1), partErrors);
        Assert.That(partErrors, Does.Contain("lacks fma."));
        Assert.That(Directory.Exists(PathOf("out")) ? Directory.GetFileSystemEntries(PathOf("out")) : [], Is.Empty, "nothing written");

        var (fineExit, _, fineErrors) = Lrm(new Dictionary<string, string> { ["LRM_CPU_PRETEND_MISSING"] = "avx512f,avx512bw,bogus" }, "info");
        Assert.That(fineExit, Is.EqualTo(0), fineErrors);
    }

    [Test]
    public void AMissingLibraryIsOneErrorNamingThePath()
    {
        var missing = PathOf("no-such-liblrm_native.so");
        var (exit, _, errors) = Lrm(new Dictionary<string, string> { ["LRM_NATIVE_LIBRARY"] = missing }, "info");
        Assert.That(exit, Is.EqualTo(1), errors);
        AssertOneErrorLine(errors);
        Assert.That(errors, Does.Contain($"LRM_NATIVE_LIBRARY={missing} names a library that cannot be loaded"));
        Assert.That(errors, Does.Contain("No such file"));
    }

    [Test]
    public void AFileThatIsNotALibraryIsOneErrorWithTheLoadersReason()
    {
        var bogus = PathOf("liblrm_native.so");
        File.WriteAllText(bogus, "this is not an ELF file\n");
        var (exit, _, errors) = Lrm(new Dictionary<string, string> { ["LRM_NATIVE_LIBRARY"] = bogus }, "info");
        Assert.That(exit, Is.EqualTo(1), errors);
        AssertOneErrorLine(errors);
        Assert.That(errors, Does.Contain(bogus));
        Assert.That(errors, Does.Contain("ELF").IgnoreCase.Or.Contain("too short"), "dlopen's reason");
    }

    [Test]
    public void TheDefaultThreadCountIsCappedByTheProcessorsDotNetSees()
    {
        // DOTNET_PROCESSOR_COUNT stands in for a container's CPU quota, which .NET reads and OpenMP does not.
        var (exit, output, errors) = Lrm(new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "1", ["OMP_NUM_THREADS"] = "" }, "info");
        Assert.That(exit, Is.EqualTo(0), errors);
        Assert.That(output, Does.Contain("OpenMP threads  1 "));
        // An explicit OMP_NUM_THREADS wins.
        (exit, output, errors) = Lrm(new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "1", ["OMP_NUM_THREADS"] = "3" }, "info");
        Assert.That(exit, Is.EqualTo(0), errors);
        Assert.That(output, Does.Contain("OpenMP threads  3 "));
    }

    [GeneratedRegex(@"-march=([^;]*);")]
    private static partial Regex MarchPattern();
}
