using System.Globalization;
using LrmNative.Backends;
using LrmNative.Metrics;
using LrmNative.Model;

namespace LrmNative.Training;

/// <summary>One supervised view of one sample: rendered through <paramref name="Camera"/> at Size×Size over a grey background.</summary>
/// <param name="Camera">(1, 25): 4×4 camera-to-world + 3×3 normalised K (the loader's patch camera).</param>
/// <param name="Size">Side of the rendered (and supervised) image.</param>
/// <param name="Background">Grey level composited behind.</param>
/// <param name="TargetRgb">(1, Size, Size, 3).</param>
/// <param name="TargetAlpha">(1, Size, Size, 1).</param>
internal sealed record TrainingView(Tensor Camera, int Size, float Background, Tensor TargetRgb, Tensor TargetAlpha);

/// <summary>Loss weights and rendering mode of LRM training (docs/training.md, "Losses").</summary>
internal sealed record LrmLossOptions
{
    /// <summary>Weight of the mask loss MSE(opacity, alpha) (0: off, the default).</summary>
    public float MaskWeight { get; init; }

    /// <summary>Weight of the triplane TV term (OpenLRM: 5e-4).</summary>
    public float TotalVariationWeight { get; init; } = Losses.DefaultTotalVariationWeight;

    /// <summary>
    /// Weight of the SSIM loss 1 − SSIM(rgb, target) per view (<see cref="Losses.SsimLoss(Tensor?, Tensor, Tensor, float, bool)"/>;
    /// 0: off, the default). Needs patches of at least 11×11 (the SSIM window).
    /// </summary>
    public float SsimWeight { get; init; }

    /// <summary>
    /// The perceptual (LPIPS) loss, from <see cref="PerceptualLoss.Open"/>; null: off (the default). The options do not
    /// own it: whoever opened it disposes it after training.
    /// </summary>
    public IPerceptualLoss? Perceptual { get; init; }

    /// <summary>Weight λ of <see cref="Perceptual"/> per view (paper §3.3: 2, the default); 0 leaves the network unused.</summary>
    public float PerceptualWeight { get; init; } = PerceptualLoss.PaperWeight;

    /// <summary>
    /// Weight of the occupancy loss on the batch's labelled query points (<see cref="Losses.Occupancy"/>; 0: off, the
    /// default). Not in the paper, which trains on images only: 3D supervision for data with ground-truth meshes.
    /// </summary>
    public float OccupancyWeight { get; init; }

    /// <summary>The density at which the occupancy loss puts the surface (occupancy ½); default 2, the default model's mesh threshold.</summary>
    public float OccupancyHalfDensity { get; init; } = DefaultOccupancyHalfDensity;

    /// <summary>Default of <see cref="OccupancyHalfDensity"/>.</summary>
    public const float DefaultOccupancyHalfDensity = 2f;

    /// <summary>True when the occupancy term is evaluated.</summary>
    public bool UsesOccupancy => OccupancyWeight > 0;

    /// <summary>Deferred back-propagation (ARF): render without activations, re-render in chunks for the backward.</summary>
    public bool Deferred { get; init; } = true;

    /// <summary>True when the SSIM term is evaluated (<see cref="SsimWeight"/> &gt; 0).</summary>
    public bool UsesSsim => SsimWeight > 0;

    /// <summary>True when the perceptual term is evaluated (<see cref="Perceptual"/> set and <see cref="PerceptualWeight"/> &gt; 0).</summary>
    public bool UsesPerceptual => Perceptual is not null && PerceptualWeight > 0;

    /// <summary>Smallest supervised patch side the enabled losses accept: 11 with SSIM, the network's minimum with LPIPS (AlexNet: 31), else 1.</summary>
    public int MinimumPatchSize => Math.Max(UsesSsim ? ImageMetrics.WindowSize : 1, UsesPerceptual ? Perceptual!.MinimumImageSize : 1);

