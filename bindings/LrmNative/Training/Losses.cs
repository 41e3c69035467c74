using System.Globalization;
using LrmNative.Backends;
using LrmNative.Metrics;

namespace LrmNative.Training;

/// <summary>
/// Image and regulariser losses with their input gradients (fp32 tensors, loss values in double).
/// Each takes the tensor the gradient goes to (null: value only) and a <c>weight</c> the gradient is multiplied by;
/// with <c>accumulate</c> the weighted gradient is added (several terms feed one rendered image), otherwise it
/// overwrites. The returned value is unweighted.
/// <list type="bullet">
/// <item>MSE (LRM §3.3): mean over every element of (prediction − target)²; ∂/∂x = 2(x − y)/N.</item>
/// <item>Mask loss: the same mean squared error between rendered opacity and the target alpha. MSE rather than
/// binary cross-entropy: rendered opacity is exactly 0 for rays that miss the box and saturates to 1 inside the
/// object, where BCE's gradient 1/(o(1 − o)) explodes (and needs clamping that biases it), while the MSE gradient
/// is bounded by 2/N; alpha mattes with anti-aliased edges are fractional targets, which MSE treats exactly.
/// (InstantMesh supervises masks the same way.)</item>
/// <item>Total variation of the triplane (OpenLRM, weight 5e-4): for planes (…, H, W),
/// TV = mean Δh² + mean Δw² with Δh = x[…, i+1, j] − x[…, i, j], Δw = x[…, i, j+1] − x[…, i, j].</item>
/// <item>SSIM loss: 1 − SSIM(prediction, target) per image with the metric's SSIM (<see cref="ImageMetrics"/>: 11×11
/// Gaussian window, σ 1.5, data range 1, valid windows), averaged over the batch; the gradient is the metric's
/// <see cref="ImageMetrics.SsimBackward"/>, negated.</item>
/// </list>
/// </summary>
internal static class Losses
{
    /// <summary>OpenLRM's weight of the triplane TV term.</summary>
    public const float DefaultTotalVariationWeight = 5e-4f;

    /// <summary>mean((prediction − target)²); gradient (same shape) = weight·2(prediction − target)/N.</summary>
    public static double MeanSquaredError(Tensor? gradient, Tensor prediction, Tensor target, float weight = 1f, bool accumulate = false)
    {
        CheckPair("MSE", gradient, prediction, target);
        var x = prediction.AsSpan<float>();
        var y = target.AsSpan<float>();
        if (x.Length == 0)
        {
            throw new LrmShapeException($"MSE: prediction {prediction.ShapeText} is empty");
        }
        double sum = 0;
        for (var i = 0; i < x.Length; i++)
        {
            double d = x[i] - y[i];
            sum += d * d;
        }
        if (gradient is not null)
        {
            var g = gradient.AsSpan<float>();
            var factor = (float)(2.0 * weight / x.Length);
            for (var i = 0; i < x.Length; i++)
            {
                var value = factor * (x[i] - y[i]);
                g[i] = accumulate ? g[i] + value : value;
            }
        }
        return sum / x.Length;
    }

    /// <summary>
    /// <see cref="MeanSquaredError(Tensor?, Tensor, Tensor, float, bool)"/> of tensors of <paramref name="backend"/>: computed on
    /// the host (a device's images come down and the gradient goes back up; per view these are patch-sized).
    /// </summary>
    public static double MeanSquaredError(IBackend backend, Tensor? gradient, Tensor prediction, Tensor target, float weight = 1f, bool accumulate = false) =>
        OnHost(backend, gradient, prediction, target, (g, x, y) => MeanSquaredError(g, x, y!, weight, accumulate));

    /// <summary><see cref="TotalVariation(Tensor?, Tensor, float, bool)"/> of tensors of <paramref name="backend"/>, computed on the host.</summary>
    public static double TotalVariation(IBackend backend, Tensor? gradient, Tensor planes, float weight = DefaultTotalVariationWeight, bool accumulate = false) =>
        OnHost(backend, gradient, planes, null, (g, x, _) => TotalVariation(g, x, weight, accumulate));

    /// <summary><see cref="SsimLoss(Tensor?, Tensor, Tensor, float, bool)"/> of tensors of <paramref name="backend"/>, computed on the host.</summary>
    public static double SsimLoss(IBackend backend, Tensor? gradient, Tensor prediction, Tensor target, float weight = 1f, bool accumulate = false) =>
        OnHost(backend, gradient, prediction, target, (g, x, y) => SsimLoss(g, x, y!, weight, accumulate));

