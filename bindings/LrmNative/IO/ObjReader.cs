using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace LrmNative.IO;

/// <summary>
/// Wavefront OBJ: <c>v x y z [r g b]</c> (the vertex-colour extension; a fourth value alone is the ignored w),
/// <c>f</c> with <c>a</c>, <c>a/t</c>, <c>a/t/n</c> or <c>a//n</c> corners, 1-based or negative (relative) indices,
/// polygons fanned into triangles; <c>mtllib</c>/<c>usemtl</c> give each face its material's diffuse colour
/// (<c>Kd</c>) when the vertices have no colours (vertices shared by faces of different materials are duplicated).
/// Texture coordinates, normals, lines and groups are ignored. Material libraries are read only from the OBJ's folder
/// (or below it): a name that leads elsewhere (an absolute path from the exporting machine, <c>..</c>) is looked for by
/// its file name next to the OBJ; a missing or empty .mtl file means no material colours. The file is parsed as UTF-8
/// bytes, line by line, without ever holding it as one string.
/// </summary>
internal static class ObjReader
{
    private static readonly float[] DefaultColor = [0.8f, 0.8f, 0.8f];

    /// <summary>Longest material or library name read (longer ones are refused rather than decoded).</summary>
    private const int MaxNameBytes = 4096;

    private static ReadOnlySpan<byte> Blanks => " \t\r"u8;

