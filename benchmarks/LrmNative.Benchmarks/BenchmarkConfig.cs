using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace LrmNative.Benchmarks;

/// <summary>
/// One short job for every suite: the ops take milliseconds to a second, and the baseline
/// machine has two cores, so 2 warm-ups and 10 measured iterations in a single launch keep
/// the whole suite to a few minutes. In-process: nothing is rebuilt, and the native library
/// next to this assembly is the one measured.
/// </summary>
internal static class BenchmarkConfig
{
    public static IConfig Create()
    {
        var job = Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(2)
            .WithIterationCount(10)
            .WithId("Short");
        var defaults = DefaultConfig.Instance;
        return ManualConfig.CreateMinimumViable()
            .AddJob(job)
            .AddColumn(new RateColumn())
            .AddExporter(MarkdownExporter.GitHub, JsonExporter.Brief)
            .AddAnalyser([.. defaults.GetAnalysers()])
            .AddValidator([.. defaults.GetValidators()])
            // Shapes such as "Random 1048576 pts, 64x64x80" must not be cut to 20 characters.
            .WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));
    }
}
