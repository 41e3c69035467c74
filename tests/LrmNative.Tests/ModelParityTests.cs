using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The model's modules against PyTorch (tests/golden/make_model_golden.py; its README specifies every case):
/// the same tiny OpenLRM-layout weights, outputs compared by ‖out − ref‖/‖ref‖ &lt; 1e-4 in fp32.
/// </summary>
[TestFixture]
public sealed class ModelParityTests
{
    private const double Tolerance = 1e-4;
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    private static WeightSet WeightsOf(string path, IEnumerable<WeightSpec> specs) => WeightSet.Load(path, specs);

    private static IEnumerable<WeightSpec> Prefixed(ModelConfig config, string prefix) =>
        LrmWeightNames.Expected(config).Where(spec => spec.Name.StartsWith(prefix, StringComparison.Ordinal));

    private static void AssertClose(Tensor actual, Tensor expected, string what)
    {
        Assert.That(actual.ElementCount, Is.EqualTo(expected.ElementCount), $"{what}: element count");
        var error = Compare.RelativeError(actual.AsSpan<float>(), expected.AsSpan<float>());
        Assert.That(error, Is.LessThan(Tolerance), $"{what}: ‖out−ref‖/‖ref‖");
    }

    [Test]
    public void VitBlock()
    {
        var path = Golden.ModelCasePath("vit_block");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        var prefix = LrmWeightNames.EncoderBlock(0);
        using var weights = WeightsOf(path, LrmWeightNames.EncoderBlockSpecs(prefix, config.EncoderFeatDim));
        var block = new VitBlock(weights, prefix, config.EncoderHeads);
        using var x = file.ReadTensor("in.x");
        using var expected = file.ReadTensor("out.x");
        block.Forward(_backend, x);
        AssertClose(x, expected, "vit_block x");
    }

    [Test]
    public void Encoder()
    {
        var path = Golden.ModelCasePath("encoder");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightsOf(path, Prefixed(config, LrmWeightNames.Encoder));
        using var encoder = new DinoV2Encoder(config, weights);
        using var image = file.ReadTensor("in.image");
        using var features = encoder.Forward(_backend, image);
        using var expected = file.ReadTensor("out.features");
        Assert.That(features.Shape.ToArray(), Is.EqualTo(expected.Shape.ToArray()));
        AssertClose(features, expected, "encoder features");
        using var expectedPositions = file.ReadTensor("out.pos_embed_resized");
        var grid = config.PatchGridSize;
        AssertClose(encoder.PositionTable(_backend, grid, grid), expectedPositions, "resized position table");
    }

    [Test]
    public void CameraEmbedder()
    {
        var path = Golden.ModelCasePath("camera_embedder");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightsOf(path, Prefixed(config, LrmWeightNames.CameraEmbedder));
        var embedder = new CameraEmbedder(weights);
        using var camera = file.ReadTensor("in.camera");
        Assert.That(camera.AsSpan<float>().ToArray(), Is.EqualTo(Cameras.CanonicalSource()), "canonical source camera");
        using var embedding = embedder.Forward(_backend, camera);
        using var expected = file.ReadTensor("out.embedding");
        AssertClose(embedding, expected, "camera embedding");
    }

    [TestCase("decoder_block")]
    [TestCase("decoder_block_shared")]
    public void DecoderBlock(string name)
    {
        var path = Golden.ModelCasePath(name);
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var x = file.ReadTensor("in.x");
        using var condition = file.ReadTensor("in.cond");
        using var cameraEmbedding = file.ReadTensor("in.camera_embedding");
        var prefix = LrmWeightNames.DecoderBlock(0);
        using var weights = WeightsOf(path, LrmWeightNames.DecoderBlockSpecs(prefix, config.TransformerDim, config.CameraEmbedDim, condition.Size(2)));
        using var block = new DecoderBlock(_backend, weights, prefix, config.TransformerHeads);
        using var modulation = Tensor.Empty(cameraEmbedding.Shape);
        _backend.Activate(modulation, cameraEmbedding, Activation.Silu);
        block.Forward(_backend, x, condition, modulation);
        using var expected = file.ReadTensor("out.x");
        AssertClose(x, expected, $"{name} x");
    }

    [Test]
    public void Upsampler()
    {
        var path = Golden.ModelCasePath("upsampler");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightsOf(path, Prefixed(config, LrmWeightNames.Upsampler));
        var upsampler = new TriplaneUpsampler(config, weights);
        using var tokens = file.ReadTensor("in.tokens");
        using var planes = upsampler.Forward(_backend, tokens);
        using var expected = file.ReadTensor("out.planes");
        Assert.That(planes.Shape.ToArray(), Is.EqualTo(expected.Shape.ToArray()));
        AssertClose(planes, expected, "upsampler planes");
    }

