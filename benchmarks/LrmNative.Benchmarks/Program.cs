using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Running;
using LrmNative;
using LrmNative.Benchmarks;
using LrmNative.Benchmarks.Results;

[assembly: DisableRuntimeMarshalling]

// Modes (benchmarks/README.md; benchmarks/run.sh chains them):
//   --manifest FILE           the shapes as JSON, for the peer script
//   --json FILE|auto [...]    run the kernel suites and write results JSON (auto: <results>/<machine-id>.json);
//                             --peers FILE (repeatable) joins peer results, --long the long job, --preliminary NOTE
//                             marks a disturbed run, --peak-gflops/--peak-gbps give the roofline instead of measuring
//   --report DIR              SUMMARY.md and SVG charts from the results JSON in DIR
//   anything else            plain BenchmarkDotNet (e.g. --filter '*Attention*', --list flat)
var options = BenchOptions.Parse(args);
try
{
    if (options.Manifest is { } manifest)
    {
        Manifest.Write(manifest, LrmShapes.All);
        Console.WriteLine($"wrote {LrmShapes.All.Count} shapes to {manifest}");
        return 0;
    }
    if (options.Report is { } reportDirectory)
    {
        foreach (var path in ReportWriter.WriteDirectory(reportDirectory))
        {
            Console.WriteLine($"wrote {path}");
        }
        return 0;
    }
    PrintEngine();
    var config = BenchmarkConfig.Create(options.LongJob);
    if (options.Json is null)
    {
        BenchmarkSwitcher.FromAssembly(typeof(RateColumn).Assembly).Run(options.Rest, config);
        return 0;
    }
    var start = DateTimeOffset.UtcNow;
    var threads = EngineInfo.Query().Threads;
    // Peers are read (and their thread count checked) before minutes of measuring, not after.
    var peerResults = options.Peers.Select(BenchmarkResults.Load).ToList();
    foreach (var (peers, path) in peerResults.Zip(options.Peers))
    {
        if (peers.Machine.Threads > 0 && peers.Machine.Threads != threads)
        {
            throw new LrmInvalidArgumentException($"{path}: the peer ran on {peers.Machine.Threads} threads and ours would run on {threads}; "
                + $"set OMP_NUM_THREADS={peers.Machine.Threads} or rerun the peer with --threads {threads} (benchmarks/run.sh --threads N sets both)");
        }
    }
    // The roofline is measured before and again after the suites and the better of the two kept: a disturbance during
    // one measurement (a busy neighbour on a shared machine) would otherwise put kernels above "100 %" of it.
    var peak = MeasurePeak(options, threads, "before the suites");
    var rest = options.Rest.Any(arg => arg is "--filter" or "-f" or "--anyCategories" or "--allCategories") ? options.Rest : [.. options.Rest, "--filter", "*"];
    var summaries = BenchmarkSwitcher.FromTypes(KernelSuites.Types).Run(rest, config).ToList();
    var after = MeasurePeak(options, threads, "after the suites");
    peak = new PeakInfo
    {
        Gflops = Math.Max(peak.Gflops, after.Gflops),
        GflopsSource = options.PeakGflops is null ? $"{peak.GflopsSource}, before and after the suites, the better kept" : peak.GflopsSource,
        Gbps = Math.Max(peak.Gbps, after.Gbps),
        GbpsSource = options.PeakGbps is null ? $"{peak.GbpsSource}, before and after the suites, the better kept" : peak.GbpsSource,
    };
    var entries = SummaryConverter.Entries(summaries);
    var machine = MachineProbe.Collect(start, peak, includeGpu: entries.Any(entry => entry.Backend != "cpu"));
    if (options.MachineId is { } id)
    {
        machine = machine with { Id = id };
    }
    var results = new BenchmarkResults
    {
        Machine = machine,
        Run = new RunInfo
        {
            Tool = "LrmNative.Benchmarks (BenchmarkDotNet 0.14, in-process)",
            Job = BenchmarkConfig.JobName(options.LongJob),
            Preliminary = options.Preliminary is not null,
            Note = options.Preliminary is { Length: > 0 } note ? note : null,
            Command = options.Command ?? "benchmarks/run.sh",
        },
        Entries = entries,
    };
    foreach (var peers in peerResults)
    {
        results = results.WithPeers(peers);
    }
    results = results.WithRoofline();
    var output = options.Json == "auto" ? Path.Combine(options.Results, machine.Id + ".json") : options.Json;
    results.Save(output);
    Console.WriteLine($"wrote {entries.Count} entries to {output}");
    return 0;

    static PeakInfo MeasurePeak(BenchOptions options, int threads, string when)
    {
        (double gflops, string gflopsSource) = options.PeakGflops is { } given ? (given, "given on the command line (--peak-gflops)") : PeakMeasurement.Flops(threads);
        (double gbps, string gbpsSource) = options.PeakGbps is { } givenBandwidth ? (givenBandwidth, "given on the command line (--peak-gbps)") : PeakMeasurement.Bandwidth(threads);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"roofline {when}: {gflops:F1} GFLOP/s ({gflopsSource}); {gbps:F1} GB/s ({gbpsSource})"));
        return new PeakInfo { Gflops = gflops, GflopsSource = gflopsSource, Gbps = gbps, GbpsSource = gbpsSource };
    }
}
catch (LrmException error)
{
    Console.Error.WriteLine($"error: {error.Message}");
    return 2;
}

