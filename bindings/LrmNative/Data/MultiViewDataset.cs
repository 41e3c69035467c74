using System.Text.Json;
using LrmNative.IO;

namespace LrmNative.Data;

/// <summary>One object folder of a dataset: its name, path and view stems ("000", "001", …) sorted.</summary>
internal sealed record DatasetObject(string Name, string Folder, IReadOnlyList<string> Views)
{
    public string ImagePath(string view) => Path.Combine(Folder, "rgba", view + ".png");

    public string PosePath(string view) => Path.Combine(Folder, "pose", view + ".npy");

    public string IntrinsicsPath => Path.Combine(Folder, "intrinsics.npy");

    public string MeshPath => Path.Combine(Folder, "mesh.ply");
}

/// <summary>OpenLRM intrinsics in pixels: focal lengths, principal point and image size.</summary>
internal readonly record struct DatasetIntrinsics(double Fx, double Fy, double Cx, double Cy, double Width, double Height)
{
    /// <summary>Normalised by the image size (what the model's camera feature holds).</summary>
    public (double Fx, double Fy, double Cx, double Cy) Normalized => (Fx / Width, Fy / Height, Cx / Width, Cy / Height);
}

/// <summary>
/// Reads a multi-view dataset in OpenLRM's layout (docs/datasets.md): a root folder with one folder per object (or
/// an object folder itself, recognised by its <c>rgba/</c>), each with <c>rgba/NNN.png</c>, <c>pose/NNN.npy</c> and
/// <c>intrinsics.npy</c>. Folders whose names start with '.' (e.g. a writer's temporary folders) are skipped.
/// </summary>
internal sealed class MultiViewDataset
{
    private MultiViewDataset(string root, List<DatasetObject> objects)
    {
        Root = root;
        Objects = objects;
    }

    public string Root { get; }

    public IReadOnlyList<DatasetObject> Objects { get; }

    public static MultiViewDataset Open(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!Directory.Exists(root))
        {
            throw new LrmInvalidArgumentException($"{root}: dataset folder not found");
        }
        var folders = Directory.Exists(Path.Combine(root, "rgba"))
            ? [Path.GetFullPath(root)]
            : Directory.GetDirectories(root).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        var objects = folders.Select(folder =>
        {
            var stems = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var (sub, pattern) in new[] { ("rgba", "*.png"), ("pose", "*.npy") })
            {
                var path = Path.Combine(folder, sub);
                if (Directory.Exists(path))
                {
                    stems.UnionWith(Directory.GetFiles(path, pattern).Select(f => Path.GetFileNameWithoutExtension(f)!));
                }
            }
            return new DatasetObject(Path.GetFileName(folder.TrimEnd(Path.DirectorySeparatorChar)), folder, [.. stems]);
        }).ToList();
        return new MultiViewDataset(root, objects);
    }

    /// <summary>
    /// A pose file as a 4×4 camera-to-world matrix (16 floats row-major): (4, 4) as written here, or OpenLRM's (3, 4)
    /// with the row (0, 0, 0, 1) appended.
    /// </summary>
    public static float[] ReadPose(string path)
    {
        using var tensor = Npy.ReadFloat32(path);
        var shape = tensor.ShapeText;
        if (tensor.Rank != 2 || tensor.Size(1) != 4 || tensor.Size(0) is not (3 or 4))
        {
            throw new LrmFormatException($"{path}: a pose must be a (4, 4) or (3, 4) camera-to-world matrix, got {shape}");
        }
        var values = tensor.AsSpan<float>();
        var pose = new float[16];
        values.CopyTo(pose);
        if (tensor.Size(0) == 3)
        {
            pose[15] = 1;
        }
        return pose;
    }

    /// <summary>OpenLRM's intrinsics.npy: (3, 2) [[fx, fy], [cx, cy], [width, height]] in pixels.</summary>
    public static DatasetIntrinsics ReadIntrinsics(string path)
    {
        using var tensor = Npy.ReadFloat32(path);
        if (tensor.Rank != 2 || tensor.Size(0) != 3 || tensor.Size(1) != 2)
        {
            throw new LrmFormatException($"{path}: intrinsics must be (3, 2) [[fx, fy], [cx, cy], [width, height]], got {tensor.ShapeText}");
        }
        var v = tensor.AsSpan<float>();
        return new DatasetIntrinsics(v[0], v[1], v[2], v[3], v[4], v[5]);
    }

    /// <summary>The object names listed in <c>uids.json</c>, or null when there is none.</summary>
    public IReadOnlyList<string>? ReadUids()
    {
        var path = Path.Combine(Root, DatasetWriter.UidsFile);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.EnumerateArray().Select(e => e.GetString() ?? "").ToList();
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException)
        {
            throw new LrmFormatException($"{path}: not a JSON list of object names ({error.Message})");
        }
    }
}

