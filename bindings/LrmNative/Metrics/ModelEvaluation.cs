using System.Globalization;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Metrics;

/// <summary>Settings of <see cref="ModelEvaluation.Run"/> (<c>lrm eval model</c>); the protocol is docs/metrics.md.</summary>
internal sealed record ModelEvaluationOptions
{
    /// <summary>Evaluate only the first N objects (sorted by folder name); null: all.</summary>
    public int? Objects { get; init; }

    /// <summary>The view number (NNN) whose image is the model's input.</summary>
    public int SourceView { get; init; }

    /// <summary>Novel views scored per object, chosen evenly among the object's other views.</summary>
    public int Views { get; init; } = 8;

    /// <summary>Mesh grid resolution R (R³ points over [−1, 1]³).</summary>
    public int MeshResolution { get; init; } = 256;

    /// <summary>Surface density of the extracted mesh; null: the model's.</summary>
    public float? Density { get; init; }

    /// <summary>Drop mesh pieces with fewer triangles than this share of the largest before scoring (0: keep all; <see cref="Mesh.WithoutSmallPieces"/>).</summary>
    public double MinPieceShare { get; init; }

    /// <summary>F-score distance threshold τ.</summary>
    public double FScoreThreshold { get; init; } = PointCloudMetrics.DefaultThreshold;

    /// <summary>Surface points sampled per mesh.</summary>
    public int Samples { get; init; } = SurfaceSampler.DefaultCount;

    /// <summary>Surface sampling seed.</summary>
    public ulong Seed { get; init; } = SurfaceSampler.DefaultSeed;

    /// <summary>Leave out the mesh metrics (training's periodic validation scores renders only).</summary>
    public bool SkipMesh { get; init; }

    /// <summary>
    /// When set, the renders, composited ground truths and extracted meshes are written here, one folder per object (an
    /// earlier run's NNN_render.png, NNN_gt.png and mesh.ply in it are removed first).
    /// </summary>
    public string? OutputDirectory { get; init; }

    public void Validate()
    {
        static void Require(bool condition, string message)
        {
            if (!condition)
            {
                throw new LrmInvalidArgumentException(message);
            }
        }
        Require(Objects is null or >= 1, $"--objects must be >= 1, got {Objects}");
        Require(SourceView >= 0, $"--source-view must be a view number >= 0, got {SourceView}");
        Require(Views >= 1, $"--views must be >= 1, got {Views}");
        Require(MeshResolution is >= 2 and <= 1024, $"--resolution must be in 2..1024, got {MeshResolution}");
        Require(FScoreThreshold > 0 && double.IsFinite(FScoreThreshold), $"--threshold must be a positive distance, got {FScoreThreshold.ToString(CultureInfo.InvariantCulture)}");
        Require(Samples is >= 1 and <= 10_000_000, $"--samples must be in [1, 10000000], got {Samples}");
        Require(Density is null || float.IsFinite(Density.Value), $"--density must be finite, got {Density}");
        Require(MinPieceShare is >= 0 and <= 1, $"--min-piece must be a share of the largest piece in [0, 1], got {MinPieceShare.ToString(CultureInfo.InvariantCulture)}");
    }
}

/// <summary>PSNR and SSIM of one novel view.</summary>
internal readonly record struct ViewScore(int View, double Psnr, double Ssim);

/// <summary>One object's scores: per view, their means, and the mesh's (null when skipped; <see cref="Note"/> says why).</summary>
internal sealed record ObjectEvaluation(string Name, int SourceView, IReadOnlyList<ViewScore> Views, ShapeScores? Shape, string? Note)
{
    /// <summary>Mean PSNR over the views (dB; +∞ when every view is exact).</summary>
    public double Psnr => Views.Average(v => v.Psnr);

    /// <summary>Mean SSIM over the views.</summary>
    public double Ssim => Views.Average(v => v.Ssim);
}

/// <summary>
/// A model on a held-out multi-view dataset (docs/metrics.md, "lrm eval model"): per object the source view's image is
/// given to the model exactly as training gives it (<see cref="MultiViewDataset"/>: the whole image composited on white,
/// resized to the encoder's input, conditioned on the normalised source camera with the object's intrinsics); the
/// cameras are normalised by <see cref="CameraNormalization"/>; novel views are rendered on white at the dataset's image
/// size and scored against the ground truth composited on white; the mesh is compared with <c>mesh.ply</c> moved into
/// the normalised frame by the same transform.
/// </summary>
internal static class ModelEvaluation
{
    /// <summary>The background renders and ground truths are composited on: white (the model renders on white).</summary>
    public const float Background = 1f;

