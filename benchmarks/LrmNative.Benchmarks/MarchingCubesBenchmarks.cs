using BenchmarkDotNet.Attributes;

namespace LrmNative.Benchmarks;

/// <summary>
/// Marching cubes (<see cref="Backends.IBackend.MarchingCubes"/>: classify, count, emit with shared vertices) at 256³ and the
/// paper's 384³. The field is a sphere with a sinusoidal ripple filling [−1, 1]³, so the surface crosses many cells and every
/// case class occurs; the rate counts all cells. The mesh the op allocates is freed outside the measured region.
/// Peer: scikit-image's measure.marching_cubes (Lewiner), single-threaded, on a field of the same formula.
/// </summary>
public class MarchingCubesBenchmarks : KernelBenchmarks<MarchingCubesShape>
{
    private static readonly float[] Box = [-1f, -1f, -1f, 1f, 1f, 1f];

    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) => [RippledSphere(Shape.Resolution, 0.6f + 0.02f * random.NextSingle())];

    [Benchmark(Description = "MarchingCubes")]
    public long Extract()
    {
        var set = NextSet();
        Tensor vertices, triangles;
        using (Device.Measure())
        {
            (vertices, triangles) = Device.Backend.MarchingCubes(set[0], 0f, Box);
        }
        using (vertices)
        using (triangles)
        {
            return triangles.Size(0);
        }
    }

    /// <summary>
    /// (n, n, n) field, [z][y][x]: radius − |p| + 0.08·sin 9x·sin 9y·sin 9z over [−1, 1]³ (positive inside). The peer
    /// builds the same field (benchmarks/peers/kernels_torch.py).
    /// </summary>
    internal static Tensor RippledSphere(int n, float radius)
    {
        var field = Tensor.Empty([n, n, n]);
        var values = field.AsSpan<float>();
        var sines = new float[n];
        var coordinates = new float[n];
        for (var i = 0; i < n; i++)
        {
            coordinates[i] = -1 + 2f * i / (n - 1);
            sines[i] = MathF.Sin(9 * coordinates[i]);
        }
        for (var z = 0; z < n; z++)
        {
            for (var y = 0; y < n; y++)
            {
                for (var x = 0; x < n; x++)
                {
                    float fx = coordinates[x], fy = coordinates[y], fz = coordinates[z];
                    values[(z * n + y) * n + x] = radius + 0.08f * sines[x] * sines[y] * sines[z] - MathF.Sqrt(fx * fx + fy * fy + fz * fz);
                }
            }
        }
        return field;
    }
}

/// <summary>
/// <see cref="Backends.IBackend.GridPoints"/>: one slab of a dense mesh grid's points as DensityGrid makes them before each
/// NeRF query (256³ and 384³). Peer: OpenLRM's way, torch.meshgrid of three linspace axes stacked to (N, 3).
/// </summary>
public class GridPointsBenchmarks : KernelBenchmarks<GridPointsShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) => [Tensor.Empty([1, Shape.Points, 3])];

    [Benchmark(Description = "GridPoints")]
    public void GridPoints()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.GridPoints(set[0], Shape.Resolution, Shape.First);
        }
    }
}
