using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The SSIM and LPIPS terms inside <see cref="LrmTrainingStep"/>: each view's image-space gradient (what goes back
/// through the renderer, deferred or kept) is the MSE gradient plus the weighted SSIM/LPIPS gradients of that view's
/// render, the loss terms add up, deferred and kept agree bit for bit, and patches too small for a term are refused.
/// The model is tests/golden/model/tiny-train rendered at its golden cameras at 32×32 (LPIPS needs ≥ 31).
/// </summary>
public sealed class TrainingImageLossStepTests
{
    private const int PatchSize = 32;

    private static string ModelDirectory => Path.Combine(Golden.DataDirectory, "model", "tiny-train");

    private sealed record StepResult(IReadOnlyDictionary<string, double> Losses, Dictionary<string, float[]> Intermediate, Dictionary<string, float[]> Gradients);

    // The golden sample (one source image, two views) with seeded random targets at size×size, in scope's backend.
    private static List<IReadOnlyList<TrainingView>> Views(SafeTensorsFile file, ScratchTensors scope, int size)
    {
        var random = new Random(41);
        var backgrounds = new[] { 1f, 0.5f };
        var views = new List<TrainingView>();
        Tensor Place(Tensor host)
        {
            using (host)
            {
                return scope.Adopt(scope.Backend.ToBackend(host));
            }
        }
        for (var v = 0; v < 2; v++)
        {
            views.Add(new TrainingView(Place(file.ReadTensor($"in.camera.{v}")), size, backgrounds[v],
                Place(GradientCheck.Uniform(random, 0f, 1f, 1, size, size, 3)), Place(GradientCheck.Uniform(random, 0f, 1f, 1, size, size, 1))));
        }
        return [views];
    }

    private static StepResult Step(LrmLossOptions options, int size = PatchSize, int chunkRays = 300, IBackend? device = null)
    {
        using var cpu = new CpuBackend();
        var backend = device ?? cpu;
        using var model = LrmModel.Load(ModelDirectory, trainable: true, backend);
        using var file = SafeTensorsFile.Open(Path.Combine(ModelDirectory, "gradients.safetensors"));
        using var scope = new ScratchTensors(backend);
        using var hostImage = file.ReadTensor("in.image");
        using var hostCamera = file.ReadTensor("in.source_camera");
        var image = scope.Adopt(backend.ToBackend(hostImage));
        var camera = scope.Adopt(backend.ToBackend(hostCamera));
        using var gradients = new GradientSet(LrmWeightNames.Expected(model.Config), model.Placement);
        var intermediate = new Dictionary<string, Tensor>();
        try
        {
            var losses = LrmTrainingStep.ComputeGradients(backend, model, new TrainingRenderer(model.Renderer) { ChunkRays = chunkRays }, gradients,
                image, camera, Views(file, scope, size), options, intermediate);
            return new StepResult(losses, intermediate.ToDictionary(p => p.Key, p => p.Value.ToFloatArray()),
                gradients.Names.ToDictionary(n => n, n => backend.ToFloatArray(gradients[n]), StringComparer.Ordinal));
        }
        finally
        {
            foreach (var tensor in intermediate.Values)
            {
                tensor.Dispose();
            }
        }
    }

