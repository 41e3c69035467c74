using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// Intermediate tensors of one forward pass, allocated by <paramref name="backend"/> (host or device memory) and freed
/// together when the pass ends. Outputs a module hands back to its caller are allocated with
/// <see cref="IBackend.Empty"/> instead, so the caller owns them.
/// </summary>
internal sealed class ScratchTensors(IBackend backend) : IDisposable
{
    private readonly List<Tensor> _tensors = [];

    /// <summary>The backend the scope allocates from.</summary>
    public IBackend Backend { get; } = backend ?? throw new ArgumentNullException(nameof(backend));

    /// <summary>A new fp32 tensor of the backend, freed with this scope.</summary>
    public Tensor Empty(params ReadOnlySpan<long> shape)
    {
        var tensor = Backend.Empty(shape);
        _tensors.Add(tensor);
        return tensor;
    }

    /// <summary>A new fp32 tensor of the backend filled with zeros, freed with this scope.</summary>
    public Tensor Zeros(params ReadOnlySpan<long> shape)
    {
        var tensor = Empty(shape);
        Backend.Fill(tensor, 0f);
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
