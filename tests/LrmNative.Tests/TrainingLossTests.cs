using System.Buffers.Binary;
using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>Losses and their gradients against PyTorch autograd (float64) and central finite differences.</summary>
public sealed class TrainingLossTests
{
    private static SafeTensorsFile OpenGolden() => SafeTensorsFile.Open(Path.Combine(Golden.DataDirectory, "training", "losses.safetensors"));

    private static double Scalar(SafeTensorsFile file, string name) => BinaryPrimitives.ReadDoubleLittleEndian(file.Bytes(name));

    [TestCase("mse")]
    [TestCase("mask")]
    [TestCase("tv")]
    public void LossAndGradientMatchTorch(string which)
    {
        using var file = OpenGolden();
        using var input = file.ReadTensor(which + ".input");
        using var expected = file.ReadTensor(which + ".grad");
        using var gradient = Tensor.Zeros(input.Shape);
        double loss;
        if (which == "tv")
        {
            loss = Losses.TotalVariation(gradient, input, weight: 1f);
        }
        else
        {
            using var target = file.ReadTensor(which + ".target");
            loss = which == "mse" ? Losses.MeanSquaredError(gradient, input, target) : Losses.MaskMeanSquaredError(gradient, input, target);
        }
        var reference = Scalar(file, which + ".loss");
        Assert.That(loss, Is.EqualTo(reference).Within(1e-6 * reference), "loss");
        Compare.Close(gradient, expected, 1e-6, which + " gradient");
    }

    // Central differences of the loss in double; the losses are quadratic, so they agree up to fp32 rounding of the input.
    [TestCase("mse")]
    [TestCase("tv")]
    public void GradientMatchesFiniteDifferences(string which)
    {
        var random = new Random(5);
        long[] shape = which == "tv" ? [1, 3, 2, 5, 4] : [2, 4, 3, 3];
        var count = (int)shape.Aggregate(1L, (a, b) => a * b);
        using var x = Tensor.FromArray([.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))], shape);
        using var y = Tensor.FromArray([.. Enumerable.Range(0, count).Select(_ => (float)random.NextDouble())], shape);
        using var gradient = Tensor.Zeros(shape);
        const float weight = 0.7f;
        double Loss(Tensor input, Tensor? g) => which == "tv"
            ? weight * Losses.TotalVariation(g, input, weight)
            : weight * Losses.MeanSquaredError(g, input, y, weight);
        Loss(x, gradient);
        var analytic = gradient.ToFloatArray();
        const float h = 1e-2f;
        for (var i = 0; i < count; i++)
        {
            var values = x.AsSpan<float>();
            var original = values[i];
            values[i] = original + h;
            var plus = Loss(x, null);
            values[i] = original - h;
            var minus = Loss(x, null);
            values[i] = original;
            var numeric = (plus - minus) / ((double)(original + h) - (original - h));
            Assert.That(analytic[i], Is.EqualTo(numeric).Within(1e-4 * Math.Abs(numeric) + 1e-6), $"element {i}");
        }
    }

    [Test]
    public void WeightScalesAndAccumulateAddsTheGradient()
    {
        using var x = Tensor.FromArray([0.5f, 1f, -1f, 2f], 2, 2);
        using var y = Tensor.FromArray([0f, 1f, 1f, 0f], 2, 2);
        using var gradient = Tensor.FromArray([10f, 10f, 10f, 10f], 2, 2);
        var loss = Losses.MeanSquaredError(gradient, x, y, weight: 2f);
        Assert.That(loss, Is.EqualTo((0.25 + 0 + 4 + 4) / 4));
        Assert.That(gradient.ToFloatArray(), Is.EqualTo(new[] { 0.5f, 0f, -2f, 2f }), "overwritten, 2·2(x − y)/4");
        Losses.MeanSquaredError(gradient, x, y, weight: 1f, accumulate: true);
        Assert.That(gradient.ToFloatArray(), Is.EqualTo(new[] { 0.75f, 0f, -3f, 3f }), "accumulated");

        // TV of a linear ramp along W only: Δw = 1 everywhere, Δh = 0 → 0 + 1 = 1 (OpenLRM's TVLoss); its gradient is
        // zero inside and ±2/count = ±2/4 at the ends of each row.
        using var ramp = Tensor.FromArray([0f, 1f, 2f, 0f, 1f, 2f], 2, 3);
        using var tvGradient = Tensor.FromArray([9f, 9f, 9f, 9f, 9f, 9f], 2, 3);
        Assert.That(Losses.TotalVariation(tvGradient, ramp, 1f), Is.EqualTo(1.0));
        Assert.That(tvGradient.ToFloatArray(), Is.EqualTo(new[] { -0.5f, 0f, 0.5f, -0.5f, 0f, 0.5f }));
    }

    [Test]
    public void BadShapesAndNonFiniteLossesAreReported()
    {
        using var a = Tensor.Zeros([2, 3]);
        using var b = Tensor.Zeros([3, 2]);
        Assert.That(Assert.Throws<LrmShapeException>(() => Losses.MeanSquaredError(null, a, b))!.Message, Does.Contain("target"));
        using var thin = Tensor.Zeros([3, 1]);
        Assert.Throws<LrmShapeException>(() => Losses.TotalVariation(null, thin));
        var error = Assert.Throws<LrmNonFiniteException>(() => Losses.EnsureFinite(double.NaN, "mse", 17))!;
        Assert.That(error.Step, Is.EqualTo(17));
        Assert.That(error.TensorName, Is.EqualTo("loss.mse"));
        Assert.That(Losses.EnsureFinite(0.25, "mse", 1), Is.EqualTo(0.25));
    }

    [Test]
    public void LpipsIsOffWithoutWeightsAndAnUnreadableFileIsRefusedRatherThanIgnored()
    {
        Assert.That(PerceptualLoss.Open(null), Is.Null);
        Assert.That(PerceptualLoss.UnavailableMessage, Does.Contain("LPIPS is off").And.Contain("--lpips-weights"));
        Assert.That(Assert.Throws<LrmFormatException>(() => PerceptualLoss.Open("/nonexistent/lpips.safetensors"))!.Message, Does.Contain("not found"));
        var path = Path.GetTempFileName();
        try
        {
            Assert.That(Assert.Throws<LrmFormatException>(() => PerceptualLoss.Open(path))!.Message, Does.Contain(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
