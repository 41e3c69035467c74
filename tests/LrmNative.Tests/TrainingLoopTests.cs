using LrmNative.Backends;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The training loop with a small analytic task (a linear map from source pixels to target colour statistics):
/// loss falls, the log is written, a cancelled run resumes to the same bits, a NaN stops it with the step and batch
/// named, a resume with other settings is refused, the log survives a cut-off line and a full disk is one error.
/// </summary>
public sealed class TrainingLoopTests
{
    private string _directory = "";
    private MultiViewDataset _dataset = null!;

    [SetUp]
    public void CreateData()
    {
        _directory = Directory.CreateTempSubdirectory("lrm-loop-").FullName;
        TrainingTestData.WriteTinyDataset(Path.Combine(_directory, "data"));
        _dataset = MultiViewDataset.Open(Path.Combine(_directory, "data"),
            new DataOptions { ViewsPerSample = 2, SourceImageSize = 8, RenderMinResolution = 4, RenderMaxResolution = 8, PatchSize = 4 });
    }

    [TearDown]
    public void DeleteData() => Directory.Delete(_directory, recursive: true);

    /// <summary>loss = mean_b ‖Wᵀf_b + c − y_b‖², f = three source pixels, y = mean target RGB and alpha; plus a tiny jitter from the trainer's stream.</summary>
    private sealed class LinearTask : ITrainingTask, IDisposable
    {
        private readonly Tensor _weight = Tensor.Zeros([3, 4]);
        private readonly Tensor _bias = Tensor.Zeros([4]);
        private readonly Tensor _weightGradient = Tensor.Zeros([3, 4]);
        private readonly Tensor _biasGradient = Tensor.Zeros([4]);

        public LinearTask() => Parameters = [new("toy.weight", _weight, _weightGradient), new("toy.bias", _bias, _biasGradient)];

        public IReadOnlyList<TrainableParameter> Parameters { get; }

        public long? NaNAtCall { get; init; }

        /// <summary>The objects and view numbers of every batch, in call order.</summary>
        public List<(string[] Objects, int[] Views)> Batches { get; } = [];

        private long _calls;

        public IReadOnlyDictionary<string, double> ComputeGradients(IBackend backend, TrainingBatch batch, TrainingRandom random)
        {
            _calls++;
            Batches.Add(([.. batch.Objects], [.. batch.ViewNumbers]));
            _weightGradient.AsSpan<float>().Clear();
            _biasGradient.AsSpan<float>().Clear();
            var w = _weight.AsSpan<float>();
            var c = _bias.AsSpan<float>();
            var rows = batch.Objects.Length;
            var sourcePlane = batch.SourceImages.Size(2) * batch.SourceImages.Size(3);
            var targetsPerRow = (int)(batch.TargetRgb.ElementCount / rows / 3);
            double loss = 0;
            for (var b = 0; b < rows; b++)
            {
                var source = batch.SourceImages.AsSpan<float>().Slice((int)(b * 3 * sourcePlane), (int)(3 * sourcePlane));
                float[] f = [source[0], source[(int)sourcePlane + 5], source[2 * (int)sourcePlane + 9]];
                var rgb = batch.TargetRgb.AsSpan<float>().Slice(b * targetsPerRow * 3, targetsPerRow * 3);
                var alpha = batch.TargetAlpha.AsSpan<float>().Slice(b * targetsPerRow, targetsPerRow);
                var y = new float[4];
                for (var i = 0; i < targetsPerRow; i++)
                {
                    y[0] += rgb[3 * i] / targetsPerRow;
                    y[1] += rgb[3 * i + 1] / targetsPerRow;
                    y[2] += rgb[3 * i + 2] / targetsPerRow;
                    y[3] += alpha[i] / targetsPerRow;
                }
                for (var o = 0; o < 4; o++)
                {
                    var prediction = c[o] + f[0] * w[o] + f[1] * w[4 + o] + f[2] * w[8 + o];
                    var residual = prediction - y[o];
                    loss += residual * residual / rows;
                    var g = 2 * residual / rows;
                    _biasGradient.AsSpan<float>()[o] += g;
                    for (var k = 0; k < 3; k++)
                    {
                        _weightGradient.AsSpan<float>()[4 * k + o] += g * f[k];
                    }
                }
            }
            _biasGradient.AsSpan<float>()[0] += (float)(random.NextDouble() * 1e-4);
            return new Dictionary<string, double> { ["loss"] = _calls == NaNAtCall ? double.NaN : loss };
        }

