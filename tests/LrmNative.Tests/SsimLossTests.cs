using System.Buffers.Binary;
using LrmNative.IO;
using LrmNative.Metrics;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The SSIM training loss (<see cref="Losses.SsimLoss(Tensor?, Tensor, Tensor, float, bool)"/>: batch mean of 1 − SSIM)
/// against PyTorch float64 autograd (tests/golden/make_perceptual_golden.py, the metric's torch SSIM) and central
/// finite differences of the loss.
/// </summary>
public sealed class SsimLossTests
{
    [Test]
    public void LossAndGradientMatchPyTorch()
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Golden.DataDirectory, "training", "ssim_loss.safetensors"));
        using var prediction = file.ReadTensor("prediction");
        using var target = file.ReadTensor("target");
        using var expected = file.ReadTensor("grad");
        using var gradient = Tensor.Empty(prediction.Shape);
        var loss = Losses.SsimLoss(gradient, prediction, target);
        var reference = BinaryPrimitives.ReadDoubleLittleEndian(file.Bytes("loss"));
        Assert.That(loss, Is.EqualTo(reference).Within(1e-12));
        Compare.Close(gradient, expected, 1e-6, "∂(1 − SSIM)/∂prediction");
    }

    // The loss is smooth; in double the central difference agrees to truncation + fp32 rounding of the perturbed input.
    [Test]
    public void GradientMatchesFiniteDifferences()
    {
        var random = new Random(23);
        long[] shape = [2, 13, 12, 3];
        using var y = GradientCheck.Uniform(random, 0f, 1f, shape);
        using var x = Tensor.FromArray([.. y.ToFloatArray().Select(v => Math.Clamp(v + (float)(0.2 * (random.NextDouble() - 0.5)), 0f, 1f))], shape);
        using var gradient = Tensor.Empty(shape);
        const float weight = 0.7f;
        Losses.SsimLoss(gradient, x, y, weight);
        var analytic = gradient.ToFloatArray();
        var values = x.AsSpan<float>();
        var numeric = new List<float>();
        var sampled = new List<float>();
        for (var i = 0; i < values.Length; i += 5)
        {
            const float h = 1e-3f;
            var original = values[i];
            values[i] = original + h;
            var plus = Losses.SsimLoss(null, x, y);
            values[i] = original - h;
            var minus = Losses.SsimLoss(null, x, y);
            values[i] = original;
            numeric.Add((float)(weight * (plus - minus) / ((double)(original + h) - (original - h))));
            sampled.Add(analytic[i]);
        }
        Assert.That(Compare.RelativeError(sampled.ToArray(), numeric.ToArray()), Is.LessThan(1e-4));
        Assert.That(numeric, Has.Count.GreaterThan(150));
    }

    [Test]
    public void LossIsOneMinusTheMetricPerImageAndAccumulates()
    {
        var random = new Random(4);
        using var x = GradientCheck.Uniform(random, 0f, 1f, 2, 11, 14, 3);
        using var y = GradientCheck.Uniform(random, 0f, 1f, 2, 11, 14, 3);
        var length = 11 * 14 * 3;
        var metric = Enumerable.Range(0, 2).Select(b =>
            ImageMetrics.Ssim(x.AsSpan<float>().Slice(b * length, length), y.AsSpan<float>().Slice(b * length, length), 11, 14, 3)).ToArray();
        using var gradient = Tensor.Empty(x.Shape);
        Assert.That(Losses.SsimLoss(gradient, x, y), Is.EqualTo(1 - metric.Average()).Within(1e-12));
        using var accumulated = Tensor.FromArray([.. Enumerable.Repeat(1f, (int)x.ElementCount)], x.Shape);
        Losses.SsimLoss(accumulated, x, y, 3f, accumulate: true);
        Assert.That(Compare.RelativeError(accumulated.AsSpan<float>(), [.. gradient.ToFloatArray().Select(g => 1 + 3 * g)]), Is.LessThan(1e-6));

        using var small = Tensor.Zeros([1, 10, 20, 3]);
        Assert.That(Assert.Throws<LrmShapeException>(() => Losses.SsimLoss(null, small, small))!.Message, Does.Contain("11×11"));
        using var flat = Tensor.Zeros([20, 20, 3]);
        Assert.That(Assert.Throws<LrmShapeException>(() => Losses.SsimLoss(null, flat, flat))!.Message, Does.Contain("(B, H, W, C)"));
    }
}
