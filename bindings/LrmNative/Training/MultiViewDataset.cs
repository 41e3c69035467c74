using LrmNative.Backends;
using LrmNative.Data;

namespace LrmNative.Training;

/// <summary>What to do with an object whose files are bad (missing view, non-rigid pose, wrong image size, NaN).</summary>
internal enum BadDataPolicy
{
    /// <summary>Stop with an <see cref="LrmFormatException"/> naming the object and file.</summary>
    Fatal,

    /// <summary>Report it (<see cref="MultiViewDataset.Problems"/>, <see cref="MultiViewLoader.Problems"/>) and leave the object out.</summary>
    Skip,
}

/// <summary>One bad object: which, which file, what is wrong.</summary>
/// <param name="Object">The object folder's name.</param>
/// <param name="File">The offending file (or folder).</param>
/// <param name="Message">What is wrong and what was expected.</param>
internal sealed record DataProblem(string Object, string File, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}: {Message} (object '{Object}')";
}

/// <summary>How samples are drawn; defaults follow OpenLRM's small model (V = 4, renders 64–192 px, 64² patch).</summary>
internal sealed record DataOptions
{
    /// <summary>Most occupancy points per sample (one training query of the NeRF each; they are not chunked).</summary>
    public const int MaxOccupancyPoints = 65536;

    /// <summary>Views per sample, the source included (LRM: 4 = source + 3; the source view is supervised too).</summary>
    public int ViewsPerSample { get; init; } = 4;

    /// <summary>Side of the source image handed to the encoder (the model's encoder_image_size).</summary>
    public int SourceImageSize { get; init; } = 224;

    /// <summary>Width of the source camera feature: 16 (OpenLRM: 3×4 + fx, fy, cx, cy) or 20 (the paper: 4×4 + 4).</summary>
    public int CameraInputDim { get; init; } = Model.ModelConfig.CameraRawDim;

    /// <summary>Smallest random render resolution (LRM: 128; OpenLRM small: 64).</summary>
    public int RenderMinResolution { get; init; } = 64;

    /// <summary>Largest random render resolution, included (LRM: 384; OpenLRM small: 192).</summary>
    public int RenderMaxResolution { get; init; } = 192;

    /// <summary>Side of the supervised square patch (LRM: 128; OpenLRM small: 64).</summary>
    public int PatchSize { get; init; } = 64;

    /// <summary>Background colours a sample's views are composited on, one drawn per sample (LRM: 0, 0.5, 1).</summary>
    public IReadOnlyList<float> Backgrounds { get; init; } = [0f, 0.5f, 1f];

    /// <summary>
    /// Background of the source image the encoder reads: null (default) the sample's drawn background, as its targets;
    /// a value in [0, 1] composites the source on that colour instead (1: white, as <c>lrm reconstruct</c> does with
    /// a photo), so the background's variation reaches only the supervised renders, not the conditioning.
    /// </summary>
    public float? SourceBackground { get; init; }

    /// <summary>
    /// The view (by its file number, e.g. 0 for <c>rgba/000.png</c>) every sample is conditioned on: null (default) a
    /// random view per sample, as in LRM; a number fixes the source to that view (the other V − 1 views stay random), for
    /// data with a designated input view such as <c>lrm dataset synth --source-distance</c>'s view 000. An object
    /// without that view is bad data.
    /// </summary>
    public int? SourceView { get; init; }

    /// <summary>
    /// Occupancy query points per sample (0: none, default): points near the object's <c>mesh.ply</c> and uniform in the
    /// box, labelled inside/outside (<see cref="MeshOccupancy"/>), for the occupancy loss. Needs a closed mesh per object
    /// in the world frame of its poses (<c>lrm dataset synth</c> writes one); a missing or open mesh is bad data.
    /// </summary>
    public int OccupancyPoints { get; init; }

    /// <summary>Bad objects: fatal (default) or skipped with a report.</summary>
    public BadDataPolicy BadData { get; init; } = BadDataPolicy.Fatal;