    public static Mesh Read(byte[] bytes, string path)
    {
        var positions = new List<float>();
        var vertexColors = new List<float>();
        var corners = new List<int>(); // every face's corners, one face after another
        var faces = new List<(int First, int Count, int Material, int Line)>();
        long triangleTotal = 0;
        var materials = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var materialNames = new List<string> { "" };
        var materialNumbers = new Dictionary<string, int>(StringComparer.Ordinal) { [""] = 0 };
        var librariesRead = new HashSet<string>(StringComparer.Ordinal);
        var current = 0;
        var coloredVertices = 0;
        Span<float> values = stackalloc float[6];
        var lines = new Lines(bytes);
        while (lines.Next(out var line, out var lineNumber))
        {
            var words = new Words(line);
            if (!words.Next(out var keyword))
            {
                continue;
            }
            if (keyword.SequenceEqual("v"u8))
            {
                if (positions.Count / 3 == MeshBuilder.MaxVertices)
                {
                    throw new LrmFormatException($"{path}:{lineNumber}: more than {MeshBuilder.MaxVertices} vertices");
                }
                // x y z, x y z w (w ignored), x y z r g b or x y z r g b w.
                var counter = words;
                var valueCount = 0;
                while (valueCount <= 7 && counter.Next(out _))
                {
                    valueCount++;
                }
                if (valueCount is not (3 or 4 or 6 or 7))
                {
                    var got = valueCount > 7 ? "more than 7" : valueCount.ToString(CultureInfo.InvariantCulture);
                    throw new LrmFormatException($"{path}:{lineNumber}: a 'v' line needs x y z [w] or x y z r g b, got {got} values");
                }
                var used = valueCount >= 6 ? 6 : 3;
                for (var k = 0; k < used && words.Next(out var word); k++)
                {
                    values[k] = Number(word, path, lineNumber);
                }
                positions.AddRange(values[..3]);
                if (valueCount >= 6)
                {
                    vertexColors.AddRange(values[3..6]);
                    coloredVertices++;
                }
                else
                {
                    vertexColors.AddRange(DefaultColor);
                }
            }
            else if (keyword.SequenceEqual("f"u8))
            {
                var first = corners.Count;
                var vertexCount = positions.Count / 3;
                while (words.Next(out var word))
                {
                    var slash = word.IndexOf((byte)'/');
                    var vertex = slash < 0 ? word : word[..slash];
                    if (!int.TryParse(vertex, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var index) || index == 0)
                    {
                        throw new LrmFormatException($"{path}:{lineNumber}: bad face corner '{Shown(word)}'");
                    }
                    corners.Add(index > 0 ? index - 1 : vertexCount + index);
                }
                var count = corners.Count - first;
                triangleTotal += Math.Max(count - 2, 0);
                if (triangleTotal > MeshBuilder.MaxTriangles)
                {
                    throw new LrmFormatException($"{path}:{lineNumber}: the faces make more than {MeshBuilder.MaxTriangles} triangles");
                }
                faces.Add((first, count, current, lineNumber));
            }
            else if (keyword.SequenceEqual("mtllib"u8) && !words.Rest.IsEmpty)
            {
                ReadLibraries(Name(words.Rest, path, lineNumber), path, librariesRead, materials);
            }
            else if (keyword.SequenceEqual("usemtl"u8) && !words.Rest.IsEmpty)
            {
                var name = Name(words.Rest, path, lineNumber);
                if (!materialNumbers.TryGetValue(name, out current))
                {
                    current = materialNames.Count;
                    materialNames.Add(name);
                    materialNumbers[name] = current;
                }
            }
            // vt, vn, o, g, s, l, … are ignored.
        }
        var builder = new MeshBuilder(path);
        var useMaterials = coloredVertices == 0 && materialNames.Skip(1).Any(materials.ContainsKey);
        if (coloredVertices != 0 && coloredVertices != positions.Count / 3)
        {
            throw new LrmFormatException($"{path}: {coloredVertices} of {positions.Count / 3} vertices have colours; either all or none must");
        }
        var allCorners = CollectionsMarshal.AsSpan(corners);
        if (!useMaterials)
        {
            builder.Positions.AddRange(positions);
            if (coloredVertices > 0)
            {
                builder.Colors = vertexColors;
            }
            foreach (var (first, count, _, line) in faces)
            {
                builder.AddPolygon(allCorners.Slice(first, count), $"line {line}");
            }
            return builder.Build();
        }
        // One output vertex per (vertex, material) pair, coloured by the material's Kd.
        builder.Colors = [];
        var remap = new Dictionary<(int, int), int>();
        var vertexTotal = positions.Count / 3;
        foreach (var (first, count, material, line) in faces)
        {
            var color = materials.TryGetValue(materialNames[material], out var kd) ? kd : DefaultColor;
            var mapped = new int[count];
            for (var k = 0; k < count; k++)
            {
                var v = allCorners[first + k];
                if ((uint)v >= (uint)vertexTotal)
                {
                    throw new LrmFormatException($"{path}: line {line}: vertex index {v} is outside [0, {vertexTotal})");
                }
                if (!remap.TryGetValue((v, material), out var index))
                {
                    index = builder.VertexCount;
                    builder.Positions.AddRange([positions[3 * v], positions[3 * v + 1], positions[3 * v + 2]]);
                    builder.Colors.AddRange(color);
                    remap[(v, material)] = index;
                }
                mapped[k] = index;
            }
            builder.AddPolygon(mapped, $"line {line}");
        }
        return builder.Build();
    }

