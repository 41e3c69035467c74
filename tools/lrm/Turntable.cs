using System.Diagnostics;
using System.Globalization;
using LrmNative.IO;

namespace LrmNative.Cli;

/// <summary>
/// The turntable export of `lrm reconstruct --turntable N`: OpenLRM's orbit (<see cref="Camera.Turntable"/>) rendered
/// to <c>OUT/turntable/000.png</c> … and, when <c>ffmpeg</c> is on PATH, encoded to <c>OUT/turntable.mp4</c> (H.264,
/// yuv420p, <see cref="ReconstructCommand.TurntableFramesPerSecond"/> frames per second; MPEG-4 part 2 when this ffmpeg
/// has no libx264). Without ffmpeg a note says so and only the frames are written. The MP4 is written to a temporary
/// file and renamed, like every other output. Frames and an MP4 left in the folder by an earlier run are removed first:
/// ffmpeg's <c>%03d.png</c> input reads every consecutive frame it finds, so a shorter turntable would otherwise be
/// encoded with the old run's frames after its own, and an old MP4 would pass for this run's when ffmpeg is missing.
/// </summary>
internal static class Turntable
{
    /// <summary>Folder of the PNG frames inside the output folder.</summary>
    public const string FolderName = "turntable";

    /// <summary>The MP4's file name inside the output folder.</summary>
    public const string VideoName = "turntable.mp4";

    /// <summary>Frame file name: three digits from 000.</summary>
    public static string FrameName(int index) => index.ToString("D3", CultureInfo.InvariantCulture) + ".png";

    /// <summary>True for a frame's file name: three digits and .png (what <see cref="FrameName"/> writes and ffmpeg reads).</summary>
    public static bool IsFrameName(string name) =>
        name.Length == 7 && char.IsAsciiDigit(name[0]) && char.IsAsciiDigit(name[1]) && char.IsAsciiDigit(name[2])
        && name.EndsWith(".png", StringComparison.Ordinal);

    /// <summary>
    /// Removes the turntable an earlier run left in <paramref name="folder"/>: <c>turntable/NNN.png</c> and
    /// <c>turntable.mp4</c> (other files in turntable/ are not this command's and stay); returns the paths removed.
    /// </summary>
    public static IReadOnlyList<string> RemoveEarlier(string folder, string why)
    {
        var frameFolder = Path.Combine(folder, FolderName);
        var stale = new List<string>();
        if (Directory.Exists(frameFolder))
        {
            stale.AddRange(FileErrors.Reading(frameFolder, "the turntable folder",
                () => Directory.GetFiles(frameFolder).Where(f => IsFrameName(Path.GetFileName(f))).Order(StringComparer.Ordinal).ToList()));
        }
        var video = Path.Combine(folder, VideoName);
        if (File.Exists(video))
        {
            stale.Add(video);
        }
        foreach (var path in stale)
        {
            FileErrors.Delete(path, why);
        }
        return stale;
    }

    /// <summary>Renders and writes the frames, then the MP4 if ffmpeg is available; returns the MP4's path or null.</summary>
    public static string? Write(Reconstruction result, string folder, int frames, int size, ProgressDisplay display,
        CancellationToken cancellation = default)
    {
        var frameFolder = Path.Combine(folder, FolderName);
        RemoveEarlier(folder, "an earlier run's turntable, replaced by this run's");
        try
        {
            Directory.CreateDirectory(frameFolder);
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw new LrmFormatException($"{frameFolder}: cannot create the turntable folder: {error.Message}");
        }
        var index = 0;
        foreach (var view in result.RenderTurntable(frames, size, cancellation))
        {
            using (view)
            {
                view.Color.SavePng(Path.Combine(frameFolder, FrameName(index++)));
            }
        }
        var ffmpeg = FindFfmpeg();
        if (ffmpeg is null)
        {
            display.Note($"ffmpeg is not on PATH: wrote the {frames} PNG frames only (install ffmpeg for {VideoName})");
            return null;
        }
        var video = Path.Combine(folder, VideoName);
        string? failure = null;
        foreach (var codec in new[] { "libx264", "mpeg4" })
        {
            failure = Encode(ffmpeg, frameFolder, video, codec);
            if (failure is null)
            {
                return video;
            }
        }
        display.Warning($"ffmpeg could not encode {video}: {failure}; the PNG frames are in {frameFolder}");
        return null;
    }

    /// <summary>The ffmpeg executable on PATH, or null.</summary>
    public static string? FindFfmpeg() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, "ffmpeg")).FirstOrDefault(File.Exists);

    // Encodes the frames to a temporary MP4 next to the target and renames it; null on success, else why not.
    private static string? Encode(string ffmpeg, string frameFolder, string video, string codec)
    {
        var temporary = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(video))!, $".{VideoName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var start = new ProcessStartInfo(ffmpeg)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-framerate", ReconstructCommand.TurntableFramesPerSecond.ToString(CultureInfo.InvariantCulture),
            "-i", Path.Combine(frameFolder, "%03d.png"),
            // yuv420p (what players expect) needs even sides.
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", codec,
            "-f", "mp4", temporary,
        })
        {
            start.ArgumentList.Add(argument);
        }
        try
        {
            using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start ffmpeg");
            process.StandardInput.Close();
            var errors = process.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0 || !File.Exists(temporary))
            {
                var last = errors.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
                return $"{codec}: exit code {process.ExitCode}{(last.Length > 0 ? $" ({last})" : "")}";
            }
            File.Move(temporary, video, overwrite: true);
            return null;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return $"{codec}: {error.Message}";
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }
}
