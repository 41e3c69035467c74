using System.Buffers.Binary;
using System.Text;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>Our safetensors reader/writer: round trip, and one clear error per kind of corrupt file.</summary>
[TestFixture]
public sealed class SafeTensorsTests
{
    private string _directory = null!;

    [SetUp]
    public void MakeDirectory() => _directory = Directory.CreateTempSubdirectory("lrm-safetensors-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void RoundTripKeepsValuesShapesTypesAndMetadata()
    {
        var path = Path.Combine(_directory, "model.safetensors");
        using var a = Tensor.FromArray([1f, -2.5f, 3.25f, float.MaxValue, 0f, -0f], 2, 3);
        using var b = Tensor.Zeros([5], DataType.BFloat16);
        b.AsSpan<ushort>()[2] = 0x3F80; // 1.0
        using var c = Tensor.Zeros([3], DataType.Int32);
        c.AsSpan<int>()[1] = -7;
        SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["layer.weight"] = a, ["b"] = b, ["count"] = c },
            new Dictionary<string, string> { ["format"] = "pt" });
        using var file = SafeTensorsFile.Open(path);
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        using var a2 = file.ReadTensor("layer.weight", [2, 3]);
        Assert.That(a2.ToFloatArray(), Is.EqualTo(a.ToFloatArray()));
        using var b2 = file.ReadTensor("b");
        Assert.That(b2.DataType, Is.EqualTo(DataType.BFloat16));
        Assert.That(b2.ToFloatArray()[2], Is.EqualTo(1f));
        using var c2 = file.ReadTensor("count");
        Assert.That(c2.AsSpan<int>()[1], Is.EqualTo(-7));
        Assert.That(Directory.GetFiles(_directory), Has.Length.EqualTo(1), "no temporary file left behind");
    }

    [Test]
    public void ASymbolicLinkToAFileOpensAsTheFile()
    {
        var path = Path.Combine(_directory, "weights.safetensors");
        using var a = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["w"] = a }, new Dictionary<string, string>());
        var link = Path.Combine(_directory, "link.safetensors");
        File.CreateSymbolicLink(link, path);
        Assert.That(FileLength.Of(link), Is.EqualTo(new FileInfo(path).Length), "the target's size, not the link's");
        using var file = SafeTensorsFile.Open(link);
        using var w = file.ReadTensor("w", [2, 2]);
        Assert.That(w.ToFloatArray(), Is.EqualTo(a.ToFloatArray()));
    }

    [Test]
    public void MissingFileNamesThePath()
    {
        var path = Path.Combine(_directory, "absent.safetensors");
        var error = Assert.Throws<LrmFormatException>(() => SafeTensorsFile.Open(path));
        Assert.That(error!.Message, Does.Contain(path).And.Contain("not found"));
    }

    [Test]
    public void TooShortFileIsRejected() =>
        AssertCorrupt([1, 2, 3], "shorter than the 8-byte header length");

    [Test]
    public void LyingHeaderLengthIsRejected()
    {
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1_000_000);
        AssertCorrupt(bytes, "header length 1000000");
    }

    [Test]
    public void InvalidJsonIsRejected() => AssertCorrupt(Build("{\"a\": [", []), "not valid JSON");

    [Test]
    public void UnknownDtypeIsRejected() =>
        AssertCorrupt(Build("{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]), "unknown dtype 'Q7'");

    [Test]
    public void OffsetsOutOfBoundsAreRejected() =>
        AssertCorrupt(Build("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]), "out of bounds");

    [Test]
    public void ShapeThatDisagreesWithOffsetsIsRejected() =>
        AssertCorrupt(Build("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]), "needs 12 bytes");

    [Test]
    public void OverlappingTensorsAreRejected() =>
        AssertCorrupt(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]), "overlaps");

    [Test]
    public void TruncatedDataIsRejected()
    {
        var path = Path.Combine(_directory, "full.safetensors");
        using (var t = Tensor.Zeros([16]))
        {
            SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["t"] = t });
        }
        var bytes = File.ReadAllBytes(path);
        AssertCorrupt(bytes[..^4], "out of bounds");
    }

    [Test]
    public void NegativeShapeIsRejected() =>
        AssertCorrupt(Build("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", []), "non-negative");

    [Test]
    public void MissingTensorListsWhatExists()
    {
        var path = Path.Combine(_directory, "one.safetensors");
        using (var t = Tensor.Zeros([1]))
        {
            SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["present"] = t });
        }
        using var file = SafeTensorsFile.Open(path);
        var error = Assert.Throws<LrmFormatException>(() => file.ReadTensor("absent"));
        Assert.That(error!.Message, Does.Contain("'absent'").And.Contain("present"));
        var shape = Assert.Throws<LrmShapeException>(() => file.ReadTensor("present", [2]));
        Assert.That(shape!.Message, Does.Contain("(1,)").And.Contain("(2,)"));
    }

    private static byte[] Build(string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    private void AssertCorrupt(byte[] bytes, string expectedText)
    {
        var path = Path.Combine(_directory, "bad.safetensors");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<LrmFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.That(error!.Message, Does.Contain(path).And.Contain(expectedText));
    }
}
