using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Cli;

/// <summary>What <c>lrm bench</c> was asked to do.</summary>
internal sealed record BenchOptions
{
    /// <summary>A config JSON (random weights) or a model folder/file (real weights); null: configs/openlrm-small.json.</summary>
    public string? Model { get; init; }

    /// <summary>cpu, cuda, cuda:N or auto.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Mesh grid resolution.</summary>
    public int Resolution { get; init; } = Reconstruction.DefaultMeshResolution;

    /// <summary>Where to write the JSON report, if anywhere.</summary>
    public string? Json { get; init; }

    /// <summary>CPU threads (0: default).</summary>
    public int Threads { get; init; }

    /// <summary>Seed of the random weights.</summary>
    public int Seed { get; init; } = BenchCommand.DefaultSeed;

    /// <summary>Surface density; null: the model's.</summary>
    public float? Threshold { get; init; }

    /// <summary>Side of the rendered input view.</summary>
    public int RenderSize { get; init; } = Reconstruction.DefaultRenderSize;

    /// <summary>An input photo; null: a synthetic one made in memory.</summary>
    public string? Image { get; init; }
}

/// <summary>
/// <c>lrm bench [--model CONFIG_OR_DIR] [--device cpu|cuda|auto] [--resolution 384] [--json FILE] [--threads N]
/// [--seed N] [--threshold T] [--render-size N] [--image FILE]</c>: one reconstruction end to end, timed per stage in
/// the paper's terms (LRM §4 on an A100: image→triplane 1.14 s, grid query 1.14 s, marching cubes 1.91 s at 384³), plus
/// load, preprocess, render, vertex colours and export, the coarse-to-fine grid query beside the dense one (points
/// evaluated, time, and the mesh difference), and peak memory: the process's peak resident set (VmHWM) and the peak of
/// bytes held by host tensors. With a config JSON the weights are random (fixed seed, made in memory) — every op's time
/// is independent of the values — except that random weights have no surface, so the grid query, marching cubes and
/// export run on an analytic triplane NeRF of the config's sizes (a rippled sphere through the model's own NeRF MLP,
/// <see cref="AnalyticTriplane"/>). A model folder or file is run as it is. A warm-up pass (the whole pipeline at a
/// small grid) runs first and is not counted. The JSON schema is documented in docs/benchmarks.md ("lrm bench").
/// </summary>
internal static class BenchCommand
{
    /// <summary>Seed of the random weights when none is given.</summary>
    public const int DefaultSeed = 1;

    /// <summary>The default model: OpenLRM small's config.</summary>
    public const string DefaultConfig = "configs/openlrm-small.json";

    /// <summary>Version of the JSON report's layout.</summary>
    public const string Schema = "lrm-bench-e2e/1";

    /// <summary>The paper's A100 timings (LRM §4), seconds.</summary>
    public static readonly IReadOnlyDictionary<string, double> PaperSeconds = new Dictionary<string, double>
    {
        ["image_to_triplane"] = 1.14,
        ["grid_query"] = 1.14,
        ["marching_cubes"] = 1.91,
    };

    private const int WarmUpResolution = 32;
    private const float Ripple = 0.08f;

