using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LrmNative.Backends;
using LrmNative.Imaging;
using LrmNative.IO;

namespace LrmNative.Cli;

/// <summary>What <c>lrm reconstruct</c> was asked to do.</summary>
internal sealed record ReconstructOptions
{
    /// <summary>An OpenLRM-style model folder (config.json + model.safetensors) or an LrmNative model file.</summary>
    public required string Model { get; init; }

    /// <summary>The input photos (PNG or JPEG), one or more.</summary>
    public required IReadOnlyList<string> Images { get; init; }

    /// <summary>Output folder (created if needed); with several images, one subfolder per image.</summary>
    public string Out { get; init; } = ReconstructCommand.DefaultOut;

    /// <summary>Where to save the triplane (safetensors), if anywhere (one image only).</summary>
    public string? SaveTriplane { get; init; }

    /// <summary>A .npy (N, 3) of points to evaluate the NeRF at, if any.</summary>
    public string? Query { get; init; }

    /// <summary>Side of the rendered views, in pixels.</summary>
    public int RenderSize { get; init; } = ReconstructCommand.DefaultRenderSize;

    /// <summary>Density grid resolution for the mesh (0: no mesh).</summary>
    public int Resolution { get; init; } = ReconstructCommand.DefaultResolution;

    /// <summary>Density level of the surface; null: the model config's, else OpenLRM's 3.0.</summary>
    public float? Threshold { get; init; }

    /// <summary>Mesh formats to write: glb, ply, obj.</summary>
    public IReadOnlyList<string> Formats { get; init; } = ["glb"];

    /// <summary>CPU threads (0: the library's default).</summary>
    public int Threads { get; init; }

    /// <summary>The object's longest side as a fraction of the encoder input; null: the model config's, else 0.85.</summary>
    public double? ForegroundRatio { get; init; }

    /// <summary>Turntable frames to render (0: none).</summary>
    public int Turntable { get; init; }

    /// <summary>cpu, cuda, cuda:N or auto.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Evaluate the mesh grid coarse-to-fine (true), densely (false) or as the device suits (null: coarse-to-fine on the CPU).</summary>
    public bool? CoarseToFine { get; init; }

    /// <summary>Drop mesh pieces with fewer triangles than this share of the largest (0: keep all).</summary>
    public double MinPiece { get; init; }

    /// <summary>Simplify the mesh to at most this many triangles (quadric edge collapse; 0: keep all).</summary>
    public int MaxTriangles { get; init; }
}

/// <summary>
/// <c>lrm reconstruct IMAGE... --model DIR [--out DIR] [--resolution N] [--threshold T] [--formats glb,ply,obj]
/// [--turntable N] [--device cpu|cuda|auto] [--coarse-to-fine | --dense] [--min-piece S] [--max-triangles N] [--render-size N]
/// [--save-triplane FILE] [--query POINTS.npy] [--threads N] [--foreground-ratio R]</c>: photos through the model via the public
/// <see cref="Reconstructor"/> facade. For each image, in OUT (one image) or OUT/&lt;file name without extension&gt;
/// (several):
/// <list type="bullet">
/// <item><c>preprocessed.png</c>: the encoder input (re-centred, composited on white, S × S).</item>
/// <item><c>input_view.png</c>, <c>opacity.png</c>, <c>depth.png</c>: the input view from the canonical camera.</item>
/// <item><c>mesh.glb</c> (and/or .ply, .obj): marching cubes of the density at the threshold on a --resolution³ grid,
/// vertex colours from the NeRF (0 skips the mesh).</item>
/// <item><c>turntable/NNN.png</c> and <c>turntable.mp4</c> (when ffmpeg is on PATH) with --turntable N.</item>
/// <item><c>query.npy</c> (N, 4) = [σ, r, g, b] at --query points; --save-triplane FILE (one image only).</item>
/// </list>
/// Every stage prints a line with its wall time (a live Spectre.Console display on a terminal), and a timing
/// breakdown in the paper's terms ends the run. Options, the model and the query points are checked before any
/// image is touched; each image is read and preprocessed before anything is written for it, so a bad image leaves no
/// files. In a batch, a bad image is reported (one error line) and the others still run; the exit code is 1 when any
/// image failed. Every file is written atomically. Outputs an earlier run left in the folder that this run does not
/// write — query.npy without --query, mesh.&lt;format&gt; (of --formats) with --resolution 0 or no surface, the
/// turntable frames and MP4 (replaced as a whole by --turntable N, removed without it) — are removed with a note, so
/// every file the command names in the folder is this run's; other files are left alone.
/// </summary>
internal static class ReconstructCommand
{
    public const string DefaultOut = "out";

