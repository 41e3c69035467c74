using System.Buffers.Binary;
using System.Text;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// The .npy reader and writer: round trips, files crafted byte by byte as numpy writes them (versions 1.0/2.0/3.0,
/// '&lt;f4', '&lt;f8', '&lt;i4', '&lt;i8'), and bad files, each an <see cref="LrmFormatException"/> naming the file.
/// </summary>
[TestFixture]
public sealed class NpyTests : TemporaryFolderFixture
{
    // A .npy file as numpy lays it out: magic, version, header length (2 or 4 bytes), header text, data.
    private string Craft(string header, ReadOnlySpan<byte> data, int major = 1, string name = "crafted.npy", Encoding? encoding = null)
    {
        var text = (encoding ?? Encoding.Latin1).GetBytes(header);
        using var stream = new MemoryStream();
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        var length = new byte[major == 1 ? 2 : 4];
        if (major == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)text.Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)text.Length);
        }
        stream.Write(length);
        stream.Write(text);
        stream.Write(data);
        var path = Path.Combine(Folder, name);
        File.WriteAllBytes(path, stream.ToArray());
        return path;
    }

    private static byte[] Bytes<T>(params T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [Test]
    public void Float32RoundTripIsExactAndAligned()
    {
        var values = Enumerable.Range(0, 2 * 3 * 5).Select(i => MathF.Sin(i) * 1e3f).ToArray();
        values[7] = float.NaN;
        values[8] = float.NegativeInfinity;
        using var tensor = Tensor.FromArray(values, 2, 3, 5);
        var path = Path.Combine(Folder, "x.npy");
        Npy.Write(path, tensor);
        var header = Npy.ReadHeader(path);
        Assert.That(header.Descr, Is.EqualTo("<f4"));
        Assert.That(header.Shape, Is.EqualTo(new long[] { 2, 3, 5 }));
        Assert.That(header.DataOffset % 64, Is.EqualTo(0));
        using var read = Npy.ReadFloat32(path);
        Assert.That(read.ShapeText, Is.EqualTo("(2, 3, 5)"));
        Assert.That(Bytes(read.AsSpan<float>().ToArray()), Is.EqualTo(Bytes(values)));
        Assert.That(Directory.GetFiles(Folder), Is.EqualTo(new[] { path }), "no temporary files left");
    }

    [Test]
    public void OneDimensionalScalarAndEmptyShapes()
    {
        var path = Path.Combine(Folder, "v.npy");
        using (var vector = Tensor.FromArray([1f, 2f, 3f], 3))
        {
            Npy.Write(path, vector);
        }
        Assert.That(File.ReadAllText(path), Does.Contain("'shape': (3,)"));
        using (var read = Npy.ReadFloat32(path))
        {
            Assert.That(read.ShapeText, Is.EqualTo("(3,)"));
        }
        using (var scalar = Npy.ReadFloat32(Craft("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", Bytes(2.5f))))
        {
            Assert.That(scalar.Rank, Is.EqualTo(0));
            Assert.That(scalar.AsSpan<float>()[0], Is.EqualTo(2.5f));
        }
        using var empty = Npy.ReadFloat32(Craft("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", []));
        Assert.That(empty.ShapeText, Is.EqualTo("(0, 3)"));
    }

    [Test]
    public void Int32TensorsAreWrittenAsI4()
    {
        using var tensor = Tensor.Empty([2, 2], DataType.Int32);
        new[] { 1, -2, 3, 16777216 }.CopyTo(tensor.AsSpan<int>());
        var path = Path.Combine(Folder, "i.npy");
        Npy.Write(path, tensor);
        Assert.That(Npy.ReadHeader(path).Descr, Is.EqualTo("<i4"));
        using var read = Npy.ReadFloat32(path);
        Assert.That(read.AsSpan<float>().ToArray(), Is.EqualTo(new[] { 1f, -2f, 3f, 16777216f }));
    }

    [Test]
    public void OtherDtypesAreConvertedToFloat32()
    {
        using (var f8 = Npy.ReadFloat32(Craft("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", Bytes(0.1, -1e300))))
        {
            Assert.That(f8.AsSpan<float>().ToArray(), Is.EqualTo(new[] { 0.1f, float.NegativeInfinity }));
        }
        using var i8 = Npy.ReadFloat32(Craft("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }", Bytes(-7L, 1L << 40)));
        Assert.That(i8.AsSpan<float>().ToArray(), Is.EqualTo(new[] { -7f, (float)(1L << 40) }));
    }

    [Test]
    public void VersionsTwoAndThreeAndKeyOrderAndPythonTwoLongs()
    {
        var data = Bytes(1f, 2f);
        using (var v2 = Npy.ReadFloat32(Craft("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }   \n", data, major: 2)))
        {
            Assert.That(v2.AsSpan<float>().ToArray(), Is.EqualTo(new[] { 1f, 2f }));
        }
        using (var v3 = Npy.ReadFloat32(Craft("{\"shape\": (1,2), \"fortran_order\": False, \"descr\": \"<f4\"}\n", data, major: 3, encoding: Encoding.UTF8)))
        {
            Assert.That(v3.ShapeText, Is.EqualTo("(1, 2)"));
        }
        using var longs = Npy.ReadFloat32(Craft("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,)}", data));
        Assert.That(longs.ShapeText, Is.EqualTo("(2,)"));
    }

    private static IEnumerable<TestCaseData> BadHeaders()
    {
        var ok = "'fortran_order': False, 'shape': (2,)";
        yield return new TestCaseData("{'descr': '>f4', " + ok + "}", "big-endian").SetArgDisplayNames("big-endian");
        yield return new TestCaseData("{'descr': '<f2', " + ok + "}", "unsupported .npy dtype '<f2'").SetArgDisplayNames("float16");
        yield return new TestCaseData("{'descr': '|u1', " + ok + "}", "unsupported").SetArgDisplayNames("uint8");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", "Fortran").SetArgDisplayNames("fortran");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': False}", "missing 'shape'").SetArgDisplayNames("no shape");
        yield return new TestCaseData("{'descr': '<f4', 'shape': (2,)}", "missing 'fortran_order'").SetArgDisplayNames("no order");
        yield return new TestCaseData("{'descr': '<f4', " + ok + ", 'extra': 1}", "unexpected key 'extra'").SetArgDisplayNames("extra key");
        yield return new TestCaseData("{'descr': '<f4', 'descr': '<f4', " + ok + "}", "appears twice").SetArgDisplayNames("twice");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", "True or False").SetArgDisplayNames("lowercase bool");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "non-negative integer").SetArgDisplayNames("negative size");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3.5)}", "expected ')'").SetArgDisplayNames("float size");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large").SetArgDisplayNames("huge size");
        yield return new TestCaseData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "header ended").SetArgDisplayNames("unterminated tuple");
        yield return new TestCaseData("{'descr: '<f4'}", "expected ':'").SetArgDisplayNames("broken quote");
        yield return new TestCaseData("['descr', '<f4']", "expected '{'").SetArgDisplayNames("not a dict");
        yield return new TestCaseData("{'descr': [('a', '<f4')], " + ok + "}", "quoted string").SetArgDisplayNames("structured dtype");
        yield return new TestCaseData("{'descr': '<f4', " + ok + "} trailing", "after the header").SetArgDisplayNames("trailing text");
        yield return new TestCaseData("", "header ended").SetArgDisplayNames("empty header");
    }

    [TestCaseSource(nameof(BadHeaders))]
    public void BadHeadersAreClearErrors(string header, string expected)
    {
        var path = Craft(header, Bytes(1f, 2f), name: "bad-header.npy");
        var error = Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(path).Dispose());
        Assert.That(error!.Message, Does.Contain(path).And.Contain(expected));
    }

    [Test]
    public void SizesThatDisagreeWithTheFileAreErrors()
    {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}";
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(Craft(header, Bytes(1f, 2f))))!.Message,
            Does.Contain("truncated").And.Contain("12 data bytes"));
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(Craft(header, Bytes(1f, 2f, 3f, 4f))))!.Message,
            Does.Contain("trailing bytes"));
        var overflow = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}";
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(Craft(overflow, Bytes(1.0))))!.Message,
            Does.Contain("too large"));
    }

    [Test]
    public void BadPrefixesAreErrors()
    {
        var notNpy = Path.Combine(Folder, "text.npy");
        File.WriteAllText(notNpy, "hello, world");
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(notNpy))!.Message, Does.Contain(notNpy).And.Contain("not a .npy"));
        var version = Craft("{}", [], major: 4);
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(version))!.Message, Does.Contain("version 4.0"));
        var shortHeader = Path.Combine(Folder, "short.npy");
        File.WriteAllBytes(shortHeader, [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 200, 0, (byte)'{']);
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(shortHeader))!.Message, Does.Contain("truncated .npy header"));
        var missing = Path.Combine(Folder, "missing.npy");
        Assert.That(Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(missing))!.Message, Does.Contain(missing).And.Contain("not found"));
    }

    [Test]
    public void EveryTruncationOfAValidFileIsAnError()
    {
        using var tensor = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        var path = Path.Combine(Folder, "whole.npy");
        Npy.Write(path, tensor);
        var bytes = File.ReadAllBytes(path);
        var cut = Path.Combine(Folder, "cut.npy");
        for (var length = 0; length < bytes.Length; length++)
        {
            File.WriteAllBytes(cut, bytes[..length]);
            var error = Assert.Throws<LrmFormatException>(() => Npy.ReadFloat32(cut).Dispose(), $"cut to {length} bytes");
            Assert.That(error!.Message, Does.Contain(cut));
        }
    }
}
