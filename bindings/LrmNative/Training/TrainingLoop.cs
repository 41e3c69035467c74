using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LrmNative.Backends;

namespace LrmNative.Training;

/// <summary>The model side of training: its parameters, and forward + backward of one batch.</summary>
internal interface ITrainingTask
{
    /// <summary>The trainable tensors with their gradient buffers (fixed for the whole run).</summary>
    IReadOnlyList<TrainableParameter> Parameters { get; }

    /// <summary>
    /// Sets every gradient to ∂loss/∂parameter for <paramref name="batch"/> (overwriting the previous step's) and
    /// returns the loss terms by name, "loss" (the total) among them. <paramref name="random"/> is the trainer's
    /// stream (e.g. ray jitter); it is checkpointed.
    /// </summary>
    IReadOnlyDictionary<string, double> ComputeGradients(IBackend backend, TrainingBatch batch, TrainingRandom random);
}

/// <summary>Settings of a training run.</summary>
internal sealed record TrainingOptions
{
    /// <summary>The paper's warm-up length in updates (LRM appendix B).</summary>
    public const long PaperWarmupSteps = 3000;

    /// <summary>Total optimiser updates of the run (the schedule's length).</summary>
    public long Steps { get; init; } = 1000;

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Seed of the data order, the sample draws and the trainer's random stream.</summary>
    public ulong Seed { get; init; }

    /// <summary>Linear warm-up updates, clamped to <see cref="Steps"/>; null: <see cref="DefaultWarmupSteps"/>.</summary>
    public long? WarmupSteps { get; init; }

    /// <summary>
    /// The default warm-up of a run of <paramref name="steps"/> updates: the paper's 3000, but at most a tenth of the run,
    /// so that a short run still spends most of its updates on the cosine decay.
    /// </summary>
    public static long DefaultWarmupSteps(long steps) => Math.Min(PaperWarmupSteps, steps / 10);

    /// <summary>The warm-up asked for: <see cref="WarmupSteps"/> or the default for <see cref="Steps"/> (stored in checkpoints).</summary>
    public long RequestedWarmupSteps => WarmupSteps ?? DefaultWarmupSteps(Steps);

    /// <summary>The warm-up the schedule uses: <see cref="RequestedWarmupSteps"/> clamped to <see cref="Steps"/>.</summary>
    public long ResolvedWarmupSteps => Math.Min(RequestedWarmupSteps, Steps);

    /// <summary>Learning rate at the end of the cosine.</summary>
    public double MinimumLearningRate { get; init; }

    /// <summary>AdamW settings (peak learning rate included).</summary>
    public AdamWOptions Optimizer { get; init; } = new();

    /// <summary>Write a checkpoint every this many updates (and always at the end); 0: only at the end.</summary>
    public long CheckpointEvery { get; init; } = 500;

    /// <summary>Stop after this update with a checkpoint, to be resumed later (a time slice of the schedule); 0: run all <see cref="Steps"/>.</summary>
    public long StopAt { get; init; }

    /// <summary>Folder for checkpoint.safetensors and train.jsonl.</summary>
    public required string OutputDirectory { get; init; }

    /// <summary>The model config JSON stored in checkpoints (makes them model files); null: none.</summary>
    public string? ConfigJson { get; init; }

    /// <summary>Largest checkpoint file in bytes: a bigger checkpoint is written as shards plus an index; 0: one file.</summary>
    public long MaxFileBytes { get; init; }

    /// <summary>
    /// The training task's settings that shape the numbers (loss weights, rays per render chunk): stored in checkpoints and
    /// checked on resume like the loop's own (<see cref="TrainingLoop"/>).
    /// </summary>
    public IReadOnlyList<RunSetting> TaskSettings { get; init; } = [];

    /// <summary>
    /// Resume even when settings that shape the run differ from the checkpoint's (<c>lrm train --resume-with-changes</c>);
    /// the changes are reported as a warning. Otherwise such a resume is refused.
    /// </summary>
    public bool AllowSettingChanges { get; init; }
}