    /// <summary>Largest |RᵀR − I|, |det R − 1| or bottom-row deviation a pose may have to count as rigid (default: the one <c>lrm dataset check</c> uses).</summary>
    public double RigidTolerance { get; init; } = DatasetLayout.RigidTolerance;

    /// <summary>Checks the settings; the message names the setting.</summary>
    public void Validate()
    {
        static void Require(bool condition, string message)
        {
            if (!condition)
            {
                throw new LrmInvalidArgumentException("data: " + message);
            }
        }
        Require(ViewsPerSample >= 1, $"views per sample must be >= 1, got {ViewsPerSample}");
        Require(SourceImageSize >= 1, $"source image size must be >= 1, got {SourceImageSize}");
        Require(CameraInputDim is Model.ModelConfig.CameraRawDim or Model.ModelConfig.CameraRawDimFull, $"camera input width must be 16 or 20, got {CameraInputDim}");
        Require(PatchSize >= 1, $"patch size must be >= 1, got {PatchSize}");
        Require(RenderMinResolution >= PatchSize, $"the smallest render resolution ({RenderMinResolution}) must hold the {PatchSize}² patch");
        Require(RenderMaxResolution >= RenderMinResolution, $"render resolution range [{RenderMinResolution}, {RenderMaxResolution}] is empty");
        Require(Backgrounds is { Count: > 0 } && Backgrounds.All(b => b is >= 0 and <= 1), "backgrounds must be one or more values in [0, 1]");
        Require(RigidTolerance > 0, $"rigid tolerance must be positive, got {RigidTolerance}");
        Require(SourceBackground is null or (>= 0 and <= 1), $"source background must be in [0, 1], got {SourceBackground}");
        Require(SourceView is null or (>= 0 and <= 999), $"source view must be a view number in [0, 999], got {SourceView}");
        Require(OccupancyPoints is >= 0 and <= MaxOccupancyPoints, $"occupancy points per sample must be in [0, {MaxOccupancyPoints}], got {OccupancyPoints}");
    }
}

/// <summary>
/// An object's camera intrinsics in pixels, and the image size they were given for (null: any, taken from the images);
/// read by <see cref="DatasetLayout.ReadIntrinsics"/>.
/// </summary>
internal readonly record struct PixelIntrinsics(double Fx, double Fy, double Cx, double Cy, int? Width, int? Height);

/// <summary>
/// One object folder that passed the checks of the shared layout reader (<see cref="ObjectFolder.Read"/>) and has
/// enough views: its views (sorted by index), their raw poses, the intrinsics and the one size of its images.
/// </summary>
internal sealed class DatasetObject
{
    internal DatasetObject(string name, string directory, int[] views, double[][] poses, PixelIntrinsics intrinsics, ObjectImageSize imageSize)
    {
        Name = name;
        Directory = directory;
        ViewIndices = views;
        Poses = poses;
        Intrinsics = intrinsics;
        ImageSize = imageSize;
    }

    /// <summary>Folder name (the object id).</summary>
    public string Name { get; }

    /// <summary>Folder path.</summary>
    public string Directory { get; }

    /// <summary>File numbers NNN of the views, ascending.</summary>
    public IReadOnlyList<int> ViewIndices { get; }

    /// <summary>Camera-to-world 4×4 row-major per view (as stored, before normalisation).</summary>
    public IReadOnlyList<double[]> Poses { get; }

    /// <summary>The object's intrinsics.</summary>
    public PixelIntrinsics Intrinsics { get; }

    /// <summary>The size of every image of the object, found when the dataset opened; the intrinsics are normalised by it.</summary>
    public ObjectImageSize ImageSize { get; }

    /// <summary>The intrinsics normalised by the object's image size: (fx/W, fy/H, cx/W, cy/H).</summary>
    public (double Fx, double Fy, double Cx, double Cy) NormalizedIntrinsics =>
        (Intrinsics.Fx / ImageSize.Width, Intrinsics.Fy / ImageSize.Height, Intrinsics.Cx / ImageSize.Width, Intrinsics.Cy / ImageSize.Height);

