using System.CommandLine;
using LrmNative.Backends;
using LrmNative.Cli;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// `lrm train` end to end on a tiny config and a ray-cast dataset written by the test: 20 steps straight equal 10
/// steps, stop, resume, 10 more — bit for bit (final model and checkpoint); the final model loads in
/// `lrm reconstruct --model`; bad data stops with one error naming the object and the file, or is skipped and reported;
/// a resume with other settings is refused naming each; the default warm-up leaves room for the decay; bad arguments
/// and a stale log are refused.
/// </summary>
[TestFixture]
public sealed class TrainCommandTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "lrm-traincmd-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_folder, recursive: true);

    // Runs `lrm COMMAND ARGS` in process; returns the exit code and stderr.
    private static (int ExitCode, string Error) Lrm(params string[] args)
    {
        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(ReconstructCommand.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, error.ToString());
    }

    private (string Config, string Data) WriteInputs(int objects = 2, int views = 4)
    {
        var config = Path.Combine(_folder, "config.json");
        File.WriteAllText(config, TrainingSceneData.TinyConfigJson);
        var data = Path.Combine(_folder, "data");
        TrainingSceneData.Write(data, objects, views, 32);
        return (config, data);
    }

    // The test's `lrm train` command line; an option in extra replaces the default value of the same option.
    private static string[] TrainArgs(string config, string data, string output, params string[] extra)
    {
        var options = new List<(string Name, string? Value)>
        {
            ("--config", config), ("--data", data), ("--out", output), ("--steps", "20"), ("--views", "2"), ("--batch", "2"),
            ("--render-min", "20"), ("--render-max", "32"), ("--patch", "12"), ("--seed", "7"), ("--warmup", "5"), ("--lr", "2e-3"),
            ("--checkpoint-every", "0"), ("--threads", "1"), ("--deferred", null), ("--device", "cpu"),
        };
        for (var i = 0; i < extra.Length; i++)
        {
            var name = extra[i];
            var value = i + 1 < extra.Length && !extra[i + 1].StartsWith("--", StringComparison.Ordinal) ? extra[++i] : null;
            options.RemoveAll(o => o.Name == name);
            options.Add((name, value));
        }
        return ["train", .. options.SelectMany(o => o.Value is null ? new[] { o.Name } : [o.Name, o.Value])];
    }

    [Test]
    public void TwentyStepsEqualTenStepsResumedForTenMoreBitForBit()
    {
        var (config, data) = WriteInputs();
        var straight = Path.Combine(_folder, "straight");
        var resumed = Path.Combine(_folder, "resumed");
        var (code, error) = Lrm(TrainArgs(config, data, straight));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("step 20/20"));

        (code, error) = Lrm(TrainArgs(config, data, resumed, "--stop-at", "10"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("stopped after step 10"));
        Assert.That(File.Exists(Path.Combine(resumed, TrainCommand.ModelFileName)), Is.False, "no final model before the last step");
        Assert.That(TrainingCheckpoint.ReadState(Path.Combine(resumed, TrainingLoop.CheckpointFileName)).Step, Is.EqualTo(10));

        (code, error) = Lrm(TrainArgs(config, data, resumed, "--resume"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("step 11/20").And.Contain("step 20/20").And.Not.Contain("step 10/20"));

        Assert.That(File.ReadAllBytes(Path.Combine(resumed, TrainCommand.ModelFileName)), Is.EqualTo(File.ReadAllBytes(Path.Combine(straight, TrainCommand.ModelFileName))),
            "final model: 20 straight vs 10 + resume 10");
        Assert.That(File.ReadAllBytes(Path.Combine(resumed, TrainingLoop.CheckpointFileName)), Is.EqualTo(File.ReadAllBytes(Path.Combine(straight, TrainingLoop.CheckpointFileName))),
            "checkpoint (weights, AdamW moments, state)");
        var log = TrainingLoop.ReadLog(resumed);
        Assert.That(log.Select(row => (long)row["step"]), Is.EqualTo(Enumerable.Range(1, 20).Select(i => (long)i)), "train.jsonl: one line per update");
        Assert.That(log.Select(row => row["loss"]), Is.EqualTo(TrainingLoop.ReadLog(straight).Select(row => row["loss"])), "same losses");

        // The weights changed, and the final model is a model file `lrm reconstruct` loads.
        using (var trained = LrmModel.Load(Path.Combine(straight, TrainCommand.ModelFileName), trainable: true))
        {
            var fresh = ModelInitializer.Create(trained.Config, 7);
            try
            {
                Assert.That(trained.Weight("synthesizer.decoder.net.0.weight").ToFloatArray(), Is.Not.EqualTo(fresh["synthesizer.decoder.net.0.weight"].ToFloatArray()));
            }
            finally
            {
                foreach (var tensor in fresh.Values)
                {
                    tensor.Dispose();
                }
            }
        }
        var reconstruction = Path.Combine(_folder, "reconstruction");
        (code, error) = Lrm("reconstruct", "--model", Path.Combine(straight, TrainCommand.ModelFileName), Path.Combine(data, "o0", "rgba", "000.png"),
            "--out", reconstruction, "--render-size", "16", "--resolution", "0", "--threads", "1");
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(File.Exists(Path.Combine(reconstruction, "input_view.png")), Is.True);
    }

    [Test]
    public void ShardedRunResumesExactlyAndItsModelReconstructs()
    {
        var (config, data) = WriteInputs();
        var straight = Path.Combine(_folder, "straight");
        var resumed = Path.Combine(_folder, "resumed");
        string[] Args(string output, params string[] extra) => TrainArgs(config, data, output, ["--steps", "4", "--warmup", "2", "--max-file-mb", "0.05", .. extra]);
        var (code, error) = Lrm(Args(straight));
        Assert.That(code, Is.EqualTo(0), error);
        (code, error) = Lrm(Args(resumed, "--stop-at", "2"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain(TrainingCheckpoint.IndexFileName));
        Assert.That(TrainingCheckpoint.ReadState(Path.Combine(resumed, TrainingCheckpoint.IndexFileName)).Step, Is.EqualTo(2));
        (code, error) = Lrm(Args(resumed));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain(TrainingCheckpoint.IndexFileName).And.Contain("pass --resume"));
        (code, error) = Lrm(Args(resumed, "--resume"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("step 3/4").And.Not.Contain("step 2/4"));

        var files = Directory.GetFiles(resumed, "*.*").Select(Path.GetFileName).Where(n => n != TrainingLoop.LogFileName).Order(StringComparer.Ordinal).ToList();
        Assert.That(files, Is.EqualTo(Directory.GetFiles(straight, "*.*").Select(Path.GetFileName).Where(n => n != TrainingLoop.LogFileName).Order(StringComparer.Ordinal)));
        Assert.That(files, Does.Contain(TrainingCheckpoint.IndexFileName).And.Contain(LrmModel.IndexFileName).And.Not.Contain(TrainingLoop.CheckpointFileName).And.Not.Contain(TrainCommand.ModelFileName));
        Assert.That(files.Count(n => n!.StartsWith("model-", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(2), "the model is sharded");
        Assert.That(files.Count(n => n!.StartsWith("checkpoint-00000004-", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(2), "the checkpoint is sharded");
        foreach (var name in files)
        {
            Assert.That(new FileInfo(Path.Combine(resumed, name!)).Length, Is.LessThanOrEqualTo(50_000), name);
            Assert.That(File.ReadAllBytes(Path.Combine(resumed, name!)), Is.EqualTo(File.ReadAllBytes(Path.Combine(straight, name!))), $"{name}: 4 straight vs 2 + resume 2");
        }
        (code, error) = Lrm("reconstruct", "--model", resumed, Path.Combine(data, "o0", "rgba", "000.png"),
            "--out", Path.Combine(_folder, "reconstruction"), "--render-size", "16", "--resolution", "0", "--threads", "1");
        Assert.That(code, Is.EqualTo(0), error);
    }

    [Test]
    public void WeightsLargerThanTheFileLimitAreSavedInShardsOfTheirOwnAndSaidSoFirst()
    {
        var (config, data) = WriteInputs();
        var output = Path.Combine(_folder, "small-limit");
        var (code, error) = Lrm(TrainArgs(config, data, output, ["--steps", "1", "--warmup", "0", "--max-file-mb", "0.01"]));
        Assert.That(code, Is.EqualTo(0), error);
        var note = error.Split('\n').Single(line => line.Contains("larger than --max-file-mb 0.01", StringComparison.Ordinal));
        Assert.That(error.IndexOf(note, StringComparison.Ordinal), Is.LessThan(error.IndexOf("step 1/1", StringComparison.Ordinal)), "said before the first step");
        Assert.That(note, Does.Contain("lrm: note:").And.Contain("a shard of its own").And.Contain("--max-file-mb "));
        var oversized = Directory.GetFiles(output, "*.safetensors").Where(path => new FileInfo(path).Length > 10_000).ToList();
        Assert.That(oversized, Is.Not.Empty);
        foreach (var path in oversized)
        {
            using var file = SafeTensorsFile.Open(path);
            Assert.That(file.Tensors.Count(), Is.EqualTo(1), $"{path}: over the limit, so one tensor alone");
        }
        Assert.That(TrainingCheckpoint.ReadState(Path.Combine(output, TrainingCheckpoint.IndexFileName)).Step, Is.EqualTo(1));
    }

    [Test]
    public void NonRigidPoseStopsTrainingNamingTheObjectAndFile()
    {
        var (config, data) = WriteInputs();
        using (var pose = Tensor.FromArray([2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1], 4, 4))
        {
            Npy.Write(Path.Combine(data, "o1", "pose", "001.npy"), pose);
        }
        var output = Path.Combine(_folder, "run");
        var (code, error) = Lrm(TrainArgs(config, data, output));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("lrm: error:").And.Contain(Path.Combine("o1", "pose", "001.npy")).And.Contain("o1"));
        Assert.That(File.Exists(Path.Combine(output, TrainingLoop.CheckpointFileName)), Is.False, "nothing trained");

        // With --skip-bad-data the object is left out, named once, and training runs on the rest.
        (code, error) = Lrm(TrainArgs(config, data, output, "--skip-bad-data", "--batch", "1", "--steps", "2"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("skipped").And.Contain("001.npy"));
    }

    [Test]
    public void ImageOfTheWrongSizeStopsTrainingNamingTheFile()
    {
        var (config, data) = WriteInputs(objects: 1);
        using (var small = Image.FromRgba(new float[16 * 16 * 4], 16, 16))
        {
            foreach (var view in Enumerable.Range(0, 4))
            {
                small.SavePng(Path.Combine(data, "o0", "rgba", $"{view:D3}.png"));
            }
        }
        var (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "run"), "--batch", "1"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("lrm: error:").And.Contain(Path.Combine("o0", "rgba")).And.Contain(".png").And.Contain("--skip-bad-data"));
    }

    [Test]
    public void ObjectsSkippedWhileTrainingAreReportedOnceAndCounted()
    {
        var (config, data) = WriteInputs(objects: 3);
        var bad = Path.Combine(data, "o1", "rgba", "001.png");
        using (var small = Image.FromRgba(new float[16 * 16 * 4], 16, 16))
        {
            small.SavePng(bad);
        }
        // Every view of a sample is drawn (4 of 4), so o1's first sample meets the bad image; 6 updates visit o1 twice.
        var (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "run"), "--skip-bad-data", "--batch", "1", "--views", "4", "--steps", "6"));
        Assert.That(code, Is.EqualTo(0), error);
        var reports = error.Split('\n').Where(line => line.StartsWith("lrm: warning: skipped ", StringComparison.Ordinal)).ToList();
        Assert.That(reports, Has.Count.EqualTo(1), error);
        Assert.That(reports[0], Does.Contain(bad).And.Contain("'o1'"));
        Assert.That(error, Does.Contain("train: done, 6 steps").And.Contain("1 bad object(s) skipped"));
    }

    [Test]
    public void ResumeRefusesChangedSettingsNamingEachUnlessAskedToContinueWithThem()
    {
        var (config, data) = WriteInputs();
        var output = Path.Combine(_folder, "run");
        var (code, error) = Lrm(TrainArgs(config, data, output, "--stop-at", "3"));
        Assert.That(code, Is.EqualTo(0), error);
        var checkpoint = Path.Combine(output, TrainingLoop.CheckpointFileName);
        var checkpointBytes = File.ReadAllBytes(checkpoint);

        string[] changes = ["--lr", "1e-2", "--warmup", "7", "--patch", "8", "--views", "3", "--mask-weight", "1", "--chunk-rays", "100"];
        (code, error) = Lrm(TrainArgs(config, data, output, ["--resume", .. changes]));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain("lrm: error:").And.Contain(checkpoint).And.Contain("--lr 0.002 → 0.01").And.Contain("--warmup 5 → 7").And.Contain("--patch 12 → 8")
            .And.Contain("--views 2 → 3").And.Contain("--mask-weight 0 → 1").And.Contain("--chunk-rays 4096 → 100").And.Contain("--resume-with-changes"));
        Assert.That(File.ReadAllBytes(checkpoint), Is.EqualTo(checkpointBytes), "nothing changed");

        // --stop-at, the checkpoint interval, validation and logging options may change; --deferred (same bits) too.
        (code, error) = Lrm(TrainArgs(config, data, output, "--resume", "--stop-at", "4", "--checkpoint-every", "7", "--max-file-mb", "0"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Not.Contain("warning"));

        (code, error) = Lrm(TrainArgs(config, data, output, ["--resume", "--resume-with-changes", "--stop-at", "5", .. changes]));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("lrm: warning:").And.Contain("--lr 0.002 → 0.01").And.Contain("step 5/20"));
        Assert.That(TrainingLoop.ReadLog(output)[^1]["lr"], Is.EqualTo(1e-2 * 5 / 7).Within(1e-12), "update 5 of the new 7-update warm-up to the new peak");
    }

    [Test]
    public void SsimAndLpipsTermsTrainAreLoggedAndAreCheckedOnResume()
    {
        var (config, data) = WriteInputs(objects: 1);
        var output = Path.Combine(_folder, "perceptual");
        string[] square = ["--render-min", "32", "--render-max", "32", "--patch", "32"];
        var (code, error) = Lrm(TrainArgs(config, data, output, [.. square, "--steps", "4", "--stop-at", "2", "--ssim-weight", "0.5",
            "--lpips-weights", LpipsTests.WeightsPath, "--lpips-weight", "1.5"]));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("LPIPS (").And.Contain("at weight 1.5").And.Not.Contain("LPIPS is off"));
        var log = TrainingLoop.ReadLog(output);
        Assert.That(log, Has.Count.EqualTo(2));
        foreach (var entry in log)
        {
            Assert.That(entry["ssim"], Is.GreaterThan(0).And.LessThan(2), "1 − SSIM of each view, averaged");
            Assert.That(entry["lpips"], Is.GreaterThan(0), "random renders are far from their targets");
        }

        // The terms shape the run: a resume with other weights, or without the LPIPS file, is refused naming them.
        (code, error) = Lrm(TrainArgs(config, data, output, [.. square, "--steps", "4", "--resume", "--ssim-weight", "0.25",
            "--lpips-weights", LpipsTests.WeightsPath, "--lpips-weight", "1.5"]));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain("--ssim-weight 0.5 → 0.25"));
        (code, error) = Lrm(TrainArgs(config, data, output, [.. square, "--steps", "4", "--resume", "--ssim-weight", "0.5"]));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain("--lpips-weight 1.5 → 0").And.Contain("LPIPS is off"));
        (code, error) = Lrm(TrainArgs(config, data, output, [.. square, "--steps", "4", "--resume", "--ssim-weight", "0.5",
            "--lpips-weights", LpipsTests.WeightsPath, "--lpips-weight", "1.5"]));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(TrainingLoop.ReadLog(output), Has.Count.EqualTo(4));

        // Patches too small for the enabled terms are refused before training, naming the minimum.
        (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "small"), "--ssim-weight", "1", "--patch", "8"));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain("SSIM loss needs patches of at least 11×11"));
        (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "small2"), "--lpips-weights", LpipsTests.WeightsPath, "--patch", "16"));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain("31"));
        (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "missing"), "--lpips-weights", Path.Combine(_folder, "nope.safetensors")));
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error, Does.Contain("nope.safetensors"));
    }

    // TrainArgs without the option name (and its value).
    private static string[] Without(string[] args, string name)
    {
        var at = Array.IndexOf(args, name);
        return [.. args[..at], .. args[(at + 2)..]];
    }

    [Test]
    public void TheDefaultWarmupLeavesTheRunItsDecayAndAWarmupAsLongAsTheRunIsWarnedOf()
    {
        var (config, data) = WriteInputs(objects: 1);
        var output = Path.Combine(_folder, "default");
        var (code, error) = Lrm(Without(TrainArgs(config, data, output, "--steps", "10"), "--warmup"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("10 steps (warm-up 1)").And.Not.Contain("warning"));
        var log = TrainingLoop.ReadLog(output);
        Assert.That(log[0]["lr"], Is.EqualTo(2e-3).Within(1e-15), "one warm-up update reaches the peak");
        Assert.That(log[^1]["lr"], Is.EqualTo(0).Within(1e-15), "the cosine decays to the end");

        (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "all-warmup"), "--steps", "10", "--warmup", "10"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("lrm: warning: --warmup 10 is not below --steps 10"));
    }

    [Test]
    public void AFreshRunRefusesTheLogOfARunKilledBeforeItsFirstCheckpoint()
    {
        var (config, data) = WriteInputs(objects: 1);
        var output = Path.Combine(_folder, "run");
        Directory.CreateDirectory(output);
        var log = Path.Combine(output, TrainingLoop.LogFileName);
        File.WriteAllText(log, "{\"step\":1,\"loss\":0.5}\n");
        var (code, error) = Lrm(TrainArgs(config, data, output));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain($"lrm: error: {log} exists").And.Contain("choose another --out"));
        Assert.That(File.ReadAllText(log), Is.EqualTo("{\"step\":1,\"loss\":0.5}\n"));
        Assert.That(Directory.GetFiles(output), Has.Length.EqualTo(1), "nothing else written");
    }

    [Test]
    public void ValidationScoresHeldOutViewsWithoutChangingTheRun()
    {
        var (config, data) = WriteInputs();
        var heldOut = Path.Combine(_folder, "heldout");
        TrainingSceneData.Write(heldOut, objects: 3, views: 4, size: 32, seed: 99, namePrefix: "h");
        var plain = Path.Combine(_folder, "plain");
        var validated = Path.Combine(_folder, "validated");
        var (code, error) = Lrm(TrainArgs(config, data, plain, "--steps", "12"));
        Assert.That(code, Is.EqualTo(0), error);
        (code, error) = Lrm(TrainArgs(config, data, validated, "--steps", "12", "--val-data", heldOut, "--val-every", "5", "--val-objects", "2", "--val-views", "3",
            "--stop-at", "7"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Not.Contain("warning"), "held-out objects named apart from the training objects");
        // A run killed while writing leaves a cut-off last line in either log: the resume drops it with a warning.
        var trainLog = Path.Combine(validated, TrainingLoop.LogFileName);
        var valLog = Path.Combine(validated, TrainValidation.LogFileName);
        File.AppendAllText(trainLog, "{\"step\":8,\"lr\":0.00");
        File.AppendAllText(valLog, "{\"step\":8,\"ps");
        (code, error) = Lrm(TrainArgs(config, data, validated, "--steps", "12", "--val-data", heldOut, "--val-every", "5", "--val-objects", "2", "--val-views", "3",
            "--resume"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("val step 10: PSNR").And.Contain("over 2 held-out objects × 3 views"));
        Assert.That(error, Does.Contain($"lrm: warning: {trainLog}: dropped its last line").And.Contain($"lrm: warning: {valLog}: dropped its last line"));
        Assert.That(TrainingLoop.ReadLog(validated).Select(row => (long)row["step"]), Is.EqualTo(Enumerable.Range(1, 12).Select(i => (long)i)));

        // Validated at 5, 10 and the last update (12); the resumed run kept the line of update 5 and wrote the rest.
        var lines = File.ReadAllLines(Path.Combine(validated, TrainValidation.LogFileName))
            .Select(line => System.Text.Json.JsonDocument.Parse(line).RootElement).ToList();
        Assert.That(lines.Select(l => l.GetProperty("step").GetInt64()), Is.EqualTo(new long[] { 5, 10, 12 }));
        foreach (var line in lines)
        {
            Assert.That(line.GetProperty("psnr").GetDouble(), Is.InRange(3.0, 60.0));
            Assert.That(line.GetProperty("ssim").GetDouble(), Is.InRange(0.0, 1.0));
            Assert.That(line.GetProperty("views").GetInt32(), Is.EqualTo(6));
        }
        var renders = Path.Combine(validated, "val", "step-00000010", "h0");
        Assert.That(Directory.GetFiles(renders, "*_render.png"), Has.Length.EqualTo(3));
        Assert.That(Directory.GetFiles(renders, "*_gt.png"), Has.Length.EqualTo(3));

        // The logged scores are the mean over every view of the saved render against the saved ground truth, scored
        // again here from the PNG files (8-bit rounding moves PSNR by far less than 0.05 dB at these errors).
        var saved = Directory.GetFiles(Path.Combine(validated, "val", "step-00000010"), "*_render.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(render =>
            {
                using var predicted = Image.Load(render);
                using var truth = Image.Load(render.Replace("_render.png", "_gt.png", StringComparison.Ordinal));
                return LrmNative.Metrics.ImageEvaluation.Compare(predicted, truth, LrmNative.Metrics.EvaluationBackground.None);
            }).ToList();
        Assert.That(saved, Has.Count.EqualTo(6));
        var logged = lines.Single(l => l.GetProperty("step").GetInt64() == 10);
        Assert.That(logged.GetProperty("psnr").GetDouble(), Is.EqualTo(saved.Average(v => v.Psnr)).Within(0.05), "mean PSNR of the saved views");
        Assert.That(logged.GetProperty("ssim").GetDouble(), Is.EqualTo(saved.Average(v => v.Ssim)).Within(0.01), "mean SSIM of the saved views");

        // Validation only reads the weights: the run is the plain run bit for bit.
        Assert.That(File.ReadAllBytes(Path.Combine(validated, TrainCommand.ModelFileName)), Is.EqualTo(File.ReadAllBytes(Path.Combine(plain, TrainCommand.ModelFileName))));
    }

    [Test]
    public void HeldOutObjectsWithTheNamesOfTrainingObjectsAreWarnedOf()
    {
        var (config, data) = WriteInputs();
        var (code, error) = Lrm(TrainArgs(config, data, Path.Combine(_folder, "run"), "--steps", "1", "--val-data", data, "--val-objects", "1", "--val-views", "1"));
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("lrm: warning: --val-data objects o0 have the names of --data objects"));
    }

    [Test]
    public void BadArgumentsAreRefusedBeforeTraining()
    {
        var (config, data) = WriteInputs(objects: 1);
        var output = Path.Combine(_folder, "run");
        var (code, error) = Lrm("train", "--data", data, "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--config").And.Contain("--model"));
        (code, error) = Lrm(TrainArgs(config, data, output, "--resume"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("nothing to continue"));
        (code, error) = Lrm(TrainArgs(config, data, output, "--resume-with-changes"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--resume-with-changes goes with --resume"));
        (code, error) = Lrm("train", "--config", Path.Combine(_folder, "missing.json"), "--data", data, "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("missing.json"));
        (code, error) = Lrm("train", "--model", config, "--data", data, "--out", output, "--position-init", "sincos");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--position-init").And.Contain("--config"));
        var twoViews = Path.Combine(_folder, "two-views");
        TrainingSceneData.Write(twoViews, objects: 1, views: 2, size: 32);
        (code, error) = Lrm(TrainArgs(config, data, output, "--val-data", twoViews, "--source-view", "3"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--val-data object 'o0' has no source view 3"));
        (code, error) = Lrm(TrainArgs(config, data, output, "--device", "tpu"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--device takes cpu, cuda, cuda:N or auto"));
        if (!CudaBackend.IsAvailable(out _))
        {
            (code, error) = Lrm(TrainArgs(config, data, output, "--device", "cuda"));
            Assert.That(code, Is.EqualTo(1));
            Assert.That(error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(), Does.StartWith("lrm: error: CUDA backend not available: "));
        }
        Assert.That(Directory.Exists(output) && Directory.EnumerateFiles(output).Any(), Is.False, "nothing written");
    }

    [Test]
    public void PositionInitSinCosStartsTheEncoderTableFromTheSinCosTable()
    {
        var (config, data) = WriteInputs(objects: 1);
        var output = Path.Combine(_folder, "run");
        // One update at a negligible learning rate: the trained table is still the starting one to float precision.
        var (code, error) = Lrm(TrainArgs(config, data, output, "--steps", "1", "--warmup", "0", "--lr", "1e-12", "--position-init", "sincos"));
        Assert.That(code, Is.EqualTo(0), error);
        using var trained = LrmModel.Load(Path.Combine(output, TrainCommand.ModelFileName), trainable: true);
        var table = trained.Weight(LrmWeightNames.Encoder + "pos_embed").ToFloatArray();
        var expected = new float[table.Length];
        ModelInitializer.SinCosTable(expected, trained.Config.EncoderPositionGrid, trained.Config.EncoderFeatDim);
        Assert.That(table, Is.EqualTo(expected).Within(1e-9f));
    }
}
