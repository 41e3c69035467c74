using LrmNative.Backends.Cuda;

namespace LrmNative.Tests;

/// <summary>
/// Every kernel source the assembly ships compiles to PTX with clang's CUDA device-only mode,
/// which needs no CUDA toolkit and no GPU (kernels/lrm_prelude.cuh stands in for the CUDA
/// headers), so a syntax or type error in a kernel fails CI instead of waiting for a GPU
/// session. Warnings are errors. The PTX is only checked, never run; NVRTC compiles the real
/// modules on the device (CudaBackendTests.EveryKernelCompilesWithNvrtc).
/// </summary>
[TestFixture]
[Category("Cuda")]
public sealed class CudaCompileTests
{
    private string _directory = null!;
    private string _clang = null!;

    public static IEnumerable<TestCaseData> Sources() =>
        KernelSources.Files.Keys.Where(name => name.EndsWith(".cu", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            .Select(name => new TestCaseData(name).SetArgDisplayNames(name));

    [OneTimeSetUp]
    public void WriteSources()
    {
        _clang = FindClang() ?? "";
        _directory = Path.Combine(Path.GetTempPath(), $"lrm-kernels-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_directory);
        foreach (var (name, text) in KernelSources.Files)
        {
            File.WriteAllText(Path.Combine(_directory, name), text);
        }
    }

    [OneTimeTearDown]
    public void RemoveSources() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void AllKernelSourcesAreEmbedded()
    {
        // The headers the kernels and the CPU engine share, and one .cu per op family.
        Assert.That(KernelSources.Files.Keys, Is.SupersetOf(new[]
        {
            "lrm_prelude.cuh", "lrm_common.cuh", "marching_cubes.cuh", "render.cuh", "attention.cu", "layernorm.cu", "gemm.cu",
            "triplane.cu", "marching_cubes.cu", "render.cu", "resize.cu", "conv.cu", "elementwise.cu", "softmax.cu", "scan.cu", "optimizer.cu",
        }));
        foreach (var (name, text) in KernelSources.Files.Where(pair => pair.Key.EndsWith(".cu", StringComparison.Ordinal)))
        {
            var firstInclude = text.Split('\n').First(line => line.StartsWith("#include", StringComparison.Ordinal));
            Assert.That(firstInclude, Does.Contain("lrm_prelude.cuh"), $"{name} must include the prelude first");
        }
    }

    [TestCaseSource(nameof(Sources))]
    public void CompilesToPtxWithClang(string name)
    {
        if (_clang.Length == 0)
        {
            Assert.Ignore("clang-14 is not installed (tools/setup.sh installs it); set LRM_CLANG to a clang with CUDA support");
        }
        var ptx = Path.Combine(_directory, Path.ChangeExtension(name, ".ptx"));
        var arguments = new[]
        {
            "-x", "cuda", "--cuda-device-only", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
            // Without a toolkit clang assumes no PTX ISA version; the shuffles and mma need 7.x.
            "-Xclang", "-target-feature", "-Xclang", "+ptx72",
            "-std=c++17", "-O1", "-Wall", "-Werror", "-I", _directory, "-S", "-o", ptx, Path.Combine(_directory, name),
        };
        var (exitCode, stdout, stderr) = ExternalProcess.Run(_clang, arguments);
        var output = stdout + stderr;
        Assert.That(exitCode, Is.Zero, $"{_clang} {string.Join(' ', arguments)}\n{output}");
        var text = File.ReadAllText(ptx);
        var declared = KernelSources.Source(name).Split("extern \"C\" __global__", StringSplitOptions.None).Length - 1;
        Assert.That(text.Split(".entry ").Length - 1, Is.EqualTo(declared), $"{name}: every extern \"C\" __global__ kernel is a PTX entry");
    }

    private static string? FindClang()
    {
        if (Environment.GetEnvironmentVariable("LRM_CLANG") is { Length: > 0 } configured)
        {
            return configured;
        }
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in new[] { "clang-14", "clang-15", "clang-16", "clang-17", "clang-18", "clang-19" })
            {
                var path = Path.Combine(directory, name);
                if (File.Exists(path))
                {
                    return path;
                }
            }
        }
        return null;
    }
}