    /// <summary>Path of the image of view number <paramref name="index"/> (rgba/NNN.png).</summary>
    public string ImagePath(int index) => DatasetLayout.ImagePath(Directory, index);

    /// <summary>Path of the pose of view number <paramref name="index"/> (pose/NNN.npy).</summary>
    public string PosePath(int index) => DatasetLayout.PosePath(Directory, index);

    /// <summary>
    /// The image of view number <paramref name="index"/> as stored, checked again to have the object's size (the file may
    /// have changed since the dataset opened). The caller owns it. Throws <see cref="BadDataException"/> naming the file.
    /// </summary>
    public Image LoadImage(int index)
    {
        var path = ImagePath(index);
        Image image;
        try
        {
            // The stored pixels: a view's pose describes the camera that made them (OpenLRM reads views with PIL, which
            // leaves EXIF orientation alone); the reconstruct path, which takes photos, turns images upright.
            image = Image.Load(path, applyExifOrientation: false);
        }
        catch (LrmFormatException error)
        {
            throw new BadDataException(new DataProblem(Name, path, $"unreadable image: {error.Message}"));
        }
        if (DatasetLayout.ImageSizeProblem(image.Width, image.Height, ImageSize) is { } problem)
        {
            image.Dispose();
            throw new BadDataException(new DataProblem(Name, path, problem));
        }
        return image;
    }
}

/// <summary>Where one view's supervised patch lies in the full render: resolution, top-left corner, side.</summary>
/// <param name="Resolution">Side r of the full (virtual) render, drawn per view.</param>
/// <param name="X">First column of the patch.</param>
/// <param name="Y">First row of the patch.</param>
/// <param name="Size">Side of the patch.</param>
internal readonly record struct RenderWindow(int Resolution, int X, int Y, int Size);

/// <summary>
/// A multi-view training set in OpenLRM's layout: one folder per object under the root (or the root itself when it is
/// an object folder), each with <c>rgba/NNN.png</c> (straight alpha), <c>pose/NNN.npy</c> (4×4 or 3×4
/// camera-to-world, OpenGL convention) and <c>intrinsics.npy</c> — OpenLRM's (3, 2) [[fx, fy], [cx, cy], [width,
/// height]] in pixels, or a (3, 3) pixel matrix K (then normalised by the object's image size). The files are read by
/// the layout reader <c>lrm dataset check</c> uses too (<see cref="DatasetLayout"/>, <see cref="ObjectFolder"/>), so both
/// accept and refuse the same data. Opening checks every object's files, poses, intrinsics and image sizes (from the
/// images' headers); images are decoded when a sample is loaded. Bad objects follow <see cref="DataOptions.BadData"/>.
/// </summary>
internal sealed class MultiViewDataset
{
    private readonly List<DataProblem> _problems;

    private MultiViewDataset(string root, DataOptions options, List<DatasetObject> objects, List<DataProblem> problems)
    {
        Root = root;
        Options = options;
        Objects = objects;
        _problems = problems;
    }

    /// <summary>The dataset folder.</summary>
    public string Root { get; }

    /// <summary>The sampling settings.</summary>
    public DataOptions Options { get; }

    /// <summary>Objects that passed the checks, sorted by folder name (ordinal).</summary>
    public IReadOnlyList<DatasetObject> Objects { get; }

    /// <summary>Objects left out when the folder was opened (policy <see cref="BadDataPolicy.Skip"/>).</summary>
    public IReadOnlyList<DataProblem> Problems => _problems;

