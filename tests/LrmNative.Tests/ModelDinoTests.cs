using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The paper's architecture through the same code path as OpenLRM v1.1: DINO v1 encoder (patch 16, no
/// registers, no LayerScale, 14×14 position table resized bilinearly), the 20-value camera feature and the
/// 10-layer NeRF MLP. Config parsing, the lrm-base-paper preset, and parity with PyTorch
/// (tests/golden/make_model_golden.py: encoder_dino, full_dino, nerf_query_deep), ‖out − ref‖/‖ref‖ &lt; 1e-4.
/// </summary>
[TestFixture]
public sealed class ModelDinoTests
{
    private const double Tolerance = 1e-4;
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    private static string PresetPath(string name) => Path.Combine(AppContext.BaseDirectory, "configs", name + ".json");

    private static void AssertClose(Tensor actual, Tensor expected, string what) => Compare.Close(actual, expected, Tolerance, what);

    [Test]
    public void PaperPresetParameterCount()
    {
        var config = ModelConfig.Load(PresetPath("lrm-base-paper"));
        var specs = LrmWeightNames.Expected(config);
        TestContext.Out.WriteLine($"lrm-base-paper: {config.ParameterCount} parameters ({config.ParameterCountText})");
        Assert.Multiple(() =>
        {
            Assert.That(config.EncoderType, Is.EqualTo("dino"));
            Assert.That(config.EncoderPatchSize, Is.EqualTo(16));
            Assert.That(config.PatchGridSize, Is.EqualTo(32));
            Assert.That(config.EncoderTokens, Is.EqualTo(1025));
            Assert.That(config.EncoderRegisters, Is.Zero);
            Assert.That(config.EncoderLayerScale, Is.False);
            Assert.That(config.EncoderPositionGrid, Is.EqualTo(14));
            Assert.That(config.EncoderPositionInterpolation, Is.EqualTo("bilinear"));
            Assert.That(config.CameraInputDim, Is.EqualTo(20));
            Assert.That(config.NerfLayerCount, Is.EqualTo(10));
            Assert.That(config.TransformerHeadDim, Is.EqualTo(64));
            Assert.That(config.CrossAttentionPacked, Is.False);
            Assert.That(specs.Any(s => s.Name.Contains(".ls1.", StringComparison.Ordinal) || s.Name.Contains("register_tokens", StringComparison.Ordinal)), Is.False);
            Assert.That(specs.Single(s => s.Name == "encoder.model.pos_embed").Shape, Is.EqualTo(new long[] { 1, 197, 768 }));
            Assert.That(specs.Single(s => s.Name == "encoder.model.patch_embed.proj.weight").Shape, Is.EqualTo(new long[] { 768, 3, 16, 16 }));
            Assert.That(specs.Single(s => s.Name == "camera_embedder.mlp.0.weight").Shape, Is.EqualTo(new long[] { 1024, 20 }));
            Assert.That(specs.Where(s => s.Name.StartsWith(LrmWeightNames.Nerf, StringComparison.Ordinal)).Select(s => s.Name).Last(),
                Is.EqualTo("synthesizer.decoder.net.18.bias"));
            // DINO ViT-B/16 without its head (85.8 M) + decoder/upsampler/NeRF: "~500M" per the paper/DESIGN.
            Assert.That(config.ParameterCount, Is.InRange(400_000_000L, 600_000_000L));
        });
        // The exact count, from the table (pinned so that a change to the weight names shows up here).
        Assert.That(config.ParameterCount, Is.EqualTo(ExpectedPaperParameters()));
    }

    // The paper's parameter count recomputed by hand from the architecture (independent of LrmWeightNames).
    private static long ExpectedPaperParameters()
    {
        const long c = 768, d = 1024, e = 1024, t = 80, h = 64;
        long encoder = c + 197 * c + c * 3 * 16 * 16 + c + 2 * c
            + 12 * (2 * c + 3 * c * c + 3 * c + c * c + c + 2 * c + 4 * c * c + 4 * c + 4 * c * c + c);
        long camera = 20 * e + e + e * e + e;
        long block = 3 * (2 * d + 2 * d * e + 2 * d) + (d * d + 2 * d * c) + d * d + 3 * d * d + d * d + 4 * d * d + 4 * d + 4 * d * d + d;
        long decoder = 3 * 32 * 32 * d + 16 * block + 2 * d;
        long upsampler = d * t * 4 + t;
        long nerf = (3 * t * h + h) + 8 * (h * h + h) + (h * 4 + 4);
        return encoder + camera + decoder + upsampler + nerf;
    }

