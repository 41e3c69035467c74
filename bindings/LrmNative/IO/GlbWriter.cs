using System.Buffers.Binary;
using System.Text.Json;

namespace LrmNative.IO;

/// <summary>
/// Binary glTF 2.0 (https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html#binary-gltf-layout): a 12-byte header
/// (magic "glTF", version 2, total length), a JSON chunk padded with spaces and a BIN chunk padded with zeros, each
/// to 4 bytes. The BIN buffer holds, one tightly packed bufferView each (so no byteStride): POSITION (VEC3 float,
/// exact min/max), NORMAL (VEC3 float, unit), COLOR_0 (VEC3 float, when present: the mesh's sRGB colours made linear,
/// as glTF's vertex colours are) and the indices (SCALAR UNSIGNED_INT). Every view is a multiple of 4 bytes long, so every offset stays 4-byte aligned. Positions and
/// normals are turned from the engine's z-up to glTF's y-up by (x, y, z) → (x, z, −y), a rotation (winding kept).
/// </summary>
internal static class GlbWriter
{
    private const uint Magic = 0x46546C67; // "glTF"
    private const uint ChunkJson = 0x4E4F534A; // "JSON"
    private const uint ChunkBin = 0x004E4942; // "BIN\0"
    private const int ArrayBuffer = 34962;
    private const int ElementArrayBuffer = 34963;
    private const int ComponentFloat = 5126;
    private const int ComponentUnsignedInt = 5125;
    private const int ModeTriangles = 4;

    /// <summary>"LrmNative 0.1.0": the asset generator and the PLY/OBJ comment.</summary>
    internal static string Generator { get; } =
        $"LrmNative {typeof(GlbWriter).Assembly.GetName().Version?.ToString(3) ?? "unknown"}";

