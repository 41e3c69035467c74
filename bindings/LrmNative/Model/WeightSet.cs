using System.Text;
using LrmNative.Backends;
using LrmNative.IO;

namespace LrmNative.Model;

/// <summary>
/// Named fp32 host tensors read from a safetensors checkpoint after checking it against a weight table:
/// every expected tensor must be present with its exact shape and a floating-point dtype (F32, or F16,
/// BF16 and F64 widened/narrowed to fp32). All problems are reported in one error naming the file, the
/// keys, and the expected and actual shapes. Tensors the table does not name (e.g. DINOv2's mask_token)
/// are not read; their names are kept in <see cref="Ignored"/>. Owns the tensors it hands out.
/// </summary>
internal sealed class WeightSet : IDisposable
{
    private const int MaxProblemsListed = 12;
    private readonly Dictionary<string, Tensor> _tensors;

    private WeightSet(string source, Dictionary<string, Tensor> tensors, IReadOnlyList<string> ignored)
    {
        Source = source;
        _tensors = tensors;
        Ignored = ignored;
    }

    /// <summary>The file the weights came from.</summary>
    public string Source { get; }

    /// <summary>Names in the file that the table does not use, sorted.</summary>
    public IReadOnlyList<string> Ignored { get; }

    /// <summary>Number of tensors held.</summary>
    public int Count => _tensors.Count;

    /// <summary>Sum of the element counts of the tensors held.</summary>
    public long ParameterCount => _tensors.Values.Sum(t => t.ElementCount);

    /// <summary>
    /// Opens <paramref name="path"/>, checks it against <paramref name="expected"/> and reads those tensors.
    /// </summary>
    public static WeightSet Load(string path, IEnumerable<WeightSpec> expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        using var file = SafeTensorsSet.Open(path);
        var specs = expected.ToList();
        Check(file, specs);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var spec in specs)
            {
                tensors[spec.Name] = ReadFloat32(file, spec);
            }
        }
        catch
        {
            foreach (var tensor in tensors.Values)
            {
                tensor.Dispose();
            }
            throw;
        }
        var wanted = specs.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var ignored = file.Tensors.Select(t => t.Name).Where(n => !wanted.Contains(n)).Order(StringComparer.Ordinal).ToList();
        return new WeightSet(path, tensors, ignored);
    }

    /// <summary>A set over tensors made in memory (e.g. a fresh initialisation), checked against <paramref name="expected"/>; takes ownership.</summary>
    public static WeightSet FromTensors(string source, IReadOnlyDictionary<string, Tensor> tensors, IEnumerable<WeightSpec> expected)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(expected);
        foreach (var spec in expected)
        {
            if (!tensors.TryGetValue(spec.Name, out var tensor) || !tensor.Shape.SequenceEqual(spec.Shape) || tensor.DataType != DataType.Float32)
            {
                throw new LrmInternalException($"{source}: weight '{spec.Name}' must be fp32 {Tensor.FormatShape(spec.Shape)}");
            }
        }
        return new WeightSet(source, new Dictionary<string, Tensor>(tensors, StringComparer.Ordinal), []);
    }

    /// <summary>
    /// A copy of every tensor in <paramref name="backend"/>'s memory (e.g. uploaded to the GPU once, before the first
    /// forward), under the same names; this set is left as it was.
    /// </summary>
    public WeightSet CopyTo(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var copies = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, tensor) in _tensors)
            {
                copies[name] = backend.ToBackend(tensor);
            }
        }
        catch
        {
            foreach (var copy in copies.Values)
            {
                copy.Dispose();
            }
            throw;
        }
        return new WeightSet(Source, copies, Ignored);
    }

    /// <summary>True if the set holds a tensor of this name.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>
    /// Checks <paramref name="path"/> against <paramref name="expected"/> from its header alone (no tensor data
    /// is read) and returns the names the table does not use, sorted.
    /// </summary>
    public static IReadOnlyList<string> Inspect(string path, IEnumerable<WeightSpec> expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        using var file = SafeTensorsSet.Open(path);
        var specs = expected.ToList();
        Check(file, specs);
        var wanted = specs.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        return file.Tensors.Select(t => t.Name).Where(n => !wanted.Contains(n)).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The tensor named <paramref name="name"/>; throws naming the file if it was not loaded.</summary>
    public Tensor this[string name] => _tensors.TryGetValue(name, out var tensor)
        ? tensor
        : throw new LrmInternalException($"{Source}: weight '{name}' was not loaded (not in the weight table)");

    /// <summary>
    /// Removes a tensor from the set and hands its ownership to the caller (a module that repacks it,
    /// e.g. splits a packed projection, then disposes the original).
    /// </summary>
    public Tensor Detach(string name)
    {
        var tensor = this[name];
        _tensors.Remove(name);
        return tensor;
    }

    /// <summary>Frees every tensor still held.</summary>
    public void Dispose()
    {
        foreach (var tensor in _tensors.Values)
        {
            tensor.Dispose();
        }
        _tensors.Clear();
    }

    private static readonly HashSet<string> FloatTypes = new(StringComparer.Ordinal) { "F32", "F16", "BF16", "F64" };

    private static void Check(SafeTensorsSet file, List<WeightSpec> specs)
    {
        var problems = new List<string>();
        foreach (var spec in specs)
        {
            if (!file.Contains(spec.Name))
            {
                problems.Add($"'{spec.Name}' is missing (expected shape {Tensor.FormatShape(spec.Shape)})");
                continue;
            }
            var info = file.Info(spec.Name);
            if (!info.Shape.AsSpan().SequenceEqual(spec.Shape))
            {
                problems.Add($"'{spec.Name}' has shape {Tensor.FormatShape(info.Shape)}, expected {Tensor.FormatShape(spec.Shape)}");
            }
            else if (!FloatTypes.Contains(info.DType))
            {
                problems.Add($"'{spec.Name}' has dtype {info.DType}, expected a floating-point type (F32, F16, BF16, F64)");
            }
        }
        if (problems.Count == 0)
        {
            return;
        }
        var message = new StringBuilder();
        message.Append(file.Path).Append(": ").Append(problems.Count).Append(problems.Count == 1 ? " tensor does" : " tensors do")
            .Append(" not match the model config: ");
        message.AppendJoin("; ", problems.Take(MaxProblemsListed));
        if (problems.Count > MaxProblemsListed)
        {
            message.Append("; and ").Append(problems.Count - MaxProblemsListed).Append(" more");
        }
        throw new LrmFormatException(message.ToString());
    }

    private static Tensor ReadFloat32(SafeTensorsSet file, WeightSpec spec)
    {
        var tensor = file.ReadTensor(spec.Name, spec.Shape);
        if (tensor.DataType == DataType.Float32)
        {
            return tensor;
        }
        using (tensor)
        {
            return Tensor.FromArray(tensor.ToFloatArray(), spec.Shape);
        }
    }
}
