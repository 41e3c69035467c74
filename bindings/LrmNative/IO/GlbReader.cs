using System.Buffers.Binary;
using System.Text.Json;

namespace LrmNative.IO;

/// <summary>
/// Binary glTF 2.0 (GLB): every triangle primitive (mode 4, or strips/fans converted) of every mesh reached from the
/// default scene's nodes (all meshes when there are no scenes), placed by the node transforms (matrix or TRS; a
/// mirroring transform flips the winding back). POSITION, optional COLOR_0 (float, or normalised unsigned byte/short;
/// VEC3 or VEC4, alpha dropped) times the material's baseColorFactor — both linear in glTF, so the product is
/// converted to the sRGB encoding of <see cref="Mesh"/> colours — indices of any unsigned type. Textures are not
/// sampled (use the Blender path for textured assets). glTF is y-up; the engine is z-up, so (x, y, z) becomes
/// (x, −z, y), the inverse of <see cref="Mesh.SaveGlb"/>.
/// </summary>
internal static class GlbReader
{
    private const uint Magic = 0x46546C67;   // "glTF"
    private const uint JsonChunk = 0x4E4F534A;
    private const uint BinChunk = 0x004E4942;

    /// <summary>Most elements of accessors without a bufferView in one file (all zeros, nothing in the file backs them).</summary>
    private const int MaxZeroElements = 1 << 20;

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
            catch (Exception error) when (error is KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException or FormatException
                                               or ArgumentException or OverflowException)
            {
                throw new LrmFormatException($"{path}: malformed glTF JSON ({error.Message})");
            }
        }
    }

    private sealed class Reader(JsonElement root, ReadOnlyMemory<byte> bin, string path)
    {
        private readonly MeshBuilder _builder = new(path);
        private readonly HashSet<int> _visited = [];
        private int _zeroElementsLeft = MaxZeroElements;
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
                throw new LrmFormatException($"{path}: the glTF node hierarchy is deeper than 64 levels");
            }
            var node = root.GetProperty("nodes")[index];
            // glTF 2.0 §3.5.2: nodes form disjoint strict trees. A node reached twice would be placed twice, and a
            // chain of nodes each listing the next one twice doubles the work at every level.
            if (!_visited.Add(index))
            {
                throw new LrmFormatException(
                    $"{path}: glTF node {index} is reached twice (it has two parents, is in a cycle, or is listed twice in the scene); glTF nodes must form a tree");
            }
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
                var positionIndex = positionAccessor.GetInt32();
                var positions = ReadAccessor(positionIndex);
                if (positions.Components != 3)
                {
                    throw new LrmFormatException($"{path}: POSITION must be VEC3, got {positions.Components} components (accessor {positionIndex})");
                }
                var count = positions.Count;
                _builder.CheckVertexBudget(count, $"POSITION accessor {positionIndex}");
                var factor = new double[] { 1, 1, 1 };
                if (primitive.TryGetProperty("material", out var materialIndex)
                    && root.GetProperty("materials")[materialIndex.GetInt32()].TryGetProperty("pbrMetallicRoughness", out var pbr)
                    && pbr.TryGetProperty("baseColorFactor", out var baseColor))
                {
                    factor = baseColor.EnumerateArray().Take(3).Select(e => e.GetDouble()).ToArray();
                    _anyColor = true;
                }
                Accessor? colors = null;
                if (attributes.TryGetProperty("COLOR_0", out var colorAccessor))
                {
                    colors = ReadAccessor(colorAccessor.GetInt32());
                    if (colors.Value.Components is not (3 or 4) || colors.Value.Count != count)
                    {
                        throw new LrmFormatException($"{path}: COLOR_0 must be VEC3 or VEC4 with one value per vertex");
                    }
                    _anyColor = true;
                }
                var baseIndex = _builder.VertexCount;
                for (var v = 0; v < count; v++)
                {
                    double x = Value(positions, v, 0), y = Value(positions, v, 1), z = Value(positions, v, 2);
                    var tx = transform[0] * x + transform[1] * y + transform[2] * z + transform[3];
                    var ty = transform[4] * x + transform[5] * y + transform[6] * z + transform[7];
                    var tz = transform[8] * x + transform[9] * y + transform[10] * z + transform[11];
                    // y-up → z-up.
                    _builder.Positions.AddRange([(float)tx, (float)-tz, (float)ty]);
                    for (var k = 0; k < 3; k++)
                    {
                        var c = colors is { } color ? Value(color, v, k) : 1.0;
                        _builder.Colors!.Add((float)SrgbTransfer.ToSrgb(c * factor[k]));
                    }
                }
                // Indices are read as the triangles are made, so a long index accessor costs no memory of its own and
                // a bad index stops the reading at once.
                Accessor? indices = null;
                if (primitive.TryGetProperty("indices", out var indexAccessor))
                {
                    var index = indexAccessor.GetInt32();
                    indices = ReadAccessor(index);
                    if (indices.Value.Components != 1 || indices.Value.ComponentType is not (5121 or 5123 or 5125))
                    {
                        throw new LrmFormatException($"{path}: indices must be SCALAR of unsigned byte, short or int (accessor {index})");
                    }
                }
                var indexCount = indices?.Count ?? count;
                uint IndexAt(int i) => indices is { } a ? (uint)Value(a, i, 0) : (uint)i;
                var flip = determinant < 0;
                var corners = new int[3];
                void Add(uint a, uint b, uint c, int at)
                {
                    if (a >= (uint)count || b >= (uint)count || c >= (uint)count)
                    {
                        throw new LrmFormatException($"{path}: triangle ({a}, {b}, {c}) at index position {at} refers outside [0, {count}) of its primitive");
                    }
                    corners[0] = baseIndex + (int)a;
                    corners[1] = baseIndex + (int)(flip ? c : b);
                    corners[2] = baseIndex + (int)(flip ? b : c);
                    _builder.AddPolygon(corners, $"primitive triangle {at / 3}");
                }
                switch (mode)
                {
                    case 4:
                        for (var i = 0; i + 2 < indexCount; i += 3)
                        {
                            Add(IndexAt(i), IndexAt(i + 1), IndexAt(i + 2), i);
                        }
                        break;
                    case 5:
                        for (var i = 0; i + 2 < indexCount; i++)
                        {
                            if ((i & 1) == 0)
                            {
                                Add(IndexAt(i), IndexAt(i + 1), IndexAt(i + 2), i);
                            }
                            else
                            {
                                Add(IndexAt(i + 1), IndexAt(i), IndexAt(i + 2), i);
                            }
                        }
                        break;
                    default:
                        for (var i = 1; i + 1 < indexCount; i++)
                        {
                            Add(IndexAt(0), IndexAt(i), IndexAt(i + 1), i);
                        }
                        break;
                }
            }
        }

        /// <summary>
        /// An accessor's elements: <see cref="Count"/> of <see cref="Components"/> values each, the first at byte
        /// <see cref="Start"/> of the BIN chunk and one every <see cref="Stride"/> bytes, checked to lie inside its
        /// bufferView and the buffer; all zeros when <see cref="Zeros"/> (no bufferView).
        /// </summary>
        private readonly record struct Accessor(int Count, int Components, int ComponentType, bool Normalized, int Start, int Stride, bool Zeros);

        private static int ComponentBytes(int componentType) => componentType switch
        {
            5120 or 5121 => 1,
            5122 or 5123 => 2,
            _ => 4,
        };

        private Accessor ReadAccessor(int index)
        {
            var accessor = root.GetProperty("accessors")[index];
            if (accessor.TryGetProperty("sparse", out _))
            {
                throw new LrmUnsupportedException($"{path}: sparse glTF accessors are not supported (accessor {index})");
            }
            var components = accessor.GetProperty("type").GetString() switch
            {
                "SCALAR" => 1,
                "VEC2" => 2,
                "VEC3" => 3,
                "VEC4" => 4,
                var type => throw new LrmFormatException($"{path}: accessor {index} has unsupported type {type}"),
            };
            var componentType = accessor.GetProperty("componentType").GetInt32();
            if (componentType is not (5120 or 5121 or 5122 or 5123 or 5125 or 5126))
            {
                throw new LrmFormatException($"{path}: accessor {index} has unknown componentType {componentType}");
            }
            var elementBytes = ComponentBytes(componentType) * components;
            var normalized = accessor.TryGetProperty("normalized", out var n) && n.GetBoolean();
            var count = accessor.GetProperty("count").GetInt64();
            if (count < 0)
            {
                throw new LrmFormatException($"{path}: accessor {index} has a negative count");
            }
            if (!accessor.TryGetProperty("bufferView", out var viewIndex))
            {
                // All zeros by the specification: nothing in the file backs them, so only a few are accepted, counted
                // over every use (a node tree may use one accessor many times).
                if (count > _zeroElementsLeft)
                {
                    throw new LrmFormatException(
                        $"{path}: accessor {index} has no bufferView (all zeros) and {count} elements; more than {MaxZeroElements} such elements in all are refused, their data is not in the file");
                }
                _zeroElementsLeft -= (int)count;
                return new Accessor((int)count, components, componentType, normalized, 0, elementBytes, Zeros: true);
            }
            var viewNumber = viewIndex.GetInt32();
            var view = root.GetProperty("bufferViews")[viewNumber];
            if (view.GetProperty("buffer").GetInt32() != 0)
            {
                throw new LrmUnsupportedException($"{path}: only the GLB's own binary buffer (buffer 0) is supported");
            }
            var viewOffset = view.TryGetProperty("byteOffset", out var vo) ? vo.GetInt64() : 0;
            var viewLength = view.GetProperty("byteLength").GetInt64();
            var bufferLength = BufferLength();
            if (viewOffset < 0 || viewLength < 0 || viewOffset > bufferLength || viewLength > bufferLength - viewOffset)
            {
                throw new LrmFormatException(
                    $"{path}: bufferView {viewNumber} (byteOffset {viewOffset}, byteLength {viewLength}) does not lie inside the {bufferLength}-byte binary buffer");
            }
            var stride = (long)elementBytes;
            if (view.TryGetProperty("byteStride", out var st))
            {
                stride = st.GetInt64();
                // glTF 2.0 §3.6.2.4: byteStride is a multiple of 4 in [4, 252]; elements must not overlap.
                if (stride is < 4 or > 252 || stride % 4 != 0 || stride < elementBytes)
                {
                    throw new LrmFormatException(
                        $"{path}: bufferView {viewNumber} has byteStride {stride}; expected a multiple of 4 in [4, 252], at least the {elementBytes}-byte elements of accessor {index}");
                }
            }
            var accessorOffset = accessor.TryGetProperty("byteOffset", out var ao) ? ao.GetInt64() : 0;
            if (accessorOffset < 0 || accessorOffset > viewLength)
            {
                throw new LrmFormatException($"{path}: accessor {index} has byteOffset {accessorOffset}, outside bufferView {viewNumber}'s {viewLength} bytes");
            }
            // The last element starts at accessorOffset + stride·(count − 1) and must end inside the view; divided so
            // that no product of header fields can wrap.
            var room = viewLength - accessorOffset - elementBytes;
            if (count > 0 && (room < 0 || count - 1 > room / stride))
            {
                throw new LrmFormatException(
                    $"{path}: accessor {index} reads outside bufferView {viewNumber}: {count} elements of {elementBytes} bytes, one every {stride} bytes from byte {accessorOffset}, do not fit in {viewLength} bytes");
            }
            return new Accessor((int)count, components, componentType, normalized, checked((int)(viewOffset + accessorOffset)), (int)stride, Zeros: false);
        }

        /// <summary>The bytes of buffer 0: its declared byteLength, which the BIN chunk must hold (the chunk may be padded).</summary>
        private long BufferLength()
        {
            if (root.TryGetProperty("buffers", out var buffers) && buffers.GetArrayLength() > 0
                && buffers[0].TryGetProperty("byteLength", out var declared))
            {
                var length = declared.GetInt64();
                if (length < 0 || length > bin.Length)
                {
                    throw new LrmFormatException($"{path}: buffer 0 declares {length} bytes, the GLB BIN chunk holds {bin.Length}");
                }
                return length;
            }
            return bin.Length;
        }

        private double Value(Accessor accessor, int element, int component)
        {
            if (accessor.Zeros)
            {
                return 0;
            }
            var normalized = accessor.Normalized;
            var at = accessor.Start + (long)accessor.Stride * element + (long)ComponentBytes(accessor.ComponentType) * component;
            var span = bin.Span[(int)at..];
            return accessor.ComponentType switch
            {
                5120 => normalized ? Math.Max((sbyte)span[0] / 127.0, -1) : (sbyte)span[0],
                5121 => normalized ? span[0] / 255.0 : span[0],
                5122 => normalized ? Math.Max(BinaryPrimitives.ReadInt16LittleEndian(span) / 32767.0, -1) : BinaryPrimitives.ReadInt16LittleEndian(span),
                5123 => normalized ? BinaryPrimitives.ReadUInt16LittleEndian(span) / 65535.0 : BinaryPrimitives.ReadUInt16LittleEndian(span),
                5125 => BinaryPrimitives.ReadUInt32LittleEndian(span),
                _ => BinaryPrimitives.ReadSingleLittleEndian(span),
            };
        }
    }
}