    /// <summary>Environment variable naming the model used when --model is not given (./lrm sets it to models/default).</summary>
    public const string DefaultModelVariable = "LRM_DEFAULT_MODEL";

    /// <summary>The model of $LRM_DEFAULT_MODEL, or an error saying how to give one.</summary>
    internal static string DefaultModel()
    {
        var path = Environment.GetEnvironmentVariable(DefaultModelVariable);
        if (string.IsNullOrEmpty(path))
        {
            throw new LrmInvalidArgumentException($"no --model given and ${DefaultModelVariable} is not set: pass --model DIR (an OpenLRM folder or an LrmNative model file), or run through ./lrm, which uses the repository's models/default");
        }
        if (!Directory.Exists(path) && !File.Exists(path))
        {
            throw new LrmFormatException($"{path}: the default model (${DefaultModelVariable}) was not found; pass --model DIR");
        }
        return path;
    }
    public const int DefaultRenderSize = Reconstruction.DefaultRenderSize;
    /// <summary>Default mesh grid resolution (the paper's 384³).</summary>
    public const int DefaultResolution = Reconstruction.DefaultMeshResolution;
    /// <summary>Turntable frames per second in the MP4.</summary>
    public const int TurntableFramesPerSecond = 24;
    private const int MaxTurntableFrames = 999;
    private static readonly string[] MeshFormats = ["glb", "ply", "obj"];
    private const int MaxRenderSize = 4096;
    /// <summary>The file of --query's values in the output folder.</summary>
    public const string QueryFile = "query.npy";

    /// <summary>The stages of the timing breakdown, in the paper's terms first.</summary>
    public static readonly string[] BreakdownStages =
        ["load", "preprocess", "image→triplane", "render", "turntable", "grid query", "marching cubes", "vertex colours", "simplify", "export", "total"];

