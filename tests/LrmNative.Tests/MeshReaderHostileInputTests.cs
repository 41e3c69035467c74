using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// <see cref="Mesh.Load"/> on small files whose headers lie: glTF node graphs that are not trees, accessors whose counts,
/// offsets and strides point past their data or wrap, PLY element counts the data cannot hold, OBJ material libraries
/// outside the OBJ's folder, endless or oversized. Each gives one <see cref="LrmFormatException"/> naming the file and
/// the problem (or, for material libraries that cannot be used, a mesh without material colours) instead of a hang,
/// a runaway allocation or a raw .NET exception.
/// </summary>
[TestFixture]
public sealed class MeshReaderHostileInputTests : TemporaryFolderFixture
{
    private static void ExpectFormatError(string path, params string[] expected)
    {
        var error = Assert.Throws<LrmFormatException>(() => Mesh.Load(path), Path.GetFileName(path));
        Assert.That(error!.Message, Does.Contain(path), "the error names the file");
        foreach (var text in expected)
        {
            Assert.That(error.Message, Does.Contain(text));
        }
    }

    // ---- GLB ----

    /// <summary>One triangle's positions (glTF y-up), 36 bytes: the BIN chunk of every GLB below.</summary>
    private static byte[] TriangleBin()
    {
        var bin = new byte[36];
        float[] values = [0, 0, 0, 1, 0, 0, 0, 1, 0];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bin.AsSpan(4 * i), values[i]);
        }
        return bin;
    }

    private string WriteGlb(string name, string json, byte[] bin)
    {
        var path = PathOf(name);
        File.WriteAllBytes(path, TestFiles.Glb(json, bin));
        return path;
    }

    /// <summary>A GLB of one triangle: scene <paramref name="nodes"/> (JSON), one mesh, POSITION = accessor 0.</summary>
    private string TriangleGlb(
        string name,
        string accessor = """{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3"}""",
        string bufferView = """{"buffer":0,"byteOffset":0,"byteLength":36}""",
        string nodes = """[{"mesh":0}]""",
        string sceneNodes = "[0]",
        string buffer = """{"byteLength":36}""",
        string primitiveExtra = "",
        string moreAccessors = "")
    {
        var json = $$"""
            {"asset":{"version":"2.0"},"scene":0,"scenes":[{"nodes":{{sceneNodes}}}],"nodes":{{nodes}},
             "meshes":[{"primitives":[{"attributes":{"POSITION":0}{{primitiveExtra}}}]}],
             "buffers":[{{buffer}}],"bufferViews":[{{bufferView}}],"accessors":[{{accessor}}{{moreAccessors}}]}
            """;
        return WriteGlb(name, json, TriangleBin());
    }

    [Test]
    public void TheTriangleGlbItselfLoads()
    {
        var mesh = Mesh.Load(TriangleGlb("good.glb"));
        Assert.That(mesh.TriangleCount, Is.EqualTo(1), "the template below is valid; each case breaks one thing");
    }

    [Test]
    public void AGlbNodeDiamondIsRefusedAsNotATree()
    {
        // Node i lists node i + 1 twice: followed blindly, 41 nodes make 2^40 visits.
        var nodes = string.Join(",", Enumerable.Range(0, 40).Select(i => $$"""{"children":[{{i + 1}},{{i + 1}}]}""")) + """,{"mesh":0}""";
        ExpectFormatError(TriangleGlb("diamond.glb", nodes: $"[{nodes}]"), "node 40 is reached twice", "must form a tree");
    }

    [Test]
    public void AGlbNodeCycleOrATwiceListedRootIsRefused()
    {
        ExpectFormatError(TriangleGlb("cycle.glb", nodes: """[{"mesh":0,"children":[1]},{"children":[0]}]"""), "node 0 is reached twice");
        ExpectFormatError(TriangleGlb("twice.glb", sceneNodes: "[0,0]"), "node 0 is reached twice");
    }

    [TestCase("zeros-2e9.glb", """{"componentType":5126,"count":2000000000,"type":"VEC3"}""", "no bufferView")]
    [TestCase("zeros-1e8.glb", """{"componentType":5126,"count":100000000,"type":"VEC3"}""", "no bufferView")]
    [TestCase("past-view.glb", """{"bufferView":0,"componentType":5126,"count":4,"type":"VEC3"}""", "reads outside bufferView 0")]
    [TestCase("count-max.glb", """{"bufferView":0,"componentType":5126,"count":9223372036854775807,"type":"VEC3"}""", "reads outside bufferView 0")]
    [TestCase("negative-count.glb", """{"bufferView":0,"componentType":5126,"count":-3,"type":"VEC3"}""", "negative count")]
    [TestCase("negative-offset.glb", """{"bufferView":0,"byteOffset":-12,"componentType":5126,"count":3,"type":"VEC3"}""", "byteOffset -12")]
    [TestCase("offset-past.glb", """{"bufferView":0,"byteOffset":9223372036854775800,"componentType":5126,"count":1,"type":"VEC3"}""", "outside bufferView 0")]
    [TestCase("offset-odd.glb", """{"bufferView":0,"byteOffset":28,"componentType":5126,"count":1,"type":"VEC3"}""", "reads outside bufferView 0")]
    public void GlbAccessorsThatLieAboutTheirDataAreRefused(string name, string accessor, string expected) =>
        ExpectFormatError(TriangleGlb(name, accessor: accessor), expected);

    [TestCase("stride-0.glb", """{"buffer":0,"byteLength":36,"byteStride":0}""", "byteStride 0")]
    [TestCase("stride-negative.glb", """{"buffer":0,"byteLength":36,"byteStride":-12}""", "byteStride -12")]
    [TestCase("stride-odd.glb", """{"buffer":0,"byteLength":36,"byteStride":14}""", "byteStride 14")]
    [TestCase("stride-short.glb", """{"buffer":0,"byteLength":36,"byteStride":8}""", "byteStride 8")]
    [TestCase("stride-long.glb", """{"buffer":0,"byteLength":36,"byteStride":256}""", "byteStride 256")]
    [TestCase("view-negative.glb", """{"buffer":0,"byteOffset":-36,"byteLength":72}""", "does not lie inside")]
    [TestCase("view-wraps.glb", """{"buffer":0,"byteOffset":8,"byteLength":9223372036854775807}""", "does not lie inside")]
    [TestCase("view-past.glb", """{"buffer":0,"byteOffset":4,"byteLength":36}""", "does not lie inside")]
    public void GlbBufferViewsThatLieAboutTheirBytesAreRefused(string name, string bufferView, string expected) =>
        ExpectFormatError(TriangleGlb(name, bufferView: bufferView), expected);

    [Test]
    public void AZeroStrideCannotStretchAFewBytesOverABillionElements() =>
        ExpectFormatError(
            TriangleGlb(
                "stride-0-billion.glb",
                accessor: """{"bufferView":0,"componentType":5126,"count":1000000000,"type":"VEC3"}""",
                bufferView: """{"buffer":0,"byteLength":36,"byteStride":0}"""),
            "byteStride 0", "multiple of 4 in [4, 252]");

    [Test]
    public void AGlbBufferLargerThanItsBinChunkIsRefused() =>
        ExpectFormatError(TriangleGlb("buffer.glb", buffer: """{"byteLength":4096}"""), "buffer 0 declares 4096 bytes");

    [Test]
    public void ZeroFilledGlbAccessorsAreCappedOverAllTheirUses()
    {
        // 600,000 zero vertices is within the cap; placed by two nodes it is 1,200,000, over it.
        var accessor = """{"componentType":5126,"count":600000,"type":"VEC3"}""";
        ExpectFormatError(TriangleGlb("zeros-twice.glb", accessor: accessor, nodes: """[{"mesh":0,"children":[1]},{"mesh":0}]"""),
            "no bufferView", "1048576");
    }

    [Test]
    public void GlbIndicesMustBeUnsignedIntegers() =>
        ExpectFormatError(
            TriangleGlb("float-indices.glb", primitiveExtra: ""","indices":1""",
                moreAccessors: """,{"bufferView":0,"componentType":5126,"count":3,"type":"SCALAR"}"""),
            "indices must be SCALAR of unsigned");

    // ---- PLY ----

    [Test]
    public void APlyElementWithoutPropertiesMayNotAnnounceItems()
    {
        var path = PathOf("junk.ply");
        File.WriteAllText(path, "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
            + "element junk 9223372036854775807\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
            + "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n");
        ExpectFormatError(path, "element 'junk'", "no properties");
    }

    [Test]
    public void ABinaryPlyCountLargerThanItsDataIsRefusedBeforeReading()
    {
        var path = PathOf("huge.ply");
        var header = "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
            + "element face 1\nproperty list uchar int vertex_indices\nelement extra 4611686018427387904\nproperty double value\nend_header\n";
        var data = new List<byte>(Encoding.ASCII.GetBytes(header));
        data.AddRange(TriangleBin());
        data.Add(3);
        foreach (var index in new[] { 0, 1, 2 })
        {
            data.AddRange(BitConverter.GetBytes(index));
        }
        File.WriteAllBytes(path, data.ToArray());
        ExpectFormatError(path, "element 'extra' announces 4611686018427387904 items of at least 8 bytes", "only 12 bytes of data remain");
    }

    [Test]
    public void AnAsciiPlyCountLargerThanItsValuesIsRefused()
    {
        var path = PathOf("lying.ply");
        File.WriteAllText(path, "ply\nformat ascii 1.0\nelement vertex 1000000\nproperty float x\nproperty float y\nproperty float z\n"
            + "end_header\n0 0 0\n1 0 0\n0 1 0\n");
        ExpectFormatError(path, "element 'vertex' announces 1000000 items of at least 3 values", "only 9 values");
    }

    [Test]
    public void APlyVertexCountOverTheMeshLimitIsRefused()
    {
        var path = PathOf("many.ply");
        File.WriteAllText(path, "ply\nformat binary_little_endian 1.0\nelement vertex 9223372036854775807\nproperty float x\nproperty float y\n"
            + "property float z\nend_header\n");
        ExpectFormatError(path, "vertex limit");
    }

    // ---- OBJ and its material libraries ----

    /// <summary>A red triangle in <paramref name="folder"/> whose materials come from <c>mtllib <paramref name="mtllib"/></c>.</summary>
    private static string WriteObj(string folder, string name, string mtllib)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, $"mtllib {mtllib}\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\n");
        return path;
    }

    [Test]
    public void AnObjMaterialLibraryOutsideItsFolderIsNotRead()
    {
        var inner = Directory.CreateDirectory(PathOf("model")).FullName;
        File.WriteAllText(PathOf("outside.mtl"), "newmtl red\nKd 1 0 0\n");
        var climbing = Mesh.Load(WriteObj(inner, "climbing.obj", "../outside.mtl"));
        Assert.That(climbing.HasColors, Is.False, "../outside.mtl lies outside the OBJ's folder: no material colours");
        var absolute = Mesh.Load(WriteObj(inner, "absolute.obj", PathOf("outside.mtl")));
        Assert.That(absolute.HasColors, Is.False, "an absolute path outside the folder is not read either");
        // The same file name next to the OBJ is what an exporter's absolute path usually means.
        File.WriteAllText(Path.Combine(inner, "outside.mtl"), "newmtl red\nKd 0 1 0\n");
        var beside = Mesh.Load(WriteObj(inner, "beside.obj", PathOf("outside.mtl")));
        Assert.That(beside.Colors.ToArray()[..3], Is.EqualTo(new[] { 0f, 1f, 0f }), "the library of that name beside the OBJ");
    }

    [Test]
    public void AnObjMaterialLibraryThatIsADeviceOrAFifoIsSkippedNotRead()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("/dev/zero and FIFOs are Unix files");
        }
        Assert.That(Mesh.Load(WriteObj(Folder, "devzero.obj", "/dev/zero")).HasColors, Is.False, "absolute, outside the folder");
        File.CreateSymbolicLink(PathOf("zero.mtl"), "/dev/zero");
        Assert.That(Mesh.Load(WriteObj(Folder, "linked.obj", "zero.mtl")).HasColors, Is.False, "a link to /dev/zero reports no size");
        using (var mkfifo = Process.Start("mkfifo", PathOf("pipe.mtl")))
        {
            mkfifo.WaitForExit();
            Assert.That(mkfifo.ExitCode, Is.Zero, "mkfifo");
        }
        Assert.That(Mesh.Load(WriteObj(Folder, "fifo.obj", "pipe.mtl")).HasColors, Is.False, "a FIFO is never opened (opening would block)");
    }

    [Test]
    public void AnOversizedObjMaterialLibraryIsRefusedByName()
    {
        using (var big = File.Create(PathOf("big.mtl")))
        {
            big.SetLength(MeshReader.MaxFileBytes + 1); // sparse: no disk is written
        }
        var error = Assert.Throws<LrmFormatException>(() => Mesh.Load(WriteObj(Folder, "big.obj", "big.mtl")));
        Assert.That(error!.Message, Does.Contain(PathOf("big.mtl")).And.Contain("over the 1073741824 byte limit"));
    }

    [Test]
    public void AnUnreadableObjMaterialLibraryIsRefusedByName()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("symbolic links need privileges on Windows");
        }
        File.CreateSymbolicLink(PathOf("loop.mtl"), PathOf("loop.mtl"));
        var error = Assert.Throws<LrmFormatException>(() => Mesh.Load(WriteObj(Folder, "loop.obj", "loop.mtl")));
        Assert.That(error!.Message, Does.Contain(PathOf("loop.mtl")).And.Contain("cannot read the material library"));
    }

    [Test]
    public void AnObjMtllibLineMayNameSeveralLibraries()
    {
        File.WriteAllText(PathOf("a.mtl"), "newmtl red\nKd 1 0 0\n");
        File.WriteAllText(PathOf("b.mtl"), "newmtl green\nKd 0 1 0\n");
        var path = PathOf("two.obj");
        File.WriteAllText(path, "mtllib a.mtl  b.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl red\nf 1 2 3\nusemtl green\nf 1 3 2\n");
        var mesh = Mesh.Load(path);
        var colors = mesh.Colors.ToArray();
        var triangles = mesh.Triangles.ToArray();
        Assert.That(colors.AsSpan(3 * triangles[0], 3).ToArray(), Is.EqualTo(new[] { 1f, 0f, 0f }), "red from a.mtl");
        Assert.That(colors.AsSpan(3 * triangles[3], 3).ToArray(), Is.EqualTo(new[] { 0f, 1f, 0f }), "green from b.mtl");
    }

    [Test]
    public void AnObjWithAByteOrderMarkAndCrLfLinesReads()
    {
        var path = PathOf("bom.obj");
        File.WriteAllBytes(path, [.. "\uFEFF"u8, .. "v 0 0 0\r\nv 1 0 0\r\nv 0 1 0\r\nf 1 2 3\r\n"u8]);
        Assert.That(Mesh.Load(path).TriangleCount, Is.EqualTo(1), "the first 'v' is not hidden behind the mark");
    }

    [Test]
    public void AHugeObjWordIsCutShortInTheError()
    {
        var path = PathOf("long.obj");
        File.WriteAllText(path, "v 0 " + new string('x', 1 << 20) + " 0\n");
        var error = Assert.Throws<LrmFormatException>(() => Mesh.Load(path));
        Assert.That(error!.Message, Does.Contain(path).And.Contain("is not a number"));
        Assert.That(error.Message, Has.Length.LessThan(1000), "a megabyte word is not copied into the message");
        File.WriteAllText(PathOf("name.obj"), "usemtl " + new string('m', 10_000) + "\n");
        ExpectFormatError(PathOf("name.obj"), "a name of 10000 bytes");
    }

    // ---- Any mesh file ----

    [Test]
    public void AnEmptyMeshFileOrALinkToADeviceIsRefusedBeforeReading()
    {
        File.WriteAllBytes(PathOf("empty.ply"), []);
        ExpectFormatError(PathOf("empty.ply"), "is empty (or not a regular file)");
        if (!OperatingSystem.IsWindows())
        {
            File.CreateSymbolicLink(PathOf("zero.obj"), "/dev/zero");
            ExpectFormatError(PathOf("zero.obj"), "is empty (or not a regular file)");
        }
    }
}