    /// <summary>
    /// Runs a host loss on host views of backend tensors and writes the gradient back where it lives (also how the
    /// training step evaluates an <see cref="IPerceptualLoss"/>).
    /// </summary>
    internal static double OnHost(IBackend backend, Tensor? gradient, Tensor first, Tensor? second, Func<Tensor?, Tensor, Tensor?, double> loss)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(first);
        using var x = backend.BorrowHost(first);
        using var y = second is null ? default : backend.BorrowHost(second);
        using var g = gradient is null ? default : backend.BorrowHost(gradient);
        var value = loss(g.Tensor, x.Tensor, y.Tensor);
        if (gradient is not null && !ReferenceEquals(g.Tensor, gradient))
        {
            backend.Upload(gradient, g.Tensor);
        }
        return value;
    }

    /// <summary>Mask loss: <see cref="MeanSquaredError(Tensor?, Tensor, Tensor, float, bool)"/> of rendered opacity against the target alpha (see the class remarks).</summary>
    public static double MaskMeanSquaredError(Tensor? gradient, Tensor opacity, Tensor alpha, float weight = 1f, bool accumulate = false) =>
        MeanSquaredError(gradient, opacity, alpha, weight, accumulate);

    /// <summary>
    /// Total variation of planes (…, H, W) (the triplane (N, 3, C, H, W)): mean Δh² + mean Δw² (OpenLRM's TVLoss:
    /// every plane has the same H, W, so the mean over planes of per-plane means is the overall mean); H, W ≥ 2.
    /// The gradient (same shape) is weight·∂TV/∂planes.
    /// </summary>
    public static double TotalVariation(Tensor? gradient, Tensor planes, float weight = DefaultTotalVariationWeight, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(planes);
        if (planes.Rank < 2 || planes.Size(-1) < 2 || planes.Size(-2) < 2)
        {
            throw new LrmShapeException($"TV: planes must be (…, H, W) with H, W >= 2, got {planes.ShapeText}");
        }
        if (gradient is not null)
        {
            CheckSame("TV", "gradient", gradient, planes);
        }
        var height = (int)planes.Size(-2);
        var width = (int)planes.Size(-1);
        var x = planes.AsSpan<float>();
        var slices = x.Length / (height * width);
        var countH = (double)slices * (height - 1) * width;
        var countW = (double)slices * height * (width - 1);
        double sumH = 0, sumW = 0;
        var g = gradient is null ? Span<float>.Empty : gradient.AsSpan<float>();
        if (gradient is not null && !accumulate)
        {
            g.Clear();
        }
        var factorH = (float)(2.0 * weight / countH);
        var factorW = (float)(2.0 * weight / countW);
        for (var s = 0; s < slices; s++)
        {
            var plane = x.Slice(s * height * width, height * width);
            var planeGradient = gradient is null ? Span<float>.Empty : g.Slice(s * height * width, height * width);
            for (var i = 0; i < height; i++)
            {
                for (var j = 0; j < width; j++)
                {
                    var here = plane[i * width + j];
                    if (i + 1 < height)
                    {
                        var d = plane[(i + 1) * width + j] - here;
                        sumH += (double)d * d;
                        if (!planeGradient.IsEmpty)
                        {
                            planeGradient[(i + 1) * width + j] += factorH * d;
                            planeGradient[i * width + j] -= factorH * d;
                        }
                    }
                    if (j + 1 < width)
                    {
                        var d = plane[i * width + j + 1] - here;
                        sumW += (double)d * d;
                        if (!planeGradient.IsEmpty)
                        {
                            planeGradient[i * width + j + 1] += factorW * d;
                            planeGradient[i * width + j] -= factorW * d;
                        }
                    }
                }
            }
        }
        return sumH / countH + sumW / countW;
    }

    /// <summary>
    /// SSIM loss of images (B, H, W, C), H, W ≥ 11: mean over the B images of 1 − SSIM(prediction_b, target_b)
    /// (<see cref="ImageMetrics.Ssim"/>, data range 1). The gradient (same shape) is −weight·(∂SSIM_b/∂prediction_b)/B.
    /// </summary>
    public static double SsimLoss(Tensor? gradient, Tensor prediction, Tensor target, float weight = 1f, bool accumulate = false)
    {
        CheckPair("SSIM loss", gradient, prediction, target);
        if (prediction.Rank != 4 || prediction.ElementCount == 0)
        {
            throw new LrmShapeException($"SSIM loss: images must be (B, H, W, C) and not empty, got {prediction.ShapeText}");
        }
        int batch = (int)prediction.Size(0), height = (int)prediction.Size(1), width = (int)prediction.Size(2), channels = (int)prediction.Size(3);
        var values = batch <= 256 ? stackalloc double[batch] : new double[batch];
        var g = gradient is null ? Span<float>.Empty : gradient.AsSpan<float>();
        ImageMetrics.SsimBatch(values, g, -(double)weight / batch, accumulate, prediction.AsSpan<float>(), target.AsSpan<float>(), batch, height, width, channels);
        double sum = 0;
        foreach (var value in values)
        {
            sum += 1 - value;
        }
        return sum / batch;
    }

    /// <summary>Throws <see cref="LrmNonFiniteException"/> naming the step and the loss term when <paramref name="value"/> is NaN/±inf.</summary>
    public static double EnsureFinite(double value, string term, long step)
    {
        if (!double.IsFinite(value))
        {
            throw new LrmNonFiniteException(string.Create(CultureInfo.InvariantCulture,
                $"step {step}: the {term} loss is {value}; training stopped (check the data and the learning rate, or resume from the last checkpoint)"),
                step, "loss." + term);
        }
        return value;
    }

    /// <summary>Softening of the occupancy loss's inside term: −log(p + ε) + log(1 + ε), so ∂/∂σ stays below δ/ε where p → 0.</summary>
    public const double OccupancyEpsilon = 0.01;

    /// <summary>
    /// Occupancy loss (docs/derivations/occupancy.md): densities σ ≥ 0 at query points against labels o ∈ [0, 1]
    /// (1 inside the object). With δ = ln 2 / <paramref name="halfDensity"/>, the occupancy p = 1 − exp(−σδ) is the
    /// opacity of a slab of thickness δ and ½ at σ = <paramref name="halfDensity"/> (the mesh threshold). Per point
    /// L = o·(log(1 + ε) − log(p + ε)) + (1 − o)·σδ — binary cross-entropy, whose outside term −log(1 − p) is exactly σδ,
    /// with the inside term softened by ε (<see cref="OccupancyEpsilon"/>) — averaged over the points;
    /// ∂L/∂σ = δ·(1 − o − o·exp(−σδ)/(p + ε))/N, times <paramref name="weight"/>.
    /// </summary>
    public static double Occupancy(Tensor? gradient, Tensor sigma, Tensor labels, float halfDensity, float weight = 1f, bool accumulate = false)
    {
        CheckPair("occupancy", gradient, sigma, labels);
        if (!(halfDensity > 0) || !float.IsFinite(halfDensity))
        {
            throw new LrmInvalidArgumentException($"occupancy: the half-occupancy density must be positive, got {halfDensity}");
        }
        var s = sigma.AsSpan<float>();
        var o = labels.AsSpan<float>();
        if (s.Length == 0)
        {
            throw new LrmShapeException($"occupancy: densities {sigma.ShapeText} are empty");
        }
        var delta = Math.Log(2) / halfDensity;
        var offset = Math.Log(1 + OccupancyEpsilon);
        var g = gradient is null ? Span<float>.Empty : gradient.AsSpan<float>();
        var factor = weight / (double)s.Length;
        double sum = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var x = s[i] * delta;
            var transmitted = Math.Exp(-x);
            var p = 1 - transmitted;
            sum += o[i] * (offset - Math.Log(p + OccupancyEpsilon)) + (1 - o[i]) * x;
            if (!g.IsEmpty)
            {
                var value = (float)(factor * delta * (1 - o[i] - o[i] * transmitted / (p + OccupancyEpsilon)));
                g[i] = accumulate ? g[i] + value : value;
            }
        }
        return sum / s.Length;
    }

    // A loss's prediction and target (and gradient, when asked for) must have one shape.
    private static void CheckPair(string op, Tensor? gradient, Tensor prediction, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        CheckSame(op, "target", target, prediction);
        if (gradient is not null)
        {
            CheckSame(op, "gradient", gradient, prediction);
        }
    }

    private static void CheckSame(string op, string name, Tensor tensor, Tensor reference)
    {
        if (!tensor.Shape.SequenceEqual(reference.Shape))
        {
            throw new LrmShapeException($"{op}: '{name}' is {tensor.ShapeText}, expected {reference.ShapeText}");
        }
    }
}
