using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// Finite-difference checks of backward ops. The probe loss is L = Σ out·R with a fixed random R,
/// so ∂L/∂out = R is the upstream gradient handed to the backward op, and every input gradient the
/// op returns must equal the central difference (L(x + h) − L(x − h)) / (2h) of the forward.
/// The forward runs in fp32, L is summed in double. The step actually taken is
/// <c>(float)(x + h) − (float)(x − h)</c>, so rounding the perturbed input costs nothing.
/// With O(1) inputs, h ≈ 1e-2 balances truncation (O(h²)) against fp32 rounding of L (O(ε·√N/h)):
/// normalised errors come out around 1e-6..1e-4 for smooth ops, so tests pass tolerances well
/// below the default 1e-2 (the bound) where the op allows.
/// </summary>
internal static class GradientCheck
{
    /// <summary>A tensor of roughly normal values (sum of three uniforms), deterministic for a seed.</summary>
    public static Tensor Random(Random random, float scale, params long[] shape) => Random(random, scale, 0f, shape);

    /// <summary>As <see cref="Random(System.Random, float, long[])"/>, shifted by <paramref name="offset"/>.</summary>
    public static Tensor Random(Random random, float scale, float offset, params long[] shape)
    {
        var tensor = Tensor.Empty(shape);
        var span = tensor.AsSpan<float>();
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = offset + scale * (float)(random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5);
        }
        return tensor;
    }

    /// <summary>Uniform values in [<paramref name="low"/>, <paramref name="high"/>), deterministic for a seed.</summary>
    public static Tensor Uniform(Random random, float low, float high, params long[] shape)
    {
        var tensor = Tensor.Empty(shape);
        var span = tensor.AsSpan<float>();
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = low + (high - low) * (float)random.NextDouble();
        }
        return tensor;
    }

    /// <summary>L = Σ out·probe in double.</summary>
    public static double ProbeLoss(Tensor output, Tensor probe)
    {
        var o = output.AsSpan<float>();
        var r = probe.AsSpan<float>();
        Assert.That(o.Length, Is.EqualTo(r.Length), "probe size");
        double sum = 0;
        for (var i = 0; i < o.Length; i++)
        {
            sum += (double)o[i] * r[i];
        }
        return sum;
    }

    /// <summary>
    /// Up to <paramref name="max"/> distinct flat indices of a tensor of <paramref name="count"/> elements,
    /// drawn without replacement from those <paramref name="usable"/> accepts (all when null).
    /// </summary>
    public static int[] SampleIndices(long count, int max, Random random, Func<int, bool>? usable = null)
    {
        var candidates = Enumerable.Range(0, checked((int)count)).Where(i => usable?.Invoke(i) ?? true).ToArray();
        random.Shuffle(candidates);
        return candidates.Take(max).ToArray();
    }

    /// <summary>
    /// Central differences of <paramref name="loss"/> with respect to the elements <paramref name="indices"/>
    /// of <paramref name="input"/>, which is perturbed in place and restored bit for bit.
    /// </summary>
    public static double[] CentralDifferences(Tensor input, Func<double> loss, double step, IReadOnlyList<int> indices)
    {
        var result = new double[indices.Count];
        for (var n = 0; n < indices.Count; n++)
        {
            var i = indices[n];
            var original = input.AsSpan<float>()[i];
            var plus = (float)(original + step);
            var minus = (float)(original - step);
            input.AsSpan<float>()[i] = plus;
            var lossPlus = loss();
            input.AsSpan<float>()[i] = minus;
            var lossMinus = loss();
            input.AsSpan<float>()[i] = original;
            result[n] = (lossPlus - lossMinus) / ((double)plus - minus);
        }
        return result;
    }

    /// <summary>
    /// Asserts that <paramref name="analytic"/> (the gradient the backward op returned for
    /// <paramref name="input"/>) matches central differences of <paramref name="loss"/> on at most
    /// <paramref name="maxElements"/> sampled elements (those <paramref name="usable"/> accepts, e.g. away
    /// from kinks). <paramref name="loss"/> must run the forward on the current contents of
    /// <paramref name="input"/> and return the probe loss. The error is ‖analytic − fd‖ over the smaller of
    /// ‖analytic‖ and ‖fd‖, so neither side can hide a mismatch by being large; a sample on which either is
    /// all zero fails (the check would be vacuous), a NaN fails. The samples come from
    /// <paramref name="random"/> (a test's own generator), or a fixed seed when null. Returns the error,
    /// which is also written to the test output.
    /// </summary>
    public static double AssertMatches(string what, Tensor input, Tensor analytic, Func<double> loss, double step = 1e-2,
        double tolerance = 1e-2, int maxElements = 128, Random? random = null, Func<int, bool>? usable = null)
    {
        var gradient = analytic.AsSpan<float>().ToArray();
        Assert.That(gradient.Length, Is.EqualTo(input.ElementCount), $"{what}: gradient size");
        var indices = SampleIndices(input.ElementCount, maxElements, random ?? new Random(7), usable);
        Assert.That(indices, Is.Not.Empty, $"{what}: no element to perturb");
        var numerical = CentralDifferences(input, loss, step, indices);
        double difference = 0, analyticNorm = 0, numericalNorm = 0;
        var worst = -1;
        for (var n = 0; n < indices.Length; n++)
        {
            var a = gradient[indices[n]];
            var d = a - numerical[n];
            if (worst < 0 || !(Math.Abs(d) <= Math.Abs(gradient[indices[worst]] - numerical[worst])))
            {
                worst = n;
            }
            difference += d * d;
            analyticNorm += (double)a * a;
            numericalNorm += numerical[n] * numerical[n];
        }
        var error = double.PositiveInfinity; // a NaN or infinity on either side
        if (double.IsFinite(difference + analyticNorm + numericalNorm))
        {
            var reference = Math.Sqrt(Math.Min(analyticNorm, numericalNorm));
            Assert.That(reference, Is.GreaterThan(0),
                $"{what}: the gradient is zero on every sampled element (‖analytic‖² {analyticNorm:G3}, ‖fd‖² {numericalNorm:G3})");
            error = Math.Sqrt(difference) / reference;
        }
        TestContext.Out.WriteLine($"{what}: ‖analytic − fd‖/min(‖analytic‖, ‖fd‖) = {error:G3} over {indices.Length} elements");
        Assert.That(error, Is.LessThan(tolerance),
            $"{what}: ‖analytic − fd‖/min(‖analytic‖, ‖fd‖) over {indices.Length} elements; worst element {indices[worst]}: fd {numerical[worst]:G6}, analytic {gradient[indices[worst]]:G6}");
        return error;
    }

    /// <summary>Asserts that <paramref name="call"/> throws an <see cref="LrmShapeException"/> that starts with the op's name and contains <paramref name="detail"/> (e.g. the tensor's quoted name).</summary>
    public static void AssertShapeError(Action call, string op, string detail)
    {
        var error = Assert.Throws<LrmShapeException>(() => call())!;
        Assert.That(error.Message, Does.StartWith(op + ":"), "the message names the op");
        Assert.That(error.Message, Does.Contain(detail), "the message names the tensor");
    }
}