    public static Command Create()
    {
        var command = new Command("bench", "Time one reconstruction end to end in the paper's terms (image→triplane, grid query, marching cubes) with peak memory");
        var model = new Option<string?>("--model") { Description = $"A model config JSON (random weights) or a model folder/file (default: {DefaultConfig})" };
        var device = new Option<string>("--device") { Description = "cpu, cuda (or cuda:N) or auto", DefaultValueFactory = _ => "auto" };
        var resolution = new Option<int>("--resolution") { Description = "Mesh grid resolution", DefaultValueFactory = _ => Reconstruction.DefaultMeshResolution };
        var json = new Option<string?>("--json") { Description = "Write the report as JSON (schema: docs/benchmarks.md, \"lrm bench\")" };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: OMP_NUM_THREADS or all cores)" };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights (config only)", DefaultValueFactory = _ => DefaultSeed };
        var threshold = new Option<float?>("--threshold") { Description = "Surface density (default: the model's; 3.0)" };
        var renderSize = new Option<int>("--render-size") { Description = "Side of the rendered input view", DefaultValueFactory = _ => Reconstruction.DefaultRenderSize };
        var image = new Option<string?>("--image") { Description = "Input photo (default: a synthetic object made in memory)" };
        foreach (var option in new Option[] { model, device, resolution, json, threads, seed, threshold, renderSize, image })
        {
            command.Options.Add(option);
        }
        command.SetAction(parse =>
        {
            var display = ProgressDisplay.Create(parse.InvocationConfiguration.Error);
            try
            {
                Run(new BenchOptions
                {
                    Model = parse.GetValue(model),
                    Device = parse.GetValue(device) ?? "auto",
                    Resolution = parse.GetValue(resolution),
                    Json = parse.GetValue(json),
                    Threads = parse.GetValue(threads),
                    Seed = parse.GetValue(seed),
                    Threshold = parse.GetValue(threshold),
                    RenderSize = parse.GetValue(renderSize),
                    Image = parse.GetValue(image),
                }, display, parse.InvocationConfiguration.Output);
                return 0;
            }
            catch (LrmException error)
            {
                display.Error(error.Message);
                return 1;
            }
        });
        return command;
    }

    /// <summary>Runs the benchmark; the report goes to <paramref name="output"/> (and the JSON file); returns the report.</summary>
    public static BenchReport Run(BenchOptions options, ProgressDisplay display, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Resolution is < WarmUpResolution or > 1024)
        {
            throw new LrmInvalidArgumentException($"--resolution must be in {WarmUpResolution}..1024, got {options.Resolution}");
        }
        if (options.Threshold is { } given && !(float.IsFinite(given) && given > 0))
        {
            throw new LrmInvalidArgumentException($"--threshold must be a positive finite density, got {given}");
        }
        if (options.RenderSize is < 1 or > 4096)
        {
            throw new LrmInvalidArgumentException($"--render-size must be in 1..4096, got {options.RenderSize}");
        }
        var device = ReconstructCommand.ParseDevice(options.Device);
        var modelPath = options.Model ?? FindDefaultConfig();
        var randomWeights = modelPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(modelPath);
        if (options.Json is not null)
        {
            ReconstructCommand.EnsureWritableFolder(Path.GetDirectoryName(Path.GetFullPath(options.Json)) ?? ".");
        }
        HostMemory.ResetPeak();
        var report = new BenchReport { Model = modelPath, RandomWeights = randomWeights, Seed = randomWeights ? options.Seed : null, Resolution = options.Resolution };
        report.Machine = MachineInfo.Query(options.Threads); // the commit and date of the start
        var scratch = Directory.CreateTempSubdirectory("lrm-bench-").FullName;
        try
        {
            display.Run(() =>
            {
                var reconstructorOptions = new ReconstructorOptions { Threads = options.Threads, Threshold = options.Threshold, Progress = display };
                ModelConfig? config = null;
                Reconstructor lrm;
                if (randomWeights)
                {
                    config = ModelConfig.Load(modelPath);
                    var level = options.Threshold ?? config.MeshThreshold ?? ModelConfig.DefaultMeshThreshold;
                    var random = config;
                    lrm = Reconstructor.FromModel(backend => LrmModel.CreateRandom(random, options.Seed, AnalyticTriplane.NerfWeights(random, level), backend),
                        device, reconstructorOptions, modelPath);
                }
                else
                {
                    lrm = Reconstructor.Load(modelPath, device, reconstructorOptions);
                }
                using (lrm)
                {
                    config ??= lrm.Model.Config;
                    report.Device = lrm.Device.ToString();
                    report.DeviceNote = lrm.DeviceNote;
                    report.Parameters = lrm.ParameterCount;
                    report.Config = config;
                    report.Threshold = lrm.Threshold;
                    report.Surface = randomWeights
                        ? $"analytic rippled sphere (radius 0.6, ripple {Ripple.ToString(CultureInfo.InvariantCulture)}) through the model's NeRF MLP: random weights have no surface"
                        : "the model's own";
                    display.Stage("model", $"{modelPath}: {lrm.Description}{(randomWeights ? $", random weights (seed {options.Seed})" : "")} on {lrm.Device}", lrm.LoadTime);
                    if (lrm.DeviceNote is not null)
                    {
                        display.Note(lrm.DeviceNote);
                    }
                    using var photo = options.Image is null ? SyntheticImage() : Image.Load(options.Image);
                    report.Image = options.Image ?? "synthetic (an ellipse on transparent background, 320×240)";

                    // Warm-up: every code path once (JIT, thread pools, first-touch allocations), not counted.
                    var warmUp = Stopwatch.StartNew();
                    using (var first = lrm.Reconstruct(photo))
                    using (var surface = randomWeights ? lrm.FromPlanes(AnalyticTriplane.Planes(config, Ripple), "analytic") : null)
                    {
                        using (first.RenderInputView(8))
                        {
                        }
                        var target = surface ?? first;
                        target.ExtractMesh(WarmUpResolution, null, false);
                        target.ExtractMesh(WarmUpResolution, null, true);
                    }
                    display.Stage("warm-up", "the whole pipeline once at 32³, not counted", warmUp.Elapsed);

                    Measure(lrm, photo, config, randomWeights, options, report, scratch, display);
                    report.PeakDeviceBytes = (lrm.Backend as CudaBackend)?.MemoryStatistics.PeakInUseBytes;
                }
            });
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        report.PeakResidentBytes = PeakResidentBytes();
        report.PeakTensorBytes = HostMemory.PeakBytes;
        Print(report, display, output);
        if (options.Json is not null)
        {
            AtomicFile.Write(options.Json, stream => report.WriteJson(stream));
            display.Note($"report written to {options.Json}");
        }
        return report;
    }

    private static void Measure(Reconstructor lrm, Image photo, ModelConfig config, bool randomWeights, BenchOptions options, BenchReport report,
        string scratch, ProgressDisplay display)
    {
        using var result = lrm.Reconstruct(photo);
        report.Seconds["load"] = lrm.LoadTime.TotalSeconds;
        report.Seconds["preprocess"] = result.Timings.Preprocess.TotalSeconds;
        report.Seconds["image_to_triplane"] = result.Timings.ImageToTriplane.TotalSeconds;
        display.Stage("triplane", $"image → triplane 3 × {result.TriplaneChannels} × {result.TriplaneResolution}²", result.Timings.ImageToTriplane);
        using (result.RenderInputView(options.RenderSize))
        {
        }
        report.Seconds["render"] = result.Timings.Render.TotalSeconds;
        display.Stage("render", $"input view {options.RenderSize}²", result.Timings.Render);

        using var analytic = randomWeights ? lrm.FromPlanes(AnalyticTriplane.Planes(config, Ripple), "analytic rippled sphere") : null;
        var surface = analytic ?? result;
        var resolution = options.Resolution;
        var dense = surface.ExtractMesh(resolution, null, false);
        var denseQuery = surface.LastGridQuery!;
        report.Seconds["grid_query"] = surface.Timings.GridQuery.TotalSeconds;
        report.Seconds["marching_cubes"] = surface.Timings.MarchingCubes.TotalSeconds;
        report.Seconds["vertex_colors"] = surface.Timings.VertexColors.TotalSeconds;
        display.Stage("grid query", string.Create(CultureInfo.InvariantCulture, $"{resolution}³ dense: {denseQuery.PointsEvaluated:N0} points"), surface.Timings.GridQuery);
        display.Stage("marching cubes", string.Create(CultureInfo.InvariantCulture, $"{dense.VertexCount:N0} vertices, {dense.TriangleCount:N0} triangles"), surface.Timings.MarchingCubes);
        var export = Stopwatch.StartNew();
        if (!dense.IsEmpty)
        {
            dense.SaveGlb(Path.Combine(scratch, "mesh.glb"));
        }
        report.Seconds["export"] = export.Elapsed.TotalSeconds;
        display.Stage("export", dense.IsEmpty ? "no surface: nothing to export" : "GLB", export.Elapsed);
        report.Seconds["total"] = report.Seconds.Values.Sum();
        report.Dense = new GridRun(denseQuery.PointsEvaluated, report.Seconds["grid_query"], report.Seconds["marching_cubes"], dense.VertexCount, dense.TriangleCount);

        // Coarse-to-fine on the same triplane, and how its mesh differs from the dense one.
        var before = (surface.Timings.GridQuery, surface.Timings.MarchingCubes);
        var fine = surface.ExtractMesh(resolution, null, true);
        var fineQuery = surface.LastGridQuery!;
        var difference = MeshDistance.Compare(dense, fine);
        report.CoarseToFine = new GridRun(fineQuery.PointsEvaluated, (surface.Timings.GridQuery - before.GridQuery).TotalSeconds,
            (surface.Timings.MarchingCubes - before.MarchingCubes).TotalSeconds, fine.VertexCount, fine.TriangleCount)
        {
            BlocksRefined = fineQuery.BlocksRefined,
            Blocks = fineQuery.Blocks,
            Chamfer = difference.Chamfer,
            Hausdorff = difference.Hausdorff,
            Identical = difference.Identical,
        };
        display.Stage("coarse-to-fine", string.Create(CultureInfo.InvariantCulture,
            $"{fineQuery.PointsEvaluated:N0} points ({100 * fineQuery.Fraction:F1} % of dense), mesh {(difference.Identical ? "identical" : $"Chamfer {difference.Chamfer:G3}, Hausdorff {difference.Hausdorff:G3}")}"),
            surface.Timings.GridQuery - before.GridQuery);
    }

    private static void Print(BenchReport report, ProgressDisplay display, TextWriter output)
    {
        string[] stages = ["load", "preprocess", "image→triplane", "render", "grid query", "marching cubes", "vertex colours", "export", "total"];
        string[] keys = ["load", "preprocess", "image_to_triplane", "render", "grid_query", "marching_cubes", "vertex_colors", "export", "total"];
        var measured = new Dictionary<string, TimeSpan>();
        var paper = new Dictionary<string, TimeSpan>();
        var fine = new Dictionary<string, TimeSpan>();
        for (var i = 0; i < stages.Length; i++)
        {
            if (report.Seconds.TryGetValue(keys[i], out var seconds))
            {
                measured[stages[i]] = TimeSpan.FromSeconds(seconds);
            }
            if (PaperSeconds.TryGetValue(keys[i], out var reference))
            {
                paper[stages[i]] = TimeSpan.FromSeconds(reference);
            }
        }
        if (report.CoarseToFine is { } c2f)
        {
            fine["grid query"] = TimeSpan.FromSeconds(c2f.GridQuerySeconds);
            fine["marching cubes"] = TimeSpan.FromSeconds(c2f.MarchingCubesSeconds);
        }
        display.Breakdown(stages, [($"{report.Device} {report.Resolution}³", measured), ("coarse-to-fine", fine), ("paper A100", paper)]);
        var onDevice = report.PeakDeviceBytes is { } device
            ? string.Create(CultureInfo.InvariantCulture, $", {device / 1048576.0:F0} MiB on the device (caching allocator)")
            : "";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peak memory: {report.PeakResidentBytes / 1048576.0:F0} MiB resident (VmHWM), {report.PeakTensorBytes / 1048576.0:F0} MiB in host tensors{onDevice}"));
    }

    // configs/openlrm-small.json under the working folder, else next to the program.
    private static string FindDefaultConfig()
    {
        foreach (var candidate in new[] { DefaultConfig, Path.Combine(AppContext.BaseDirectory, DefaultConfig) })
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new LrmFormatException($"{DefaultConfig}: not found in the working folder or next to lrm; give --model CONFIG_OR_DIR");
    }

    // An RGBA ellipse with a colour gradient on a transparent background: the kind of input reconstruct expects.
    private static Image SyntheticImage() => EllipseImage(320, 240, 170, 115, 90, 80, "synthetic");

    /// <summary>
    /// An opaque ellipse (centre, radii in pixels) on a transparent width × height RGBA image, its colour graded
    /// across x (red) and y (green): a stand-in for a segmented object photo (lrm bench, the reconstruct tests).
    /// </summary>
    internal static Image EllipseImage(int width, int height, double centreX, double centreY, double radiusX, double radiusY, string name = "<memory>")
    {
        var rgba = new float[width * height * 4];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var dx = (x - centreX) / radiusX;
                var dy = (y - centreY) / radiusY;
                if (dx * dx + dy * dy <= 1)
                {
                    var i = 4 * (y * width + x);
                    rgba[i] = x / (float)width;
                    rgba[i + 1] = 0.3f + 0.5f * y / height;
                    rgba[i + 2] = 0.6f;
                    rgba[i + 3] = 1f;
                }
            }
        }
        return Image.FromRgba(rgba, width, height, name: name);
    }

    // The process's peak resident set size (VmHWM in /proc/self/status), or 0 where there is none.
    internal static long PeakResidentBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kilobytes = long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                    return kilobytes * 1024;
                }
            }
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or FormatException)
        {
        }
        return 0;
    }
}

