using LrmNative.Data;
using LrmNative.Metrics;

namespace LrmNative.Tests;

/// <summary>
/// The SIMD SSIM kernel (<see cref="SsimKernel"/>, behind <see cref="ImageMetrics.Ssim"/>, <see cref="ImageMetrics.SsimBackward"/>
/// and the SSIM loss) against a plain double-precision reference that evaluates every 11×11 window directly (no separable
/// passes, no padding tricks) and scatters the gradient window by window, at every vector width, over odd sizes that leave
/// each lane remainder, one to four channels and batches, with guard values around the buffers; plus accumulation and
/// run-to-run, batch and thread independence (bitwise).
/// </summary>
public sealed class SsimKernelTests
{
    private static readonly int[] VectorWidths = [128, 256, 512];

    // (height, width): 11 (a single window column/row), widths 11…33 cover every remainder of 2, 4 and 8 lanes for both the
    // padded width and the valid width, and 40×44×3 (×3 images) crosses the threshold where planes run in parallel.
    private static readonly (int Height, int Width)[] Sizes =
        [(11, 11), (11, 12), (12, 13), (13, 14), (14, 15), (11, 16), (15, 17), (12, 18), (16, 19), (11, 20), (19, 21), (23, 22), (11, 25), (27, 14), (17, 33), (40, 44)];

    public static IEnumerable<TestCaseData> Cases() =>
        from bits in VectorWidths
        from size in Sizes
        from channels in new[] { 1, 3 }
        select new TestCaseData(bits, size.Height, size.Width, channels, size.Width % 3 + 1).SetName($"{{m}}({bits} bits, {size.Height}×{size.Width}×{channels})");

    [TestCaseSource(nameof(Cases))]
    public void ValueAndGradientEqualTheDirectWindowReference(int bits, int height, int width, int channels, int images)
    {
        var random = new DeterministicRandom((ulong)(height * 1000 + width * 10 + channels));
        var length = images * height * width * channels;
        const int guard = 37;
        // The images sit inside larger buffers: NaN before and after must never reach a result, and the gradient's guard
        // values must stay untouched.
        var x = Enumerable.Repeat(float.NaN, length + 2 * guard).ToArray();
        var y = Enumerable.Repeat(float.NaN, length + 2 * guard).ToArray();
        for (var i = 0; i < length; i++)
        {
            y[guard + i] = (float)random.NextDouble();
            x[guard + i] = Math.Clamp(y[guard + i] + (float)(0.3 * random.NextGaussian()), 0f, 1f);
        }
        var gradient = Enumerable.Repeat(-7f, length + 2 * guard).ToArray();
        var values = new double[images];
        const double scale = -0.75;
        ImageMetrics.SsimBatch(values, gradient.AsSpan(guard, length), scale, accumulate: false, x.AsSpan(guard, length), y.AsSpan(guard, length),
            images, height, width, channels, 1, bits);

        var imageLength = height * width * channels;
        for (var b = 0; b < images; b++)
        {
            var (expected, expectedGradient) = Reference(x.AsSpan(guard + b * imageLength, imageLength), y.AsSpan(guard + b * imageLength, imageLength),
                height, width, channels, 1);
            Assert.That(values[b], Is.EqualTo(expected).Within(1e-13), $"SSIM of image {b}");
            var largest = expectedGradient.Max(Math.Abs);
            for (var i = 0; i < imageLength; i++)
            {
                var want = scale * expectedGradient[i];
                Assert.That(gradient[guard + b * imageLength + i], Is.EqualTo(want).Within(1e-6 * Math.Abs(want) + 1e-9 * largest), $"image {b}, d SSIM / d x[{i}]");
            }
        }
        Assert.That(gradient.Take(guard).Concat(gradient.Skip(guard + length)), Is.All.EqualTo(-7f), "guard values around the gradient");
    }

    [TestCase(128)]
    [TestCase(256)]
    [TestCase(512)]
    public void AccumulateAddsTheScaledGradient(int bits)
    {
        const int images = 2, height = 21, width = 19, channels = 3;
        var (x, y) = Pair(5, images * height * width * channels);
        var overwritten = new float[x.Length];
        var values = new double[images];
        ImageMetrics.SsimBatch(values, overwritten, 2.5, accumulate: false, x, y, images, height, width, channels, 1, bits);
        var start = Enumerable.Range(0, x.Length).Select(i => (float)Math.Sin(i)).ToArray();
        var accumulated = start.ToArray();
        var again = new double[images];
        ImageMetrics.SsimBatch(again, accumulated, 2.5, accumulate: true, x, y, images, height, width, channels, 1, bits);
        Assert.That(again, Is.EqualTo(values));
        for (var i = 0; i < x.Length; i++)
        {
            Assert.That(accumulated[i], Is.EqualTo(start[i] + overwritten[i]).Within(1e-6), $"element {i}");
        }
        // Forward only: the same values, the gradient buffer not needed.
        var forward = new double[images];
        ImageMetrics.SsimBatch(forward, Span<float>.Empty, 1, accumulate: false, x, y, images, height, width, channels, 1, bits);
        Assert.That(forward, Is.EqualTo(values));
    }

