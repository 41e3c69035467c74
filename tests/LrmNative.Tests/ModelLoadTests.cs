using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// Loading OpenLRM-style model folders that the tests write themselves (config.json + model.safetensors with
/// random weights under the checkpoint keys): parameter counts, tolerated extra tensors, and one clear error
/// naming the file, key and shapes for a missing or mis-shaped tensor.
/// </summary>
[TestFixture]
public sealed class ModelLoadTests
{
    private readonly CpuBackend _backend = new();
    private string _root = "";

    [SetUp]
    public void CreateRoot()
    {
        _root = Path.Combine(Path.GetTempPath(), $"lrm-model-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_root);
    }

    [TearDown]
    public void DeleteRoot() => Directory.Delete(_root, recursive: true);

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    // Tiny configs: separate cross-attention projections (cond 48 ≠ D 64) and packed ones (cond = D = 48).
    private const string TinyJson = """
        {
          "camera_embed_dim": 32, "rendering_samples_per_ray": 16, "transformer_dim": 64,
          "transformer_layers": 2, "transformer_heads": 4, "triplane_low_res": 8, "triplane_high_res": 16,
          "triplane_dim": 8, "encoder_type": "dinov2", "encoder_model_name": "dinov2_vits14_reg",
          "encoder_feat_dim": 48, "encoder_freeze": false,
          "encoder_depth": 2, "encoder_heads": 3, "encoder_image_size": 56
        }
        """;

    private static readonly string PackedJson = TinyJson.Replace("\"transformer_dim\": 64", "\"transformer_dim\": 48", StringComparison.Ordinal)
        .Replace("\"transformer_heads\": 4", "\"transformer_heads\": 3", StringComparison.Ordinal);

    /// <summary>
    /// Writes a model folder with random weights for <paramref name="json"/>; <paramref name="edit"/> may drop
    /// (return null) or replace a tensor's shape; <paramref name="extra"/> adds tensors the model does not use.
    /// </summary>
    private string WriteModel(string json, Func<WeightSpec, long[]?>? edit = null, IReadOnlyDictionary<string, long[]>? extra = null)
    {
        var directory = Path.Combine(_root, $"model-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, LrmModel.ConfigFileName), json);
        var config = ModelConfig.Parse(json, "test");
        var random = new Random(42);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var spec in LrmWeightNames.Expected(config))
            {
                var shape = edit is null ? spec.Shape : edit(spec);
                if (shape is not null)
                {
                    tensors.Add(new(spec.Name, RandomTensor(random, shape, spec.Name)));
                }
            }
            foreach (var (name, shape) in extra ?? new Dictionary<string, long[]>())
            {
                tensors.Add(new(name, RandomTensor(random, shape, name)));
            }
            SafeTensorsFile.Write(Path.Combine(directory, LrmModel.WeightsFileName), tensors);
        }
        finally
        {
            foreach (var (_, tensor) in tensors)
            {
                tensor.Dispose();
            }
        }
        return directory;
    }