    [Test]
    public void NerfQuery()
    {
        var path = Golden.ModelCasePath("nerf_query");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightsOf(path, Prefixed(config, LrmWeightNames.Nerf));
        var nerf = new TriplaneNerf(weights);
        using var planes = file.ReadTensor("in.planes");
        using var channelsLast = TriplaneNerf.ToChannelsLast(_backend, planes);
        using var points = file.ReadTensor("in.points");
        var (sigma, rgb) = nerf.Query(_backend, channelsLast, points);
        using (sigma)
        using (rgb)
        {
            using var expectedSigma = file.ReadTensor("out.sigma");
            using var expectedRgb = file.ReadTensor("out.rgb");
            Assert.That(sigma.Shape.ToArray(), Is.EqualTo(expectedSigma.Shape.ToArray()));
            AssertClose(sigma, expectedSigma, "nerf sigma");
            AssertClose(rgb, expectedRgb, "nerf rgb");
        }
    }

    [Test]
    public void Renderer()
    {
        var path = Golden.ModelCasePath("renderer");
        using var file = SafeTensorsFile.Open(path);
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightsOf(path, Prefixed(config, LrmWeightNames.Nerf));
        var renderer = new VolumeRenderer(new TriplaneNerf(weights), config.RenderingSamplesPerRay);
        Assert.That(renderer.CoarseSamples, Is.EqualTo(file.Long("samples_coarse")));
        Assert.That(renderer.FineSamples, Is.EqualTo(file.Long("samples_fine")));
        using var planes = file.ReadTensor("in.planes");
        using var channelsLast = TriplaneNerf.ToChannelsLast(_backend, planes);
        using var camera = file.ReadTensor("in.camera");
        var size = (int)file.Long("render_size");
        using var result = renderer.Render(_backend, channelsLast, camera, size, size);
        using var expectedRgb = file.ReadTensor("out.rgb");
        using var expectedDepth = file.ReadTensor("out.depth");
        using var expectedOpacity = file.ReadTensor("out.opacity");
        Assert.That(result.Rgb.Shape.ToArray(), Is.EqualTo(expectedRgb.Shape.ToArray()));
        Assert.That(result.Depth.Shape.ToArray(), Is.EqualTo(expectedDepth.Shape.ToArray()));
        AssertClose(result.Rgb, expectedRgb, "rendered rgb");
        AssertClose(result.Depth, expectedDepth, "rendered depth");
        AssertClose(result.Opacity, expectedOpacity, "rendered opacity");
    }

    /// <summary>
    /// Batching and chunking change nothing: a batch of two views renders like each view alone, and tiny
    /// ray/point chunks (with a ray count that does not divide evenly) give the same images as one chunk.
    /// </summary>
    [Test]
    public void RendererBatchesAndChunksAgree()
    {
        using var file = SafeTensorsFile.Open(Golden.ModelCasePath("renderer"));
        var config = Golden.ModelConfigOf(file);
        using var weights = WeightsOf(file.Path, Prefixed(config, LrmWeightNames.Nerf));
        var renderer = new VolumeRenderer(new TriplaneNerf(weights), config.RenderingSamplesPerRay);
        var chunked = new VolumeRenderer(new TriplaneNerf(weights) { ChunkPoints = 100 }, config.RenderingSamplesPerRay) { ChunkRays = 7 };
        using var planes = file.ReadTensor("in.planes");
        using var channelsLast = TriplaneNerf.ToChannelsLast(_backend, planes);
        using var camera = file.ReadTensor("in.camera");
        const int height = 10, width = 13;
        using var single = renderer.Render(_backend, channelsLast, camera, height, width);
        using var small = chunked.Render(_backend, channelsLast, camera, height, width);
        AssertClose(small.Rgb, single.Rgb, "chunked rgb");
        AssertClose(small.Depth, single.Depth, "chunked depth");
        AssertClose(small.Opacity, single.Opacity, "chunked opacity");

        // Batch of two: the golden view and a view from the opposite side.
        using var planes2 = Tensor.Empty([2, .. channelsLast.Shape[1..]]);
        _backend.Copy(planes2, 0, channelsLast, 0, channelsLast.ElementCount);
        _backend.Copy(planes2, channelsLast.ElementCount, channelsLast, 0, channelsLast.ElementCount);
        var other = Cameras.Render(Cameras.LookAtOrigin(-1.2f, 1.4f, -0.5f));
        using var otherCamera = Tensor.FromArray(other, 1, 25);
        using var cameras = Tensor.FromArray([.. camera.AsSpan<float>(), .. other], 2, 25);
        using var second = renderer.Render(_backend, channelsLast, otherCamera, height, width);
        using var both = renderer.Render(_backend, planes2, cameras, height, width);
        var pixels = height * width;
        Assert.That(both.Rgb.AsSpan<float>()[..(pixels * 3)].ToArray(), Is.EqualTo(single.Rgb.AsSpan<float>().ToArray()));
        Assert.That(both.Rgb.AsSpan<float>()[(pixels * 3)..].ToArray(), Is.EqualTo(second.Rgb.AsSpan<float>().ToArray()));
        Assert.That(both.Depth.AsSpan<float>()[pixels..].ToArray(), Is.EqualTo(second.Depth.AsSpan<float>().ToArray()));
        Assert.That(second.Opacity.AsSpan<float>().ToArray(), Has.Some.GreaterThan(0.01f), "the second view sees the object");
    }

