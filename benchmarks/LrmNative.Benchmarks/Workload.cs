namespace LrmNative.Benchmarks;

/// <summary>What a rate is counted in.</summary>
public enum RateUnit
{
    /// <summary>Floating-point operations, shown as GFLOP/s.</summary>
    GigaFlops,
    /// <summary>Sampled points, shown as Mpoints/s.</summary>
    MegaPoints,
    /// <summary>Grid cells, shown as Mvoxels/s.</summary>
    MegaVoxels,
}

/// <summary>
/// The work one invocation of a benchmark does. Benchmark parameters implement it, so
/// <see cref="RateColumn"/> can turn BenchmarkDotNet's mean time into a rate without running anything.
/// </summary>
public interface IWorkload
{
    /// <summary>Operations (or points) per invocation.</summary>
    double Amount { get; }

    /// <summary>What <see cref="Amount"/> counts.</summary>
    RateUnit Unit { get; }
}
