using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace LrmNative.Benchmarks;

/// <summary>
/// "Rate": the work of the case's <see cref="IWorkload"/> parameter divided by the mean time,
/// in GFLOP/s or Mpoints/s. Cases without such a parameter show "-".
/// </summary>
public sealed class RateColumn : IColumn
{
    /// <inheritdoc />
    public string Id => nameof(RateColumn);

    /// <inheritdoc />
    public string ColumnName => "Rate";

    /// <inheritdoc />
    public bool AlwaysShow => true;

    /// <inheritdoc />
    public ColumnCategory Category => ColumnCategory.Statistics;

    /// <inheritdoc />
    public int PriorityInCategory => 100;

    /// <inheritdoc />
    public bool IsNumeric => true;

    /// <inheritdoc />
    public UnitType UnitType => UnitType.Dimensionless;

    /// <inheritdoc />
    public string Legend => "Work per invocation / Mean: GFLOP/s for GEMM and attention, Mpoints/s for triplane sampling";

    /// <inheritdoc />
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    /// <inheritdoc />
    public bool IsAvailable(Summary summary) => true;

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    /// <inheritdoc />
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        ArgumentNullException.ThrowIfNull(summary);
        ArgumentNullException.ThrowIfNull(benchmarkCase);
        var workload = Workload(benchmarkCase);
        var meanNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (workload is null || meanNanoseconds is not > 0)
        {
            return "-";
        }
        var perSecond = workload.Amount / (meanNanoseconds.Value * 1e-9);
        return workload.Unit switch
        {
            RateUnit.GigaFlops => (perSecond / 1e9).ToString("F1", CultureInfo.InvariantCulture) + " GFLOP/s",
            RateUnit.MegaPoints => (perSecond / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " Mpoints/s",
            RateUnit.MegaVoxels => (perSecond / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " Mvoxels/s",
            _ => "-",
        };
    }

    private static IWorkload? Workload(BenchmarkCase benchmarkCase) =>
        benchmarkCase.Parameters.Items.Select(parameter => parameter.Value).OfType<IWorkload>().FirstOrDefault();
}