// Names what is being measured before BenchmarkDotNet prints its own host summary.
static void PrintEngine()
{
    var info = EngineInfo.Query();
    Console.WriteLine($"liblrm_native {info.NativeVersion} ({info.NativeLibraryPath})");
    Console.WriteLine($"  build:   {info.NativeBuild}");
    Console.WriteLine($"  threads: {info.Threads}");
    Console.WriteLine($"  BLAS:    {info.Blas}");
    unsafe
    {
        Console.WriteLine($"OpenBLAS: kernels for {Marshal.PtrToStringUTF8((nint)OpenBlasMethods.openblas_get_corename())}, " +
            $"{OpenBlasMethods.openblas_get_num_procs()} processors, {OpenBlasMethods.openblas_get_num_threads()} thread(s) as the engine set it");
    }
}

namespace LrmNative.Benchmarks
{
    /// <summary>The kernel suites: every concrete <see cref="KernelBenchmarks{TShape}"/>.</summary>
    internal static class KernelSuites
    {
        public static Type[] Types { get; } = [.. typeof(KernelSuites).Assembly.GetTypes()
            .Where(type => !type.IsAbstract && IsKernelSuite(type))
            .OrderBy(type => type.Name, StringComparer.Ordinal)];

        private static bool IsKernelSuite(Type? type)
        {
            for (; type is not null; type = type.BaseType)
            {
                if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(KernelBenchmarks<>))
                {
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>The options this program reads itself; the rest go to BenchmarkDotNet.</summary>
    internal sealed record BenchOptions
    {
        public string? Manifest { get; init; }
        public string? Report { get; init; }
        public string? Json { get; init; }
        public string Results { get; init; } = Path.Combine("benchmarks", "results");
        public IReadOnlyList<string> Peers { get; init; } = [];
        public bool LongJob { get; init; }
        public string? Preliminary { get; init; }
        public double? PeakGflops { get; init; }
        public double? PeakGbps { get; init; }
        public string? MachineId { get; init; }
        public string? Command { get; init; }
        public string[] Rest { get; init; } = [];

        public static BenchOptions Parse(string[] args)
        {
            var options = new BenchOptions();
            var rest = new List<string>();
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new LrmInvalidArgumentException($"{args[i]} needs a value");
                double Number()
                {
                    var name = args[i];
                    var text = Value();
                    return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && number > 0
                        ? number
                        : throw new LrmInvalidArgumentException($"{name} must be a positive number, got '{text}'");
                }
                options = args[i] switch
                {
                    "--manifest" => options with { Manifest = Value() },
                    "--report" => options with { Report = Value() },
                    "--json" => options with { Json = Value() },
                    "--results" => options with { Results = Value() },
                    "--peers" => options with { Peers = [.. options.Peers, Value()] },
                    "--long" => options with { LongJob = true },
                    "--preliminary" => options with { Preliminary = Value() },
                    "--peak-gflops" => options with { PeakGflops = Number() },
                    "--peak-gbps" => options with { PeakGbps = Number() },
                    "--machine-id" => options with { MachineId = Value() },
                    "--command" => options with { Command = Value() },
                    _ => Keep(options, rest, args[i]),
                };
            }
            return options with { Rest = [.. rest] };
        }

        private static BenchOptions Keep(BenchOptions options, List<string> rest, string arg)
        {
            rest.Add(arg);
            return options;
        }
    }
}
