using System.Buffers.Binary;
using System.Text;

namespace LrmNative.Tests;

/// <summary>
/// <see cref="Mesh.Load"/>: round trips through the PLY/OBJ/GLB writers, and hand-written files covering what other
/// tools write (ASCII and big-endian PLY, quads, OBJ relative indices and materials, GLB node transforms with a mirror,
/// 16-bit indices, normalised 8-bit VEC4 colours, baseColorFactor); broken files give one error naming the file.
/// </summary>
[TestFixture]
public sealed class MeshReaderTests : TemporaryFolderFixture
{
    private static Mesh Sample() => DatasetTestSupport.Icosphere(1, 0.7, [0.2f, 0.6f, 1f]);

    [TestCase("ply")]
    [TestCase("obj")]
    [TestCase("glb")]
    public void WrittenMeshesReadBack(string extension)
    {
        var mesh = Sample();
        var path = PathOf("mesh." + extension);
        mesh.Save(path);
        var loaded = Mesh.Load(path);
        Assert.That(loaded.Positions.ToArray(), Is.EqualTo(mesh.Positions.ToArray()), "positions bit for bit (GLB: y-up and back)");
        Assert.That(loaded.Triangles.ToArray(), Is.EqualTo(mesh.Triangles.ToArray()));
        // PLY stores colours as bytes: 0.2 → 51/255 exactly, 0.6 → 153/255.
        Assert.That(loaded.Colors.ToArray(), Is.EqualTo(mesh.Colors.ToArray()).Within(1e-6f));
        Assert.That(loaded.HasNormals, Is.False, "normals are recomputed, not read");
    }

    [Test]
    public void AsciiPlyWithQuadsExtraPropertiesAndByteColours()
    {
        File.WriteAllText(PathOf("quad.ply"), """
            ply
            format ascii 1.0
            comment made by hand
            element vertex 4
            property float x
            property float y
            property double z
            property float confidence
            property uchar red
            property uchar green
            property uchar blue
            element face 1
            property list uchar int vertex_indices
            element camera 1
            property float view
            end_header
            0 0 0 0.5 255 0 0
            1 0 0 0.5 0 255 0
            1 1 0.25 0.5 0 0 255
            0 1 0 0.5 51 51 51
            4 0 1 2 3
            7

            """.Replace("\r", "", StringComparison.Ordinal));
        var mesh = Mesh.Load(PathOf("quad.ply"));
        Assert.That(mesh.Triangles.ToArray(), Is.EqualTo(new[] { 0, 1, 2, 0, 2, 3 }), "the quad as a fan");
        Assert.That(mesh.Positions[8], Is.EqualTo(0.25f));
        Assert.That(mesh.Colors.ToArray()[..3], Is.EqualTo(new[] { 1f, 0f, 0f }));
        Assert.That(mesh.Colors[9], Is.EqualTo(0.2f));
    }

