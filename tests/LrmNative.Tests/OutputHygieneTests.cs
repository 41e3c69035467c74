using System.CommandLine;
using LrmNative.Backends;
using LrmNative.Cli;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Metrics;

namespace LrmNative.Tests;

/// <summary>
/// What a command leaves in its output folder, and when it finds out it cannot write there. Re-running into one folder
/// never mixes an earlier run's files into this run's: `reconstruct` (turntable frames and MP4, query.npy, mesh.*),
/// `dataset synth/render --overwrite` (the earlier dataset's objects, uids.json, synth.json; an interrupted overwrite
/// then resumes to a straight run's bytes), `eval model --out` (renders and meshes); files the commands do not name
/// stay. Mesh names that are the layout's own get a suffix; an object's views that cannot fit in memory, an output that
/// cannot be a folder, and an unreadable or huge synth.json are one clear error before the work starts.
/// </summary>
[TestFixture]
public sealed class OutputHygieneTests : TemporaryFolderFixture
{
    private static readonly string[] SmallSynth =
        ["dataset", "synth", "--style", "simple", "--views", "2", "--resolution", "24", "--mesh-resolution", "16", "--threads", "1"];

    // Runs `lrm reconstruct ARGS` in process on the tiny model; returns the exit code and what went to stderr.
    private static (int ExitCode, string Error) Reconstruct(params string[] args)
    {
        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(ReconstructCommand.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = root.Parse(["reconstruct", "--model", Golden.TinyModelDirectory, "--render-size", "8", .. args])
            .Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, error.ToString());
    }

    private string Photo()
    {
        var path = PathOf("object.png");
        if (!File.Exists(path))
        {
            using var image = BenchCommand.EllipseImage(90, 70, 50, 33, 25, 20);
            image.SavePng(path);
        }
        return path;
    }

    private static string[] Files(string folder) => [.. Directory.GetFiles(folder).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal)];

    [Test]
    public void AShorterTurntableReplacesTheEarlierFramesAndVideo()
    {
        var output = PathOf("out");
        var (code, log) = Reconstruct(Photo(), "--out", output, "--resolution", "0", "--turntable", "6");
        Assert.That(code, Is.EqualTo(0), log);
        var frames = Path.Combine(output, Turntable.FolderName);
        Assert.That(Files(frames), Has.Length.EqualTo(6));
        File.WriteAllText(Path.Combine(frames, "notes.txt"), "the user's: stays");
        File.WriteAllText(Path.Combine(frames, "cover.png"), "not a frame name: stays");
        // An MP4 of the earlier run (written here by hand: this machine may have no ffmpeg).
        var video = Path.Combine(output, Turntable.VideoName);
        File.WriteAllText(video, "the earlier run's video");

        (code, log) = Reconstruct(Photo(), "--out", output, "--resolution", "0", "--turntable", "3");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(Files(frames), Is.EqualTo(new[] { "000.png", "001.png", "002.png", "cover.png", "notes.txt" }),
            "this run's 3 frames only (ffmpeg's %03d.png would read 003-005 too), the user's files kept");
        Assert.That(!File.Exists(video) || File.ReadAllText(video) != "the earlier run's video", Is.True,
            "no ffmpeg: no MP4; with ffmpeg: this run's MP4 — never the earlier one");
    }

    [Test]
    public void ARunWithoutTheOptionalOutputsRemovesAnEarlierRunsOfThem()
    {
        var output = PathOf("out");
        var points = PathOf("points.npy");
        using (var values = Tensor.FromArray(new float[] { 0, 0, 0, 0.1f, -0.2f, 0.3f }, 2, 3))
        {
            Npy.Write(points, values);
        }
        var (code, log) = Reconstruct(Photo(), "--out", output, "--query", points, "--turntable", "2", "--resolution", "24", "--threshold", "0.45",
            "--formats", "glb,obj");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(Files(output).Where(f => f != Turntable.VideoName),
            Is.EqualTo(new[] { "depth.png", "input_view.png", "mesh.glb", "mesh.obj", "opacity.png", "preprocessed.png", "query.npy" }));
        File.WriteAllText(Path.Combine(output, Turntable.VideoName), "the earlier run's video (or ffmpeg's, where it is installed)");
        File.WriteAllText(Path.Combine(output, "mesh.ply"), "a format the next run does not name: stays");
        File.WriteAllText(Path.Combine(output, "notes.txt"), "the user's: stays");

        (code, log) = Reconstruct(Photo(), "--out", output, "--resolution", "0", "--formats", "glb,obj");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(Files(output), Is.EqualTo(new[] { "depth.png", "input_view.png", "mesh.ply", "notes.txt", "opacity.png", "preprocessed.png" }),
            "no query.npy, mesh.glb/obj or turntable.mp4 of the earlier run");
        Assert.That(Directory.Exists(Path.Combine(output, Turntable.FolderName)), Is.False, "the emptied turntable folder goes too");
        Assert.That(log, Does.Contain("query.npy").And.Contain("mesh.glb").And.Contain("mesh.obj").And.Contain("from an earlier run"));
    }
}
