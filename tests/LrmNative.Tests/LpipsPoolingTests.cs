using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// LPIPS' vectorised pieces against plain scalar references, over channel counts that leave every remainder of the
/// vector width: the 3×3/2 max pool (value and the first maximum's index, ties on purpose) and the ReLU's backward
/// (gradient kept only where the output is &gt; 0: NaN, −0 and 0 cut).
/// </summary>
public sealed class LpipsPoolingTests
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
}
