using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Metrics;

namespace LrmNative.Cli;

/// <summary>
/// <c>lrm eval images PRED GT</c> (PSNR, SSIM of files or folders of images) and <c>lrm eval mesh PRED GT</c> (Chamfer
/// distance and F-score@τ of two meshes); the protocol is docs/metrics.md. Each subcommand prints a table and can
/// write the numbers as JSON (--json). <c>lrm eval model</c> scores a model on a held-out multi-view dataset (novel views
/// and mesh, <see cref="ModelEvaluation"/>).
/// </summary>
internal static class EvalCommand
{
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg"];

    public static Command Create()
    {
        var command = new Command("eval", "Evaluation metrics: PSNR/SSIM of images, Chamfer/F-score of meshes (docs/metrics.md)");
        command.Subcommands.Add(CreateImages());
        command.Subcommands.Add(CreateMesh());
        command.Subcommands.Add(CreateModel());
        return command;
    }

    private static Command CreateImages()
    {
        var prediction = new Argument<string>("PRED") { Description = "Predicted image, or folder of images" };
        var target = new Argument<string>("GT") { Description = "Ground-truth image, or folder with the same file names" };
        var background = new Option<string>("--background") { Description = "Composite RGBA on white (default), black, or none (ignore alpha)", DefaultValueFactory = _ => "white" };
        var json = new Option<string?>("--json") { Description = "Also write the scores as JSON to this file" };
        var command = new Command("images", "PSNR and SSIM (11×11 Gaussian window) between predicted and ground-truth images") { prediction, target, background, json };
        command.SetAction(result =>
        {
            RunImages(result.GetValue(prediction)!, result.GetValue(target)!, result.GetValue(background)!, result.GetValue(json), result.InvocationConfiguration.Output);
            return 0;
        });
        return command;
    }