    /// <summary>Scans and checks <paramref name="root"/>; see the class remarks.</summary>
    public static MultiViewDataset Open(string root, DataOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        options ??= new DataOptions();
        options.Validate();
        var objects = new List<DatasetObject>();
        var problems = new List<DataProblem>();
        foreach (var directory in DatasetLayout.ObjectFolders(root))
        {
            try
            {
                objects.Add(ScanObject(directory, options));
            }
            catch (BadDataException bad)
            {
                if (options.BadData == BadDataPolicy.Fatal)
                {
                    throw new LrmFormatException($"bad training data: {bad.Problem} (train with --skip-bad-data to leave such objects out)");
                }
                problems.Add(bad.Problem);
            }
        }
        if (objects.Count == 0)
        {
            throw new LrmFormatException(problems.Count == 0
                ? $"{root}: no object folders (expected one folder per object with rgba/NNN.png, pose/NNN.npy and intrinsics.npy)"
                : $"{root}: no usable objects; all {problems.Count} were bad, the first: {problems[0]}");
        }
        return new MultiViewDataset(root, options, objects, problems);
    }

    // The shared layout reader finds every problem of the folder; the first one (or too few views) makes it bad data.
    private static DatasetObject ScanObject(string directory, DataOptions options)
    {
        var folder = ObjectFolder.Read(directory, options.RigidTolerance);
        if (folder.Problems.Count > 0)
        {
            throw new BadDataException(folder.Problems[0]);
        }
        if (folder.Views.Count < options.ViewsPerSample)
        {
            throw new BadDataException(new DataProblem(folder.Name, Path.Combine(directory, DatasetLayout.ImagesFolder),
                $"has {folder.Views.Count} view(s); a sample needs {options.ViewsPerSample}"));
        }
        if (options.SourceView is { } source && !folder.Views.Contains(source))
        {
            throw new BadDataException(new DataProblem(folder.Name, DatasetLayout.ImagePath(directory, source),
                $"is missing: the source view {source} (--source-view) must exist in every object"));
        }
        return new DatasetObject(folder.Name, folder.Directory, [.. folder.Views], [.. folder.Poses.Select(p => p!)], folder.Intrinsics!.Value,
            folder.ImageSize!.Value);
    }