/// <summary>
/// A setting that shapes a run's numbers, as a checkpoint stores it: its <paramref name="Key"/> in the training state,
/// the <paramref name="Name"/> a user knows it by (the <c>lrm train</c> option where there is one) and its value as JSON.
/// </summary>
internal sealed record RunSetting(string Key, string Name, string Json)
{
    /// <summary>The setting with <paramref name="value"/> as JSON.</summary>
    public static RunSetting Of<T>(string key, string name, T value) => new(key, name, JsonSerializer.Serialize(value));

    /// <summary>A stored or current value for a message: a string without quotes, null as "(not set)".</summary>
    public static string Display(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.ValueKind switch
        {
            JsonValueKind.String => document.RootElement.GetString()!,
            JsonValueKind.Null => "(not set)",
            _ => json,
        };
    }
}

/// <summary>Progress after one update, for a live display.</summary>
/// <param name="Step">Updates done.</param>
/// <param name="TotalSteps">Updates of the run.</param>
/// <param name="Losses">Loss terms of this update.</param>
/// <param name="Optimizer">Norm, clipping and learning rate of this update.</param>
/// <param name="StepsPerSecond">Throughput since the run (or resume) started.</param>
internal readonly record struct TrainingProgress(long Step, long TotalSteps, IReadOnlyDictionary<string, double> Losses, OptimizerStep Optimizer, double StepsPerSecond)
{
    /// <summary>Estimated time left at the current throughput.</summary>
    public TimeSpan Remaining => StepsPerSecond > 0 ? TimeSpan.FromSeconds((TotalSteps - Step) / StepsPerSecond) : TimeSpan.Zero;
}

/// <summary>
/// The training loop: batches from a <see cref="MultiViewLoader"/> (decoded in the background), gradients from the
/// <see cref="ITrainingTask"/>, a finite-loss check, AdamW with clipping on the cosine schedule, one JSON line per
/// update in <c>train.jsonl</c>, and atomic checkpoints (<c>checkpoint.safetensors</c>) that resume exactly. Every
/// setting that shapes the numbers is stored in the checkpoints, and a resume that changes one is refused unless
/// <see cref="TrainingOptions.AllowSettingChanges"/>. Cancellation stops after the current update and writes a checkpoint.
/// </summary>
internal sealed class TrainingLoop
{
    /// <summary>File name of the checkpoint inside the output folder.</summary>
    public const string CheckpointFileName = TrainingCheckpoint.FileName;

    /// <summary>File name of the JSON-lines log inside the output folder.</summary>
    public const string LogFileName = "train.jsonl";

    // Training-state key of the CPU thread count: a warning, not a refusal, when it changes (see CheckCompatible).
    private const string ThreadsKey = "threads";

    private readonly ITrainingTask _task;
    private readonly MultiViewDataset _dataset;
    private readonly TrainingOptions _options;

