using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// Intermediate tensors of one forward pass, freed together when the pass ends. Outputs a module hands
/// back to its caller are allocated with <see cref="Tensor.Empty"/> instead, so the caller owns them.
/// </summary>
internal sealed class ScratchTensors : IDisposable
{
    private readonly List<Tensor> _tensors = [];

    /// <summary>A new fp32 host tensor, freed with this scope.</summary>
    public Tensor Empty(params ReadOnlySpan<long> shape)
    {
        var tensor = Tensor.Empty(shape);
        _tensors.Add(tensor);
        return tensor;
    }

    /// <summary>Takes ownership of <paramref name="tensor"/>: it is freed with this scope.</summary>
    public Tensor Adopt(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        _tensors.Add(tensor);
        return tensor;
    }

    /// <summary>Number of fp32 elements held by the scope (for the training renderer's memory accounting).</summary>
    public long ElementCount => _tensors.Sum(t => t.ElementCount);

    /// <summary>
    /// A copy of <paramref name="source"/> with another shape of the same element count (row-major order
    /// kept): how modules move between the token-major and image-shaped views of one buffer.
    /// </summary>
    public Tensor Reshaped(IBackend backend, Tensor source, params ReadOnlySpan<long> shape)
    {
        var tensor = Empty(shape);
        if (tensor.ElementCount != source.ElementCount)
        {
            throw new LrmInternalException($"cannot view {source.ShapeText} as {tensor.ShapeText}");
        }
        backend.Copy(tensor, 0, source, 0, source.ElementCount);
        return tensor;
    }

    /// <summary>Frees every tensor of the scope.</summary>
    public void Dispose()
    {
        foreach (var tensor in _tensors)
        {
            tensor.Dispose();
        }
        _tensors.Clear();
    }
}
