using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// <see cref="Mesh"/> and its PLY, OBJ and GLB writers, checked by small readers written here from the format
/// specifications (not the writers' code): counts, values, GLB accessor min/max, the z-up → y-up rotation, winding
/// (positive signed volume after conversion), index bounds, 4-byte alignment; bad meshes; atomic writes.
/// </summary>
[TestFixture]
public sealed class MeshWriterTests : TemporaryFolderFixture
{
    // ---- test meshes: closed, wound counter-clockwise seen from outside ----

    /// <summary>An off-centre box (x ∈ [−0.5, 0.7], y ∈ [−0.3, 0.9], z ∈ [0.1, 1.1]); vertex i has bits x, y, z.</summary>
    private static Mesh Cube(bool colors = true, bool normals = false)
    {
        var positions = new float[24];
        var rgb = new float[24];
        for (var i = 0; i < 8; i++)
        {
            positions[3 * i] = (i & 1) != 0 ? 0.7f : -0.5f;
            positions[3 * i + 1] = (i & 2) != 0 ? 0.9f : -0.3f;
            positions[3 * i + 2] = (i & 4) != 0 ? 1.1f : 0.1f;
            rgb[3 * i] = (i & 1) * 1f;
            rgb[3 * i + 1] = (i & 2) / 2 * 0.5f;
            rgb[3 * i + 2] = i / 7f;
        }
        int[] triangles =
        [
            0, 2, 1, 1, 2, 3, // −z
            4, 5, 6, 5, 7, 6, // +z
            0, 1, 5, 0, 5, 4, // −y
            2, 6, 7, 2, 7, 3, // +y
            0, 4, 6, 0, 6, 2, // −x
            1, 3, 7, 1, 7, 5, // +x
        ];
        var mesh = new Mesh(positions, triangles, colors ? rgb : default);
        return normals ? mesh.ComputeVertexNormals() : mesh;
    }

    private static Mesh Tetrahedron(bool normals = true) =>
        new Mesh([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3],
            [1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5f, 0.5f, 0.5f]) is var mesh && normals ? mesh.ComputeVertexNormals() : mesh;

    /// <summary>An icosahedron subdivided twice onto the unit sphere, centred at (0.25, −0.5, 2): 162 vertices, 320 triangles.</summary>
    private static Mesh Icosphere(int subdivisions = 2)
    {
        var (points, triangles) = DatasetTestSupport.UnitIcosphere(subdivisions);
        var positions = new List<float>();
        var colors = new List<float>();
        foreach (var (x, y, z) in points)
        {
            positions.AddRange([(float)(x + 0.25), (float)(y - 0.5), (float)(z + 2)]);
            colors.AddRange([(float)(x + 1) / 2, (float)(y + 1) / 2, (float)(z + 1) / 2]);
        }
        return new Mesh(positions.ToArray(), triangles, colors.Select(c => Math.Clamp(c, 0f, 1f)).ToArray());
    }

    private static (double X, double Y, double Z) Cross((double X, double Y, double Z) a, (double X, double Y, double Z) b) =>
        (a.Y * b.Z - a.Z * b.Y, a.Z * b.X - a.X * b.Z, a.X * b.Y - a.Y * b.X);

    /// <summary>Σ p_a · (p_b × p_c) / 6: the enclosed volume, positive when triangles face outward.</summary>
    private static double SignedVolume(ReadOnlySpan<float> positions, IReadOnlyList<int> triangles)
    {
        var volume = 0.0;
        for (var t = 0; t < triangles.Count; t += 3)
        {
            var (a, b, c) = (P(positions, triangles[t]), P(positions, triangles[t + 1]), P(positions, triangles[t + 2]));
            var n = Cross(b, c);
            volume += (a.X * n.X + a.Y * n.Y + a.Z * n.Z) / 6;
        }
        return volume;

        static (double X, double Y, double Z) P(ReadOnlySpan<float> positions, int v) => (positions[3 * v], positions[3 * v + 1], positions[3 * v + 2]);
    }

    public static IEnumerable<TestCaseData> Meshes()
    {
        yield return new TestCaseData("cube", false).SetName("{m}(cube)");
        yield return new TestCaseData("cube+normals", true).SetName("{m}(cube+normals)");
        yield return new TestCaseData("tetrahedron", true).SetName("{m}(tetrahedron)");
        yield return new TestCaseData("icosphere", false).SetName("{m}(icosphere)");
        yield return new TestCaseData("icosphere+normals", true).SetName("{m}(icosphere+normals)");
    }

