using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// One fp32 gradient buffer per trainable tensor of a model (<see cref="LrmWeightNames.Expected"/>), under the same
/// names, for the model backward to accumulate into (parameter gradients accumulate, as every backward op's do).
/// Owns its tensors.
/// </summary>
internal sealed class GradientSet : IDisposable
{
    private readonly Dictionary<string, Tensor> _gradients = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    private readonly IBackend? _backend;

    /// <summary>Zero gradients shaped like <paramref name="specs"/>, in <paramref name="backend"/>'s memory (default: the host's).</summary>
    public GradientSet(IEnumerable<WeightSpec> specs, IBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(specs);
        _backend = backend;
        try
        {
            foreach (var spec in specs)
            {
                _gradients.Add(spec.Name, backend is null ? Tensor.Zeros(spec.Shape) : backend.Zeros(spec.Shape));
                _order.Add(spec.Name);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Names in table order.</summary>
    public IReadOnlyList<string> Names => _order;

    /// <summary>The gradient of the tensor named <paramref name="name"/>.</summary>
    public Tensor this[string name] => _gradients.TryGetValue(name, out var gradient)
        ? gradient
        : throw new LrmInternalException($"gradient '{name}' is not in the model's weight table");

    /// <summary>Sets every gradient to zero (start of a step).</summary>
    public void Zero()
    {
        foreach (var gradient in _gradients.Values)
        {
            if (_backend is null)
            {
                gradient.AsSpan<float>().Clear();
            }
            else
            {
                _backend.Fill(gradient, 0f);
            }
        }
    }

    /// <summary>Frees the buffers.</summary>
    public void Dispose()
    {
        foreach (var gradient in _gradients.Values)
        {
            gradient.Dispose();
        }
        _gradients.Clear();
    }
}

/// <summary>Small gradient plumbing shared by the modules' backward passes (all through the backend).</summary>
internal static class GradientOps
{
    /// <summary>gradient += partial (same shape): for the ops whose gradient output overwrites (GEMM's dW).</summary>
    public static void Accumulate(IBackend backend, Tensor gradient, Tensor partial) => backend.Add(gradient, gradient, partial);

    /// <summary>
    /// destination[destinationOffset + i] += source[sourceOffset + i] for i &lt; count (flat row-major indices):
    /// gradients of tensors that were copied into a larger one (tokens, table rows, packed projections).
    /// </summary>
    public static void AddSlice(IBackend backend, Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count)
    {
        using var scratch = new ScratchTensors(backend);
        var part = scratch.Empty(count);
        var sum = scratch.Empty(count);
        backend.Copy(part, 0, source, sourceOffset, count);
        backend.Copy(sum, 0, destination, destinationOffset, count);
        backend.Add(sum, sum, part);
        backend.Copy(destination, destinationOffset, sum, 0, count);
    }

    /// <summary>A weight gradient through <see cref="IBackend.GemmBackward"/> (whose gradB overwrites), accumulated into <paramref name="gradWeight"/>.</summary>
    public static void LinearBackward(IBackend backend, Tensor? gradInput, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight)
    {
        using var partial = backend.Empty(weight.Shape);
        backend.GemmBackward(gradInput, partial, gradBias, gradOutput, input, weight, transposeB: true);
        Accumulate(backend, gradWeight, partial);
    }
}
