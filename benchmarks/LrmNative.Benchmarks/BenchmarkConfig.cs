using BenchmarkDotNet.Configs;
using Perfolizer.Mathematics.OutlierDetection;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using Perfolizer.Horology;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace LrmNative.Benchmarks;

/// <summary>
/// The jobs. In-process: nothing is rebuilt, and the native library next to this assembly is the one measured.
/// <list type="bullet">
/// <item>short (default): 1 launch, 2 warm-ups, 5 measured iterations of at least 100 ms, no unrolling, so the
/// whole kernel suite runs in minutes on two cores;</item>
/// <item>long (<c>--long</c>): 5 warm-ups, 20 iterations of at least 250 ms, for numbers to publish.</item>
/// </list>
/// Every measured iteration is kept (no outlier removal): the PyTorch peer averages all of its iterations, and a ratio of a
/// mean without the slow iterations to a mean with them would flatter us on a busy machine. BenchmarkDotNet's default drops
/// upper outliers; the committed runs before this setting did (their <c>samples</c> below the iteration count show where).
/// </summary>
internal static class BenchmarkConfig
{
    public static IConfig Create(bool longJob = false)
    {
        var job = (longJob
                ? Job.Default.WithWarmupCount(5).WithIterationCount(20).WithIterationTime(TimeInterval.FromMilliseconds(250)).WithId("Long")
                : Job.Default.WithWarmupCount(2).WithIterationCount(5).WithIterationTime(TimeInterval.FromMilliseconds(100)).WithId("Short"))
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithUnrollFactor(1)
            .WithOutlierMode(OutlierMode.DontRemove);
        var defaults = DefaultConfig.Instance;
        return ManualConfig.CreateMinimumViable()
            .AddJob(job)
            .AddColumn(new RateColumn())
            .AddExporter(MarkdownExporter.GitHub, JsonExporter.Brief)
            .AddAnalyser([.. defaults.GetAnalysers()])
            .AddValidator([.. defaults.GetValidators()])
            // Shapes such as "decoder MLP fc1 3072x1024 * 1024x4096 [openlrm-large,lrm-base-paper]" must not be cut.
            .WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(90));
    }

    /// <summary>Job name as the results record it.</summary>
    public static string JobName(bool longJob) => longJob ? "long" : "short";
}
