using System.Globalization;
using System.Text;

namespace LrmNative.IO;

/// <summary>
/// Wavefront OBJ: <c>v x y z [r g b]</c> (the vertex-colour extension; a fourth value alone is the ignored w),
/// <c>f</c> with <c>a</c>, <c>a/t</c>, <c>a/t/n</c> or <c>a//n</c> corners, 1-based or negative (relative) indices,
/// polygons fanned into triangles; <c>mtllib</c>/<c>usemtl</c> give each face its material's diffuse colour
/// (<c>Kd</c>) when the vertices have no colours (vertices shared by faces of different materials are duplicated).
/// Texture coordinates, normals, lines and groups are ignored; a missing .mtl file means no material colours.
/// </summary>
internal static class ObjReader
{
    private static readonly float[] DefaultColor = [0.8f, 0.8f, 0.8f];

    public static Mesh Read(byte[] bytes, string path)
    {
        var text = Encoding.UTF8.GetString(bytes);
        var positions = new List<float>();
        var vertexColors = new List<float>();
        var faces = new List<(int[] Corners, int Material, int Line)>();
        var materials = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var materialNames = new List<string> { "" };
        var current = 0;
        var lineNumber = 0;
        var coloredVertices = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r');
            var hash = line.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0)
            {
                line = line[..hash];
            }
            var words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0)
            {
                continue;
            }
            switch (words[0])
            {
                case "v":
                    if (words.Length is not (4 or 5 or 7 or 8))
                    {
                        throw new LrmFormatException($"{path}:{lineNumber}: a 'v' line needs x y z [w] or x y z r g b, got {words.Length - 1} values");
                    }
                    for (var k = 1; k <= 3; k++)
                    {
                        positions.Add(Number(words[k], path, lineNumber));
                    }
                    if (words.Length >= 7)
                    {
                        for (var k = 4; k <= 6; k++)
                        {
                            vertexColors.Add(Number(words[k], path, lineNumber));
                        }
                        coloredVertices++;
                    }
                    else
                    {
                        vertexColors.AddRange(DefaultColor);
                    }
                    break;
                case "f":
                    {
                        var corners = new int[words.Length - 1];
                        var vertexCount = positions.Count / 3;
                        for (var k = 1; k < words.Length; k++)
                        {
                            var first = words[k].Split('/')[0];
                            if (!int.TryParse(first, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var index) || index == 0)
                            {
                                throw new LrmFormatException($"{path}:{lineNumber}: bad face corner '{words[k]}'");
                            }
                            corners[k - 1] = index > 0 ? index - 1 : vertexCount + index;
                        }
                        faces.Add((corners, current, lineNumber));
                        break;
                    }
                case "mtllib" when words.Length >= 2:
                    ReadMaterials(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", string.Join(' ', words[1..])), materials);
                    break;
                case "usemtl" when words.Length >= 2:
                    {
                        var name = string.Join(' ', words[1..]);
                        current = materialNames.IndexOf(name);
                        if (current < 0)
                        {
                            materialNames.Add(name);
                            current = materialNames.Count - 1;
                        }
                        break;
                    }
                default:
                    break; // vt, vn, o, g, s, l, …
            }
        }
        var builder = new MeshBuilder(path);
        var useMaterials = coloredVertices == 0 && materialNames.Skip(1).Any(materials.ContainsKey);
        if (coloredVertices != 0 && coloredVertices != positions.Count / 3)
        {
            throw new LrmFormatException($"{path}: {coloredVertices} of {positions.Count / 3} vertices have colours; either all or none must");
        }
        if (!useMaterials)
        {
            builder.Positions.AddRange(positions);
            if (coloredVertices > 0)
            {
                builder.Colors = vertexColors;
            }
            foreach (var (corners, _, line) in faces)
            {
                builder.AddPolygon(corners, $"line {line}");
            }
            return builder.Build();
        }
        // One output vertex per (vertex, material) pair, coloured by the material's Kd.
        builder.Colors = [];
        var remap = new Dictionary<(int, int), int>();
        var vertexTotal = positions.Count / 3;
        foreach (var (corners, material, line) in faces)
        {
            var color = materials.TryGetValue(materialNames[material], out var kd) ? kd : DefaultColor;
            var mapped = new int[corners.Length];
            for (var k = 0; k < corners.Length; k++)
            {
                var v = corners[k];
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

    private static void ReadMaterials(string mtlPath, Dictionary<string, float[]> materials)
    {
        if (!File.Exists(mtlPath))
        {
            return;
        }
        string? name = null;
        foreach (var rawLine in File.ReadAllLines(mtlPath))
        {
            var words = rawLine.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length >= 2 && words[0] == "newmtl")
            {
                name = string.Join(' ', words[1..]);
            }
            else if (words.Length >= 4 && words[0] == "Kd" && name is not null)
            {
                var values = new float[3];
                var ok = true;
                for (var k = 0; k < 3; k++)
                {
                    ok &= float.TryParse(words[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out values[k]);
                }
                if (ok)
                {
                    materials[name] = values;
                }
            }
        }
    }

    private static float Number(string word, string path, int line) =>
        float.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new LrmFormatException($"{path}:{line}: '{word}' is not a number");
}
