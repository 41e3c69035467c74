using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LrmNative;
using LrmNative.Backends;
using LrmNative.Imaging;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Cli;

/// <summary>What <c>lrm reconstruct</c> was asked to do.</summary>
internal sealed record ReconstructOptions
{
    /// <summary>An OpenLRM-style model folder (config.json + model.safetensors).</summary>
    public required string Model { get; init; }

    /// <summary>The input photo (PNG or JPEG).</summary>
    public required string Image { get; init; }

    /// <summary>Output folder (created if needed).</summary>
    public string Out { get; init; } = ReconstructCommand.DefaultOut;

    /// <summary>Where to save the triplane (safetensors), if anywhere.</summary>
    public string? SaveTriplane { get; init; }

    /// <summary>A .npy (N, 3) of points to evaluate the NeRF at, if any.</summary>
    public string? Query { get; init; }

    /// <summary>Side of the rendered input view, in pixels.</summary>
    public int RenderSize { get; init; } = ReconstructCommand.DefaultRenderSize;

    /// <summary>Density grid resolution for the mesh (0: no mesh).</summary>
    public int Resolution { get; init; } = ReconstructCommand.DefaultResolution;

    /// <summary>Density level of the surface (OpenLRM's mesh threshold).</summary>
    public float Threshold { get; init; } = ReconstructCommand.DefaultThreshold;

    /// <summary>Mesh formats to write: glb, ply, obj.</summary>
    public IReadOnlyList<string> Formats { get; init; } = ["glb"];

    /// <summary>CPU threads (0: the library's default).</summary>
    public int Threads { get; init; }

    /// <summary>The object's longest side as a fraction of the encoder input.</summary>
    public double ForegroundRatio { get; init; } = 0.85;
}

/// <summary>
/// <c>lrm reconstruct --model DIR IMAGE [--out DIR] [--save-triplane FILE] [--query POINTS.npy] [--render-size N]
/// [--threads N]</c>: one photo through the model on the CPU, with the intermediate results exported so they can be
/// compared with another implementation (PyTorch OpenLRM):
/// <list type="bullet">
/// <item><c>OUT/preprocessed.png</c>: the encoder input (re-centred, composited on white, S × S).</item>
/// <item><c>--save-triplane FILE</c>: safetensors with tensor "planes" (3, C_tri, H, W) fp32, exactly as the model's
/// upsampler produces it for the one image (plane 0 is sampled at (x, y), plane 1 at (x, z), plane 2 at (z, y)),
/// and metadata: "config" (the model config JSON), "source_camera" (the 16 conditioning values), "image".</item>
/// <item><c>--query POINTS.npy</c>: points (N, 3) in world units ([−1, 1]³ is the object box; '&lt;f4', '&lt;f8', '&lt;i4' or
/// '&lt;i8') → <c>OUT/query.npy</c> (N, 4) float32 = [σ, r, g, b] with σ = softplus(raw₀ − 1) (the density the renderer
/// integrates) and rgb = sigmoid(raw₁…₃)·1.002 − 0.001, the NeRF evaluated as is (no masking outside the box).</item>
/// <item><c>OUT/input_view.png</c>: the input view rendered from the canonical camera ((0, −2, 0) looking at the
/// origin, +Z up, focal 0.75) over white; <c>OUT/opacity.png</c> (Σw, grey) and <c>OUT/depth.png</c> (expected depth,
/// min → black, max → white over the image).</item>
/// </list>
/// Every stage prints a progress line with its wall time on stderr. Inputs (model, image, query points) are all read
/// and checked before anything is computed or written; every file is written atomically.
/// Meshes and GLB export come with marching cubes (a later step).
/// </summary>
internal static class ReconstructCommand
{
    public const string DefaultOut = "out";
    public const int DefaultRenderSize = 128;
    /// <summary>Default mesh grid resolution (the paper's 384³).</summary>
    public const int DefaultResolution = 384;
    /// <summary>Default surface density (OpenLRM's mesh threshold, 3.0).</summary>
    public const float DefaultThreshold = 3.0f;
    private static readonly string[] MeshFormats = ["glb", "ply", "obj"];
    private const int MaxRenderSize = 4096;