    /// <summary>
    /// Throws <see cref="LrmInvalidArgumentException"/> for a negative or non-finite weight, and, given
    /// <paramref name="patchSize"/>, when the enabled SSIM or LPIPS term cannot evaluate patches of that side.
    /// </summary>
    public void Validate(int? patchSize = null)
    {
        CheckWeight(MaskWeight, "mask");
        CheckWeight(TotalVariationWeight, "TV");
        CheckWeight(SsimWeight, "SSIM");
        CheckWeight(PerceptualWeight, "LPIPS");
        CheckWeight(OccupancyWeight, "occupancy");
        if (!float.IsFinite(OccupancyHalfDensity) || OccupancyHalfDensity <= 0)
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture, $"training: the occupancy loss's half-occupancy density must be finite and > 0, got {OccupancyHalfDensity}"));
        }
        if (patchSize is not int size)
        {
            return;
        }
        if (UsesSsim && size < ImageMetrics.WindowSize)
        {
            throw new LrmInvalidArgumentException(
                $"training: the SSIM loss needs patches of at least {ImageMetrics.WindowSize}×{ImageMetrics.WindowSize} (its Gaussian window), got {size}×{size}; "
                + "supervise larger patches or set the SSIM weight to 0");
        }
        if (UsesPerceptual && size < Perceptual!.MinimumImageSize)
        {
            var minimum = Perceptual.MinimumImageSize;
            throw new LrmInvalidArgumentException(
                $"training: the perceptual loss {Perceptual.Name} needs patches of at least {minimum}×{minimum} (its network's strides and pooling), got {size}×{size}; "
                + "supervise larger patches or train without LPIPS");
        }
    }

    private static void CheckWeight(float weight, string term)
    {
        if (!float.IsFinite(weight) || weight < 0)
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture, $"training: the {term} loss weight must be finite and >= 0, got {weight}"));
        }
    }
}

