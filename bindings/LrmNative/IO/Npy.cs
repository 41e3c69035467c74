using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace LrmNative.IO;

/// <summary>
/// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html), read and
/// written by our own code. Reads versions 1.0, 2.0 and 3.0, little-endian (or byte-order-free) '&lt;f4', '&lt;f8',
/// '&lt;i4' and '&lt;i8' arrays in C order; writes version 1.0 (2.0 when the header needs it) with the header padded
/// so the data starts 64-byte aligned, atomically. Every problem (bad magic, unknown version, a header that is not
/// the expected dict, Fortran order, big-endian or unknown dtypes, a size that disagrees with the file) is an
/// <see cref="LrmFormatException"/> naming the file.
/// </summary>
internal static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>What a .npy header says.</summary>
    /// <param name="Descr">The dtype string, e.g. "&lt;f4".</param>
    /// <param name="FortranOrder">Column-major data (not supported for reading).</param>
    /// <param name="Shape">Array shape; empty for a 0-d array.</param>
    /// <param name="DataOffset">Bytes before the data (magic, version, length and header).</param>
    internal sealed record Header(string Descr, bool FortranOrder, long[] Shape, long DataOffset)
    {
        /// <summary>Product of the shape (1 for a 0-d array).</summary>
        public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
    }

    /// <summary>
    /// Reads an array as fp32: '&lt;f4' as is, '&lt;f8' rounded to nearest, '&lt;i4'/'&lt;i8' converted (exact up to 2²⁴).
    /// The caller owns the tensor.
    /// </summary>
    public static Tensor ReadFloat32(string path) => ReadFloat32If(path, _ => true, out _)!;

    /// <summary>
    /// <see cref="ReadFloat32"/> when <paramref name="accept"/> takes the header's <paramref name="shape"/>, checked before
    /// any data is read (a huge array of the wrong shape costs nothing); null when it does not.
    /// </summary>
    public static Tensor? ReadFloat32If(string path, Func<long[], bool> accept, out long[] shape)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(accept);
        using var stream = OpenRead(path);
        var header = ReadHeader(stream, path);
        shape = header.Shape;
        if (!accept(shape))
        {
            return null;
        }
        var itemSize = CheckReadable(header, path);
        CheckLength(stream, header, itemSize, path);
        var tensor = Tensor.Empty(header.Shape);
        try
        {
            var values = tensor.AsSpan<float>();
            var type = header.Descr[1..];
            var chunkElements = (1 << 20) / itemSize;
            var buffer = new byte[chunkElements * itemSize];
            for (var start = 0; start < values.Length; start += chunkElements)
            {
                var count = Math.Min(chunkElements, values.Length - start);
                var chunk = buffer.AsSpan(0, count * itemSize);
                if (ReadFully(stream, chunk) < chunk.Length)
                {
                    throw new LrmFormatException($"{path}: .npy data ends early (truncated while reading)");
                }
                Convert(chunk, values.Slice(start, count), type, itemSize);
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Reads only the header (for checks and messages).</summary>
    public static Header ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        return ReadHeader(stream, path);
    }

    /// <summary>Writes a Float32 ('&lt;f4') or Int32 ('&lt;i4') tensor, C order, atomically.</summary>
    public static void Write(string path, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensor);
        var descr = tensor.DataType switch
        {
            DataType.Float32 => "<f4",
            DataType.Int32 => "<i4",
            _ => throw new LrmInvalidArgumentException($"{path}: .npy writing supports Float32 and Int32 tensors, got {tensor.DataType}"),
        };
        var shape = tensor.Rank switch
        {
            0 => "()",
            1 => $"({tensor.Shape[0].ToString(CultureInfo.InvariantCulture)},)",
            _ => $"({string.Join(", ", tensor.Shape.ToArray().Select(s => s.ToString(CultureInfo.InvariantCulture)))})",
        };
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        // Version 1.0 has a 2-byte header length; beyond it, 2.0's 4 bytes. Total prefix padded to 64 with spaces + '\n'.
        var version = dict.Length + 1 + 10 > ushort.MaxValue ? 2 : 1;
        var prefix = Magic.Length + 2 + (version == 1 ? 2 : 4);
        var padded = (prefix + dict.Length + 1 + 63) / 64 * 64;
        var text = dict.PadRight(padded - prefix - 1) + "\n";
        var headerBytes = Encoding.ASCII.GetBytes(text);
        AtomicFile.Write(path, stream =>
        {
            stream.Write(Magic);
            stream.WriteByte((byte)version);
            stream.WriteByte(0);
            Span<byte> length = stackalloc byte[4];
            if (version == 1)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)headerBytes.Length);
                stream.Write(length[..2]);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)headerBytes.Length);
                stream.Write(length);
            }
            stream.Write(headerBytes);
            tensor.WriteBytes(stream);
        });
    }

    private static FileStream OpenRead(string path)
    {
        // Sized before opening: a pipe cannot be read this way (the header check needs the length), and opening a named
        // pipe would wait for a writer.
        if (FileLength.OfFile(path, ".npy file") == 0)
        {
            throw new LrmFormatException($"{path}: 0 bytes: an empty file, or not a regular file (a pipe or device); a .npy file is at least its 10-byte preamble");
        }
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new LrmFormatException($"{path}: .npy file not found");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{path}: cannot read the .npy file: {error.Message}");
        }
    }

    private static Header ReadHeader(Stream stream, string path)
    {
        Span<byte> start = stackalloc byte[10];
        var read = ReadFully(stream, start);
        if (read < Magic.Length || !start[..Magic.Length].SequenceEqual(Magic))
        {
            throw new LrmFormatException($"{path}: not a .npy file (it does not start with \\x93NUMPY)");
        }
        if (read < start.Length)
        {
            throw new LrmFormatException($"{path}: truncated .npy header (the file ends after {read} bytes)");
        }
        int major = start[6], minor = start[7];
        if (major is < 1 or > 3 || minor != 0)
        {
            throw new LrmFormatException($"{path}: unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)");
        }
        long headerLength;
        long prefix;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(start[8..10]);
            prefix = 10;
        }
        else
        {
            Span<byte> rest = stackalloc byte[2];
            if (ReadFully(stream, rest) < 2)
            {
                throw new LrmFormatException($"{path}: truncated .npy header (no header length)");
            }
            headerLength = BinaryPrimitives.ReadUInt32LittleEndian([start[8], start[9], rest[0], rest[1]]);
            prefix = 12;
        }
        // Real headers are a few hundred bytes; numpy itself refuses more than 10000 by default.
        const long maxHeader = 1 << 20;
        if (headerLength > maxHeader)
        {
            throw new LrmFormatException($"{path}: .npy header length {headerLength} is implausible (over {maxHeader} bytes)");
        }
        var bytes = new byte[headerLength];
        if (ReadFully(stream, bytes) < headerLength)
        {
            throw new LrmFormatException($"{path}: truncated .npy header ({headerLength} bytes announced)");
        }
        string text;
        try
        {
            // Versions 1 and 2 are latin-1; 3 is UTF-8.
            text = major == 3 ? new UTF8Encoding(false, true).GetString(bytes) : Encoding.Latin1.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new LrmFormatException($"{path}: .npy header is not valid UTF-8");
        }
        var (descr, fortran, shape) = new HeaderParser(text, path).Parse();
        return new Header(descr, fortran, shape, prefix + headerLength);
    }

    // The element size of a readable header, or a clear error.
    private static int CheckReadable(Header header, string path)
    {
        if (header.FortranOrder)
        {
            throw new LrmFormatException($"{path}: the .npy array is in Fortran (column-major) order; save it in C order (np.ascontiguousarray) to read it here");
        }
        var descr = header.Descr;
        if (descr.Length == 3 && descr[0] == '>' && descr[1] is 'f' or 'i')
        {
            throw new LrmFormatException($"{path}: big-endian .npy data ('{descr}') is not supported; save it little-endian (arr.astype('<{descr[1..]}'))");
        }
        return descr switch
        {
            "<f4" or "<i4" => 4,
            "<f8" or "<i8" => 8,
            _ => throw new LrmFormatException($"{path}: unsupported .npy dtype '{descr}' (readable: '<f4', '<f8', '<i4', '<i8')"),
        };
    }

    private static void CheckLength(FileStream stream, Header header, int itemSize, string path)
    {
        long count;
        try
        {
            count = header.ElementCount;
        }
        catch (OverflowException)
        {
            throw new LrmFormatException($"{path}: .npy shape {Tensor.FormatShape(header.Shape)} is too large");
        }
        var available = stream.Length - header.DataOffset;
        if (count > available / itemSize || count * itemSize != available)
        {
            throw new LrmFormatException($"{path}: .npy shape {Tensor.FormatShape(header.Shape)} of '{header.Descr}' needs {(count > long.MaxValue / itemSize ? "more than 2^63" : (count * itemSize).ToString(CultureInfo.InvariantCulture))} data bytes, the file has {available} ({(available < count * itemSize ? "truncated" : "trailing bytes")})");
        }
        if (count > int.MaxValue)
        {
            throw new LrmUnsupportedException($"{path}: .npy arrays of more than {int.MaxValue} elements are not supported");
        }
    }

    private static void Convert(ReadOnlySpan<byte> chunk, Span<float> target, string type, int itemSize)
    {
        for (var i = 0; i < target.Length; i++)
        {
            var bytes = chunk.Slice(i * itemSize, itemSize);
            target[i] = type switch
            {
                "f4" => BinaryPrimitives.ReadSingleLittleEndian(bytes),
                "f8" => (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes),
                "i4" => BinaryPrimitives.ReadInt32LittleEndian(bytes),
                _ => BinaryPrimitives.ReadInt64LittleEndian(bytes),
            };
        }
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = stream.Read(buffer[total..]);
            if (read == 0)
            {
                break;
            }
            total += read;
        }
        return total;
    }

    /// <summary>
    /// Parses the header's Python dict literal: exactly the keys 'descr' (a string), 'fortran_order' (True/False) and
    /// 'shape' (a tuple of non-negative ints), in any order, with an optional trailing comma; then only whitespace.
    /// </summary>
    private sealed class HeaderParser(string text, string path)
    {
        private int _position;

        public (string Descr, bool Fortran, long[] Shape) Parse()
        {
            string? descr = null;
            bool? fortran = null;
            long[]? shape = null;
            Skip();
            Expect('{');
            while (true)
            {
                Skip();
                if (Peek() == '}')
                {
                    _position++;
                    break;
                }
                var key = ReadString();
                Skip();
                Expect(':');
                Skip();
                switch (key)
                {
                    case "descr" when descr is null:
                        descr = ReadString();
                        break;
                    case "fortran_order" when fortran is null:
                        fortran = ReadBool();
                        break;
                    case "shape" when shape is null:
                        shape = ReadShape();
                        break;
                    case "descr" or "fortran_order" or "shape":
                        throw Fail($"key '{key}' appears twice");
                    default:
                        throw Fail($"unexpected key '{key}' (a .npy header has 'descr', 'fortran_order' and 'shape')");
                }
                Skip();
                if (Peek() == ',')
                {
                    _position++;
                    continue;
                }
                Skip();
                Expect('}');
                break;
            }
            if (text.AsSpan(_position).Trim().Length != 0)
            {
                throw Fail("unexpected text after the header dict");
            }
            if (descr is null || fortran is null || shape is null)
            {
                var missing = new[] { ("descr", descr is null), ("fortran_order", fortran is null), ("shape", shape is null) }
                    .Where(k => k.Item2).Select(k => $"'{k.Item1}'");
                throw Fail($"missing {string.Join(", ", missing)}");
            }
            return (descr, fortran.Value, shape);
        }

        private LrmFormatException Fail(string what)
        {
            var shown = text.Length > 120 ? text[..120] + "..." : text;
            return new LrmFormatException($"{path}: bad .npy header: {what} (header: {shown.TrimEnd()})");
        }

        private char Peek() => _position < text.Length ? text[_position] : '\0';

        private void Skip()
        {
            while (_position < text.Length && char.IsWhiteSpace(text[_position]))
            {
                _position++;
            }
        }

        private void Expect(char c)
        {
            if (Peek() != c)
            {
                throw Fail(_position < text.Length ? $"expected '{c}' at offset {_position}, found '{text[_position]}'" : $"expected '{c}' but the header ended");
            }
            _position++;
        }

        private string ReadString()
        {
            var quote = Peek();
            if (quote is not '\'' and not '"')
            {
                throw Fail($"expected a quoted string at offset {_position}");
            }
            var end = text.IndexOf(quote, _position + 1);
            if (end < 0)
            {
                throw Fail("unterminated string");
            }
            var value = text[(_position + 1)..end];
            _position = end + 1;
            return value;
        }

        private bool ReadBool()
        {
            foreach (var (word, value) in new[] { ("True", true), ("False", false) })
            {
                if (string.CompareOrdinal(text, _position, word, 0, word.Length) == 0)
                {
                    _position += word.Length;
                    return value;
                }
            }
            throw Fail($"'fortran_order' must be True or False at offset {_position}");
        }

        private long[] ReadShape()
        {
            Expect('(');
            var sizes = new List<long>();
            while (true)
            {
                Skip();
                if (Peek() == ')')
                {
                    _position++;
                    break;
                }
                if (_position >= text.Length)
                {
                    throw Fail("the header ended inside 'shape'");
                }
                var begin = _position;
                while (char.IsAsciiDigit(Peek()))
                {
                    _position++;
                }
                if (_position == begin)
                {
                    throw Fail($"expected a non-negative integer in 'shape' at offset {_position}");
                }
                if (!long.TryParse(text.AsSpan(begin, _position - begin), NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                {
                    throw Fail("a size in 'shape' is too large");
                }
                if (Peek() == 'L')
                {
                    _position++; // Python 2 long literal.
                }
                sizes.Add(size);
                Skip();
                if (Peek() == ',')
                {
                    _position++;
                    continue;
                }
                Skip();
                Expect(')');
                break;
            }
            if (sizes.Count > 32)
            {
                throw Fail($"'shape' has {sizes.Count} dimensions (numpy allows 32 at most)");
            }
            return [.. sizes];
        }
    }
}
