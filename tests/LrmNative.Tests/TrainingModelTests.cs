using System.Diagnostics;
using LrmNative.Backends;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// LRM training end to end on the CPU, on datasets of ray-cast spheres the tests write (<see cref="TrainingSceneData"/>):
/// a tiny model overfits one object's views to ≥ 25 dB PSNR (measured on every full view after training, not on the
/// training patches; the object is symmetric about the up axis, see <see cref="TrainingSceneData"/>), the loss on a handful of objects falls below half its start, a NaN/Inf gradient produced by the
/// model itself stops training naming the step and the tensor, and batches of identical samples give the gradients of
/// one sample (the batch sums of the shared tensors).
/// </summary>
[TestFixture]
public sealed class TrainingModelTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "lrm-train-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_folder, recursive: true);

    private static LrmModel TinyModel(ulong seed)
    {
        var config = ModelConfig.Parse(TrainingSceneData.TinyConfigJson, "tiny training config");
        return LrmModel.Create(config, ModelInitializer.Create(config, seed), trainable: true);
    }

    // PSNR of the model's renders of every view of the dataset's first object, full images, against the ground truth.
    internal static double EvaluatePsnr(CpuBackend backend, LrmModel model, MultiViewDataset dataset, int views, int size)
    {
        var all = MultiViewDataset.Open(dataset.Root, dataset.Options with { ViewsPerSample = views, RenderMinResolution = size, RenderMaxResolution = size, PatchSize = size });
        using var loader = new MultiViewLoader(all, 1, 99, prefetch: false);
        using var batch = loader.Next();
        model.WeightsChanged();
        using var planes = model.ForwardPlanes(backend, batch.SourceImages, batch.SourceCameras);
        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);
        double mse = 0;
        var background = batch.Backgrounds[0];
        for (var v = 0; v < views; v++)
        {
            using var camera = Tensor.Empty([1, 25]);
            backend.Copy(camera, 0, batch.RenderCameras, v * 25L, 25);
            using var render = model.Renderer.Render(backend, channelsLast, camera, size, size, [background, background, background]);
            using var target = Tensor.Empty([1, size, size, 3]);
            backend.Copy(target, 0, batch.TargetRgb, (long)v * size * size * 3, (long)size * size * 3);
            mse += Losses.MeanSquaredError(null, render.Rgb, target) / views;
        }
        return LrmTrainingStep.Psnr(mse);
    }

    [Test]
    public void TinyModelOverfitsOneObjectTo25Db()
    {
        const int views = 8, size = 32;
        var data = Path.Combine(_folder, "data");
        TrainingSceneData.Write(data, objects: 1, views, size, symmetric: true);
        var dataset = MultiViewDataset.Open(data, new DataOptions
        {
            ViewsPerSample = 2,
            SourceImageSize = 28,
            RenderMinResolution = size,
            RenderMaxResolution = size,
            PatchSize = size,
        });
        // One thread: at these sizes OpenMP's fork/join costs more than it saves on a shared 2-core machine.
        using var backend = new CpuBackend(1);
        using var model = TinyModel(seed: 3);
        using var task = new LrmTrainingTask(model, new LrmLossOptions { Deferred = true });
        var before = EvaluatePsnr(backend, model, dataset, views, size);
        const long steps = 800;
        var clock = Stopwatch.StartNew();
        var loop = new TrainingLoop(task, dataset, new TrainingOptions
        {
            Steps = steps,
            Seed = 5,
            WarmupSteps = 20,
            Optimizer = new AdamWOptions { LearningRate = 3e-3, WeightDecay = 0 },
            CheckpointEvery = 0,
            OutputDirectory = Path.Combine(_folder, "run"),
        });
        loop.Run(backend);
        var seconds = clock.Elapsed.TotalSeconds;
        var after = EvaluatePsnr(backend, model, dataset, views, size);
        TestContext.Out.WriteLine($"overfit: PSNR {before:F2} dB -> {after:F2} dB over all {views} views after {steps} steps ({seconds:F1} s, {1000 * seconds / steps:F0} ms/step)");
        Assert.That(after, Is.GreaterThanOrEqualTo(25.0), "PSNR of every full view after overfitting");
    }

    [Test]
    public void TrainingLossOnAHandfulOfObjectsFallsBelowHalfItsStart()
    {
        var data = Path.Combine(_folder, "data");
        TrainingSceneData.Write(data, objects: 4, views: 4, size: 32, seed: 11);
        var dataset = MultiViewDataset.Open(data, new DataOptions
        {
            ViewsPerSample = 2,
            SourceImageSize = 28,
            RenderMinResolution = 24,
            RenderMaxResolution = 32,
            PatchSize = 16,
        });
        using var backend = new CpuBackend(1);
        using var model = TinyModel(seed: 4);
        using var task = new LrmTrainingTask(model, new LrmLossOptions { Deferred = false });
        var output = Path.Combine(_folder, "run");
        const long steps = 300;
        new TrainingLoop(task, dataset, new TrainingOptions
        {
            Steps = steps,
            BatchSize = 2,
            Seed = 2,
            WarmupSteps = 10,
            Optimizer = new AdamWOptions { LearningRate = 5e-3 },
            CheckpointEvery = 0,
            OutputDirectory = output,
        }).Run(backend);
        var losses = TrainingLoop.ReadLog(output).Select(row => row["loss"]).ToArray();
        Assert.That(losses, Has.Length.EqualTo(steps));
        // Means over whole epochs (4 objects = 2 batches) of 10 updates, so every object counts the same at both ends.
        var start = losses.Take(10).Average();
        var end = losses.TakeLast(10).Average();
        TestContext.Out.WriteLine($"handful: mean loss {start:F5} (first 10 updates) -> {end:F5} (last 10), ratio {end / start:F3}");
        Assert.That(end, Is.LessThan(start / 2), "training loss, last 10 updates vs first 10");
    }

    // The real LRM task with one fault injected at a given step: a NaN source pixel (so the model's forward makes the
    // loss NaN) or a NaN in one element of a named gradient after the real backward.
    private sealed class FaultyTask(LrmTrainingTask inner, long faultStep, string? gradientName) : ITrainingTask
    {
        private long _step;

        public IReadOnlyList<TrainableParameter> Parameters => inner.Parameters;

        public IReadOnlyDictionary<string, double> ComputeGradients(IBackend backend, TrainingBatch batch, TrainingRandom random)
        {
            var fault = ++_step == faultStep;
            if (fault && gradientName is null)
            {
                batch.SourceImages.AsSpan<float>()[5] = float.NaN;
            }
            var losses = inner.ComputeGradients(backend, batch, random);
            if (fault && gradientName is not null)
            {
                Parameters.Single(p => p.Name == gradientName).Gradient.AsSpan<float>()[1] = float.NaN;
            }
            return losses;
        }
    }

    [TestCase(null, "loss.loss")]
    [TestCase("transformer.layers.1.cross_attn.k_proj_weight", "transformer.layers.1.cross_attn.k_proj_weight")]
    public void NonFiniteLossOrGradientStopsTrainingNamingStepAndTensor(string? poisonedGradient, string expectedTensor)
    {
        var data = Path.Combine(_folder, "data");
        TrainingSceneData.Write(data, objects: 1, views: 2, size: 24);
        var dataset = MultiViewDataset.Open(data, new DataOptions { ViewsPerSample = 2, SourceImageSize = 28, RenderMinResolution = 24, RenderMaxResolution = 24, PatchSize = 12 });
        using var backend = new CpuBackend(1);
        using var model = TinyModel(seed: 6);
        using var task = new LrmTrainingTask(model);
        float[]? before = null;
        var loop = new TrainingLoop(new FaultyTask(task, 3, poisonedGradient), dataset, new TrainingOptions
        {
            Steps = 5,
            Seed = 1,
            WarmupSteps = 1,
            CheckpointEvery = 0,
            OutputDirectory = Path.Combine(_folder, "run"),
        });
        var error = Assert.Throws<LrmNonFiniteException>(() => loop.Run(backend, progress: p =>
        {
            if (p.Step == 2)
            {
                before = [.. task.Parameters.SelectMany(parameter => parameter.Value.ToFloatArray())];
            }
        }))!;
        Assert.That(error.Step, Is.EqualTo(3));
        Assert.That(error.TensorName, Is.EqualTo(expectedTensor));
        Assert.That(error.Message, Does.Contain("step 3").And.Contain(expectedTensor.Replace("loss.", "", StringComparison.Ordinal)));
        Assert.That(task.Parameters.SelectMany(parameter => parameter.Value.ToFloatArray()), Is.EqualTo(before), "no weight changed at the failing step");
        Assert.That(TrainingLoop.ReadLog(Path.Combine(_folder, "run")).Select(row => (long)row["step"]), Is.EqualTo(new long[] { 1, 2 }));
    }

    [Test]
    public void CompositingBackwardStaysFiniteOnARayWhoseWeightsAllUnderflow()
    {
        // Found by training: a ray whose densities are all ~e^-18 has Σw = 0 in fp32, so its expected depth is 0/0.
        // Without a depth gradient that NaN must not reach the density gradients (it did: 0·NaN), which stopped
        // training with a NaN gradient in every tensor.
        using var backend = new CpuBackend(1);
        const int samples = 6;
        using var depths = Tensor.FromArray([.. Enumerable.Range(0, samples).Select(i => 1.1f + 0.15f * i)], 1, 1, samples);
        using var decoded = Tensor.FromArray([.. Enumerable.Range(0, samples).SelectMany(i => new[] { -17f - 0.1f * i, 0.1f, 0.2f, 0.9f })], 1, samples, 4);
        using var range = Tensor.FromArray([1f, 3f], 1, 2);
        using var rgb = Tensor.Empty([1, 1, 3]);
        using var opacity = Tensor.Empty([1, 1]);
        backend.RenderMarch(rgb, null, opacity, null, depths, decoded, null, null, [1f, 1f, 1f], range);
        Assert.That(opacity.AsSpan<float>()[0], Is.EqualTo(0f), "the weights underflow");
        using var gradRgb = Tensor.FromArray([0.3f, -0.2f, 0.1f], 1, 1, 3);
        using var gradOpacity = Tensor.FromArray([0.5f], 1, 1);
        using var gradDecoded = Tensor.Empty([1, samples, 4]);
        backend.RenderMarchBackward(gradDecoded, null, gradRgb, null, gradOpacity, depths, decoded, null, null, [1f, 1f, 1f], range);
        Assert.That(gradDecoded.ToFloatArray().All(float.IsFinite), Is.True, string.Join(", ", gradDecoded.ToFloatArray()));
        // And the gradient is the (vanishing) true one, not some finite stand-in: every sample's weight is below 1e-8, so
        // ∂rgb/∂colour is too, and ∂opacity/∂raw density = Δ·T·sigmoid(raw − 1) < 0.15·e^-17 ≈ 6e-9 (softplus(raw − 1)
        // activation), times upstream gradients of at most 0.5.
        Assert.That(gradDecoded.ToFloatArray().Select(MathF.Abs).Max(), Is.LessThan(1e-7f), string.Join(", ", gradDecoded.ToFloatArray()));
    }
}