/// <summary>
/// PyTorch autograd golden cases in tests/golden/grad/: make_grad_golden.py writes core_*,
/// make_grad_golden_spatial.py spatial_* (tests/golden/README.md).
/// </summary>
internal static class GradGolden
{
    public static string DataDirectory => Path.Combine(Golden.DataDirectory, "grad");

    /// <summary>One NUnit case per file <c>&lt;name&gt;_*.safetensors</c>, e.g. name "core_gemm".</summary>
    public static IEnumerable<TestCaseData> Cases(string name)
    {
        var files = Directory.Exists(DataDirectory)
            ? Directory.GetFiles(DataDirectory, $"{name}_*.safetensors").Order(StringComparer.Ordinal).ToArray()
            : [];
        if (files.Length == 0)
        {
            throw new InvalidOperationException($"no gradient golden files for '{name}' in {DataDirectory}; regenerate with /usr/bin/python3 tests/golden/make_grad_golden.py (core_*) or make_grad_golden_spatial.py (spatial_*)");
        }
        foreach (var file in files)
        {
            yield return new TestCaseData(file).SetArgDisplayNames(Path.GetFileNameWithoutExtension(file));
        }
    }

    /// <summary>Reads a tensor into <paramref name="scope"/>.</summary>
    public static Tensor Read(this SafeTensorsFile file, TensorScope scope, string name) => scope.Add(file.ReadTensor(name));
}

