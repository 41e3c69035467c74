using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>How the sample points are laid out.</summary>
public enum PointLayout
{
    /// <summary>Cell centres of a regular grid, x fastest: what marching-cubes extraction queries.</summary>
    Grid,
    /// <summary>Uniform in [−1, 1]³, no locality: a stand-in for rays sampled during rendering.</summary>
    Random,
}

/// <summary>Triplane sampling of <see cref="Points"/> points from planes (1, 3, H, W, C).</summary>
public sealed record TriplaneShape(PointLayout Layout, int Points, int Height, int Width, int Channels) : IWorkload, IComparable
{
    /// <summary>Report rows: the paper's 80 channels first, then grid before random (BenchmarkDotNet orders parameters through IComparable).</summary>
    public int CompareTo(object? obj) => obj is TriplaneShape other
        ? (-Channels, Layout, Points, Height, Width).CompareTo((-other.Channels, other.Layout, other.Points, other.Height, other.Width))
        : 1;

    /// <inheritdoc />
    public double Amount => Points;

    /// <inheritdoc />
    public RateUnit Unit => RateUnit.MegaPoints;

    /// <inheritdoc />
    public override string ToString() => $"{Layout} {Points} pts, {Height}x{Width}x{Channels}";
}

/// <summary>
/// <see cref="CpuBackend.TriplaneSample"/> on the paper's triplane (3 × 64 × 64 × 80, §3.2) and a
/// half-width one, for a 64³ extraction grid (262,144 points) and 1,048,576 random points.
/// </summary>
public class TriplaneBenchmarks
{
    private const int GridSide = 64;

    private CpuBackend _backend = null!;
    private Tensor _planes = null!;
    private Tensor _points = null!;
    private Tensor _output = null!;

    public static IEnumerable<TriplaneShape> Shapes =>
    [
        new(PointLayout.Grid, GridSide * GridSide * GridSide, 64, 64, 80),
        new(PointLayout.Random, 1 << 20, 64, 64, 80),
        new(PointLayout.Grid, GridSide * GridSide * GridSide, 64, 64, 40),
        new(PointLayout.Random, 1 << 20, 64, 64, 40),
    ];

    [ParamsSource(nameof(Shapes))]
    public TriplaneShape Shape { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(3);
        _backend = new CpuBackend();
        _planes = RandomData.Uniform(random, -1, 1, 1, 3, Shape.Height, Shape.Width, Shape.Channels);
        _points = Shape.Layout == PointLayout.Grid
            ? GridPoints(GridSide)
            : RandomData.Uniform(random, -1, 1, 1, Shape.Points, 3);
        _output = Tensor.Empty([1, Shape.Points, 3L * Shape.Channels]);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _output.Dispose();
        _points.Dispose();
        _planes.Dispose();
        _backend.Dispose();
    }

    [Benchmark(Description = "CpuBackend.TriplaneSample")]
    public void Sample() => _backend.TriplaneSample(_output, _planes, _points);

    /// <summary>(1, side³, 3) cell centres (2i + 1)/side − 1, x fastest, then y, then z.</summary>
    private static Tensor GridPoints(int side)
    {
        var points = Tensor.Empty([1, (long)side * side * side, 3]);
        var values = points.AsSpan<float>();
        var index = 0;
        for (var z = 0; z < side; z++)
        {
            for (var y = 0; y < side; y++)
            {
                for (var x = 0; x < side; x++)
                {
                    values[index++] = Centre(x, side);
                    values[index++] = Centre(y, side);
                    values[index++] = Centre(z, side);
                }
            }
        }
        return points;
    }

    private static float Centre(int i, int side) => (2f * i + 1f) / side - 1f;
}
