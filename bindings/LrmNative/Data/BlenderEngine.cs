using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LrmNative.IO;

namespace LrmNative.Data;

/// <summary>How <c>lrm dataset render --engine blender</c> runs Blender: the executable, the shipped script, the render engine.</summary>
internal sealed record BlenderSettings(string Executable, string Script)
{
    /// <summary>Blender render engine: CYCLES (CPU) or BLENDER_EEVEE.</summary>
    public string Engine { get; init; } = "CYCLES";

    /// <summary>Samples per pixel (Cycles) or anti-aliasing samples (Eevee).</summary>
    public int Samples { get; init; } = 64;
}

/// <summary>
/// The camera of one Blender job in Blender's terms, derived from a <see cref="DatasetCamera"/>: a perspective camera
/// with a horizontal sensor fit, <c>lens = fx · sensor_width</c> (fx normalised by the width; ours is 0.75, so a 36 mm
/// sensor gets a 27 mm lens) and shifts in units of the larger image side placing the principal point. Blender cameras
/// look down −Z with +Y up, the OpenGL convention of our poses, so the camera-to-world matrix is the camera object's
/// <c>matrix_world</c> unchanged.
/// </summary>
internal readonly record struct BlenderLens(double SensorWidth, double Lens, double ShiftX, double ShiftY)
{
    public const double DefaultSensorWidth = 36.0;

    public static BlenderLens From(DatasetCamera camera)
    {
        ArgumentNullException.ThrowIfNull(camera);
        if (Math.Abs(camera.FocalX * camera.Width - camera.FocalY * camera.Height) > 1e-9 * camera.FocalX * camera.Width)
        {
            throw new LrmUnsupportedException(string.Create(CultureInfo.InvariantCulture,
                $"Blender cameras have square pixels: fx·width ({camera.FocalX * camera.Width}) must equal fy·height ({camera.FocalY * camera.Height})"));
        }
        double side = Math.Max(camera.Width, camera.Height);
        return new BlenderLens(DefaultSensorWidth, camera.FocalX * DefaultSensorWidth,
            (0.5 - camera.PrincipalX) * camera.Width / side, (camera.PrincipalY - 0.5) * camera.Height / side);
    }
}

/// <summary>
/// The optional Blender path of <c>lrm dataset render</c> (textured assets): per mesh, a JSON job (the mesh, the C#
/// normalisation, the exact cameras and lighting the CPU path would use) is handed to
/// <c>tools/lrm/blender/render_views.py</c> in a background Blender, which imports the mesh with Blender's own importer
/// (so textures and materials come along), applies the normalisation, checks its bounds against ours and renders one
/// RGBA PNG per view on a transparent film. The images are read back and written with <see cref="DatasetWriter"/>
/// like the CPU path's (poses, intrinsics and mesh.ply identical between engines).
/// </summary>
internal static class BlenderEngine
{
    /// <summary>The script's path relative to the <c>lrm</c> tool's folder.</summary>
    public const string ScriptRelativePath = "blender/render_views.py";

    /// <summary>The script shipped next to the running tool (it may be missing; callers check).</summary>
    public static string DefaultScript => Path.Combine(AppContext.BaseDirectory, ScriptRelativePath);

