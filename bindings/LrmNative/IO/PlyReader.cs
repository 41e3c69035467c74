using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace LrmNative.IO;

/// <summary>
/// PLY (Stanford polygon file, format 1.0): ascii, binary_little_endian and binary_big_endian; the "vertex" element's
/// x, y, z (any numeric type) and red, green, blue (uchar/ushort scaled to [0, 1], float/double as is); the "face"
/// element's vertex_indices (or vertex_index) list, polygons fanned into triangles; other elements and properties
/// skipped.
/// </summary>
internal static class PlyReader
{
    private static readonly string[] Axes = ["x", "y", "z"];
    private static readonly string[] ColorNames = ["red", "green", "blue"];

    private sealed record Property(string Name, string Type, string? CountType);

    private sealed record Element(string Name, long Count, List<Property> Properties);

    public static Mesh Read(byte[] bytes, string path)
    {
        var headerEnd = FindHeaderEnd(bytes, path);
        var header = Encoding.ASCII.GetString(bytes, 0, headerEnd);
        var lines = header.Split('\n').Select(l => l.TrimEnd('\r').Trim()).ToList();
        if (lines.Count == 0 || lines[0] != "ply")
        {
            throw new LrmFormatException($"{path}: not a PLY file (it does not start with 'ply')");
        }
        string? format = null;
        var elements = new List<Element>();
        foreach (var line in lines.Skip(1))
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0 || words[0] is "comment" or "obj_info" or "end_header")
            {
                continue;
            }
            switch (words[0])
            {
                case "format" when words.Length >= 3:
                    if (words[2] != "1.0")
                    {
                        throw new LrmFormatException($"{path}: unsupported PLY version {words[2]} (1.0 is read)");
                    }
                    format = words[1];
                    break;
                case "element" when words.Length == 3 && long.TryParse(words[2], NumberStyles.None, CultureInfo.InvariantCulture, out var count):
                    elements.Add(new Element(words[1], count, []));
                    break;
                case "property" when elements.Count > 0 && words.Length == 3:
                    elements[^1].Properties.Add(new Property(words[2], Canonical(words[1], path), null));
                    break;
                case "property" when elements.Count > 0 && words.Length == 5 && words[1] == "list":
                    elements[^1].Properties.Add(new Property(words[4], Canonical(words[3], path), Canonical(words[2], path)));
                    break;
                default:
                    throw new LrmFormatException($"{path}: bad PLY header line '{line}'");
            }
        }
        if (format is not ("ascii" or "binary_little_endian" or "binary_big_endian"))
        {
            throw new LrmFormatException($"{path}: PLY header has no valid 'format' line (ascii, binary_little_endian or binary_big_endian)");
        }
        var vertex = elements.FirstOrDefault(e => e.Name == "vertex") ?? throw new LrmFormatException($"{path}: PLY has no 'vertex' element");
        foreach (var axis in Axes)
        {
            if (!vertex.Properties.Any(p => p.Name == axis && p.CountType is null))
            {
                throw new LrmFormatException($"{path}: PLY vertex element has no '{axis}' property");
            }
        }
        var builder = new MeshBuilder(path);
        builder.CheckVertexBudget(vertex.Count, "PLY vertex element");
        CheckCounts(elements, format == "ascii" ? CountAsciiValues(bytes, headerEnd) : bytes.Length - headerEnd, format == "ascii", path);
        var hasColor = ColorNames.All(c => vertex.Properties.Any(p => p.Name == c && p.CountType is null));
        if (hasColor)
        {
            builder.Colors = [];
        }
        var source = format == "ascii"
            ? (IValueSource)new AsciiSource(bytes, headerEnd, path)
            : new BinarySource(bytes, headerEnd, format == "binary_big_endian", path);
        var corners = new List<int>();
        foreach (var element in elements)
        {
            for (long i = 0; i < element.Count; i++)
            {
                if (element.Name == "vertex")
                {
                    double x = 0, y = 0, z = 0, r = 0, g = 0, b = 0;
                    foreach (var property in element.Properties)
                    {
                        if (property.CountType is not null)
                        {
                            SkipList(source, property, path);
                            continue;
                        }
                        var value = source.Next(property.Type);
                        switch (property.Name)
                        {
                            case "x": x = value; break;
                            case "y": y = value; break;
                            case "z": z = value; break;
                            case "red": r = ColorScale(value, property.Type); break;
                            case "green": g = ColorScale(value, property.Type); break;
                            case "blue": b = ColorScale(value, property.Type); break;
                            default: break;
                        }
                    }
                    builder.Positions.AddRange([(float)x, (float)y, (float)z]);
                    builder.Colors?.AddRange([(float)r, (float)g, (float)b]);
                }
                else if (element.Name == "face")
                {
                    var found = false;
                    foreach (var property in element.Properties)
                    {
                        if (property.CountType is not null && property.Name is "vertex_indices" or "vertex_index" && !found)
                        {
                            var count = CheckedCount(source.Next(property.CountType), path);
                            corners.Clear();
                            for (var k = 0; k < count; k++)
                            {
                                corners.Add((int)source.Next(property.Type));
                            }
                            builder.AddPolygon(corners.ToArray(), $"face {i}");
                            found = true;
                        }
                        else if (property.CountType is not null)
                        {
                            SkipList(source, property, path);
                        }
                        else
                        {
                            source.Next(property.Type);
                        }
                    }
                    if (!found)
                    {
                        throw new LrmFormatException($"{path}: PLY face element has no 'vertex_indices' list");
                    }
                }
                else
                {
                    foreach (var property in element.Properties)
                    {
                        if (property.CountType is not null)
                        {
                            SkipList(source, property, path);
                        }
                        else
                        {
                            source.Next(property.Type);
                        }
                    }
                }
            }
        }
        return builder.Build();
    }

    /// <summary>
    /// Refuses element counts the data cannot hold before any is read: every item takes at least one value (ASCII) or
    /// its scalar and list-length bytes (binary) per property, so an element without properties may have no items.
    /// </summary>
    private static void CheckCounts(List<Element> elements, long available, bool ascii, string path)
    {
        var unit = ascii ? "values" : "bytes";
        foreach (var element in elements)
        {
            if (element.Count == 0)
            {
                continue;
            }
            if (element.Properties.Count == 0)
            {
                throw new LrmFormatException($"{path}: PLY element '{element.Name}' announces {element.Count} items but has no properties");
            }
            long smallest = ascii ? element.Properties.Count : element.Properties.Sum(p => (long)SizeOf(p.CountType ?? p.Type));
            if (element.Count > available / smallest)
            {
                throw new LrmFormatException(
                    $"{path}: PLY element '{element.Name}' announces {element.Count} items of at least {smallest} {unit} each, "
                    + $"but only {available} {unit} of data remain (truncated, or a wrong count in the header)");
            }
            available -= element.Count * smallest;
        }
    }

    /// <summary>The number of whitespace-separated values after the header of an ASCII PLY.</summary>
    private static long CountAsciiValues(byte[] bytes, int start)
    {
        long values = 0;
        var inValue = false;
        for (var i = start; i < bytes.Length; i++)
        {
            var space = bytes[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';
            if (!space && !inValue)
            {
                values++;
            }
            inValue = !space;
        }
        return values;
    }

    private static int SizeOf(string type) => type switch { "char" or "uchar" => 1, "short" or "ushort" => 2, "double" => 8, _ => 4 };

    private static int CheckedCount(double value, string path) =>
        value is >= 0 and <= 1_000_000 ? (int)value : throw new LrmFormatException($"{path}: PLY list length {value} is implausible");

    private static void SkipList(IValueSource source, Property property, string path)
    {
        var count = CheckedCount(source.Next(property.CountType!), path);
        for (var k = 0; k < count; k++)
        {
            source.Next(property.Type);
        }
    }

    private static double ColorScale(double value, string type) => type switch
    {
        "uchar" => value / 255.0,
        "ushort" => value / 65535.0,
        _ => value,
    };

    private static string Canonical(string type, string path) => type switch
    {
        "char" or "int8" => "char",
        "uchar" or "uint8" => "uchar",
        "short" or "int16" => "short",
        "ushort" or "uint16" => "ushort",
        "int" or "int32" => "int",
        "uint" or "uint32" => "uint",
        "float" or "float32" => "float",
        "double" or "float64" => "double",
        _ => throw new LrmFormatException($"{path}: unknown PLY property type '{type}'"),
    };

    private static int FindHeaderEnd(byte[] bytes, string path)
    {
        var marker = "end_header"u8;
        var index = bytes.AsSpan(0, Math.Min(bytes.Length, 1 << 20)).IndexOf(marker);
        if (index < 0)
        {
            throw new LrmFormatException($"{path}: not a PLY file or truncated header (no 'end_header' line)");
        }
        var end = index + marker.Length;
        if (end < bytes.Length && bytes[end] == '\r')
        {
            end++;
        }
        if (end < bytes.Length && bytes[end] == '\n')
        {
            end++;
        }
        return end;
    }

    private interface IValueSource
    {
        double Next(string type);
    }

    private sealed class BinarySource(byte[] bytes, int start, bool bigEndian, string path) : IValueSource
    {
        private int _position = start;

        public double Next(string type)
        {
            var size = SizeOf(type);
            if (_position + size > bytes.Length)
            {
                throw new LrmFormatException($"{path}: PLY data ends early (truncated at byte {_position})");
            }
            var span = bytes.AsSpan(_position, size);
            _position += size;
            return type switch
            {
                "char" => (sbyte)span[0],
                "uchar" => span[0],
                "short" => bigEndian ? BinaryPrimitives.ReadInt16BigEndian(span) : BinaryPrimitives.ReadInt16LittleEndian(span),
                "ushort" => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span) : BinaryPrimitives.ReadUInt16LittleEndian(span),
                "int" => bigEndian ? BinaryPrimitives.ReadInt32BigEndian(span) : BinaryPrimitives.ReadInt32LittleEndian(span),
                "uint" => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span),
                "float" => bigEndian ? BinaryPrimitives.ReadSingleBigEndian(span) : BinaryPrimitives.ReadSingleLittleEndian(span),
                _ => bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(span) : BinaryPrimitives.ReadDoubleLittleEndian(span),
            };
        }
    }

    private sealed class AsciiSource(byte[] bytes, int start, string path) : IValueSource
    {
        private int _position = start;

        public double Next(string type)
        {
            while (_position < bytes.Length && bytes[_position] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            {
                _position++;
            }
            var begin = _position;
            while (_position < bytes.Length && bytes[_position] is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                _position++;
            }
            if (begin == _position)
            {
                throw new LrmFormatException($"{path}: PLY data ends early (fewer values than the header announces)");
            }
            var text = Encoding.ASCII.GetString(bytes, begin, _position - begin);
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                throw new LrmFormatException($"{path}: '{text}' is not a number (PLY {type} value)");
            }
            return value;
        }
    }
}
