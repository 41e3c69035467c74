using System.Buffers.Binary;
using LrmNative.Backends;
using LrmNative.Interop;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>AdamW, the learning-rate schedule and gradient clipping against torch.optim.AdamW and analytic values.</summary>
public sealed class TrainingOptimizerTests
{
    private static string GoldenPath(string name) => Path.Combine(Golden.DataDirectory, "training", name + ".safetensors");

    private static double[] Doubles(SafeTensorsFile file, string name)
    {
        var bytes = file.Bytes(name);
        var values = new double[bytes.Length / 8];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(8 * i, 8));
        }
        return values;
    }

    private static List<TrainableParameter> ParametersOf(SafeTensorsFile file, TensorScope scope)
    {
        var list = new List<TrainableParameter>();
        foreach (var name in file.Metadata["names"].Split(','))
        {
            var value = scope.Add(file.ReadTensor("param." + name));
            list.Add(new TrainableParameter(name, value, scope.Add(Tensor.Zeros(value.Shape))));
        }
        return list;
    }

    [Test]
    public void AdamWFollowsTorchTrajectoryWithScheduleAndClipping()
    {
        using var file = SafeTensorsFile.Open(GoldenPath("adamw"));
        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var parameters = ParametersOf(file, scope);
        var steps = (int)file.Long("steps");
        var options = new AdamWOptions
        {
            LearningRate = double.Parse(file.Metadata["lr"], System.Globalization.CultureInfo.InvariantCulture),
            Beta1 = file.Float("beta1"),
            Beta2 = file.Float("beta2"),
            Epsilon = file.Float("eps"),
            WeightDecay = file.Float("weight_decay"),
            MaxGradientNorm = file.Float("max_norm"),
        };
        var schedule = new LearningRateSchedule(options.LearningRate, file.Long("warmup"), steps,
            double.Parse(file.Metadata["min_lr"], System.Globalization.CultureInfo.InvariantCulture));
        var expectedRates = Doubles(file, "out.lr");
        var expectedNorms = file.ReadTensor("out.total_norm").ToFloatArray();
        using var optimizer = new AdamW(options);
        var clipped = 0;
        for (var step = 1; step <= steps; step++)
        {
            foreach (var parameter in parameters)
            {
                using var gradient = file.ReadTensor($"grad.{step}.{parameter.Name}");
                gradient.AsSpan<float>().CopyTo(parameter.Gradient.AsSpan<float>());
            }
            var rate = schedule.At(step);
            Assert.That(rate, Is.EqualTo(expectedRates[step - 1]).Within(1e-15 * options.LearningRate), $"lr at step {step}");
            var result = optimizer.Step(backend, parameters, rate);
            Assert.That(result.Step, Is.EqualTo(step));
            Assert.That(result.GradientNorm, Is.EqualTo(expectedNorms[step - 1]).Within(2e-6 * expectedNorms[step - 1]), $"norm at step {step}");
            clipped += result.ClipScale < 1 ? 1 : 0;
            foreach (var parameter in parameters)
            {
                using var expected = file.ReadTensor($"out.{step}.{parameter.Name}");
                Compare.Close(parameter.Value, expected, 1e-6, $"step {step} '{parameter.Name}'");
            }
        }
        Assert.That(clipped, Is.EqualTo(expectedNorms.Count(n => n > options.MaxGradientNorm)), "steps clipped");
        Assert.That(clipped, Is.InRange(1, steps - 1), "the case exercises both clipped and unclipped steps");
        Assert.That(optimizer.StepCount, Is.EqualTo(steps));
        var state = optimizer.StateTensors().ToDictionary(s => s.Key, s => s.Value);
        foreach (var parameter in parameters)
        {
            using var expAvg = file.ReadTensor("out.exp_avg." + parameter.Name);
            using var expAvgSq = file.ReadTensor("out.exp_avg_sq." + parameter.Name);
            Compare.Close(state[AdamW.ExpAvgPrefix + parameter.Name], expAvg, 1e-6, $"exp_avg '{parameter.Name}'");
            Compare.Close(state[AdamW.ExpAvgSqPrefix + parameter.Name], expAvgSq, 1e-6, $"exp_avg_sq '{parameter.Name}'");
        }
    }

    [Test]
    public void WeightDecayGroupsAgreeWithTheGoldenGroups()
    {
        using var file = SafeTensorsFile.Open(GoldenPath("adamw"));
        using var scope = new TensorScope();
        var decayed = file.Metadata["decay_names"].Split(',').ToHashSet(StringComparer.Ordinal);
        foreach (var parameter in ParametersOf(file, scope))
        {
            Assert.That(parameter.WeightDecay, Is.EqualTo(decayed.Contains(parameter.Name)), parameter.Name);
        }
    }

    [TestCase("tiny")]
    [TestCase("dino")]
    public void WeightDecaySkipsExactlyBiasesNormsAndLayerScale(string which)
    {
        var config = which == "tiny"
            ? ModelConfig.Load(Path.Combine(Golden.TinyModelDirectory, "config.json"))
            : Golden.ModelConfigOf(SafeTensorsFile.Open(Golden.ModelCasePath("full_dino")));
        var specs = LrmWeightNames.Expected(config);
        Assert.That(specs, Is.Not.Empty);
        foreach (var spec in specs)
        {
            // The rule by name: biases, LayerNorm/ModLN affine (a "norm…" module's own weight) and LayerScale gammas.
            var parts = spec.Name.Split('.');
            var isBias = spec.Name.EndsWith(".bias", StringComparison.Ordinal);
            var isNorm = parts.Length >= 2 && parts[^1] == "weight" && parts[^2].StartsWith("norm", StringComparison.Ordinal);
            var isLayerScale = parts[^1] == "gamma";
            var expected = !(isBias || isNorm || isLayerScale);
            Assert.That(AdamW.UsesWeightDecay(spec.Name, spec.Shape), Is.EqualTo(expected), spec.Name);
        }
        Assert.That(specs.Count(s => s.Name.EndsWith("norm1.mlp.1.weight", StringComparison.Ordinal) && AdamW.UsesWeightDecay(s.Name, s.Shape)),
            Is.EqualTo(config.TransformerLayers), "the ModLN modulation Linear decays");
    }

    [Test]
    public void CosineScheduleHasThePaperShape()
    {
        var schedule = new LearningRateSchedule(4e-4, 3000, 100_000);
        Assert.That(schedule.At(1), Is.EqualTo(4e-4 / 3000).Within(1e-18));
        Assert.That(schedule.At(1500), Is.EqualTo(2e-4).Within(1e-18));
        Assert.That(schedule.At(3000), Is.EqualTo(4e-4).Within(1e-18), "warm-up ends at the peak");
        Assert.That(schedule.At(3000 + 48_500), Is.EqualTo(2e-4).Within(1e-15), "half-way through the cosine");
        Assert.That(schedule.At(3000 + 97_000 / 4), Is.EqualTo(4e-4 * 0.5 * (1 + Math.Cos(Math.PI / 4))).Within(1e-15));
        Assert.That(schedule.At(100_000), Is.EqualTo(0).Within(1e-18), "ends at the minimum");
        Assert.That(schedule.At(150_000), Is.EqualTo(0).Within(1e-18), "stays at the minimum");
        for (long s = 3001; s <= 100_000; s += 997)
        {
            Assert.That(schedule.At(s), Is.LessThan(schedule.At(s - 1)), $"decreasing at {s}");
        }
        var floor = new LearningRateSchedule(1e-3, 0, 10, 1e-4);
        Assert.That(floor.At(1), Is.EqualTo(1e-4 + 0.9e-3 * 0.5 * (1 + Math.Cos(Math.PI / 10))).Within(1e-16), "no warm-up");
        Assert.That(floor.At(10), Is.EqualTo(1e-4).Within(1e-18));
        Assert.Throws<LrmInvalidArgumentException>(() => schedule.At(0));
        Assert.Throws<LrmInvalidArgumentException>(() => _ = new LearningRateSchedule(4e-4, 11, 10));
        Assert.Throws<LrmInvalidArgumentException>(() => _ = new LearningRateSchedule(-1, 0, 10));
    }

    [Test]
    public void ClippingScalesLikeClipGradNormAndEqualsPreScaledGradients()
    {
        Assert.That(AdamW.ClipScale(0.5, 1.0), Is.EqualTo(1f));
        Assert.That(AdamW.ClipScale(4.0, 1.0), Is.EqualTo(1f / (4f + 1e-6f)));
        Assert.That(AdamW.ClipScale(400.0, 0.0), Is.EqualTo(1f), "clipping off");

        using var backend = new CpuBackend();
        using var scope = new TensorScope();
        var random = new Random(7);
        float[] RandomValues(int n, float scale) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale)];
        var weights = RandomValues(30, 1f);
        var gradient = RandomValues(30, 3f);
        var clippedParameter = new TrainableParameter("a.weight", scope.Add(Tensor.FromArray(weights, 5, 6)), scope.Add(Tensor.FromArray(gradient, 5, 6)));
        using var clipping = new AdamW();
        var result = clipping.Step(backend, [clippedParameter], 1e-2);
        var norm = Math.Sqrt(gradient.Sum(g => (double)g * g));
        Assert.That(result.GradientNorm, Is.EqualTo(norm).Within(1e-12 * norm));
        Assert.That(result.ClipScale, Is.LessThan(1f));
        Assert.That(clippedParameter.Gradient.ToFloatArray(), Is.EqualTo(gradient), "gradients are left as they were");

        var prescaled = gradient.Select(g => g * result.ClipScale).ToArray();
        var plainParameter = new TrainableParameter("a.weight", scope.Add(Tensor.FromArray(weights, 5, 6)), scope.Add(Tensor.FromArray(prescaled, 5, 6)));
        using var plain = new AdamW(new AdamWOptions { MaxGradientNorm = 0 });
        plain.Step(backend, [plainParameter], 1e-2);
        Assert.That(clippedParameter.Value.ToFloatArray(), Is.EqualTo(plainParameter.Value.ToFloatArray()), "fused clipping = clipping first");
    }

    [Test]
    public void OneStepMatchesADoublePrecisionAdamW()
    {
        using var backend = new CpuBackend();
        using var scope = new TensorScope();
        var random = new Random(3);
        var weights = Enumerable.Range(0, 1000).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var grads = Enumerable.Range(0, 1000).Select(_ => (float)(random.NextDouble() - 0.5) * 1e-3f).ToArray();
        var parameter = new TrainableParameter("w.weight", scope.Add(Tensor.FromArray(weights, 10, 100)), scope.Add(Tensor.FromArray(grads, 10, 100)));
        using var optimizer = new AdamW();
        const double lr = 4e-4, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.05;
        double[] m = new double[1000], v = new double[1000], p = weights.Select(w => (double)w).ToArray();
        for (var t = 1; t <= 3; t++)
        {
            optimizer.Step(backend, [parameter], lr);
            for (var i = 0; i < p.Length; i++)
            {
                double g = grads[i];
                p[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                p[i] -= lr / (1 - Math.Pow(b1, t)) * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(b2, t)) + eps);
            }
        }
        var actual = parameter.Value.ToFloatArray();
        var moved = 0;
        for (var i = 0; i < p.Length; i++)
        {
            Assert.That(actual[i], Is.EqualTo(p[i]).Within(1e-7 + 1e-6 * Math.Abs(p[i])), $"element {i}");
            moved += actual[i] != weights[i] ? 1 : 0;
        }
        Assert.That(moved, Is.GreaterThan(990), "the step moves the weights");
    }

    [Test]
    public void NonFiniteGradientStopsTrainingNamingStepAndTensorBeforeAnyUpdate()
    {
        using var backend = new CpuBackend();
        using var scope = new TensorScope();
        var a = new TrainableParameter("encoder.model.norm.weight", scope.Add(Tensor.FromArray([1f, 2f], 2)), scope.Add(Tensor.FromArray([0.1f, 0.2f], 2)));
        var b = new TrainableParameter("upsampler.weight", scope.Add(Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2)), scope.Add(Tensor.FromArray([0.1f, 0.2f, 0.3f, 0.4f], 2, 2)));
        using var optimizer = new AdamW();
        optimizer.Step(backend, [a, b], 1e-3);
        var before = a.Value.ToFloatArray();
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            b.Gradient.AsSpan<float>()[3] = bad;
            var error = Assert.Throws<LrmNonFiniteException>(() => optimizer.Step(backend, [a, b], 1e-3))!;
            Assert.That(error.Step, Is.EqualTo(2));
            Assert.That(error.TensorName, Is.EqualTo("upsampler.weight"));
            Assert.That(error.Message, Does.Contain("step 2").And.Contain("'upsampler.weight'").And.Contain("1 NaN/inf"));
            Assert.That(a.Value.ToFloatArray(), Is.EqualTo(before), "no parameter was updated");
            Assert.That(optimizer.StepCount, Is.EqualTo(1));
        }
    }

    [Test]
    public void SumOfSquaresIsExactEnoughAndTheSameForAnyThreadCount()
    {
        var random = new Random(11);
        var values = Enumerable.Range(0, 200_003).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        using var input = Tensor.FromArray(values, values.Length);
        var reference = values.Sum(v => (double)v * v);
        double? first = null;
        try
        {
            foreach (var threads in new[] { 1, 2, 3 })
            {
                using var backend = new CpuBackend(threads);
                var sum = backend.SumOfSquares(input, out var nonFinite);
                Assert.That(nonFinite, Is.Zero);
                Assert.That(sum, Is.EqualTo(reference).Within(1e-12 * reference));
                first ??= sum;
                Assert.That(BitConverter.DoubleToInt64Bits(sum), Is.EqualTo(BitConverter.DoubleToInt64Bits(first.Value)), $"{threads} threads");
            }
        }
        finally
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(0));
        }
    }

    [Test]
    public void AdamWRejectsBadSettingsAndMismatchedGradients()
    {
        Assert.Throws<LrmInvalidArgumentException>(() => _ = new AdamW(new AdamWOptions { Beta2 = 1f }));
        Assert.Throws<LrmInvalidArgumentException>(() => _ = new AdamW(new AdamWOptions { WeightDecay = -0.1f }));
        using var backend = new CpuBackend();
        using var scope = new TensorScope();
        var parameter = new TrainableParameter("x.weight", scope.Add(Tensor.Zeros([2, 3])), scope.Add(Tensor.Zeros([3, 2])));
        using var optimizer = new AdamW();
        Assert.That(Assert.Throws<LrmShapeException>(() => optimizer.Step(backend, [parameter], 1e-3))!.Message, Does.Contain("x.weight"));
        Assert.Throws<LrmInvalidArgumentException>(() => optimizer.Step(backend, [parameter], double.NaN));
    }
}
