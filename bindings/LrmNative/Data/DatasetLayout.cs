using System.Globalization;
using System.Text.Json;
using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Data;

/// <summary>
/// The one reader of OpenLRM's multi-view layout (docs/datasets.md), shared by the training dataset
/// (<see cref="Training.MultiViewDataset"/>) and <c>lrm dataset check</c> (<see cref="DatasetChecker"/>): file names,
/// the pose and intrinsics parsers, the pose check (rigid within its tolerance, the camera away from the origin), the
/// intrinsics' sanity range, the image-size rule and the list of object folders. A dataset root holds one folder per
/// object (or is an object folder itself, recognised by its <c>rgba/</c>); each has <c>rgba/NNN.png</c>,
/// <c>pose/NNN.npy</c> and <c>intrinsics.npy</c>, optionally <c>mesh.ply</c>. Folders whose names start with '.'
/// (e.g. a writer's temporary folders) are not objects.
/// </summary>
internal static class DatasetLayout
{
    /// <summary>Folder of the view images, <c>NNN.png</c> (RGBA, straight alpha).</summary>
    public const string ImagesFolder = "rgba";

    /// <summary>Folder of the view poses, <c>NNN.npy</c> (camera-to-world, OpenGL convention).</summary>
    public const string PosesFolder = "pose";

    /// <summary>The object's intrinsics in pixels.</summary>
    public const string IntrinsicsFile = "intrinsics.npy";

    /// <summary>The object's ground-truth surface (optional; written by <c>lrm dataset synth/render</c>).</summary>
    public const string MeshFile = "mesh.ply";

    /// <summary>The list of object folders, OpenLRM's "uids" meta file (optional).</summary>
    public const string UidsFile = "uids.json";

    /// <summary>
    /// Largest deviation a pose may have and count as rigid: |RᵀR − I|, |det R − 1| and |bottom row − (0, 0, 0, 1)|
    /// (float32 poses of rotations are orthonormal to ~1e-7).
    /// </summary>
    public const double RigidTolerance = 1e-3;

    /// <summary>
    /// Smallest distance from the origin a camera centre may have: camera normalisation moves the source camera to
    /// (0, −d, 0) at its own distance d from the object, which sits at the origin; a camera there has no such distance.
    /// </summary>
    public const double MinCameraDistance = 1e-6;

    /// <summary>
    /// Focal lengths over the image size (fx/W, fy/H) must be above this and below <see cref="MaxNormalizedFocal"/>. Real
    /// cameras lie far inside (a 170° fisheye about 0.04, a 1° telephoto about 57, OpenLRM's renders about 1); a value
    /// outside is a wrong unit or a corrupt file, and would make the camera feature and the rays meaningless.
    /// </summary>
    public const double MinNormalizedFocal = 1e-3;

    /// <summary>Focal lengths over the image size must be below this (see <see cref="MinNormalizedFocal"/>).</summary>
    public const double MaxNormalizedFocal = 1e3;

    /// <summary>
    /// |cx/W| and |cy/H| must be below this: a real principal point lies near the image centre (0.5), inside the image
    /// or, for a crop, not far off it.
    /// </summary>
    public const double MaxNormalizedPrincipalPoint = 1e3;

    /// <summary>File name of view <paramref name="index"/>: three or more digits (000, 001, …, 1000) and the extension.</summary>
    public static string ViewFileName(int index, string extension) => index.ToString("D3", CultureInfo.InvariantCulture) + extension;

    /// <summary><c>rgba/NNN.png</c> of an object folder.</summary>
    public static string ImagePath(string objectFolder, int index) => Path.Combine(objectFolder, ImagesFolder, ViewFileName(index, ".png"));

    /// <summary><c>pose/NNN.npy</c> of an object folder.</summary>
    public static string PosePath(string objectFolder, int index) => Path.Combine(objectFolder, PosesFolder, ViewFileName(index, ".npy"));

