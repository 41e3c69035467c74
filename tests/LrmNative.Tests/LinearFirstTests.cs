using LrmNative.Backends;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The NeRF's linear-first query (each plane multiplied by its block of the first layer once, then the three
/// projected planes sampled and summed: <see cref="TriplaneNerf.Project"/>, <see cref="IBackend.TriplaneSampleSum"/>)
/// against the concatenated features that training uses and PyTorch's OSGDecoder computes
/// (<see cref="TriplaneNerf.QueryRawTraining"/>), on random NeRFs of the shipped and OpenLRM widths.
/// (ModelParityTests.NerfQuery and .Renderer check the linear-first path against PyTorch's golden data too.)
/// </summary>
[TestFixture]
public sealed class LinearFirstTests
{
    private const int Height = 12, Width = 9, Points = 1300;

    private static float[] RandomValues(Random random, long count, float scale) =>
        [.. Enumerable.Range(0, (int)count).Select(_ => scale * (2 * random.NextSingle() - 1))];

    // A NeRF MLP 3C → hidden (× layers − 1) → 4 with random weights and biases.
    private static WeightSet RandomNerf(Random random, int channels, int hidden, int layers)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var specs = new List<WeightSpec>();
        var indices = LrmWeightNames.NerfLinearIndicesFor(layers);
        for (var l = 0; l < layers; l++)
        {
            long input = l == 0 ? 3 * channels : hidden, output = l == layers - 1 ? 4 : hidden;
            var name = $"{LrmWeightNames.Nerf}{indices[l]}";
            tensors[$"{name}.weight"] = Tensor.FromArray(RandomValues(random, output * input, 2f / MathF.Sqrt(input)), output, input);
            specs.Add(new WeightSpec($"{name}.weight", [output, input]));
            tensors[$"{name}.bias"] = Tensor.FromArray(RandomValues(random, output, 0.3f), output);
            specs.Add(new WeightSpec($"{name}.bias", [output]));
        }
        return WeightSet.FromTensors("random NeRF", tensors, specs);
    }

    [TestCase(16, 32, 4, 1, TestName = "LinearFirstEqualsConcatenated(default model: C 16, width 32)")]
    [TestCase(32, 64, 4, 2, TestName = "LinearFirstEqualsConcatenated(OpenLRM small: C 32, width 64, batch 2)")]
    [TestCase(80, 64, 4, 1, TestName = "LinearFirstEqualsConcatenated(OpenLRM large: C 80, width 64)")]
    [TestCase(6, 10, 2, 2, TestName = "LinearFirstEqualsConcatenated(C 6, width 10, 2 layers, batch 2)")]
    [TestCase(5, 4, 1, 1, TestName = "LinearFirstEqualsConcatenated(one layer: the sum is the output)")]
    public void LinearFirstEqualsConcatenated(int channels, int hidden, int layers, int batch)
    {
        using var backend = new CpuBackend();
        var random = new Random(channels * 100 + layers);
        using var weights = RandomNerf(random, channels, hidden, layers);
        // Small chunks: several per image, and the batch taken one image at a time.
        var nerf = new TriplaneNerf(weights, layers) { ChunkPoints = 500 };
        using var planes = Tensor.FromArray(RandomValues(random, batch * 3L * Height * Width * channels, 1f), batch, 3, Height, Width, channels);
        var coordinates = RandomValues(random, batch * 3L * Points, 1.2f); // some points outside the box read zeros
        coordinates[0] = float.NaN; // a non-finite point samples zeros too
        using var points = Tensor.FromArray(coordinates, batch, Points, 3);

        using var linearFirst = nerf.QueryRaw(backend, planes, points);
        using var features = Tensor.Empty([batch, Points, 3 * channels]);
        using var concatenated = Tensor.Empty([batch, Points, 4]);
        nerf.QueryRawTraining(backend, features, concatenated, planes, points);

        Assert.That(linearFirst.ToFloatArray(), Has.All.Matches<float>(float.IsFinite));
        Compare.Close(linearFirst, concatenated, 1e-5, "linear-first raw vs concatenated features");
    }

    [Test]
    public void ProjectedPlanesOfAnotherNerfAreRefused()
    {
        using var backend = new CpuBackend();
        var random = new Random(5);
        using var narrow = RandomNerf(random, 8, 16, 3);
        using var wide = RandomNerf(random, 8, 24, 3);
        var first = new TriplaneNerf(narrow, 3);
        var second = new TriplaneNerf(wide, 3);
        using var planes = Tensor.FromArray(RandomValues(random, 3L * Height * Width * 8, 1f), 1, 3, Height, Width, 8);
        using var projected = first.Project(backend, planes);
        Assert.That(projected.Planes.Shape.ToArray(), Is.EqualTo(new long[] { 1, 3, Height, Width, 16 }));
        using var points = Tensor.Zeros([1, 10, 3]);
        var error = Assert.Throws<LrmShapeException>(() => second.QueryRaw(backend, projected, points).Dispose());
        Assert.That(error!.Message, Does.Contain("projected planes").And.Contain("24"));
    }

    [Test]
    public void SampleSumRefusesBadArgumentsNamingThem()
    {
        using var backend = new CpuBackend();
        using var planes = Tensor.Zeros([1, 3, 4, 4, 8]);
        using var points = Tensor.Zeros([1, 5, 3]);
        using var output = Tensor.Empty([1, 5, 8]);
        using var wrongOutput = Tensor.Empty([1, 5, 24]);
        using var wrongBias = Tensor.Zeros([7]);
        Assert.That(Assert.Throws<LrmShapeException>(() => backend.TriplaneSampleSum(wrongOutput, planes, points, null, Activation.Relu))!.Message,
            Does.Contain("TriplaneSampleSum").And.Contain("'output'"));
        Assert.That(Assert.Throws<LrmShapeException>(() => backend.TriplaneSampleSum(output, planes, points, wrongBias, Activation.Relu))!.Message,
            Does.Contain("'bias'"));
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => backend.TriplaneSampleSum(output, planes, points, null, (Activation)9))!.Message,
            Does.Contain("activation"));
    }
}