    /// <summary>Pairs of (name, predicted path, ground-truth path): two files, or the files two folders share by name.</summary>
    public static List<(string Name, string Prediction, string Target)> PairImages(string prediction, string target)
    {
        if (File.Exists(prediction) && File.Exists(target))
        {
            return [(Path.GetFileName(prediction), prediction, target)];
        }
        if (Directory.Exists(prediction) && Directory.Exists(target))
        {
            static Dictionary<string, string> List(string folder) => Directory.GetFiles(folder)
                .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .ToDictionary(f => Path.GetFileName(f), StringComparer.Ordinal);
            var predicted = List(prediction);
            var truth = List(target);
            var missing = truth.Keys.Where(k => !predicted.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
            var extra = predicted.Keys.Where(k => !truth.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0 || extra.Count > 0)
            {
                throw new LrmInvalidArgumentException($"{prediction} and {target} must hold the same image names: "
                    + (missing.Count > 0 ? $"missing predictions {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}" : "")
                    + (missing.Count > 0 && extra.Count > 0 ? "; " : "")
                    + (extra.Count > 0 ? $"no ground truth for {string.Join(", ", extra.Take(5))}{(extra.Count > 5 ? ", …" : "")}" : ""));
            }
            if (truth.Count == 0)
            {
                throw new LrmInvalidArgumentException($"{target}: no .png or .jpg images in the folder");
            }
            return truth.Keys.Order(StringComparer.Ordinal).Select(k => (k, predicted[k], truth[k])).ToList();
        }
        foreach (var path in new[] { prediction, target })
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                throw new LrmInvalidArgumentException($"{path}: not found");
            }
        }
        throw new LrmInvalidArgumentException($"{prediction} and {target}: give two image files or two folders, not one of each");
    }

    public static IReadOnlyList<(string Name, ImageScores Scores)> RunImages(string prediction, string target, string background, string? json, TextWriter output)
    {
        var mode = background.ToLowerInvariant() switch
        {
            "white" => EvaluationBackground.White,
            "black" => EvaluationBackground.Black,
            "none" => EvaluationBackground.None,
            _ => throw new LrmInvalidArgumentException($"--background must be white, black or none, got '{background}'"),
        };
        var pairs = PairImages(prediction, target);
        var scores = new List<(string Name, ImageScores Scores)>();
        foreach (var (name, p, g) in pairs)
        {
            using var predicted = Image.Load(p);
            using var truth = Image.Load(g);
            scores.Add((name, ImageEvaluation.Compare(predicted, truth, mode)));
        }
        output.WriteLine($"{"image",-24} {"PSNR (dB)",10} {"SSIM",8}");
        foreach (var (name, s) in scores)
        {
            output.WriteLine($"{name,-24} {ImageMetrics.Format(s.Psnr, 3),10} {ImageMetrics.Format(s.Ssim, 4),8}");
        }
        var meanPsnr = scores.Average(s => s.Scores.Psnr);
        var meanSsim = scores.Average(s => s.Scores.Ssim);
        output.WriteLine($"{$"mean of {scores.Count}",-24} {ImageMetrics.Format(meanPsnr, 3),10} {ImageMetrics.Format(meanSsim, 4),8}");
        if (json is not null)
        {
            WriteJson(json, writer =>
            {
                writer.WriteString("background", mode.ToString().ToLowerInvariant());
                writer.WriteStartArray("images");
                foreach (var (name, s) in scores)
                {
                    writer.WriteStartObject();
                    writer.WriteString("name", name);
                    WriteNumber(writer, "psnr", s.Psnr);
                    WriteNumber(writer, "ssim", s.Ssim);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                WriteNumber(writer, "mean_psnr", meanPsnr);
                WriteNumber(writer, "mean_ssim", meanSsim);
            });
        }
        return scores;
    }

    private static Command CreateMesh()
    {
        var prediction = new Argument<string>("PRED") { Description = "Predicted mesh (.glb, .ply, .obj)" };
        var target = new Argument<string>("GT") { Description = "Ground-truth mesh (.glb, .ply, .obj)" };
        var samples = new Option<int>("--samples") { Description = "Surface points per mesh", DefaultValueFactory = _ => SurfaceSampler.DefaultCount };
        var seed = new Option<ulong>("--seed") { Description = "Sampling seed", DefaultValueFactory = _ => SurfaceSampler.DefaultSeed };
        var threshold = new Option<double>("--threshold") { Description = "F-score distance threshold", DefaultValueFactory = _ => PointCloudMetrics.DefaultThreshold };
        var normalize = new Option<string>("--normalize") { Description = "none (meshes share a frame, default) or unit-box (each mesh's box centred, longest side 1)", DefaultValueFactory = _ => "none" };
        var json = new Option<string?>("--json") { Description = "Also write the scores as JSON to this file" };
        var command = new Command("mesh", "Chamfer distance and F-score between a predicted and a ground-truth mesh") { prediction, target, samples, seed, threshold, normalize, json };
        command.SetAction(result =>
        {
            RunMesh(result.GetValue(prediction)!, result.GetValue(target)!, result.GetValue(samples), result.GetValue(seed), result.GetValue(threshold),
                result.GetValue(normalize)!, result.GetValue(json), result.InvocationConfiguration.Output);
            return 0;
        });
        return command;
    }

    public static ShapeScores RunMesh(string prediction, string target, int samples, ulong seed, double threshold, string normalize, string? json,
        TextWriter output)
    {
        var mode = normalize.ToLowerInvariant() switch
        {
            "none" => MeshNormalization.None,
            "unit-box" => MeshNormalization.UnitBox,
            _ => throw new LrmInvalidArgumentException($"--normalize must be none or unit-box, got '{normalize}'"),
        };
        if (samples is < 1 or > 10_000_000)
        {
            throw new LrmInvalidArgumentException($"--samples must be in [1, 10000000], got {samples}");
        }
        var predicted = Mesh.Load(prediction);
        var truth = Mesh.Load(target);
        var s = MeshMetrics.Compare(predicted, truth, samples, seed, threshold, mode);
        var t = threshold.ToString("G", CultureInfo.InvariantCulture);
        output.WriteLine($"prediction {prediction}: {predicted.VertexCount} vertices, {predicted.TriangleCount} triangles");
        output.WriteLine($"ground truth {target}: {truth.VertexCount} vertices, {truth.TriangleCount} triangles");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"samples {samples} per mesh, seed {seed}, normalize {normalize}"));
        output.WriteLine($"chamfer      {ImageMetrics.Format(s.Chamfer, 5)}  (accuracy {ImageMetrics.Format(s.Accuracy, 5)}, completeness {ImageMetrics.Format(s.Completeness, 5)})");
        output.WriteLine($"f-score@{t}  {ImageMetrics.Format(s.FScore, 4)}  (precision {ImageMetrics.Format(s.Precision, 4)}, recall {ImageMetrics.Format(s.Recall, 4)})");
        if (json is not null)
        {
            WriteJson(json, writer =>
            {
                writer.WriteString("prediction", prediction);
                writer.WriteString("ground_truth", target);
                writer.WriteNumber("samples", samples);
                writer.WriteNumber("seed", seed);
                writer.WriteString("normalize", normalize);
                writer.WriteNumber("threshold", threshold);
                writer.WriteNumber("chamfer", s.Chamfer);
                writer.WriteNumber("accuracy", s.Accuracy);
                writer.WriteNumber("completeness", s.Completeness);
                writer.WriteNumber("precision", s.Precision);
                writer.WriteNumber("recall", s.Recall);
                writer.WriteNumber("fscore", s.FScore);
            });
        }
        return s;
    }

    private static Command CreateModel()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors) or LrmNative model file", Required = true };
        var data = new Option<string>("--data") { Description = "Held-out dataset in OpenLRM's layout (lrm dataset synth), one folder per object with mesh.ply", Required = true };
        var objects = new Option<int?>("--objects") { Description = "Evaluate only the first N objects (by folder name)" };
        var sourceView = new Option<int>("--source-view") { Description = "View number whose image is the model's input", DefaultValueFactory = _ => 0 };
        var views = new Option<int>("--views") { Description = "Novel views scored per object, evenly chosen among the others", DefaultValueFactory = _ => 8 };
        var resolution = new Option<int>("--resolution") { Description = "Mesh grid resolution R (R³)", DefaultValueFactory = _ => 256 };
        var threshold = new Option<double>("--threshold") { Description = "F-score distance threshold", DefaultValueFactory = _ => PointCloudMetrics.DefaultThreshold };
        var density = new Option<float?>("--density") { Description = "Surface density of the extracted mesh (default: the model's)" };
        var samples = new Option<int>("--samples") { Description = "Surface points per mesh", DefaultValueFactory = _ => SurfaceSampler.DefaultCount };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var json = new Option<string?>("--json") { Description = "Also write per-object and mean scores as JSON to this file" };
        var output = new Option<string?>("--out") { Description = "Write the renders, composited ground truths and meshes here, one folder per object" };
        var minPiece = new Option<double>("--min-piece")
        {
            Description = "Drop mesh pieces with fewer triangles than this share of the largest before scoring, as lrm reconstruct's --min-piece (0 keeps all)",
        };
        var command = new Command("model", "Novel-view PSNR/SSIM and mesh Chamfer/F-score of a model on a held-out dataset (docs/metrics.md)")
        {
            model, data, objects, sourceView, views, resolution, threshold, density, samples, device, json, output, minPiece,
        };
        command.SetAction(result =>
        {
            var options = new ModelEvaluationOptions
            {
                Objects = result.GetValue(objects),
                SourceView = result.GetValue(sourceView),
                Views = result.GetValue(views),
                MeshResolution = result.GetValue(resolution),
                FScoreThreshold = result.GetValue(threshold),
                Density = result.GetValue(density),
                Samples = result.GetValue(samples),
                OutputDirectory = result.GetValue(output),
                MinPieceShare = result.GetValue(minPiece),
            };
            var log = result.InvocationConfiguration.Error;
            using var interruption = Interruption.Listen(log, "stopping after the current object");
            var run = RunModel(result.GetValue(model)!, result.GetValue(data)!, options, ReconstructCommand.ParseDevice(result.GetValue(device)!),
                result.GetValue(json), result.InvocationConfiguration.Output, interruption.Token);
            if (!run.Interrupted)
            {
                return 0; // complete, even if a signal came after the last object
            }
            log.WriteLine(run.Objects.Count == 0
                ? "lrm: cancelled before the first object finished; nothing was scored"
                : $"lrm: cancelled: the means above{(result.GetValue(json) is { } j ? $" and {j}" : "")} cover the {run.Objects.Count} of {run.Requested} object(s) finished");
            return interruption.ExitCode;
        });
        return command;
    }

    /// <summary>
    /// <c>lrm eval model</c>. When <paramref name="cancellation"/> is cancelled it stops after the current object; the table's
    /// mean and the JSON (marked <c>"interrupted": true</c>) then cover the finished objects, and none is written when no
    /// object finished.
    /// </summary>
    public static EvaluationRun RunModel(string modelPath, string data, ModelEvaluationOptions options, Device device, string? json, TextWriter output,
        CancellationToken cancellation = default)
    {
        options.Validate();
        if (!File.Exists(modelPath) && !Directory.Exists(modelPath))
        {
            throw new LrmFormatException($"{modelPath}: model not found (a folder with config.json + model.safetensors, or an LrmNative model file)");
        }
        if (!Directory.Exists(data))
        {
            throw new LrmFormatException($"{data}: dataset folder not found (lrm dataset synth writes one)");
        }
        if (options.OutputDirectory is { } folder)
        {
            // Checked before the model loads, not found out after the first object has been reconstructed.
            ReconstructCommand.EnsureWritableFolder(folder);
        }
        using var lrm = Reconstructor.Load(modelPath, device);
        var dataset = ModelEvaluation.OpenDataset(data, lrm);
        output.WriteLine($"model {modelPath} on {lrm.Device}: {lrm.Description}");
        var count = Math.Min(dataset.Objects.Count, options.Objects ?? int.MaxValue);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"data {data}: {count} of {dataset.Objects.Count} object(s); source view {options.SourceView}, up to {options.Views} novel views on white, mesh {options.MeshResolution}³, F-score τ = {options.FScoreThreshold}"));
        foreach (var problem in dataset.Problems)
        {
            output.WriteLine($"skipped: {problem}");
        }
        output.WriteLine($"{"object",-24} {"views",5} {"PSNR (dB)",10} {"SSIM",8} {"chamfer",10} {"f-score",8}");
        var results = ModelEvaluation.Run(lrm, dataset, options, r =>
        {
            output.WriteLine($"{r.Name,-24} {r.Views.Count,5} {ImageMetrics.Format(r.Psnr, 3),10} {ImageMetrics.Format(r.Ssim, 4),8} "
                + $"{(r.Shape is { } s ? ImageMetrics.Format(s.Chamfer, 5) : "-"),10} {(r.Shape is { } t ? ImageMetrics.Format(t.FScore, 4) : "-"),8}"
                + (r.Note is null ? "" : $"  ({r.Note})"));
        }, cancellation);
        var interrupted = results.Count < count;
        if (results.Count == 0)
        {
            return new EvaluationRun(results, count);
        }
        var meanPsnr = results.Average(r => r.Psnr);
        var meanSsim = results.Average(r => r.Ssim);
        var shapes = results.Where(r => r.Shape is not null).Select(r => r.Shape!.Value).ToList();
        var meanChamfer = shapes.Count > 0 ? shapes.Average(s => s.Chamfer) : double.NaN;
        var meanFScore = shapes.Count > 0 ? shapes.Average(s => s.FScore) : double.NaN;
        output.WriteLine($"{$"mean of {results.Count}",-24} {"",5} {ImageMetrics.Format(meanPsnr, 3),10} {ImageMetrics.Format(meanSsim, 4),8} "
            + $"{(shapes.Count > 0 ? ImageMetrics.Format(meanChamfer, 5) : "-"),10} {(shapes.Count > 0 ? ImageMetrics.Format(meanFScore, 4) : "-"),8}"
            + (shapes.Count < results.Count ? $"  (mesh over {shapes.Count} object(s) with {DatasetLayout.MeshFile})" : "")
            + (interrupted ? $"  (interrupted: {results.Count} of {count} objects)" : ""));
        if (json is not null)
        {
            WriteJson(json, writer =>
            {
                writer.WriteString("model", modelPath);
                writer.WriteString("data", data);
                writer.WriteNumber("source_view", options.SourceView);
                writer.WriteNumber("views", options.Views);
                writer.WriteString("background", "white");
                writer.WriteNumber("mesh_resolution", options.MeshResolution);
                if (options.MinPieceShare > 0)
                {
                    writer.WriteNumber("min_piece", options.MinPieceShare);
                }
                writer.WriteNumber("threshold", options.FScoreThreshold);
                writer.WriteNumber("samples", options.Samples);
                if (interrupted)
                {
                    writer.WriteBoolean("interrupted", true);
                    writer.WriteNumber("objects_requested", count);
                }
                writer.WriteStartArray("objects");
                foreach (var r in results)
                {
                    writer.WriteStartObject();
                    writer.WriteString("name", r.Name);
                    WriteNumber(writer, "psnr", r.Psnr);
                    WriteNumber(writer, "ssim", r.Ssim);
                    writer.WriteStartArray("views");
                    foreach (var v in r.Views)
                    {
                        writer.WriteStartObject();
                        writer.WriteNumber("view", v.View);
                        WriteNumber(writer, "psnr", v.Psnr);
                        WriteNumber(writer, "ssim", v.Ssim);
                        writer.WriteEndObject();
                    }
                    writer.WriteEndArray();
                    if (r.Shape is { } s)
                    {
                        WriteNumber(writer, "chamfer", s.Chamfer);
                        WriteNumber(writer, "fscore", s.FScore);
                        WriteNumber(writer, "precision", s.Precision);
                        WriteNumber(writer, "recall", s.Recall);
                    }
                    if (r.Note is not null)
                    {
                        writer.WriteString("note", r.Note);
                    }
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteNumber("object_count", results.Count);
                writer.WriteNumber("mesh_object_count", shapes.Count);
                WriteNumber(writer, "mean_psnr", meanPsnr);
                WriteNumber(writer, "mean_ssim", meanSsim);
                if (shapes.Count > 0)
                {
                    WriteNumber(writer, "mean_chamfer", meanChamfer);
                    WriteNumber(writer, "mean_fscore", meanFScore);
                }
            });
        }
        return new EvaluationRun(results, count);
    }

    /// <summary>What <see cref="RunModel"/> scored: <see cref="Objects"/> of the <see cref="Requested"/>; fewer when it was cancelled.</summary>
    public sealed record EvaluationRun(IReadOnlyList<ObjectEvaluation> Objects, int Requested)
    {
        public bool Interrupted => Objects.Count < Requested;
    }

    // JSON has no infinity: +∞ is written as the string "inf".
    private static void WriteNumber(Utf8JsonWriter writer, string name, double value)
    {
        if (double.IsFinite(value))
        {
            writer.WriteNumber(name, value);
        }
        else
        {
            writer.WriteString(name, ImageMetrics.Format(value));
        }
    }

    private static void WriteJson(string path, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        buffer.Write(Encoding.UTF8.GetBytes("\n"));
        AtomicFile.Write(path, stream => stream.Write(buffer.ToArray()));
    }
}
