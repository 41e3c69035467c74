using System.Globalization;

namespace LrmNative.Metrics;

/// <summary>
/// Image quality metrics on interleaved images (H, W, C) of floats, values in [0, L] (L = data range, 1 for our
/// images). docs/metrics.md is the specification.
/// <list type="bullet">
/// <item>PSNR = 10·log10(L² / MSE) over all values; identical images give +∞.</item>
/// <item>SSIM (Wang et al. 2004) with the standard 11×11 Gaussian window (σ = 1.5, normalised to sum 1),
/// C1 = (0.01 L)², C2 = (0.03 L)², population (biased) variances, computed per channel over every window fully inside
/// the image ("valid", no padding) and averaged over windows and channels — the convention of pytorch_msssim and
/// scikit-image's gaussian_weights=True, use_sample_covariance=False.</item>
/// </list>
/// </summary>
internal static class ImageMetrics
{
    /// <summary>SSIM window side.</summary>
    public const int WindowSize = 11;

    /// <summary>SSIM window standard deviation.</summary>
    public const double WindowSigma = 1.5;

    /// <summary>The normalised 1-D Gaussian; the 2-D window is its outer product.</summary>
    public static double[] GaussianWindow()
    {
        var g = new double[WindowSize];
        var sum = 0.0;
        for (var k = 0; k < WindowSize; k++)
        {
            var x = k - WindowSize / 2;
            g[k] = Math.Exp(-x * x / (2 * WindowSigma * WindowSigma));
            sum += g[k];
        }
        for (var k = 0; k < WindowSize; k++)
        {
            g[k] /= sum;
        }
        return g;
    }

    /// <summary>Mean squared error over all values.</summary>
    public static double MeanSquaredError(ReadOnlySpan<float> prediction, ReadOnlySpan<float> target)
    {
        CheckSameLength(prediction, target);
        double sum = 0;
        for (var i = 0; i < prediction.Length; i++)
        {
            double d = prediction[i] - target[i];
            sum += d * d;
        }
        return sum / prediction.Length;
    }

    /// <summary>PSNR in dB; +∞ when the images are identical.</summary>
    public static double Psnr(ReadOnlySpan<float> prediction, ReadOnlySpan<float> target, double dataRange = 1)
    {
        var mse = MeanSquaredError(prediction, target);
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(dataRange * dataRange / mse);
    }

    /// <summary>A metric value for printing: "inf" for +∞, else fixed decimals.</summary>
    public static string Format(double value, int decimals = 4) =>
        double.IsPositiveInfinity(value) ? "inf" : double.IsNegativeInfinity(value) ? "-inf" : value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>Mean SSIM of two (H, W, C) images.</summary>
    public static double Ssim(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int height, int width, int channels, double dataRange = 1) =>
        SsimCore(x, y, height, width, channels, dataRange, default);

    /// <summary>
    /// Mean SSIM of x against y and its gradient d SSIM / d x (H, W, C), written to <paramref name="gradient"/>
    /// (overwritten). With S_w the SSIM of window w and its sums μx = Σ g x, σx² = Σ g x² − μx², σxy = Σ g x y − μx μy,
    /// A1 = 2μxμy + C1, A2 = 2σxy + C2, B1 = μx² + μy² + C1, B2 = σx² + σy² + C2:
    /// ∂S_w/∂x_k = g_k·(α_w + β_w y_k + γ_w x_k) with α = 2S(μy/A1 − μy/A2 − μx/B1 + μx/B2), β = 2S/A2, γ = −2S/B2, so
    /// the gradient is (g ⋆ α + y·(g ⋆ β) + x·(g ⋆ γ)) / (N·C), ⋆ the transposed ("full") window sum over the N windows.
    /// </summary>
    public static double SsimBackward(Span<float> gradient, ReadOnlySpan<float> x, ReadOnlySpan<float> y, int height, int width, int channels,
        double dataRange = 1)
    {
        if (gradient.Length != x.Length)
        {
            throw new LrmShapeException($"SSIM gradient: needs {x.Length} values like the image, got {gradient.Length}");
        }
        return SsimCore(x, y, height, width, channels, dataRange, gradient);
    }

    private static double SsimCore(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int height, int width, int channels, double dataRange,
        Span<float> gradient)
    {
        Span<double> value = stackalloc double[1];
        SsimBatch(value, gradient, 1, accumulate: false, x, y, 1, height, width, channels, dataRange);
        return value[0];
    }

    /// <summary>
    /// SSIM of each of <paramref name="images"/> (B, H, W, C) images into <paramref name="values"/> (B) and, unless
    /// <paramref name="gradient"/> is empty, gradientScale·∂SSIM_b/∂x_b written (or, with <paramref name="accumulate"/>,
    /// added) to <paramref name="gradient"/> (B, H, W, C). <see cref="SsimKernel"/> computes it (<paramref name="vectorBits"/>: its
    /// vector width for tests, 0 for the machine's widest).
    /// </summary>
    internal static void SsimBatch(Span<double> values, Span<float> gradient, double gradientScale, bool accumulate,
        ReadOnlySpan<float> x, ReadOnlySpan<float> y, int images, int height, int width, int channels, double dataRange = 1, int vectorBits = 0)
    {
        CheckSameLength(x, y);
        if (height < WindowSize || width < WindowSize)
        {
            throw new LrmShapeException($"SSIM: images must be at least {WindowSize}×{WindowSize} (the Gaussian window), got {width}×{height}");
        }
        if (channels < 1 || images < 1 || (long)images * height * width * channels != x.Length)
        {
            throw new LrmShapeException(images == 1
                ? $"SSIM: {x.Length} values are not a {height}×{width}×{channels} image"
                : $"SSIM: {x.Length} values are not {images} images of {height}×{width}×{channels}");
        }
        if (!(dataRange > 0))
        {
            throw new LrmInvalidArgumentException($"SSIM: data range must be positive, got {dataRange}");
        }
        if (values.Length != images || (!gradient.IsEmpty && gradient.Length != x.Length))
        {
            throw new LrmShapeException($"SSIM: needs {images} values and an empty gradient or one of {x.Length} values, got {values.Length} and {gradient.Length}");
        }
        double c1 = 0.01 * dataRange * 0.01 * dataRange, c2 = 0.03 * dataRange * 0.03 * dataRange;
        SsimKernel.Run(values, gradient, gradientScale, accumulate, x, y, images, height, width, channels, c1, c2, vectorBits);
    }

    private static void CheckSameLength(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
        {
            throw new LrmShapeException($"image metric: the images have {a.Length} and {b.Length} values; they must have the same size");
        }
        if (a.Length == 0)
        {
            throw new LrmShapeException("image metric: the images are empty");
        }
    }
}
