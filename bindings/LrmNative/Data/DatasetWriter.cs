using System.Text;
using LrmNative.IO;

namespace LrmNative.Data;

/// <summary>
/// Writes one object folder in OpenLRM's layout (docs/datasets.md): <c>rgba/NNN.png</c> (8-bit RGBA, straight alpha,
/// transparent background), <c>pose/NNN.npy</c> ((4, 4) float32 camera-to-world, OpenGL convention),
/// <c>intrinsics.npy</c> ((3, 2) float32 [[fx, fy], [cx, cy], [width, height]] in pixels) and <c>mesh.ply</c> (the
/// ground-truth surface in the same world frame, with vertex colours). The folder is assembled under a hidden
/// temporary name and renamed into place, so an interrupted run never leaves a half-written object.
/// </summary>
internal static class DatasetWriter
{
    public static void WriteObject(string root, string name, IReadOnlyList<(DatasetCamera Camera, RenderedView View)> views, Mesh mesh)
    {
        ArgumentNullException.ThrowIfNull(views);
        ArgumentNullException.ThrowIfNull(mesh);
        if (views.Count == 0)
        {
            throw new LrmInvalidArgumentException($"{name}: an object needs at least one view");
        }
        var final = Path.Combine(root, name);
        var staging = Path.Combine(root, $".{name}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(Path.Combine(staging, DatasetLayout.ImagesFolder));
            Directory.CreateDirectory(Path.Combine(staging, DatasetLayout.PosesFolder));
            for (var v = 0; v < views.Count; v++)
            {
                var (camera, view) = views[v];
                using (var pixels = Tensor.FromArray(view.Rgba, view.Height, view.Width, 4))
                {
                    Image.WritePng(DatasetLayout.ImagePath(staging, v), pixels);
                }
                using var pose = Tensor.FromArray(camera.CameraToWorld, 4, 4);
                Npy.Write(DatasetLayout.PosePath(staging, v), pose);
            }
            using (var intrinsics = Tensor.FromArray(views[0].Camera.IntrinsicsArray(), 3, 2))
            {
                Npy.Write(Path.Combine(staging, DatasetLayout.IntrinsicsFile), intrinsics);
            }
            mesh.SavePly(Path.Combine(staging, DatasetLayout.MeshFile));
            if (Directory.Exists(final))
            {
                Directory.Delete(final, recursive: true);
            }
            Directory.Move(staging, final);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            TryDelete(staging);
            throw new LrmFormatException($"{final}: cannot write the object folder: {error.Message}");
        }
        catch
        {
            TryDelete(staging);
            throw;
        }
    }

    /// <summary>Writes <c>uids.json</c>: a JSON list of the object folder names, one per line.</summary>
    public static void WriteUids(string root, IEnumerable<string> names)
    {
        var text = new StringBuilder("[\n");
        var list = names.ToList();
        for (var k = 0; k < list.Count; k++)
        {
            text.Append("  \"").Append(list[k].Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal))
                .Append('"').Append(k + 1 < list.Count ? ",\n" : "\n");
        }
        text.Append("]\n");
        AtomicFile.Write(Path.Combine(root, DatasetLayout.UidsFile), stream => stream.Write(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>
    /// Makes <paramref name="root"/> ready for a new dataset; returns how many object folders of an earlier dataset it
    /// removed. A non-empty folder is refused unless <paramref name="overwrite"/>; with it, the earlier dataset goes —
    /// its object folders (<see cref="IsObjectFolder"/>), the staging folders of a killed run, <c>uids.json</c> and
    /// <c>synth.json</c> — because readers list every object folder and ignore <c>uids.json</c>, so an object left
    /// over would be trained on as part of the new dataset. Other files and folders are not the writer's and stay.
    /// A root that is itself an object folder (it has <c>rgba/</c>, so readers take it as a one-object dataset) is refused.
    /// </summary>
    public static int PrepareRoot(string root, bool overwrite)
    {
        if (File.Exists(root))
        {
            throw new LrmInvalidArgumentException($"{root}: the output is a file, not a folder");
        }
        var removed = 0;
        if (Directory.Exists(root) && FileErrors.Reading(root, "the output folder", () => Directory.EnumerateFileSystemEntries(root).Any()))
        {
            if (!overwrite)
            {
                throw new LrmInvalidArgumentException($"{root}: the output folder is not empty (pass --overwrite to replace the dataset in it)");
            }
            if (Directory.Exists(Path.Combine(root, DatasetLayout.ImagesFolder)))
            {
                throw new LrmInvalidArgumentException(
                    $"{root}: the output folder is itself an object folder (it has {DatasetLayout.ImagesFolder}/, so readers would take it as one object); --overwrite replaces the objects of a dataset folder: give that folder or a new one");
            }
            removed = RemoveEarlierDataset(root);
        }
        try
        {
            Directory.CreateDirectory(root);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{root}: cannot create the output folder: {error.Message}");
        }
        return removed;
    }

    /// <summary>True for a folder laid out as a dataset object: it holds <c>rgba/</c> or <c>pose/</c>.</summary>
    public static bool IsObjectFolder(string folder) =>
        Directory.Exists(Path.Combine(folder, DatasetLayout.ImagesFolder)) || Directory.Exists(Path.Combine(folder, DatasetLayout.PosesFolder));

    // The earlier dataset's object folders (counted), staging folders and meta files; returns the object count.
    private static int RemoveEarlierDataset(string root)
    {
        var folders = FileErrors.Reading(root, "the output folder", () => Directory.GetDirectories(root).Where(IsObjectFolder).Order(StringComparer.Ordinal).ToList());
        var objects = 0;
        foreach (var folder in folders)
        {
            var hidden = Path.GetFileName(folder).StartsWith('.');
            if (hidden && !folder.EndsWith(".tmp", StringComparison.Ordinal))
            {
                continue; // not a writer's staging folder, and readers skip hidden folders anyway
            }
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (Exception error) when (FileErrors.IsFileSystemError(error))
            {
                throw new LrmFormatException($"{folder}: cannot remove this object of the earlier dataset (--overwrite): {error.Message}");
            }
            objects += hidden ? 0 : 1;
        }
        foreach (var name in new[] { DatasetLayout.UidsFile, SynthManifest.FileName })
        {
            var path = Path.Combine(root, name);
            if (File.Exists(path))
            {
                FileErrors.Delete(path, "--overwrite replaces the earlier dataset");
            }
        }
        return objects;
    }

    private static void TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        catch (IOException)
        {
            // Best effort: the original error matters more.
        }
    }
}
