using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>A cubic density grid of <see cref="Resolution"/>³ points with a wavy closed surface.</summary>
public sealed record MarchingCubesShape(int Resolution) : IWorkload, IComparable
{
    /// <inheritdoc />
    public int CompareTo(object? obj) => obj is MarchingCubesShape other ? Resolution.CompareTo(other.Resolution) : 1;

    /// <inheritdoc />
    public double Amount => Math.Pow(Resolution - 1, 3);

    /// <inheritdoc />
    public RateUnit Unit => RateUnit.MegaVoxels;

    /// <inheritdoc />
    public override string ToString() => $"{Resolution}^3";
}

/// <summary>
/// <see cref="CpuBackend.MarchingCubes"/> (classify, count, emit with shared vertices) at the mesh
/// resolutions of issue 4: 128³, 256³ and the paper's 384³. The field is a sphere with a sinusoidal
/// ripple, so the surface covers many cells and every case class occurs; the rate counts all cells.
/// </summary>
public class MarchingCubesBenchmarks
{
    private CpuBackend _backend = null!;
    private Tensor _field = null!;

    public static IEnumerable<MarchingCubesShape> Shapes => [new(128), new(256), new(384)];

    [ParamsSource(nameof(Shapes))]
    public MarchingCubesShape Shape { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var n = Shape.Resolution;
        _field = Tensor.Empty([n, n, n]);
        var values = _field.AsSpan<float>();
        for (var z = 0; z < n; z++)
        {
            for (var y = 0; y < n; y++)
            {
                for (var x = 0; x < n; x++)
                {
                    float fx = -1 + 2f * x / (n - 1), fy = -1 + 2f * y / (n - 1), fz = -1 + 2f * z / (n - 1);
                    var r = MathF.Sqrt(fx * fx + fy * fy + fz * fz);
                    values[(z * n + y) * n + x] = 0.6f + 0.08f * MathF.Sin(9 * fx) * MathF.Sin(9 * fy) * MathF.Sin(9 * fz) - r;
                }
            }
        }
    }

    [Benchmark(Description = "CpuBackend.MarchingCubes")]
    public long Extract()
    {
        var (vertices, triangles) = _backend.MarchingCubes(_field, 0f, [-1f, -1f, -1f, 1f, 1f, 1f]);
        using (vertices)
        using (triangles)
        {
            return triangles.Size(0);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _field.Dispose();
        _backend.Dispose();
    }
}