    [Test]
    public void DinoDefaultsComeFromTheEncoderType()
    {
        const string json = """
            {
              "camera_embed_dim": 32, "rendering_samples_per_ray": 16, "transformer_dim": 64,
              "transformer_layers": 2, "transformer_heads": 4, "triplane_low_res": 8, "triplane_high_res": 16,
              "triplane_dim": 8, "encoder_type": "dino", "encoder_model_name": "dino_vitb16",
              "encoder_feat_dim": 768, "encoder_freeze": false
            }
            """;
        var config = ModelConfig.Parse(json, "dino.json");
        Assert.Multiple(() =>
        {
            Assert.That(config.EncoderDepth, Is.EqualTo(12));
            Assert.That(config.EncoderHeads, Is.EqualTo(12));
            Assert.That(config.EncoderPatchSize, Is.EqualTo(16));
            Assert.That(config.EncoderRegisters, Is.Zero);
            Assert.That(config.EncoderLayerScale, Is.False);
            Assert.That(config.EncoderPositionGrid, Is.EqualTo(14));
            Assert.That(config.EncoderPositionInterpolation, Is.EqualTo(ModelConfig.InterpolationBilinear));
            Assert.That(config.EncoderImageSize, Is.EqualTo(512));
            Assert.That(config.EncoderImageMean, Is.Null);
            Assert.That(config.CameraInputDim, Is.EqualTo(16));
            Assert.That(config.NerfLayerCount, Is.EqualTo(4));
        });
        var again = ModelConfig.Parse(config.ToJson(), "round trip");
        Assert.That(again with { Source = config.Source }, Is.EqualTo(config));
    }

    [Test]
    public void OpenLrmPresetsKeepTheirDefaults()
    {
        foreach (var name in new[] { "openlrm-small", "openlrm-base", "openlrm-large" })
        {
            var config = ModelConfig.Load(PresetPath(name));
            Assert.Multiple(() =>
            {
                Assert.That(config.EncoderPatchSize, Is.EqualTo(14), name);
                Assert.That(config.EncoderRegisters, Is.EqualTo(4), name);
                Assert.That(config.EncoderLayerScale, Is.True, name);
                Assert.That(config.EncoderPositionGrid, Is.EqualTo(37), name);
                Assert.That(config.EncoderPositionInterpolation, Is.EqualTo(ModelConfig.InterpolationBicubicAntialias), name);
                Assert.That(config.CameraInputDim, Is.EqualTo(16), name);
                Assert.That(config.NerfLayerCount, Is.EqualTo(4), name);
                Assert.That(config.NerfHiddenWidth, Is.EqualTo(64), name);
            });
            var nerf = LrmWeightNames.Expected(config).Where(s => s.Name.StartsWith(LrmWeightNames.Nerf, StringComparison.Ordinal)).Select(s => s.Name);
            Assert.That(nerf, Is.EqualTo(LrmWeightNames.NerfLinearIndices.SelectMany(i => new[] { $"{LrmWeightNames.Nerf}{i}.weight", $"{LrmWeightNames.Nerf}{i}.bias" })));
        }
    }

    [TestCase("\"camera_input_dim\": 20", "\"camera_input_dim\": 18", "camera_input_dim")]
    [TestCase("\"nerf_layers\": 10", "\"nerf_layers\": 1", "nerf_layers")]
    [TestCase("\"encoder_pos_interpolation\": \"bilinear\"", "\"encoder_pos_interpolation\": \"nearest\"", "encoder_pos_interpolation")]
    [TestCase("\"encoder_image_size\": 64", "\"encoder_image_size\": 56", "encoder_image_size")]
    [TestCase("\"encoder_layer_scale\": false", "\"encoder_layer_scale\": 0", "'encoder_layer_scale' must be true or false")]
    [TestCase("\"encoder_registers\": 0", "\"encoder_registers\": -1", "'encoder_registers' must be a non-negative integer")]
    [TestCase("\"encoder_freeze\": false", "\"encoder_freeze\": false, \"encoder_image_mean\": [0.5, 0.5]", "encoder_image_mean")]
    public void BadExtensionKeysNameTheKey(string replace, string with, string message)
    {
        using var file = SafeTensorsFile.Open(Golden.ModelCasePath("full_dino"));
        var json = file.Metadata["config"];
        Assert.That(json, Does.Contain(replace));
        var error = Assert.Throws<LrmFormatException>(() => ModelConfig.Parse(json.Replace(replace, with, StringComparison.Ordinal), "c.json"));
        Assert.That(error!.Message, Does.StartWith("c.json").And.Contain(message));
    }

    [Test]
    public void EncoderTypeMustMatchTheModelName()
    {
        using var file = SafeTensorsFile.Open(Golden.ModelCasePath("full_dino"));
        var json = file.Metadata["config"].Replace("dino_vitb16", "dinov2_vitb14", StringComparison.Ordinal);
        var error = Assert.Throws<LrmUnsupportedException>(() => ModelConfig.Parse(json, "c.json"));
        Assert.That(error!.Message, Does.Contain("encoder_type").And.Contain("dinov2_vitb14"));
    }

