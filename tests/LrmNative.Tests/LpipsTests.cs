using System.Runtime.InteropServices;
using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// LPIPS-AlexNet (<see cref="Lpips"/>) against the PyTorch float64 reference of tests/golden/make_perceptual_golden.py
/// (a random AlexNet-shaped network with 16, 24, 32, 24, 16 channels, stored in the user's weights-file format), against
/// central finite differences, and its weights loader's errors.
/// </summary>
public sealed class LpipsTests
{
    internal static string WeightsPath => Path.Combine(Golden.DataDirectory, "training", "lpips_weights.safetensors");

    private static string CasesPath => Path.Combine(Golden.DataDirectory, "training", "lpips_cases.safetensors");

    private static double[] Doubles(SafeTensorsFile file, string name) => MemoryMarshal.Cast<byte, double>(file.Bytes(name)).ToArray();

    // The golden network and one case's images.
    private sealed class GoldenCase : IDisposable
    {
        public GoldenCase(string name)
        {
            using var file = SafeTensorsFile.Open(CasesPath);
            Prediction = file.ReadTensor(name + ".prediction");
            Target = file.ReadTensor(name + ".target");
        }

        public Lpips Network { get; } = Lpips.Load(WeightsPath);

        public Tensor Prediction { get; }

        public Tensor Target { get; }

        public void Dispose()
        {
            Network.Dispose();
            Prediction.Dispose();
            Target.Dispose();
        }
    }

    [TestCase("b2_48x48")]
    [TestCase("b1_45x37")]
    [TestCase("b1_31x31")]
    public void ValueAndGradientMatchPyTorch(string name)
    {
        using var golden = new GoldenCase(name);
        var (lpips, prediction, target) = (golden.Network, golden.Prediction, golden.Target);
        using var file = SafeTensorsFile.Open(CasesPath);
        using var expected = file.ReadTensor(name + ".grad");
        using var gradient = Tensor.Empty(prediction.Shape);
        var perImage = new double[prediction.Size(0)];
        var loss = lpips.Evaluate(gradient, prediction, target, 1f, accumulate: false, perImage);

        var reference = Doubles(file, name + ".lpips");
        // Measured: ≤ 2e-7 relative (float32 GEMMs against float64).
        for (var b = 0; b < reference.Length; b++)
        {
            Assert.That(perImage[b], Is.EqualTo(reference[b]).Within(1e-5 * reference[b]), $"image {b}");
        }
        var referenceLoss = Doubles(file, name + ".loss")[0];
        Assert.That(loss, Is.EqualTo(referenceLoss).Within(1e-5 * referenceLoss), "batch mean");
        var error = Compare.RelativeError(gradient.AsSpan<float>(), expected.AsSpan<float>());
        TestContext.Out.WriteLine($"{name}: LPIPS {loss:F8} (torch {referenceLoss:F8}), ‖Δgrad‖/‖grad‖ = {error:E2}");
        Assert.That(error, Is.LessThan(1e-4), "∂LPIPS/∂prediction");
    }

