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

    /// <summary>Up to <paramref name="max"/> distinct flat indices of a tensor of <paramref name="count"/> elements (all when count ≤ max), sorted.</summary>
    public static long[] SampleIndices(long count, int max, Random random)
    {
        if (count <= max)
        {
            return Enumerable.Range(0, (int)count).Select(i => (long)i).ToArray();
        }
        var chosen = new HashSet<long>();
        while (chosen.Count < max)
        {
            chosen.Add(random.NextInt64(count));
        }
        return chosen.Order().ToArray();
    }

    /// <summary>
    /// Central differences of <paramref name="loss"/> with respect to the elements <paramref name="indices"/>
    /// of <paramref name="input"/>, which is perturbed in place and restored bit for bit.
    /// </summary>
    public static double[] CentralDifferences(Tensor input, Func<double> loss, double step, IReadOnlyList<long> indices)
    {
        var result = new double[indices.Count];
        for (var n = 0; n < indices.Count; n++)
        {
            var i = (int)indices[n];
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

    /// <summary>‖analytic[indices] − numerical‖ / ‖numerical‖ (absolute when the reference is zero); NaN gives +∞.</summary>
    public static double RelativeError(ReadOnlySpan<float> analytic, IReadOnlyList<long> indices, IReadOnlyList<double> numerical)
    {
        double difference = 0, reference = 0;
        for (var n = 0; n < indices.Count; n++)
        {
            var a = analytic[(int)indices[n]];
            if (!float.IsFinite(a) || !double.IsFinite(numerical[n]))
            {
                return double.PositiveInfinity;
            }
            var d = a - numerical[n];
            difference += d * d;
            reference += numerical[n] * numerical[n];
        }
        return reference == 0 ? Math.Sqrt(difference) : Math.Sqrt(difference / reference);
    }

    /// <summary>
    /// Asserts that <paramref name="analytic"/> (the gradient the backward op returned for
    /// <paramref name="input"/>) matches central differences of <paramref name="loss"/> on at most
    /// <paramref name="maxElements"/> sampled elements. <paramref name="loss"/> must run the forward
    /// on the current contents of <paramref name="input"/> and return the probe loss.
    /// Returns the error found (for messages).
    /// </summary>
    public static double AssertMatches(string what, Tensor input, Tensor analytic, Func<double> loss, double step = 1e-2,
        double tolerance = 1e-2, int maxElements = 128, int seed = 7)
    {
        Assert.That(analytic.ElementCount, Is.EqualTo(input.ElementCount), $"{what}: gradient size");
        var indices = SampleIndices(input.ElementCount, maxElements, new Random(seed));
        var numerical = CentralDifferences(input, loss, step, indices);
        var error = RelativeError(analytic.AsSpan<float>(), indices, numerical);
        Assert.That(error, Is.LessThan(tolerance), $"{what}: ‖analytic − finite differences‖/‖finite differences‖ over {indices.Length} elements");
        return error;
    }

    /// <summary>Asserts ‖actual − factor·expected‖/‖factor·expected‖ &lt; tolerance (factor 2 after two accumulating calls).</summary>
    public static void CloseScaled(Tensor actual, Tensor expected, float factor, double tolerance, string what)
    {
        var scaled = expected.AsSpan<float>().ToArray();
        for (var i = 0; i < scaled.Length; i++)
        {
            scaled[i] *= factor;
        }
        var error = Compare.RelativeError(actual.AsSpan<float>(), scaled);
        Assert.That(error, Is.LessThan(tolerance), $"{what}: ‖out − {factor}·ref‖/‖{factor}·ref‖");
    }
}

/// <summary>PyTorch autograd golden cases in tests/golden/grad/ (make_grad_golden.py writes core_*, other scripts other prefixes).</summary>
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
            throw new InvalidOperationException($"no gradient golden files for '{name}' in {DataDirectory}; regenerate with /usr/bin/python3 tests/golden/make_grad_golden.py");
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
/// Accumulating (parameter-gradient) outputs: guarded like <see cref="GuardedOutputs"/>, but their
/// contents start at zero, since an accumulating op reads them. Only the guards can be checked.
/// </summary>
internal sealed class GuardedAccumulators : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> _tensors = [];

    public Tensor Zeros(string name, ReadOnlySpan<long> shape)
    {
        var tensor = Tensor.CreateGuarded(shape, GuardedOutputs.Poison);
        tensor.AsSpan<float>().Clear();
        _tensors.Add((name, tensor));
        return tensor;
    }

    public Tensor ZerosLike(string name, Tensor reference) => Zeros(name, reference.Shape);

    public void AssertGuardsIntact()
    {
        foreach (var (name, tensor) in _tensors)
        {
            Assert.That(tensor.GuardsIntact(GuardedOutputs.Poison), Is.True, $"'{name}': write outside the tensor (guard region changed)");
        }
    }

    public void Dispose()
    {
        foreach (var (_, tensor) in _tensors)
        {
            tensor.Dispose();
        }
    }
}
