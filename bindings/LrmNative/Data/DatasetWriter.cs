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

    /// <summary>Refuses an output folder that holds files other than a previous dataset's, unless overwriting.</summary>
    public static void PrepareRoot(string root, bool overwrite)
    {
        if (File.Exists(root))
        {
            throw new LrmInvalidArgumentException($"{root}: the output is a file, not a folder");
        }
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any() && !overwrite)
        {
            throw new LrmInvalidArgumentException($"{root}: the output folder is not empty (pass --overwrite to replace the objects in it)");
        }
        try
        {
            Directory.CreateDirectory(root);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{root}: cannot create the output folder: {error.Message}");
        }
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