    private static Mesh Named(string name, bool normals) => name.Split('+')[0] switch
    {
        "cube" => Cube(normals: normals),
        "tetrahedron" => Tetrahedron(normals),
        "icosphere" => normals ? Icosphere().ComputeVertexNormals() : Icosphere(),
        _ => throw new ArgumentException(name),
    };

    // ---- an independent binary PLY reader ----

    private sealed record PlyData(List<string> Properties, float[] Positions, float[]? Normals, byte[]? Colors, int[] Triangles);

    private static PlyData ReadPly(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var end = bytes.AsSpan().IndexOf("end_header\n"u8);
        Assert.That(end, Is.GreaterThan(0), "PLY header has no end_header line");
        var lines = Encoding.ASCII.GetString(bytes, 0, end).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines[0], Is.EqualTo("ply"));
        Assert.That(lines[1], Is.EqualTo("format binary_little_endian 1.0"));
        var elements = new List<(string Name, int Count, List<string[]> Properties)>();
        foreach (var line in lines.Skip(2))
        {
            var words = line.Split(' ');
            if (words[0] == "element")
            {
                elements.Add((words[1], int.Parse(words[2], CultureInfo.InvariantCulture), []));
            }
            else if (words[0] == "property")
            {
                elements[^1].Properties.Add(words[1..]);
            }
        }
        Assert.That(elements.Select(e => e.Name), Is.EqualTo(new[] { "vertex", "face" }));
        var offset = end + "end_header\n".Length;
        var vertex = elements[0];
        var names = vertex.Properties.Select(p => p[^1]).ToList();
        var values = new Dictionary<string, double[]>();
        foreach (var name in names)
        {
            values[name] = new double[vertex.Count];
        }
        for (var v = 0; v < vertex.Count; v++)
        {
            foreach (var property in vertex.Properties)
            {
                switch (property[0])
                {
                    case "float":
                        values[property[1]][v] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(offset));
                        offset += 4;
                        break;
                    case "uchar":
                        values[property[1]][v] = bytes[offset++];
                        break;
                    default:
                        Assert.Fail($"unexpected vertex property type {property[0]}");
                        break;
                }
            }
        }
        var face = elements[1];
        Assert.That(face.Properties, Has.Count.EqualTo(1));
        Assert.That(face.Properties[0], Is.EqualTo(new[] { "list", "uchar", "int", "vertex_indices" }));
        var triangles = new List<int>();
        for (var f = 0; f < face.Count; f++)
        {
            Assert.That(bytes[offset++], Is.EqualTo(3), $"face {f} is not a triangle");
            for (var k = 0; k < 3; k++, offset += 4)
            {
                triangles.Add(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset)));
            }
        }
        Assert.That(offset, Is.EqualTo(bytes.Length), "PLY has bytes after the last face");
        float[]? Triples(string a, string b, string c) => values.TryGetValue(a, out var first)
            ? Enumerable.Range(0, vertex.Count).SelectMany(v => new[] { (float)first[v], (float)values[b][v], (float)values[c][v] }).ToArray()
            : null;
        var colors = Triples("red", "green", "blue");
        return new PlyData(names, Triples("x", "y", "z")!, Triples("nx", "ny", "nz"), colors?.Select(c => (byte)c).ToArray(),
            triangles.ToArray());
    }

    // ---- an independent OBJ reader ----

    private sealed record ObjData(List<float> Positions, List<float> Colors, List<float> Normals, List<int> Triangles, List<string> FaceLines);

    private static ObjData ReadObj(string path)
    {
        var data = new ObjData([], [], [], [], []);
        foreach (var line in File.ReadAllLines(path))
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0 || words[0].StartsWith('#'))
            {
                continue;
            }
            float F(string text) => float.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
            switch (words[0])
            {
                case "v":
                    Assert.That(words, Has.Length.EqualTo(4).Or.Length.EqualTo(7), line);
                    data.Positions.AddRange(words[1..4].Select(F));
                    data.Colors.AddRange(words.Skip(4).Select(F));
                    break;
                case "vn":
                    data.Normals.AddRange(words[1..].Select(F));
                    break;
                case "f":
                    Assert.That(words, Has.Length.EqualTo(4), line);
                    data.FaceLines.Add(line);
                    foreach (var corner in words[1..])
                    {
                        var parts = corner.Split('/');
                        if (parts.Length == 3)
                        {
                            Assert.That(parts[1], Is.Empty);
                            Assert.That(parts[2], Is.EqualTo(parts[0]), "normal index differs from the vertex index");
                        }
                        data.Triangles.Add(int.Parse(parts[0], CultureInfo.InvariantCulture) - 1);
                    }
                    break;
                default:
                    Assert.Fail($"unexpected OBJ line '{line}'");
                    break;
            }
        }
        return data;
    }

    // ---- an independent GLB reader ----

    private sealed class GlbData(byte[] file, JsonElement root, byte[] bin, int jsonLength)
    {
        public byte[] File { get; } = file;
        public JsonElement Root { get; } = root;
        public byte[] Bin { get; } = bin;
        public int JsonLength { get; } = jsonLength;

        public JsonElement Primitive => Root.GetProperty("meshes")[0].GetProperty("primitives")[0];

        public JsonElement Accessor(int index) => Root.GetProperty("accessors")[index];

        public int AttributeIndex(string name) => Primitive.GetProperty("attributes").GetProperty(name).GetInt32();

        public bool HasAttribute(string name) => Primitive.GetProperty("attributes").TryGetProperty(name, out _);

        /// <summary>An accessor's elements as floats (FLOAT) or integers (UNSIGNED_INT), from its bufferView.</summary>
        public double[] Read(int index, out int components)
        {
            var accessor = Accessor(index);
            var view = Root.GetProperty("bufferViews")[accessor.GetProperty("bufferView").GetInt32()];
            components = accessor.GetProperty("type").GetString() switch
            {
                "SCALAR" => 1,
                "VEC3" => 3,
                var type => throw new AssertionException($"unexpected accessor type {type}"),
            };
            var count = accessor.GetProperty("count").GetInt32();
            var componentType = accessor.GetProperty("componentType").GetInt32();
            Assert.That(componentType, Is.EqualTo(5126).Or.EqualTo(5125));
            var start = view.GetProperty("byteOffset").GetInt32() + (accessor.TryGetProperty("byteOffset", out var o) ? o.GetInt32() : 0);
            Assert.That(view.TryGetProperty("byteStride", out _), Is.False, "tightly packed views need no byteStride");
            Assert.That(4 * components * count, Is.LessThanOrEqualTo(view.GetProperty("byteLength").GetInt32()));
            var values = new double[count * components];
            for (var i = 0; i < values.Length; i++)
            {
                var span = Bin.AsSpan(start + 4 * i);
                values[i] = componentType == 5126 ? BinaryPrimitives.ReadSingleLittleEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span);
            }
            return values;
        }
    }

    private static GlbData ReadGlb(string path)
    {
        var file = File.ReadAllBytes(path);
        var span = file.AsSpan();
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(span), Is.EqualTo(0x46546C67u), "magic");
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(span[4..]), Is.EqualTo(2u), "version");
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(span[8..]), Is.EqualTo((uint)file.Length), "header length");
        var jsonLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[12..]);
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(span[16..]), Is.EqualTo(0x4E4F534Au), "first chunk is JSON");
        Assert.That(jsonLength % 4, Is.Zero, "JSON chunk length is a multiple of 4");
        var jsonBytes = span.Slice(20, jsonLength);
        var binChunk = 20 + jsonLength;
        Assert.That(binChunk % 4, Is.Zero, "BIN chunk starts 4-byte aligned");
        var binLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[binChunk..]);
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(span[(binChunk + 4)..]), Is.EqualTo(0x004E4942u), "second chunk is BIN");
        Assert.That(binLength % 4, Is.Zero, "BIN chunk length is a multiple of 4");
        Assert.That(binChunk + 8 + binLength, Is.EqualTo(file.Length), "nothing after the BIN chunk");
        var text = Encoding.UTF8.GetString(jsonBytes);
        var trimmed = text.TrimEnd(' ');
        Assert.That(trimmed.Length, Is.GreaterThan(text.Length - 4), "JSON padded with at most 3 spaces");
        var root = JsonDocument.Parse(trimmed).RootElement;
        var bin = span.Slice(binChunk + 8, binLength).ToArray();
        var buffers = root.GetProperty("buffers");
        Assert.That(buffers.GetArrayLength(), Is.EqualTo(1));
        var bufferLength = buffers[0].GetProperty("byteLength").GetInt32();
        Assert.That(bufferLength, Is.LessThanOrEqualTo(binLength).And.GreaterThan(binLength - 4));
        Assert.That(bin.AsSpan(bufferLength).IndexOfAnyExcept((byte)0), Is.EqualTo(-1), "BIN padded with zeros");
        foreach (var view in root.GetProperty("bufferViews").EnumerateArray())
        {
            var offset = view.GetProperty("byteOffset").GetInt32();
            Assert.That(offset % 4, Is.Zero, "bufferView offset 4-byte aligned");
            Assert.That(offset + view.GetProperty("byteLength").GetInt32(), Is.LessThanOrEqualTo(bufferLength));
            Assert.That(view.GetProperty("target").GetInt32(), Is.EqualTo(34962).Or.EqualTo(34963));
        }
        return new GlbData(file, root, bin, jsonLength);
    }

    // ---- PLY ----

    [TestCaseSource(nameof(Meshes))]
    public void PlyRoundTrips(string name, bool normals)
    {
        var mesh = Named(name, normals);
        var path = PathOf("mesh.ply");
        mesh.SavePly(path);
        var ply = ReadPly(path);
        Assert.That(ply.Properties, Is.EqualTo(new[] { "x", "y", "z" }
            .Concat(normals ? ["nx", "ny", "nz"] : Array.Empty<string>())
            .Concat(["red", "green", "blue"])));
        Assert.That(ply.Positions, Is.EqualTo(mesh.Positions.ToArray()), "positions stay z-up, bit for bit");
        Assert.That(ply.Triangles, Is.EqualTo(mesh.Triangles.ToArray()));
        Assert.That(ply.Normals, normals ? Is.EqualTo(mesh.Normals.ToArray()) : Is.Null);
        var colors = mesh.Colors.ToArray();
        for (var i = 0; i < colors.Length; i++)
        {
            Assert.That(ply.Colors![i], Is.EqualTo(colors[i] * 255).Within(0.5), $"colour component {i}");
        }
        Assert.That(SignedVolume(ply.Positions, ply.Triangles), Is.GreaterThan(0));
    }

    [Test]
    public void PlyWithoutColoursOrNormalsHasOnlyPositions()
    {
        var path = PathOf("plain.ply");
        Cube(colors: false).SavePly(path);
        var ply = ReadPly(path);
        Assert.That(ply.Properties, Is.EqualTo(new[] { "x", "y", "z" }));
        Assert.That(ply.Colors, Is.Null);
        Assert.That(ply.Triangles, Has.Length.EqualTo(36));
    }

    // ---- OBJ ----

    [TestCaseSource(nameof(Meshes))]
    public void ObjRoundTrips(string name, bool normals)
    {
        var mesh = Named(name, normals);
        var path = PathOf("mesh.obj");
        mesh.SaveObj(path);
        var obj = ReadObj(path);
        Assert.That(obj.Positions, Is.EqualTo(mesh.Positions.ToArray()), "positions read back bit for bit, z-up");
        Assert.That(obj.Colors, Is.EqualTo(mesh.Colors.ToArray()), "v x y z r g b colours read back bit for bit");
        Assert.That(obj.Normals, Is.EqualTo(mesh.Normals.ToArray()));
        Assert.That(obj.Triangles, Is.EqualTo(mesh.Triangles.ToArray()));
        Assert.That(obj.FaceLines, normals ? Has.All.Contain("//") : Has.None.Contain("/"), "f v//n with normals, plain f v without");
        Assert.That(SignedVolume(obj.Positions.ToArray(), obj.Triangles), Is.GreaterThan(0));
    }

    [Test]
    public void ObjWithoutNormalsWritesPlainFacesAndUsesTheInvariantCulture()
    {
        var path = PathOf("plain.obj");
        var previous = CultureInfo.CurrentCulture;
        try
        {
            // A culture with a decimal comma and a typographic minus (custom cultures exist under InvariantGlobalization):
            // the writer must not use it.
            var comma = (CultureInfo)CultureInfo.InvariantCulture.Clone();
            comma.NumberFormat.NumberDecimalSeparator = ",";
            comma.NumberFormat.NegativeSign = "\u2212";
            CultureInfo.CurrentCulture = comma;
            Assert.That((-0.5).ToString(CultureInfo.CurrentCulture), Is.EqualTo("\u22120,5"), "the culture is in effect");
            Cube(colors: false).SaveObj(path);
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
        var lines = File.ReadAllLines(path);
        Assert.That(lines, Does.Contain("v -0.5 -0.3 0.1"));
        Assert.That(lines, Does.Contain("f 1 3 2"));
        Assert.That(lines.Where(l => l.StartsWith("vn", StringComparison.Ordinal)), Is.Empty);
        Assert.That(File.ReadAllText(path), Does.Not.Contain("\r"));
    }

    // ---- GLB ----

    [TestCaseSource(nameof(Meshes))]
    public void GlbHoldsTheMeshInYUp(string name, bool normals)
    {
        var mesh = Named(name, normals);
        var path = PathOf("mesh.glb");
        mesh.SaveGlb(path);
        var glb = ReadGlb(path);
        var root = glb.Root;
        Assert.That(root.GetProperty("asset").GetProperty("version").GetString(), Is.EqualTo("2.0"));
        Assert.That(root.GetProperty("asset").GetProperty("generator").GetString(), Does.StartWith("LrmNative "));
        Assert.That(root.GetProperty("scenes").GetArrayLength(), Is.EqualTo(1));
        Assert.That(root.GetProperty("nodes")[0].GetProperty("mesh").GetInt32(), Is.Zero);
        Assert.That(glb.Primitive.GetProperty("mode").GetInt32(), Is.EqualTo(4));

        var v = mesh.VertexCount;
        var positionIndex = glb.AttributeIndex("POSITION");
        var positions = glb.Read(positionIndex, out var components);
        Assert.That(components, Is.EqualTo(3));
        Assert.That(glb.Accessor(positionIndex).GetProperty("count").GetInt32(), Is.EqualTo(v));
        var source = mesh.Positions;
        for (var i = 0; i < v; i++)
        {
            // (x, y, z) z-up → (x, z, −y) y-up.
            Assert.That(positions[3 * i], Is.EqualTo(source[3 * i]), $"vertex {i} x");
            Assert.That(positions[3 * i + 1], Is.EqualTo(source[3 * i + 2]), $"vertex {i} y = z");
            Assert.That(positions[3 * i + 2], Is.EqualTo(-source[3 * i + 1]), $"vertex {i} z = −y");
        }
        var min = glb.Accessor(positionIndex).GetProperty("min").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var max = glb.Accessor(positionIndex).GetProperty("max").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (var k = 0; k < 3; k++)
        {
            var axis = Enumerable.Range(0, v).Select(i => positions[3 * i + k]).ToArray();
            Assert.That(min[k], Is.EqualTo(axis.Min()), $"POSITION min[{k}] exact");
            Assert.That(max[k], Is.EqualTo(axis.Max()), $"POSITION max[{k}] exact");
            Assert.That((double)(float)min[k], Is.EqualTo(min[k]), "min is a float value");
        }
        Assert.That(max[1], Is.EqualTo(mesh.Bounds.Max.Z), "glTF up (y) is the engine's z");

        var indexAccessor = glb.Accessor(glb.Primitive.GetProperty("indices").GetInt32());
        Assert.That(indexAccessor.GetProperty("componentType").GetInt32(), Is.EqualTo(5125));
        var indices = glb.Read(glb.Primitive.GetProperty("indices").GetInt32(), out _).Select(x => (int)x).ToArray();
        Assert.That(indices, Is.EqualTo(mesh.Triangles.ToArray()));
        Assert.That(indices, Has.All.InRange(0, v - 1));
        var converted = positions.Select(x => (float)x).ToArray();
        Assert.That(SignedVolume(converted, indices), Is.GreaterThan(0).And.EqualTo(SignedVolume(source, indices)).Within(1e-9),
            "the rotation keeps triangles facing outward");

        var normalValues = glb.Read(glb.AttributeIndex("NORMAL"), out _);
        var expectedNormals = mesh.HasNormals ? mesh.Normals.ToArray() : Mesh.AreaWeightedNormals(mesh.Positions, mesh.Triangles);
        for (var i = 0; i < v; i++)
        {
            var (x, y, z) = (normalValues[3 * i], normalValues[3 * i + 1], normalValues[3 * i + 2]);
            Assert.That(Math.Sqrt(x * x + y * y + z * z), Is.EqualTo(1).Within(1e-5), $"normal {i} is unit");
            Assert.That(new[] { x, y, z }, Is.EqualTo(new double[] { expectedNormals[3 * i], expectedNormals[3 * i + 2], -expectedNormals[3 * i + 1] }),
                $"normal {i} rotated like the positions");
        }

        Assert.That(glb.HasAttribute("COLOR_0"), Is.True);
        var colorAccessor = glb.Accessor(glb.AttributeIndex("COLOR_0"));
        Assert.That(colorAccessor.GetProperty("type").GetString(), Is.EqualTo("VEC3"));
        // glTF's vertex colours are linear; the mesh's are sRGB-encoded (IEC 61966-2-1, computed here in double).
        Assert.That(glb.Read(glb.AttributeIndex("COLOR_0"), out _),
            Is.EqualTo(mesh.Colors.ToArray().Select(c => c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4))).Within(1e-6));

        var material = root.GetProperty("materials")[glb.Primitive.GetProperty("material").GetInt32()];
        Assert.That(material.GetProperty("pbrMetallicRoughness").GetProperty("metallicFactor").GetDouble(), Is.Zero);
        GltfValidator.AssertValid(path);
    }

    [Test]
    public void GlbVertexColoursAreLinearAndReadBackAsTheMeshsSrgb()
    {
        // sRGB → linear at values from the standard's tables: 0.5 → 0.21404, the knee 0.04045 → 0.0031308.
        float[] srgb = [0f, 0.04045f, 0.5f, 1f, 0.2f, 0.8f, 0.735357f, 0.1f, 0.9f];
        double[] linear = [0, 0.0031308049535603713, 0.21404114048223255, 1, 0.033104766570885055, 0.6038273388553378, 0.5, 0.010022825574869039, 0.7874122893956174];
        var mesh = new Mesh([0, 0, 0, 1, 0, 0, 0, 1, 0], [0, 1, 2], srgb);
        var path = PathOf("colours.glb");
        mesh.SaveGlb(path);
        var stored = ReadGlb(path).Read(ReadGlb(path).AttributeIndex("COLOR_0"), out _);
        for (var i = 0; i < srgb.Length; i++)
        {
            Assert.That(stored[i], Is.EqualTo(linear[i]).Within(2e-7), $"COLOR_0 of sRGB {srgb[i]}");
        }
        GltfValidator.AssertValid(path);

        // Read back: the same colours as written (and as the PLY of the same mesh, up to its 8-bit rounding).
        var back = Mesh.Load(path).Colors.ToArray();
        Assert.That(back, Is.EqualTo(srgb).Within(1e-6));
        mesh.SavePly(PathOf("colours.ply"));
        Assert.That(Mesh.Load(PathOf("colours.ply")).Colors.ToArray(), Is.EqualTo(back).Within(0.5 / 255 + 1e-6));
    }

    [Test]
    public void GlbWithoutColoursHasNoColourAttribute()
    {
        var path = PathOf("plain.glb");
        Cube(colors: false).SaveGlb(path);
        var glb = ReadGlb(path);
        Assert.That(glb.HasAttribute("COLOR_0"), Is.False);
        Assert.That(glb.HasAttribute("NORMAL"), Is.True, "normals are computed for the file when the mesh has none");
        Assert.That(glb.Root.GetProperty("accessors").GetArrayLength(), Is.EqualTo(3));
        GltfValidator.AssertValid(path);
    }

    [Test]
    public void EmptyMeshCannotBeAGlbButIsAValidPlyAndObj()
    {
        var empty = new Mesh([], []);
        Assert.That(empty.IsEmpty, Is.True);
        var path = PathOf("empty.glb");
        var error = Assert.Throws<LrmInvalidArgumentException>(() => empty.SaveGlb(path));
        Assert.That(error!.Message, Does.Contain(path).And.Contain("empty"));
        Assert.That(File.Exists(path), Is.False);

        empty.SavePly(PathOf("empty.ply"));
        var ply = ReadPly(PathOf("empty.ply"));
        Assert.That(ply.Positions, Is.Empty);
        Assert.That(ply.Triangles, Is.Empty);
        empty.SaveObj(PathOf("empty.obj"));
        Assert.That(ReadObj(PathOf("empty.obj")).Positions, Is.Empty);
    }

    // ---- the mesh type ----

    [Test]
    public void VertexNormalsAreAreaWeighted()
    {
        var normals = Tetrahedron().Normals.ToArray();
        var third = (float)(1 / Math.Sqrt(3));
        // Vertex 0 meets three right triangles of area ½ facing −x, −y, −z.
        Assert.That(normals[..3], Is.EqualTo(new[] { -third, -third, -third }).Within(1e-6f));
        // Vertex 1: ½(0, 0, −1) + ½(0, −1, 0) + (√3/2)(1, 1, 1)/√3 = (½, 0, 0); unweighted it would lean towards (1, 1, 1).
        Assert.That(normals[3..6], Is.EqualTo(new[] { 1f, 0f, 0f }).Within(1e-6f));

        var sphere = Icosphere().ComputeVertexNormals();
        for (var v = 0; v < sphere.VertexCount; v++)
        {
            var p = sphere.Positions;
            var n = sphere.Normals;
            var radial = (p[3 * v] - 0.25) * n[3 * v] + (p[3 * v + 1] + 0.5) * n[3 * v + 1] + (p[3 * v + 2] - 2) * n[3 * v + 2];
            Assert.That(radial, Is.GreaterThan(0.99), $"icosphere normal {v} points outward");
        }
    }

    [Test]
    public void BoundsAndCountsDescribeTheMesh()
    {
        var cube = Cube();
        Assert.That(cube.VertexCount, Is.EqualTo(8));
        Assert.That(cube.TriangleCount, Is.EqualTo(12));
        Assert.That(cube.Bounds.Min, Is.EqualTo(new System.Numerics.Vector3(-0.5f, -0.3f, 0.1f)));
        Assert.That(cube.Bounds.Max, Is.EqualTo(new System.Numerics.Vector3(0.7f, 0.9f, 1.1f)));
        Assert.That(SignedVolume(cube.Positions, cube.Triangles.ToArray()), Is.EqualTo(1.2 * 1.2 * 1.0).Within(1e-6));
        var sphere = Icosphere();
        Assert.That((sphere.VertexCount, sphere.TriangleCount), Is.EqualTo((162, 320)));
        Assert.That(new Mesh([], []).Bounds, Is.EqualTo(default(MeshBounds)));
    }

    [Test]
    public void GivenNormalsAreNormalised()
    {
        var mesh = new Mesh([0, 0, 0, 1, 0, 0, 0, 1, 0], [0, 1, 2], normals: [0, 0, 2, 0, 0, 5, 3, 0, 4]);
        Assert.That(mesh.Normals.ToArray(), Is.EqualTo(new[] { 0f, 0f, 1f, 0f, 0f, 1f, 0.6f, 0f, 0.8f }).Within(1e-7f));
    }

    [Test]
    public void BadMeshesGiveTypedErrors()
    {
        float[] triangle = [0, 0, 0, 1, 0, 0, 0, 1, 0];
        Assert.Multiple(() =>
        {
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh(triangle, [0, 1, 3]))!.Message,
                Does.Contain("triangle 0").And.Contain("vertex 3").And.Contain("[0, 3)"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh(triangle, [0, 1, 2, 2, -1, 0]))!.Message,
                Does.Contain("triangle 1").And.Contain("vertex -1"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh([0, 0, 0, 1, float.NaN, 0, 0, 1, 0], [0, 1, 2]))!.Message,
                Does.Contain("vertex 1").And.Contain("non-finite"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh([0, 0, 0, 1, 0, 0, 0, float.PositiveInfinity, 0], [0, 1, 2]))!.Message,
                Does.Contain("vertex 2"));
            Assert.That(Assert.Throws<LrmShapeException>(() => _ = new Mesh(triangle, [0, 1, 2], colors: [1, 0, 0, 0, 1, 0]))!.Message,
                Does.Contain("colours").And.Contain("9 values for 3 vertices").And.Contain("got 6"));
            Assert.That(Assert.Throws<LrmShapeException>(() => _ = new Mesh(triangle, [0, 1, 2], normals: [0, 0, 1]))!.Message,
                Does.Contain("normals"));
            Assert.That(Assert.Throws<LrmShapeException>(() => _ = new Mesh([0, 0, 0, 1], [0, 0, 0]))!.Message,
                Does.Contain("positions").And.Contain("4 values"));
            Assert.That(Assert.Throws<LrmShapeException>(() => _ = new Mesh(triangle, [0, 1]))!.Message,
                Does.Contain("triangles").And.Contain("2 values"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh(triangle, [0, 1, 2], colors: [0, 0, 0, 0, 1.5f, 0, 0, 0, 0]))!.Message,
                Does.Contain("vertex 1").And.Contain("outside [0, 1]"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh(triangle, [0, 1, 2], colors: [0, 0, 0, 0, 0, 0, 0, 0, float.NaN]))!.Message,
                Does.Contain("vertex 2"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => _ = new Mesh(triangle, [0, 1, 2], normals: [0, 0, 1, 0, 0, 0, 0, 0, 1]))!.Message,
                Does.Contain("vertex 1").And.Contain("normal"));
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => Cube().Save(PathOf("mesh.stl")))!.Message,
                Does.Contain(".stl").And.Contain(".glb"));
        });
    }

    [Test]
    public void SaveChoosesTheFormatByExtension()
    {
        var cube = Cube();
        cube.Save(PathOf("a.GLB"));
        cube.Save(PathOf("a.ply"));
        cube.Save(PathOf("a.Obj"));
        Assert.That(File.ReadAllBytes(PathOf("a.GLB"))[..4], Is.EqualTo("glTF"u8.ToArray()));
        Assert.That(File.ReadAllText(PathOf("a.ply")), Does.StartWith("ply\n"));
        Assert.That(File.ReadAllText(PathOf("a.Obj")), Does.StartWith("# LrmNative"));
        GltfValidator.AssertValid(PathOf("a.GLB"));
    }

    [Test]
    public void SameMeshGivesSameBytes()
    {
        foreach (var extension in new[] { "glb", "ply", "obj" })
        {
            Icosphere().ComputeVertexNormals().Save(PathOf($"first.{extension}"));
            Icosphere().ComputeVertexNormals().Save(PathOf($"second.{extension}"));
            Assert.That(File.ReadAllBytes(PathOf($"second.{extension}")), Is.EqualTo(File.ReadAllBytes(PathOf($"first.{extension}"))), extension);
        }
        GltfValidator.AssertValid(PathOf("first.glb"));
    }

    // ---- atomic writes ----

    [Test]
    public void WritesLeaveNoTemporaryFiles()
    {
        var cube = Cube(normals: true);
        cube.SaveGlb(PathOf("out/mesh.glb"));
        cube.SavePly(PathOf("out/mesh.ply"));
        cube.SaveObj(PathOf("out/mesh.obj"));
        cube.SaveGlb(PathOf("out/mesh.glb")); // overwriting too
        Assert.That(Directory.GetFiles(PathOf("out")).Select(Path.GetFileName).Order(),
            Is.EqualTo(new[] { "mesh.glb", "mesh.obj", "mesh.ply" }));
        GltfValidator.AssertValid(PathOf("out/mesh.glb"));
    }

    [Test]
    public void AFailedWriteLeavesThePreviousFileIntact()
    {
        var path = PathOf("mesh.glb");
        Cube().SaveGlb(path);
        var before = File.ReadAllBytes(path);

        Assert.Throws<LrmInvalidArgumentException>(() => new Mesh([], []).SaveGlb(path));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        GltfValidator.AssertValid(path);

        // A writer that fails halfway, after part of a mesh has gone to the temporary file.
        var ply = PathOf("mesh.ply");
        Cube().SavePly(ply);
        var plyBefore = File.ReadAllBytes(ply);
        var full = Assert.Throws<LrmFormatException>(() => AtomicFile.Write(ply, stream =>
        {
            PlyWriter.Write(stream, Icosphere());
            throw new IOException("disk full (simulated)");
        }));
        Assert.That(full!.Message, Does.StartWith(ply).And.Contain("disk full (simulated)"), "the file-system error, with the file named");
        Assert.That(File.ReadAllBytes(ply), Is.EqualTo(plyBefore));
        Assert.That(Directory.GetFiles(Folder).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "mesh.glb", "mesh.ply" }));
    }

    [Test]
    public void UnwritableFolderIsOneClearError()
    {
        var blocker = PathOf("not-a-folder");
        File.WriteAllText(blocker, "a file where a folder should be");
        var path = Path.Combine(blocker, "mesh.obj");
        var error = Assert.Throws<LrmFormatException>(() => Cube().SaveObj(path));
        Assert.That(error!.Message, Does.Contain(path).And.Contain("OBJ"));
        Assert.That(Directory.GetFiles(Folder), Has.Length.EqualTo(1));
    }
}