    // Central differences of the float32 forward. LPIPS is piecewise smooth with kinks everywhere (ReLU, max pool:
    // along a random direction the difference quotient still moves by ~10 % between steps 1e-2 and 1e-3), so steps are
    // small and checks are over many elements at once, where the difference stands far above the forward's rounding:
    // along directions aligned with the gradient's signs (Σ|g| scale; measured 1e-4..9e-4 off at h = 1e-4), along random
    // directions (error against the root of the summed squares of the terms; measured ≤ 4e-4) and element by element
    // at a larger step (normalised error over the set; measured 1.7e-3).
    [Test]
    public void GradientMatchesFiniteDifferences()
    {
        using var golden = new GoldenCase("b1_45x37");
        var (lpips, x, y) = (golden.Network, golden.Prediction, golden.Target);
        using var gradient = Tensor.Empty(x.Shape);
        lpips.Evaluate(gradient, x, y, 1f, accumulate: false);
        var analytic = gradient.ToFloatArray();
        var original = x.ToFloatArray();
        var random = new Random(17);

        // (L(x + h·d) − L(x − h·d)) / 2h, and Σ g·d with the scale its error is judged against.
        double Difference(float step, float[] direction)
        {
            var span = x.AsSpan<float>();
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = original[i] + step * direction[i];
            }
            var plus = lpips.Evaluate(null, x, y, 1f, accumulate: false);
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = original[i] - step * direction[i];
            }
            var minus = lpips.Evaluate(null, x, y, 1f, accumulate: false);
            original.CopyTo(span);
            return (plus - minus) / (2.0 * step);
        }
        double Along(float[] direction) => analytic.Select((g, i) => (double)g * direction[i]).Sum();
        double Spread(float[] direction) => Math.Sqrt(analytic.Select((g, i) => Math.Pow((double)g * direction[i], 2)).Sum());

        for (var trial = 0; trial < 2; trial++)
        {
            var aligned = analytic.Select(g => MathF.Sign(g) * (float)(0.5 + 0.5 * random.NextDouble())).ToArray();
            Assert.That(Along(aligned), Is.EqualTo(Difference(1e-4f, aligned)).Within(3e-3 * Along(aligned)), $"aligned direction {trial}");
            var direction = analytic.Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            Assert.That(Along(direction), Is.EqualTo(Difference(1e-4f, direction)).Within(2e-3 * Spread(direction)), $"random direction {trial}");
        }

        var indices = Enumerable.Range(0, 40).Select(_ => random.Next(original.Length)).Distinct().ToArray();
        var numeric = indices.Select(index => (float)Difference(1e-3f, [.. original.Select((_, i) => i == index ? 1f : 0f)])).ToArray();
        var error = Compare.RelativeError(indices.Select(i => analytic[i]).ToArray(), numeric);
        TestContext.Out.WriteLine($"{indices.Length} elements: ‖analytic − numeric‖/‖numeric‖ = {error:E2}");
        Assert.That(error, Is.LessThan(1e-2));
    }

    [Test]
    public void WeightScalesTheGradientAccumulateAddsItAndIdenticalImagesScoreZero()
    {
        using var golden = new GoldenCase("b1_31x31");
        var (lpips, x, y) = (golden.Network, golden.Prediction, golden.Target);
        using var unit = Tensor.Empty(x.Shape);
        var loss = lpips.Evaluate(unit, x, y, 1f, accumulate: false);
        using var scaled = Tensor.Empty(x.Shape);
        Assert.That(lpips.Evaluate(scaled, x, y, 2f, accumulate: false), Is.EqualTo(loss), "the weight scales only the gradient");
        Assert.That(Compare.RelativeError(scaled.AsSpan<float>(), [.. unit.ToFloatArray().Select(v => 2 * v)]), Is.LessThan(1e-6));

        using var accumulated = Tensor.FromArray([.. Enumerable.Repeat(0.25f, (int)x.ElementCount)], x.Shape);
        lpips.Evaluate(accumulated, x, y, 1f, accumulate: true);
        Assert.That(Compare.RelativeError(accumulated.AsSpan<float>(), [.. unit.ToFloatArray().Select(v => v + 0.25f)]), Is.LessThan(1e-6));

        using var same = Tensor.Empty(x.Shape);
        Assert.That(lpips.Evaluate(same, y, y, 1f, accumulate: false), Is.Zero);
        Assert.That(same.ToFloatArray(), Is.All.Zero);
    }

    [Test]
    public void ImagesSmallerThanAlexNetsPoolingAreRefused()
    {
        using var lpips = Lpips.Load(WeightsPath);
        Assert.That(lpips.MinimumImageSize, Is.EqualTo(31));
        using var small = Tensor.Zeros([1, 30, 40, 3]);
        Assert.That(Assert.Throws<LrmShapeException>(() => lpips.Evaluate(null, small, small, 1f, false))!.Message, Does.Contain("31×31"));
        using var narrow = Tensor.Zeros([2, 64, 30, 3]);
        Assert.Throws<LrmShapeException>(() => lpips.Evaluate(null, narrow, narrow, 1f, false));
        using var grey = Tensor.Zeros([1, 32, 32, 1]);
        Assert.Throws<LrmShapeException>(() => lpips.Evaluate(null, grey, grey, 1f, false));
        using var smallest = Tensor.Zeros([1, 31, 31, 3]);
        using var other = Tensor.FromArray([.. Enumerable.Range(0, 31 * 31 * 3).Select(i => (i % 7) / 7f)], 1, 31, 31, 3);
        Assert.That(lpips.Evaluate(null, other, smallest, 1f, false), Is.GreaterThan(0));
    }

    [Test]
    public void OpenGivesTheNetworkOfTheFile()
    {
        Assert.That(PerceptualLoss.Open(null), Is.Null);
        Assert.That(PerceptualLoss.Open(""), Is.Null);
        using var loss = PerceptualLoss.Open(WeightsPath)!;
        Assert.That(loss.Name, Is.EqualTo("lpips-alex"));
        Assert.That(((Lpips)loss).Channels, Is.EqualTo(new[] { 16, 24, 32, 24, 16 }));
        Assert.That(PerceptualLoss.UnavailableMessage, Does.Contain("LPIPS is off").And.Contain("--lpips-weights"));
    }

    // ---- the weights loader ----

    // The golden weights with one change, written to a temporary file; returns its path.
    private static string WriteVariant(string directory, Action<Dictionary<string, Tensor>> change)
    {
        using var file = SafeTensorsFile.Open(WeightsPath);
        var tensors = file.Tensors.ToDictionary(t => t.Name, t => file.ReadTensor(t.Name), StringComparer.Ordinal);
        try
        {
            change(tensors);
            var path = Path.Combine(directory, $"variant-{Guid.NewGuid():N}.safetensors");
            SafeTensorsFile.Write(path, tensors);
            return path;
        }
        finally
        {
            foreach (var tensor in tensors.Values)
            {
                tensor.Dispose();
            }
        }
    }

    private static void Replace(Dictionary<string, Tensor> tensors, string name, Tensor tensor)
    {
        tensors[name].Dispose();
        tensors[name] = tensor;
    }

    [Test]
    public void LoaderNamesTheFileAndTensorOfEveryProblem()
    {
        var directory = Directory.CreateTempSubdirectory("lpips-weights-").FullName;
        try
        {
            string Error(Action<Dictionary<string, Tensor>> change)
            {
                var path = WriteVariant(directory, change);
                var message = Assert.Throws<LrmFormatException>(() => Lpips.Load(path).Dispose())!.Message;
                Assert.That(message, Does.StartWith(path));
                return message;
            }

            Assert.That(Error(t => { t["features.6.bias"].Dispose(); t.Remove("features.6.bias"); }),
                Does.Contain("lack tensor 'features.6.bias'").And.Contain("docs/training.md"));
            Assert.That(Error(t => { t["features.0.weight"].Dispose(); t.Remove("features.0.weight"); }), Does.Contain("'features.0.weight'"));
            Assert.That(Error(t => Replace(t, "features.3.weight", Tensor.Zeros([24, 15, 5, 5]))),
                Does.Contain("'features.3.weight' has shape (24, 15, 5, 5), expected (24, 16, 5, 5)"));
            Assert.That(Error(t => Replace(t, "features.0.weight", Tensor.Zeros([16, 3, 7, 7]))), Does.Contain("expected (16, 3, 11, 11)"));
            Assert.That(Error(t => Replace(t, "lin2.model.1.weight", Tensor.Zeros([1, 31, 1, 1]))), Does.Contain("'lin2.model.1.weight'").And.Contain("expected (1, 32, 1, 1)"));
            Assert.That(Error(t => Replace(t, "features.10.bias", Tensor.Zeros([16], DataType.Int32))), Does.Contain("'features.10.bias' has dtype I32"));
            Assert.That(Error(t => t["features.8.weight"].AsSpan<float>()[5] = float.NaN), Does.Contain("'features.8.weight' holds a non-finite value"));
            Assert.That(Error(t => t["lin1.model.1.weight"].AsSpan<float>()[3] = -0.5f),
                Does.Contain("'lin1.model.1.weight' has a negative weight (-0.5 at channel 3)"));

            var garbage = Path.Combine(directory, "garbage.safetensors");
            File.WriteAllBytes(garbage, [1, 2, 3]);
            Assert.That(Assert.Throws<LrmFormatException>(() => PerceptualLoss.Open(garbage))!.Message, Does.Contain(garbage));
            Assert.That(Assert.Throws<LrmFormatException>(() => PerceptualLoss.Open(Path.Combine(directory, "none.safetensors")))!.Message,
                Does.Contain("LPIPS weights file not found"));

            // Zero heads are valid (lpips' own have many), and tensors the loader does not use are ignored.
            var extra = WriteVariant(directory, t =>
            {
                t["lin0.model.1.weight"].AsSpan<float>().Clear();
                t["scaling_layer.shift"] = Tensor.FromArray([-0.030f, -0.088f, -0.188f], 1, 3, 1, 1);
            });
            using var loaded = Lpips.Load(extra);
            Assert.That(loaded.Channels, Has.Count.EqualTo(5));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
