namespace LrmNative.Backends;

/// <summary>
/// Argument checks shared by the backends. Every failure names the op, the tensor and
/// what was expected, e.g. "LayerNorm: tensor 'weight' must have shape (53,), got (52,)".
/// </summary>
internal static class Expect
{
    public static void Float32(string op, string name, Tensor? tensor)
    {
        if (tensor is not null && tensor.DataType != DataType.Float32)
        {
            throw new LrmShapeException($"{op}: tensor '{name}' must be Float32, got {tensor.DataType} {tensor.ShapeText}");
        }
    }

    public static void Host(string op, string name, Tensor? tensor)
    {
        if (tensor is null)
        {
            return;
        }
        ObjectDisposedException.ThrowIf(tensor.IsDisposed, tensor);
        if (tensor.Device.Kind != DeviceKind.Cpu)
        {
            throw new LrmShapeException($"{op}: tensor '{name}' lives on {tensor.Device}, but the CPU backend needs host tensors");
        }
    }

    /// <summary>Checks rank and every size; -1 in <paramref name="expected"/> accepts any size.</summary>
    public static void Shape(string op, string name, Tensor? tensor, params ReadOnlySpan<long> expected)
    {
        if (tensor is null)
        {
            return;
        }
        var matches = tensor.Rank == expected.Length;
        for (var i = 0; matches && i < expected.Length; i++)
        {
            matches = expected[i] < 0 || tensor.Shape[i] == expected[i];
        }
        if (!matches)
        {
            throw new LrmShapeException($"{op}: tensor '{name}' must have shape {Describe(expected)}, got {tensor.ShapeText}");
        }
    }

    public static void Rank(string op, string name, Tensor tensor, int minimum, string meaning)
    {
        if (tensor.Rank < minimum)
        {
            throw new LrmShapeException($"{op}: tensor '{name}' must be {meaning}, got {tensor.ShapeText}");
        }
    }

    public static void Positive(string op, string name, long value)
    {
        if (value <= 0)
        {
            throw new LrmInvalidArgumentException($"{op}: {name} must be > 0, got {value}");
        }
    }

    public static void NotEmpty(string op, string name, Tensor tensor)
    {
        if (tensor.ElementCount == 0)
        {
            throw new LrmShapeException($"{op}: tensor '{name}' is empty {tensor.ShapeText}");
        }
    }

    /// <summary>Float32 host tensor checks for a list of (name, tensor) pairs.</summary>
    public static void HostFloat32(string op, params ReadOnlySpan<(string Name, Tensor? Tensor)> tensors)
    {
        foreach (var (name, tensor) in tensors)
        {
            Host(op, name, tensor);
            Float32(op, name, tensor);
        }
    }

    /// <summary>Each tensor (when given) must live on <paramref name="device"/>, in the backend's own memory (<paramref name="owns"/>), and be fp32.</summary>
    public static void DeviceFloat32(string op, Device device, Predicate<Tensor> owns, params ReadOnlySpan<(string Name, Tensor? Tensor)> tensors)
    {
        foreach (var (name, tensor) in tensors)
        {
            OnDevice(op, device, owns, name, tensor);
            Float32(op, name, tensor);
        }
    }

    /// <summary>
    /// The tensor (when given) must live on <paramref name="device"/>, in memory of the backend itself (<paramref name="owns"/>):
    /// another backend's tensor on the same device is written by work on that backend's stream, which nothing orders
    /// against this one's, so it could be read before it is written or freed while in use.
    /// </summary>
    public static void OnDevice(string op, Device device, Predicate<Tensor> owns, string name, Tensor? tensor)
    {
        if (tensor is null)
        {
            return;
        }
        ObjectDisposedException.ThrowIf(tensor.IsDisposed, tensor);
        if (tensor.Device != device)
        {
            throw new LrmShapeException($"{op}: tensor '{name}' lives on {tensor.Device}, but this backend computes on {device}; move it with Upload/Download");
        }
        if (!owns(tensor))
        {
            throw new LrmInvalidArgumentException(
                $"{op}: tensor '{name}' lives on {device} but belongs to another backend, whose work runs on its own stream with no ordering "
                + "against this one's; use one backend per device, or copy the tensor through the host (Download, then Upload)");
        }
    }

    private static string Describe(ReadOnlySpan<long> expected)
    {
        var parts = new string[expected.Length];
        for (var i = 0; i < expected.Length; i++)
        {
            parts[i] = expected[i] < 0 ? "*" : expected[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return parts.Length == 1 ? $"({parts[0]},)" : $"({string.Join(", ", parts)})";
    }
}