    /// <summary>A loop over <paramref name="dataset"/> training <paramref name="task"/> with <paramref name="options"/>.</summary>
    public TrainingLoop(ITrainingTask task, MultiViewDataset dataset, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Steps < 1 || options.BatchSize < 1 || options.CheckpointEvery < 0 || options.StopAt < 0 || options.WarmupSteps < 0)
        {
            throw new LrmInvalidArgumentException($"training: steps ({options.Steps}) and batch size ({options.BatchSize}) must be >= 1, checkpoint interval ({options.CheckpointEvery}), stop step ({options.StopAt}) and warm-up ({options.WarmupSteps}) >= 0");
        }
        _task = task;
        _dataset = dataset;
        _options = options;
    }

    /// <summary>An object left out under <see cref="BadDataPolicy.Skip"/>, once per object, when the batch that found it is trained.</summary>
    public event Action<DataProblem>? DataSkipped;

    /// <summary>Something that does not stop the run but that the user should know (a changed thread count, accepted setting changes, a dropped log line).</summary>
    public event Action<string>? Warning;

    /// <summary>Path of the checkpoint this loop wrote last (the sharded index or the single file).</summary>
    public string CheckpointPath => TrainingCheckpoint.Find(_options.OutputDirectory) ?? Path.Combine(_options.OutputDirectory, CheckpointFileName);

    /// <summary>
    /// Trains up to <see cref="TrainingOptions.Steps"/> updates, starting fresh (a new train.jsonl) or from the checkpoint
    /// at <paramref name="resumeFrom"/> (same seed, batch size and settings required). <paramref name="progress"/> runs after
    /// each update, once its checkpoint (if due) is written. Returns the number of updates done.
    /// </summary>
    public long Run(IBackend backend, string? resumeFrom = null, Action<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var settings = Settings();
        var threads = ThreadCount(backend);
        if (resumeFrom is not null)
        {
            // Checked before anything is loaded or written: a refused resume leaves the folder as it was.
            CheckCompatible(resumeFrom, settings, threads);
        }
        var logPath = Path.Combine(_options.OutputDirectory, LogFileName);
        try
        {
            Directory.CreateDirectory(_options.OutputDirectory);
        }
        catch (Exception error) when (IO.FileErrors.IsFileSystemError(error))
        {
            throw new LrmFormatException($"{_options.OutputDirectory}: cannot create the output folder: {error.Message}");
        }
        var parameters = _task.Parameters;
        using var optimizer = new AdamW(_options.Optimizer);
        var random = new TrainingRandom(TrainingRandom.For(_options.Seed, 0x747261696E).State);
        var position = default(DataPosition);
        if (resumeFrom is not null)
        {
            var state = TrainingCheckpoint.Load(resumeFrom, parameters, optimizer, backend);
            random = new TrainingRandom(state.RandomState);
            position = state.Data;
            // After a crash the log may hold updates the checkpoint does not: they go, so the resumed run's lines follow on.
            TrainingLog.KeepThrough(logPath, state.Step, message => Warning?.Invoke(message));
        }
        var schedule = new LearningRateSchedule(_options.Optimizer.LearningRate, _options.ResolvedWarmupSteps, _options.Steps, _options.MinimumLearningRate);
        using var loader = new MultiViewLoader(_dataset, _options.BatchSize, _options.Seed, position);
        // A fresh run starts a new log (a run killed before its first checkpoint may have left one).
        using var log = TrainingLog.Open(logPath, append: resumeFrom is not null);
        var extra = ExtraJson(settings, threads);
        var clock = Stopwatch.StartNew();
        var startStep = optimizer.StepCount;
        void Save() => TrainingCheckpoint.SaveIn(_options.OutputDirectory, parameters, optimizer,
            new TrainingState(optimizer.StepCount, _options.Seed, loader.Position, random.State, extra), _options.ConfigJson, _options.MaxFileBytes, backend: backend);

        while (optimizer.StepCount < _options.Steps)
        {
            var step = optimizer.StepCount + 1;
            IReadOnlyDictionary<string, double> losses;
            OptimizerStep update;
            (string[] Objects, int[] Views) batchContents = ([], []);
            try
            {
                using (var batch = loader.Next())
                {
                    foreach (var problem in batch.Skipped)
                    {
                        DataSkipped?.Invoke(problem);
                    }
                    batchContents = (batch.Objects, batch.ViewNumbers);
                    losses = _task.ComputeGradients(backend, batch, random);
                }
                foreach (var (term, value) in losses)
                {
                    Losses.EnsureFinite(value, term, step);
                }
                update = optimizer.Step(backend, parameters, schedule.At(step));
            }
            catch (LrmNonFiniteException error)
            {
                throw new LrmNonFiniteException($"{error.Message}; the batch: {Describe(batchContents.Objects, batchContents.Views)}", error.Step, error.TensorName);
            }
            WriteLog(log, update, losses, clock.Elapsed.TotalSeconds);
            var stopping = cancellation.IsCancellationRequested || (_options.StopAt > 0 && step >= _options.StopAt);
            var saved = step == _options.Steps || stopping || (_options.CheckpointEvery > 0 && step % _options.CheckpointEvery == 0);
            if (saved)
            {
                // Before the progress report: whatever the caller does there (validation) cannot lose this checkpoint.
                Save();
            }
            progress?.Invoke(new TrainingProgress(step, _options.Steps, losses, update, (step - startStep) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9)));
            if (stopping || cancellation.IsCancellationRequested)
            {
                if (!saved)
                {
                    Save();
                }
                break;
            }
        }
        return optimizer.StepCount;
    }

    // The batch for a message: each sample's object and view numbers (rgba/NNN.png).
    private static string Describe(string[] objects, int[] views)
    {
        if (objects.Length == 0)
        {
            return "(not loaded)";
        }
        var perSample = views.Length / objects.Length;
        return string.Join("; ", objects.Select((name, row) =>
            $"{name} (views {string.Join(", ", views.Skip(row * perSample).Take(perSample).Select(v => v.ToString("D3", CultureInfo.InvariantCulture)))})"));
    }

    // Every setting that shapes the numbers of the run besides the seed and the batch size (checked on their own), in
    // the order a refusal lists them. The optimiser's are stored by TrainingCheckpoint (OptimizerSettings), the rest in
    // the training state's extra JSON.
    private List<RunSetting> Settings()
    {
        var data = _dataset.Options;
        return
        [
            RunSetting.Of("steps", "--steps", _options.Steps),
            RunSetting.Of("warmup_steps", "--warmup", _options.RequestedWarmupSteps),
            RunSetting.Of("min_lr", "minimum learning rate", _options.MinimumLearningRate),
            .. OptimizerSettings(_options.Optimizer),
            RunSetting.Of("data", "--data", DataFingerprint(_dataset)),
            RunSetting.Of("views", "--views", data.ViewsPerSample),
            RunSetting.Of("patch", "--patch", data.PatchSize),
            RunSetting.Of("render_min", "--render-min", data.RenderMinResolution),
            RunSetting.Of("render_max", "--render-max", data.RenderMaxResolution),
            RunSetting.Of("backgrounds", "backgrounds", data.Backgrounds),
            RunSetting.Of("source_view", "--source-view", data.SourceView),
            RunSetting.Of("source_background", "--source-background", data.SourceBackground),
            .. _options.TaskSettings,
        ];
    }

    private static IEnumerable<RunSetting> OptimizerSettings(AdamWOptions optimizer) =>
    [
        RunSetting.Of("lr", "--lr", optimizer.LearningRate),
        RunSetting.Of("beta1", "AdamW beta1", optimizer.Beta1),
        RunSetting.Of("beta2", "AdamW beta2", optimizer.Beta2),
        RunSetting.Of("eps", "AdamW epsilon", optimizer.Epsilon),
        RunSetting.Of("weight_decay", "weight decay", optimizer.WeightDecay),
        RunSetting.Of("max_grad_norm", "gradient clipping norm", optimizer.MaxGradientNorm),
    ];

    // Which objects the run trains on: their count and a hash of their sorted folder names.
    private static string DataFingerprint(MultiViewDataset dataset)
    {
        var names = string.Join('\n', dataset.Objects.Select(o => o.Name).Order(StringComparer.Ordinal));
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(names)));
        return string.Create(CultureInfo.InvariantCulture, $"{dataset.Objects.Count} objects, names sha256 {hash[..16]}");
    }

    // The CPU engine's thread count (its GEMM and LayerNorm sums are deterministic only for a given count); null on a
    // device backend.
    private static int? ThreadCount(IBackend backend) => backend is CpuBackend ? Interop.NativeMethods.lrm_get_num_threads() : null;

    private string ExtraJson(List<RunSetting> settings, int? threads)
    {
        var optimizerKeys = OptimizerSettings(_options.Optimizer).Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteNumber("batch_size", _options.BatchSize);
            foreach (var setting in settings.Where(s => !optimizerKeys.Contains(s.Key)))
            {
                json.WritePropertyName(setting.Key);
                json.WriteRawValue(setting.Json);
            }
            if (threads is { } count)
            {
                json.WriteNumber(ThreadsKey, count);
            }
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    // The settings a checkpoint holds, key → JSON: its optimiser's and the members of its extra JSON. A checkpoint from
    // before a setting was stored lacks it, and only what it holds is compared.
    private static Dictionary<string, string> StoredSettings(TrainingState state, string path)
    {
        var stored = OptimizerSettings(TrainingCheckpoint.ReadOptimizerOptions(path)).ToDictionary(s => s.Key, s => s.Json, StringComparer.Ordinal);
        try
        {
            using var extra = JsonDocument.Parse(state.Extra.Length > 0 ? state.Extra : "{}");
            foreach (var member in extra.RootElement.EnumerateObject())
            {
                stored[member.Name] = member.Value.GetRawText();
            }
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException)
        {
            throw new LrmFormatException($"{path}: the training state's settings are not a JSON object ({error.Message})");
        }
        return stored;
    }

    private void CheckCompatible(string path, List<RunSetting> settings, int? threads)
    {
        var state = TrainingCheckpoint.ReadState(path);
        if (state.Seed != _options.Seed)
        {
            throw new LrmInvalidArgumentException($"{path}: the checkpoint was trained with seed {state.Seed}, this run has {_options.Seed}; resume with the same seed to continue the same data order");
        }
        var stored = StoredSettings(state, path);
        if (stored.TryGetValue("batch_size", out var batch) && batch != JsonSerializer.Serialize(_options.BatchSize))
        {
            throw new LrmInvalidArgumentException($"{path}: the checkpoint was trained with batch size {batch}, this run has {_options.BatchSize}");
        }
        if (state.Step > _options.Steps)
        {
            throw new LrmInvalidArgumentException($"{path}: the checkpoint is at step {state.Step}, beyond this run's {_options.Steps} steps");
        }
        var changes = settings.Where(s => stored.TryGetValue(s.Key, out var old) && old != s.Json)
            .Select(s => $"{s.Name} {RunSetting.Display(stored[s.Key])} → {RunSetting.Display(s.Json)}").ToList();
        if (changes.Count > 0)
        {
            var list = string.Join(", ", changes);
            if (!_options.AllowSettingChanges)
            {
                throw new LrmInvalidArgumentException($"{path}: this run's settings differ from the checkpoint's: {list}; resume with the checkpoint's values to continue the same run, or pass --resume-with-changes to continue with these");
            }
            Warning?.Invoke($"{path}: resuming with changed settings (--resume-with-changes): {list}; the continuation is not the run the checkpoint started");
        }
        if (threads is { } count && stored.TryGetValue(ThreadsKey, out var storedThreads) && storedThreads != JsonSerializer.Serialize(count))
        {
            Warning?.Invoke($"{path}: the checkpoint was trained on {storedThreads} CPU thread(s), this run has {count} (--threads): GEMM and LayerNorm sums are deterministic only for a given thread count, so the continuation differs in the last bits from one on {storedThreads}");
        }
    }

    private static void WriteLog(TrainingLog log, OptimizerStep update, IReadOnlyDictionary<string, double> losses, double seconds) => log.Write(json =>
    {
        json.WriteNumber("step", update.Step);
        json.WriteNumber("lr", update.LearningRate);
        foreach (var (term, value) in losses.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            json.WriteNumber(term, value);
        }
        json.WriteNumber("grad_norm", update.GradientNorm);
        json.WriteNumber("clip_scale", update.ClipScale);
        json.WriteNumber("seconds", Math.Round(seconds, 3));
    });

    /// <summary>Reads train.jsonl of <paramref name="directory"/> as (step, term → value) rows, for tests and tools.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, double>> ReadLog(string directory)
    {
        var rows = new List<IReadOnlyDictionary<string, double>>();
        foreach (var line in File.ReadLines(Path.Combine(directory, LogFileName)))
        {
            using var document = JsonDocument.Parse(line);
            rows.Add(document.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble(), StringComparer.Ordinal));
        }
        return rows;
    }
}