    /// <summary>The renderer's intermediates (rays, coarse/fine depths, weights) against renderer_debug.</summary>
    [Test]
    public void RendererIntermediates()
    {
        using var file = SafeTensorsFile.Open(Golden.ModelCasePath("renderer_debug"));
        using var renderCase = SafeTensorsFile.Open(Golden.ModelCasePath("renderer"));
        var config = Golden.ModelConfigOf(renderCase);
        using var weights = WeightsOf(renderCase.Path, Prefixed(config, LrmWeightNames.Nerf));
        var nerf = new TriplaneNerf(weights);
        using var planes = renderCase.ReadTensor("in.planes");
        using var channelsLast = TriplaneNerf.ToChannelsLast(_backend, planes);
        using var camera = renderCase.ReadTensor("in.camera");
        var size = (int)renderCase.Long("render_size");
        long rays = size * size, coarseCount = config.RenderingSamplesPerRay / 2;
        using var scope = new TensorScope();
        var origins = scope.Add(Tensor.Empty([1, rays, 3]));
        var directions = scope.Add(Tensor.Empty([1, rays, 3]));
        var coarse = scope.Add(Tensor.Empty([1, rays, coarseCount]));
        var range = scope.Add(Tensor.Empty([1, 2]));
        _backend.RenderRays(origins, directions, coarse, range, camera, size, size);
        AssertClose(directions, scope.Add(file.ReadTensor("dbg.ray_directions")), "ray directions");
        AssertClose(coarse, scope.Add(file.ReadTensor("dbg.depths_coarse")), "coarse depths");

        var points = scope.Add(Tensor.Empty([1, rays * coarseCount, 3]));
        _backend.RenderPoints(points, origins, directions, coarse);
        var raw = scope.Add(nerf.QueryRaw(_backend, channelsLast, points));
        var decoded = scope.Add(Tensor.Empty([1, rays * coarseCount, 4]));
        _backend.RenderDecode(decoded, raw, points);
        var coarseWeights = scope.Add(Tensor.Empty([1, rays, coarseCount - 1]));
        _backend.RenderMarch(null, null, null, coarseWeights, coarse, decoded, null, null, [1f, 1f, 1f], null);
        AssertClose(coarseWeights, scope.Add(file.ReadTensor("dbg.weights_coarse")), "coarse weights");
        var fine = scope.Add(Tensor.Empty([1, rays, config.RenderingSamplesPerRay / 2]));
        _backend.RenderImportance(fine, coarse, coarseWeights);
        AssertClose(fine, scope.Add(file.ReadTensor("dbg.depths_fine")), "importance depths");
    }

    [Test]
    public void FullModel()
    {
        var path = Golden.ModelCasePath("full");
        using var file = SafeTensorsFile.Open(path);
        using var model = LrmModel.Load(Golden.ModelConfigOf(file), path);
        using var image = file.ReadTensor("in.image");
        using var camera = file.ReadTensor("in.camera");
        using var outputs = model.Forward(_backend, image, camera);
        using var expectedFeatures = file.ReadTensor("out.features");
        using var expectedTokens = file.ReadTensor("out.tokens");
        using var expectedPlanes = file.ReadTensor("out.planes");
        Assert.That(outputs.Planes.Shape.ToArray(), Is.EqualTo(expectedPlanes.Shape.ToArray()));
        AssertClose(outputs.Features, expectedFeatures, "full features");
        AssertClose(outputs.Tokens, expectedTokens, "full tokens");
        AssertClose(outputs.Planes, expectedPlanes, "full planes");
    }

    [Test]
    public void TinyCheckpointFolderLoadsAndMatchesTheFullCase()
    {
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        Assert.That(model.IgnoredTensors, Is.EqualTo(new[] { "encoder.model.mask_token" }));
        Assert.That(model.ParameterCount, Is.EqualTo(model.Config.ParameterCount));
        using var file = SafeTensorsFile.Open(Golden.ModelCasePath("full"));
        using var image = file.ReadTensor("in.image");
        using var camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
        using var planes = model.ForwardPlanes(_backend, image, camera);
        using var expected = file.ReadTensor("out.planes");
        AssertClose(planes, expected, "tiny folder planes");
    }

    [Test]
    public void FullForwardIsBitwiseDeterministic()
    {
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        using var file = SafeTensorsFile.Open(Golden.ModelCasePath("full"));
        using var image = file.ReadTensor("in.image");
        using var camera = file.ReadTensor("in.camera");
        using var first = model.ForwardPlanes(_backend, image, camera);
        using var second = model.ForwardPlanes(_backend, image, camera);
        var a = first.AsSpan<float>();
        var b = second.AsSpan<float>();
        Assert.That(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b)), Is.True,
            "two forwards of the same input must give bit-identical planes");
    }
}
