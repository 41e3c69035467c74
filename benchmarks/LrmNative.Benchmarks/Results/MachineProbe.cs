using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace LrmNative.Benchmarks.Results;

/// <summary>Describes this machine for the results file: CPU, cores, memory, OS, .NET, GPU, commit, build.</summary>
public static class MachineProbe
{
    private static readonly string[] InterestingFlags = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile"];

    /// <summary>Collects what can be read without privileges; unknown values are left empty, never guessed.</summary>
    public static MachineInfo Collect(DateTimeOffset start, PeakInfo? peak, bool includeGpu)
    {
        var cpuinfo = HostProbe.ReadOrEmpty("/proc/cpuinfo");
        var cpu = HostProbe.Field(cpuinfo, "model name") ?? RuntimeInformation.ProcessArchitecture.ToString();
        var flags = (HostProbe.Field(cpuinfo, "flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var features = string.Join(' ', InterestingFlags.Where(flags.Contains));
        var family = HostProbe.Field(cpuinfo, "cpu family");
        var model = HostProbe.Field(cpuinfo, "model");
        if (family is not null && model is not null)
        {
            cpu += $" (family {family}, model {model})";
        }
        var engine = EngineInfo.Query();
        GpuInfo? gpu = null;
        if (includeGpu && engine.Cuda.Available && engine.Cuda.Devices.Count > 0)
        {
            gpu = new GpuInfo(engine.Cuda.Devices[0], engine.Cuda.Summary);
        }
        var cores = PhysicalCores(cpuinfo);
        return new MachineInfo
        {
            Id = MachineId(HostProbe.Field(cpuinfo, "model name") ?? cpu, cores, gpu?.Name),
            Cpu = cpu,
            Cores = cores,
            LogicalProcessors = Environment.ProcessorCount,
            CpuFeatures = features.Length > 0 ? features : null,
            MemoryGib = MemoryGib(),
            Os = OperatingSystemText(),
            Dotnet = RuntimeInformation.FrameworkDescription,
            Gpu = gpu,
            Date = start.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            Commit = GitCommit(),
            Threads = engine.Threads,
            Native = $"liblrm_native {engine.NativeVersion}: {engine.NativeBuild}",
            Blas = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") is { Length: > 0 } core && !engine.Blas.Contains("OPENBLAS_CORETYPE", StringComparison.Ordinal)
                ? $"{engine.Blas} (OPENBLAS_CORETYPE={core} from the environment)"
                : engine.Blas,
            Peak = peak,
        };
    }

    /// <summary>File-name-safe id: "amd-epyc-2c", "amd-epyc-2c-nvidia-h100-80gb-hbm3".</summary>
    public static string MachineId(string cpuModel, int cores, string? gpuName)
    {
        ArgumentNullException.ThrowIfNull(cpuModel);
        var id = $"{Slug(cpuModel)}-{cores}c";
        if (!string.IsNullOrEmpty(gpuName))
        {
            // Device strings read "cuda:0 NAME (sm_90, 79.1 GiB)": keep the name.
            var name = gpuName;
            var space = name.IndexOf(' ', StringComparison.Ordinal);
            if (name.StartsWith("cuda:", StringComparison.Ordinal) && space > 0)
            {
                name = name[(space + 1)..];
            }
            var paren = name.IndexOf('(', StringComparison.Ordinal);
            id += "-" + Slug(paren > 0 ? name[..paren] : name);
        }
        return id;
    }

    /// <summary>Lower-case letters and digits, runs of anything else as one '-'.</summary>
    public static string Slug(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var builder = new StringBuilder();
        foreach (var c in text.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                builder.Append(c);
            }
            else if (builder.Length > 0 && builder[^1] != '-')
            {
                builder.Append('-');
            }
        }
        return builder.ToString().Trim('-') is { Length: > 0 } slug ? slug : "machine";
    }

    private static int PhysicalCores(string cpuinfo)
    {
        // Unique (physical id, core id) pairs; "cpu cores" per package as a fallback.
        var pairs = new HashSet<string>(StringComparer.Ordinal);
        string? physical = null;
        foreach (var line in cpuinfo.Split('\n'))
        {
            var (key, value) = HostProbe.Split(line);
            if (key == "physical id")
            {
                physical = value;
            }
            else if (key == "core id")
            {
                pairs.Add($"{physical}:{value}");
            }
        }
        if (pairs.Count > 0)
        {
            return pairs.Count;
        }
        return int.TryParse(HostProbe.Field(cpuinfo, "cpu cores"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var cores) ? cores : Environment.ProcessorCount;
    }

    private static double MemoryGib()
    {
        var total = HostProbe.Field(HostProbe.ReadOrEmpty("/proc/meminfo"), "MemTotal");
        if (total is not null && long.TryParse(total.Split(' ')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kib))
        {
            return Math.Round(kib / (1024.0 * 1024.0), 1);
        }
        return Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024), 1);
    }

    private static string OperatingSystemText()
    {
        var release = HostProbe.ReadOrEmpty("/etc/os-release");
        var pretty = HostProbe.Field(release.Replace("=", ":", StringComparison.Ordinal), "PRETTY_NAME")?.Trim('"');
        var kernel = HostProbe.ReadOrEmpty("/proc/sys/kernel/osrelease").Trim();
        return (pretty, kernel.Length > 0) switch
        {
            (null, _) => RuntimeInformation.OSDescription,
            (_, true) => $"{pretty}, Linux {kernel}",
            _ => pretty,
        };
    }

    /// <summary>Short hash of HEAD, with "-dirty" when the work tree differs; "unknown" without git.</summary>
    public static string GitCommit()
    {
        var head = HostProbe.Git("rev-parse", "--short", "HEAD");
        if (head is null)
        {
            return "unknown";
        }
        var status = HostProbe.Git("status", "--porcelain", "--untracked-files=no");
        return status is { Length: > 0 } ? head + "-dirty" : head;
    }
}