    /// <summary>
    /// The object folders of <paramref name="root"/>, sorted by name (ordinal): the root itself when it has
    /// <c>rgba/</c>, else its subfolders not starting with '.'. Throws <see cref="LrmFormatException"/> when the root
    /// does not exist.
    /// </summary>
    public static IReadOnlyList<string> ObjectFolders(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!Directory.Exists(root))
        {
            throw new LrmFormatException($"{root}: dataset folder not found (expected one folder per object with rgba/NNN.png, pose/NNN.npy and intrinsics.npy)");
        }
        if (Directory.Exists(Path.Combine(root, ImagesFolder)))
        {
            return [Path.TrimEndingDirectorySeparator(root)];
        }
        return FileErrors.Reading(root, "the dataset folder", () =>
            (IReadOnlyList<string>)[.. Directory.GetDirectories(root).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal)]);
    }

    /// <summary>Every object folder of <paramref name="root"/> read with <see cref="ObjectFolder.Read"/>.</summary>
    public static IReadOnlyList<ObjectFolder> ReadObjects(string root, double rigidTolerance = RigidTolerance) =>
        [.. ObjectFolders(root).Select(folder => ObjectFolder.Read(folder, rigidTolerance))];

    /// <summary>
    /// A pose file as a 4×4 camera-to-world matrix (16 values row-major): (4, 4), or OpenLRM's (3, 4) with the row
    /// (0, 0, 0, 1) appended. Only the shape is checked here; <see cref="PoseProblem"/> checks the values.
    /// </summary>
    public static double[] ReadPose(string path) => TryReadPose(path, out var problem) ?? throw new LrmFormatException($"{path}: {problem}");

    internal static double[]? TryReadPose(string path, out string problem)
    {
        float[] values;
        long[] shape;
        try
        {
            // The shape is checked from the header: a huge array is refused without reading it.
            using var tensor = Npy.ReadFloat32If(path, s => s is [4, 4] or [3, 4], out shape);
            if (tensor is null)
            {
                problem = $"a pose must be a (4, 4) or (3, 4) camera-to-world matrix, got {Tensor.FormatShape(shape)}";
                return null;
            }
            values = tensor.ToFloatArray();
        }
        catch (LrmException error)
        {
            problem = $"unreadable pose: {error.Message}";
            return null;
        }
        var pose = new double[16];
        for (var i = 0; i < values.Length; i++)
        {
            pose[i] = values[i];
        }
        if (shape[0] == 3)
        {
            pose[15] = 1;
        }
        problem = "";
        return pose;
    }

    /// <summary>
    /// How far a 4×4 pose is from a rigid transform: the largest of |RᵀR − I|, |det R − 1| and
    /// |bottom row − (0, 0, 0, 1)|; +∞ when any value is NaN/±inf.
    /// </summary>
    public static double RigidError(ReadOnlySpan<double> pose)
    {
        var (finite, orthonormal, determinant, bottom) = Deviation(pose);
        return finite ? Math.Max(orthonormal, Math.Max(Math.Abs(determinant - 1), bottom)) : double.PositiveInfinity;
    }

    /// <summary>
    /// What is wrong with a pose (null: nothing): non-finite values, a bottom row off (0, 0, 0, 1), a rotation block
    /// off orthonormal, a reflection or a determinant off 1 — each beyond <paramref name="tolerance"/> — or a camera
    /// centre closer to the origin than <see cref="MinCameraDistance"/> (every view can be a sample's source, and camera
    /// normalisation needs the source's distance).
    /// </summary>
    public static string? PoseProblem(ReadOnlySpan<double> pose, double tolerance = RigidTolerance)
    {
        var (finite, orthonormal, determinant, bottom) = Deviation(pose);
        if (!finite)
        {
            return "the pose has non-finite values (NaN or infinity)";
        }
        if (bottom > tolerance)
        {
            return string.Create(CultureInfo.InvariantCulture, $"the bottom row is ({pose[12]}, {pose[13]}, {pose[14]}, {pose[15]}), not (0, 0, 0, 1)");
        }
        if (orthonormal > tolerance)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"not a rigid transform (the rotation block's RᵀR differs from I by {orthonormal:G3}, tolerance {tolerance:G3})");
        }
        if (determinant < 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"the rotation block is a reflection (determinant {determinant:G3})");
        }
        if (Math.Abs(determinant - 1) > tolerance)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"not a rigid transform (the rotation block's determinant is {determinant:G3}, not 1; tolerance {tolerance:G3})");
        }
        var distance = CameraDistance(pose);
        if (!(distance >= MinCameraDistance))
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the camera centre ({pose[3]}, {pose[7]}, {pose[11]}) is at the origin, where the object is; camera normalisation needs its distance (at least {MinCameraDistance:G3})");
        }
        return null;
    }

    /// <summary>The distance of a 4×4 camera-to-world pose's camera centre (its last column) from the origin.</summary>
    public static double CameraDistance(ReadOnlySpan<double> pose) => Math.Sqrt(pose[3] * pose[3] + pose[7] * pose[7] + pose[11] * pose[11]);

    private static (bool Finite, double Orthonormal, double Determinant, double Bottom) Deviation(ReadOnlySpan<double> m)
    {
        if (m.Length != 16)
        {
            throw new LrmInvalidArgumentException($"a pose has 16 values, got {m.Length}");
        }
        foreach (var value in m)
        {
            if (!double.IsFinite(value))
            {
                return (false, double.NaN, double.NaN, double.NaN);
            }
        }
        double orthonormal = 0;
        for (var a = 0; a < 3; a++)
        {
            for (var b = 0; b < 3; b++)
            {
                double dot = 0;
                for (var r = 0; r < 3; r++)
                {
                    dot += m[4 * r + a] * m[4 * r + b];
                }
                orthonormal = Math.Max(orthonormal, Math.Abs(dot - (a == b ? 1 : 0)));
            }
        }
        var determinant = m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
        var bottom = Math.Max(Math.Max(Math.Abs(m[12]), Math.Abs(m[13])), Math.Max(Math.Abs(m[14]), Math.Abs(m[15] - 1)));
        return (true, orthonormal, determinant, bottom);
    }

    /// <summary>
    /// An object's intrinsics file: OpenLRM's (3, 2) [[fx, fy], [cx, cy], [width, height]] in pixels, or a (3, 3)
    /// pixel matrix K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no image size: the images give it). Values must be
    /// finite, focal lengths positive, a (3, 2) size positive integers and, with that size, within the sanity range
    /// (<see cref="IntrinsicsRangeProblem"/>; a K is checked against its images' size by <see cref="ObjectFolder.Read"/>).
    /// Throws <see cref="LrmFormatException"/> naming the file.
    /// </summary>
    public static PixelIntrinsics ReadIntrinsics(string path) =>
        TryReadIntrinsics(path, out var problem) ?? throw new LrmFormatException($"{path}: {problem}");

    internal static PixelIntrinsics? TryReadIntrinsics(string path, out string problem)
    {
        float[] v;
        long[] shape;
        try
        {
            // The shape is checked from the header: a huge array is refused without reading it.
            using var tensor = Npy.ReadFloat32If(path, s => s is [3, 2] or [3, 3], out shape);
            if (tensor is null)
            {
                problem = $"intrinsics must be (3, 2) [[fx, fy], [cx, cy], [width, height]] or a (3, 3) matrix K in pixels, got {Tensor.FormatShape(shape)}";
                return null;
            }
            v = tensor.ToFloatArray();
        }
        catch (LrmException error)
        {
            problem = $"unreadable intrinsics: {error.Message}";
            return null;
        }
        var values = string.Join(", ", v.Select(x => x.ToString(CultureInfo.InvariantCulture)));
        if (!v.All(float.IsFinite))
        {
            problem = $"the intrinsics are not finite (NaN or infinity): [{values}]";
            return null;
        }
        PixelIntrinsics result;
        if (shape is [3, 2])
        {
            if (v[4] != MathF.Round(v[4]) || v[5] != MathF.Round(v[5]) || v[4] < 1 || v[5] < 1)
            {
                problem = string.Create(CultureInfo.InvariantCulture, $"the image width and height (row 3) must be positive integers, got {v[4]}, {v[5]}");
                return null;
            }
            result = new PixelIntrinsics(v[0], v[1], v[2], v[3], (int)v[4], (int)v[5]);
        }
        else
        {
            if (v[1] != 0 || v[3] != 0 || v[6] != 0 || v[7] != 0 || v[8] != 1)
            {
                problem = $"a (3, 3) K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got [{values}]";
                return null;
            }
            result = new PixelIntrinsics(v[0], v[4], v[2], v[5], null, null);
        }
        if (!(result.Fx > 0 && result.Fy > 0))
        {
            problem = string.Create(CultureInfo.InvariantCulture, $"focal lengths must be positive, got fx {result.Fx}, fy {result.Fy}");
            return null;
        }
        if (result is { Width: int width, Height: int height } && IntrinsicsRangeProblem(result, width, height) is { } absurd)
        {
            problem = absurd;
            return null;
        }
        problem = "";
        return result;
    }

    /// <summary>
    /// What is wrong with intrinsics for images of <paramref name="width"/>×<paramref name="height"/> (null: nothing): the
    /// focal lengths over the image size outside (<see cref="MinNormalizedFocal"/>, <see cref="MaxNormalizedFocal"/>),
    /// or the principal point over it beyond ±<see cref="MaxNormalizedPrincipalPoint"/>.
    /// </summary>
    public static string? IntrinsicsRangeProblem(PixelIntrinsics intrinsics, int width, int height)
    {
        double fx = intrinsics.Fx / width, fy = intrinsics.Fy / height, cx = intrinsics.Cx / width, cy = intrinsics.Cy / height;
        if (!(fx > MinNormalizedFocal && fx < MaxNormalizedFocal && fy > MinNormalizedFocal && fy < MaxNormalizedFocal))
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the focal lengths over the image size, fx/width = {fx:G3} and fy/height = {fy:G3} (fx {intrinsics.Fx:G6}, fy {intrinsics.Fy:G6} px for {width}×{height} images), must lie in ({MinNormalizedFocal}, {MaxNormalizedFocal}); a real camera's are about 0.05 to 50");
        }
        if (!(Math.Abs(cx) < MaxNormalizedPrincipalPoint && Math.Abs(cy) < MaxNormalizedPrincipalPoint))
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"the principal point over the image size, cx/width = {cx:G3} and cy/height = {cy:G3} (cx {intrinsics.Cx:G6}, cy {intrinsics.Cy:G6} px for {width}×{height} images), must lie in (−{MaxNormalizedPrincipalPoint}, {MaxNormalizedPrincipalPoint}); a real camera's is about 0.5");
        }
        return null;
    }

    /// <summary>
    /// The size every image of an object must have: the one its (3, 2) intrinsics give, else the size most of its images
    /// have (<paramref name="sizes"/> in view order; a tie goes to the lowest-numbered view's), so that the odd image is the
    /// one blamed; null when there is no size to go by.
    /// </summary>
    public static ObjectImageSize? ExpectedImageSize(IReadOnlyList<(int Width, int Height)> sizes, PixelIntrinsics? intrinsics, string intrinsicsPath)
    {
        if (intrinsics is { Width: int width, Height: int height })
        {
            return new ObjectImageSize(width, height, $"{intrinsicsPath} says {width}×{height}");
        }
        (int Width, int Height) most = default;
        var mostCount = 0;
        foreach (var size in sizes)
        {
            var count = sizes.Count(s => s == size);
            if (count > mostCount)
            {
                (most, mostCount) = (size, count);
            }
        }
        return mostCount == 0 ? null : new ObjectImageSize(most.Width, most.Height, $"{mostCount} of the object's {sizes.Count} images are {most.Width}×{most.Height}");
    }

    /// <summary>What is wrong with the size of one of an object's images (null: nothing): it must be the object's, <paramref name="expected"/>.</summary>
    public static string? ImageSizeProblem(int width, int height, ObjectImageSize expected) =>
        (width, height) == (expected.Width, expected.Height) ? null : $"image of the wrong size: {width}×{height}, but {expected.Reason}";

    /// <summary>The object names listed in <c>uids.json</c> under <paramref name="root"/>, or null when there is none.</summary>
    public static IReadOnlyList<string>? ReadUids(string root)
    {
        var path = Path.Combine(root, UidsFile);
        if (!File.Exists(path))
        {
            return null;
        }
        var bytes = FileErrors.ReadSideFile(path, "object list");
        try
        {
            using var document = JsonDocument.Parse(bytes);
            return [.. document.RootElement.EnumerateArray().Select(e => e.GetString() ?? "")];
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException)
        {
            throw new LrmFormatException($"{path}: not a JSON list of object names ({error.Message})");
        }
    }
}