    public static Command Create()
    {
        var command = new Command("reconstruct", "Reconstruct one image on the CPU: render the input view, and optionally export the triplane and NeRF densities/colours at given points");
        var image = new Argument<string>("IMAGE") { Description = "Input photo (PNG or JPEG); RGBA with the background removed works best" };
        var model = new Option<string>("--model")
        {
            Description = "The model: an OpenLRM-style folder (config.json + model.safetensors) or an LrmNative model file (lrm convert)",
            Required = true,
        };
        var output = new Option<string>("--out")
        {
            Description = "Output folder (created if needed)",
            DefaultValueFactory = _ => DefaultOut,
        };
        var saveTriplane = new Option<string?>("--save-triplane")
        {
            Description = "Also save the triplane as safetensors: tensor \"planes\" (3, C, H, W) plus the config as metadata",
        };
        var query = new Option<string?>("--query")
        {
            Description = "A .npy of points (N, 3): writes OUT/query.npy (N, 4) = [density, r, g, b] of the NeRF at them",
        };
        var renderSize = new Option<int>("--render-size")
        {
            Description = "Side of the rendered input view in pixels",
            DefaultValueFactory = _ => DefaultRenderSize,
        };
        var threads = new Option<int>("--threads")
        {
            Description = "CPU threads (default: OMP_NUM_THREADS or all cores)",
        };
        var ratio = new Option<double>("--foreground-ratio")
        {
            Description = "The object's longest side as a fraction of the encoder input (0 < r <= 1)",
            DefaultValueFactory = _ => 0.85,
        };
        var resolution = new Option<int>("--resolution")
        {
            Description = "Density grid resolution for the mesh (marching cubes over [-1, 1]³); 0 skips the mesh",
            DefaultValueFactory = _ => DefaultResolution,
        };
        var threshold = new Option<float>("--threshold")
        {
            Description = "Density of the extracted surface (OpenLRM's mesh threshold)",
            DefaultValueFactory = _ => DefaultThreshold,
        };
        var formats = new Option<string>("--formats")
        {
            Description = "Mesh formats to write, comma-separated: glb, ply, obj (OUT/mesh.<format>)",
            DefaultValueFactory = _ => "glb",
        };
        command.Arguments.Add(image);
        foreach (var option in new Option[] { model, output, saveTriplane, query, renderSize, threads, ratio, resolution, threshold, formats })
        {
            command.Options.Add(option);
        }
        command.SetAction(parse =>
        {
            var log = parse.InvocationConfiguration.Error;
            try
            {
                Run(new ReconstructOptions
                {
                    Model = parse.GetRequiredValue(model),
                    Image = parse.GetRequiredValue(image),
                    Out = parse.GetValue(output) ?? DefaultOut,
                    SaveTriplane = parse.GetValue(saveTriplane),
                    Query = parse.GetValue(query),
                    RenderSize = parse.GetValue(renderSize),
                    Threads = parse.GetValue(threads),
                    ForegroundRatio = parse.GetValue(ratio),
                    Resolution = parse.GetValue(resolution),
                    Threshold = parse.GetValue(threshold),
                    Formats = (parse.GetValue(formats) ?? "glb").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(f => f.ToLowerInvariant()).Distinct().ToArray(),
                }, log);
                return 0;
            }
            catch (LrmException error)
            {
                // Reported here so a test host (or any caller of the command) sees the one-line message too.
                log.WriteLine($"lrm: error: {error.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Runs the reconstruction, writing progress lines to <paramref name="log"/>.</summary>
    public static void Run(ReconstructOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        Validate(options);
        var total = Stopwatch.StartNew();
        var stage = new StageLog(log);

        // Every input is read and checked, and the output folders proven writable, before the model runs or
        // anything is written: a bad input leaves nothing behind.
        using var backend = new CpuBackend(options.Threads);
        using var model = stage.Run("model", () => LrmModel.Load(options.Model),
            m => $"{options.Model}: {m.Config.ParameterCountText} parameters, encoder input {m.Config.EncoderImageSize}², triplane 3 × {m.Config.TriplaneDim} × {m.Config.TriplaneHighRes}²");
        using var source = stage.Run("image", () => Image.Load(options.Image),
            i => $"{options.Image}: {i.Width}×{i.Height} {(i.HasAlpha ? "RGBA" : "RGB")}");
        using var points = options.Query is null ? null : stage.Run("points", () => ReadPoints(options.Query),
            p => $"{options.Query}: {p.Size(1)} points");

        var preprocessor = new ImagePreprocessor(new ImagePreprocessOptions
        {
            OutputSize = model.Config.EncoderImageSize,
            ForegroundRatio = options.ForegroundRatio,
        });
        using var input = stage.Run("preprocess", () => preprocessor.Process(backend, source),
            p => $"object {p.Foreground.Width}×{p.Foreground.Height} px at ({p.Foreground.X}, {p.Foreground.Y}), canvas {p.CanvasSize} px → {model.Config.EncoderImageSize}²{(p.BackgroundEstimated ? " (background estimated)" : "")}");
        foreach (var warning in input.Warnings)
        {
            log.WriteLine($"lrm: warning: {warning}");
        }
        EnsureWritableFolder(options.Out);
        if (options.SaveTriplane is not null)
        {
            EnsureWritableFolder(Path.GetDirectoryName(Path.GetFullPath(options.SaveTriplane)) ?? ".");
        }

        using var camera = Tensor.FromArray(Cameras.CanonicalSourceFor(model.Config.CameraInputDim), 1, model.Config.CameraInputDim);
        using var planes = stage.Run("triplane", () => model.ForwardPlanes(backend, input.Image, camera),
            p => $"image → triplane {p.ShapeText}");
        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);

        stage.Run("write", () =>
        {
            var path = Path.Combine(options.Out, "preprocessed.png");
            using var hwc = ToImageLayout(input.Image);
            Image.WritePng(path, hwc);
            if (options.SaveTriplane is not null)
            {
                SaveTriplane(options.SaveTriplane, planes, model.Config, options.Image);
            }
            return path;
        }, path => options.SaveTriplane is null ? path : $"{path}, {options.SaveTriplane}");

        if (points is not null)
        {
            var path = Path.Combine(options.Out, "query.npy");
            stage.Run("query", () =>
            {
                using var result = QueryPoints(backend, model.Nerf, channelsLast, points);
                Npy.Write(path, result);
                return path;
            }, p => $"{points.Size(1)} points → {p} (N, 4) = [density, r, g, b]");
        }

        stage.Run("render", () =>
        {
            using var cameras = Tensor.FromArray(Cameras.Render(Cameras.LookAtOrigin(0, -Cameras.CanonicalDistance, 0)), 1, 25);
            using var render = model.Renderer.Render(backend, channelsLast, cameras, options.RenderSize, options.RenderSize);
            var view = Path.Combine(options.Out, "input_view.png");
            Image.WritePng(view, render.Rgb);
            using (var opacity = GreyToRgb(render.Opacity, normalise: false))
            {
                Image.WritePng(Path.Combine(options.Out, "opacity.png"), opacity);
            }
            using (var depth = GreyToRgb(render.Depth, normalise: true))
            {
                Image.WritePng(Path.Combine(options.Out, "depth.png"), depth);
            }
            return view;
        }, view => $"input view {options.RenderSize}² → {view}, opacity.png, depth.png");
        if (options.Resolution > 0)
        {
            ExtractMesh(stage, backend, model, channelsLast, options, log);
        }
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lrm: done in {total.Elapsed.TotalSeconds:F2} s → {Path.GetFullPath(options.Out)}"));
    }

    // Density grid → marching cubes → vertex colours from the NeRF at the vertices → OUT/mesh.<format>.
    internal static void ExtractMesh(StageLog stage, IBackend backend, LrmModel model, Tensor channelsLast, ReconstructOptions options, TextWriter log)
    {
        var resolution = options.Resolution;
        using var grid = stage.Run("grid query", () => DensityGrid.Query(backend, model.Nerf, channelsLast, resolution),
            _ => $"{resolution}³ = {(long)resolution * resolution * resolution:N0} points");
        var (vertices, triangles) = stage.Run("marching cubes", () => backend.MarchingCubes(grid, options.Threshold, [-1f, -1f, -1f, 1f, 1f, 1f]),
            m => $"level {options.Threshold}: {m.Vertices.Size(0):N0} vertices, {m.Triangles.Size(0):N0} triangles");
        using (vertices)
        using (triangles)
        {
            if (triangles.ElementCount == 0)
            {
                log.WriteLine($"lrm: warning: no surface at density {options.Threshold} inside the object box; no mesh written (try a lower --threshold)");
                return;
            }
            var written = stage.Run("export", () =>
            {
                using var points = Tensor.Empty([1, vertices.Size(0), 3]);
                vertices.AsSpan<float>().CopyTo(points.AsSpan<float>());
                var (sigma, rgb) = model.Nerf.Query(backend, channelsLast, points);
                using (sigma)
                using (rgb)
                {
                    var colors = rgb.AsSpan<float>().ToArray();
                    for (var i = 0; i < colors.Length; i++)
                    {
                        colors[i] = Math.Clamp(colors[i], 0f, 1f); // the NeRF's rgb spans [-0.001, 1.001]
                    }
                    var mesh = new Mesh(vertices.AsSpan<float>(), triangles.AsSpan<int>(), colors).ComputeVertexNormals();
                    var paths = options.Formats.Select(format => Path.Combine(options.Out, $"mesh.{format}")).ToList();
                    foreach (var path in paths)
                    {
                        mesh.Save(path);
                    }
                    return paths;
                }
            }, paths => string.Join(", ", paths));
        }
    }

    /// <summary>NeRF at points (1, N, 3) of channels-last planes → (N, 4) = [σ, r, g, b]; the caller owns it.</summary>
    internal static Tensor QueryPoints(IBackend backend, TriplaneNerf nerf, Tensor channelsLastPlanes, Tensor points)
    {
        var (sigma, rgb) = nerf.Query(backend, channelsLastPlanes, points);
        using (sigma)
        using (rgb)
        {
            var count = points.Size(1);
            var result = Tensor.Empty([count, 4]);
            var target = result.AsSpan<float>();
            var density = sigma.AsSpan<float>();
            var colour = rgb.AsSpan<float>();
            for (var i = 0; i < count; i++)
            {
                target[4 * i] = density[i];
                target[4 * i + 1] = colour[3 * i];
                target[4 * i + 2] = colour[3 * i + 1];
                target[4 * i + 3] = colour[3 * i + 2];
            }
            return result;
        }
    }

    private static void Validate(ReconstructOptions options)
    {
        if (options.Resolution != 0 && options.Resolution is < 2 or > 1024)
        {
            throw new LrmInvalidArgumentException($"--resolution must be 0 (no mesh) or in 2..1024, got {options.Resolution}");
        }
        if (!float.IsFinite(options.Threshold))
        {
            throw new LrmInvalidArgumentException($"--threshold must be a finite density, got {options.Threshold}");
        }
        if (options.Formats.Count == 0 || options.Formats.FirstOrDefault(f => !MeshFormats.Contains(f)) is { } unknown && unknown is not null)
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
        if (!(options.ForegroundRatio > 0 && options.ForegroundRatio <= 1))
        {
            throw new LrmInvalidArgumentException($"--foreground-ratio must be in (0, 1], got {options.ForegroundRatio.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    // Creates the folder and proves a file can be created in it, before any work is done.
    private static void EnsureWritableFolder(string folder)
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

    private static void SaveTriplane(string path, Tensor planes, ModelConfig config, string image)
    {
        // (1, 3, C, H, W) → (3, C, H, W): the same bytes.
        using var single = Tensor.Empty(planes.Shape[1..]);
        planes.AsSpan<float>().CopyTo(single.AsSpan<float>());
        var camera = string.Join(", ", Cameras.CanonicalSourceFor(config.CameraInputDim).Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        SafeTensorsFile.Write(path, [new("planes", single)], new Dictionary<string, string>
        {
            ["config"] = config.ToJson(),
            ["source_camera"] = $"[{camera}]",
            ["image"] = image,
            ["layout"] = "planes (3, C, H, W) fp32 as the upsampler makes them; a point (x, y, z) in [-1, 1]^3 samples plane 0 at (u=x, v=y), plane 1 at (x, z), plane 2 at (z, y), bilinear, zero padding, align_corners=False",
        });
    }

    // (1, 3, S, S) planar → (S, S, 3) interleaved, for PNG.
    private static Tensor ToImageLayout(Tensor image)
    {
        long size = image.Size(2) * image.Size(3);
        var result = Tensor.Empty([image.Size(2), image.Size(3), 3]);
        var source = image.AsSpan<float>();
        var target = result.AsSpan<float>();
        for (var i = 0; i < size; i++)
        {
            for (var c = 0; c < 3; c++)
            {
                target[3 * i + c] = source[(int)(c * size) + i];
            }
        }
        return result;
    }

    // (1, H, W, 1) → (H, W, 3) grey; normalise maps [min, max] of the finite values to [0, 1].
    private static Tensor GreyToRgb(Tensor values, bool normalise)
    {
        var source = values.AsSpan<float>();
        float low = 0, high = 1;
        if (normalise)
        {
            low = float.PositiveInfinity;
            high = float.NegativeInfinity;
            foreach (var v in source)
            {
                if (float.IsFinite(v))
                {
                    low = Math.Min(low, v);
                    high = Math.Max(high, v);
                }
            }
            if (!(high > low))
            {
                (low, high) = (0, 1);
            }
        }
        var result = Tensor.Empty([values.Size(1), values.Size(2), 3]);
        var target = result.AsSpan<float>();
        for (var i = 0; i < source.Length; i++)
        {
            var grey = (source[i] - low) / (high - low);
            target[3 * i] = target[3 * i + 1] = target[3 * i + 2] = grey;
        }
        return result;
    }

    // One progress line per stage on stderr: "lrm: <stage>  <what>  (<seconds> s)".
    internal sealed class StageLog(TextWriter log)
    {
        public T Run<T>(string name, Func<T> work, Func<T, string> describe)
        {
            var clock = Stopwatch.StartNew();
            var result = work();
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lrm: {name,-10} {describe(result)}  ({clock.Elapsed.TotalSeconds:F2} s)"));
            return result;
        }
    }
}
