using System.Globalization;
using System.Text;

namespace LrmNative.IO;

/// <summary>
/// Wavefront OBJ text: <c>v x y z [r g b]</c> (the vertex-colour extension MeshLab, Blender and Open3D read),
/// <c>vn nx ny nz</c> when the mesh has normals, and 1-based faces <c>f a//a b//b c//c</c> (<c>f a b c</c> without
/// normals). Invariant culture, shortest round-trip float text ("R"), '\n' line ends, UTF-8 without a byte-order
/// mark, so the same mesh gives the same bytes everywhere. Coordinates are written as they are (z up).
/// </summary>
internal static class ObjWriter
{
    /// <summary>Writes <paramref name="mesh"/> as OBJ text to <paramref name="stream"/> (left open).</summary>
    public static void Write(Stream stream, Mesh mesh)
    {
        using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 1 << 16, leaveOpen: true)
        {
            NewLine = "\n",
        };
        writer.Write("# ");
        writer.Write(GlbWriter.Generator);
        writer.Write("\n# z up; ");
        writer.Write(mesh.VertexCount.ToString(CultureInfo.InvariantCulture));
        writer.Write(" vertices, ");
        writer.Write(mesh.TriangleCount.ToString(CultureInfo.InvariantCulture));
        writer.Write(" triangles\n");

        Span<char> text = stackalloc char[32];
        var positions = mesh.Positions;
        var colors = mesh.Colors;
        for (var v = 0; v < mesh.VertexCount; v++)
        {
            writer.Write('v');
            for (var k = 0; k < 3; k++)
            {
                WriteFloat(writer, text, positions[3 * v + k]);
            }
            if (mesh.HasColors)
            {
                for (var k = 0; k < 3; k++)
                {
                    WriteFloat(writer, text, colors[3 * v + k]);
                }
            }
            writer.Write('\n');
        }
        var normals = mesh.Normals;
        for (var v = 0; v < normals.Length / 3; v++)
        {
            writer.Write("vn");
            for (var k = 0; k < 3; k++)
            {
                WriteFloat(writer, text, normals[3 * v + k]);
            }
            writer.Write('\n');
        }
        var triangles = mesh.Triangles;
        for (var t = 0; t < triangles.Length; t += 3)
        {
            writer.Write('f');
            for (var k = 0; k < 3; k++)
            {
                writer.Write(' ');
                var index = triangles[t + k] + 1;
                index.TryFormat(text, out var written, default, CultureInfo.InvariantCulture);
                writer.Write(text[..written]);
                if (mesh.HasNormals)
                {
                    writer.Write("//");
                    writer.Write(text[..written]);
                }
            }
            writer.Write('\n');
        }
    }

    private static void WriteFloat(StreamWriter writer, Span<char> text, float value)
    {
        writer.Write(' ');
        value.TryFormat(text, out var written, "R", CultureInfo.InvariantCulture);
        writer.Write(text[..written]);
    }
}