        public void Dispose()
        {
            _weight.Dispose();
            _bias.Dispose();
            _weightGradient.Dispose();
            _biasGradient.Dispose();
        }
    }

    private TrainingOptions Options(string name, long steps) => new()
    {
        Steps = steps,
        BatchSize = 2,
        Seed = 77,
        WarmupSteps = 3,
        CheckpointEvery = 0,
        Optimizer = new AdamWOptions { LearningRate = 3e-2 },
        OutputDirectory = Path.Combine(_directory, name),
    };

    private static uint[] Bits(Tensor tensor) => [.. tensor.AsSpan<float>().ToArray().Select(BitConverter.SingleToUInt32Bits)];

    [Test]
    public void LossFallsAndEveryUpdateIsLogged()
    {
        using var task = new LinearTask();
        using var backend = new CpuBackend();
        var options = Options("fall", 60);
        var seen = new List<TrainingProgress>();
        var done = new TrainingLoop(task, _dataset, options).Run(backend, progress: seen.Add);
        Assert.That(done, Is.EqualTo(60));
        var log = TrainingLoop.ReadLog(options.OutputDirectory);
        Assert.That(log.Select(r => r["step"]), Is.EqualTo(Enumerable.Range(1, 60).Select(s => (double)s)));
        Assert.That(log[0]["lr"], Is.EqualTo(1e-2).Within(1e-12), "warm-up: base/3");
        Assert.That(log[2]["lr"], Is.EqualTo(3e-2).Within(1e-12), "warm-up ends at the peak");
        Assert.That(log[59]["lr"], Is.EqualTo(0).Within(1e-12), "cosine ends at 0");
        var first = log.Take(3).Average(r => r["loss"]);
        var last = log.Skip(55).Average(r => r["loss"]);
        Assert.That(last, Is.LessThan(first / 2), $"loss {first:G4} → {last:G4}");
        Assert.That(seen, Has.Count.EqualTo(60));
        Assert.That(seen[^1].Remaining, Is.EqualTo(TimeSpan.Zero));
        Assert.That(File.Exists(Path.Combine(options.OutputDirectory, TrainingLoop.CheckpointFileName)), Is.True, "checkpoint at the end");
    }

