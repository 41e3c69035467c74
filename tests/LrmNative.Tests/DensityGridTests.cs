using LrmNative.Backends;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>The dense grid query equals the NeRF queried point by point at the grid's coordinates.</summary>
[TestFixture]
public sealed class DensityGridTests
{
    [TestCase(2)]
    [TestCase(17)]
    [TestCase(70)] // several slabs: 70² points per z-plane, slabs of ChunkPoints / 70² planes
    public void GridMatchesPointQueries(int resolution)
    {
        using var backend = new CpuBackend();
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        var size = model.Config.EncoderImageSize;
        var random = new Random(resolution);
        using var image = Tensor.FromArray(Enumerable.Range(0, 3 * size * size).Select(_ => random.NextSingle()).ToArray(), 1, 3, size, size);
        using var camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
        using var planes = model.ForwardPlanes(backend, image, camera);
        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);
        var fractions = new List<double>();
        using var grid = DensityGrid.Query(backend, model.Nerf, channelsLast, resolution, fractions.Add);
        Assert.That(grid.Shape.ToArray(), Is.EqualTo(new long[] { resolution, resolution, resolution }));
        Assert.That(fractions[^1], Is.EqualTo(1.0));

        // Sample grid indices, including the corners, and query those points directly.
        var indices = new List<(int X, int Y, int Z)> { (0, 0, 0), (resolution - 1, resolution - 1, resolution - 1), (resolution - 1, 0, resolution / 2) };
        for (var i = 0; i < 40; i++)
        {
            indices.Add((random.Next(resolution), random.Next(resolution), random.Next(resolution)));
        }
        var coordinates = indices.SelectMany(t => new[] { DensityGrid.Coordinate(t.X, resolution), DensityGrid.Coordinate(t.Y, resolution), DensityGrid.Coordinate(t.Z, resolution) }).ToArray();
        Assert.That(coordinates[0], Is.EqualTo(-1f));
        Assert.That(coordinates[3], Is.EqualTo(1f));
        using var points = Tensor.FromArray(coordinates, 1, indices.Count, 3);
        var (sigma, rgb) = model.Nerf.Query(backend, channelsLast, points);
        using (sigma)
        using (rgb)
        {
            var values = grid.AsSpan<float>();
            for (var i = 0; i < indices.Count; i++)
            {
                var (x, y, z) = indices[i];
                Assert.That(values[(z * resolution + y) * resolution + x], Is.EqualTo(sigma.AsSpan<float>()[i]), $"grid ({x}, {y}, {z})");
            }
        }
    }

    [Test]
    public void ResolutionOutOfRangeIsRejected()
    {
        using var backend = new CpuBackend();
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        using var planes = Tensor.Zeros([1, 3, 16, 16, 8]);
        Assert.Throws<LrmInvalidArgumentException>(() => DensityGrid.Query(backend, model.Nerf, planes, 1).Dispose());
    }
}