    [Test]
    public void BigEndianBinaryPlyWithDoubles()
    {
        var header = "ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty double x\nproperty double y\nproperty double z\n"
            + "element face 1\nproperty list uchar uint vertex_indices\nend_header\n";
        var data = new List<byte>(Encoding.ASCII.GetBytes(header));
        var buffer = new byte[8];
        foreach (var value in new double[] { 0, 0, 0, 2, 0, 0, 0, 3, 0.5 })
        {
            BinaryPrimitives.WriteDoubleBigEndian(buffer, value);
            data.AddRange(buffer);
        }
        data.Add(3);
        foreach (var index in new uint[] { 0, 1, 2 })
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer, index);
            data.AddRange(buffer[..4]);
        }
        File.WriteAllBytes(PathOf("be.ply"), data.ToArray());
        var mesh = Mesh.Load(PathOf("be.ply"));
        Assert.That(mesh.Positions.ToArray(), Is.EqualTo(new float[] { 0, 0, 0, 2, 0, 0, 0, 3, 0.5f }));
        Assert.That(mesh.HasColors, Is.False);
    }

    [Test]
    public void ObjWithRelativeIndicesSlashCornersAndMaterials()
    {
        File.WriteAllText(PathOf("parts.mtl"), "newmtl red\nKd 1 0 0\nnewmtl blue paint\nKd 0 0 1\n");
        File.WriteAllText(PathOf("parts.obj"), """
            # two quads sharing an edge, one red and one blue
            mtllib parts.mtl
            v 0 0 0
            v 1 0 0
            v 1 1 0
            v 0 1 0
            v 2 0 0
            v 2 1 0
            vt 0 0
            vn 0 0 1
            g first
            usemtl red
            f 1/1/1 2/1/1 3/1/1 4/1/1
            usemtl blue paint
            f -5//1 -2//1 -1//1 -4//1
            """);
        var mesh = Mesh.Load(PathOf("parts.obj"));
        Assert.That(mesh.TriangleCount, Is.EqualTo(4));
        Assert.That(mesh.VertexCount, Is.EqualTo(8), "vertices 2 and 3 are shared by a red and a blue face: duplicated");
        var colors = mesh.Colors.ToArray();
        var triangles = mesh.Triangles.ToArray();
        Assert.That(colors.AsSpan(3 * triangles[0], 3).ToArray(), Is.EqualTo(new[] { 1f, 0f, 0f }));
        Assert.That(colors.AsSpan(3 * triangles[6], 3).ToArray(), Is.EqualTo(new[] { 0f, 0f, 1f }));
        var positions = mesh.Positions.ToArray();
        Assert.That(positions.AsSpan(3 * triangles[7], 3).ToArray(), Is.EqualTo(new[] { 2f, 0f, 0f }), "-2 is the fifth vertex");
    }

    /// <summary>A GLB by hand: one mesh used by a translated node and by a mirrored (scale −1) child.</summary>
    private string HandMadeGlb()
    {
        var bin = new List<byte>();
        void Floats(params float[] values)
        {
            var b = new byte[4];
            foreach (var v in values)
            {
                BinaryPrimitives.WriteSingleLittleEndian(b, v);
                bin.AddRange(b);
            }
        }
        Floats(0, 0, 0, 1, 0, 0, 0, 1, 0); // positions (glTF y-up), bytes 0..36
        foreach (var index in new ushort[] { 0, 1, 2 })
        {
            bin.AddRange(BitConverter.GetBytes(index)); // bytes 36..42
        }
        bin.AddRange([0, 0]); // pad to 44
        bin.AddRange([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 128]); // COLOR_0 normalised ubyte VEC4, bytes 44..56
        var json = """
            {"asset":{"version":"2.0"},"scene":0,"scenes":[{"nodes":[0]}],
             "nodes":[{"mesh":0,"translation":[10,20,30],"children":[1]},{"mesh":0,"scale":[-1,1,1]}],
             "meshes":[{"primitives":[{"attributes":{"POSITION":0,"COLOR_0":2},"indices":1,"material":0}]}],
             "materials":[{"pbrMetallicRoughness":{"baseColorFactor":[0.5,1,1,1]}}],
             "buffers":[{"byteLength":56}],
             "bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":36},{"buffer":0,"byteOffset":36,"byteLength":6},{"buffer":0,"byteOffset":44,"byteLength":12}],
             "accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"},
                          {"bufferView":1,"componentType":5123,"count":3,"type":"SCALAR"},
                          {"bufferView":2,"componentType":5121,"normalized":true,"count":3,"type":"VEC4"}]}
            """;
        var path = PathOf("hand.glb");
        File.WriteAllBytes(path, TestFiles.Glb(json, bin));
        return path;
    }

    [Test]
    public void GlbNodeTransformsMirrorsColoursAndSixteenBitIndices()
    {
        var mesh = Mesh.Load(HandMadeGlb());
        Assert.That(mesh.TriangleCount, Is.EqualTo(2));
        var p = mesh.Positions.ToArray();
        // Node 0: + (10, 20, 30) in glTF, i.e. (10, −30, 20) z-up. Vertex 1 (1, 0, 0) → (11, −30, 20).
        Assert.That(p.AsSpan(3, 3).ToArray(), Is.EqualTo(new[] { 11f, -30f, 20f }));
        // Vertex 2 (0, 1, 0) y-up is (0, 0, 1) z-up, → (10, −30, 21).
        Assert.That(p.AsSpan(6, 3).ToArray(), Is.EqualTo(new[] { 10f, -30f, 21f }));
        // The child mirrors x: vertex 1 → (−1 + 10, …).
        Assert.That(p.AsSpan(12, 3).ToArray(), Is.EqualTo(new[] { 9f, -30f, 20f }));
        var t = mesh.Triangles.ToArray();
        Assert.That(t[..3], Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(t[3..], Is.EqualTo(new[] { 3, 5, 4 }), "a mirroring transform flips the winding back");
        // COLOR_0 (1, 0, 0) × baseColorFactor (0.5, 1, 1), both linear: red 0.5 linear is 0.735357 in sRGB; alpha dropped.
        var c = mesh.Colors.ToArray();
        Assert.That(c[..3], Is.EqualTo(new[] { 0.735357f, 0f, 0f }).Within(1e-6));
        Assert.That(c[3..6], Is.EqualTo(new[] { 0f, 1f, 0f }));
    }

    [Test]
    public void BrokenFilesGiveOneErrorNamingTheFile()
    {
        Sample().SavePly(PathOf("good.ply"));
        var bytes = File.ReadAllBytes(PathOf("good.ply"));
        File.WriteAllBytes(PathOf("truncated.ply"), bytes[..(bytes.Length - 10)]);
        File.WriteAllText(PathOf("noheader.ply"), "ply\nformat ascii 1.0\nelement vertex 1\n");
        File.WriteAllText(PathOf("badindex.obj"), "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n");
        File.WriteAllText(PathOf("word.obj"), "v 0 zero 0\n");
        File.WriteAllText(PathOf("empty.obj"), "v 0 0 0\n");
        File.WriteAllText(PathOf("notglb.glb"), "this is text");
        var glb = File.ReadAllBytes(HandMadeGlb());
        File.WriteAllBytes(PathOf("cut.glb"), glb[..(glb.Length - 20)]);
        var cases = new (string File, string Expect)[]
        {
            ("truncated.ply", "ends early"),
            ("noheader.ply", "end_header"),
            ("badindex.obj", "outside"),
            ("word.obj", "not a number"),
            ("empty.obj", "no triangles"),
            ("notglb.glb", "not a GLB"),
            ("cut.glb", "truncated"),
            ("missing.ply", "not found"),
        };
        Assert.Multiple(() =>
        {
            foreach (var (file, expect) in cases)
            {
                var error = Assert.Throws<LrmFormatException>(() => Mesh.Load(PathOf(file)), file);
                Assert.That(error!.Message, Does.Contain(PathOf(file)).And.Contain(expect), file);
            }
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => Mesh.Load(PathOf("mesh.stl")))!.Message, Does.Contain(".stl"));
        });
    }
}