    [Test]
    public void CancelledRunResumesToTheSameBits()
    {
        using var backend = new CpuBackend();
        using var straight = new LinearTask();
        var straightOptions = Options("straight", 12);
        new TrainingLoop(straight, _dataset, straightOptions).Run(backend);

        using var interrupted = new LinearTask();
        var options = Options("resumed", 12);
        using var cancel = new CancellationTokenSource();
        var stopped = new TrainingLoop(interrupted, _dataset, options).Run(backend, progress: p =>
        {
            if (p.Step == 5)
            {
                cancel.Cancel();
            }
        }, cancellation: cancel.Token);
        Assert.That(stopped, Is.EqualTo(5));
        using var resumedTask = new LinearTask();
        var loop = new TrainingLoop(resumedTask, _dataset, options);
        Assert.That(loop.Run(backend, resumeFrom: loop.CheckpointPath), Is.EqualTo(12));
        for (var i = 0; i < 2; i++)
        {
            Assert.That(Bits(resumedTask.Parameters[i].Value), Is.EqualTo(Bits(straight.Parameters[i].Value)), resumedTask.Parameters[i].Name);
        }
        var straightLog = TrainingLoop.ReadLog(straightOptions.OutputDirectory);
        var resumedLog = TrainingLoop.ReadLog(options.OutputDirectory);
        Assert.That(resumedLog.Select(r => r["loss"]), Is.EqualTo(straightLog.Select(r => r["loss"])), "the same losses step by step");

        using var other = new LinearTask();
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => new TrainingLoop(other, _dataset, options with { Seed = 78 }).Run(backend, loop.CheckpointPath))!.Message,
            Does.Contain("seed"));
    }

    [Test]
    public void NonFiniteLossStopsWithTheStepAndKeepsTheLastCheckpoint()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask { NaNAtCall = 4 };
        var options = Options("nan", 10) with { CheckpointEvery = 1 };
        var loop = new TrainingLoop(task, _dataset, options);
        var error = Assert.Throws<LrmNonFiniteException>(() => loop.Run(backend))!;
        Assert.That(error.Step, Is.EqualTo(4));
        Assert.That(error.TensorName, Is.EqualTo("loss.loss"));
        Assert.That(TrainingCheckpoint.ReadState(loop.CheckpointPath).Step, Is.EqualTo(3));
        // The message names the batch: each sample's object and its view numbers (rgba/NNN.png).
        var (objects, views) = task.Batches[3];
        Assert.That(objects, Has.Length.EqualTo(2));
        Assert.That(error.Message, Does.Contain($"{objects[0]} (views {views[0]:D3}, {views[1]:D3}); {objects[1]} (views {views[2]:D3}, {views[3]:D3})"), error.Message);
    }

    [Test]
    public void ACheckpointDueAtAStepIsWrittenBeforeTheProgressReport()
    {
        // lrm train validates inside the progress report: a failure there must not lose the checkpoint of that step.
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("validation-fails", 10) with { CheckpointEvery = 2 };
        var loop = new TrainingLoop(task, _dataset, options);
        Assert.Throws<InvalidOperationException>(() => loop.Run(backend, progress: p =>
        {
            if (p.Step == 4)
            {
                throw new InvalidOperationException("validation failed");
            }
        }));
        Assert.That(TrainingCheckpoint.ReadState(loop.CheckpointPath).Step, Is.EqualTo(4));
    }

    [Test]
    public void StopAtEndsTheRunWithACheckpointThatResumes()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("stop-at", 12);
        var loop = new TrainingLoop(task, _dataset, options with { StopAt = 5 });
        Assert.That(loop.Run(backend), Is.EqualTo(5));
        Assert.That(TrainingCheckpoint.ReadState(loop.CheckpointPath).Step, Is.EqualTo(5));
        using var resumed = new LinearTask();
        Assert.That(new TrainingLoop(resumed, _dataset, options).Run(backend, loop.CheckpointPath), Is.EqualTo(12), "--stop-at may change on resume");
    }

    [Test]
    public void TheDefaultWarmupIsATenthOfAShortRunSoTheCosineDecays()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("default-warmup", 60) with { WarmupSteps = null };
        Assert.That(options.ResolvedWarmupSteps, Is.EqualTo(6));
        Assert.That(options with { Steps = 100_000 }, Has.Property(nameof(TrainingOptions.ResolvedWarmupSteps)).EqualTo(3000), "the paper's 3000 on a long run");
        new TrainingLoop(task, _dataset, options).Run(backend);
        var log = TrainingLoop.ReadLog(options.OutputDirectory);
        Assert.That(log[0]["lr"], Is.EqualTo(3e-2 / 6).Within(1e-12));
        Assert.That(log[5]["lr"], Is.EqualTo(3e-2).Within(1e-12), "the peak at the end of the warm-up");
        Assert.That(log[59]["lr"], Is.EqualTo(0).Within(1e-12), "the cosine ends at the minimum");
    }

    [Test]
    public void ResumeRefusesChangedSettingsNamingEachUnlessAllowed()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("changed", 12) with { TaskSettings = [RunSetting.Of("mask_weight", "--mask-weight", 0f)] };
        var loop = new TrainingLoop(task, _dataset, options with { StopAt = 4 });
        loop.Run(backend);
        var logBefore = File.ReadAllText(Path.Combine(options.OutputDirectory, TrainingLoop.LogFileName));
        var changed = options with
        {
            Steps = 20,
            WarmupSteps = 7,
            MinimumLearningRate = 1e-3,
            Optimizer = new AdamWOptions { LearningRate = 1e-2, WeightDecay = 0.1f },
            TaskSettings = [RunSetting.Of("mask_weight", "--mask-weight", 1f)],
        };
        using var refused = new LinearTask();
        var error = Assert.Throws<LrmInvalidArgumentException>(() => new TrainingLoop(refused, _dataset, changed).Run(backend, loop.CheckpointPath))!;
        Assert.That(error.Message, Does.Contain("--steps 12 → 20").And.Contain("--warmup 3 → 7").And.Contain("minimum learning rate 0 → 0.001")
            .And.Contain("--lr 0.03 → 0.01").And.Contain("weight decay 0.05 → 0.1").And.Contain("--mask-weight 0 → 1").And.Contain("--resume-with-changes"));
        Assert.That(error.Message, Does.Not.Contain("--views").And.Not.Contain("--data"), "unchanged settings are not listed");
        Assert.That(TrainingCheckpoint.ReadState(loop.CheckpointPath).Step, Is.EqualTo(4), "the checkpoint is untouched");
        Assert.That(File.ReadAllText(Path.Combine(options.OutputDirectory, TrainingLoop.LogFileName)), Is.EqualTo(logBefore), "the log is untouched");

        // Other data is another run too: the dataset's object names are fingerprinted.
        var fewer = Path.Combine(_directory, "fewer");
        TrainingTestData.WriteTinyDataset(fewer);
        Directory.Delete(Path.Combine(fewer, "o3"), recursive: true);
        var fewerData = MultiViewDataset.Open(fewer, _dataset.Options);
        error = Assert.Throws<LrmInvalidArgumentException>(() => new TrainingLoop(refused, fewerData, options).Run(backend, loop.CheckpointPath))!;
        Assert.That(error.Message, Does.Contain("--data 3 objects, names sha256 ").And.Contain(" → 2 objects, names sha256 "));
        error = Assert.Throws<LrmInvalidArgumentException>(() => new TrainingLoop(refused, MultiViewDataset.Open(Path.Combine(_directory, "data"), _dataset.Options with { PatchSize = 2, ViewsPerSample = 3 }), options)
            .Run(backend, loop.CheckpointPath))!;
        Assert.That(error.Message, Does.Contain("--views 2 → 3").And.Contain("--patch 4 → 2"));

        // Allowed on purpose: the run continues on the new settings with a warning that lists them.
        using var allowed = new LinearTask();
        var warnings = new List<string>();
        var resumed = new TrainingLoop(allowed, _dataset, changed with { AllowSettingChanges = true });
        resumed.Warning += warnings.Add;
        Assert.That(resumed.Run(backend, loop.CheckpointPath), Is.EqualTo(20));
        Assert.That(warnings, Has.One.Contains("--lr 0.03 → 0.01").And.Contain("--resume-with-changes"));
        Assert.That(TrainingLoop.ReadLog(options.OutputDirectory)[^1]["lr"], Is.EqualTo(1e-3).Within(1e-12), "the new schedule ends at the new minimum");
    }

    // Replaces the training state's extra JSON of the checkpoint in options' folder (as an older or other build wrote it).
    private static void RewriteExtra(TrainingOptions options, Func<string, string> rewrite)
    {
        var path = Path.Combine(options.OutputDirectory, TrainingLoop.CheckpointFileName);
        using var task = new LinearTask();
        using var optimizer = new AdamW(options.Optimizer);
        var state = TrainingCheckpoint.Load(path, task.Parameters, optimizer);
        TrainingCheckpoint.Save(path, task.Parameters, optimizer, state with { Extra = rewrite(state.Extra) });
    }

    [Test]
    public void ACheckpointWithoutTheNewerSettingsResumesCheckingWhatItHolds()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("old", 12);
        new TrainingLoop(task, _dataset, options with { StopAt = 4 }).Run(backend);
        // What checkpoints held before the settings were stored: batch size, steps, warm-up and minimum learning rate (+ the optimiser's own).
        RewriteExtra(options, _ => """{"batch_size":2,"steps":12,"warmup_steps":3,"min_lr":0}""");
        var checkpoint = Path.Combine(options.OutputDirectory, TrainingLoop.CheckpointFileName);
        using var refused = new LinearTask();
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => new TrainingLoop(refused, _dataset, options with { Optimizer = new AdamWOptions { LearningRate = 1e-2 } }).Run(backend, checkpoint))!.Message,
            Does.Contain("--lr 0.03 → 0.01"));
        using var resumed = new LinearTask();
        var loop = new TrainingLoop(resumed, _dataset, options with { TaskSettings = [RunSetting.Of("chunk_rays", "--chunk-rays", 64)] });
        var warnings = new List<string>();
        loop.Warning += warnings.Add;
        Assert.That(loop.Run(backend, checkpoint), Is.EqualTo(12), "settings it does not hold are not compared");
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public void AnotherThreadCountIsAWarningNotARefusal()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("threads", 12);
        new TrainingLoop(task, _dataset, options with { StopAt = 4 }).Run(backend);
        var checkpoint = Path.Combine(options.OutputDirectory, TrainingLoop.CheckpointFileName);
        Assert.That(TrainingCheckpoint.ReadState(checkpoint).Extra, Does.Contain("\"threads\":"), "the thread count is stored");
        RewriteExtra(options, extra => System.Text.RegularExpressions.Regex.Replace(extra, "\"threads\":\\d+", "\"threads\":999"));
        using var resumed = new LinearTask();
        var loop = new TrainingLoop(resumed, _dataset, options);
        var warnings = new List<string>();
        loop.Warning += warnings.Add;
        Assert.That(loop.Run(backend, checkpoint), Is.EqualTo(12));
        Assert.That(warnings, Has.One.Contains("999 CPU thread(s)").And.Contain("--threads"));
    }

    [Test]
    public void AFreshRunStartsANewLog()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("stale", 5);
        // A run killed before its first checkpoint leaves a log and nothing to resume.
        Directory.CreateDirectory(options.OutputDirectory);
        File.WriteAllLines(Path.Combine(options.OutputDirectory, TrainingLoop.LogFileName), ["""{"step":1,"loss":9}""", """{"step":2,"loss":9}""", """{"step":3,"lr":0.0"""]);
        new TrainingLoop(task, _dataset, options).Run(backend);
        var log = TrainingLoop.ReadLog(options.OutputDirectory);
        Assert.That(log.Select(r => r["step"]), Is.EqualTo(Enumerable.Range(1, 5).Select(s => (double)s)));
        Assert.That(log.Select(r => r["loss"]), Has.None.EqualTo(9.0));
    }

    [Test]
    public void ResumeDropsACutOffLastLogLineAndRefusesAnyOtherBadLine()
    {
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("torn", 8);
        var loop = new TrainingLoop(task, _dataset, options with { StopAt = 4 });
        loop.Run(backend);
        var path = Path.Combine(options.OutputDirectory, TrainingLoop.LogFileName);
        var lines = File.ReadAllLines(path);

        // A line of a killed write: dropped, with a warning naming the file.
        File.AppendAllText(path, """{"step":5,"lr":0.00""");
        using var resumed = new LinearTask();
        var again = new TrainingLoop(resumed, _dataset, options with { StopAt = 6 });
        var warnings = new List<string>();
        again.Warning += warnings.Add;
        Assert.That(again.Run(backend, loop.CheckpointPath), Is.EqualTo(6));
        Assert.That(warnings, Has.One.Contains(path).And.Contain("cut off"));
        Assert.That(TrainingLoop.ReadLog(options.OutputDirectory).Select(r => r["step"]), Is.EqualTo(Enumerable.Range(1, 6).Select(s => (double)s)));

        // Anywhere else a bad line is an error naming the file and the line; nothing is rewritten.
        var bad = File.ReadAllLines(path);
        bad[1] = bad[1][..20];
        File.WriteAllLines(path, bad);
        using var refused = new LinearTask();
        var error = Assert.Throws<LrmFormatException>(() => new TrainingLoop(refused, _dataset, options).Run(backend, loop.CheckpointPath))!;
        Assert.That(error.Message, Does.StartWith(path + ": line 2 "));
        Assert.That(File.ReadAllLines(path), Is.EqualTo(bad));
        Assert.That(lines, Has.Length.EqualTo(4));
    }

    [Test]
    public void NonFiniteNumbersGoIntoTheLogsAsStrings()
    {
        // lrm train's val.jsonl: the PSNR of an exact render is +∞, which JSON has no number for.
        var path = Path.Combine(_directory, "val.jsonl");
        using (var log = TrainingLog.Open(path, append: false))
        {
            log.Write(json =>
            {
                json.WriteNumber("step", 1);
                TrainingLog.WriteNumber(json, "psnr", double.PositiveInfinity);
                TrainingLog.WriteNumber(json, "low", double.NegativeInfinity);
                TrainingLog.WriteNumber(json, "ssim", double.NaN);
                TrainingLog.WriteNumber(json, "finite", 0.25);
            });
        }
        Assert.That(File.ReadAllText(path), Is.EqualTo("{\"step\":1,\"psnr\":\"inf\",\"low\":\"-inf\",\"ssim\":\"nan\",\"finite\":0.25}\n"));
    }

    [Test]
    public void AFullDiskWhileLoggingIsOneErrorNamingTheLog()
    {
        if (!File.Exists("/dev/full"))
        {
            Assert.Ignore("no /dev/full on this system (it stands in for a full disk)");
        }
        using var backend = new CpuBackend();
        using var task = new LinearTask();
        var options = Options("full", 3);
        Directory.CreateDirectory(options.OutputDirectory);
        var path = Path.Combine(options.OutputDirectory, TrainingLoop.LogFileName);
        File.CreateSymbolicLink(path, "/dev/full");
        var error = Assert.Throws<LrmFormatException>(() => new TrainingLoop(task, _dataset, options).Run(backend))!;
        Assert.That(error.Message, Does.StartWith(path + ": cannot write the training log: "));
    }

    [Test]
    public void ResumingAfterACrashDropsLogLinesBeyondTheCheckpoint()
    {
        using var backend = new CpuBackend();
        using var crashing = new LinearTask { NaNAtCall = 6 };
        var options = Options("crash", 8) with { CheckpointEvery = 4 };
        var loop = new TrainingLoop(crashing, _dataset, options);
        Assert.Throws<LrmNonFiniteException>(() => loop.Run(backend));
        Assert.That(TrainingLoop.ReadLog(options.OutputDirectory), Has.Count.EqualTo(5), "steps 1-5 logged, checkpoint at 4");
        using var healthy = new LinearTask();
        new TrainingLoop(healthy, _dataset, options).Run(backend, resumeFrom: loop.CheckpointPath);
        Assert.That(TrainingLoop.ReadLog(options.OutputDirectory).Select(r => r["step"]), Is.EqualTo(Enumerable.Range(1, 8).Select(s => (double)s)));
    }
}
