using System.Text.Json;
using System.Text.Json.Serialization;
using LrmNative.IO;

namespace LrmNative.Benchmarks.Results;

/// <summary>
/// One benchmark run on one machine: benchmarks/results/&lt;machine-id&gt;.json. The peer script
/// (benchmarks/peers/kernels_torch.py) prints the same schema. Documented in docs/benchmarks.md.
/// </summary>
public sealed record BenchmarkResults
{
    /// <summary>The schema name and version written in every file.</summary>
    public const string SchemaName = "lrm-bench/1";

    /// <summary>Always <see cref="SchemaName"/>.</summary>
    public string Schema { get; init; } = SchemaName;

    /// <summary>Where and when it ran.</summary>
    public required MachineInfo Machine { get; init; }

    /// <summary>How it ran.</summary>
    public required RunInfo Run { get; init; }

    /// <summary>One entry per (family, shape, backend).</summary>
    public required IReadOnlyList<ResultEntry> Entries { get; init; }

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // Readable text ("+", "µ") in files people diff; the files are data, never embedded in HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The results as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Options) + "\n";

    /// <summary>Parses results JSON; <paramref name="source"/> names it in errors.</summary>
    public static BenchmarkResults Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        BenchmarkResults? results;
        try
        {
            results = JsonSerializer.Deserialize<BenchmarkResults>(json, Options);
        }
        catch (JsonException error)
        {
            throw new LrmFormatException($"{source}: not benchmark results JSON ({error.Message})");
        }
        if (results is null || results.Schema != SchemaName)
        {
            throw new LrmFormatException($"{source}: expected schema '{SchemaName}', got '{results?.Schema ?? "null"}'");
        }
        return results;
    }

    /// <summary>Reads a results file.</summary>
    public static BenchmarkResults Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new LrmFormatException($"{path}: benchmark results not found");
        }
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Writes the file atomically.</summary>
    public void Save(string path) => AtomicFile.Write(path, stream =>
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(ToJson());
        stream.Write(bytes);
    });

    /// <summary>
    /// These results with each entry joined to the peer entry of the same family and shape: peer name, peer time and
    /// ratio = peer time / our time (&gt; 1: LrmNative is faster), or the peer's reason for skipping it. Both runs must
    /// have used the same number of compute threads (when both record one): a ratio across thread counts measures the
    /// threads, not the kernels.
    /// </summary>
    public BenchmarkResults WithPeers(BenchmarkResults peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        if (peers.Machine.Threads > 0 && Machine.Threads > 0 && peers.Machine.Threads != Machine.Threads)
        {
            throw new LrmInvalidArgumentException(
                $"the peer results ran on {peers.Machine.Threads} threads and ours on {Machine.Threads}; ratios need the same thread count on both sides "
                + $"(rerun the peer with --threads {Machine.Threads}, or ours with OMP_NUM_THREADS={peers.Machine.Threads}; benchmarks/run.sh --threads N sets both)");
        }
        var byKey = peers.Entries.ToLookup(entry => entry.Key, StringComparer.Ordinal);
        var entries = Entries.Select(entry =>
        {
            var peer = byKey[entry.Key].FirstOrDefault(candidate => SameDevice(entry.Backend, candidate.Backend));
            if (peer is null)
            {
                return entry;
            }
            if (peer.Skipped is not null || peer.Seconds is not > 0)
            {
                return entry with { Peer = peer.Backend, PeerNote = peer.Skipped ?? peer.Note ?? "no time" };
            }
            return entry with
            {
                Peer = peer.Backend,
                PeerTimeMeanS = peer.TimeMeanS,
                PeerTimeStddevS = peer.TimeStddevS,
                Ratio = entry.Seconds is > 0 ? peer.Seconds / entry.Seconds : null,
                PeerNote = peer.Note,
            };
        }).ToList();
        var peer = peers.Run.Peer ?? peers.Machine.Runtime;
        var notes = (Run.PeerNotes ?? []).Concat(peers.Run.PeerNotes ?? []).Distinct(StringComparer.Ordinal).ToList();
        return this with
        {
            Entries = entries,
            Run = Run with { Peer = Run.Peer is null || Run.Peer == peer ? peer : $"{Run.Peer}; {peer}", PeerNotes = notes },
        };
    }

    /// <summary>
    /// Whether a peer backend runs on the same kind of device as ours: "cpu" pairs with "pytorch-cpu" and the CPU-only
    /// "scikit-image", "cuda" with "pytorch-cuda".
    /// </summary>
    public static bool SameDevice(string ours, string peer)
    {
        ArgumentNullException.ThrowIfNull(ours);
        ArgumentNullException.ThrowIfNull(peer);
        return ours == "cpu"
            ? peer.EndsWith("-cpu", StringComparison.Ordinal) || peer == "scikit-image"
            : peer.EndsWith("-" + ours, StringComparison.Ordinal);
    }

    /// <summary>These results with each entry's roofline fraction and bound computed from <see cref="MachineInfo.Peak"/>.</summary>
    public BenchmarkResults WithRoofline() =>
        this with { Entries = [.. Entries.Select(entry => Roofline.Apply(entry, Machine.Peak))] };
}

