using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// OpenLRM config.json parsing: the published small/base/large architectures and their parameter counts
/// (computed from the weight table, nothing allocated), defaults, and one clear error per bad key.
/// </summary>
[TestFixture]
public sealed class ModelConfigTests
{
    private static string PresetPath(string name) => Path.Combine(AppContext.BaseDirectory, "configs", name + ".json");

    // OpenLRM v1.1's published sizes (obj and mix share the architecture).
    [TestCase("openlrm-small", 111_390_948L, "111.39 M")]
    [TestCase("openlrm-base", 260_201_972L, "260.20 M")]
    [TestCase("openlrm-large", 452_138_004L, "452.14 M")]
    public void PresetParameterCountsMatchOpenLrm(string name, long parameters, string text)
    {
        var config = ModelConfig.Load(PresetPath(name));
        Assert.That(config.ParameterCount, Is.EqualTo(parameters));
        Assert.That(config.ParameterCountText, Is.EqualTo(text));
        Assert.That(Math.Round(config.ParameterCount / 1e6, 2), Is.EqualTo(double.Parse(text[..^2], System.Globalization.CultureInfo.InvariantCulture)));
    }

    [TestCase("openlrm-small", 384, 6, 224, 32, false)]
    [TestCase("openlrm-base", 768, 12, 336, 48, true)]
    [TestCase("openlrm-large", 768, 12, 448, 80, false)]
    public void PresetDefaultsComeFromTheEncoderNameAndWidth(string name, int encoderWidth, int encoderHeads, int imageSize, int triplaneDim, bool packedCrossAttention)
    {
        var config = ModelConfig.Load(PresetPath(name));
        Assert.Multiple(() =>
        {
            Assert.That(config.EncoderFeatDim, Is.EqualTo(encoderWidth));
            Assert.That(config.EncoderDepth, Is.EqualTo(12));
            Assert.That(config.EncoderHeads, Is.EqualTo(encoderHeads));
            Assert.That(config.EncoderRegisters, Is.EqualTo(4));
            Assert.That(config.EncoderImageSize, Is.EqualTo(imageSize));
            Assert.That(config.PatchGridSize, Is.EqualTo(imageSize / 14));
            Assert.That(config.TriplaneDim, Is.EqualTo(triplaneDim));
            Assert.That(config.TransformerHeadDim, Is.EqualTo(64));
            Assert.That(config.CrossAttentionPacked, Is.EqualTo(packedCrossAttention));
            Assert.That(config.EncoderInterpolateAntialias, Is.True);
            Assert.That(config.EncoderInterpolateOffset, Is.Zero);
        });
    }

    [Test]
    public void ToJsonRoundTrips()
    {
        var config = ModelConfig.Load(PresetPath("openlrm-base"));
        var again = ModelConfig.Parse(config.ToJson(), "round trip");
        Assert.That(again with { Source = config.Source }, Is.EqualTo(config));
    }

    [Test]
    public void ExtensionKeysOverrideTheDefaults()
    {
        var config = ModelConfig.Parse(TinyJson(), "tiny");
        Assert.Multiple(() =>
        {
            Assert.That(config.EncoderDepth, Is.EqualTo(2));
            Assert.That(config.EncoderHeads, Is.EqualTo(3));
            Assert.That(config.EncoderImageSize, Is.EqualTo(56));
            Assert.That(config.EncoderTokens, Is.EqualTo(17));
            Assert.That(config.TriplaneTokens, Is.EqualTo(192));
        });
    }

    /// <summary>A valid small config with one text replaced (also HostileInputTests').</summary>
    internal static string TinyJson(string? replace = null, string? with = null)
    {
        const string json = """
            {
              "camera_embed_dim": 32, "rendering_samples_per_ray": 16, "transformer_dim": 64,
              "transformer_layers": 2, "transformer_heads": 4, "triplane_low_res": 8, "triplane_high_res": 16,
              "triplane_dim": 8, "encoder_type": "dinov2", "encoder_model_name": "dinov2_vits14_reg",
              "encoder_feat_dim": 48, "encoder_freeze": false,
              "encoder_depth": 2, "encoder_heads": 3, "encoder_image_size": 56
            }
            """;
        return replace is null ? json : json.Replace(replace, with, StringComparison.Ordinal);
    }

