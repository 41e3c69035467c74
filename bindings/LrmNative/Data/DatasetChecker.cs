using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Data;

/// <summary>What <c>lrm dataset check</c> found: counts, problems (each naming a file) and notes.</summary>
internal sealed record DatasetCheckReport(int Objects, int Views, int Meshes, IReadOnlyList<string> Resolutions, IReadOnlyList<string> Problems,
    IReadOnlyList<string> Notes)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// Validates a dataset folder and reports every problem rather than stopping at the first. The layout, poses and
/// intrinsics are checked by the reader the training dataset uses (<see cref="ObjectFolder.Read"/>: views paired and
/// named NNN, poses rigid within <see cref="DatasetLayout.RigidTolerance"/> with the camera away from the origin,
/// intrinsics valid and within the sanity range, every image of the object's one size); on top of that images decode
/// and have an alpha channel; a <c>mesh.ply</c>, when present, reads; every name in <c>uids.json</c> has a folder.
/// </summary>
internal static class DatasetChecker
{
    public static DatasetCheckReport Check(string root, Action<int, int>? progress = null)
    {
        var folders = DatasetLayout.ObjectFolders(root);
        var problems = new List<string>();
        var notes = new List<string>();
        var resolutions = new SortedSet<string>(StringComparer.Ordinal);
        var viewCounts = new SortedSet<int>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int views = 0, meshes = 0;
        if (folders.Count == 0)
        {
            problems.Add($"{root}: no object folders (expected OBJECT/rgba/NNN.png, OBJECT/pose/NNN.npy, OBJECT/intrinsics.npy)");
        }
        for (var k = 0; k < folders.Count; k++)
        {
            var item = ObjectFolder.Read(folders[k]);
            problems.AddRange(item.Problems.Select(Describe));
            names.Add(item.Name);
            views += item.Views.Count;
            viewCounts.Add(item.Views.Count);
            CheckImages(item, problems, resolutions);
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
            progress?.Invoke(k + 1, folders.Count);
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
            var uids = DatasetLayout.ReadUids(root);
            if (uids is not null)
            {
                foreach (var uid in uids.Where(u => !names.Contains(u)))
                {
                    problems.Add($"{Path.Combine(root, DatasetLayout.UidsFile)}: lists '{uid}', which has no folder");
                }
                var listed = uids.ToHashSet(StringComparer.Ordinal);
                var unlisted = names.Count(n => !listed.Contains(n));
                if (unlisted > 0)
                {
                    notes.Add($"{unlisted} object folder(s) are not listed in {DatasetLayout.UidsFile}");
                }
            }
        }
        catch (LrmException error)
        {
            problems.Add(error.Message);
        }
        return new DatasetCheckReport(folders.Count, views, meshes, [.. resolutions], problems, notes);
    }

    private static string Describe(DataProblem problem) => $"{problem.File}: {problem.Message}";

    // Every image (with a pose or not) whose header the folder scan read (and sized): decodes, has alpha.
    private static void CheckImages(ObjectFolder item, List<string> problems, SortedSet<string> resolutions)
    {
        for (var i = 0; i < item.ImageViews.Count; i++)
        {
            if (item.ImageSizes[i] is null)
            {
                continue;   // unreadable: one of the folder's problems already
            }
            var image = item.ImagePath(item.ImageViews[i]);
            try
            {
                using var loaded = Image.Load(image, applyExifOrientation: false);   // as training reads views
                if (!loaded.HasAlpha)
                {
                    problems.Add($"{image}: no alpha channel (RGBA with a transparent background expected)");
                }
            }
            catch (LrmException error)
            {
                problems.Add(error.Message);
            }
        }
        if (item.ImageSize is { } size)
        {
            resolutions.Add($"{size.Width}×{size.Height}");
        }
    }
}