    // Each (image, channel) plane is computed alone in a fixed order, so neither the run, the batch it sits in nor the thread
    // that ran it changes a bit: a batch of four 64×64×3 images (parallel planes) equals four single-image calls and itself.
    [Test]
    public void ResultsAreBitwiseIndependentOfRunBatchAndThreads()
    {
        const int images = 4, height = 64, width = 64, channels = 3;
        var imageLength = height * width * channels;
        var (x, y) = Pair(9, images * imageLength);
        var first = new float[x.Length];
        var firstValues = new double[images];
        ImageMetrics.SsimBatch(firstValues, first, 1, accumulate: false, x, y, images, height, width, channels);
        for (var run = 0; run < 3; run++)
        {
            var again = new float[x.Length];
            var againValues = new double[images];
            ImageMetrics.SsimBatch(againValues, again, 1, accumulate: false, x, y, images, height, width, channels);
            Assert.That(againValues, Is.EqualTo(firstValues), $"run {run}");
            Assert.That(again, Is.EqualTo(first), $"run {run}");
        }
        for (var b = 0; b < images; b++)
        {
            var single = new float[imageLength];
            var value = ImageMetrics.SsimBackward(single, x.AsSpan(b * imageLength, imageLength), y.AsSpan(b * imageLength, imageLength), height, width, channels);
            Assert.That(value, Is.EqualTo(firstValues[b]), $"image {b}");
            Assert.That(single, Is.EqualTo(first.AsSpan(b * imageLength, imageLength).ToArray()), $"image {b}");
        }
    }

    [Test]
    public void DataRangeScalesTheConstants()
    {
        const int height = 16, width = 23, channels = 2;
        var (x, y) = Pair(2, height * width * channels);
        var x255 = x.Select(v => v * 255).ToArray();
        var y255 = y.Select(v => v * 255).ToArray();
        var (expected, _) = Reference(x255, y255, height, width, channels, 255);
        Assert.That(ImageMetrics.Ssim(x255, y255, height, width, channels, 255), Is.EqualTo(expected).Within(1e-12));
        Assert.That(ImageMetrics.Ssim(x255, y255, height, width, channels, 255), Is.EqualTo(ImageMetrics.Ssim(x, y, height, width, channels)).Within(1e-6));
    }

    private static (float[] X, float[] Y) Pair(ulong seed, int length)
    {
        var random = new DeterministicRandom(seed);
        var y = new float[length];
        var x = new float[length];
        for (var i = 0; i < length; i++)
        {
            y[i] = (float)random.NextDouble();
            x[i] = Math.Clamp(y[i] + (float)(0.2 * random.NextGaussian()), 0f, 1f);
        }
        return (x, y);
    }

    // Every valid window evaluated on its own from the 2-D window g[a]·g[b]; the gradient scattered window by window:
    // ∂S_w/∂x_k = g_k·(α_w + β_w y_k + γ_w x_k) (docs/metrics.md), averaged over windows and channels.
    private static (double Value, double[] Gradient) Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> y, int height, int width, int channels, double range)
    {
        var g = ImageMetrics.GaussianWindow();
        const int n = ImageMetrics.WindowSize;
        double c1 = 0.01 * range * 0.01 * range, c2 = 0.03 * range * 0.03 * range;
        int outH = height - n + 1, outW = width - n + 1;
        var gradient = new double[x.Length];
        double total = 0;
        var count = (double)outH * outW * channels;
        for (var c = 0; c < channels; c++)
        {
            for (var i = 0; i < outH; i++)
            {
                for (var j = 0; j < outW; j++)
                {
                    double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
                    for (var a = 0; a < n; a++)
                    {
                        for (var b = 0; b < n; b++)
                        {
                            var k = ((i + a) * width + j + b) * channels + c;
                            var weight = g[a] * g[b];
                            double xv = x[k], yv = y[k];
                            mx += weight * xv;
                            my += weight * yv;
                            xx += weight * xv * xv;
                            yy += weight * yv * yv;
                            xy += weight * xv * yv;
                        }
                    }
                    double vx = xx - mx * mx, vy = yy - my * my, cxy = xy - mx * my;
                    double a1 = 2 * mx * my + c1, a2 = 2 * cxy + c2, b1 = mx * mx + my * my + c1, b2 = vx + vy + c2;
                    var s = a1 * a2 / (b1 * b2);
                    total += s;
                    var alpha = 2 * s * (my / a1 - my / a2 - mx / b1 + mx / b2);
                    var beta = 2 * s / a2;
                    var gamma = -2 * s / b2;
                    for (var a = 0; a < n; a++)
                    {
                        for (var b = 0; b < n; b++)
                        {
                            var k = ((i + a) * width + j + b) * channels + c;
                            gradient[k] += g[a] * g[b] * (alpha + beta * y[k] + gamma * x[k]) / count;
                        }
                    }
                }
            }
        }
        return (total / count, gradient);
    }
}