/// <summary>
/// The one size every image of an object has (<see cref="DatasetLayout.ExpectedImageSize"/>) and why, for messages: its
/// intrinsics' ("….npy says W×H") or most of its images' ("N of the object's M images are W×H").
/// </summary>
internal readonly record struct ObjectImageSize(int Width, int Height, string Reason);

/// <summary>
/// One object folder as found on disk by the shared scan (<see cref="Read"/>): its views, the poses, intrinsics and
/// image sizes that parsed, and every problem found (each naming the object and the file). The training dataset keeps
/// an object only without problems (<see cref="Training.DatasetObject"/>); <c>lrm dataset check</c> reports them all.
/// </summary>
internal sealed class ObjectFolder
{
    private ObjectFolder(string name, string directory, int[] views, int[] imageViews, double[]?[] poses, PixelIntrinsics? intrinsics,
        (int Width, int Height)?[] imageSizes, ObjectImageSize? imageSize, List<DataProblem> problems)
    {
        Name = name;
        Directory = directory;
        Views = views;
        ImageViews = imageViews;
        Poses = poses;
        Intrinsics = intrinsics;
        ImageSizes = imageSizes;
        ImageSize = imageSize;
        Problems = problems;
    }

    /// <summary>Folder name (the object id).</summary>
    public string Name { get; }