/// <summary>The machine and the build measured.</summary>
public sealed record MachineInfo
{
    /// <summary>File name stem: a slug of the CPU model and core count, plus the GPU's when one was used.</summary>
    public required string Id { get; init; }

    /// <summary>CPU model as the OS names it.</summary>
    public required string Cpu { get; init; }

    /// <summary>Physical cores.</summary>
    public int Cores { get; init; }

    /// <summary>Logical processors.</summary>
    public int LogicalProcessors { get; init; }

    /// <summary>Instruction-set extensions that matter for the kernels (e.g. "avx2 fma avx512f").</summary>
    public string? CpuFeatures { get; init; }

    /// <summary>Installed memory in GiB.</summary>
    public double MemoryGib { get; init; }

    /// <summary>Operating system and kernel.</summary>
    public string? Os { get; init; }

    /// <summary>The .NET runtime (our runs).</summary>
    public string? Dotnet { get; init; }

    /// <summary>Other runtime (the peer: Python and PyTorch versions).</summary>
    public string? Runtime { get; init; }

    /// <summary>The GPU used, null when none.</summary>
    public GpuInfo? Gpu { get; init; }

    /// <summary>UTC start of the run, ISO 8601.</summary>
    public required string Date { get; init; }

    /// <summary>git commit (short hash, "-dirty" with uncommitted changes), or "unknown".</summary>
    public string Commit { get; init; } = "unknown";

    /// <summary>Compute threads (OpenMP/BLAS for us, torch.set_num_threads for the peer).</summary>
    public int Threads { get; init; }

    /// <summary>liblrm_native's build line.</summary>
    public string? Native { get; init; }

    /// <summary>BLAS library and kernels.</summary>
    public string? Blas { get; init; }

    /// <summary>The roofline: peak FLOP/s and bandwidth, each with its source; null when not measured.</summary>
    public PeakInfo? Peak { get; init; }
}

/// <summary>A GPU: name and driver.</summary>
public sealed record GpuInfo(string Name, string Driver);

/// <summary>The roofline's two roofs.</summary>
public sealed record PeakInfo
{
    /// <summary>Peak fp32 GFLOP/s.</summary>
    public double Gflops { get; init; }

    /// <summary>Where <see cref="Gflops"/> comes from (measured how, or a datasheet).</summary>
    public string GflopsSource { get; init; } = "";

    /// <summary>Peak memory bandwidth, GB/s.</summary>
    public double Gbps { get; init; }

    /// <summary>Where <see cref="Gbps"/> comes from.</summary>
    public string GbpsSource { get; init; } = "";
}

/// <summary>How the run was made.</summary>
public sealed record RunInfo
{
    /// <summary>What measured: "LrmNative.Benchmarks (BenchmarkDotNet 0.14, in-process)" or the peer script.</summary>
    public required string Tool { get; init; }

    /// <summary>"short" (the default: 1 launch, 2 warm-ups, 5 iterations) or "long".</summary>
    public required string Job { get; init; }

    /// <summary>True when the numbers are known to be disturbed (a shared, busy machine).</summary>
    public bool Preliminary { get; init; }

    /// <summary>Free text about the run (load, what else ran).</summary>
    public string? Note { get; init; }

    /// <summary>The peer the ratios compare with, e.g. "pytorch 1.13.0 cpu".</summary>
    public string? Peer { get; init; }