    /// <summary>The <c>blender</c> executable on PATH, or null.</summary>
    public static string? FindOnPath()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        string[] names = OperatingSystem.IsWindows() ? ["blender.exe"] : ["blender"];
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .SelectMany(folder => names.Select(name => Path.Combine(folder, name)))
            .FirstOrDefault(File.Exists);
    }

    /// <summary>Writes the job file of one mesh (read by the script; <see cref="ReadJob"/> reads it back).</summary>
    public static void WriteJob(string path, BlenderJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteString("mesh", Path.GetFullPath(job.Mesh));
            json.WriteNumber("scale", job.Scale);
            WriteVector(json, "center", job.Center);
            json.WriteStartArray("bounds");
            WriteVector(json, null, job.BoundsMin);
            WriteVector(json, null, job.BoundsMax);
            json.WriteEndArray();
            var first = job.Cameras[0];
            json.WriteNumber("width", first.Width);
            json.WriteNumber("height", first.Height);
            json.WriteStartArray("focal");
            json.WriteNumberValue(first.FocalX);
            json.WriteNumberValue(first.FocalY);
            json.WriteEndArray();
            json.WriteStartArray("principal");
            json.WriteNumberValue(first.PrincipalX);
            json.WriteNumberValue(first.PrincipalY);
            json.WriteEndArray();
            var lens = BlenderLens.From(first);
            json.WriteNumber("sensor_width", lens.SensorWidth);
            json.WriteNumber("lens", lens.Lens);
            json.WriteNumber("shift_x", lens.ShiftX);
            json.WriteNumber("shift_y", lens.ShiftY);
            json.WriteStartArray("cameras");
            foreach (var camera in job.Cameras)
            {
                json.WriteStartArray();
                foreach (var value in camera.CameraToWorld)
                {
                    json.WriteNumberValue((double)value); // exact: a float widened to double prints and parses back to itself
                }
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteStartObject("lighting");
            WriteVector(json, "sky", job.Lighting.Sky);
            WriteVector(json, "ground", job.Lighting.Ground);
            json.WriteStartArray("lights");
            for (var k = 0; k < job.Lighting.Directions.Length; k++)
            {
                json.WriteStartObject();
                WriteVector(json, "direction", job.Lighting.Directions[k]);
                WriteVector(json, "color", job.Lighting.Colors[k]);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteString("engine", job.Engine);
            json.WriteNumber("samples", job.Samples);
            json.WriteString("out", Path.GetFullPath(job.Output));
            json.WriteEndObject();
        });
    }

    private static void WriteVector(Utf8JsonWriter json, string? name, Vec3 v)
    {
        if (name is null)
        {
            json.WriteStartArray();
        }
        else
        {
            json.WriteStartArray(name);
        }
        json.WriteNumberValue(v.X);
        json.WriteNumberValue(v.Y);
        json.WriteNumberValue(v.Z);
        json.WriteEndArray();
    }

    /// <summary>Reads a job file back (the cameras as the script sees them: camera-to-world 4×4 row-major, image size, focal).</summary>
    public static (float[][] Cameras, int Width, int Height, double FocalX, double FocalY, double Scale, Vec3 Center, double Lens, double SensorWidth) ReadJob(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        var cameras = root.GetProperty("cameras").EnumerateArray().Select(c => c.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).ToArray();
        var focal = root.GetProperty("focal").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var center = root.GetProperty("center").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        return (cameras, root.GetProperty("width").GetInt32(), root.GetProperty("height").GetInt32(), focal[0], focal[1],
            root.GetProperty("scale").GetDouble(), new Vec3(center[0], center[1], center[2]), root.GetProperty("lens").GetDouble(),
            root.GetProperty("sensor_width").GetDouble());
    }

    /// <summary>
    /// Renders one mesh's views in Blender under <paramref name="work"/> (a scratch folder the caller deletes) and reads
    /// them back. Any failure (Blender's exit code, a missing or wrongly sized image) is one <see cref="LrmFormatException"/>
    /// naming the mesh, with Blender's own message.
    /// </summary>
    public static List<RenderedView> Render(BlenderSettings settings, BlenderJob job, string work, int threads)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(job);
        if (!File.Exists(settings.Script))
        {
            throw new LrmInternalException($"the Blender script is missing: {settings.Script} (it ships next to the lrm tool)");
        }
        Directory.CreateDirectory(work);
        var jobPath = Path.Combine(work, "job.json");
        WriteJob(jobPath, job);
        var start = new ProcessStartInfo(settings.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = work,
        };
        start.ArgumentList.Add("--background");
        start.ArgumentList.Add("--factory-startup");
        start.ArgumentList.Add("-noaudio");
        if (threads > 0)
        {
            start.ArgumentList.Add("--threads");
            start.ArgumentList.Add(threads.ToString(CultureInfo.InvariantCulture));
        }
        start.ArgumentList.Add("--python-exit-code");
        start.ArgumentList.Add("1");
        start.ArgumentList.Add("--python");
        start.ArgumentList.Add(Path.GetFullPath(settings.Script));
        start.ArgumentList.Add("--");
        start.ArgumentList.Add(jobPath);
        string output, error;
        int exitCode;
        try
        {
            using var process = Process.Start(start) ?? throw new InvalidOperationException("the process did not start");
            var outputTask = process.StandardOutput.ReadToEndAsync();
            var errorTask = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            output = outputTask.GetAwaiter().GetResult();
            error = errorTask.GetAwaiter().GetResult();
            exitCode = process.ExitCode;
        }
        catch (Exception failure) when (failure is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new LrmFormatException($"{job.Mesh}: cannot run Blender ({settings.Executable}): {failure.Message}");
        }
        if (exitCode != 0)
        {
            throw new LrmFormatException($"{job.Mesh}: Blender failed (exit code {exitCode}): {Explain(output, error)}");
        }
        var views = new List<RenderedView>(job.Cameras.Count);
        for (var v = 0; v < job.Cameras.Count; v++)
        {
            var camera = job.Cameras[v];
            var path = Path.Combine(job.Output, DatasetLayout.ViewFileName(v, ".png"));
            if (!File.Exists(path))
            {
                throw new LrmFormatException($"{job.Mesh}: Blender exited normally but wrote no image for view {v} ({path}): {Explain(output, error)}");
            }
            using var image = Image.Load(path);
            if (image.Width != camera.Width || image.Height != camera.Height)
            {
                throw new LrmFormatException($"{job.Mesh}: Blender's view {v} is {image.Width}×{image.Height}, expected {camera.Width}×{camera.Height}");
            }
            var view = new RenderedView(camera.Width, camera.Height);
            var pixels = image.Pixels.AsSpan<float>();
            pixels.CopyTo(view.Rgba);
            for (var p = 0; p < camera.Width * camera.Height; p++)
            {
                if (view.Rgba[4 * p + 3] == 0)
                {
                    view.Rgba[4 * p] = view.Rgba[4 * p + 1] = view.Rgba[4 * p + 2] = 0; // the layout's RGB = 0 where alpha = 0
                }
                view.Depth[p] = double.NaN; // Blender's depth is not read back
            }
            views.Add(view);
        }
        return views;
    }

    // The script's own "lrm-blender:" lines when there are any, else the last lines Blender printed.
    private static string Explain(string output, string error)
    {
        var lines = (error + "\n" + output).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var own = lines.Where(l => l.StartsWith("lrm-blender:", StringComparison.Ordinal)).ToArray();
        if (own.Length > 0)
        {
            return string.Join(" | ", own);
        }
        var errorLines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var tail = (errorLines.Length > 0 ? errorLines : lines).TakeLast(8).ToArray();
        return tail.Length == 0 ? "(no output)" : string.Join(" | ", tail);
    }
}

/// <summary>One mesh's Blender job: the file, the C# normalisation p' = (p − center)·scale and its result's bounds, the views' cameras and lighting, the output folder.</summary>
internal sealed record BlenderJob(string Mesh, double Scale, Vec3 Center, Vec3 BoundsMin, Vec3 BoundsMax, IReadOnlyList<DatasetCamera> Cameras,
    Lighting Lighting, string Output, string Engine = "CYCLES", int Samples = 64);
