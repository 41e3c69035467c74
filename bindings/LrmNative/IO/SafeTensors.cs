using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace LrmNative.IO;

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">safetensors dtype string (F32, BF16, F16, F64, I32, I64, U16, U8, ...).</param>
/// <param name="Shape">Sizes.</param>
/// <param name="Begin">Byte offset of the data, relative to the data section.</param>
/// <param name="End">Byte offset one past the data.</param>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Product of the shape.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// <summary>
/// A safetensors file (8-byte little-endian header length, JSON header, raw data), memory
/// mapped and validated before any tensor is handed out: header length, JSON, dtypes,
/// shapes, and offsets (in bounds, matching the shape, contiguous, covering the data).
/// Every error names the file and what was expected.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>
    /// Largest tensor read or written, in bytes (2³¹ − 1, just under 2 GiB): <see cref="Bytes"/> hands a tensor out as
    /// one span. An LRM's largest weight is tens of MB; a file claiming more is refused from its header, before any
    /// data is touched, and a larger tensor is never written, so every file written here can be read back.
    /// </summary>
    internal const long MaxTensorBytes = int.MaxValue;
    private static readonly Dictionary<string, int> ElementSizes = new()
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
        ["U16"] = 2, ["I16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["U32"] = 4, ["I32"] = 4, ["F32"] = 4,
        ["U64"] = 8, ["I64"] = 8, ["F64"] = 8,
    };

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _tensors;

    private SafeTensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePointer,
        long dataStart, Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePointer;
        _dataStart = dataStart;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file this was read from.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> string map (empty if absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Entries in header order of their data offsets.</summary>
    public IEnumerable<SafeTensorInfo> Tensors => _tensors.Values.OrderBy(t => t.Begin);

    /// <summary>True if the file holds a tensor of this name.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Header entry of a tensor.</summary>
    /// <exception cref="LrmFormatException">The file has no tensor of that name (the message names the file and lists some that it has).</exception>
    public SafeTensorInfo Info(string name) => _tensors.TryGetValue(name, out var info)
        ? info
        : throw new LrmFormatException($"{Path}: no tensor named '{name}' (has: {string.Join(", ", _tensors.Keys.Order(StringComparer.Ordinal).Take(20))}{(_tensors.Count > 20 ? ", ..." : "")})");

    /// <summary>Raw bytes of a tensor, valid until Dispose.</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        ObjectDisposedException.ThrowIf(_base is null && _tensors.Count > 0 && _view is not null, this);
        var info = Info(name);
        var length = info.End - info.Begin;
        return length == 0 ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(_base + _dataStart + info.Begin, checked((int)length));
    }

    /// <summary>
    /// A new host tensor with the data of <paramref name="name"/>. F32, BF16 and I32 keep their type;
    /// F16 and F64 are converted to F32. <paramref name="expectedShape"/>, when given, is checked.
    /// </summary>
    /// <exception cref="LrmFormatException">The file has no tensor named <paramref name="name"/>.</exception>
    /// <exception cref="LrmShapeException">The tensor's shape is not <paramref name="expectedShape"/>.</exception>
    /// <exception cref="LrmUnsupportedException">Another dtype (e.g. I64 or U8).</exception>
    public Tensor ReadTensor(string name, ReadOnlySpan<long> expectedShape = default)
    {
        var info = Info(name);
        if (!expectedShape.IsEmpty && !expectedShape.SequenceEqual(info.Shape))
        {
            throw new LrmShapeException($"{Path}: tensor '{name}' has shape {Tensor.FormatShape(info.Shape)}, expected {Tensor.FormatShape(expectedShape)}");
        }
        var bytes = Bytes(name);
        switch (info.DType)
        {
            case "F32":
            case "BF16":
            case "I32":
                {
                    var type = info.DType == "F32" ? DataType.Float32 : info.DType == "BF16" ? DataType.BFloat16 : DataType.Int32;
                    var tensor = Tensor.Empty(info.Shape, type);
                    bytes.CopyTo(new Span<byte>(tensor.Pointer, checked((int)tensor.ByteCount)));
                    return tensor;
                }
            case "F16":
            case "F64":
                {
                    var tensor = Tensor.Empty(info.Shape);
                    var output = tensor.AsSpan<float>();
                    for (var i = 0; i < output.Length; i++)
                    {
                        output[i] = info.DType == "F16"
                            ? (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.Slice(i * 2, 2))
                            : (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(i * 8, 8));
                    }
                    return tensor;
                }
            default:
                throw new LrmUnsupportedException($"{Path}: tensor '{name}' has dtype {info.DType}; LrmNative reads F32, BF16, F16, F64 and I32");
        }
    }

    /// <summary>Opens, maps and validates a safetensors file; dispose it to unmap.</summary>
    /// <exception cref="LrmFormatException">The file is missing, unreadable, truncated, or its header or data offsets
    /// are malformed (the message names the file and what is wrong).</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new LrmFormatException($"{path}: file not found");
        }
        var length = FileLength.OfFile(path, "safetensors file");
        if (length < 8)
        {
            throw new LrmFormatException($"{path}: not a safetensors file: {length} bytes is shorter than the 8-byte header length");
        }
        Span<byte> prefix = stackalloc byte[8];
        try
        {
            using var stream = File.OpenRead(path);
            stream.ReadExactly(prefix);
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw new LrmFormatException($"{path}: cannot read the safetensors file: {error.Message}");
        }
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength < 2 || headerLength > MaxHeaderBytes || (long)headerLength > length - 8)
        {
            throw new LrmFormatException($"{path}: header length {headerLength} is impossible for a {length}-byte file (expected 2..{Math.Min(MaxHeaderBytes, length - 8)})");
        }
        var dataStart = 8 + (long)headerLength;
        var dataLength = length - dataStart;
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePointer = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
            basePointer += view.PointerOffset;
            var header = new ReadOnlySpan<byte>(basePointer + 8, (int)headerLength);
            var (tensors, metadata) = ParseHeader(path, header, dataLength);
            return new SafeTensorsFile(path, map, view, basePointer, dataStart, tensors, metadata);
        }
        catch (Exception error)
        {
            if (basePointer is not null)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }
            view?.Dispose();
            map?.Dispose();
            if (FileErrors.IsFileSystemError(error))
            {
                throw new LrmFormatException($"{path}: cannot map the safetensors file: {error.Message}");
            }
            throw;
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        try
        {
            return ParseHeaderJson(path, header, dataLength);
        }
        catch (Exception error) when (error is InvalidOperationException or System.Text.DecoderFallbackException or FormatException)
        {
            // Invalid UTF-8 inside strings, or numbers of the wrong kind, surface lazily from System.Text.Json.
            throw new LrmFormatException($"{path}: header is not valid UTF-8 JSON of the safetensors schema ({error.Message})");
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeaderJson(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray());
        }
        catch (JsonException error)
        {
            throw new LrmFormatException($"{path}: header is not valid JSON ({error.Message})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new LrmFormatException($"{path}: header must be a JSON object");
            }
            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw new LrmFormatException($"{path}: __metadata__ must be an object of strings");
                    }
                    foreach (var entry in property.Value.EnumerateObject())
                    {
                        metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String
                            ? entry.Value.GetString()!
                            : throw new LrmFormatException($"{path}: __metadata__ value '{entry.Name}' must be a string");
                    }
                    continue;
                }
                tensors[property.Name] = ParseEntry(path, property, dataLength);
            }
            CheckLayout(path, tensors.Values, dataLength);
            return (tensors, metadata);
        }
    }

    private static SafeTensorInfo ParseEntry(string path, JsonProperty property, long dataLength)
    {
        var name = property.Name;
        var value = property.Value;
        string Fail(string what) => throw new LrmFormatException($"{path}: tensor '{name}': {what}");
        if (value.ValueKind != JsonValueKind.Object)
        {
            Fail("entry must be an object with dtype, shape and data_offsets");
        }
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            Fail("missing string 'dtype'");
        }
        var dtype = dtypeElement.GetString()!;
        if (!ElementSizes.TryGetValue(dtype, out var elementSize))
        {
            Fail($"unknown dtype '{dtype}'");
        }
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            Fail("missing array 'shape'");
        }
        var shape = new List<long>();
        foreach (var size in shapeElement.EnumerateArray())
        {
            if (size.ValueKind != JsonValueKind.Number || !size.TryGetInt64(out var s) || s < 0)
            {
                Fail($"shape entries must be non-negative integers, got {shapeElement.GetRawText()}");
            }
            shape.Add(size.GetInt64());
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end))
        {
            throw new LrmFormatException($"{path}: tensor '{name}': missing 'data_offsets' [begin, end]");
        }
        long count;
        try
        {
            count = shape.Contains(0) ? 0 : shape.Aggregate(1L, (a, b) => checked(a * b));
            count = checked(count * elementSize);
        }
        catch (OverflowException)
        {
            throw new LrmFormatException($"{path}: tensor '{name}': shape {Tensor.FormatShape(shape.ToArray())} overflows");
        }
        if (count > MaxTensorBytes)
        {
            throw new LrmUnsupportedException($"{path}: tensor '{name}': shape {Tensor.FormatShape(shape.ToArray())} of {dtype} is {count} bytes; LrmNative reads tensors of at most {MaxTensorBytes} bytes (2 GiB)");
        }
        if (begin < 0 || end < begin || end > dataLength)
        {
            Fail($"data_offsets [{begin}, {end}] out of bounds of the {dataLength}-byte data section");
        }
        if (end - begin != count)
        {
            Fail($"shape {Tensor.FormatShape(shape.ToArray())} of {dtype} needs {count} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        }
        return new SafeTensorInfo(name, dtype, shape.ToArray(), begin, end);
    }

    private static void CheckLayout(string path, IEnumerable<SafeTensorInfo> tensors, long dataLength)
    {
        long expected = 0;
        foreach (var tensor in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (tensor.Begin != expected)
            {
                throw new LrmFormatException(tensor.Begin < expected
                    ? $"{path}: tensor '{tensor.Name}' overlaps the previous tensor (starts at {tensor.Begin}, previous ends at {expected})"
                    : $"{path}: {tensor.Begin - expected} unreferenced bytes before tensor '{tensor.Name}'");
            }
            expected = tensor.End;
        }
        if (expected != dataLength)
        {
            throw new LrmFormatException($"{path}: data section is {dataLength} bytes but the tensors cover {expected} (truncated or padded file)");
        }
    }

    /// <summary>Writes host tensors (sorted by name) and string metadata atomically: temp file, then rename.</summary>
    /// <exception cref="LrmUnsupportedException">A tensor is over 2 GiB.</exception>
    /// <exception cref="LrmFormatException">The file cannot be written (the message names it and says why).</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var ordered = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        if (ordered.FirstOrDefault(t => t.Value.ByteCount > MaxTensorBytes) is { Value: not null } large)
        {
            throw new LrmUnsupportedException($"{path}: tensor '{large.Key}' {large.Value.ShapeText} is {large.Value.ByteCount} bytes; safetensors files here hold tensors of at most {MaxTensorBytes} bytes (2 GiB)");
        }
        var header = Header(ordered, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            foreach (var (_, tensor) in ordered)
            {
                tensor.WriteBytes(stream);
            }
        });
    }

    /// <summary>Size in bytes of the file <see cref="Write"/> would produce for these tensors and metadata.</summary>
    internal static long FileSize(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var ordered = tensors.OrderBy(t => t.Key, StringComparer.Ordinal).ToList();
        return 8 + Header(ordered, metadata).Length + ordered.Sum(t => t.Value.ByteCount);
    }

    // The JSON header of tensors already in name order, padded with spaces so the data section starts 8-byte aligned.
    private static byte[] Header(List<KeyValuePair<string, Tensor>> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata.OrderBy(m => m.Key, StringComparer.Ordinal))
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in ordered)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", tensor.DataType.SafeTensorsName());
                json.WriteStartArray("shape");
                foreach (var size in tensor.Shape)
                {
                    json.WriteNumberValue(size);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + tensor.ByteCount);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += tensor.ByteCount;
            }
            json.WriteEndObject();
        }
        while (headerStream.Length % 8 != 0)
        {
            headerStream.WriteByte((byte)' ');
        }
        return headerStream.ToArray();
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_view is not null && _base is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }

    /// <summary>Header as text, for diagnostics.</summary>
    public override string ToString() => $"{Path}: {_tensors.Count} tensors, metadata {{{string.Join(", ", Metadata.Select(m => m.Key))}}}";

}
