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
            Assert.That(cuda.Summary, Does.StartWith("no CUDA driver"));
        }
    }

    [Test]
    public void InfoDescribesAConfigFileWithoutWeights()
    {
        // `lrm info --model CONFIG.json`: the architecture and the parameter count its weights would have.
        var path = Path.Combine(AppContext.BaseDirectory, "configs", "lrm-base-paper.json");
        var config = LrmNative.Model.ModelConfig.Load(path);
        var (code, output, errors) = ExternalProcess.Run(Path.Combine(AppContext.BaseDirectory, "lrm"), ["info", "--model", path]);
        Assert.That(code, Is.EqualTo(0), errors);
        Assert.That(output, Does.Contain("no weights"));
        Assert.That(output, Does.Contain($"({config.ParameterCount.ToString("N0", System.Globalization.CultureInfo.CurrentCulture)})"));
        Assert.That(output, Does.Contain("16 ModLN blocks × 1024"));
        Assert.That(output, Does.Not.Contain("unused tensors"));
    }
}

/// <summary>A broken CUDA override is reported, not thrown (lrm info must never crash).</summary>
[TestFixture]
[NonParallelizable]
public sealed class CudaOverrideTests
{
    [Test]
    public void UnloadableOverrideIsReportedWithTheVariableName()
    {
        var previous = Environment.GetEnvironmentVariable("LRM_CUDA_LIBRARY");
        var bogus = Path.Combine(Path.GetTempPath(), $"not-a-library-{Guid.NewGuid():N}.so");
        File.WriteAllText(bogus, "this is not an ELF file");
        try
        {
            Environment.SetEnvironmentVariable("LRM_CUDA_LIBRARY", bogus);
            var cuda = CudaDriverInfo.Probe();
            Assert.That(cuda.Available, Is.False);
            Assert.That(cuda.Summary, Does.StartWith("no CUDA driver").And.Contain("LRM_CUDA_LIBRARY"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("LRM_CUDA_LIBRARY", previous);
            File.Delete(bogus);
        }
    }
}
