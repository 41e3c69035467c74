using System.Globalization;

namespace LrmNative.Benchmarks;

/// <summary>What a rate is counted in.</summary>
public enum RateUnit
{
    /// <summary>Floating-point operations per second, shown as GFLOP/s (compute-bound kernels).</summary>
    GigaFlops,
    /// <summary>Sampled points per second, shown as Mpoints/s.</summary>
    MegaPoints,
    /// <summary>Grid cells per second, shown as Mvoxels/s (marching cubes).</summary>
    MegaVoxels,
    /// <summary>Bytes of compulsory memory traffic per second, shown as GB/s (memory-bound kernels).</summary>
    GigabytesPerSecond,
}

/// <summary>
/// The work one invocation of a benchmark does, in <see cref="Unit"/>. Benchmark parameters implement it, so
/// <see cref="RateColumn"/> can turn BenchmarkDotNet's mean time into a rate without running anything.
/// The kernel suites' parameters are <see cref="KernelShape"/>s, which also count FLOPs and bytes for the roofline.
/// </summary>
public interface IWorkload
{
    /// <summary>Work per invocation: FLOPs, points, cells or bytes as <see cref="Unit"/> says.</summary>
    double Amount { get; }

    /// <summary>What <see cref="Amount"/> counts.</summary>
    RateUnit Unit { get; }
}

/// <summary>Rates from a workload and a time.</summary>
public static class Rates
{
    /// <summary>The rate of <paramref name="workload"/> at <paramref name="seconds"/> per invocation, in its unit (GFLOP/s, Mpoints/s, …).</summary>
    public static double Of(IWorkload workload, double seconds)
    {
        ArgumentNullException.ThrowIfNull(workload);
        if (seconds <= 0)
        {
            return double.NaN;
        }
        var perSecond = workload.Amount / seconds;
        return workload.Unit switch
        {
            RateUnit.GigaFlops or RateUnit.GigabytesPerSecond => perSecond / 1e9,
            RateUnit.MegaPoints or RateUnit.MegaVoxels => perSecond / 1e6,
            _ => double.NaN,
        };
    }

    /// <summary>Text of a rate unit as the reports print it.</summary>
    public static string UnitName(RateUnit unit) => unit switch
    {
        RateUnit.GigaFlops => "GFLOP/s",
        RateUnit.MegaPoints => "Mpoints/s",
        RateUnit.MegaVoxels => "Mvoxels/s",
        RateUnit.GigabytesPerSecond => "GB/s",
        _ => "?",
    };
}

/// <summary>
/// One benchmarked shape of one kernel family: what the suites take as their parameter, what the manifest
/// hands the PyTorch peer (<see cref="Dimensions"/>), and where FLOPs and bytes are counted, once per family.
/// Shapes come from the model configs (<see cref="LrmShapes"/>); one shape used by several configs is
/// measured once and lists them all in <see cref="Configs"/>.
/// </summary>
public abstract record KernelShape : IWorkload, IComparable
{
    /// <summary>Bytes per fp32 element.</summary>
    protected const double Float = 4;

    /// <summary>The kernel family, e.g. "attention" (one benchmark class per family).</summary>
    public abstract string Family { get; }

    /// <summary>Human name that fixes every dimension, e.g. "decoder self 3072x3072, 16x64"; unique within the family.</summary>
    public abstract string Name { get; }

    /// <summary>The configs (configs/*.json names) that run this shape, comma-separated, in catalogue order.</summary>
    public string Configs { get; init; } = "";

    /// <summary>Position in the catalogue (BenchmarkDotNet orders parameters through <see cref="IComparable"/>).</summary>
    public int Order { get; init; }

    /// <summary>Floating-point operations per invocation (a multiply-add counts 2; see each shape for what is counted).</summary>
    public abstract double Flops { get; }

    /// <summary>
    /// Compulsory memory traffic per invocation in bytes: every input read once and every output written
    /// once (fp32), no write-allocate, no re-reads. The floor a perfect kernel could reach.
    /// </summary>
    public abstract double Bytes { get; }

    /// <summary>Items per invocation for item rates (grid cells for marching cubes); 0 when unused.</summary>
    public virtual double Items => 0;

    /// <summary>The headline rate's unit: GFLOP/s by default, GB/s for memory-bound families.</summary>
    public virtual RateUnit Unit => RateUnit.GigaFlops;

    /// <inheritdoc />
    public double Amount => Unit switch
    {
        RateUnit.GigaFlops => Flops,
        RateUnit.GigabytesPerSecond => Bytes,
        _ => Items,
    };

    /// <summary>The sizes the peer needs to build the same inputs, by name (see benchmarks/peers/kernels_torch.py).</summary>
    public abstract IReadOnlyDictionary<string, long> Dimensions { get; }

    /// <summary>"family/name": the key that pairs our entry with the peer's.</summary>
    public string Key => $"{Family}/{Name}";

    /// <summary>The headline rate at a mean time of <paramref name="seconds"/>, in <see cref="Unit"/>.</summary>
    public double Rate(double seconds) => Rates.Of(this, seconds);

    /// <summary>Text of <see cref="Unit"/>.</summary>
    public string UnitText => Rates.UnitName(Unit);

    /// <inheritdoc />
    public int CompareTo(object? obj) => obj is KernelShape other ? Order.CompareTo(other.Order) : 1;

    /// <summary>The name, followed by the configs: what BenchmarkDotNet prints in its Shape column.</summary>
    public sealed override string ToString() => Configs.Length > 0 ? $"{Name} [{Configs}]" : Name;

    /// <summary>Formats an integer for shape names (invariant culture).</summary>
    protected static string Dim(long value) => value.ToString(CultureInfo.InvariantCulture);
}
