using BenchmarkDotNet.Attributes;
using LrmNative.Backends;
using LrmNative.Model;

namespace LrmNative.Benchmarks;

/// <summary>A mesh grid of <see cref="Resolution"/>³ points; the rate counts all of them, whichever way they are evaluated.</summary>
public sealed record GridQueryShape(int Resolution) : IWorkload, IComparable
{
    /// <inheritdoc />
    public int CompareTo(object? obj) => obj is GridQueryShape other ? Resolution.CompareTo(other.Resolution) : 1;

    /// <inheritdoc />
    public double Amount => Math.Pow(Resolution, 3);

    /// <inheritdoc />
    public RateUnit Unit => RateUnit.MegaPoints;

    /// <inheritdoc />
    public override string ToString() => $"{Resolution}^3";
}

/// <summary>
/// The mesh grid query of issue 4, dense vs coarse-to-fine, on OpenLRM small's NeRF (triplane 3 × 64² × 32, MLP
/// 96 → 64 → 64 → 64 → 4). Random weights have no surface, so the NeRF weights and triplane are
/// <see cref="AnalyticTriplane"/>'s: a rippled sphere of radius 0.6 at the threshold 3.0 evaluated through the model's
/// own NeRF code, so each query costs what a trained model's does and the surface is a realistic share of the volume.
/// The rate is grid points per second (R³ / time) for both, so coarse-to-fine's rate is the dense-equivalent rate.
/// </summary>
[WarmupCount(1)]
[IterationCount(3)]
[InvocationCount(1)]
public class GridQueryBenchmarks
{
    private const float Level = 3f;
    private CpuBackend _backend = null!;
    private LrmModel _model = null!;
    private Tensor _planes = null!;
    private ProjectedTriplane _projected = null!;
    private DensityFunction _density = null!;

    public static IEnumerable<GridQueryShape> Shapes => [new(128), new(256), new(384)];

    [ParamsSource(nameof(Shapes))]
    public GridQueryShape Shape { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var json = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "configs", "openlrm-small.json"));
        var config = ModelConfig.Parse(json, "openlrm-small");
        _model = LrmModel.CreateRandom(config, seed: 1, AnalyticTriplane.NerfWeights(config, Level));
        using var planes = AnalyticTriplane.Planes(config, ripple: 0.08f);
        _planes = TriplaneNerf.ToChannelsLast(_backend, planes);
        _projected = _model.Nerf.Project(_backend, _planes);
        _density = DensityGrid.Nerf(_backend, _model.Nerf, _projected);
    }

    [Benchmark(Baseline = true, Description = "dense")]
    public long Dense()
    {
        // As reconstruct does it: planes projected once (linear first), points made and densities kept where the backend computes.
        using var grid = DensityGrid.QueryDense(_backend, _model.Nerf, _projected, Shape.Resolution);
        return grid.PointsEvaluated;
    }

    [Benchmark(Description = "coarse-to-fine")]
    public long CoarseToFine()
    {
        using var grid = DensityGrid.QueryCoarseToFine(_density, Shape.Resolution, Level);
        return grid.PointsEvaluated;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _projected.Dispose();
        _planes.Dispose();
        _model.Dispose();
        _backend.Dispose();
    }
}