/// <summary>
/// Accumulating (parameter-gradient) outputs, guarded like <see cref="GuardedOutputs"/>. They start at
/// zero or at known random values (an accumulating op reads them), and
/// <see cref="AssertAccumulated"/> checks that the op added (+=) its gradient, once per call.
/// </summary>
internal sealed class GuardedAccumulators : IDisposable
{
    private readonly List<(string Name, Tensor Tensor, float[] Initial)> _tensors = [];

    public Tensor Zeros(string name, ReadOnlySpan<long> shape)
    {
        var tensor = Tensor.CreateGuarded(shape, GuardedOutputs.Poison);
        tensor.AsSpan<float>().Clear();
        _tensors.Add((name, tensor, new float[tensor.ElementCount]));
        return tensor;
    }

    public Tensor ZerosLike(string name, Tensor reference) => Zeros(name, reference.Shape);

    /// <summary>Starts at values in [−0.5, 0.5) from <paramref name="seed"/>, so one call tells += from =.</summary>
    public Tensor Prefilled(string name, ReadOnlySpan<long> shape, int seed)
    {
        var tensor = Tensor.CreateGuarded(shape, GuardedOutputs.Poison);
        var span = tensor.AsSpan<float>();
        var random = new Random(seed);
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = (float)(random.NextDouble() - 0.5);
        }
        _tensors.Add((name, tensor, span.ToArray()));
        return tensor;
    }

    public void AssertGuardsIntact()
    {
        foreach (var (name, tensor, _) in _tensors)
        {
            Assert.That(tensor.GuardsIntact(GuardedOutputs.Poison), Is.True, $"'{name}': write outside the tensor (guard region changed)");
        }
    }

    /// <summary>
    /// Asserts that <paramref name="tensor"/> (one of this set) is intact outside and that
    /// ‖(tensor − initial) − calls·expected‖/‖calls·expected‖ &lt; <paramref name="tolerance"/>.
    /// The subtraction loses up to ~1 ulp of prefilled values (|v| ≤ 0.5): ~3e-8 absolute.
    /// </summary>
    public void AssertAccumulated(Tensor tensor, Tensor expected, int calls, double tolerance, string what)
    {
        var (name, _, initial) = _tensors.Single(t => ReferenceEquals(t.Tensor, tensor));
        Assert.That(tensor.GuardsIntact(GuardedOutputs.Poison), Is.True, $"{what} ('{name}'): write outside the tensor (guard region changed)");
        var span = tensor.AsSpan<float>();
        var added = new float[span.Length];
        for (var i = 0; i < span.Length; i++)
        {
            added[i] = span[i] - initial[i];
        }
        var scaled = expected.AsSpan<float>().ToArray();
        for (var i = 0; i < scaled.Length; i++)
        {
            scaled[i] *= calls;
        }
        var error = Compare.RelativeError(added, scaled);
        TestContext.Out.WriteLine($"{what}: ‖(grad − initial) − {calls}·ref‖/‖{calls}·ref‖ = {error:G3}");
        Assert.That(error, Is.LessThan(tolerance), $"{what}: ‖(grad − initial) − {calls}·ref‖/‖{calls}·ref‖ (accumulation)");
    }

    public void Dispose()
    {
        foreach (var (_, tensor, _) in _tensors)
        {
            tensor.Dispose();
        }
    }
}
