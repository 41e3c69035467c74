using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// LPIPS' vectorised pieces against plain scalar references, over channel counts that leave every remainder of the
/// vector width: the 3×3/2 max pool (value and the first maximum's index, ties on purpose) and the ReLU's backward
/// (gradient kept only where the output is &gt; 0: NaN, −0 and 0 cut), and a tap's distance with its gradient (a scalar
/// double evaluation of the class remarks' formulas, positions with all-zero features included).
/// </summary>
public sealed class LpipsPieceTests
{
    [Test]
    public void MaxPoolTakesTheFirstMaximumOfEachWindow([Values(1, 3, 8, 13, 16, 24, 37, 64)] int channels)
    {
        const int images = 2, height = 9, width = 8;
        var random = new Random(channels);
        // Few distinct values, so windows hold ties and the first maximum matters.
        var values = Enumerable.Range(0, images * height * width * channels).Select(_ => (float)random.Next(-3, 4)).ToArray();
        using var input = Tensor.FromArray(values, (long)images * height * width, channels);
        int outH = (height - 3) / 2 + 1, outW = (width - 3) / 2 + 1;
        using var output = Tensor.Empty([(long)images * outH * outW, channels]);
        var choices = new int[output.ElementCount];
        Lpips.MaxPoolForward(output, choices, input, images, height, width);
        var pooled = output.ToFloatArray();
        for (var n = 0; n < images; n++)
        {
            for (var oy = 0; oy < outH; oy++)
            {
                for (var ox = 0; ox < outW; ox++)
                {
                    for (var c = 0; c < channels; c++)
                    {
                        var best = float.NegativeInfinity;
                        var choice = -1;
                        for (var ky = 0; ky < 3; ky++)
                        {
                            for (var kx = 0; kx < 3; kx++)
                            {
                                var at = ((n * height + 2 * oy + ky) * width + 2 * ox + kx) * channels + c;
                                if (values[at] > best)
                                {
                                    (best, choice) = (values[at], at);
                                }
                            }
                        }
                        var o = ((n * outH + oy) * outW + ox) * channels + c;
                        Assert.That(pooled[o], Is.EqualTo(best), $"image {n}, ({oy}, {ox}), channel {c}");
                        Assert.That(choices[o], Is.EqualTo(choice), $"image {n}, ({oy}, {ox}), channel {c}: the first maximum");
                    }
                }
            }
        }
    }

    [Test]
    public void ReluBackwardKeepsTheGradientOnlyWhereTheOutputIsPositive([Values(1, 7, 8, 29, 64)] int length)
    {
        float[] special = [float.NaN, -0f, 0f, 1e-30f, -1e-30f, 2f, float.PositiveInfinity, float.NegativeInfinity];
        var outputs = Enumerable.Range(0, length).Select(i => special[i * 5 % special.Length]).ToArray();
        var gradients = Enumerable.Range(0, length).Select(i => i + 0.5f).ToArray();
        using var output = Tensor.FromArray(outputs, length);
        using var gradient = Tensor.FromArray(gradients, length);
        Lpips.ReluBackward(gradient, output);
        Assert.That(gradient.ToFloatArray(), Is.EqualTo(gradients.Select((g, i) => outputs[i] > 0 ? g : 0f).ToArray()));
    }

    [Test]
    public void TapDistanceAndItsGradientEqualTheScalarFormulas([Values(1, 5, 8, 13, 24, 37)] int channels)
    {
        const int images = 3, positions = 4;
        const float weight = 0.6f;
        var random = new Random(100 + channels);
        var rows = images * positions;
        var f = Enumerable.Range(0, rows * channels).Select(_ => (float)Math.Max(0, random.NextDouble() * 2 - 0.5)).ToArray();
        var t = Enumerable.Range(0, rows * channels).Select(_ => (float)Math.Max(0, random.NextDouble() * 2 - 0.5)).ToArray();
        Array.Clear(f, 5 * channels, channels); // a position cut entirely by its ReLU: no gradient there
        var linear = Enumerable.Range(0, channels).Select(_ => (float)random.NextDouble()).ToArray();
        var start = Enumerable.Range(0, rows * channels).Select(i => (float)Math.Cos(i)).ToArray();
        using var predicted = Tensor.FromArray(f, rows, channels);
        using var reference = Tensor.FromArray(t, rows, channels);
        using var gradient = Tensor.FromArray(start, rows, channels);
        var distances = new double[images];
        Lpips.Distance(distances, gradient, predicted, reference, linear, images, weight);

        var expected = new double[images];
        var expectedGradient = start.Select(v => (double)v).ToArray();
        for (var row = 0; row < rows; row++)
        {
            double normF = 0, normT = 0;
            for (var c = 0; c < channels; c++)
            {
                normF += (double)f[row * channels + c] * f[row * channels + c];
                normT += (double)t[row * channels + c] * t[row * channels + c];
            }
            normF = Math.Sqrt(normF);
            normT = Math.Sqrt(normT);
            var u = Enumerable.Range(0, channels).Select(c => f[row * channels + c] / (normF + Lpips.NormEpsilon)).ToArray();
            var v = Enumerable.Range(0, channels).Select(c => t[row * channels + c] / (normT + Lpips.NormEpsilon)).ToArray();
            expected[row / positions] += Enumerable.Range(0, channels).Sum(c => linear[c] * (u[c] - v[c]) * (u[c] - v[c])) / positions;
            if (normF == 0)
            {
                continue;
            }
            var g = Enumerable.Range(0, channels).Select(c => 2.0 * weight * linear[c] * (u[c] - v[c]) / rows).ToArray();
            var gf = Enumerable.Range(0, channels).Sum(c => g[c] * f[row * channels + c]);
            for (var c = 0; c < channels; c++)
            {
                var inverse = 1 / (normF + Lpips.NormEpsilon);
                expectedGradient[row * channels + c] += g[c] * inverse - f[row * channels + c] * gf * inverse * inverse / normF;
            }
        }
        for (var b = 0; b < images; b++)
        {
            Assert.That(distances[b], Is.EqualTo(expected[b]).Within(1e-12 * expected[b]), $"image {b}");
        }
        var actual = gradient.ToFloatArray();
        for (var i = 0; i < actual.Length; i++)
        {
            Assert.That(actual[i], Is.EqualTo(expectedGradient[i]).Within(1e-6 * Math.Abs(expectedGradient[i]) + 1e-9), $"element {i}");
        }
        Assert.That(actual.AsSpan(5 * channels, channels).ToArray(), Is.EqualTo(start.AsSpan(5 * channels, channels).ToArray()), "the all-zero position");
    }
}
