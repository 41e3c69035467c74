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

    [TestCase(7, 0, 343)]
    [TestCase(7, 40, 60)] // starts mid-row, crosses rows and a z-plane
    [TestCase(70, 4900 * 3 + 17, 5000)]
    public void GridPointsAreTheGridsCoordinates(int resolution, long first, int count)
    {
        using var backend = new CpuBackend();
        using var points = Tensor.Empty([1, count, 3]);
        backend.GridPoints(points, resolution, first);
        var p = points.AsSpan<float>();
        for (var i = 0; i < count; i++)
        {
            var k = first + i;
            int x = (int)(k % resolution), y = (int)(k / resolution % resolution), z = (int)(k / ((long)resolution * resolution));
            Assert.That(new[] { p[3 * i], p[3 * i + 1], p[3 * i + 2] },
                Is.EqualTo(new[] { DensityGrid.Coordinate(x, resolution), DensityGrid.Coordinate(y, resolution), DensityGrid.Coordinate(z, resolution) }),
                $"grid point {k} = ({x}, {y}, {z})");
        }
    }

    [Test]
    public void GridPointsRefuseBadArguments()
    {
        using var backend = new CpuBackend();
        using var points = Tensor.Empty([1, 10, 3]);
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => backend.GridPoints(points, 1, 0))!.Message, Does.Contain("resolution"));
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => backend.GridPoints(points, 2, 0))!.Message, Does.Contain("outside the 2³ grid"));
        Assert.Throws<LrmInvalidArgumentException>(() => backend.GridPoints(points, 4, -1));
        using var flat = Tensor.Empty([10, 3]);
        Assert.That(Assert.Throws<LrmShapeException>(() => backend.GridPoints(flat, 4, 0))!.Message, Does.Contain("'points'"));
    }

    [TestCase(17)]
    [TestCase(70)]
    public void BackendGridEqualsTheHostPathBitForBit(int resolution)
    {
        using var backend = new CpuBackend();
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        var random = new Random(3);
        using var planes = Tensor.FromArray(Enumerable.Range(0, 3 * 16 * 16 * 8).Select(_ => random.NextSingle() - 0.5f).ToArray(), 1, 3, 16, 16, 8);
        using var onBackend = DensityGrid.QueryDense(backend, model.Nerf, planes, resolution);
        using var projected = model.Nerf.Project(backend, planes);
        using var onHost = DensityGrid.QueryDense(DensityGrid.Nerf(backend, model.Nerf, projected), resolution);
        Assert.That(onBackend.Grid.ToFloatArray(), Is.EqualTo(onHost.Grid.ToFloatArray()).AsCollection);
        Assert.That(onBackend.PointsEvaluated, Is.EqualTo(onHost.PointsEvaluated));
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