    /// <summary>The peer's caveats (fallbacks, single-threaded peers).</summary>
    public IReadOnlyList<string>? PeerNotes { get; init; }

    /// <summary>The command that regenerates the file.</summary>
    public string? Command { get; init; }
}

/// <summary>One measured kernel case.</summary>
public sealed record ResultEntry
{
    /// <summary>Kernel family, e.g. "attention".</summary>
    public required string Family { get; init; }

    /// <summary>Shape name (unique within the family).</summary>
    public required string Shape { get; init; }

    /// <summary>Configs that run this shape, comma-separated.</summary>
    public string Config { get; init; } = "";

    /// <summary>"cpu", "cuda", or the peer's "pytorch-cpu" / "pytorch-cuda" / "scikit-image".</summary>
    public required string Backend { get; init; }

    /// <summary>Mean time per invocation, seconds (wall clock; null when skipped).</summary>
    public double? TimeMeanS { get; init; }

    /// <summary>Standard deviation of the time, seconds.</summary>
    public double? TimeStddevS { get; init; }

    /// <summary>Measured iterations behind the mean.</summary>
    public int Samples { get; init; }

    /// <summary>Mean device-event time, seconds, for device backends; null on the CPU.</summary>
    public double? DeviceTimeMeanS { get; init; }

    /// <summary>FLOPs per invocation (see the shape records in KernelShapes.cs).</summary>
    public double Flops { get; init; }

    /// <summary>Compulsory bytes per invocation.</summary>
    public double Bytes { get; init; }

    /// <summary>Headline rate in <see cref="RateUnit"/>.</summary>
    public double? Rate { get; init; }

    /// <summary>"GFLOP/s", "GB/s" or "Mvoxels/s".</summary>
    public string RateUnit { get; init; } = "";

    /// <summary>Roofline floor time / measured time (1 = at the roof); null without a peak.</summary>
    public double? RooflineFraction { get; init; }

    /// <summary>"compute" or "memory": which roof the floor is set by.</summary>
    public string? Bound { get; init; }

    /// <summary>The peer compared with, null when none.</summary>
    public string? Peer { get; init; }

    /// <summary>The peer's mean time, seconds.</summary>
    public double? PeerTimeMeanS { get; init; }

    /// <summary>The peer's standard deviation, seconds.</summary>
    public double? PeerTimeStddevS { get; init; }

    /// <summary>Peer time / our time: above 1 LrmNative is faster.</summary>
    public double? Ratio { get; init; }

    /// <summary>The peer's note for this case (a fallback it used, or why it skipped).</summary>
    public string? PeerNote { get; init; }

    /// <summary>Note about this entry (the peer script writes what it ran).</summary>
    public string? Note { get; init; }

    /// <summary>Why the case was not measured, null when it was.</summary>
    public string? Skipped { get; init; }

    /// <summary>"family/shape": pairs entries of two runs.</summary>
    [JsonIgnore]
    public string Key => $"{Family}/{Shape}";

    /// <summary>The time the rates, roofline and ratio use: the device-event time where there is one, else the wall time.</summary>
    [JsonIgnore]
    public double? Seconds => DeviceTimeMeanS ?? TimeMeanS;
}

/// <summary>The roofline model: floor time = max(FLOPs / peak FLOP/s, bytes / peak bandwidth).</summary>
public static class Roofline
{
    /// <summary>Floor time in seconds and the roof that sets it; null without a usable peak.</summary>
    public static (double Seconds, string Bound)? Floor(double flops, double bytes, PeakInfo? peak)
    {
        if (peak is null || peak.Gflops <= 0 || peak.Gbps <= 0)
        {
            return null;
        }
        var compute = flops / (peak.Gflops * 1e9);
        var memory = bytes / (peak.Gbps * 1e9);
        return compute >= memory ? (compute, "compute") : (memory, "memory");
    }

    /// <summary>The entry with its roofline fraction and bound.</summary>
    public static ResultEntry Apply(ResultEntry entry, PeakInfo? peak)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var floor = Floor(entry.Flops, entry.Bytes, peak);
        if (floor is null || entry.Seconds is not > 0)
        {
            return entry with { RooflineFraction = null, Bound = floor?.Bound };
        }
        return entry with { RooflineFraction = floor.Value.Seconds / entry.Seconds.Value, Bound = floor.Value.Bound };
    }
}
