using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace LrmNative.Benchmarks;

/// <summary>
/// "Rate": the work of the case's <see cref="IWorkload"/> parameter divided by the mean time,
/// in its unit. Cases without such a parameter show "-".
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
    public string Legend => "The shape's work per invocation / Mean: GFLOP/s (compute kernels), GB/s of compulsory traffic (memory kernels), Mvoxels/s (marching cubes); see KernelShapes.cs";

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
        var workload = benchmarkCase.Parameters.Items.Select(parameter => parameter.Value).OfType<IWorkload>().FirstOrDefault();
        var meanNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (workload is null || meanNanoseconds is not > 0)
        {
            return "-";
        }
        return Rates.Of(workload, meanNanoseconds.Value * 1e-9).ToString("F1", CultureInfo.InvariantCulture) + " " + Rates.UnitName(workload.Unit);
    }
}