/// <summary>One grid query + marching cubes run of <c>lrm bench</c>.</summary>
internal sealed record GridRun(long PointsEvaluated, double GridQuerySeconds, double MarchingCubesSeconds, int Vertices, int Triangles)
{
    public long BlocksRefined { get; init; }
    public long Blocks { get; init; }
    public double? Chamfer { get; init; }
    public double? Hausdorff { get; init; }
    public bool? Identical { get; init; }
}

/// <summary>The machine a benchmark ran on.</summary>
internal sealed record MachineInfo(string CpuModel, int LogicalCores, int Threads, string Os, string Runtime, string NativeBuild, string Blas, string Cuda, string Date, string? GitCommit)
{
    public static MachineInfo Query(int threads)
    {
        var engine = EngineInfo.Query();
        var cpu = HostProbe.CpuModel() ?? "unknown";
        return new MachineInfo(cpu, Environment.ProcessorCount, threads > 0 ? threads : engine.Threads, RuntimeInformation.OSDescription,
            RuntimeInformation.FrameworkDescription, engine.NativeBuild, engine.Blas, engine.Cuda.Summary,
            DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), ReadGitCommit());
    }

    // `git rev-parse HEAD` in the working folder, or null (no git, not a checkout).
    private static string? ReadGitCommit() => HostProbe.Git("rev-parse", "HEAD") is { Length: >= 7 } commit ? commit : null;
}