    /// <summary>
    /// Reads the libraries an <c>mtllib</c> line names: one or more file names separated by blanks, or one name with
    /// blanks in it when a file of that whole name exists (what some exporters write). Each library is read once.
    /// </summary>
    private static void ReadLibraries(string names, string objPath, HashSet<string> librariesRead, Dictionary<string, float[]> materials)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(objPath)) ?? ".";
        var whole = LibraryPath(folder, names, objPath);
        IEnumerable<string> libraries = File.Exists(whole) ? [whole] : names.Split(' ').Select(name => LibraryPath(folder, name, objPath));
        foreach (var library in libraries)
        {
            if (librariesRead.Add(library))
            {
                ReadMaterials(library, materials);
            }
        }
    }

    /// <summary>
    /// Where the library <paramref name="name"/> lies: inside <paramref name="folder"/> (the OBJ's) or below it. A name
    /// that leads out of it (absolute, or through <c>..</c>) becomes its bare file name in the folder, so that nothing
    /// outside the OBJ's folder is read.
    /// </summary>
    private static string LibraryPath(string folder, string name, string objPath)
    {
        try
        {
            var full = Path.GetFullPath(Path.Combine(folder, name));
            var relative = Path.GetRelativePath(folder, full);
            var outside = Path.IsPathRooted(relative) || relative == ".."
                || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal);
            return outside ? Path.Combine(folder, Path.GetFileName(full)) : full;
        }
        catch (ArgumentException error)
        {
            throw new LrmFormatException($"{objPath}: the material library name '{name}' is not a usable file name: {error.Message}");
        }
    }

    private static void ReadMaterials(string mtlPath, Dictionary<string, float[]> materials)
    {
        // Missing, empty, or not a regular file (a FIFO, a device report no size): no material colours, and
        // nothing is opened that could block or never end.
        var info = FileErrors.Reading(mtlPath, "the material library", () => FileLength.Resolve(new FileInfo(mtlPath)));
        if (!info.Exists || info.Length == 0)
        {
            return;
        }
        var bytes = MeshReader.ReadAll(mtlPath, "material library");
        string? name = null;
        var lines = new Lines(bytes);
        while (lines.Next(out var line, out var lineNumber))
        {
            var words = new Words(line);
            if (!words.Next(out var keyword))
            {
                continue;
            }
            if (keyword.SequenceEqual("newmtl"u8) && !words.Rest.IsEmpty)
            {
                name = Name(words.Rest, mtlPath, lineNumber);
            }
            else if (keyword.SequenceEqual("Kd"u8) && name is not null)
            {
                var values = new float[3];
                var ok = true;
                for (var k = 0; k < 3; k++)
                {
                    ok &= words.Next(out var word) && float.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out values[k]);
                }
                if (ok)
                {
                    materials[name] = values;
                }
            }
        }
    }

    /// <summary>A name that runs to the end of the line, its blanks collapsed to single spaces.</summary>
    private static string Name(ReadOnlySpan<byte> rest, string path, int line)
    {
        if (rest.Length > MaxNameBytes)
        {
            throw new LrmFormatException($"{path}:{line}: a name of {rest.Length} bytes; at most {MaxNameBytes} are read");
        }
        return string.Join(' ', Encoding.UTF8.GetString(rest).Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries));
    }

    private static float Number(ReadOnlySpan<byte> word, string path, int line) =>
        float.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new LrmFormatException($"{path}:{line}: '{Shown(word)}' is not a number");

    /// <summary>A word for an error message, cut short so that a huge one does not become a huge message.</summary>
    private static string Shown(ReadOnlySpan<byte> word) =>
        word.Length <= 64 ? Encoding.UTF8.GetString(word) : Encoding.UTF8.GetString(word[..64]) + "…";

    /// <summary>The lines of UTF-8 text (a leading byte order mark skipped), numbered from 1, '#' comments cut off.</summary>
    private ref struct Lines(ReadOnlySpan<byte> text)
    {
        private ReadOnlySpan<byte> _rest = text.StartsWith("\uFEFF"u8) ? text[3..] : text;
        private int _number;
        private bool _done;

        public bool Next(out ReadOnlySpan<byte> line, out int number)
        {
            if (_done)
            {
                line = default;
                number = _number;
                return false;
            }
            var end = _rest.IndexOf((byte)'\n');
            if (end < 0)
            {
                line = _rest;
                _done = true;
            }
            else
            {
                line = _rest[..end];
                _rest = _rest[(end + 1)..];
            }
            var hash = line.IndexOf((byte)'#');
            if (hash >= 0)
            {
                line = line[..hash];
            }
            number = ++_number;
            return true;
        }
    }

    /// <summary>The blank-separated words of one line.</summary>
    private ref struct Words(ReadOnlySpan<byte> line)
    {
        private ReadOnlySpan<byte> _rest = line;

        /// <summary>What follows the words taken so far, without blanks at either end.</summary>
        public readonly ReadOnlySpan<byte> Rest => _rest.Trim(Blanks);

        public bool Next(out ReadOnlySpan<byte> word)
        {
            var start = _rest.IndexOfAnyExcept(Blanks);
            if (start < 0)
            {
                _rest = default;
                word = default;
                return false;
            }
            _rest = _rest[start..];
            var end = _rest.IndexOfAny(Blanks);
            word = end < 0 ? _rest : _rest[..end];
            _rest = end < 0 ? default : _rest[end..];
            return true;
        }
    }
}