    [TestCase("\"camera_embed_dim\": 32, ", "", "missing key 'camera_embed_dim'")]
    [TestCase("\"transformer_dim\": 64", "\"transformer_dim\": \"64\"", "'transformer_dim' must be a positive integer")]
    [TestCase("\"transformer_layers\": 2", "\"transformer_layers\": -2", "'transformer_layers' must be a positive integer")]
    [TestCase("\"triplane_dim\": 8", "\"triplane_dim\": 8.5", "'triplane_dim' must be a positive integer")]
    [TestCase("\"encoder_freeze\": false", "\"encoder_freeze\": 0", "'encoder_freeze' must be true or false")]
    [TestCase("\"transformer_heads\": 4", "\"transformer_heads\": 5", "transformer_heads")]
    [TestCase("\"triplane_high_res\": 16", "\"triplane_high_res\": 32", "triplane_high_res")]
    [TestCase("\"encoder_image_size\": 56", "\"encoder_image_size\": 50", "encoder_image_size")]
    [TestCase("\"rendering_samples_per_ray\": 16", "\"rendering_samples_per_ray\": 7", "rendering_samples_per_ray")]
    public void BadKeysNameTheFileAndTheKey(string replace, string with, string message)
    {
        var path = Path.Combine(Path.GetTempPath(), $"lrm-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, TinyJson(replace, with));
        try
        {
            var error = Assert.Throws<LrmFormatException>(() => ModelConfig.Load(path));
            Assert.That(error!.Message, Does.StartWith(path).And.Contain(message));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void UnknownEncodersAreUnsupportedWithTheirName()
    {
        var error = Assert.Throws<LrmUnsupportedException>(() => ModelConfig.Parse(TinyJson("dinov2_vits14_reg", "dinov2_vitg14_reg"), "c.json"));
        Assert.That(error!.Message, Does.Contain("c.json").And.Contain("encoder_model_name").And.Contain("dinov2_vitg14_reg"));
        error = Assert.Throws<LrmUnsupportedException>(() => ModelConfig.Parse(TinyJson("\"dinov2\"", "\"dino\""), "c.json"));
        Assert.That(error!.Message, Does.Contain("encoder_type"));
    }

    [Test]
    public void NonStandardEncoderWidthNeedsItsHeads()
    {
        var json = TinyJson("\"encoder_heads\": 3, ", "");
        var error = Assert.Throws<LrmFormatException>(() => ModelConfig.Parse(json, "c.json"));
        Assert.That(error!.Message, Does.Contain("encoder_feat_dim").And.Contain("encoder_heads"));
    }

    [Test]
    public void ImageSizeWithoutDefaultMustBeGiven()
    {
        var error = Assert.Throws<LrmFormatException>(() => ModelConfig.Parse(TinyJson("\"encoder_image_size\": 56", "\"encoder_freeze_extra\": 1"), "c.json"));
        Assert.That(error!.Message, Does.Contain("encoder_image_size").And.Contain("transformer_dim 64"));
    }

    [Test]
    public void NotJsonAndMissingFilesAreFormatErrors()
    {
        Assert.That(Assert.Throws<LrmFormatException>(() => ModelConfig.Parse("{ nope", "c.json"))!.Message, Does.StartWith("c.json: not valid JSON"));
        Assert.That(Assert.Throws<LrmFormatException>(() => ModelConfig.Parse("[1, 2]", "c.json"))!.Message, Does.StartWith("c.json: must be a JSON object"));
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir-lrm", "config.json");
        Assert.That(Assert.Throws<LrmFormatException>(() => ModelConfig.Load(missing))!.Message, Does.StartWith(missing));
    }
}