    public static Command Create()
    {
        var command = new Command("reconstruct", "Reconstruct photos: triplane, input-view renders, a coloured mesh (GLB/PLY/OBJ) and optionally a turntable");
        var images = new Argument<string[]>("IMAGE")
        {
            Description = "Input photos (PNG or JPEG); RGBA with the background removed works best. Several: one subfolder of --out each",
            Arity = ArgumentArity.OneOrMore,
        };
        var model = new Option<string?>("--model")
        {
            Description = "The model: an OpenLRM-style folder (config.json + model.safetensors) or an LrmNative model file (lrm convert); "
                + $"default: ${DefaultModelVariable} (./lrm sets it to the repository's models/default)",
        };
        var output = new Option<string>("--out") { Description = "Output folder (created if needed)", DefaultValueFactory = _ => DefaultOut };
        var saveTriplane = new Option<string?>("--save-triplane")
        {
            Description = "Also save the triplane as safetensors: tensor \"planes\" (3, C, H, W) plus the config as metadata (one image only)",
        };
        var query = new Option<string?>("--query")
        {
            Description = "A .npy of points (N, 3): writes query.npy (N, 4) = [density, r, g, b] of the NeRF at them",
        };
        var renderSize = new Option<int>("--render-size") { Description = "Side of the rendered views in pixels", DefaultValueFactory = _ => DefaultRenderSize };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: OMP_NUM_THREADS or all cores)" };
        var ratio = new Option<double?>("--foreground-ratio")
        {
            Description = "The object's longest side as a fraction of the encoder input (0.05 <= r <= 1; default: the model config's foreground_ratio, else OpenLRM's 0.85)",
        };
        var resolution = new Option<int>("--resolution")
        {
            Description = "Density grid resolution for the mesh (marching cubes over [-1, 1]³); 0 skips the mesh",
            DefaultValueFactory = _ => DefaultResolution,
        };
        var threshold = new Option<float?>("--threshold")
        {
            Description = "Density of the extracted surface, > 0 (default: the model config's mesh_threshold, else OpenLRM's 3.0)",
        };
        var formats = new Option<string>("--formats")
        {
            Description = "Mesh formats to write, comma-separated: glb, ply, obj (mesh.<format>)",
            DefaultValueFactory = _ => "glb",
        };
        var turntable = new Option<int>("--turntable")
        {
            Description = "Render N turntable frames (OpenLRM's: radius 2, height 0.8) to turntable/NNN.png, and turntable.mp4 when ffmpeg is on PATH",
        };
        var device = new Option<string>("--device")
        {
            Description = "cpu, cuda (or cuda:N) or auto (CUDA when a CUDA backend can run here, else the CPU)",
            DefaultValueFactory = _ => "auto",
        };
        var coarseToFine = new Option<bool>("--coarse-to-fine")
        {
            Description = "Query the mesh grid coarse-to-fine: full resolution only near the surface (the same mesh from far fewer NeRF queries; the default on the CPU)",
        };
        var dense = new Option<bool>("--dense")
        {
            Description = "Query every point of the mesh grid (the default on CUDA, where the grid stays on the device)",
        };
        var minPiece = new Option<double>("--min-piece")
        {
            Description = "Drop disconnected mesh pieces with fewer triangles than this share of the largest, e.g. 0.05 for floaters (default 0: keep all)",
        };
        var maxTriangles = new Option<int>("--max-triangles")
        {
            Description = "Simplify the mesh to at most N triangles by quadric edge collapse, keeping its topology, e.g. 20000 for a game asset (default 0: keep all)",
        };
        command.Arguments.Add(images);
        foreach (var option in new Option[] { model, output, saveTriplane, query, renderSize, threads, ratio, resolution, threshold, formats, turntable, device, coarseToFine, dense, minPiece, maxTriangles })
        {
            command.Options.Add(option);
        }
        command.SetAction(parse =>
        {
            var log = parse.InvocationConfiguration.Error;
            var display = ProgressDisplay.Create(log);
            using var interruption = Interruption.Listen(log, "stopping at the next check (between stages, or within a slab of the mesh grid)");
            try
            {
                var failed = Run(new ReconstructOptions
                {
                    Model = parse.GetValue(model) ?? DefaultModel(),
                    Images = parse.GetRequiredValue(images),
                    Out = parse.GetValue(output) ?? DefaultOut,
                    SaveTriplane = parse.GetValue(saveTriplane),
                    Query = parse.GetValue(query),
                    RenderSize = parse.GetValue(renderSize),
                    Threads = parse.GetValue(threads),
                    ForegroundRatio = parse.GetValue(ratio),
                    Resolution = parse.GetValue(resolution),
                    Threshold = parse.GetValue(threshold),
                    Formats = ParseFormats(parse.GetValue(formats) ?? "glb"),
                    Turntable = parse.GetValue(turntable),
                    Device = parse.GetValue(device) ?? "auto",
                    CoarseToFine = GridChoice(parse.GetValue(coarseToFine), parse.GetValue(dense)),
                    MinPiece = parse.GetValue(minPiece),
                    MaxTriangles = parse.GetValue(maxTriangles),
                }, display, interruption.Token);
                return failed == 0 ? 0 : 1;
            }
            catch (OperationCanceledException error) when (interruption.Caused(error))
            {
                display.Error("cancelled; the files written before the interrupt are complete, the rest were not written");
                return interruption.ExitCode;
            }
            catch (LrmException error)
            {
                // Reported here so a test host (or any caller of the command) sees the one-line message too.
                display.Error(error.Message);
                return 1;
            }
        });
        return command;
    }

    /// <summary>"glb, PLY" → ["glb", "ply"].</summary>
    public static string[] ParseFormats(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(f => f.ToLowerInvariant()).Distinct().ToArray();

    /// <summary>"cpu", "cuda", "cuda:N", "auto" → a device.</summary>
    public static Device ParseDevice(string text)
    {
        var value = text.Trim().ToLowerInvariant();
        if (value == "cpu")
        {
            return Device.Cpu;
        }
        if (value == "auto")
        {
            return Device.Auto;
        }
        if (value == "cuda")
        {
            return Device.Cuda();
        }
        if (value.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(value[5..], NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal))
        {
            return Device.Cuda(ordinal);
        }
        throw new LrmInvalidArgumentException($"--device takes cpu, cuda, cuda:N or auto, got '{text}'");
    }

    /// <summary>
    /// Runs the reconstructions, reporting to <paramref name="display"/>; returns the number of images that failed
    /// (each reported as one error). Problems with the options, the model or the query points throw before any image runs.
    /// <paramref name="cancellation"/> stops the run between images and inside the long stages (image → triplane is one
    /// step, the grid query is checked slab by slab) with <see cref="OperationCanceledException"/>.
    /// </summary>
    public static int Run(ReconstructOptions options, ProgressDisplay display, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(display);
        Validate(options);
        var device = ParseDevice(options.Device);
        var folders = OutputFolders(options);
        var total = Stopwatch.StartNew();
        var failed = new List<string>();
        var breakdown = new List<(string Name, IReadOnlyDictionary<string, TimeSpan> Times)>();
        display.Run(() =>
        {
            using var lrm = Reconstructor.Load(options.Model, device, new ReconstructorOptions
            {
                ForegroundRatio = options.ForegroundRatio,
                Threshold = options.Threshold,
                Threads = options.Threads,
                CoarseToFine = options.CoarseToFine,
                Progress = display,
            });
            display.Stage("model", $"{options.Model}: {lrm.Description}", lrm.LoadTime);
            if (lrm.DeviceNote is not null)
            {
                display.Note(lrm.DeviceNote);
            }
            using var points = options.Query is null ? null : Timed(display, "points", () => ReadPoints(options.Query), p => $"{options.Query}: {p.Size(1)} points");
            for (var i = 0; i < options.Images.Count; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                var times = new Dictionary<string, TimeSpan>();
                try
                {
                    ReconstructOne(lrm, options.Images[i], folders[i], points, options, display, times, cancellation);
                    breakdown.Add((options.Images.Count == 1 ? Path.GetFileName(options.Images[i]) : Path.GetFileName(folders[i]), times));
                }
                catch (LrmException error)
                {
                    display.Error(error.Message);
                    failed.Add(options.Images[i]);
                }
            }
        });
        if (breakdown.Count > 0)
        {
            display.Breakdown(BreakdownStages, breakdown);
        }
        var where = Path.GetFullPath(options.Out);
        if (failed.Count == 0)
        {
            display.Finished(total.Elapsed, where);
        }
        else
        {
            display.Note(string.Create(CultureInfo.InvariantCulture,
                $"{options.Images.Count - failed.Count} of {options.Images.Count} images reconstructed in {total.Elapsed.TotalSeconds:F2} s → {where}; failed: {string.Join(", ", failed)}"));
        }
        return failed.Count;
    }

    // One image: read and preprocess (nothing written yet), then triplane, exports, renders, turntable, mesh.
    private static void ReconstructOne(Reconstructor lrm, string imagePath, string folder, Tensor? points, ReconstructOptions options,
        ProgressDisplay display, Dictionary<string, TimeSpan> times, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        times["load"] = lrm.LoadTime;
        using var image = Timed(display, "image", () => Image.Load(imagePath), i => $"{imagePath}: {i.Width}×{i.Height} {(i.HasAlpha ? "RGBA" : "RGB")}"
            + (i.ExifOrientation != 1 ? $", turned upright (EXIF orientation {i.ExifOrientation})" : ""));
        var createdFolder = !Directory.Exists(folder);
        EnsureWritableFolder(folder);
        if (options.SaveTriplane is not null)
        {
            EnsureWritableFolder(Path.GetDirectoryName(Path.GetFullPath(options.SaveTriplane)) ?? ".");
        }
        Reconstruction result;
        try
        {
            result = lrm.Reconstruct(image, cancellation);
        }
        catch
        {
            // A bad image leaves nothing behind, not even the folder made for it.
            if (createdFolder && Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any())
            {
                Directory.Delete(folder);
            }
            throw;
        }
        using (result)
        {
            var input = result.Preprocessed!;
            display.Stage("preprocess",
                $"object {input.Foreground.Width}×{input.Foreground.Height} px at ({input.Foreground.X}, {input.Foreground.Y}), canvas {input.CanvasSize} px → {lrm.InputResolution}²{(input.BackgroundEstimated ? " (background estimated)" : "")}",
                result.Timings.Preprocess);
            foreach (var warning in result.Warnings)
            {
                display.Warning(warning);
            }
            display.Stage("triplane", $"image → triplane (1, 3, {result.TriplaneChannels}, {result.TriplaneResolution}, {result.TriplaneResolution})", result.Timings.ImageToTriplane);
            times["preprocess"] = result.Timings.Preprocess;
            times["image→triplane"] = result.Timings.ImageToTriplane;
            var export = TimeSpan.Zero;

            var preprocessedPath = Path.Combine(folder, "preprocessed.png");
            export += Timed(display, "write", () =>
            {
                result.InputImage.SavePng(preprocessedPath);
                if (options.SaveTriplane is not null)
                {
                    result.SaveTriplane(options.SaveTriplane);
                }
            }, options.SaveTriplane is null ? preprocessedPath : $"{preprocessedPath}, {options.SaveTriplane}");

            var queryPath = Path.Combine(folder, QueryFile);
            if (points is not null)
            {
                export += Timed(display, "query", () =>
                {
                    using var values = result.Query(points);
                    Npy.Write(queryPath, values);
                }, $"{points.Size(1)} points → {queryPath} (N, 4) = [density, r, g, b]");
            }
            else
            {
                NoteRemoved(display, RemoveEarlier([queryPath], "no --query this run"), "no --query this run");
            }

            var renderStart = result.Timings.Render;
            using (var view = result.RenderInputView(options.RenderSize))
            {
                var path = Path.Combine(folder, "input_view.png");
                view.Color.SavePng(path);
                using (var opacity = view.OpacityImage())
                {
                    opacity.SavePng(Path.Combine(folder, "opacity.png"));
                }
                using (var depth = view.DepthImage())
                {
                    depth.SavePng(Path.Combine(folder, "depth.png"));
                }
                display.Stage("render", $"input view {options.RenderSize}² → {path}, opacity.png, depth.png", result.Timings.Render - renderStart);
            }
            times["render"] = result.Timings.Render - renderStart;

            if (options.Turntable > 0)
            {
                var turntableStart = Stopwatch.StartNew();
                var video = Turntable.Write(result, folder, options.Turntable, options.RenderSize, display, cancellation);
                times["turntable"] = turntableStart.Elapsed;
                display.Stage("turntable", $"{options.Turntable} frames {options.RenderSize}² → {Path.Combine(folder, Turntable.FolderName)}{(video is null ? "" : $", {video}")}", turntableStart.Elapsed);
            }
            else
            {
                var removed = Turntable.RemoveEarlier(folder, "no --turntable this run");
                RemoveIfEmpty(Path.Combine(folder, Turntable.FolderName));
                NoteRemoved(display, removed, "no --turntable this run");
            }

            if (options.Resolution > 0)
            {
                ExtractMesh(result, folder, options, display, times, ref export, cancellation);
            }
            else
            {
                NoteRemoved(display, RemoveEarlier(MeshPaths(folder, options), "--resolution 0 writes no mesh"), "--resolution 0 writes no mesh");
            }
            times["export"] = export;
            times["total"] = clock.Elapsed + lrm.LoadTime;
        }
    }

    // Density grid → marching cubes → vertex colours → mesh.<format>.
    private static void ExtractMesh(Reconstruction result, string folder, ReconstructOptions options, ProgressDisplay display,
        Dictionary<string, TimeSpan> times, ref TimeSpan export, CancellationToken cancellation)
    {
        var before = (result.Timings.GridQuery, result.Timings.MarchingCubes, result.Timings.VertexColors);
        var threshold = options.Threshold ?? result.Threshold;
        var extracted = result.ExtractMesh(options.Resolution, threshold, options.CoarseToFine, cancellation);
        var mesh = extracted.WithoutSmallPieces(options.MinPiece);
        var grid = result.LastGridQuery!;
        times["grid query"] = result.Timings.GridQuery - before.GridQuery;
        times["marching cubes"] = result.Timings.MarchingCubes - before.MarchingCubes;
        times["vertex colours"] = result.Timings.VertexColors - before.VertexColors;
        var resolution = options.Resolution;
        display.Stage("grid query", grid.CoarseToFine
            ? string.Create(CultureInfo.InvariantCulture, $"{resolution}³ coarse-to-fine: {grid.PointsEvaluated:N0} of {grid.DensePoints:N0} points ({100 * grid.Fraction:F1} %), {grid.BlocksRefined:N0} of {grid.Blocks:N0} blocks refined")
            : string.Create(CultureInfo.InvariantCulture, $"{resolution}³ = {grid.DensePoints:N0} points"), times["grid query"]);
        var dropped = mesh == extracted ? "" : string.Create(CultureInfo.InvariantCulture,
            $" (of {extracted.VertexCount:N0} / {extracted.TriangleCount:N0}: pieces under {options.MinPiece:0.###} of the largest dropped)");
        display.Stage("marching cubes", string.Create(CultureInfo.InvariantCulture, $"level {threshold}: {mesh.VertexCount:N0} vertices, {mesh.TriangleCount:N0} triangles{dropped}"), times["marching cubes"]);
        var paths = MeshPaths(folder, options);
        if (mesh.IsEmpty)
        {
            var stale = RemoveEarlier(paths, "no surface at this threshold; it is an earlier run's mesh");
            display.Warning($"no surface at density {threshold.ToString(CultureInfo.InvariantCulture)} inside the object box; no mesh written (try a lower --threshold)"
                + (stale.Count == 0 ? "" : $"; removed {string.Join(", ", stale)} from an earlier run"));
            return;
        }
        display.Stage("colours", "NeRF colour at every vertex, area-weighted normals", times["vertex colours"]);
        if (options.MaxTriangles > 0 && mesh.TriangleCount > options.MaxTriangles)
        {
            var clock = Stopwatch.StartNew();
            var simple = mesh.Simplified(options.MaxTriangles, cancellation);
            times["simplify"] = clock.Elapsed;
            var note = simple.TriangleCount > options.MaxTriangles ? " (no further collapse keeps the topology)" : "";
            display.Stage("simplify", string.Create(CultureInfo.InvariantCulture,
                $"{mesh.TriangleCount:N0} → {simple.TriangleCount:N0} triangles, {simple.VertexCount:N0} vertices (quadric edge collapse){note}"), clock.Elapsed);
            mesh = simple;
        }
        export += Timed(display, "export", () =>
        {
            foreach (var path in paths)
            {
                mesh.Save(path);
            }
        }, string.Join(", ", paths));
    }

    // mesh.<format> for each of --formats: the mesh files this command names (a format not asked for is left alone).
    private static List<string> MeshPaths(string folder, ReconstructOptions options) =>
        [.. options.Formats.Select(format => Path.Combine(folder, $"mesh.{format}"))];

    // An output an earlier run into this folder left and this run does not write would pass for this run's: it goes.
    // Returns the paths removed; a file that cannot be removed is an error naming it.
    private static List<string> RemoveEarlier(IEnumerable<string> paths, string why)
    {
        var removed = new List<string>();
        foreach (var path in paths.Where(File.Exists))
        {
            FileErrors.Delete(path, why);
            removed.Add(path);
        }
        return removed;
    }

    private static void NoteRemoved(ProgressDisplay display, IReadOnlyList<string> removed, string why)
    {
        if (removed.Count > 0)
        {
            display.Note(removed.Count <= 3
                ? $"removed {string.Join(", ", removed)} from an earlier run ({why})"
                : $"removed {removed.Count} files ({string.Join(", ", removed.Take(2))}, …) from an earlier run ({why})");
        }
    }

    // Removes a folder this command made once it holds nothing (a user's file in it keeps it).
    private static void RemoveIfEmpty(string folder)
    {
        try
        {
            if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any())
            {
                Directory.Delete(folder);
            }
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            // An empty folder misleads no reader; leaving it is harmless.
        }
    }

    // --coarse-to-fine → true, --dense → false, neither → null (the device's default); both is an error.
    private static bool? GridChoice(bool coarseToFine, bool dense) => (coarseToFine, dense) switch
    {
        (true, true) => throw new LrmInvalidArgumentException("--coarse-to-fine and --dense exclude each other: give at most one"),
        (true, false) => true,
        (false, true) => false,
        _ => null,
    };

    private static void Validate(ReconstructOptions options)
    {
        if (options.Images.Count == 0)
        {
            throw new LrmInvalidArgumentException("no input image given");
        }
        if (options.Resolution != 0 && options.Resolution is < 2 or > 1024)
        {
            throw new LrmInvalidArgumentException($"--resolution must be 0 (no mesh) or in 2..1024, got {options.Resolution}");
        }
        if (options.Threshold is { } threshold)
        {
            Reconstruction.CheckThreshold(threshold, "--threshold");
        }
        if (options.Formats.Count == 0 || options.Formats.FirstOrDefault(f => !MeshFormats.Contains(f)) is not null)
        {
            throw new LrmInvalidArgumentException($"--formats takes glb, ply and/or obj, got '{string.Join(",", options.Formats)}'");
        }
        if (options.RenderSize is <= 0 or > MaxRenderSize)
        {
            throw new LrmInvalidArgumentException($"--render-size must be in 1..{MaxRenderSize}, got {options.RenderSize}");
        }
        if (options.Threads < 0)
        {
            throw new LrmInvalidArgumentException($"--threads must be >= 0 (0: default), got {options.Threads}");
        }
        if (options.ForegroundRatio is { } ratio && !(ratio >= ImagePreprocessOptions.MinForegroundRatio && ratio <= 1))
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"--foreground-ratio must be in [{ImagePreprocessOptions.MinForegroundRatio}, 1], got {ratio}"));
        }
        if (options.Turntable is < 0 or > MaxTurntableFrames)
        {
            throw new LrmInvalidArgumentException($"--turntable must be in 0..{MaxTurntableFrames} frames, got {options.Turntable}");
        }
        if (options.MinPiece is not (>= 0 and <= 1))
        {
            throw new LrmInvalidArgumentException($"--min-piece must be a share of the largest piece in [0, 1], got {options.MinPiece.ToString(CultureInfo.InvariantCulture)}");
        }
        if (options.MaxTriangles < 0)
        {
            throw new LrmInvalidArgumentException($"--max-triangles must be >= 0 (0: keep all), got {options.MaxTriangles}");
        }
        if (options.SaveTriplane is not null && options.Images.Count > 1)
        {
            throw new LrmInvalidArgumentException($"--save-triplane names one file, but {options.Images.Count} images were given; save triplanes one image at a time");
        }
    }

    // OUT for one image; OUT/<file name without extension> for several (two images with one name are refused).
    private static string[] OutputFolders(ReconstructOptions options)
    {
        if (options.Images.Count == 1)
        {
            return [options.Out];
        }
        var folders = options.Images.Select(image => Path.Combine(options.Out, Path.GetFileNameWithoutExtension(image))).ToArray();
        var clash = folders.Select((folder, i) => (folder, i)).GroupBy(f => f.folder, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (clash is not null)
        {
            throw new LrmInvalidArgumentException(
                $"{string.Join(" and ", clash.Select(c => options.Images[c.i]))} would both write to {clash.Key}: give images distinct file names");
        }
        return folders;
    }

    private static T Timed<T>(ProgressDisplay display, string name, Func<T> work, Func<T, string> describe)
    {
        var clock = Stopwatch.StartNew();
        var result = work();
        display.Stage(name, describe(result), clock.Elapsed);
        return result;
    }

    private static TimeSpan Timed(ProgressDisplay display, string name, Action work, string description)
    {
        var clock = Stopwatch.StartNew();
        work();
        display.Stage(name, description, clock.Elapsed);
        return clock.Elapsed;
    }

    // Creates the folder and proves a file can be created in it, before any work is done.
    internal static void EnsureWritableFolder(string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            var probe = Path.Combine(folder, $".lrm-write-test.{Environment.ProcessId}.{Guid.NewGuid():N}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{folder}: output folder is not writable: {error.Message}");
        }
    }

    // Query points (N, 3) from .npy → (1, N, 3).
    private static Tensor ReadPoints(string path)
    {
        using var raw = Npy.ReadFloat32(path);
        if (raw.Rank != 2 || raw.Size(1) != 3 || raw.Size(0) == 0)
        {
            throw new LrmShapeException($"{path}: query points must be a non-empty (N, 3) array, got {raw.ShapeText}");
        }
        var points = Tensor.Empty([1, raw.Size(0), 3]);
        raw.AsSpan<float>().CopyTo(points.AsSpan<float>());
        return points;
    }
}