    /// <summary>Opens the dataset the way the evaluation reads it (objects with at least 2 views; bad objects skipped and reported).</summary>
    public static MultiViewDataset OpenDataset(string data, Reconstructor model) =>
        MultiViewDataset.Open(data, new DataOptions
        {
            ViewsPerSample = 2,
            SourceImageSize = model.InputResolution,
            CameraInputDim = model.Model.Config.CameraInputDim,
            BadData = BadDataPolicy.Skip,
        });

    /// <summary>
    /// The <paramref name="count"/> target views: the object's views other than the source, evenly spaced in view order
    /// (the i-th of k is the ⌊i·m/k⌋-th of the m others); fewer when the object has fewer.
    /// </summary>
    public static int[] ChooseViews(IReadOnlyList<int> views, int source, int count)
    {
        var others = views.Where(v => v != source).ToArray();
        var k = Math.Min(count, others.Length);
        return [.. Enumerable.Range(0, k).Select(i => others[(int)((long)i * others.Length / k)])];
    }

    /// <summary>
    /// Evaluates every object (or the first <see cref="ModelEvaluationOptions.Objects"/>); calls <paramref name="done"/> after
    /// each. When <paramref name="cancellation"/> is cancelled the run stops before the next object and returns the objects
    /// finished so far (the caller tells a complete run from a stopped one by the count or the token).
    /// </summary>
    public static IReadOnlyList<ObjectEvaluation> Run(Reconstructor model, MultiViewDataset dataset, ModelEvaluationOptions options,
        Action<ObjectEvaluation>? done = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(dataset);
        options.Validate();
        var objects = dataset.Objects.Take(options.Objects ?? int.MaxValue).ToList();
        var results = new List<ObjectEvaluation>();
        foreach (var entry in objects)
        {
            if (cancellation.IsCancellationRequested)
            {
                break;
            }
            var result = EvaluateObject(model, entry, options);
            results.Add(result);
            done?.Invoke(result);
        }
        return results;
    }

    private static ObjectEvaluation EvaluateObject(Reconstructor model, DatasetObject entry, ModelEvaluationOptions options)
    {
        var sourceIndex = IndexOf(entry.ViewIndices, options.SourceView);
        if (sourceIndex < 0)
        {
            throw new LrmFormatException($"{entry.ImagePath(options.SourceView)}: object '{entry.Name}' has no source view {options.SourceView} "
                + $"(its views: {string.Join(", ", entry.ViewIndices.Take(8))}{(entry.ViewIndices.Count > 8 ? ", …" : "")})");
        }
        var targets = ChooseViews(entry.ViewIndices, options.SourceView, options.Views);
        var poses = new List<double[]> { entry.Poses[sourceIndex] };
        poses.AddRange(targets.Select(v => entry.Poses[IndexOf(entry.ViewIndices, v)]));
        var normalized = CameraNormalization.Normalize(poses);

        using var sourceImage = LoadImage(entry, options.SourceView);
        int width = entry.ImageSize.Width, height = entry.ImageSize.Height;
        var k = entry.NormalizedIntrinsics;
        if (Math.Abs(k.Fx - k.Fy) > 1e-6 * Math.Max(Math.Abs(k.Fx), Math.Abs(k.Fy)))
        {
            throw new LrmUnsupportedException($"{Path.Combine(entry.Directory, DatasetLayout.IntrinsicsFile)}: the focal lengths normalised by the image size differ "
                + $"(fx/W = {k.Fx.ToString("G6", CultureInfo.InvariantCulture)}, fy/H = {k.Fy.ToString("G6", CultureInfo.InvariantCulture)}); rendering needs one focal length");
        }

        // The encoder input and its camera exactly as MultiViewDataset builds a training sample's source (background white).
        var encoderSize = model.InputResolution;
        using var input = Tensor.Empty([1, 3, encoderSize, encoderSize]);
        using (var planar = MultiViewDataset.Composite(sourceImage, Background, withAlpha: false))
        {
            MultiViewDataset.ResizeSourceRgb(model.HostBackend, planar, encoderSize, input.AsSpan<float>());
        }
        var feature = new float[model.Model.Config.CameraInputDim];
        MultiViewDataset.SourceCameraValues(feature, normalized[0], k);
        using var reconstruction = model.ReconstructPrepared(input, feature, entry.ImagePath(options.SourceView));

        string? outFolder = null;
        if (options.OutputDirectory is { } root)
        {
            outFolder = Path.Combine(root, entry.Name);
            PrepareOutputFolder(outFolder, entry.Name);
        }
        var scores = new List<ViewScore>();
        for (var t = 0; t < targets.Length; t++)
        {
            var pose = normalized[t + 1].Select(v => (float)v).ToArray();
            var camera = Camera.FromCameraToWorld(pose, (float)k.Fx, (float)k.Cx, (float)k.Cy);
            using var view = reconstruction.Render(camera, width, height);
            using var truth = LoadImage(entry, targets[t]);
            var s = ImageEvaluation.Compare(view.Color, truth, EvaluationBackground.White);
            scores.Add(new ViewScore(targets[t], s.Psnr, s.Ssim));
            if (outFolder is not null)
            {
                view.Color.SavePng(Path.Combine(outFolder, DatasetLayout.ViewFileName(targets[t], "_render.png")));
                var composite = ImageEvaluation.CompositeRgb(truth, EvaluationBackground.White);
                using var gt = Image.FromRgb(composite, width, height, truth.Source);
                gt.SavePng(Path.Combine(outFolder, DatasetLayout.ViewFileName(targets[t], "_gt.png")));
            }
        }

        ShapeScores? shape = null;
        string? note = null;
        var meshPath = Path.Combine(entry.Directory, DatasetLayout.MeshFile);
        if (targets.Length == 0)
        {
            note = "no views besides the source";
        }
        if (options.SkipMesh)
        {
            note = Join(note, "mesh metrics not asked for");
        }
        else if (!File.Exists(meshPath))
        {
            note = Join(note, $"no {DatasetLayout.MeshFile}: mesh metrics skipped");
        }
        else
        {
            var truth = Transformed(Mesh.Load(meshPath), CameraNormalization.Transform(entry.Poses[sourceIndex]));
            // Scored on the dense grid (every point evaluated), whatever the reconstructor's default.
            var predicted = reconstruction.ExtractMesh(options.MeshResolution, options.Density, coarseToFine: false).WithoutSmallPieces(options.MinPieceShare);
            if (outFolder is not null && !predicted.IsEmpty)
            {
                predicted.SavePly(Path.Combine(outFolder, "mesh.ply"));
            }
            if (predicted.IsEmpty)
            {
                // No surface at this density: nothing of the prediction is near the truth.
                shape = new ShapeScores(double.PositiveInfinity, double.PositiveInfinity, double.PositiveInfinity, 0, 0, 0, options.FScoreThreshold);
                note = Join(note, "extracted mesh is empty: no surface at this density");
            }
            else
            {
                shape = MeshMetrics.Compare(predicted, truth, options.Samples, options.Seed, options.FScoreThreshold);
            }
        }
        if (scores.Count == 0)
        {
            throw new LrmFormatException($"{entry.Directory}: object '{entry.Name}' has no view besides the source view {options.SourceView} to score");
        }
        return new ObjectEvaluation(entry.Name, options.SourceView, scores, shape, note);
    }