    [Test]
    public void CanonicalSourceCameraHasTwentyValuesForThePaper()
    {
        var full = Cameras.CanonicalSourceFor(20);
        Assert.That(full, Has.Length.EqualTo(20));
        Assert.That(full[..12], Is.EqualTo(Cameras.CanonicalSource()[..12]));
        Assert.That(full[12..16], Is.EqualTo(new[] { 0f, 0f, 0f, 1f }));
        Assert.That(full[16..], Is.EqualTo(Cameras.CanonicalSource()[12..]));
        Assert.That(Cameras.CanonicalSourceFor(16), Is.EqualTo(Cameras.CanonicalSource()));
        Assert.Throws<LrmInvalidArgumentException>(() => Cameras.CanonicalSourceFor(25));
    }

    [Test]
    public void EncoderDino()
    {
        var path = Golden.ModelCasePath("encoder_dino");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightSet.Load(path, LrmWeightNames.Expected(config).Where(s => s.Name.StartsWith(LrmWeightNames.Encoder, StringComparison.Ordinal)));
        using var encoder = new DinoV2Encoder(config, weights);
        using var image = file.ReadTensor("in.image");
        using var features = encoder.Forward(_backend, image);
        using var expected = file.ReadTensor("out.features");
        AssertClose(features, expected, "dino encoder features");
        using var expectedPositions = file.ReadTensor("out.pos_embed_resized");
        var positions = encoder.PositionTable(_backend, config.PatchGridSize, config.PatchGridSize);
        Assert.That(positions.ElementCount, Is.EqualTo(expectedPositions.ElementCount));
        Assert.That(Compare.RelativeError(positions.AsSpan<float>(), expectedPositions.AsSpan<float>()), Is.LessThan(Tolerance),
            "bilinear-resized 14×14 position table");
    }

    [Test]
    public void FullDino()
    {
        var path = Golden.ModelCasePath("full_dino");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var model = LrmModel.Load(config, path);
        Assert.That(model.ParameterCount, Is.EqualTo(config.ParameterCount));
        using var image = file.ReadTensor("in.image");
        using var camera = file.ReadTensor("in.camera");
        Assert.That(camera.AsSpan<float>().ToArray(), Is.EqualTo(Cameras.CanonicalSourceFor(20)), "canonical 20-value source camera");
        using var outputs = model.Forward(_backend, image, camera);
        using var expectedFeatures = file.ReadTensor("out.features");
        using var expectedTokens = file.ReadTensor("out.tokens");
        using var expectedPlanes = file.ReadTensor("out.planes");
        AssertClose(outputs.Features, expectedFeatures, "full_dino features");
        AssertClose(outputs.Tokens, expectedTokens, "full_dino tokens");
        AssertClose(outputs.Planes, expectedPlanes, "full_dino planes");
        using var wrongCamera = Tensor.FromArray(Cameras.CanonicalSource(), 1, 16);
        Assert.Throws<LrmShapeException>(() => model.Forward(_backend, image, wrongCamera).Dispose());
    }

    [Test]
    public void NerfQueryDeep()
    {
        var path = Golden.ModelCasePath("nerf_query_deep");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightSet.Load(path, LrmWeightNames.NerfSpecs(config));
        var nerf = new TriplaneNerf(weights, config.NerfLayerCount);
        using var planes = file.ReadTensor("in.planes");
        using var channelsLast = TriplaneNerf.ToChannelsLast(_backend, planes);
        using var points = file.ReadTensor("in.points");
        var (sigma, rgb) = nerf.Query(_backend, channelsLast, points);
        using (sigma)
        using (rgb)
        {
            using var expectedSigma = file.ReadTensor("out.sigma");
            using var expectedRgb = file.ReadTensor("out.rgb");
            AssertClose(sigma, expectedSigma, "deep nerf sigma");
            AssertClose(rgb, expectedRgb, "deep nerf rgb");
        }
    }

    [Test]
    public void ImageMeanAndStdNormaliseTheInput()
    {
        var path = Golden.ModelCasePath("encoder_dino");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        var normalising = config with { EncoderImageMean = [0.485f, 0.456f, 0.406f], EncoderImageStd = [0.229f, 0.224f, 0.225f] };
        var specs = LrmWeightNames.Expected(config).Where(s => s.Name.StartsWith(LrmWeightNames.Encoder, StringComparison.Ordinal)).ToList();
        using var weights = WeightSet.Load(path, specs);
        using var plain = new DinoV2Encoder(config, weights);
        using var normalisingEncoder = new DinoV2Encoder(normalising, weights);
        using var image = file.ReadTensor("in.image");
        using var normalised = Tensor.Empty(image.Shape.ToArray());
        var source = image.AsSpan<float>();
        var target = normalised.AsSpan<float>();
        var plane = (int)(image.Size(2) * image.Size(3));
        for (var k = 0; k < source.Length; k++)
        {
            var c = k / plane % 3;
            target[k] = (source[k] - normalising.EncoderImageMean![c]) / normalising.EncoderImageStd![c];
        }
        using var expected = plain.Forward(_backend, normalised);
        using var actual = normalisingEncoder.Forward(_backend, image);
        Assert.That(actual.AsSpan<float>().ToArray(), Is.EqualTo(expected.AsSpan<float>().ToArray()));
    }
}
