using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace LrmNative.Benchmarks;

/// <summary>
/// "Rate": the work of the case's <see cref="KernelShape"/> parameter divided by the mean time,
/// in the shape's unit. Cases without such a parameter show "-".
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
        var shape = benchmarkCase.Parameters.Items.Select(parameter => parameter.Value).OfType<KernelShape>().FirstOrDefault();
        var meanNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (shape is null || meanNanoseconds is not > 0)
        {
            return "-";
        }
        return shape.Rate(meanNanoseconds.Value * 1e-9).ToString("F1", CultureInfo.InvariantCulture) + " " + shape.UnitText;
    }
}