/// <summary>
/// One LRM training step's gradients (docs/training.md, "One training step"):
/// <c>L = (1/N) Σ_views [MSE(rgb, target) + λ_mask·MSE(opacity, alpha) + λ_SSIM·(1 − SSIM(rgb, target)) + λ_LPIPS·LPIPS(rgb, target)]
/// + λ_TV·TV(planes) + λ_occ·mean_points Occ(σ, o)</c> over the N = B·V views of the batch, each rendered at its own (patch) camera; the image-space
/// terms add their ∂/∂rgb into one gradient per view, which goes back through the renderer (deferred or kept alike);
/// then ∂L/∂planes (renderer + TV) back through the transformer once. Returned terms: <c>loss</c> (total), <c>mse</c>,
/// <c>mask</c>, <c>tv</c>, and when enabled <c>ssim</c> (mean 1 − SSIM) and <c>lpips</c> (all unweighted), and
/// <c>psnr</c> = 10·log10(1/mse) of the renders (capped at 100 dB).
/// </summary>
internal static class LrmTrainingStep
{
    /// <summary>
    /// Sets <paramref name="gradients"/> to ∂L/∂weights (overwriting) for source <paramref name="images"/> (B, 3, S, S),
    /// <paramref name="cameras"/> (B, K) and per-sample <paramref name="views"/>. <paramref name="intermediate"/>, when
    /// given, receives ∂L/∂planes, ∂L/∂tokens, ∂L/∂features, ∂L/∂camera_embedding and each view's image-space gradient
    /// ∂L/∂rgb as <c>rgb.{sample}.{view}</c> (host copies; caller disposes).
    /// </summary>
    public static IReadOnlyDictionary<string, double> ComputeGradients(IBackend backend, LrmModel model, TrainingRenderer renderer, GradientSet gradients,
        Tensor images, Tensor cameras, IReadOnlyList<IReadOnlyList<TrainingView>> views, LrmLossOptions options, IDictionary<string, Tensor>? intermediate = null,
        Tensor? occupancyPoints = null, Tensor? occupancyLabels = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(renderer);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(views);
        ArgumentNullException.ThrowIfNull(options);
        long batch = images.Size(0);
        if (views.Count != batch || views.Any(v => v.Count == 0))
        {
            throw new LrmInvalidArgumentException($"training: {batch} samples need one or more views each, got views for {views.Count}");
        }
        foreach (var size in views.SelectMany(v => v).Select(view => view.Size).Distinct())
        {
            options.Validate(size);
        }
        if (options.UsesOccupancy && (occupancyPoints is null || occupancyLabels is null || occupancyPoints.Rank != 3 || occupancyPoints.Size(0) != batch
            || occupancyPoints.Size(2) != 3 || occupancyLabels.Rank != 2 || occupancyLabels.Size(0) != batch || occupancyLabels.Size(1) != occupancyPoints.Size(1)
            || occupancyPoints.Size(1) < 1))
        {
            throw new LrmShapeException($"training: the occupancy loss needs points ({batch}, N, 3) and labels ({batch}, N) with N >= 1, got {occupancyPoints?.ShapeText ?? "none"} and {occupancyLabels?.ShapeText ?? "none"}");
        }
        gradients.Zero();
        using var activations = model.ForwardTraining(backend, images, cameras);
        var planes = activations.Planes;
        var total = views.Sum(v => v.Count);
        var viewWeight = 1f / total;
        double mse = 0, mask = 0, ssim = 0, lpips = 0, occupancy = 0;
        using var hostLabels = options.UsesOccupancy ? backend.BorrowHost(occupancyLabels!) : default;
        using var scratch = new ScratchTensors(backend);
        var gradPlanes = scratch.Empty(planes.Shape);
        var planeSize = planes.ElementCount / batch;
        var samplePlanes = scratch.Empty([1, .. planes.Shape[1..]]);
        var sampleGrad = scratch.Empty(samplePlanes.Shape);
        // TV first (it overwrites gradPlanes), then each sample's render gradient is added.
        var tv = Losses.TotalVariation(backend, gradPlanes, planes, options.TotalVariationWeight);
        for (long b = 0; b < batch; b++)
        {
            backend.Copy(samplePlanes, 0, planes, b * planeSize, planeSize);
            using var channelsLast = TriplaneNerf.ToChannelsLast(backend, samplePlanes);
            using var channelsLastGrad = backend.Zeros(channelsLast.Shape);
            var rendered = new List<RenderedPatch>();
            try
            {
                // Pass 1: every view (with activations unless deferred), then the image-space losses and gradients.
                foreach (var view in views[(int)b])
                {
                    rendered.Add(renderer.Render(backend, channelsLast, view.Camera, view.Size, view.Background, keepActivations: !options.Deferred));
                }
                for (var v = 0; v < rendered.Count; v++)
                {
                    var view = views[(int)b][v];
                    using var gradRgb = backend.Empty(rendered[v].Rgb.Shape);
                    using var gradOpacity = backend.Empty(rendered[v].Opacity.Shape);
                    mse += Losses.MeanSquaredError(backend, gradRgb, rendered[v].Rgb, view.TargetRgb, viewWeight) * viewWeight;
                    mask += Losses.MeanSquaredError(backend, gradOpacity, rendered[v].Opacity, view.TargetAlpha, options.MaskWeight * viewWeight) * viewWeight;
                    // The optional image-space terms add their weighted ∂/∂rgb to the MSE's: one image gradient per view.
                    if (options.UsesSsim)
                    {
                        ssim += Losses.SsimLoss(backend, gradRgb, rendered[v].Rgb, view.TargetRgb, options.SsimWeight * viewWeight, accumulate: true) * viewWeight;
                    }
                    if (options.UsesPerceptual)
                    {
                        var weight = options.PerceptualWeight * viewWeight;
                        lpips += Losses.OnHost(backend, gradRgb, rendered[v].Rgb, view.TargetRgb,
                            (g, x, y) => options.Perceptual!.Evaluate(g, x, y!, weight, accumulate: true)) * viewWeight;
                    }
                    if (intermediate is not null)
                    {
                        intermediate[string.Create(CultureInfo.InvariantCulture, $"rgb.{b}.{v}")] = backend.ToHost(gradRgb);
                    }
                    // Pass 2: back through compositing, the NeRF and the sampling (re-rendered chunk by chunk when deferred).
                    renderer.Backward(backend, gradients, channelsLastGrad, rendered[v], gradRgb, gradOpacity);
                    rendered[v].Dispose();
                }
            }
            finally
            {
                foreach (var view in rendered)
                {
                    view.Dispose();
                }
            }
            if (options.UsesOccupancy)
            {
                occupancy += OccupancyTerm(backend, renderer.Renderer.Nerf, gradients, channelsLast, channelsLastGrad, occupancyPoints!, hostLabels.Tensor, b, options) / batch;
            }
            TriplaneNerf.FromChannelsLast(backend, sampleGrad, channelsLastGrad);
            GradientOps.AddSlice(backend, gradPlanes, b * planeSize, sampleGrad, 0, planeSize);
        }
        if (intermediate is not null)
        {
            intermediate["planes"] = backend.ToHost(gradPlanes);
        }
        model.Backward(backend, gradients, activations, gradPlanes, intermediate);
        var loss = mse + options.MaskWeight * mask + options.TotalVariationWeight * tv;
        if (options.UsesSsim)
        {
            loss += options.SsimWeight * ssim;
        }
        if (options.UsesPerceptual)
        {
            loss += options.PerceptualWeight * lpips;
        }
        if (options.UsesOccupancy)
        {
            loss += options.OccupancyWeight * occupancy;
        }
        var terms = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["loss"] = loss,
            ["mse"] = mse,
            ["mask"] = mask,
            ["tv"] = tv,
            ["psnr"] = Psnr(mse),
        };
        if (options.UsesSsim)
        {
            terms["ssim"] = ssim;
        }
        if (options.UsesPerceptual)
        {
            terms["lpips"] = lpips;
        }
        if (options.UsesOccupancy)
        {
            terms["occupancy"] = occupancy;
        }
        return terms;
    }

    // Sample b's occupancy loss (unweighted mean over its points; labels on the host): its points through the NeRF (training query), the
    // loss's ∂/∂σ (weighted by λ_occ/B) back through the density activation, the MLP and the sampling into
    // gradPlanes (channels-last) and the MLP's gradients.
    private static double OccupancyTerm(IBackend backend, TriplaneNerf nerf, GradientSet gradients, Tensor planes, Tensor gradPlanes,
        Tensor points, Tensor labels, long b, LrmLossOptions options)
    {
        var n = points.Size(1);
        using var scratch = new ScratchTensors(backend);
        var samplePoints = scratch.Empty(1, n, 3);
        backend.Copy(samplePoints, 0, points, b * n * 3, n * 3);
        var features = scratch.Empty(1, n, 3 * nerf.Channels);
        var raw = scratch.Empty(1, n, 4);
        nerf.QueryRawTraining(backend, features, raw, planes, samplePoints);
        var sigma = scratch.Empty(1, n, 1);
        backend.NerfDecode(sigma, null, raw);
        using var sampleLabels = Tensor.Empty([1, n, 1]);
        labels.AsSpan<float>().Slice((int)(b * n), (int)n).CopyTo(sampleLabels.AsSpan<float>());
        var gradSigma = scratch.Empty(sigma.Shape);
        var value = Losses.OnHost(backend, gradSigma, sigma, null,
            (g, x, _) => Losses.Occupancy(g, x, sampleLabels, options.OccupancyHalfDensity, options.OccupancyWeight / (float)(points.Size(0))));
        var gradRaw = scratch.Empty(raw.Shape);
        backend.NerfDecodeBackward(gradRaw, gradSigma, null, raw);
        nerf.BackwardRaw(backend, gradients, gradPlanes, gradRaw, features, planes, samplePoints);
        return value;
    }

    /// <summary>10·log10(1/mse) for images in [0, 1], capped at 100 dB (mse = 0).</summary>
    public static double Psnr(double mse) => mse <= 1e-10 ? 100.0 : -10.0 * Math.Log10(mse);
}

