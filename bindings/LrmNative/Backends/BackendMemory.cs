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
        var tensor = backend.Empty(shape, dataType);
        try
        {
            backend.Fill(tensor, 0f);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>A copy of the host tensor <paramref name="host"/> on <paramref name="backend"/>.</summary>
    public static Tensor ToBackend(this IBackend backend, Tensor host)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(host);
        var tensor = backend.Empty(host.Shape, host.DataType);
        try
        {
            backend.Upload(tensor, host);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
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
        var host = Tensor.Empty(tensor.Shape, tensor.DataType);
        try
        {
            backend.Download(host, tensor);
            return host;
        }
        catch
        {
            host.Dispose();
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
