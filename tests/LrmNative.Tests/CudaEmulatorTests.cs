using LrmNative.Backends.Cuda;
using NUnit.Framework;

namespace LrmNative.Tests;

/// <summary>
/// The CPU CUDA emulator's own checks (tests/cuda-emulator/selftest.cpp: shuffles, mma.sync and
/// ldmatrix layouts, cp.async, a missing barrier caught, a divergent barrier reported instead of a
/// hang, out of memory, compile errors), run when the CUDA tests run on it — test.sh's second pass.
/// </summary>
public sealed class CudaEmulatorTests
{
    [Test]
    public void TheEmulatorPassesItsSelfTest()
    {
        var driver = Environment.GetEnvironmentVariable("LRM_CUDA_LIBRARY");
        var selftest = driver is { Length: > 0 } ? Path.Combine(Path.GetDirectoryName(driver)!, "selftest") : null;
        if (selftest is null || !File.Exists(selftest))
        {
            Assert.Ignore("the CUDA tests are not running on the CPU CUDA emulator (tests/cuda-emulator) here");
        }
        var folder = Path.Combine(Path.GetTempPath(), $"lrm-emulator-selftest-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "lrm_prelude.cuh"), KernelSources.Source("lrm_prelude.cuh"));
            var (exitCode, stdout, stderr) = ExternalProcess.Run(selftest, [],
                new Dictionary<string, string> { ["LRM_EMU_SELFTEST_KERNELS"] = folder }, TimeSpan.FromMinutes(2));
            Assert.That(exitCode, Is.Not.Null, "the self-test finishes");
            TestContext.Out.WriteLine(stdout + stderr);
            Assert.That(exitCode, Is.EqualTo(0), $"emulator self-test:\n{stdout}");
            Assert.That(stdout, Does.Contain("\n0 failed"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