    /// <summary>True for the files <see cref="Run"/> writes into an object's output folder: NNN_render.png, NNN_gt.png, mesh.ply.</summary>
    public static bool IsOutputFile(string name)
    {
        if (name == DatasetLayout.MeshFile)
        {
            return true;
        }
        var digits = name.TakeWhile(char.IsAsciiDigit).Count();
        var rest = name[digits..];
        return digits >= 3 && rest is "_render.png" or "_gt.png";
    }

    // Creates an object's output folder, or empties it of an earlier run's renders and mesh: views chosen by other
    // options, or a mesh where this run extracts none, would pass for this run's. Other files stay.
    private static void PrepareOutputFolder(string folder, string name)
    {
        try
        {
            Directory.CreateDirectory(folder);
            foreach (var file in Directory.GetFiles(folder).Where(f => IsOutputFile(Path.GetFileName(f))))
            {
                File.Delete(file);
            }
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw new LrmFormatException($"{folder}: cannot prepare the output folder of object '{name}': {error.Message}");
        }
    }

    /// <summary>A mesh with every vertex (and normal) moved by the rigid 4×4 row-major <paramref name="transform"/>.</summary>
    public static Mesh Transformed(Mesh mesh, double[] transform)
    {
        var positions = mesh.Positions.ToArray();
        var m = transform;
        for (var v = 0; v < positions.Length; v += 3)
        {
            double x = positions[v], y = positions[v + 1], z = positions[v + 2];
            positions[v] = (float)(m[0] * x + m[1] * y + m[2] * z + m[3]);
            positions[v + 1] = (float)(m[4] * x + m[5] * y + m[6] * z + m[7]);
            positions[v + 2] = (float)(m[8] * x + m[9] * y + m[10] * z + m[11]);
        }
        return new Mesh(positions, mesh.Triangles, mesh.HasColors ? mesh.Colors : default);
    }

    private static string Join(string? first, string second) => first is null ? second : first + "; " + second;

    private static int IndexOf(IReadOnlyList<int> views, int view)
    {
        for (var i = 0; i < views.Count; i++)
        {
            if (views[i] == view)
            {
                return i;
            }
        }
        return -1;
    }

    // An object's image as training reads it, checked to have the object's size; bad data stops the evaluation naming the file.
    private static Image LoadImage(DatasetObject entry, int view)
    {
        try
        {
            return entry.LoadImage(view);
        }
        catch (BadDataException bad)
        {
            throw new LrmFormatException(bad.Problem.ToString());
        }
    }
}