/// <summary>What <c>lrm dataset check</c> found: counts, problems (each naming a file) and notes.</summary>
internal sealed record DatasetCheckReport(int Objects, int Views, int Meshes, IReadOnlyList<string> Resolutions, IReadOnlyList<string> Problems,
    IReadOnlyList<string> Notes)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// Validates a dataset folder: every object has <c>intrinsics.npy</c> and at least one view; every view has both an
/// image and a pose; poses are finite rigid transforms (rotation block orthonormal within 1e-3 with determinant +1,
/// bottom row (0, 0, 0, 1)); images decode, have an alpha channel and all have the object's size, which equals the
/// intrinsics' width and height; intrinsics are finite with positive focal lengths and size; a <c>mesh.ply</c>, when
/// present, reads; every name in <c>uids.json</c> has a folder.
/// </summary>
internal static class DatasetChecker
{
    public const double RigidTolerance = 1e-3;

    public static DatasetCheckReport Check(string root, Action<int, int>? progress = null)
    {
        var dataset = MultiViewDataset.Open(root);
        var problems = new List<string>();
        var notes = new List<string>();
        var resolutions = new SortedSet<string>(StringComparer.Ordinal);
        var viewCounts = new SortedSet<int>();
        int views = 0, meshes = 0;
        if (dataset.Objects.Count == 0)
        {
            problems.Add($"{root}: no object folders (expected OBJECT/rgba/NNN.png, OBJECT/pose/NNN.npy, OBJECT/intrinsics.npy)");
        }
        for (var k = 0; k < dataset.Objects.Count; k++)
        {
            var item = dataset.Objects[k];
            CheckObject(item, problems, resolutions, ref views, ref meshes);
            viewCounts.Add(item.Views.Count);
            progress?.Invoke(k + 1, dataset.Objects.Count);
        }
        if (viewCounts.Count > 1)
        {
            notes.Add($"objects have different view counts ({viewCounts.Min}..{viewCounts.Max})");
        }
        if (resolutions.Count > 1)
        {
            notes.Add($"objects have different image sizes ({string.Join(", ", resolutions)})");
        }
        try
        {
            var uids = dataset.ReadUids();
            if (uids is not null)
            {
                var names = dataset.Objects.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
                foreach (var uid in uids.Where(u => !names.Contains(u)))
                {
                    problems.Add($"{Path.Combine(root, DatasetWriter.UidsFile)}: lists '{uid}', which has no folder");
                }
                var listed = uids.ToHashSet(StringComparer.Ordinal);
                var unlisted = dataset.Objects.Count(o => !listed.Contains(o.Name));
                if (unlisted > 0)
                {
                    notes.Add($"{unlisted} object folder(s) are not listed in {DatasetWriter.UidsFile}");
                }
            }
        }
        catch (LrmException error)
        {
            problems.Add(error.Message);
        }
        return new DatasetCheckReport(dataset.Objects.Count, views, meshes, [.. resolutions], problems, notes);
    }

