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

    // The vectorised writer at every vector width this machine has and several thread counts: row lengths 3R that are
    // and are not whole vectors, slabs that start and end mid-row, and slabs large enough to be split over threads. Each
    // point must be bitwise DensityGrid.Coordinate's, and nothing outside the slab's floats may be written.
    [TestCase(7, 40, 60)]
    [TestCase(16, 0, 16 * 16 * 16)]     // 3R = 48: three whole 16-float vectors, six 8-float ones
    [TestCase(70, 4900 * 3 + 17, 5000)] // 3R = 210: vector tails of 2 and 2 floats
    [TestCase(100, 100 * 100 * 37 + 55, 70_000)] // above GridPointsCpu.ParallelPoints, crossing z-planes
    [TestCase(384, 192 * 384 * 384, 384 * 384)]  // the benchmark's 384³ slab: one whole plane
    [TestCase(257, 257 * 257 * 3 - 1, 257 * 257 + 2)] // odd 3R = 771; starts on the last point of a plane
    public void GridPointsAtEveryVectorWidthAndThreadCount(int resolution, long first, int count)
    {
        var expected = new float[3 * count];
        for (var i = 0; i < count; i++)
        {
            var k = first + i;
            expected[3 * i] = DensityGrid.Coordinate((int)(k % resolution), resolution);
            expected[3 * i + 1] = DensityGrid.Coordinate((int)(k / resolution % resolution), resolution);
            expected[3 * i + 2] = DensityGrid.Coordinate((int)(k / ((long)resolution * resolution)), resolution);
        }
        const int guard = 37;
        foreach (var width in new[] { 0, 8, 16 }.Where(w => w <= GridPointsCpu.HardwareVectorFloats))
        {
            foreach (var threads in new[] { 1, 2, 3 })
            {
                var buffer = new float[3 * count + 2 * guard];
                Array.Fill(buffer, float.NaN);
                GridPointsCpu.Write(buffer.AsSpan(guard, 3 * count), resolution, first, threads, width);
                var mismatch = Enumerable.Range(0, 3 * count).FirstOrDefault(i => BitConverter.SingleToInt32Bits(buffer[guard + i]) != BitConverter.SingleToInt32Bits(expected[i]), -1);
                Assert.That(mismatch, Is.EqualTo(-1), $"{width}-float vectors, {threads} threads: float {mismatch} of point {first + mismatch / 3}");
                Assert.That(buffer.Take(guard).Concat(buffer.Skip(guard + 3 * count)).All(float.IsNaN), Is.True,
                    $"{width}-float vectors, {threads} threads: a write outside the slab");
            }
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