    // Small random values (LayerNorm weights and LayerScale around 1 and 0.5), so a forward stays finite.
    private static Tensor RandomTensor(Random random, long[] shape, string name)
    {
        var tensor = Tensor.Empty(shape);
        var span = tensor.AsSpan<float>();
        var parts = name.Split('.');
        var layerNormWeight = parts[^1] == "weight" && parts.Length > 1 && parts[^2] is "norm" or "norm1" or "norm2";
        var (center, scale) = layerNormWeight ? (1f, 0.1f) : parts[^1] == "gamma" ? (0.5f, 0.1f) : (0f, 0.05f);
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = center + scale * (float)(random.NextDouble() * 2 - 1);
        }
        return tensor;
    }

    [TestCase(false)]
    [TestCase(true)]
    public void RandomCheckpointLoadsCountsAndRuns(bool packedCrossAttention)
    {
        var json = packedCrossAttention ? PackedJson : TinyJson;
        var directory = WriteModel(json, extra: new Dictionary<string, long[]> { ["encoder.model.mask_token"] = [1, 48] });
        using var model = LrmModel.Load(directory);
        Assert.That(model.Config.CrossAttentionPacked, Is.EqualTo(packedCrossAttention));
        Assert.That(model.ParameterCount, Is.EqualTo(model.Config.ParameterCount));
        Assert.That(model.IgnoredTensors, Is.EqualTo(new[] { "encoder.model.mask_token" }));

        using var image = Tensor.Zeros([1, 3, 56, 56]);
        image.AsSpan<float>().Fill(0.5f);
        using var camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
        using var outputs = model.Forward(_backend, image, camera);
        Assert.That(outputs.Features.Shape.ToArray(), Is.EqualTo(new long[] { 1, 17, 48 }));
        Assert.That(outputs.Tokens.Shape.ToArray(), Is.EqualTo(new long[] { 1, 192, model.Config.TransformerDim }));
        Assert.That(outputs.Planes.Shape.ToArray(), Is.EqualTo(new long[] { 1, 3, 8, 16, 16 }));
        Assert.That(outputs.Planes.AsSpan<float>().ToArray().All(float.IsFinite), Is.True);

        var (config, ignored) = LrmModel.Inspect(directory);
        Assert.That(config.ParameterCount, Is.EqualTo(model.ParameterCount));
        Assert.That(ignored, Is.EqualTo(model.IgnoredTensors));
    }

    /// <summary>
    /// OpenLRM's small architecture at full size (111.39 M parameters, a 445 MB checkpoint written here with
    /// pseudo-random weights): the folder loads, and the header-only inspection of <c>lrm info</c> agrees.
    /// Base and large are counted from their configs alone (<see cref="ModelConfigTests"/>).
    /// </summary>
    [Test]
    public void FullSizeSmallCheckpointLoads()
    {
        var preset = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "configs", "openlrm-small.json"));
        var directory = Path.Combine(_root, "openlrm-small");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, LrmModel.ConfigFileName), preset);
        var config = ModelConfig.Parse(preset, "openlrm-small.json");
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            uint state = 2463534242;
            foreach (var spec in LrmWeightNames.Expected(config))
            {
                var tensor = Tensor.Empty(spec.Shape);
                var span = tensor.AsSpan<float>();
                for (var i = 0; i < span.Length; i++)
                {
                    // xorshift32: cheap enough for 10⁸ values.
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    span[i] = (state >> 8) * (0.04f / (1 << 24)) - 0.02f;
                }
                tensors.Add(new(spec.Name, tensor));
            }
            SafeTensorsFile.Write(Path.Combine(directory, LrmModel.WeightsFileName), tensors);
        }
        finally
        {
            foreach (var (_, tensor) in tensors)
            {
                tensor.Dispose();
            }
        }
        var (inspected, ignored) = LrmModel.Inspect(directory);
        Assert.That(inspected.ParameterCountText, Is.EqualTo("111.39 M"));
        Assert.That(ignored, Is.Empty);
        using var model = LrmModel.Load(directory);
        Assert.That(model.ParameterCount, Is.EqualTo(111_390_948));
    }

    [Test]
    public void TinyParameterCountIsTheSumOfTheTable()
    {
        var config = ModelConfig.Parse(TinyJson, "tiny");
        // The golden tiny checkpoint holds every tensor of the table plus DINOv2's mask_token (1, 48),
        // which OpenLRM's checkpoints do not have and the count leaves out.
        using var file = SafeTensorsFile.Open(Path.Combine(Golden.DataDirectory, "model", "tiny", LrmModel.WeightsFileName));
        var inFile = file.Tensors.Sum(tensor => tensor.ElementCount);
        Assert.That(config.ParameterCount, Is.EqualTo(inFile - 48));
        Assert.That(config.ParameterCount, Is.EqualTo(331_084));
    }

    [Test]
    public void MissingTensorNamesFileKeyAndShape()
    {
        const string key = "transformer.layers.1.cross_attn.k_proj_weight";
        var directory = WriteModel(TinyJson, spec => spec.Name == key ? null : spec.Shape);
        var error = Assert.Throws<LrmFormatException>(() => LrmModel.Load(directory));
        var weights = Path.Combine(directory, LrmModel.WeightsFileName);
        Assert.That(error!.Message, Does.StartWith(weights).And.Contain($"'{key}' is missing (expected shape (64, 48))"));
        Assert.Throws<LrmFormatException>(() => LrmModel.Inspect(directory));
    }

    [Test]
    public void MisShapedTensorNamesBothShapes()
    {
        const string key = "encoder.model.blocks.0.attn.qkv.weight";
        var directory = WriteModel(TinyJson, spec => spec.Name == key ? [144, 47] : spec.Shape);
        var error = Assert.Throws<LrmFormatException>(() => LrmModel.Load(directory));
        Assert.That(error!.Message, Does.Contain(LrmModel.WeightsFileName).And.Contain($"'{key}' has shape (144, 47), expected (144, 48)"));
    }

    [Test]
    public void EveryProblemIsListedInOneError()
    {
        var directory = WriteModel(TinyJson, spec => spec.Name.StartsWith("synthesizer.", StringComparison.Ordinal) ? null : spec.Shape);
        var error = Assert.Throws<LrmFormatException>(() => LrmModel.Load(directory));
        Assert.That(error!.Message, Does.Contain("8 tensors do not match").And.Contain("synthesizer.decoder.net.6.bias"));
    }

    [Test]
    public void CheckpointOfAnotherConfigIsRejected()
    {
        // A checkpoint written for the packed config, read with the separate-projection config.
        var directory = WriteModel(PackedJson);
        File.WriteAllText(Path.Combine(directory, LrmModel.ConfigFileName), TinyJson);
        var error = Assert.Throws<LrmFormatException>(() => LrmModel.Load(directory));
        Assert.That(error!.Message, Does.Contain("'pos_embed' has shape (1, 192, 48), expected (1, 192, 64)"));
    }

    [Test]
    public void MissingFilesAreNamed()
    {
        var missing = Path.Combine(_root, "nothing-here");
        Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.Load(missing))!.Message, Does.StartWith(missing));
        var onlyConfig = Path.Combine(_root, "only-config");
        Directory.CreateDirectory(onlyConfig);
        File.WriteAllText(Path.Combine(onlyConfig, LrmModel.ConfigFileName), TinyJson);
        Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.Load(onlyConfig))!.Message,
            Does.StartWith(Path.Combine(onlyConfig, LrmModel.WeightsFileName)));
        var onlyWeights = Path.Combine(_root, "only-weights");
        Directory.CreateDirectory(onlyWeights);
        Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.Load(onlyWeights))!.Message,
            Does.StartWith(Path.Combine(onlyWeights, LrmModel.ConfigFileName)));
    }
}