    /// <summary>Folder path.</summary>
    public string Directory { get; }

    /// <summary>Numbers NNN of the complete views (both image and pose), ascending.</summary>
    public IReadOnlyList<int> Views { get; }

    /// <summary>Numbers of the views that have an image (with a pose or not), ascending.</summary>
    public IReadOnlyList<int> ImageViews { get; }

    /// <summary>Camera-to-world 4×4 row-major per complete view (as stored); null where the pose is bad.</summary>
    public IReadOnlyList<double[]?> Poses { get; }

    /// <summary>The intrinsics; null when missing or bad.</summary>
    public PixelIntrinsics? Intrinsics { get; }

    /// <summary>The stored size of each image of <see cref="ImageViews"/>, from its header; null where it cannot be read.</summary>
    public IReadOnlyList<(int Width, int Height)?> ImageSizes { get; }

    /// <summary>The size every image must have (<see cref="DatasetLayout.ExpectedImageSize"/>); null when there is none to go by.</summary>
    public ObjectImageSize? ImageSize { get; }

    /// <summary>
    /// Everything wrong with the folder's layout, poses, intrinsics and image sizes (images are read up to their headers
    /// here, not decoded).
    /// </summary>
    public IReadOnlyList<DataProblem> Problems { get; }

    /// <summary><c>rgba/NNN.png</c>.</summary>
    public string ImagePath(int view) => DatasetLayout.ImagePath(Directory, view);

