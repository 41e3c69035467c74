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
        CheckSameLength(x, y);
        if (height < WindowSize || width < WindowSize)
        {
            throw new LrmShapeException($"SSIM: images must be at least {WindowSize}×{WindowSize} (the Gaussian window), got {width}×{height}");
        }
        if (channels < 1 || (long)height * width * channels != x.Length)
        {
            throw new LrmShapeException($"SSIM: {x.Length} values are not a {height}×{width}×{channels} image");
        }
        if (!(dataRange > 0))
        {
            throw new LrmInvalidArgumentException($"SSIM: data range must be positive, got {dataRange}");
        }
        var g = GaussianWindow();
        double c1 = 0.01 * dataRange * 0.01 * dataRange, c2 = 0.03 * dataRange * 0.03 * dataRange;
        int outH = height - WindowSize + 1, outW = width - WindowSize + 1;
        var plane = (long)height * width;
        var windows = (long)outH * outW;
        double total = 0;
        var xc = new double[plane];
        var yc = new double[plane];
        var products = new double[5][];
        var sums = new double[5][];
        for (var k = 0; k < 5; k++)
        {
            products[k] = new double[plane];
            sums[k] = new double[windows];
        }
        var needGradient = !gradient.IsEmpty;
        var coefficients = needGradient ? new[] { new double[windows], new double[windows], new double[windows] } : null;
        var spread = needGradient ? new[] { new double[plane], new double[plane], new double[plane] } : null;
        for (var c = 0; c < channels; c++)
        {
            for (long p = 0; p < plane; p++)
            {
                xc[p] = x[(int)(p * channels + c)];
                yc[p] = y[(int)(p * channels + c)];
                products[0][p] = xc[p];
                products[1][p] = yc[p];
                products[2][p] = xc[p] * xc[p];
                products[3][p] = yc[p] * yc[p];
                products[4][p] = xc[p] * yc[p];
            }
            for (var k = 0; k < 5; k++)
            {
                FilterValid(sums[k], products[k], height, width, g);
            }
            for (long w = 0; w < windows; w++)
            {
                double mx = sums[0][w], my = sums[1][w];
                double vx = sums[2][w] - mx * mx, vy = sums[3][w] - my * my, cxy = sums[4][w] - mx * my;
                double a1 = 2 * mx * my + c1, a2 = 2 * cxy + c2, b1 = mx * mx + my * my + c1, b2 = vx + vy + c2;
                var s = a1 * a2 / (b1 * b2);
                total += s;
                if (coefficients is not null)
                {
                    coefficients[0][w] = 2 * s * (my / a1 - my / a2 - mx / b1 + mx / b2);
                    coefficients[1][w] = 2 * s / a2;
                    coefficients[2][w] = -2 * s / b2;
                }
            }
            if (coefficients is not null && spread is not null)
            {
                for (var k = 0; k < 3; k++)
                {
                    FilterTransposed(spread[k], coefficients[k], height, width, g);
                }
                var scale = 1.0 / (windows * channels);
                for (long p = 0; p < plane; p++)
                {
                    gradient[(int)(p * channels + c)] = (float)((spread[0][p] + yc[p] * spread[1][p] + xc[p] * spread[2][p]) * scale);
                }
            }
        }
        return total / (windows * channels);
    }

    // out[i, j] = Σ_{a,b} g[a] g[b] in[i + a, j + b] for the valid positions (separable: rows, then columns).
    private static void FilterValid(double[] output, double[] input, int height, int width, double[] g)
    {
        int outH = height - WindowSize + 1, outW = width - WindowSize + 1;
        var rows = new double[(long)height * outW];
        for (var i = 0; i < height; i++)
        {
            for (var j = 0; j < outW; j++)
            {
                double sum = 0;
                for (var b = 0; b < WindowSize; b++)
                {
                    sum += g[b] * input[(long)i * width + j + b];
                }
                rows[(long)i * outW + j] = sum;
            }
        }
        for (var i = 0; i < outH; i++)
        {
            for (var j = 0; j < outW; j++)
            {
                double sum = 0;
                for (var a = 0; a < WindowSize; a++)
                {
                    sum += g[a] * rows[(long)(i + a) * outW + j];
                }
                output[(long)i * outW + j] = sum;
            }
        }
    }

    // The adjoint of FilterValid: out[p, q] = Σ_{windows (i, j) covering (p, q)} g[p − i] g[q − j] in[i, j].
    private static void FilterTransposed(double[] output, double[] input, int height, int width, double[] g)
    {
        int outH = height - WindowSize + 1, outW = width - WindowSize + 1;
        var columns = new double[(long)height * outW];
        for (var i = 0; i < outH; i++)
        {
            for (var a = 0; a < WindowSize; a++)
            {
                for (var j = 0; j < outW; j++)
                {
                    columns[(long)(i + a) * outW + j] += g[a] * input[(long)i * outW + j];
                }
            }
        }
        Array.Clear(output);
        for (var p = 0; p < height; p++)
        {
            for (var j = 0; j < outW; j++)
            {
                var value = columns[(long)p * outW + j];
                for (var b = 0; b < WindowSize; b++)
                {
                    output[(long)p * width + j + b] += g[b] * value;
                }
            }
        }
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
