using BenchmarkDotNet.Attributes;
using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Benchmarks;

/// <summary>
/// Image → triplane on the CPU (encoder, camera embedder, ModLN decoder, upsampler) for OpenLRM's
/// small and base architectures at their input resolutions (224², 336²), with pseudo-random weights
/// written to a temporary OpenLRM-style folder and loaded the way users load checkpoints. The PyTorch
/// peer for the same modules and shapes is benchmarks/peers/lrm_forward_torch.py.
/// Each forward takes seconds, so this suite runs fewer iterations than the kernel suites.
/// </summary>
[WarmupCount(1)]
[IterationCount(5)]
[InvocationCount(1)]
public class ModelForwardBenchmarks
{
    private CpuBackend _backend = null!;
    private LrmModel _model = null!;
    private Tensor _image = null!;
    private Tensor _camera = null!;
    private string _directory = null!;

    /// <summary>Presets under configs/ (copied next to the benchmark).</summary>
    [Params("openlrm-small", "openlrm-base")]
    public string Config { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var json = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "configs", Config + ".json"));
        var config = ModelConfig.Parse(json, Config);
        _directory = Directory.CreateTempSubdirectory("lrm-bench-model-").FullName;
        File.WriteAllText(Path.Combine(_directory, LrmModel.ConfigFileName), json);
        var random = new Random(11);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var spec in LrmWeightNames.Expected(config))
            {
                // Small weights keep activations in a realistic range; timing does not depend on the values.
                tensors.Add(new(spec.Name, RandomData.Uniform(random, -0.02f, 0.02f, spec.Shape)));
            }
            SafeTensorsFile.Write(Path.Combine(_directory, LrmModel.WeightsFileName), tensors);
        }
        finally
        {
            foreach (var (_, tensor) in tensors)
            {
                tensor.Dispose();
            }
        }
        _model = LrmModel.Load(_directory);
        var size = config.EncoderImageSize;
        _image = RandomData.Uniform(random, 0f, 1f, 1, 3, size, size);
        _camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
    }

    [Benchmark(Description = "image -> triplane")]
    public void ImageToTriplane()
    {
        using var planes = _model.ForwardPlanes(_backend, _image, _camera);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _camera.Dispose();
        _image.Dispose();
        _model.Dispose();
        _backend.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