    /// <summary><c>pose/NNN.npy</c>.</summary>
    public string PosePath(int view) => DatasetLayout.PosePath(Directory, view);

    /// <summary><c>intrinsics.npy</c>.</summary>
    public string IntrinsicsPath => Path.Combine(Directory, DatasetLayout.IntrinsicsFile);

    /// <summary><c>mesh.ply</c>.</summary>
    public string MeshPath => Path.Combine(Directory, DatasetLayout.MeshFile);

    /// <summary>
    /// Scans an object folder: <c>rgba/</c>, <c>pose/</c> and <c>intrinsics.npy</c> present; view files named by
    /// number (NNN.png, NNN.npy); every view with both an image and a pose, and at least one view; every pose a
    /// rigid transform within <paramref name="rigidTolerance"/> with its camera away from the origin
    /// (<see cref="DatasetLayout.PoseProblem"/>); the intrinsics valid (<see cref="DatasetLayout.ReadIntrinsics"/>);
    /// every image's header readable and its size the object's (<see cref="DatasetLayout.ExpectedImageSize"/>); a (3, 3)
    /// K within the sanity range for that size (<see cref="DatasetLayout.IntrinsicsRangeProblem"/>). Problems are
    /// collected, not thrown.
    /// </summary>
    public static ObjectFolder Read(string directory, double rigidTolerance = DatasetLayout.RigidTolerance)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        var problems = new List<DataProblem>();
        void Add(string file, string message) => problems.Add(new DataProblem(name, file, message));
        var imageFolder = Path.Combine(directory, DatasetLayout.ImagesFolder);
        var poseFolder = Path.Combine(directory, DatasetLayout.PosesFolder);
        var intrinsicsPath = Path.Combine(directory, DatasetLayout.IntrinsicsFile);
        if (!System.IO.Directory.Exists(imageFolder))
        {
            Add(imageFolder, "folder missing (an object folder holds rgba/NNN.png, pose/NNN.npy and intrinsics.npy)");
        }
        if (!System.IO.Directory.Exists(poseFolder))
        {
            Add(poseFolder, "folder missing (one NNN.npy camera-to-world pose per view)");
        }
        if (!File.Exists(intrinsicsPath))
        {
            Add(intrinsicsPath, "missing (the object's camera intrinsics, (3, 2) [[fx, fy], [cx, cy], [width, height]] in pixels)");
        }
        var images = Numbered(imageFolder, ".png", Add);
        var poseFiles = Numbered(poseFolder, ".npy", Add);
        if (System.IO.Directory.Exists(imageFolder) && System.IO.Directory.Exists(poseFolder))
        {
            foreach (var view in images.Union(poseFiles).Order())
            {
                if (!poseFiles.Contains(view))
                {
                    Add(DatasetLayout.PosePath(directory, view), $"missing (view {DatasetLayout.ViewFileName(view, "")} has an image but no pose)");
                }
                if (!images.Contains(view))
                {
                    Add(DatasetLayout.ImagePath(directory, view), $"missing (view {DatasetLayout.ViewFileName(view, "")} has a pose but no image)");
                }
            }
        }
        var views = images.Intersect(poseFiles).Order().ToArray();
        if (views.Length == 0)
        {
            Add(imageFolder, "no views (rgba/NNN.png with pose/NNN.npy)");
        }
        var poses = new Dictionary<int, double[]?>();
        foreach (var view in poseFiles.Order())
        {
            var path = DatasetLayout.PosePath(directory, view);
            var pose = DatasetLayout.TryReadPose(path, out var problem);
            if (pose is not null && DatasetLayout.PoseProblem(pose, rigidTolerance) is { } bad)
            {
                (pose, problem) = (null, bad);
            }
            if (pose is null)
            {
                Add(path, problem);
            }
            poses[view] = pose;
        }
        PixelIntrinsics? intrinsics = null;
        if (File.Exists(intrinsicsPath))
        {
            intrinsics = DatasetLayout.TryReadIntrinsics(intrinsicsPath, out var problem);
            if (intrinsics is null)
            {
                Add(intrinsicsPath, problem);
            }
        }
        var imageViews = images.Order().ToArray();
        var imageSizes = new (int Width, int Height)?[imageViews.Length];
        for (var i = 0; i < imageViews.Length; i++)
        {
            var path = DatasetLayout.ImagePath(directory, imageViews[i]);
            try
            {
                imageSizes[i] = Image.ReadSize(path);
            }
            catch (LrmFormatException error)
            {
                Add(path, $"unreadable image: {error.Message}");
            }
        }
        var imageSize = DatasetLayout.ExpectedImageSize([.. imageSizes.OfType<(int Width, int Height)>()], intrinsics, intrinsicsPath);
        if (imageSize is { } expected)
        {
            for (var i = 0; i < imageViews.Length; i++)
            {
                if (imageSizes[i] is { } size && DatasetLayout.ImageSizeProblem(size.Width, size.Height, expected) is { } wrongSize)
                {
                    Add(DatasetLayout.ImagePath(directory, imageViews[i]), wrongSize);
                }
            }
            // A (3, 2) file's range was checked with its own size; a K's needs the images'.
            if (intrinsics is { Width: null } matrix && DatasetLayout.IntrinsicsRangeProblem(matrix, expected.Width, expected.Height) is { } absurd)
            {
                Add(intrinsicsPath, absurd);
                intrinsics = null;
            }
        }
        return new ObjectFolder(name, directory, views, imageViews, [.. views.Select(v => poses[v])], intrinsics, imageSizes, imageSize, problems);
    }

    // The numbers of the files with the extension in a folder (empty when it is missing); a file not named NNN is a problem.
    private static HashSet<int> Numbered(string folder, string extension, Action<string, string> add)
    {
        var result = new HashSet<int>();
        if (!System.IO.Directory.Exists(folder))
        {
            return result;
        }
        string[] files;
        try
        {
            files = System.IO.Directory.GetFiles(folder);
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            add(folder, $"cannot list the folder: {error.Message}");
            return result;
        }
        foreach (var path in files.Order(StringComparer.Ordinal))
        {
            var fileName = Path.GetFileName(path);
            if (!fileName.EndsWith(extension, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            var stem = fileName[..^extension.Length];
            if (stem.Length == 0 || !stem.All(char.IsAsciiDigit) || !int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var view)
                || fileName != DatasetLayout.ViewFileName(view, extension))
            {
                add(path, $"view files are named by number, NNN{extension} (000{extension}, 001{extension}, …), got '{fileName}'");
                continue;
            }
            result.Add(view);
        }
        return result;
    }
}