    private static void CheckObject(DatasetObject item, List<string> problems, SortedSet<string> resolutions, ref int views, ref int meshes)
    {
        DatasetIntrinsics? intrinsics = null;
        if (!File.Exists(item.IntrinsicsPath))
        {
            problems.Add($"{item.IntrinsicsPath}: missing");
        }
        else
        {
            try
            {
                var i = MultiViewDataset.ReadIntrinsics(item.IntrinsicsPath);
                double[] values = [i.Fx, i.Fy, i.Cx, i.Cy, i.Width, i.Height];
                if (!values.All(double.IsFinite))
                {
                    problems.Add($"{item.IntrinsicsPath}: not finite ({string.Join(", ", values)})");
                }
                else if (!(i.Fx > 0 && i.Fy > 0 && i.Width > 0 && i.Height > 0))
                {
                    problems.Add($"{item.IntrinsicsPath}: focal lengths and size must be positive, got fx {i.Fx}, fy {i.Fy}, size {i.Width}×{i.Height}");
                }
                else
                {
                    intrinsics = i;
                }
            }
            catch (LrmException error)
            {
                problems.Add(error.Message);
            }
        }
        if (item.Views.Count == 0)
        {
            problems.Add($"{item.Folder}: no views (rgba/NNN.png with pose/NNN.npy)");
        }
        (int Width, int Height)? size = null;
        foreach (var view in item.Views)
        {
            var image = item.ImagePath(view);
            var pose = item.PosePath(view);
            var complete = true;
            if (!File.Exists(image))
            {
                problems.Add($"{image}: missing (view {view} has a pose but no image)");
                complete = false;
            }
            if (!File.Exists(pose))
            {
                problems.Add($"{pose}: missing (view {view} has an image but no pose)");
                complete = false;
            }
            if (complete)
            {
                views++;
            }
            if (File.Exists(pose))
            {
                CheckPose(pose, problems);
            }
            if (File.Exists(image))
            {
                try
                {
                    using var loaded = Image.Load(image);
                    if (!loaded.HasAlpha)
                    {
                        problems.Add($"{image}: no alpha channel (RGBA with a transparent background expected)");
                    }
                    var current = (loaded.Width, loaded.Height);
                    size ??= current;
                    if (current != size)
                    {
                        problems.Add($"{image}: {loaded.Width}×{loaded.Height}, but the object's first image is {size.Value.Width}×{size.Value.Height}");
                    }
                    else if (intrinsics is { } k && (Math.Abs(k.Width - loaded.Width) > 0.5 || Math.Abs(k.Height - loaded.Height) > 0.5))
                    {
                        problems.Add($"{image}: {loaded.Width}×{loaded.Height}, but {item.IntrinsicsPath} says {k.Width}×{k.Height}");
                    }
                }
                catch (LrmException error)
                {
                    problems.Add(error.Message);
                }
            }
        }
        if (size is { } s)
        {
            resolutions.Add($"{s.Width}×{s.Height}");
        }
        if (File.Exists(item.MeshPath))
        {
            try
            {
                Mesh.Load(item.MeshPath);
                meshes++;
            }
            catch (LrmException error)
            {
                problems.Add(error.Message);
            }
        }
    }

    private static void CheckPose(string path, List<string> problems)
    {
        float[] m;
        try
        {
            m = MultiViewDataset.ReadPose(path);
        }
        catch (LrmException error)
        {
            problems.Add(error.Message);
            return;
        }
        if (!m.All(float.IsFinite))
        {
            problems.Add($"{path}: the pose has non-finite values");
            return;
        }
        if (m[12] != 0 || m[13] != 0 || m[14] != 0 || m[15] != 1)
        {
            problems.Add($"{path}: the bottom row is ({m[12]}, {m[13]}, {m[14]}, {m[15]}), not (0, 0, 0, 1)");
        }
        double worst = 0;
        for (var a = 0; a < 3; a++)
        {
            for (var b = 0; b < 3; b++)
            {
                double dot = 0;
                for (var r = 0; r < 3; r++)
                {
                    dot += (double)m[4 * r + a] * m[4 * r + b];
                }
                worst = Math.Max(worst, Math.Abs(dot - (a == b ? 1 : 0)));
            }
        }
        var determinant = m[0] * ((double)m[5] * m[10] - (double)m[6] * m[9]) - m[1] * ((double)m[4] * m[10] - (double)m[6] * m[8])
            + m[2] * ((double)m[4] * m[9] - (double)m[5] * m[8]);
        if (worst > RigidTolerance)
        {
            problems.Add($"{path}: not a rigid transform (the rotation block's RᵀR differs from I by {worst:G3})");
        }
        else if (determinant < 0)
        {
            problems.Add($"{path}: the rotation block is a reflection (determinant {determinant:G3})");
        }
    }
}
