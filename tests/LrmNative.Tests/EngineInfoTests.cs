namespace LrmNative.Tests;

/// <summary>What `lrm info` reports comes from the real library.</summary>
[TestFixture]
public sealed class EngineInfoTests
{
    [Test]
    public void ReportsNativeLibraryBuildAndBlas()
    {
        var info = EngineInfo.Query();
        Assert.That(info.NativeVersion, Does.Match(@"^\d+\.\d+\.\d+$"));
        Assert.That(info.NativeLibraryPath, Does.EndWith("liblrm_native.so"));
        Assert.That(File.Exists(info.NativeLibraryPath), Is.True, info.NativeLibraryPath);
        Assert.That(info.Threads, Is.GreaterThan(0));
        Assert.That(info.Blas, Does.Contain("OpenBLAS").IgnoreCase);
        Assert.That(info.NativeBuild, Is.Not.Empty);
    }

    [Test]
    public void CudaProbeNeverThrowsAndIsConsistent()
    {
        var cuda = CudaDriverInfo.Probe();
        if (cuda.Available)
        {
            Assert.That(cuda.Devices, Is.Not.Empty);
        }
        else
        {
            Assert.That(cuda.Devices, Is.Empty);
            Assert.That(cuda.Summary, Does.StartWith("no CUDA driver").Or.Contain("CUDA driver"));
        }
    }
}