    /// <summary>The whole .glb file for <paramref name="mesh"/>; <paramref name="path"/> is only for messages.</summary>
    public static byte[] Build(Mesh mesh, string path)
    {
        if (mesh.IsEmpty)
        {
            throw new LrmInvalidArgumentException(
                $"{path}: cannot write an empty mesh ({mesh.VertexCount} vertices, 0 triangles) as glTF, which forbids empty accessors");
        }
        var vertexCount = mesh.VertexCount;
        var normals = mesh.HasNormals ? mesh.Normals : Mesh.AreaWeightedNormals(mesh.Positions, mesh.Triangles);
        long vertexBytes = 12L * vertexCount;
        long indexBytes = 4L * mesh.Triangles.Length;
        long binLength = vertexBytes * (mesh.HasColors ? 3 : 2) + indexBytes;
        // Leaves room for the header and JSON; a .NET array and GLB's uint32 length both stop near here.
        if (binLength > int.MaxValue - (1 << 20))
        {
            throw new LrmUnsupportedException(
                $"{path}: a mesh of {vertexCount} vertices and {mesh.TriangleCount} triangles needs {binLength} bytes of binary data, over the GLB writer's 2 GiB limit");
        }

        var bin = new byte[binLength];
        var views = new List<(long Offset, long Length, int Target)>();
        long offset = 0;
        var (min, max) = WriteYUp(bin.AsSpan((int)offset, (int)vertexBytes), mesh.Positions);
        views.Add((offset, vertexBytes, ArrayBuffer));
        offset += vertexBytes;
        WriteYUp(bin.AsSpan((int)offset, (int)vertexBytes), normals);
        views.Add((offset, vertexBytes, ArrayBuffer));
        offset += vertexBytes;
        if (mesh.HasColors)
        {
            WriteLinearColors(bin.AsSpan((int)offset, (int)vertexBytes), mesh.Colors);
            views.Add((offset, vertexBytes, ArrayBuffer));
            offset += vertexBytes;
        }
        var indices = bin.AsSpan((int)offset, (int)indexBytes);
        var triangles = mesh.Triangles;
        for (var i = 0; i < triangles.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(indices[(4 * i)..], triangles[i]);
        }
        views.Add((offset, indexBytes, ElementArrayBuffer));

        var json = Json(mesh, views, min, max, binLength);
        var jsonLength = Align4(json.Length);
        var total = 12L + 8 + jsonLength + 8 + Align4(bin.Length);
        var file = new byte[total];
        var span = file.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], 2);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)jsonLength);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], ChunkJson);
        json.CopyTo(span[20..]);
        span.Slice(20 + json.Length, jsonLength - json.Length).Fill((byte)' ');
        var binStart = 20 + jsonLength;
        BinaryPrimitives.WriteUInt32LittleEndian(span[binStart..], (uint)Align4(bin.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(span[(binStart + 4)..], ChunkBin);
        bin.CopyTo(span[(binStart + 8)..]); // Zero padding: the array starts zeroed.
        return file;
    }

    private static byte[] Json(Mesh mesh, List<(long Offset, long Length, int Target)> views, float[] min, float[] max, long binLength)
    {
        using var memory = new MemoryStream();
        using (var json = new Utf8JsonWriter(memory))
        {
            json.WriteStartObject();
            json.WriteStartObject("asset");
            json.WriteString("version", "2.0");
            json.WriteString("generator", Generator);
            json.WriteEndObject();

            json.WriteNumber("scene", 0);
            json.WriteStartArray("scenes");
            json.WriteStartObject();
            json.WriteStartArray("nodes");
            json.WriteNumberValue(0);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();

            json.WriteStartArray("nodes");
            json.WriteStartObject();
            json.WriteNumber("mesh", 0);
            json.WriteEndObject();
            json.WriteEndArray();

            var accessor = 0;
            json.WriteStartArray("meshes");
            json.WriteStartObject();
            json.WriteStartArray("primitives");
            json.WriteStartObject();
            json.WriteStartObject("attributes");
            json.WriteNumber("POSITION", accessor++);
            json.WriteNumber("NORMAL", accessor++);
            if (mesh.HasColors)
            {
                json.WriteNumber("COLOR_0", accessor++);
            }
            json.WriteEndObject();
            json.WriteNumber("indices", accessor);
            json.WriteNumber("material", 0);
            json.WriteNumber("mode", ModeTriangles);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();

            // Plain, non-metallic and fully rough, so viewers show the vertex colours as they are.
            json.WriteStartArray("materials");
            json.WriteStartObject();
            json.WriteStartObject("pbrMetallicRoughness");
            json.WriteNumber("metallicFactor", 0);
            json.WriteNumber("roughnessFactor", 1);
            json.WriteEndObject();
            json.WriteBoolean("doubleSided", false);
            json.WriteEndObject();
            json.WriteEndArray();

            json.WriteStartArray("accessors");
            var view = 0;
            WriteAccessor(json, view++, ComponentFloat, mesh.VertexCount, "VEC3", min, max);
            WriteAccessor(json, view++, ComponentFloat, mesh.VertexCount, "VEC3");
            if (mesh.HasColors)
            {
                WriteAccessor(json, view++, ComponentFloat, mesh.VertexCount, "VEC3");
            }
            WriteAccessor(json, view, ComponentUnsignedInt, mesh.Triangles.Length, "SCALAR");
            json.WriteEndArray();

            json.WriteStartArray("bufferViews");
            foreach (var (offset, length, target) in views)
            {
                json.WriteStartObject();
                json.WriteNumber("buffer", 0);
                json.WriteNumber("byteOffset", offset);
                json.WriteNumber("byteLength", length);
                json.WriteNumber("target", target);
                json.WriteEndObject();
            }
            json.WriteEndArray();

            json.WriteStartArray("buffers");
            json.WriteStartObject();
            json.WriteNumber("byteLength", binLength);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return memory.ToArray();
    }

    private static void WriteAccessor(Utf8JsonWriter json, int view, int componentType, int count, string type,
        float[]? min = null, float[]? max = null)
    {
        json.WriteStartObject();
        json.WriteNumber("bufferView", view);
        json.WriteNumber("componentType", componentType);
        json.WriteNumber("count", count);
        json.WriteString("type", type);
        if (min is not null && max is not null)
        {
            // Written as the float's exact double value, so min/max match the data bit for bit whether a reader
            // parses them as double or rounds to float.
            json.WriteStartArray("min");
            foreach (var value in min)
            {
                json.WriteNumberValue((double)value);
            }
            json.WriteEndArray();
            json.WriteStartArray("max");
            foreach (var value in max)
            {
                json.WriteNumberValue((double)value);
            }
            json.WriteEndArray();
        }
        json.WriteEndObject();
    }

    /// <summary>Writes (x, y, z) → (x, z, −y) as little-endian floats; returns the per-axis min and max written.</summary>
    private static (float[] Min, float[] Max) WriteYUp(Span<byte> target, ReadOnlySpan<float> values)
    {
        float[] min = [float.PositiveInfinity, float.PositiveInfinity, float.PositiveInfinity];
        float[] max = [float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity];
        Span<float> converted = stackalloc float[3];
        for (var v = 0; v < values.Length / 3; v++)
        {
            converted[0] = values[3 * v];
            converted[1] = values[3 * v + 2];
            converted[2] = 0f - values[3 * v + 1]; // 0 − y, not −y: no negative zeros in the file.
            for (var k = 0; k < 3; k++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(target[(12 * v + 4 * k)..], converted[k]);
                min[k] = Math.Min(min[k], converted[k]);
                max[k] = Math.Max(max[k], converted[k]);
            }
        }
        return (min, max);
    }

    // glTF's COLOR_0 is linear (a multiplier of the linear base colour); Mesh colours are sRGB-encoded like image pixels.
    // Written raw, every viewer and engine would show them washed out (0.5 would display as 0.735).
    private static void WriteLinearColors(Span<byte> target, ReadOnlySpan<float> srgb)
    {
        for (var i = 0; i < srgb.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(target[(4 * i)..], (float)SrgbTransfer.ToLinear(srgb[i]));
        }
    }

    private static int Align4(int length) => (length + 3) & ~3;
}
