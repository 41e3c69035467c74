using System.Globalization;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>PyTorch golden cases written by tests/golden/make_golden.py (see its README).</summary>
internal static class Golden
{
    public static string DataDirectory => Path.Combine(AppContext.BaseDirectory, "golden");

    /// <summary>The tiny OpenLRM-layout checkpoint of tests/golden/model/tiny (tests/golden/make_model_golden.py).</summary>
    public static string TinyModelDirectory => Path.Combine(DataDirectory, "model", "tiny");

    /// <summary>The bundled example image (examples/sphere_on_box.png, copied next to the tests).</summary>
    public static string ExampleImagePath => Path.Combine(AppContext.BaseDirectory, "examples", "sphere_on_box.png");

    /// <summary>A model-module golden case, tests/golden/model/&lt;name&gt;.safetensors.</summary>
    public static string ModelCasePath(string name) => Path.Combine(DataDirectory, "model", name + ".safetensors");

    /// <summary>The model config a model golden case was made with (its "config" metadata).</summary>
    public static Model.ModelConfig ModelConfigOf(SafeTensorsFile file) => Model.ModelConfig.Parse(file.Metadata["config"], file.Path);

    /// <summary>One NUnit case per golden file of <paramref name="op"/>, named by the case.</summary>
    public static IEnumerable<TestCaseData> Cases(string op)
    {
        var files = Directory.Exists(DataDirectory)
            ? Directory.GetFiles(DataDirectory, $"{op}_*.safetensors").Order(StringComparer.Ordinal).ToArray()
            : [];
        if (files.Length == 0)
        {
            throw new InvalidOperationException($"no golden files for '{op}' in {DataDirectory}; regenerate with /usr/bin/python3 tests/golden/make_golden.py");
        }
        foreach (var file in files)
        {
            yield return new TestCaseData(file).SetArgDisplayNames(Path.GetFileNameWithoutExtension(file));
        }
    }

    public static long Long(this SafeTensorsFile file, string key) =>
        long.Parse(file.Metadata[key], CultureInfo.InvariantCulture);

    public static float Float(this SafeTensorsFile file, string key) =>
        float.Parse(file.Metadata[key], CultureInfo.InvariantCulture);

    public static bool Flag(this SafeTensorsFile file, string key) =>
        file.Metadata.TryGetValue(key, out var value) && value == "1";

    public static Tensor? Optional(this SafeTensorsFile file, string name) =>
        file.Contains(name) ? file.ReadTensor(name) : null;
}

/// <summary>Comparison helpers: normalised error as in DESIGN.md, NaN never passes.</summary>
internal static class Compare
{
    /// <summary>‖actual − expected‖₂ / ‖expected‖₂ in double precision (absolute error if the reference is zero).</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "element count");
        double difference = 0, reference = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            if (float.IsNaN(actual[i]) != float.IsNaN(expected[i]))
            {
                return double.PositiveInfinity;
            }
            if (float.IsNaN(expected[i]))
            {
                continue;
            }
            var d = (double)actual[i] - expected[i];
            difference += d * d;
            reference += (double)expected[i] * expected[i];
        }
        return reference == 0 ? Math.Sqrt(difference) : Math.Sqrt(difference / reference);
    }

    public static void Close(Tensor actual, Tensor expected, double tolerance, string what)
    {
        Assert.That(actual.Shape.ToArray(), Is.EqualTo(expected.Shape.ToArray()), $"{what}: shape");
        var error = RelativeError(actual.AsSpan<float>(), expected.AsSpan<float>());
        TestContext.Out.WriteLine($"{what}: ‖out−ref‖/‖ref‖ = {error:G3}");
        Assert.That(error, Is.LessThan(tolerance), $"{what}: ‖out−ref‖/‖ref‖");
    }
}

/// <summary>
/// Output buffers poisoned before each call, with guard regions before and after: after the
/// call every element must have been written and both guards must be untouched.
/// </summary>
internal sealed class GuardedOutputs : IDisposable
{
    // A signalling-NaN bit pattern no kernel produces from finite inputs.
    public const uint Poison = 0x7FA5A5A5;
    private readonly List<(string Name, Tensor Tensor)> _outputs = [];

    /// <summary>A plain host tensor (no guards) every element of which is <see cref="Poison"/>; the caller owns it.</summary>
    public static Tensor Poisoned(ReadOnlySpan<long> shape)
    {
        var tensor = Tensor.Empty(shape);
        System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(tensor.AsSpan<float>()).Fill(Poison);
        return tensor;
    }

    public Tensor Create(string name, ReadOnlySpan<long> shape)
    {
        var tensor = Tensor.CreateGuarded(shape, Poison);
        _outputs.Add((name, tensor));
        return tensor;
    }

    public Tensor Like(string name, Tensor reference) => Create(name, reference.Shape);

    /// <summary>Asserts every output was fully written and no guard was touched.</summary>
    public void AssertWrittenExactly()
    {
        foreach (var (name, tensor) in _outputs)
        {
            Assert.That(tensor.GuardsIntact(Poison), Is.True, $"'{name}': write outside the tensor (guard region changed)");
            Assert.That(tensor.CountBits(Poison), Is.Zero, $"'{name}': elements left unwritten");
        }
    }

    public void Dispose()
    {
        foreach (var (_, tensor) in _outputs)
        {
            tensor.Dispose();
        }
    }
}

/// <summary>Disposes a set of tensors at the end of a test.</summary>
internal sealed class TensorScope : IDisposable
{
    private readonly List<IDisposable> _items = [];

    public T Add<T>(T item) where T : IDisposable
    {
        _items.Add(item);
        return item;
    }

    public Tensor? AddOptional(Tensor? item)
    {
        if (item is not null)
        {
            _items.Add(item);
        }
        return item;
    }

    public void Dispose()
    {
        for (var i = _items.Count - 1; i >= 0; i--)
        {
            _items[i].Dispose();
        }
    }
}
