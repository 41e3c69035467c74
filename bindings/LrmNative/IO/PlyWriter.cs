using System.Buffers.Binary;
using System.Text;

namespace LrmNative.IO;

/// <summary>
/// Binary little-endian PLY 1.0 (http://paulbourke.net/dataformats/ply/), as MeshLab, Blender and Open3D read it:
/// element vertex with x, y, z float, then nx, ny, nz float when the mesh has normals, then red, green, blue uchar
/// when it has colours; element face with a uchar count (always 3) and int indices. Coordinates are written as they
/// are (z up).
/// </summary>
internal static class PlyWriter
{
    /// <summary>Writes the header and payload of <paramref name="mesh"/> to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, Mesh mesh)
    {
        var header = new StringBuilder()
            .Append("ply\n")
            .Append("format binary_little_endian 1.0\n")
            .Append("comment ").Append(GlbWriter.Generator).Append(", z up\n")
            .Append("element vertex ").Append(mesh.VertexCount).Append('\n')
            .Append("property float x\nproperty float y\nproperty float z\n");
        if (mesh.HasNormals)
        {
            header.Append("property float nx\nproperty float ny\nproperty float nz\n");
        }
        if (mesh.HasColors)
        {
            header.Append("property uchar red\nproperty uchar green\nproperty uchar blue\n");
        }
        header.Append("element face ").Append(mesh.TriangleCount).Append('\n')
            .Append("property list uchar int vertex_indices\n")
            .Append("end_header\n");
        stream.Write(Encoding.ASCII.GetBytes(header.ToString()));

        var positions = mesh.Positions;
        var normals = mesh.Normals;
        var colors = mesh.Colors;
        Span<byte> record = stackalloc byte[27];
        var size = 12 + (mesh.HasNormals ? 12 : 0) + (mesh.HasColors ? 3 : 0);
        for (var v = 0; v < mesh.VertexCount; v++)
        {
            var offset = 0;
            for (var k = 0; k < 3; k++, offset += 4)
            {
                BinaryPrimitives.WriteSingleLittleEndian(record[offset..], positions[3 * v + k]);
            }
            if (mesh.HasNormals)
            {
                for (var k = 0; k < 3; k++, offset += 4)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(record[offset..], normals[3 * v + k]);
                }
            }
            if (mesh.HasColors)
            {
                for (var k = 0; k < 3; k++, offset++)
                {
                    record[offset] = ToByte(colors[3 * v + k]);
                }
            }
            stream.Write(record[..size]);
        }

        var triangles = mesh.Triangles;
        Span<byte> face = stackalloc byte[13];
        face[0] = 3;
        for (var t = 0; t < triangles.Length; t += 3)
        {
            BinaryPrimitives.WriteInt32LittleEndian(face[1..], triangles[t]);
            BinaryPrimitives.WriteInt32LittleEndian(face[5..], triangles[t + 1]);
            BinaryPrimitives.WriteInt32LittleEndian(face[9..], triangles[t + 2]);
            stream.Write(face);
        }
    }

    /// <summary>A colour in [0, 1] as 0–255, rounded to nearest.</summary>
    internal static byte ToByte(float value) => (byte)Math.Clamp((int)MathF.Round(value * 255f), 0, 255);
}