/// <summary>
/// LRM as an <see cref="ITrainingTask"/>: a trainable <see cref="LrmModel"/>, its gradients, and each batch's views
/// rendered at the loader's patch cameras (P×P, the sample's background) and supervised by the loader's patches.
/// </summary>
internal sealed class LrmTrainingTask : ITrainingTask, IDisposable
{
    private readonly LrmModel _model;
    private readonly GradientSet _gradients;
    private readonly TrainingRenderer _renderer;
    private readonly LrmLossOptions _options;

    /// <summary>
    /// A task training <paramref name="model"/> (loaded trainable) with <paramref name="options"/>; <paramref name="chunkRays"/>
    /// rays per render chunk. The gradients live where the weights do (the model's placement).
    /// </summary>
    public LrmTrainingTask(LrmModel model, LrmLossOptions? options = null, int chunkRays = 4096)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!model.Trainable)
        {
            throw new LrmInvalidArgumentException("training: the model must be loaded trainable (LrmModel.Load(path, trainable: true))");
        }
        if (chunkRays < 1)
        {
            throw new LrmInvalidArgumentException($"training: rays per chunk must be >= 1, got {chunkRays}");
        }
        _model = model;
        _options = options ?? new LrmLossOptions();
        _options.Validate();
        var specs = LrmWeightNames.Expected(model.Config);
        _gradients = new GradientSet(specs, model.Placement);
        _renderer = new TrainingRenderer(model.Renderer) { ChunkRays = chunkRays };
        Parameters = [.. specs.Select(spec => new TrainableParameter(spec.Name, model.Weight(spec.Name), _gradients[spec.Name]))];
    }

    /// <inheritdoc />
    public IReadOnlyList<TrainableParameter> Parameters { get; }

    /// <summary>The training renderer (for its activation-memory accounting).</summary>
    public TrainingRenderer Renderer => _renderer;

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> ComputeGradients(IBackend backend, TrainingBatch batch, TrainingRandom random)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(batch);
        int samples = (int)batch.SourceImages.Size(0), viewCount = (int)batch.TargetRgb.Size(1), patch = (int)batch.TargetRgb.Size(2);
        // The loader decodes on the host; a device backend gets one upload of each batch tensor per step.
        using var images = backend.Borrow(batch.SourceImages);
        using var sourceCameras = backend.Borrow(batch.SourceCameras);
        using var renderCameras = backend.Borrow(batch.RenderCameras);
        using var targetRgb = backend.Borrow(batch.TargetRgb);
        using var targetAlpha = backend.Borrow(batch.TargetAlpha);
        using var scratch = new ScratchTensors(backend);
        var views = new List<IReadOnlyList<TrainingView>>();
        for (var b = 0; b < samples; b++)
        {
            var list = new List<TrainingView>();
            for (var v = 0; v < viewCount; v++)
            {
                var index = (long)b * viewCount + v;
                var camera = scratch.Empty(1, 25);
                backend.Copy(camera, 0, renderCameras.Tensor, index * 25, 25);
                var rgb = scratch.Empty(1, patch, patch, 3);
                backend.Copy(rgb, 0, targetRgb.Tensor, index * patch * patch * 3, (long)patch * patch * 3);
                var alpha = scratch.Empty(1, patch, patch, 1);
                backend.Copy(alpha, 0, targetAlpha.Tensor, index * patch * patch, (long)patch * patch);
                list.Add(new TrainingView(camera, patch, batch.Backgrounds[b], rgb, alpha));
            }
            views.Add(list);
        }
        if (_options.UsesOccupancy && batch.OccupancyPoints is null)
        {
            throw new LrmInvalidArgumentException("training: the occupancy loss is on but the batch has no occupancy points (set DataOptions.OccupancyPoints)");
        }
        using var occupancyPoints = _options.UsesOccupancy ? backend.Borrow(batch.OccupancyPoints!) : default;
        return LrmTrainingStep.ComputeGradients(backend, _model, _renderer, _gradients, images.Tensor, sourceCameras.Tensor, views, _options,
            occupancyPoints: _options.UsesOccupancy ? occupancyPoints.Tensor : null, occupancyLabels: _options.UsesOccupancy ? batch.OccupancyLabels : null);
    }

    /// <summary>Frees the gradients (the model belongs to the caller).</summary>
    public void Dispose() => _gradients.Dispose();
}
