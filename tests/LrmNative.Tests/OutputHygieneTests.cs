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

    [Test]
    public void OverwriteRemovesTheEarlierDatasetsObjectsAndMetaFilesOnly()
    {
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "3", "--out", data]).ExitCode, Is.EqualTo(0));
        File.WriteAllText(Path.Combine(data, "notes.txt"), "the user's: stays");
        Directory.CreateDirectory(Path.Combine(data, "scripts"));
        File.WriteAllText(Path.Combine(data, "scripts", "make.sh"), "not an object folder: stays");

        var (code, _, log) = DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "12", "--objects", "2", "--out", data, "--overwrite"]);
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("removed the 3 object folder(s) of the earlier dataset"));
        Assert.That(Directory.GetDirectories(data).Select(Path.GetFileName).Order(StringComparer.Ordinal),
            Is.EqualTo(new[] { "obj_00000", "obj_00001", "scripts" }), "obj_00002 of the earlier run is gone");
        Assert.That(DatasetLayout.ReadUids(data), Is.EqualTo(new[] { "obj_00000", "obj_00001" }));
        Assert.That(File.ReadAllText(Path.Combine(data, SynthManifest.FileName)), Does.Contain("\"seed\": \"12\"").And.Contain("\"objects\": 2"));
        Assert.That(File.Exists(Path.Combine(data, "notes.txt")) && File.Exists(Path.Combine(data, "scripts", "make.sh")), Is.True);

        // `render --overwrite` over a synth dataset: no synth object and no synth.json (a later `synth --resume` would trust it).
        var meshes = PathOf("meshes");
        Directory.CreateDirectory(meshes);
        DatasetTestSupport.Icosphere(1).SavePly(Path.Combine(meshes, "ball.ply"));
        Directory.Delete(Path.Combine(data, "scripts"), recursive: true);
        (code, _, log) = DatasetTestSupport.Lrm("dataset", "render", "--meshes", meshes, "--views", "2", "--resolution", "16", "--out", data, "--overwrite");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(Directory.GetDirectories(data).Select(Path.GetFileName), Is.EqualTo(new[] { "ball" }));
        Assert.That(File.Exists(Path.Combine(data, SynthManifest.FileName)), Is.False);
        Assert.That(DatasetChecker.Check(data).Problems, Is.Empty);
        Assert.That(DatasetLayout.ObjectFolders(data).Select(Path.GetFileName), Is.EqualTo(new[] { "ball" }), "what training reads");
    }

    [Test]
    public void AnInterruptedOverwriteResumesToTheStraightRunsBytes()
    {
        // Before: an overwrite of a seed-11 dataset by seed 12, stopped after one object, left seed-11 objects 1 and 2 under
        // a seed-12 manifest, and --resume kept them as if they were this run's.
        var straight = PathOf("straight");
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "12", "--objects", "3", "--out", straight]).ExitCode, Is.EqualTo(0));
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "3", "--out", data]).ExitCode, Is.EqualTo(0));

        var options = new DatasetOptions { Style = ObjectStyle.Simple, Views = 2, Resolution = 24, MeshResolution = 16, Threads = 1, Seed = 12, Overwrite = true };
        using var stop = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            DatasetCommand.RunSynth(3, options, data, TextWriter.Null, interactive: false, done: n =>
            {
                if (n == 1)
                {
                    stop.Cancel();
                }
            }, cancellation: stop.Token));

        var (code, _, log) = DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "12", "--objects", "3", "--out", data, "--resume"]);
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("resumed: 1 objects were already there and kept"));
        Assert.That(DatasetTestSupport.Hashes(data), Is.EqualTo(DatasetTestSupport.Hashes(straight)), "overwritten, interrupted and resumed = straight, byte for byte");
    }

    [Test]
    public void ResumeRefusesObjectFoldersTheRunWouldNotWrite()
    {
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "2", "--out", data]).ExitCode, Is.EqualTo(0));
        DatasetTestSupport.CopyFolder(Path.Combine(data, "obj_00001"), Path.Combine(data, "chair"));
        DatasetTestSupport.CopyFolder(Path.Combine(data, "obj_00001"), Path.Combine(data, "obj_00007"));
        var (code, _, error) = DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "3", "--out", data, "--resume"]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("2 object folder(s) this run would not write (chair, obj_00007)").And.Contain("--overwrite"));
        Assert.That(Directory.Exists(Path.Combine(data, "obj_00002")), Is.False, "a refused resume writes nothing");
    }

    [Test]
    public void OverwriteRefusesARootThatIsItselfAnObjectFolder()
    {
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "1", "--out", data]).ExitCode, Is.EqualTo(0));
        var single = Path.Combine(data, "obj_00000");
        var (code, _, error) = DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "1", "--out", single, "--overwrite"]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("itself an object folder"));
        Assert.That(Directory.GetDirectories(single).Select(Path.GetFileName).Order(StringComparer.Ordinal), Is.EqualTo(new[] { "pose", "rgba" }), "nothing written into it");
    }

    [TestCase("chair.obj", "chair")]
    [TestCase("rgba.obj", "rgba_mesh")]
    [TestCase("RGBA.ply", "RGBA_mesh")]
    [TestCase("pose.glb", "pose_mesh")]
    [TestCase("uids.json.obj", "uids.json_mesh")]
    [TestCase("synth.json.ply", "synth.json_mesh")]
    [TestCase("intrinsics.npy.obj", "intrinsics.npy_mesh")]
    [TestCase(".rgba.obj", "rgba_mesh")]
    [TestCase("..obj", "mesh")]
    [TestCase("my chair (2).obj", "my_chair__2_")]
    public void MeshNamesAvoidTheLayoutsOwnNames(string file, string expected) =>
        Assert.That(DatasetGeneration.MeshName(Path.Combine("meshes", file)), Is.EqualTo(expected));

    [Test]
    public void MeshesNamedLikeTheLayoutRenderToADatasetThatReadsBack()
    {
        var meshes = PathOf("meshes");
        Directory.CreateDirectory(meshes);
        DatasetTestSupport.Icosphere(1).SaveObj(Path.Combine(meshes, "rgba.obj"));
        DatasetTestSupport.Icosphere(1).SavePly(Path.Combine(meshes, "uids.json.ply"));
        var output = PathOf("out");
        var (code, _, error) = DatasetTestSupport.Lrm("dataset", "render", "--meshes", meshes, "--views", "2", "--resolution", "16", "--out", output);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(DatasetLayout.ObjectFolders(output).Select(Path.GetFileName), Is.EqualTo(new[] { "rgba_mesh", "uids.json_mesh" }),
            "two objects, not the root read as one object");
        Assert.That(File.Exists(Path.Combine(output, DatasetLayout.UidsFile)), Is.True, "uids.json is the list, not an object folder");
        Assert.That(DatasetLayout.ReadUids(output), Is.EqualTo(new[] { "rgba_mesh", "uids.json_mesh" }));
        Assert.That(DatasetChecker.Check(output).Problems, Is.Empty);
    }

    [Test]
    public void TwoMeshesWithOneObjectNameAreRefusedBeforeAnythingIsWritten()
    {
        var meshes = PathOf("meshes");
        Directory.CreateDirectory(meshes);
        DatasetTestSupport.Icosphere(1).SaveObj(Path.Combine(meshes, "rgba.obj"));
        DatasetTestSupport.Icosphere(1).SavePly(Path.Combine(meshes, "rgba_mesh.ply"));
        var output = PathOf("out");
        var (code, _, error) = DatasetTestSupport.Lrm("dataset", "render", "--meshes", meshes, "--views", "2", "--resolution", "16", "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("rgba.obj and rgba_mesh.ply map to the same object folder 'rgba_mesh'"));
        Assert.That(Directory.Exists(output), Is.False);
    }

    [Test]
    [NonParallelizable] // sets the process-wide stand-in for the available memory
    public void ViewsThatCannotFitInMemoryAreRefusedBeforeAnythingIsRenderedOrRemoved()
    {
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "1", "--out", data]).ExitCode, Is.EqualTo(0));
        var before = DatasetTestSupport.Hashes(data);
        var meshes = PathOf("meshes");
        Directory.CreateDirectory(meshes);
        DatasetTestSupport.Icosphere(1).SavePly(Path.Combine(meshes, "ball.ply"));
        // 32 views of 512² hold 33 · 512² · 24 bytes ≈ 198 MiB (the views plus one view of working space).
        Assert.That(DatasetGeneration.ViewMemoryBytes(new DatasetOptions { Views = 32, Resolution = 512 }), Is.EqualTo(33L * 512 * 512 * 24));
        HostMemory.AvailableOverride = 64L << 20;
        try
        {
            string[][] runs =
            [
                ["dataset", "synth", "--style", "simple", "--objects", "1", "--views", "32", "--resolution", "512", "--out", PathOf("new")],
                ["dataset", "synth", "--style", "simple", "--objects", "1", "--views", "32", "--resolution", "512", "--out", data, "--overwrite"],
                ["dataset", "render", "--meshes", meshes, "--views", "32", "--resolution", "512", "--out", PathOf("rendered")],
            ];
            foreach (var args in runs)
            {
                var (code, _, error) = DatasetTestSupport.Lrm(args);
                Assert.That(code, Is.EqualTo(1), string.Join(' ', args));
                Assert.That(error, Does.Contain("--views 32 at --resolution 512").And.Contain("198.0 MiB of host memory").And.Contain("64.0 MiB is available")
                    .And.Contain("fewer --views or a lower --resolution"), string.Join(' ', args));
            }
        }
        finally
        {
            HostMemory.AvailableOverride = null;
        }
        Assert.That(Directory.Exists(PathOf("new")) || Directory.Exists(PathOf("rendered")), Is.False, "nothing written");
        Assert.That(DatasetTestSupport.Hashes(data), Is.EqualTo(before), "the dataset --overwrite would have replaced is untouched");
    }

    [Test]
    public void AHugeManifestIsRefusedWithoutReadingIt()
    {
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "1", "--out", data]).ExitCode, Is.EqualTo(0));
        var manifest = Path.Combine(data, SynthManifest.FileName);
        using (var stream = new FileStream(manifest, FileMode.Create))
        {
            stream.SetLength(FileErrors.MaxSideFileBytes + 1); // sparse: costs no disk
        }
        var (code, _, error) = DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "2", "--out", data, "--resume"]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain(manifest).And.Contain("larger than 64 MB"));
    }

    [Test]
    public void AnUnreadableManifestIsAClearError()
    {
        var data = PathOf("data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--seed", "11", "--objects", "1", "--out", data]).ExitCode, Is.EqualTo(0));
        var manifest = Path.Combine(data, SynthManifest.FileName);
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("makes the file unreadable with a POSIX file mode");
            return;
        }
        File.SetUnixFileMode(manifest, UnixFileMode.None);
        try
        {
            if (CanRead(manifest))
            {
                Assert.Ignore("running as root (or with CAP_DAC_OVERRIDE): a mode-000 file is still readable, so the unreadable case cannot be made here");
            }
            var error = Assert.Throws<LrmFormatException>(() => SynthManifest.CheckResume(data, new DatasetOptions
            {
                Style = ObjectStyle.Simple, Views = 2, Resolution = 24, MeshResolution = 16, Seed = 11,
            }, 2));
            Assert.That(error!.Message, Does.Contain(manifest).And.Contain("cannot read the dataset manifest"));
        }
        finally
        {
            File.SetUnixFileMode(manifest, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        static bool CanRead(string path)
        {
            try
            {
                using var stream = File.OpenRead(path);
                return true;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }
    }

    [Test]
    public void EvalModelOutThatCannotBeAFolderFailsBeforeTheModelLoads()
    {
        var data = PathOf("data");
        DatasetGeneration.Synthesize(data, 2, new DatasetOptions { Style = ObjectStyle.Simple, Views = 3, Resolution = 24, MeshResolution = 16, Seed = 11 });
        var file = PathOf("file.txt");
        File.WriteAllText(file, "x");
        var options = new ModelEvaluationOptions { Views = 2, SkipMesh = true };
        foreach (var output in new[] { file, Path.Combine(file, "renders") })
        {
            using var table = new StringWriter();
            var error = Assert.Throws<LrmFormatException>(() =>
                EvalCommand.RunModel(Golden.TinyModelDirectory, data, options with { OutputDirectory = output }, Device.Cpu, null, table));
            Assert.That(error!.Message, Does.Contain(output).And.Contain("not writable"));
            Assert.That(table.ToString(), Is.Empty, "refused before the model line");
        }

        // An object's own folder that cannot be made is named too (not a raw IOException after the first object).
        var renders = PathOf("renders");
        Directory.CreateDirectory(renders);
        File.WriteAllText(Path.Combine(renders, "obj_00001"), "a file where object 1's folder goes");
        var objectError = Assert.Throws<LrmFormatException>(() =>
            EvalCommand.RunModel(Golden.TinyModelDirectory, data, options with { OutputDirectory = renders }, Device.Cpu, null, TextWriter.Null));
        Assert.That(objectError!.Message, Does.Contain(Path.Combine(renders, "obj_00001")).And.Contain("object 'obj_00001'"));
    }

    [Test]
    public void EvalModelOutKeepsOnlyThisRunsRendersAndMesh()
    {
        var data = PathOf("data");
        DatasetGeneration.Synthesize(data, 1, new DatasetOptions { Style = ObjectStyle.Simple, Views = 4, Resolution = 24, MeshResolution = 16, Seed = 11 });
        var renders = PathOf("renders");
        var options = new ModelEvaluationOptions { Views = 3, SkipMesh = true, OutputDirectory = renders };
        EvalCommand.RunModel(Golden.TinyModelDirectory, data, options, Device.Cpu, null, TextWriter.Null);
        var folder = Path.Combine(renders, "obj_00000");
        Assert.That(Files(folder), Is.EqualTo(new[] { "001_gt.png", "001_render.png", "002_gt.png", "002_render.png", "003_gt.png", "003_render.png" }));
        File.WriteAllText(Path.Combine(folder, "mesh.ply"), "an earlier run's mesh");
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "the user's: stays");

        EvalCommand.RunModel(Golden.TinyModelDirectory, data, options with { Views = 1 }, Device.Cpu, null, TextWriter.Null);
        Assert.That(Files(folder), Is.EqualTo(new[] { "001_gt.png", "001_render.png", "notes.txt" }),
            "the views and mesh of the earlier run are gone (no mesh: mesh metrics were not asked for)");
    }

    [Test]
    public void ShowcaseOutThatCannotBeWrittenFailsBeforeTheModelLoads()
    {
        var file = PathOf("file.txt");
        File.WriteAllText(file, "x");
        using var log = new StringWriter();
        var error = Assert.Throws<LrmFormatException>(() =>
            ShowcaseCommand.Run(Golden.TinyModelDirectory, [Photo()], Path.Combine(file, "x.png"), 16, 8, null, Device.Cpu, log));
        Assert.That(error!.Message, Does.Contain(file).And.Contain("not writable"));
        Assert.That(log.ToString(), Is.Empty, "refused before any image was reconstructed");

        var folder = PathOf("picture.png");
        Directory.CreateDirectory(folder);
        var folderError = Assert.Throws<LrmInvalidArgumentException>(() =>
            ShowcaseCommand.Run(Golden.TinyModelDirectory, [Photo()], folder, 16, 8, null, Device.Cpu, log));
        Assert.That(folderError!.Message, Does.Contain(folder).And.Contain("is a folder"));
        Assert.That(log.ToString(), Is.Empty);
    }
}
