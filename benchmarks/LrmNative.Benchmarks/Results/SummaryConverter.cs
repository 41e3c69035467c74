using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;

namespace LrmNative.Benchmarks.Results;

/// <summary>Turns BenchmarkDotNet's summaries of the kernel suites into result entries.</summary>
public static class SummaryConverter
{
    /// <summary>One entry per case whose parameter is a <see cref="KernelShape"/>, in catalogue order; cases that failed are listed as skipped.</summary>
    public static IReadOnlyList<ResultEntry> Entries(IEnumerable<Summary> summaries)
    {
        ArgumentNullException.ThrowIfNull(summaries);
        var entries = new List<(int Order, ResultEntry Entry)>();
        foreach (var summary in summaries)
        {
            foreach (var benchmarkCase in summary.BenchmarksCases)
            {
                var shape = benchmarkCase.Parameters.Items.Select(item => item.Value).OfType<KernelShape>().FirstOrDefault();
                if (shape is null)
                {
                    continue;
                }
                var target = benchmarkCase.Parameters.Items.FirstOrDefault(item => item.Name == "Target")?.Value as string ?? "cpu";
                var report = summary[benchmarkCase];
                var statistics = report?.ResultStatistics;
                var entry = new ResultEntry
                {
                    Family = shape.Family,
                    Shape = shape.Name,
                    Config = shape.Configs,
                    Backend = target,
                    Flops = shape.Flops,
                    Bytes = shape.Bytes,
                    RateUnit = shape.UnitText,
                };
                if (report is null || statistics is null || statistics.N == 0)
                {
                    entries.Add((shape.Order, entry with { Skipped = "BenchmarkDotNet reported no result (see its log)" }));
                    continue;
                }
                var mean = statistics.Mean * 1e-9;
                var operations = (int)Math.Min(int.MaxValue, report.AllMeasurements
                    .Where(m => m.IterationMode == IterationMode.Workload && m.IterationStage == IterationStage.Actual)
                    .Sum(m => m.Operations));
                var device = DeviceTimings.Last(DeviceTimings.Key(shape.Key, target), operations);
                entries.Add((shape.Order, entry with
                {
                    TimeMeanS = mean,
                    TimeStddevS = statistics.StandardDeviation * 1e-9,
                    Samples = statistics.N,
                    DeviceTimeMeanS = device?.Average(),
                    Rate = shape.Rate(device?.Average() ?? mean),
                }));
            }
        }
        // Catalogue order (family by family, configs smallest first), not BenchmarkDotNet's suite order.
        return [.. entries.OrderBy(item => item.Order).ThenBy(item => item.Entry.Backend, StringComparer.Ordinal).Select(item => item.Entry)];
    }
}
