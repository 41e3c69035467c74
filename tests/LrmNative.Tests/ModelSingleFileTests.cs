using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>LrmNative's single-file model format: OpenLRM folder → one safetensors file with the config in its metadata.</summary>
[TestFixture]
public sealed class ModelSingleFileTests
{
    private readonly CpuBackend _backend = new();
    private string _directory = null!;

    [SetUp]
    public void MakeDirectory() => _directory = Directory.CreateTempSubdirectory("lrm-single-file-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_directory, recursive: true);

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    [Test]
    public void ConvertedFileLoadsAndGivesBitIdenticalPlanes()
    {
        var path = Path.Combine(_directory, "tiny.lrm.safetensors");
        LrmModel.SaveSingleFile(Golden.TinyModelDirectory, path);
        using (var file = SafeTensorsFile.Open(path))
        {
            Assert.That(file.Metadata[LrmModel.FormatMetadataKey], Is.EqualTo(LrmModel.SingleFileVersion));
            Assert.That(file.Contains("encoder.model.mask_token"), Is.False, "only the tensors the model uses are written");
        }
        using var folderModel = LrmModel.Load(Golden.TinyModelDirectory);
        using var fileModel = LrmModel.Load(path);
        Assert.That(fileModel.ParameterCount, Is.EqualTo(folderModel.ParameterCount));
        Assert.That(fileModel.IgnoredTensors, Is.Empty);
        var (inspected, _) = LrmModel.Inspect(path);
        Assert.That(inspected.ParameterCount, Is.EqualTo(folderModel.ParameterCount));

        var size = folderModel.Config.EncoderImageSize;
        var random = new Random(5);
        using var image = Tensor.FromArray(Enumerable.Range(0, 3 * size * size).Select(_ => random.NextSingle()).ToArray(), 1, 3, size, size);
        using var camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
        using var expected = folderModel.ForwardPlanes(_backend, image, camera);
        using var actual = fileModel.ForwardPlanes(_backend, image, camera);
        Assert.That(actual.AsSpan<float>().SequenceEqual(expected.AsSpan<float>()), Is.True);
    }

    [Test]
    public void PlainSafetensorsFileIsRefusedWithAClearMessage()
    {
        var path = Path.Combine(_directory, "plain.safetensors");
        using (var t = Tensor.Zeros([2]))
        {
            SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["x"] = t });
        }
        var error = Assert.Throws<LrmFormatException>(() => LrmModel.Load(path).Dispose());
        Assert.That(error!.Message, Does.Contain(path).And.Contain("not an LrmNative model file"));
    }

    [Test]
    public void MissingPathNamesBothAcceptedForms()
    {
        var path = Path.Combine(_directory, "absent");
        var error = Assert.Throws<LrmFormatException>(() => LrmModel.Load(path).Dispose());
        Assert.That(error!.Message, Does.Contain(path).And.Contain("config.json").And.Contain("LrmNative model file"));
    }
}
