using System.Globalization;

namespace LrmNative.Benchmarks;

/// <summary>What a kernel's headline rate is counted in.</summary>
public enum RateUnit
{
    /// <summary>Floating-point operations per second, shown as GFLOP/s (compute-bound kernels).</summary>
    GigaFlops,
    /// <summary>Bytes of compulsory memory traffic per second, shown as GB/s (memory-bound kernels).</summary>
    GigabytesPerSecond,
    /// <summary>Grid cells per second, shown as Mvoxels/s (marching cubes).</summary>
    MegaVoxels,
}

/// <summary>
/// The work one invocation of a benchmark does. Benchmark parameters implement it, so
/// <see cref="RateColumn"/> and the JSON results turn a mean time into rates and a roofline
/// fraction without running anything.
/// </summary>
public interface IWorkload
{
    /// <summary>Floating-point operations per invocation (a multiply-add counts 2; exp, divisions and compares count 1 where counted at all; see each shape).</summary>
    double Flops { get; }

    /// <summary>
    /// Compulsory memory traffic per invocation in bytes: every input read once and every output written
    /// once (fp32), no write-allocate, no re-reads. The floor a perfect kernel could reach.
    /// </summary>
    double Bytes { get; }

    /// <summary>Items per invocation for item rates (grid cells for marching cubes); 0 when unused.</summary>
    double Items { get; }

    /// <summary>What the headline rate counts.</summary>
    RateUnit Unit { get; }
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

    /// <inheritdoc />
    public abstract double Flops { get; }

    /// <inheritdoc />
    public abstract double Bytes { get; }

    /// <inheritdoc />
    public virtual double Items => 0;

    /// <inheritdoc />
    public virtual RateUnit Unit => RateUnit.GigaFlops;

    /// <summary>The sizes the peer needs to build the same inputs, by name (see benchmarks/peers/kernels_torch.py).</summary>
    public abstract IReadOnlyDictionary<string, long> Dimensions { get; }

    /// <summary>"family/name": the key that pairs our entry with the peer's.</summary>
    public string Key => $"{Family}/{Name}";

    /// <summary>The headline rate at a mean time of <paramref name="seconds"/>, in <see cref="Unit"/>.</summary>
    public double Rate(double seconds) => seconds > 0 ? Unit switch
    {
        RateUnit.GigaFlops => Flops / seconds / 1e9,
        RateUnit.GigabytesPerSecond => Bytes / seconds / 1e9,
        RateUnit.MegaVoxels => Items / seconds / 1e6,
        _ => double.NaN,
    } : double.NaN;

    /// <summary>Text of <see cref="Unit"/>.</summary>
    public string UnitText => UnitName(Unit);

    /// <summary>Text of a rate unit as the reports print it.</summary>
    public static string UnitName(RateUnit unit) => unit switch
    {
        RateUnit.GigaFlops => "GFLOP/s",
        RateUnit.GigabytesPerSecond => "GB/s",
        RateUnit.MegaVoxels => "Mvoxels/s",
        _ => "?",
    };

    /// <inheritdoc />
    public int CompareTo(object? obj) => obj is KernelShape other ? Order.CompareTo(other.Order) : 1;

    /// <summary>The name, followed by the configs: what BenchmarkDotNet prints in its Shape column.</summary>
    public sealed override string ToString() => Configs.Length > 0 ? $"{Name} [{Configs}]" : Name;

    /// <summary>Formats an integer for shape names (invariant culture).</summary>
    protected static string Dim(long value) => value.ToString(CultureInfo.InvariantCulture);
}
