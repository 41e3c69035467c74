namespace LrmNative.Backends;

/// <summary>
/// Allocation and transfer helpers over <see cref="IBackend"/>'s memory ops, so model code never asks where a
/// tensor lives: on the CPU backend "upload" and "download" are copies, on CUDA they cross the bus.
/// </summary>
public static class BackendMemory
{
    /// <summary>A new tensor of <paramref name="backend"/> filled with zeros.</summary>
    public static Tensor Zeros(this IBackend backend, ReadOnlySpan<long> shape, DataType dataType = DataType.Float32)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return Written(backend.Empty(shape, dataType), tensor => backend.Fill(tensor, 0f));
    }

    /// <summary>A copy of the host tensor <paramref name="host"/> on <paramref name="backend"/>.</summary>
    public static Tensor ToBackend(this IBackend backend, Tensor host)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(host);
        return Written(backend.Empty(host.Shape, host.DataType), tensor => backend.Upload(tensor, host));
    }

    /// <summary>An fp32 tensor of <paramref name="backend"/> holding <paramref name="values"/>.</summary>
    public static Tensor FromArray(this IBackend backend, ReadOnlySpan<float> values, params ReadOnlySpan<long> shape)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend.Device.Kind == DeviceKind.Cpu)
        {
            return Tensor.FromArray(values, shape);
        }
        using var host = Tensor.FromArray(values, shape);
        return backend.ToBackend(host);
    }

    /// <summary>A host copy of <paramref name="tensor"/>, a tensor of <paramref name="backend"/>.</summary>
    public static Tensor ToHost(this IBackend backend, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tensor);
        return Written(Tensor.Empty(tensor.Shape, tensor.DataType), host => backend.Download(host, tensor));
    }

    // A new tensor (or device block) after write has filled it; freed if write fails, so nothing leaks between an
    // allocation and the caller's `using`.
    internal static T Written<T>(T resource, Action<T> write) where T : IDisposable
    {
        try
        {
            write(resource);
            return resource;
        }
        catch
        {
            resource.Dispose();
            throw;
        }
    }

    /// <summary>The fp32 contents of <paramref name="tensor"/>, a tensor of <paramref name="backend"/>.</summary>
    public static float[] ToFloatArray(this IBackend backend, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Device.Kind == DeviceKind.Cpu)
        {
            return tensor.ToFloatArray();
        }
        using var host = backend.ToHost(tensor);
        return host.ToFloatArray();
    }

    /// <summary>
    /// <paramref name="host"/> as a tensor of <paramref name="backend"/>: the tensor itself when the backend computes on
    /// the host, else an uploaded copy that the lease frees.
    /// </summary>
    public static TensorLease Borrow(this IBackend backend, Tensor host)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(host);
        return host.Device == backend.Device ? new TensorLease(host, owned: false) : new TensorLease(backend.ToBackend(host), owned: true);
    }

    /// <summary>
    /// <paramref name="tensor"/>, a tensor of <paramref name="backend"/>, readable on the host: the tensor itself when it
    /// is a host tensor, else a downloaded copy that the lease frees.
    /// </summary>
    public static TensorLease BorrowHost(this IBackend backend, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.Device.Kind == DeviceKind.Cpu ? new TensorLease(tensor, owned: false) : new TensorLease(backend.ToHost(tensor), owned: true);
    }

    /// <summary>The bits of <paramref name="value"/> rounded to bf16 (nearest, ties to even; NaN stays NaN).</summary>
    public static ushort BFloat16Bits(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Throws unless both tensors have the same shape and element type.</summary>
    internal static void SameLayout(string op, Tensor a, Tensor b)
    {
        if (a.DataType != b.DataType || !a.Shape.SequenceEqual(b.Shape))
        {
            throw new LrmShapeException($"{op}: {a} and {b} differ in shape or type");
        }
    }
}

/// <summary>A tensor that is either borrowed (left alone) or a copy made for the borrower (freed by <see cref="Dispose"/>).</summary>
public readonly struct TensorLease : IDisposable, IEquatable<TensorLease>
{
    private readonly bool _owned;

    internal TensorLease(Tensor tensor, bool owned)
    {
        Tensor = tensor;
        _owned = owned;
    }

    /// <summary>The tensor to use.</summary>
    public Tensor Tensor { get; }

    /// <summary>Frees the tensor if it is a copy.</summary>
    public void Dispose()
    {
        if (_owned)
        {
            Tensor.Dispose();
        }
    }

    /// <inheritdoc />
    public bool Equals(TensorLease other) => ReferenceEquals(Tensor, other.Tensor) && _owned == other._owned;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is TensorLease other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Tensor, _owned);

    /// <summary>Equality of tensor and ownership.</summary>
    public static bool operator ==(TensorLease left, TensorLease right) => left.Equals(right);

    /// <summary>Inequality of tensor or ownership.</summary>
    public static bool operator !=(TensorLease left, TensorLease right) => !left.Equals(right);
}

/// <summary>
/// Named tensors readable on the host, for writers (safetensors files): host tensors as they are, device tensors as
/// downloaded copies that <see cref="Dispose"/> frees.
/// </summary>
internal sealed class HostTensorSet : IDisposable
{
    private readonly List<TensorLease> _leases = [];

    private HostTensorSet()
    {
    }

    /// <summary>The tensors under their names, in the order given.</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> Tensors { get; private set; } = [];

    /// <summary>Host views of <paramref name="tensors"/>, which live on the host or in <paramref name="backend"/>'s memory (null: all on the host).</summary>
    public static HostTensorSet Of(IBackend? backend, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var set = new HostTensorSet();
        try
        {
            set.Tensors = tensors.Select(entry =>
            {
                if (entry.Value.Device.Kind == DeviceKind.Cpu)
                {
                    return entry;
                }
                if (backend is null)
                {
                    throw new LrmInternalException($"tensor '{entry.Key}' lives on {entry.Value.Device}; reading it needs that backend");
                }
                var lease = backend.BorrowHost(entry.Value);
                set._leases.Add(lease);
                return new KeyValuePair<string, Tensor>(entry.Key, lease.Tensor);
            }).ToList();
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>Frees the downloaded copies.</summary>
    public void Dispose()
    {
        foreach (var lease in _leases)
        {
            lease.Dispose();
        }
        _leases.Clear();
    }
}