/// <summary>Everything <c>lrm bench</c> measured; <see cref="WriteJson"/> is the schema of docs/benchmarks.md.</summary>
internal sealed class BenchReport
{
    public required string Model { get; init; }
    public bool RandomWeights { get; init; }
    public int? Seed { get; init; }
    public int Resolution { get; init; }
    public string Device { get; set; } = "";
    public string? DeviceNote { get; set; }
    public long Parameters { get; set; }
    public ModelConfig? Config { get; set; }
    public float Threshold { get; set; }
    public string Surface { get; set; } = "";
    public string Image { get; set; } = "";
    public Dictionary<string, double> Seconds { get; } = [];
    public GridRun? Dense { get; set; }
    public GridRun? CoarseToFine { get; set; }
    public long PeakResidentBytes { get; set; }
    public long PeakTensorBytes { get; set; }

    /// <summary>Most device memory in use at once on a CUDA run (the caching allocator's count; null on the CPU).</summary>
    public long? PeakDeviceBytes { get; set; }
    public MachineInfo? Machine { get; set; }

    public void WriteJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        json.WriteString("schema", BenchCommand.Schema);
        if (Machine is { } machine)
        {
            json.WriteString("date", machine.Date);
            json.WriteString("git_commit", machine.GitCommit);
            json.WriteStartObject("machine");
            json.WriteString("cpu_model", machine.CpuModel);
            json.WriteNumber("logical_cores", machine.LogicalCores);
            json.WriteNumber("threads", machine.Threads);
            json.WriteString("os", machine.Os);
            json.WriteString("runtime", machine.Runtime);
            json.WriteString("native_build", machine.NativeBuild);
            json.WriteString("blas", machine.Blas);
            json.WriteString("cuda", machine.Cuda);
            json.WriteEndObject();
        }
        json.WriteStartObject("device");
        json.WriteString("used", Device);
        json.WriteString("note", DeviceNote);
        json.WriteEndObject();
        json.WriteStartObject("model");
        json.WriteString("source", Model);
        json.WriteBoolean("random_weights", RandomWeights);
        if (Seed is { } seed)
        {
            json.WriteNumber("seed", seed);
        }
        else
        {
            json.WriteNull("seed");
        }
        json.WriteNumber("parameters", Parameters);
        if (Config is not null)
        {
            json.WritePropertyName("config");
            using var document = JsonDocument.Parse(Config.ToJson());
            document.WriteTo(json);
        }
        json.WriteEndObject();
        json.WriteStartObject("settings");
        json.WriteNumber("resolution", Resolution);
        json.WriteNumber("threshold", Threshold);
        json.WriteString("surface", Surface);
        json.WriteString("image", Image);
        json.WriteEndObject();
        json.WriteStartObject("seconds");
        foreach (var (stage, seconds) in Seconds)
        {
            json.WriteNumber(stage, Math.Round(seconds, 4));
        }
        json.WriteEndObject();
        json.WriteStartObject("paper_a100_seconds");
        foreach (var (stage, seconds) in BenchCommand.PaperSeconds)
        {
            json.WriteNumber(stage, seconds);
        }
        json.WriteEndObject();
        json.WriteStartObject("grid_query");
        json.WriteNumber("dense_points", (long)Resolution * Resolution * Resolution);
        WriteRun(json, "dense", Dense);
        WriteRun(json, "coarse_to_fine", CoarseToFine);
        json.WriteEndObject();
        json.WriteStartObject("memory");
        json.WriteNumber("peak_rss_bytes", PeakResidentBytes);
        json.WriteNumber("peak_tensor_bytes", PeakTensorBytes);
        if (PeakDeviceBytes is { } deviceBytes)
        {
            json.WriteNumber("peak_device_bytes", deviceBytes);
        }
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteRun(Utf8JsonWriter json, string name, GridRun? run)
    {
        if (run is null)
        {
            json.WriteNull(name);
            return;
        }
        json.WriteStartObject(name);
        json.WriteNumber("points_evaluated", run.PointsEvaluated);
        json.WriteNumber("grid_query_seconds", Math.Round(run.GridQuerySeconds, 4));
        json.WriteNumber("marching_cubes_seconds", Math.Round(run.MarchingCubesSeconds, 4));
        json.WriteNumber("vertices", run.Vertices);
        json.WriteNumber("triangles", run.Triangles);
        if (run.Identical is { } identical)
        {
            json.WriteNumber("blocks_refined", run.BlocksRefined);
            json.WriteNumber("blocks", run.Blocks);
            json.WriteBoolean("mesh_identical_to_dense", identical);
            json.WriteNumber("chamfer_to_dense", double.IsFinite(run.Chamfer ?? 0) ? run.Chamfer ?? 0 : -1);
            json.WriteNumber("hausdorff_to_dense", double.IsFinite(run.Hausdorff ?? 0) ? run.Hausdorff ?? 0 : -1);
        }
        json.WriteEndObject();
    }
}