    /// <summary>
    /// Draws and loads one sample of object <paramref name="objectIndex"/> into row <paramref name="row"/> of
    /// <paramref name="batch"/>: V distinct views (the first is the source), one background, a render window per view,
    /// all from <paramref name="random"/> before any file is read. Throws <see cref="BadDataException"/> for a bad image
    /// (<see cref="DatasetObject.LoadImage"/>).
    /// </summary>
    internal void LoadInto(TrainingBatch batch, int row, int objectIndex, TrainingRandom random, IBackend backend)
    {
        var entry = Objects[objectIndex];
        var options = Options;
        var viewCount = options.ViewsPerSample;

        // Every random draw first: the sample depends only on (seed, position), not on the files.
        var order = Enumerable.Range(0, entry.ViewIndices.Count).ToArray();
        var drawn = 0;
        if (options.SourceView is { } sourceView)
        {
            // The fixed source first (the scan checked it exists); the rest drawn from the other views.
            var at = 0;
            while (entry.ViewIndices[at] != sourceView)
            {
                at++;
            }
            (order[0], order[at]) = (order[at], order[0]);
            drawn = 1;
        }
        for (var i = drawn; i < viewCount; i++)
        {
            var j = i + random.Next(order.Length - i);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var chosen = order[..viewCount];
        var background = options.Backgrounds[random.Next(options.Backgrounds.Count)];
        var windows = new RenderWindow[viewCount];
        for (var v = 0; v < viewCount; v++)
        {
            var resolution = random.NextInclusive(options.RenderMinResolution, options.RenderMaxResolution);
            var x = random.NextInclusive(0, resolution - options.PatchSize);
            var y = random.NextInclusive(0, resolution - options.PatchSize);
            windows[v] = new RenderWindow(resolution, x, y, options.PatchSize);
        }

        var normalized = CameraNormalization.Normalize([.. chosen.Select(v => entry.Poses[v])]);
        var intrinsics = entry.NormalizedIntrinsics;
        batch.Objects[row] = entry.Name;
        batch.Backgrounds[row] = background;
        for (var v = 0; v < viewCount; v++)
        {
            var viewNumber = entry.ViewIndices[chosen[v]];
            using var image = entry.LoadImage(viewNumber);
            using var planar = Composite(image, background);
            if (v == 0)
            {
                // The encoder's input: on the source background when one is set, else on the sample's.
                using var source = Options.SourceBackground is { } sourceBackground && sourceBackground != background ? Composite(image, sourceBackground) : null;
                ResizeSource(batch, row, source ?? planar, backend);
            }
            CropTarget(batch, row, v, planar, windows[v], backend);
            WriteCameras(batch, row, v, normalized[v], intrinsics, windows[v]);
            batch.ViewNumbers[row * viewCount + v] = viewNumber;
            batch.Windows[row * viewCount + v] = windows[v];
            if (v == 0)
            {
                WriteSourceCamera(batch, row, normalized[0], intrinsics, options.CameraInputDim);
            }
        }
        if (options.OccupancyPoints > 0)
        {
            // Drawn after the views' draws, from a stream of their own, so the rest of the sample is the same with or without them.
            var occupancyRandom = new TrainingRandom(random.NextUInt64());
            var occupancy = LoadOccupancy(entry, CameraNormalization.Transform(entry.Poses[chosen[0]]));
            var n = options.OccupancyPoints;
            occupancy.Sample(occupancyRandom, batch.OccupancyPoints!.AsSpan<float>().Slice(row * 3 * n, 3 * n), batch.OccupancyLabels!.AsSpan<float>().Slice(row * n, n));
        }
    }

    // The object's ground-truth mesh moved into the normalised frame of this sample (the source camera canonical), as an
    // occupancy; a missing, unreadable or open mesh is bad data naming the file.
    private static MeshOccupancy LoadOccupancy(DatasetObject entry, double[] transform)
    {
        var path = Path.Combine(entry.Directory, DatasetLayout.MeshFile);
        if (!File.Exists(path))
        {
            throw new BadDataException(new DataProblem(entry.Name, path, "missing: occupancy supervision needs each object's closed ground-truth mesh"));
        }
        try
        {
            return new MeshOccupancy(Metrics.ModelEvaluation.Transformed(Mesh.Load(path), transform), path);
        }
        catch (LrmException error)
        {
            throw new BadDataException(new DataProblem(entry.Name, path, error.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? error.Message[(path.Length + 2)..] : error.Message));
        }
    }

    /// <summary>
    /// The image as planar (4, H, W): RGB composited over the background, then alpha; (3, H, W) without the alpha plane
    /// when <paramref name="withAlpha"/> is false. The caller owns it.
    /// </summary>
    internal static Tensor Composite(Image image, float background, bool withAlpha = true)
    {
        var pixels = image.Pixels.AsSpan<float>();
        var count = image.Width * image.Height;
        var planar = Tensor.Empty([withAlpha ? 4 : 3, image.Height, image.Width]);
        var output = planar.AsSpan<float>();
        for (var i = 0; i < count; i++)
        {
            var alpha = pixels[4 * i + 3];
            for (var c = 0; c < 3; c++)
            {
                output[c * count + i] = pixels[4 * i + c] * alpha + background * (1 - alpha);
            }
            if (withAlpha)
            {
                output[3 * count + i] = alpha;
            }
        }
        return planar;
    }

    private void ResizeSource(TrainingBatch batch, int row, Tensor planar, IBackend backend)
    {
        var size = Options.SourceImageSize;
        long height = planar.Size(1), width = planar.Size(2);
        using var rgb = Tensor.Empty([3, height, width]);
        planar.AsSpan<float>()[..(int)(3 * height * width)].CopyTo(rgb.AsSpan<float>());
        ResizeSourceRgb(backend, rgb, size, batch.SourceImages.AsSpan<float>().Slice(row * 3 * size * size, 3 * size * size));
    }

    /// <summary>The source image as the encoder reads it in training: planar RGB (3, H, W) resized to size² (bilinear, antialiased).</summary>
    internal static void ResizeSourceRgb(IBackend backend, Tensor rgb, int size, Span<float> target)
    {
        using var resized = Tensor.Empty([3, size, size]);
        backend.Resize(resized, rgb, ResizeMode.Bilinear, antialias: true);
        resized.AsSpan<float>().CopyTo(target);
    }

    private void CropTarget(TrainingBatch batch, int row, int view, Tensor planar, RenderWindow window, IBackend backend)
    {
        var r = window.Resolution;
        var p = window.Size;
        using var resized = Tensor.Empty([4, r, r]);
        backend.Resize(resized, planar, ResizeMode.Bilinear, antialias: true);
        var source = resized.AsSpan<float>();
        var index = row * Options.ViewsPerSample + view;
        var rgb = batch.TargetRgb.AsSpan<float>().Slice(index * p * p * 3, p * p * 3);
        var alpha = batch.TargetAlpha.AsSpan<float>().Slice(index * p * p, p * p);
        var plane = r * r;
        for (var i = 0; i < p; i++)
        {
            for (var j = 0; j < p; j++)
            {
                var at = (window.Y + i) * r + window.X + j;
                var pixel = i * p + j;
                rgb[3 * pixel] = source[at];
                rgb[3 * pixel + 1] = source[plane + at];
                rgb[3 * pixel + 2] = source[2 * plane + at];
                alpha[pixel] = Math.Clamp(source[3 * plane + at], 0f, 1f);
            }
        }
    }

    // Full-image camera and the patch camera: the same rays as pixels (Y + i, X + j) of the r×r render, as a p×p image
    // (fx' = fx·r/p, cx' = (cx·r − X)/p, likewise y), so the renderer needs no notion of windows.
    private void WriteCameras(TrainingBatch batch, int row, int view, double[] pose, (double Fx, double Fy, double Cx, double Cy) k, RenderWindow window)
    {
        var index = row * Options.ViewsPerSample + view;
        var full = batch.FullCameras.AsSpan<float>().Slice(index * 25, 25);
        var patch = batch.RenderCameras.AsSpan<float>().Slice(index * 25, 25);
        for (var i = 0; i < 16; i++)
        {
            full[i] = patch[i] = (float)pose[i];
        }
        double r = window.Resolution, p = window.Size;
        WriteK(full[16..], k.Fx, k.Fy, k.Cx, k.Cy);
        WriteK(patch[16..], k.Fx * r / p, k.Fy * r / p, (k.Cx * r - window.X) / p, (k.Cy * r - window.Y) / p);

        static void WriteK(Span<float> target, double fx, double fy, double cx, double cy)
        {
            target.Clear();
            target[0] = (float)fx;
            target[2] = (float)cx;
            target[4] = (float)fy;
            target[5] = (float)cy;
            target[8] = 1;
        }
    }

    private static void WriteSourceCamera(TrainingBatch batch, int row, double[] pose, (double Fx, double Fy, double Cx, double Cy) k, int width)
    {
        SourceCameraValues(batch.SourceCameras.AsSpan<float>().Slice(row * width, width), pose, k);
    }

    /// <summary>The source camera feature the encoder is conditioned on: the normalised pose's first (width − 4) values, then fx, fy, cx, cy.</summary>
    internal static void SourceCameraValues(Span<float> target, double[] pose, (double Fx, double Fy, double Cx, double Cy) k)
    {
        var width = target.Length;
        var matrixValues = width - 4;
        for (var i = 0; i < matrixValues; i++)
        {
            target[i] = (float)pose[i];
        }
        target[matrixValues] = (float)k.Fx;
        target[matrixValues + 1] = (float)k.Fy;
        target[matrixValues + 2] = (float)k.Cx;
        target[matrixValues + 3] = (float)k.Cy;
    }
}

/// <summary>Bad data found while scanning or loading an object (internal; surfaces as <see cref="LrmFormatException"/> or a report).</summary>
internal sealed class BadDataException(DataProblem problem) : LrmException(problem.ToString())
{
    /// <summary>The problem.</summary>
    public DataProblem Problem { get; } = problem;
}
