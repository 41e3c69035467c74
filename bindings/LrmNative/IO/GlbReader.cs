using System.Buffers.Binary;
using System.Text.Json;

namespace LrmNative.IO;

/// <summary>
/// Binary glTF 2.0 (GLB): every triangle primitive (mode 4, or strips/fans converted) of every mesh reached from the
/// default scene's nodes (all meshes when there are no scenes), placed by the node transforms (matrix or TRS; a
/// mirroring transform flips the winding back). POSITION, optional COLOR_0 (float, or normalised unsigned byte/short;
/// VEC3 or VEC4, alpha dropped) times the material's baseColorFactor, indices of any unsigned type. Textures are not
/// sampled (use the Blender path for textured assets). glTF is y-up; the engine is z-up, so (x, y, z) becomes
/// (x, −z, y), the inverse of <see cref="Mesh.SaveGlb"/>.
/// </summary>
internal static class GlbReader
{
    private const uint Magic = 0x46546C67;   // "glTF"
    private const uint JsonChunk = 0x4E4F534A;
    private const uint BinChunk = 0x004E4942;

    public static Mesh Read(byte[] file, string path)
    {
        if (file.Length < 20 || BinaryPrimitives.ReadUInt32LittleEndian(file) != Magic)
        {
            throw new LrmFormatException($"{path}: not a GLB file (no 'glTF' magic)");
        }
        var version = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(4));
        if (version != 2)
        {
            throw new LrmFormatException($"{path}: glTF version {version} is not supported (2 is read)");
        }
        var length = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8));
        if (length > file.Length)
        {
            throw new LrmFormatException($"{path}: the GLB header announces {length} bytes, the file has {file.Length} (truncated)");
        }
        var jsonLength = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(12));
        if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(16)) != JsonChunk || 20L + jsonLength > length)
        {
            throw new LrmFormatException($"{path}: the first GLB chunk is not a complete JSON chunk");
        }
        ReadOnlyMemory<byte> bin = ReadOnlyMemory<byte>.Empty;
        var binStart = 20L + jsonLength;
        if (binStart + 8 <= length)
        {
            var binLength = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan((int)binStart));
            if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan((int)binStart + 4)) == BinChunk)
            {
                if (binStart + 8 + binLength > length)
                {
                    throw new LrmFormatException($"{path}: the GLB BIN chunk runs past the end of the file (truncated)");
                }
                bin = file.AsMemory((int)binStart + 8, (int)binLength);
            }
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(file.AsMemory(20, (int)jsonLength));
        }
        catch (JsonException error)
        {
            throw new LrmFormatException($"{path}: the GLB JSON chunk is not valid JSON: {error.Message}");
        }
        using (document)
        {
            try
            {
                return new Reader(document.RootElement, bin, path).Read();
            }
            catch (Exception error) when (error is KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException or FormatException)
            {
                throw new LrmFormatException($"{path}: malformed glTF JSON ({error.Message})");
            }
        }
    }

    private sealed class Reader(JsonElement root, ReadOnlyMemory<byte> bin, string path)
    {
        private readonly MeshBuilder _builder = new(path);
        private bool _anyColor;

        public Mesh Read()
        {
            if (root.TryGetProperty("extensionsRequired", out var required) && required.GetArrayLength() > 0)
            {
                var names = string.Join(", ", required.EnumerateArray().Select(e => e.GetString()));
                throw new LrmUnsupportedException($"{path}: the GLB requires extensions this reader lacks: {names}");
            }
            var meshes = root.TryGetProperty("meshes", out var m) ? m : default;
            if (meshes.ValueKind != JsonValueKind.Array || meshes.GetArrayLength() == 0)
            {
                throw new LrmFormatException($"{path}: the GLB has no meshes");
            }
            _builder.Colors = [];
            if (root.TryGetProperty("scenes", out var scenes) && scenes.GetArrayLength() > 0)
            {
                var sceneIndex = root.TryGetProperty("scene", out var s) ? s.GetInt32() : 0;
                var scene = scenes[sceneIndex];
                if (scene.TryGetProperty("nodes", out var nodes))
                {
                    foreach (var node in nodes.EnumerateArray())
                    {
                        Visit(node.GetInt32(), Identity(), 0);
                    }
                }
            }
            else
            {
                for (var k = 0; k < meshes.GetArrayLength(); k++)
                {
                    AddMesh(meshes[k], Identity());
                }
            }
            if (!_anyColor)
            {
                _builder.Colors = null;
            }
            return _builder.Build();
        }

        private static double[] Identity() => [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

        private void Visit(int index, double[] parent, int depth)
        {
            if (depth > 64)
            {
                throw new LrmFormatException($"{path}: the glTF node hierarchy is deeper than 64 (a cycle?)");
            }
            var node = root.GetProperty("nodes")[index];
            var world = Multiply(parent, Local(node));
            if (node.TryGetProperty("mesh", out var mesh))
            {
                AddMesh(root.GetProperty("meshes")[mesh.GetInt32()], world);
            }
            if (node.TryGetProperty("children", out var children))
            {
                foreach (var child in children.EnumerateArray())
                {
                    Visit(child.GetInt32(), world, depth + 1);
                }
            }
        }

        // Column-major 4×4 in glTF; we keep row-major M with p' = M·p.
        private static double[] Local(JsonElement node)
        {
            if (node.TryGetProperty("matrix", out var matrix))
            {
                var m = matrix.EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var result = new double[16];
                for (var row = 0; row < 4; row++)
                {
                    for (var column = 0; column < 4; column++)
                    {
                        result[4 * row + column] = m[4 * column + row];
                    }
                }
                return result;
            }
            var t = node.TryGetProperty("translation", out var tr) ? tr.EnumerateArray().Select(e => e.GetDouble()).ToArray() : [0.0, 0, 0];
            var q = node.TryGetProperty("rotation", out var ro) ? ro.EnumerateArray().Select(e => e.GetDouble()).ToArray() : [0.0, 0, 0, 1];
            var s = node.TryGetProperty("scale", out var sc) ? sc.EnumerateArray().Select(e => e.GetDouble()).ToArray() : [1.0, 1, 1];
            double x = q[0], y = q[1], z = q[2], w = q[3];
            double[] r =
            [
                1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
            ];
            return
            [
                r[0] * s[0], r[1] * s[1], r[2] * s[2], t[0],
                r[3] * s[0], r[4] * s[1], r[5] * s[2], t[1],
                r[6] * s[0], r[7] * s[1], r[8] * s[2], t[2],
                0, 0, 0, 1,
            ];
        }

        private static double[] Multiply(double[] a, double[] b)
        {
            var c = new double[16];
            for (var i = 0; i < 4; i++)
            {
                for (var j = 0; j < 4; j++)
                {
                    double sum = 0;
                    for (var k = 0; k < 4; k++)
                    {
                        sum += a[4 * i + k] * b[4 * k + j];
                    }
                    c[4 * i + j] = sum;
                }
            }
            return c;
        }

        private void AddMesh(JsonElement mesh, double[] transform)
        {
            var determinant =
                transform[0] * (transform[5] * transform[10] - transform[6] * transform[9])
                - transform[1] * (transform[4] * transform[10] - transform[6] * transform[8])
                + transform[2] * (transform[4] * transform[9] - transform[5] * transform[8]);
            foreach (var primitive in mesh.GetProperty("primitives").EnumerateArray())
            {
                var mode = primitive.TryGetProperty("mode", out var md) ? md.GetInt32() : 4;
                if (mode is not (4 or 5 or 6))
                {
                    continue; // points and lines have no surface
                }
                var attributes = primitive.GetProperty("attributes");
                if (!attributes.TryGetProperty("POSITION", out var positionAccessor))
                {
                    throw new LrmFormatException($"{path}: a glTF primitive has no POSITION attribute");
                }
                var positions = ReadAccessor(positionAccessor.GetInt32(), out var components);
                if (components != 3)
                {
                    throw new LrmFormatException($"{path}: POSITION must be VEC3, got {components} components");
                }
                var count = positions.Length / 3;
                var factor = new double[] { 1, 1, 1 };
                if (primitive.TryGetProperty("material", out var materialIndex)
                    && root.GetProperty("materials")[materialIndex.GetInt32()].TryGetProperty("pbrMetallicRoughness", out var pbr)
                    && pbr.TryGetProperty("baseColorFactor", out var baseColor))
                {
                    factor = baseColor.EnumerateArray().Take(3).Select(e => e.GetDouble()).ToArray();
                    _anyColor = true;
                }
                double[]? colors = null;
                var colorComponents = 0;
                if (attributes.TryGetProperty("COLOR_0", out var colorAccessor))
                {
                    colors = ReadAccessor(colorAccessor.GetInt32(), out colorComponents);
                    if (colorComponents is not (3 or 4) || colors.Length / colorComponents != count)
                    {
                        throw new LrmFormatException($"{path}: COLOR_0 must be VEC3 or VEC4 with one value per vertex");
                    }
                    _anyColor = true;
                }
                var baseIndex = _builder.VertexCount;
                for (var v = 0; v < count; v++)
                {
                    double x = positions[3 * v], y = positions[3 * v + 1], z = positions[3 * v + 2];
                    var tx = transform[0] * x + transform[1] * y + transform[2] * z + transform[3];
                    var ty = transform[4] * x + transform[5] * y + transform[6] * z + transform[7];
                    var tz = transform[8] * x + transform[9] * y + transform[10] * z + transform[11];
                    // y-up → z-up.
                    _builder.Positions.AddRange([(float)tx, (float)-tz, (float)ty]);
                    for (var k = 0; k < 3; k++)
                    {
                        var c = colors is null ? 1.0 : colors[colorComponents * v + k];
                        _builder.Colors!.Add((float)(c * factor[k]));
                    }
                }
                int[] indices;
                if (primitive.TryGetProperty("indices", out var indexAccessor))
                {
                    var raw = ReadAccessor(indexAccessor.GetInt32(), out var indexComponents);
                    if (indexComponents != 1)
                    {
                        throw new LrmFormatException($"{path}: indices must be SCALAR");
                    }
                    indices = raw.Select(i => (int)i).ToArray();
                }
                else
                {
                    indices = Enumerable.Range(0, count).ToArray();
                }
                var flip = determinant < 0;
                var corners = new int[3];
                void Add(int a, int b, int c, int at)
                {
                    corners[0] = baseIndex + a;
                    corners[1] = baseIndex + (flip ? c : b);
                    corners[2] = baseIndex + (flip ? b : c);
                    if ((uint)a >= (uint)count || (uint)b >= (uint)count || (uint)c >= (uint)count)
                    {
                        throw new LrmFormatException($"{path}: triangle ({(uint)a}, {(uint)b}, {(uint)c}) at index position {at} refers outside [0, {count}) of its primitive");
                    }
                    _builder.AddPolygon(corners, $"primitive triangle {at / 3}");
                }
                switch (mode)
                {
                    case 4:
                        for (var i = 0; i + 2 < indices.Length; i += 3)
                        {
                            Add(indices[i], indices[i + 1], indices[i + 2], i);
                        }
                        break;
                    case 5:
                        for (var i = 0; i + 2 < indices.Length; i++)
                        {
                            if ((i & 1) == 0)
                            {
                                Add(indices[i], indices[i + 1], indices[i + 2], i);
                            }
                            else
                            {
                                Add(indices[i + 1], indices[i], indices[i + 2], i);
                            }
                        }
                        break;
                    default:
                        for (var i = 1; i + 1 < indices.Length; i++)
                        {
                            Add(indices[0], indices[i], indices[i + 1], i);
                        }
                        break;
                }
            }
        }

        private double[] ReadAccessor(int index, out int components)
        {
            var accessor = root.GetProperty("accessors")[index];
            if (accessor.TryGetProperty("sparse", out _))
            {
                throw new LrmUnsupportedException($"{path}: sparse glTF accessors are not supported (accessor {index})");
            }
            components = accessor.GetProperty("type").GetString() switch
            {
                "SCALAR" => 1,
                "VEC2" => 2,
                "VEC3" => 3,
                "VEC4" => 4,
                var type => throw new LrmFormatException($"{path}: accessor {index} has unsupported type {type}"),
            };
            var componentType = accessor.GetProperty("componentType").GetInt32();
            var size = componentType switch
            {
                5120 or 5121 => 1,
                5122 or 5123 => 2,
                5125 or 5126 => 4,
                _ => throw new LrmFormatException($"{path}: accessor {index} has unknown componentType {componentType}"),
            };
            var normalized = accessor.TryGetProperty("normalized", out var n) && n.GetBoolean();
            var count = accessor.GetProperty("count").GetInt32();
            if (count < 0)
            {
                throw new LrmFormatException($"{path}: accessor {index} has a negative count");
            }
            if (!accessor.TryGetProperty("bufferView", out var viewIndex))
            {
                return new double[(long)count * components]; // all zeros by the specification
            }
            var view = root.GetProperty("bufferViews")[viewIndex.GetInt32()];
            if (view.GetProperty("buffer").GetInt32() != 0)
            {
                throw new LrmUnsupportedException($"{path}: only the GLB's own binary buffer (buffer 0) is supported");
            }
            var viewOffset = view.TryGetProperty("byteOffset", out var vo) ? vo.GetInt64() : 0;
            var viewLength = view.GetProperty("byteLength").GetInt64();
            var accessorOffset = accessor.TryGetProperty("byteOffset", out var ao) ? ao.GetInt64() : 0;
            var stride = view.TryGetProperty("byteStride", out var st) ? st.GetInt64() : size * components;
            var elementBytes = (long)size * components;
            if (count > 0 && (viewOffset < 0 || viewOffset + viewLength > bin.Length || accessorOffset + stride * (count - 1) + elementBytes > viewLength))
            {
                throw new LrmFormatException($"{path}: accessor {index} reads outside its bufferView or the BIN chunk");
            }
            var values = new double[(long)count * components];
            var data = bin.Span;
            for (var e = 0; e < count; e++)
            {
                var start = (int)(viewOffset + accessorOffset + stride * e);
                for (var c = 0; c < components; c++)
                {
                    var span = data[(start + size * c)..];
                    double value = componentType switch
                    {
                        5120 => normalized ? Math.Max((sbyte)span[0] / 127.0, -1) : (sbyte)span[0],
                        5121 => normalized ? span[0] / 255.0 : span[0],
                        5122 => normalized ? Math.Max(BinaryPrimitives.ReadInt16LittleEndian(span) / 32767.0, -1) : BinaryPrimitives.ReadInt16LittleEndian(span),
                        5123 => normalized ? BinaryPrimitives.ReadUInt16LittleEndian(span) / 65535.0 : BinaryPrimitives.ReadUInt16LittleEndian(span),
                        5125 => BinaryPrimitives.ReadUInt32LittleEndian(span),
                        _ => BinaryPrimitives.ReadSingleLittleEndian(span),
                    };
                    values[(long)e * components + c] = value;
                }
            }
            return values;
        }
    }
}