    // Each view's render (the model's forward, the training renderer) and target, as the step sees them.
    private static List<(Tensor Rgb, Tensor Target)> Renders(ScratchTensors scope)
    {
        using var model = LrmModel.Load(ModelDirectory);
        using var file = SafeTensorsFile.Open(Path.Combine(ModelDirectory, "gradients.safetensors"));
        var backend = scope.Backend;
        using var planes = model.ForwardPlanes(backend, scope.Adopt(file.ReadTensor("in.image")), scope.Adopt(file.ReadTensor("in.source_camera")));
        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);
        var renderer = new TrainingRenderer(model.Renderer) { ChunkRays = 300 };
        var renders = new List<(Tensor, Tensor)>();
        foreach (var view in Views(file, scope, PatchSize)[0])
        {
            using var patch = renderer.Render(backend, channelsLast, view.Camera, view.Size, view.Background, keepActivations: false);
            var rgb = scope.Empty(patch.Rgb.Shape);
            backend.Copy(rgb, 0, patch.Rgb, 0, rgb.ElementCount);
            renders.Add((rgb, view.TargetRgb));
        }
        return renders;
    }

    private static readonly LrmLossOptions Base = new() { MaskWeight = 0.5f, TotalVariationWeight = 0.05f };

    [TestCase(true)]
    [TestCase(false)]
    public void SsimAddsItsWeightedGradientToTheMseImageGradient(bool deferred)
    {
        const float weight = 0.3f;
        var plain = Step(Base with { Deferred = deferred });
        var withSsim = Step(Base with { Deferred = deferred, SsimWeight = weight });
        using var scope = new ScratchTensors(new CpuBackend());
        var renders = Renders(scope);
        var viewWeight = 1f / renders.Count;
        double ssim = 0;
        for (var v = 0; v < renders.Count; v++)
        {
            var (rgb, target) = renders[v];
            using var expected = Tensor.Empty(rgb.Shape);
            Losses.MeanSquaredError(expected, rgb, target, viewWeight);
            Assert.That(Compare.RelativeError(plain.Intermediate[$"rgb.0.{v}"], expected.AsSpan<float>()), Is.LessThan(1e-5), $"view {v}: MSE only");
            ssim += Losses.SsimLoss(expected, rgb, target, weight * viewWeight, accumulate: true) * viewWeight;
            Assert.That(Compare.RelativeError(withSsim.Intermediate[$"rgb.0.{v}"], expected.AsSpan<float>()), Is.LessThan(1e-5), $"view {v}: MSE + SSIM");
            using var term = Tensor.Empty(rgb.Shape);
            Losses.SsimLoss(term, rgb, target, weight * viewWeight);
            var added = withSsim.Intermediate[$"rgb.0.{v}"].Zip(plain.Intermediate[$"rgb.0.{v}"], (a, b) => a - b).ToArray();
            Assert.That(Compare.RelativeError(added, term.AsSpan<float>()), Is.LessThan(1e-4), $"view {v}: the SSIM term's share");
        }
        Assert.That(plain.Losses.ContainsKey("ssim"), Is.False, "off by default: no term");
        Assert.That(withSsim.Losses["ssim"], Is.EqualTo(ssim).Within(1e-5 * ssim));
        Assert.That(withSsim.Losses["mse"], Is.EqualTo(plain.Losses["mse"]));
        Assert.That(withSsim.Losses["loss"], Is.EqualTo(plain.Losses["loss"] + weight * withSsim.Losses["ssim"]).Within(1e-12));
        Assert.That(withSsim.Gradients["upsampler.weight"], Is.Not.EqualTo(plain.Gradients["upsampler.weight"]), "the term reaches the weights");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LpipsAddsLambdaTimesItsGradientToTheMseImageGradient(bool deferred)
    {
        using var lpips = PerceptualLoss.Open(LpipsTests.WeightsPath)!;
        var plain = Step(Base with { Deferred = deferred });
        var withLpips = Step(Base with { Deferred = deferred, Perceptual = lpips });
        using var scope = new ScratchTensors(new CpuBackend());
        var renders = Renders(scope);
        var viewWeight = 1f / renders.Count;
        double expectedLpips = 0;
        for (var v = 0; v < renders.Count; v++)
        {
            var (rgb, target) = renders[v];
            using var term = Tensor.Empty(rgb.Shape);
            expectedLpips += lpips.Evaluate(term, rgb, target, PerceptualLoss.PaperWeight * viewWeight, accumulate: false) * viewWeight;
            var added = withLpips.Intermediate[$"rgb.0.{v}"].Zip(plain.Intermediate[$"rgb.0.{v}"], (a, b) => a - b).ToArray();
            Assert.That(Compare.RelativeError(added, term.AsSpan<float>()), Is.LessThan(1e-4), $"view {v}: λ·∂LPIPS/∂rgb");
        }
        Assert.That(plain.Losses.ContainsKey("lpips"), Is.False);
        Assert.That(withLpips.Losses["lpips"], Is.EqualTo(expectedLpips).Within(1e-5 * expectedLpips));
        Assert.That(withLpips.Losses["loss"], Is.EqualTo(plain.Losses["loss"] + 2.0 * withLpips.Losses["lpips"]).Within(1e-12));
    }

    // Deferred and kept, and a device backend (the losses run on host copies of its patches, the gradient goes back up),
    // give the CPU's kept result bit for bit.
    [Test]
    public void DeferredKeptAndDeviceAgreeBitForBitWithBothTerms()
    {
        using var lpips = PerceptualLoss.Open(LpipsTests.WeightsPath)!;
        var options = Base with { SsimWeight = 0.2f, Perceptual = lpips, PerceptualWeight = 1.5f };
        var kept = Step(options with { Deferred = false });
        using var device = new SimulatedDeviceBackend();
        foreach (var (what, result) in new[] { ("deferred", Step(options with { Deferred = true })), ("device", Step(options, device: device)) })
        {
            Assert.That(result.Losses, Is.EqualTo(kept.Losses), what);
            foreach (var (name, gradient) in kept.Gradients)
            {
                Assert.That(result.Gradients[name], Is.EqualTo(gradient), $"{what}: {name}");
            }
        }
        Assert.That(device.LiveTensors, Is.Zero, "no device tensor left behind");
    }

    [Test]
    public void PatchesTooSmallForATermAndBadWeightsAreRefused()
    {
        var ssim = Assert.Throws<LrmInvalidArgumentException>(() => Step(Base with { SsimWeight = 1f }, size: 8))!.Message;
        Assert.That(ssim, Does.Contain("SSIM").And.Contain("11×11").And.Contain("8×8"));
        Assert.DoesNotThrow(() => Step(Base, size: 8), "without SSIM any patch size trains");

        using var lpips = PerceptualLoss.Open(LpipsTests.WeightsPath)!;
        var options = Base with { Perceptual = lpips };
        Assert.That(options.MinimumPatchSize, Is.EqualTo(31));
        Assert.That((options with { SsimWeight = 1f, Perceptual = null }).MinimumPatchSize, Is.EqualTo(11));
        Assert.That((options with { PerceptualWeight = 0 }).MinimumPatchSize, Is.EqualTo(1), "weight 0 leaves the network unused");
        var message = Assert.Throws<LrmInvalidArgumentException>(() => options.Validate(30))!.Message;
        Assert.That(message, Does.Contain("lpips-alex").And.Contain("31×31").And.Contain("30×30"));
        Assert.DoesNotThrow(() => options.Validate(31));
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => (Base with { SsimWeight = -1 }).Validate())!.Message, Does.Contain("SSIM loss weight"));
        Assert.Throws<LrmInvalidArgumentException>(() => (Base with { PerceptualWeight = float.NaN }).Validate());
    }
}
