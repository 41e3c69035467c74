using System.Runtime.InteropServices;

namespace LrmNative;

/// <summary>
/// Device memory behind a CUDA tensor: an address and a way to give it back (to the backend's
/// caching allocator). Release makes no CUDA call, so it is safe from a finalizer.
/// </summary>
internal interface IDeviceBuffer
{
    /// <summary>The CUdeviceptr of the first byte.</summary>
    ulong Address { get; }

    /// <summary>Returns the memory to its owner; safe to call twice.</summary>
    void Release();
}

/// <summary>
/// A dense, row-major tensor that owns its buffer: shape, element type, device.
/// Host buffers are 64-byte aligned native memory (no GC pinning needed to hand them to
/// native code). CUDA tensors hold device memory from their backend (CudaBackend.Empty,
/// Upload, Download). Dispose frees the buffer; using a disposed tensor throws.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    private const nuint Alignment = 64;

    /// <summary>
    /// Most elements a host tensor holds: its buffer is handed out as a <see cref="Span{T}"/>, whose length is an int.
    /// Larger shapes are refused when the tensor is made, before any memory is taken.
    /// </summary>
    internal const long MaxHostElements = int.MaxValue;

    private readonly long[] _shape;
    private void* _data;
    private void* _allocation;
    private readonly long _guardBytes;
    private IDeviceBuffer? _deviceBuffer;

    private Tensor(long[] shape, DataType dataType, Device device, long guardElements = 0)
    {
        _shape = shape;
        DataType = dataType;
        Device = device;
        (ElementCount, ByteCount) = CountElementsAndBytes(shape, dataType);
        if (device.Kind != DeviceKind.Cpu)
        {
            throw new LrmUnsupportedException($"tensors on {device} need the CUDA backend, which this build does not have yet");
        }
        if (ElementCount > MaxHostElements)
        {
            throw new LrmUnsupportedException($"a host tensor of shape {FormatShape(shape)} would hold {ElementCount} elements; host tensors hold at most {MaxHostElements} (2³¹ − 1)");
        }
        if (ByteCount >= HostMemory.CheckedAllocationBytes)
        {
            // Linux overcommits: a buffer larger than the memory left is handed out and the OOM killer ends the process
            // when it is touched. Refusing it here keeps the process alive with an error that says what was asked.
            HostMemory.EnsureAvailable(ByteCount, $"a {dataType} tensor of shape {FormatShape(shape)}");
        }
        try
        {
            // At least one byte so an all-empty tensor still has a valid pointer.
            _guardBytes = guardElements * dataType.ElementSize();
            _allocation = NativeMemory.AlignedAlloc((nuint)Math.Max(ByteCount + 2 * _guardBytes, 1), Alignment);
            _data = (byte*)_allocation + _guardBytes;
            HostMemory.Allocated(ByteCount);
        }
        catch (OutOfMemoryException)
        {
            throw new LrmOutOfMemoryException($"cannot allocate {ByteCount} bytes for a {dataType} tensor of shape {FormatShape(shape)}");
        }
    }

    private Tensor(long[] shape, DataType dataType, Device device, IDeviceBuffer buffer)
    {
        _shape = shape;
        DataType = dataType;
        Device = device;
        (ElementCount, ByteCount) = CountElementsAndBytes(shape, dataType);
        _deviceBuffer = buffer;
    }

    /// <summary>A tensor on a CUDA device over <paramref name="buffer"/>, which it releases on Dispose.</summary>
    internal static Tensor OnDevice(ReadOnlySpan<long> shape, DataType dataType, Device device, IDeviceBuffer buffer) =>
        device.Kind == DeviceKind.Cuda
            ? new Tensor(ValidateShape(shape), dataType, device, buffer)
            : throw new LrmInvalidArgumentException($"Tensor.OnDevice needs a CUDA device, got {device}");

    /// <summary>The CUdeviceptr of a CUDA tensor's first element; valid until Dispose.</summary>
    internal ulong DevicePointer
    {
        get
        {
            ThrowIfDisposed();
            return _deviceBuffer?.Address
                ?? throw new LrmInvalidArgumentException($"tensor {ShapeText} lives on the host, not on a CUDA device");
        }
    }

    /// <summary>The device memory of a CUDA tensor (null on the host).</summary>
    internal IDeviceBuffer? DeviceBuffer => _deviceBuffer;

    /// <summary>Sizes of each dimension.</summary>
    public ReadOnlySpan<long> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Element type.</summary>
    public DataType DataType { get; }

    /// <summary>Where the buffer lives.</summary>
    public Device Device { get; }

    /// <summary>Product of the shape.</summary>
    public long ElementCount { get; }

    /// <summary>Size of the buffer in bytes.</summary>
    public long ByteCount { get; }

    /// <summary>True after <see cref="Dispose"/>.</summary>
    public bool IsDisposed => _data is null && _deviceBuffer is null;

    /// <summary>Size of one dimension; negative indices count from the end.</summary>
    public long Size(int dimension) => _shape[dimension < 0 ? _shape.Length + dimension : dimension];

    /// <summary>A new host tensor, contents unspecified.</summary>
    public static Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32) =>
        new(ValidateShape(shape), dataType, Device.Cpu);

    /// <summary>
    /// A host tensor with <paramref name="guardElements"/> extra elements before and after its
    /// data, all set to <paramref name="poisonBits"/>, so tests can prove an op wrote every
    /// element (<see cref="CountBits"/>) and nothing outside (<see cref="GuardsIntact"/>).
    /// </summary>
    internal static Tensor CreateGuarded(ReadOnlySpan<long> shape, uint poisonBits, long guardElements = 64)
    {
        var tensor = new Tensor(ValidateShape(shape), DataType.Float32, Device.Cpu, guardElements);
        new Span<uint>(tensor._allocation, checked((int)(tensor.ElementCount + 2 * guardElements))).Fill(poisonBits);
        return tensor;
    }

    /// <summary>True if both guard regions still hold <paramref name="poisonBits"/>.</summary>
    internal bool GuardsIntact(uint poisonBits)
    {
        ThrowIfDisposed();
        var guard = (int)(_guardBytes / sizeof(uint));
        var before = new ReadOnlySpan<uint>(_allocation, guard);
        var after = new ReadOnlySpan<uint>((byte*)_data + ByteCount, guard);
        return !before.ContainsAnyExcept(poisonBits) && !after.ContainsAnyExcept(poisonBits);
    }

    /// <summary>How many elements hold exactly the bit pattern <paramref name="bits"/>.</summary>
    internal long CountBits(uint bits)
    {
        var values = MemoryMarshal.Cast<float, uint>(AsSpan<float>());
        return values.Count(bits);
    }

    /// <summary>A new host tensor filled with zeros.</summary>
    public static Tensor Zeros(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32)
    {
        var tensor = Empty(shape, dataType);
        NativeMemory.Clear(tensor._data, (nuint)tensor.ByteCount);
        return tensor;
    }

    /// <summary>A new fp32 host tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> values, params ReadOnlySpan<long> shape)
    {
        var tensor = Empty(shape);
        if (values.Length != tensor.ElementCount)
        {
            var elements = tensor.ElementCount;
            tensor.Dispose();
            throw new LrmShapeException($"{values.Length} values cannot fill a tensor of shape {FormatShape(shape)} ({elements} elements)");
        }
        values.CopyTo(tensor.AsSpan<float>());
        return tensor;
    }

    /// <summary>The host buffer as a span of <typeparamref name="T"/> (fp32: float, bf16: ushort, i32: int).</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfOnDevice();
        if (sizeof(T) != DataType.ElementSize())
        {
            throw new LrmShapeException($"a {DataType} tensor cannot be viewed as {typeof(T).Name}");
        }
        return new Span<T>(_data, checked((int)ElementCount));
    }

    /// <summary>Writes the host buffer's bytes to <paramref name="stream"/> in chunks (a span of bytes stops at 2 GiB).</summary>
    internal void WriteBytes(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var data = (byte*)Pointer;
        const int chunk = 1 << 30;
        for (long offset = 0; offset < ByteCount; offset += chunk)
        {
            stream.Write(new ReadOnlySpan<byte>(data + offset, (int)Math.Min(chunk, ByteCount - offset)));
        }
    }

    /// <summary>A copy of the contents as fp32 values (bf16 widened exactly).</summary>
    public float[] ToFloatArray()
    {
        ThrowIfDisposed();
        ThrowIfOnDevice();
        return DataType switch
        {
            DataType.Float32 => AsSpan<float>().ToArray(),
            DataType.BFloat16 => AsSpan<ushort>().ToArray().Select(bits => BitConverter.Int32BitsToSingle(bits << 16)).ToArray(),
            DataType.Int32 => AsSpan<int>().ToArray().Select(v => (float)v).ToArray(),
            _ => throw new LrmInternalException($"unhandled data type {DataType}"),
        };
    }

    /// <summary>Shape as "(2, 3, 4)".</summary>
    public string ShapeText => FormatShape(_shape);

    /// <summary>Shape, element type and device, e.g. "Tensor(2, 3) Float32 on cpu".</summary>
    public override string ToString() => $"Tensor{ShapeText} {DataType} on {Device}";

    /// <summary>Raw pointer for backends; valid until Dispose.</summary>
    internal void* Pointer
    {
        get
        {
            ThrowIfDisposed();
            ThrowIfOnDevice();
            return _data;
        }
    }

    /// <summary>Frees the buffer. Safe to call twice.</summary>
    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the buffer if the owner forgot to.</summary>
    ~Tensor() => Free();

    private void Free()
    {
        // Device memory goes back to the backend's cache (no CUDA call, so the finalizer may do it too).
        Interlocked.Exchange(ref _deviceBuffer, null)?.Release();
        if (_allocation is not null)
        {
            NativeMemory.AlignedFree(_allocation);
            HostMemory.Freed(ByteCount);
            _allocation = null;
            _data = null;
        }
    }

    /// <summary>A shape as error messages write it, e.g. "(2, 3, 4)".</summary>
    public static string FormatShape(ReadOnlySpan<long> shape)
    {
        var parts = new string[shape.Length];
        for (var i = 0; i < shape.Length; i++)
        {
            parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return shape.Length == 1 ? $"({parts[0]},)" : $"({string.Join(", ", parts)})";
    }

    private static long[] ValidateShape(ReadOnlySpan<long> shape)
    {
        foreach (var size in shape)
        {
            if (size < 0)
            {
                throw new LrmInvalidArgumentException($"tensor shape {FormatShape(shape)} has a negative size");
            }
        }
        return shape.ToArray();
    }

    // Elements and bytes of a validated (non-negative) shape; a product beyond 64 bits names the shape.
    private static (long Elements, long Bytes) CountElementsAndBytes(long[] shape, DataType dataType)
    {
        if (shape.AsSpan().Contains(0L))
        {
            return (0, 0);
        }
        long count = 1;
        try
        {
            foreach (var size in shape)
            {
                count = checked(count * size);
            }
            return (count, checked(count * dataType.ElementSize()));
        }
        catch (OverflowException)
        {
            throw new LrmInvalidArgumentException($"tensor shape {FormatShape(shape)} has more elements than a 64-bit count can hold");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    private void ThrowIfOnDevice()
    {
        if (_deviceBuffer is not null)
        {
            throw new LrmUnsupportedException($"tensor {ShapeText} lives on {Device}; copy it to the host first (CudaBackend.Download)");
        }
    }
}

/// <summary>
/// Bytes held by live host tensors and the most ever held at once (since the last <see cref="ResetPeak"/>), for
/// `lrm bench`: two interlocked updates per allocation, nothing else.
/// </summary>
internal static class HostMemory
{
    private static long s_live;
    private static long s_peak;

    /// <summary>Bytes held by host tensors now.</summary>
    public static long LiveBytes => Interlocked.Read(ref s_live);

    /// <summary>Most bytes held by host tensors at once.</summary>
    public static long PeakBytes => Interlocked.Read(ref s_peak);

    /// <summary>Starts a new peak from what is live now.</summary>
    public static void ResetPeak() => Interlocked.Exchange(ref s_peak, LiveBytes);

    internal static void Allocated(long bytes)
    {
        var live = Interlocked.Add(ref s_live, bytes);
        long peak;
        while (live > (peak = Interlocked.Read(ref s_peak)) && Interlocked.CompareExchange(ref s_peak, live, peak) != peak)
        {
        }
    }

    internal static void Freed(long bytes) => Interlocked.Add(ref s_live, -bytes);

    /// <summary>Host tensors of at least this many bytes (256 MiB) are checked against <see cref="Available"/> before they are allocated.</summary>
    internal const long CheckedAllocationBytes = 256L << 20;

    /// <summary>Tests stand in for a machine with this many bytes available (null: read the machine).</summary>
    internal static long? AvailableOverride { get; set; }

    /// <summary>
    /// Bytes this process can still take from the machine, and where the number comes from: Linux's MemAvailable
    /// (/proc/meminfo), lowered to the room left under the container's cgroup memory limit (v2 or v1) when there is one. Null where neither can be read (not Linux): then nothing is checked.
    /// </summary>
    public static (long Bytes, string Source)? Available()
    {
        if (AvailableOverride is { } given)
        {
            return (given, "set by a test");
        }
        (long Bytes, string Source)? result = null;
        if (ReadMemInfoAvailable("/proc/meminfo") is { } meminfo)
        {
            result = (meminfo, "MemAvailable in /proc/meminfo");
        }
        // A container sees its own cgroup at the mount's root: v2 (memory.max) or v1 (memory/memory.limit_in_bytes).
        var room = ReadCgroupRoom("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")
            ?? ReadCgroupRoom("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes");
        if (room is { } cgroup && (result is null || cgroup < result.Value.Bytes))
        {
            result = (cgroup, "the cgroup's memory limit less its usage");
        }
        return result;
    }

    /// <summary>
    /// Throws <see cref="LrmOutOfMemoryException"/> naming <paramref name="what"/> when <paramref name="bytes"/> exceed
    /// <see cref="Available"/>.
    /// </summary>
    public static void EnsureAvailable(long bytes, string what, string? advice = null)
    {
        if (Available() is { } available && bytes > available.Bytes)
        {
            throw new LrmOutOfMemoryException($"{what} needs {FormatBytes(bytes)} of host memory and {FormatBytes(Math.Max(available.Bytes, 0))} is available "
                + $"({available.Source}){(advice is null ? "" : "; " + advice)}");
        }
    }

    /// <summary>Bytes for messages: "4.00 GiB", "512.0 MiB", "900 bytes".</summary>
    public static string FormatBytes(long bytes)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        return bytes >= 1 << 30 ? string.Create(invariant, $"{bytes / (double)(1 << 30):F2} GiB")
            : bytes >= 1 << 20 ? string.Create(invariant, $"{bytes / (double)(1 << 20):F1} MiB")
            : string.Create(invariant, $"{bytes} bytes");
    }

    /// <summary>MemAvailable of a meminfo file, in bytes; null when the file or the line is missing.</summary>
    internal static long? ReadMemInfoAvailable(string path)
    {
        try
        {
            foreach (var line in File.ReadLines(path))
            {
                // "MemAvailable:   12345678 kB"
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                {
                    var fields = line["MemAvailable:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return fields.Length == 2 && fields[1] == "kB" && long.TryParse(fields[0], System.Globalization.CultureInfo.InvariantCulture, out var kib) ? kib * 1024 : null;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>
    /// The room under a cgroup memory limit: the limit in <paramref name="limitFile"/> less the usage in
    /// <paramref name="usageFile"/>; null without a limit ("max", or v1's near-2⁶³ "unlimited") or when they cannot be read.
    /// </summary>
    internal static long? ReadCgroupRoom(string limitFile, string usageFile)
    {
        try
        {
            var invariant = System.Globalization.CultureInfo.InvariantCulture;
            if (!long.TryParse(File.ReadAllText(limitFile).Trim(), invariant, out var limit) || limit >= 1L << 60)
            {
                return null;
            }
            return long.TryParse(File.ReadAllText(usageFile).Trim(), invariant, out var used) ? limit - used : null;
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }
}
