using System.CommandLine;
using System.Globalization;
using LrmNative.Backends;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Metrics;
using LrmNative.Model;
using LrmNative.Training;
using Spectre.Console;

namespace LrmNative.Cli;

/// <summary>What <c>lrm train</c> was asked to do.</summary>
internal sealed record TrainOptions
{
    /// <summary>A model config JSON (OpenLRM keys): train from a fresh initialisation.</summary>
    public string? Config { get; init; }

    /// <summary>A model (folder or single file) to fine-tune.</summary>
    public string? Model { get; init; }

    /// <summary>The multi-view dataset root (OpenLRM layout).</summary>
    public required string Data { get; init; }

    /// <summary>Output folder: checkpoint.safetensors, train.jsonl, model.safetensors.</summary>
    public required string Out { get; init; }

    /// <summary>Total optimiser updates (the schedule's length).</summary>
    public long Steps { get; init; } = 1000;

    /// <summary>Stop (with a checkpoint) after this update; 0: run to the end.</summary>
    public long StopAt { get; init; }

    /// <summary>Samples per batch.</summary>
    public int Batch { get; init; } = 1;

    /// <summary>Views per sample (source included).</summary>
    public int Views { get; init; } = 4;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 4e-4;

    /// <summary>Warm-up updates; null: <see cref="TrainingOptions.DefaultWarmupSteps"/> (the paper's 3000, at most a tenth of the run).</summary>
    public long? Warmup { get; init; }

    /// <summary>Seed of the initialisation, data order and draws.</summary>
    public ulong Seed { get; init; }

    /// <summary>Checkpoint every this many updates (0: only at the end).</summary>
    public long CheckpointEvery { get; init; } = 500;

    /// <summary>Continue from OUT/checkpoint.safetensors.</summary>
    public bool Resume { get; init; }

    /// <summary>With <see cref="Resume"/>: continue even when settings that shape the run differ from the checkpoint's.</summary>
    public bool ResumeWithChanges { get; init; }

    /// <summary>CPU threads (0: default).</summary>
    public int Threads { get; init; }

    /// <summary>Where to train: the CPU (default here; bit-reproducible for a thread count), a CUDA device, or auto.</summary>
    public Device Device { get; init; } = Device.Cpu;

    /// <summary>Deferred back-propagation for the renderer.</summary>
    public bool Deferred { get; init; }

    /// <summary>Render resolution range and supervised patch side.</summary>
    public int RenderMin { get; init; } = 64;

    /// <summary>Largest render resolution.</summary>
    public int RenderMax { get; init; } = 192;

    /// <summary>Patch side.</summary>
    public int Patch { get; init; } = 64;

    /// <summary>Mask loss weight.</summary>
    public float MaskWeight { get; init; }

    /// <summary>TV weight.</summary>
    public float TvWeight { get; init; } = Losses.DefaultTotalVariationWeight;

    /// <summary>SSIM loss weight (0: off).</summary>
    public float SsimWeight { get; init; }

    /// <summary>LPIPS weights file (null: LPIPS off).</summary>
    public string? LpipsWeights { get; init; }

    /// <summary>LPIPS weight λ when <see cref="LpipsWeights"/> is given.</summary>
    public float LpipsWeight { get; init; } = PerceptualLoss.PaperWeight;

    /// <summary>Occupancy loss weight (0: off).</summary>
    public float OccupancyWeight { get; init; }

    /// <summary>Occupancy query points per sample when the occupancy loss is on.</summary>
    public int OccupancyPoints { get; init; } = DefaultOccupancyPoints;

    /// <summary>Density where the occupancy loss puts the surface.</summary>
    public float OccupancyDensity { get; init; } = LrmLossOptions.DefaultOccupancyHalfDensity;

    /// <summary>Default of <see cref="OccupancyPoints"/>.</summary>
    public const int DefaultOccupancyPoints = 2048;

    /// <summary>Skip bad objects instead of stopping.</summary>
    public bool SkipBadData { get; init; }

    /// <summary>Colour the source image is composited on (null: the sample's random background).</summary>
    public float? SourceBackground { get; init; }

    /// <summary>Fresh weights only: how the encoder's position table starts.</summary>
    public PositionInit? PositionInit { get; init; }

    /// <summary>View number every sample is conditioned on (null: a random view per sample).</summary>
    public int? SourceView { get; init; }

    /// <summary>Rays per render chunk.</summary>
    public int ChunkRays { get; init; } = 4096;

    /// <summary>Largest checkpoint/model file in MB (10⁶ bytes): bigger ones are sharded; 0: single files.</summary>
    public double MaxFileMb { get; init; } = 16;

    /// <summary>Held-out dataset for periodic validation (renders and PSNR/SSIM of novel views); null: none.</summary>
    public string? ValData { get; init; }

    /// <summary>Validate every N updates (and after the last); 0: only after the last.</summary>
    public long ValEvery { get; init; } = 500;

    /// <summary>Held-out objects per validation (the first N by folder name).</summary>
    public int ValObjects { get; init; } = 4;

    /// <summary>Novel views scored per validation object.</summary>
    public int ValViews { get; init; } = 4;
}

/// <summary>
/// <c>lrm train (--config CONFIG.json | --model MODEL) --data DIR --out DIR [--steps N] [--batch B] [--views V] [--lr LR]
/// [--warmup N] [--seed S] [--checkpoint-every N] [--resume] [--threads N] [--deferred] …</c>: trains LRM on the CPU
/// (docs/training.md). Progress per update (loss, PSNR, learning rate, step time) as a live Spectre.Console line on a
/// terminal, plain lines otherwise; <c>OUT/train.jsonl</c> one JSON line per update; <c>OUT/checkpoint.safetensors</c>
/// every N updates and at the end (atomic; <c>--resume</c> continues exactly; larger than <c>--max-file-mb</c>: shards plus
/// <c>checkpoint.index.json</c>, crash-safe); <c>OUT/model.safetensors</c> (or its shards plus
/// <c>model.safetensors.index.json</c>), a model for <c>lrm reconstruct --model</c>, at the end. Ctrl+C stops after the current update with a checkpoint.
/// </summary>
internal static class TrainCommand
{
    /// <summary>File name of the final model inside the output folder.</summary>
    public const string ModelFileName = "model.safetensors";

    public static Command Create()
    {
        var command = new Command("train", "Train or fine-tune LRM on a multi-view dataset (OpenLRM layout) on the CPU or a CUDA GPU (--device)");
        var config = new Option<string?>("--config") { Description = "Model config JSON (OpenLRM keys): train from a fresh, seeded initialisation" };
        var model = new Option<string?>("--model") { Description = "Model to fine-tune: an OpenLRM folder or an LrmNative model file" };
        var data = new Option<string>("--data") { Description = "Dataset root: one folder per object with rgba/NNN.png, pose/NNN.npy, intrinsics.npy", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder: checkpoint.safetensors, train.jsonl, model.safetensors", Required = true };
        var steps = new Option<long>("--steps") { Description = "Optimiser updates of the run (the cosine schedule's length)", DefaultValueFactory = _ => 1000 };
        var stopAt = new Option<long>("--stop-at") { Description = "Stop after this update with a checkpoint (resume later with --resume); 0: run all steps" };
        var batch = new Option<int>("--batch") { Description = "Objects per batch", DefaultValueFactory = _ => 1 };
        var views = new Option<int>("--views") { Description = "Views per object and step, the source included (paper: 4)", DefaultValueFactory = _ => 4 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (paper: 4e-4)", DefaultValueFactory = _ => 4e-4 };
        var warmup = new Option<long?>("--warmup") { Description = "Linear warm-up updates (paper: 3000); default: 3000 but at most a tenth of --steps, so the cosine decays" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initialisation, the data order and the view/patch draws" };
        var checkpointEvery = new Option<long>("--checkpoint-every") { Description = "Write a checkpoint every N updates (and at the end); 0: only at the end", DefaultValueFactory = _ => 500 };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT/checkpoint.safetensors with the settings it was trained with (a changed seed, batch, data, schedule, optimiser, sampling or loss setting is refused, naming each)" };
        var resumeWithChanges = new Option<bool>("--resume-with-changes")
        {
            Description = "With --resume: continue even though settings differ from the checkpoint's (listed as a warning); the result is then not the run the checkpoint started",
        };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: OMP_NUM_THREADS or all cores)" };
        var device = new Option<string>("--device")
        {
            Description = "cpu, cuda, cuda:N or auto (a usable GPU, else the CPU); CPU runs are bit-reproducible for a thread count, CUDA runs are not (float atomics in the triplane backward)",
            DefaultValueFactory = _ => "auto",
        };
        var deferred = new Option<bool>("--deferred") { Description = "Deferred back-propagation: render without activations, re-render in ray chunks for the backward (memory independent of the resolution)" };
        var renderMin = new Option<int>("--render-min") { Description = "Smallest random render resolution (OpenLRM small: 64)", DefaultValueFactory = _ => 64 };
        var renderMax = new Option<int>("--render-max") { Description = "Largest random render resolution (OpenLRM small: 192)", DefaultValueFactory = _ => 192 };
        var patch = new Option<int>("--patch") { Description = "Side of the supervised patch (OpenLRM small: 64)", DefaultValueFactory = _ => 64 };
        var maskWeight = new Option<float>("--mask-weight") { Description = "Weight of the mask loss MSE(opacity, alpha); 0: off" };
        var tvWeight = new Option<float>("--tv-weight") { Description = "Weight of the triplane TV loss (OpenLRM: 5e-4)", DefaultValueFactory = _ => Losses.DefaultTotalVariationWeight };
        var ssimWeight = new Option<float>("--ssim-weight") { Description = "Weight of the SSIM loss 1 − SSIM(render, target) per view (needs --patch >= 11); 0: off" };
        var lpipsWeights = new Option<string?>("--lpips-weights")
        {
            Description = "LPIPS-AlexNet weights (.safetensors converted once from torchvision + lpips, docs/training.md); none ship, so without it LPIPS is off (needs --patch >= 31)",
        };
        var lpipsWeight = new Option<float>("--lpips-weight") { Description = "Weight λ of the LPIPS loss when --lpips-weights is given (paper: 2)", DefaultValueFactory = _ => PerceptualLoss.PaperWeight };
        var sourceBackground = new Option<float?>("--source-background")
        {
            Description = "Composite the source image (the encoder's input) on this grey level, e.g. 1 = white as reconstruct does; default: the sample's random background, like its targets",
        };
        var sourceView = new Option<int?>("--source-view")
        {
            Description = "Condition every sample on this view (its file number, e.g. 0 for rgba/000.png: the source view of `lrm dataset synth --source-distance`); the other views stay random; default: a random view per sample, as LRM",
        };
        var positionInit = new Option<string?>("--position-init")
        {
            Description = "Fresh weights (--config) only: the encoder's position table starts as normal (N(0, 0.02²), DINOv2; default) or sincos (MAE's 2D sine-cosine table)",
        };
        positionInit.AcceptOnlyFromAmong("normal", "sincos");
        var occupancyWeight = new Option<float>("--occupancy-weight")
        {
            Description = "Weight of the occupancy loss: points near each object's mesh.ply and uniform in the box, labelled inside/outside, supervise the density directly (3D supervision, not in the paper; needs closed meshes, e.g. lrm dataset synth's); 0: off",
        };
        var occupancyPoints = new Option<int>("--occupancy-points") { Description = "Occupancy query points per object and step (half near the surface)", DefaultValueFactory = _ => TrainOptions.DefaultOccupancyPoints };
        var occupancyDensity = new Option<float>("--occupancy-density")
        {
            Description = "Density at which the occupancy loss puts the surface (occupancy 1 − exp(−σ·ln2/d) = ½ at σ = d); match the model's mesh_threshold",
            DefaultValueFactory = _ => LrmLossOptions.DefaultOccupancyHalfDensity,
        };
        var skipBad = new Option<bool>("--skip-bad-data") { Description = "Leave out (and list) objects with bad files instead of stopping" };
        var chunk = new Option<int>("--chunk-rays") { Description = "Rays per render chunk", DefaultValueFactory = _ => 4096 };
        var valData = new Option<string?>("--val-data") { Description = "Held-out dataset (same layout): every --val-every updates, render novel views of its first objects from their source view and log PSNR/SSIM (OUT/val.jsonl, renders under OUT/val/)" };
        var valEvery = new Option<long>("--val-every") { Description = "Validate every N updates and after the last; 0: only after the last", DefaultValueFactory = _ => 500 };
        var valObjects = new Option<int>("--val-objects") { Description = "Held-out objects per validation", DefaultValueFactory = _ => 4 };
        var valViews = new Option<int>("--val-views") { Description = "Novel views scored per validation object", DefaultValueFactory = _ => 4 };
        var maxFileMb = new Option<double>("--max-file-mb") { Description = "Largest checkpoint/model file in MB (10^6 bytes): bigger ones are written as shards plus an index (checkpoint.index.json, model.safetensors.index.json); 0: always one file", DefaultValueFactory = _ => 16 };
        foreach (var option in new Option[] { config, model, data, output, steps, stopAt, batch, views, lr, warmup, seed, checkpointEvery, resume, resumeWithChanges, threads, device, deferred, renderMin, renderMax, patch, maskWeight, tvWeight, ssimWeight, lpipsWeights, lpipsWeight, occupancyWeight, occupancyPoints, occupancyDensity, skipBad, chunk, maxFileMb, sourceBackground, sourceView, positionInit, valData, valEvery, valObjects, valViews })
        {
            command.Options.Add(option);
        }
        command.SetAction(parse =>
        {
            var log = parse.InvocationConfiguration.Error;
            using var interruption = Interruption.Listen(log, "stopping after the current update, with a checkpoint");
            try
            {
                Run(new TrainOptions
                {
                    Config = parse.GetValue(config),
                    Model = parse.GetValue(model),
                    Data = parse.GetRequiredValue(data),
                    Out = parse.GetRequiredValue(output),
                    Steps = parse.GetValue(steps),
                    StopAt = parse.GetValue(stopAt),
                    Batch = parse.GetValue(batch),
                    Views = parse.GetValue(views),
                    LearningRate = parse.GetValue(lr),
                    Warmup = parse.GetValue(warmup),
                    Seed = parse.GetValue(seed),
                    CheckpointEvery = parse.GetValue(checkpointEvery),
                    Resume = parse.GetValue(resume),
                    ResumeWithChanges = parse.GetValue(resumeWithChanges),
                    Threads = parse.GetValue(threads),
                    Device = ReconstructCommand.ParseDevice(parse.GetRequiredValue(device)),
                    Deferred = parse.GetValue(deferred),
                    RenderMin = parse.GetValue(renderMin),
                    RenderMax = parse.GetValue(renderMax),
                    Patch = parse.GetValue(patch),
                    MaskWeight = parse.GetValue(maskWeight),
                    TvWeight = parse.GetValue(tvWeight),
                    SsimWeight = parse.GetValue(ssimWeight),
                    LpipsWeights = parse.GetValue(lpipsWeights),
                    LpipsWeight = parse.GetValue(lpipsWeight),
                    OccupancyWeight = parse.GetValue(occupancyWeight),
                    OccupancyPoints = parse.GetValue(occupancyPoints),
                    OccupancyDensity = parse.GetValue(occupancyDensity),
                    SkipBadData = parse.GetValue(skipBad),
                    SourceBackground = parse.GetValue(sourceBackground),
                    SourceView = parse.GetValue(sourceView),
                    PositionInit = parse.GetValue(positionInit) switch
                    {
                        "sincos" => PositionInit.SinCos,
                        null => null,
                        _ => PositionInit.Normal,
                    },
                    ChunkRays = parse.GetValue(chunk),
                    MaxFileMb = parse.GetValue(maxFileMb),
                    ValData = parse.GetValue(valData),
                    ValEvery = parse.GetValue(valEvery),
                    ValObjects = parse.GetValue(valObjects),
                    ValViews = parse.GetValue(valViews),
                }, log, interactive: ReferenceEquals(log, Console.Error) && !Console.IsErrorRedirected, interruption.Token);
                return interruption.Signal is null ? 0 : interruption.ExitCode;
            }
            catch (LrmException error)
            {
                log.WriteLine($"lrm: error: {error.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Trains as <paramref name="options"/> says, writing progress to <paramref name="log"/>; returns the updates done.</summary>
    public static long Run(TrainOptions options, TextWriter log, bool interactive = false, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        Validate(options);
        var checkpoint = Directory.Exists(options.Out) ? TrainingCheckpoint.Find(options.Out) : null;
        if (options.Resume && checkpoint is null)
        {
            throw new LrmInvalidArgumentException($"--resume: {Path.Combine(options.Out, TrainingLoop.CheckpointFileName)} (or {TrainingCheckpoint.IndexFileName}) does not exist (nothing to continue)");
        }
        if (!options.Resume && checkpoint is not null)
        {
            throw new LrmInvalidArgumentException($"{checkpoint} exists: pass --resume to continue that run, or choose another --out");
        }
        var trainingLog = Path.Combine(options.Out, TrainingLoop.LogFileName);
        if (!options.Resume && File.Exists(trainingLog))
        {
            throw new LrmInvalidArgumentException($"{trainingLog} exists, from a run stopped before its first checkpoint (there is nothing to resume): remove it to start afresh, or choose another --out");
        }
        var warmup = Math.Min(options.Warmup ?? TrainingOptions.DefaultWarmupSteps(options.Steps), options.Steps);
        if (options.Warmup is { } requested && requested >= options.Steps)
        {
            log.WriteLine($"lrm: warning: --warmup {requested} is not below --steps {options.Steps}: the whole run is warm-up, so the learning rate never decays");
        }
        var maxFileBytes = (long)Math.Round(options.MaxFileMb * 1e6);

        var (backend, used, note) = BackendFactory.Create(options.Device, options.Threads);
        using var backendScope = backend;
        if (note is not null)
        {
            log.WriteLine($"lrm: note: {note}");
        }
        using var model = LoadModel(options, checkpoint, backend);
        var dataOptions = new DataOptions
        {
            ViewsPerSample = options.Views,
            SourceImageSize = model.Config.EncoderImageSize,
            CameraInputDim = model.Config.CameraInputDim,
            RenderMinResolution = options.RenderMin,
            RenderMaxResolution = options.RenderMax,
            PatchSize = options.Patch,
            BadData = options.SkipBadData ? BadDataPolicy.Skip : BadDataPolicy.Fatal,
            SourceBackground = options.SourceBackground,
            SourceView = options.SourceView,
            OccupancyPoints = options.OccupancyWeight > 0 ? options.OccupancyPoints : 0,
        };
        var dataset = MultiViewDataset.Open(options.Data, dataOptions);
        var skipped = dataset.Problems.Count;
        foreach (var problem in dataset.Problems)
        {
            log.WriteLine($"lrm: warning: skipped {problem}");
        }
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train: {model.Config.ParameterCountText} parameters on {used}, {dataset.Objects.Count} objects, {options.Steps} steps (warm-up {warmup}) × batch {options.Batch} × {options.Views} views, patch {options.Patch}² of {options.RenderMin}–{options.RenderMax}, {(options.Deferred ? "deferred" : "kept")} render activations{(options.Resume ? $", resuming from {checkpoint}" : "")}"));
        if (EngineInfo.BlasNote is { } blasNote && backend.Device.Kind == DeviceKind.Cpu)
        {
            log.WriteLine($"lrm: note: {blasNote}");
        }

        var validation = options.ValData is null ? null
            : new TrainValidation(options, model, backend, checkpoint is null ? 0 : TrainingCheckpoint.ReadState(checkpoint).Step, message => log.WriteLine($"lrm: warning: {message}"));
        if (validation is not null)
        {
            var shared = validation.ObjectNames.Intersect(dataset.Objects.Select(o => o.Name), StringComparer.Ordinal).ToList();
            if (shared.Count > 0)
            {
                log.WriteLine($"lrm: warning: --val-data objects {string.Join(", ", shared.Take(5))}{(shared.Count > 5 ? $" and {shared.Count - 5} more" : "")} have the names of --data objects: if they are the same objects, the validation is not on held-out data");
            }
        }
        using var lpips = PerceptualLoss.Open(options.LpipsWeights);
        log.WriteLine(lpips is null ? $"train: {PerceptualLoss.UnavailableMessage}"
            : string.Create(CultureInfo.InvariantCulture, $"train: LPIPS ({lpips.Name}, {options.LpipsWeights}) at weight {options.LpipsWeight}"));
        if (options.OccupancyWeight == 0 && (options.OccupancyPoints != TrainOptions.DefaultOccupancyPoints || options.OccupancyDensity != LrmLossOptions.DefaultOccupancyHalfDensity))
        {
            log.WriteLine("lrm: warning: --occupancy-points and --occupancy-density have no effect without --occupancy-weight (the occupancy loss is off)");
        }
        if (options.OccupancyWeight > 0)
        {
            var without = dataset.Objects.Where(o => !File.Exists(Path.Combine(o.Directory, DatasetLayout.MeshFile))).ToList();
            if (without.Count > 0 && !options.SkipBadData)
            {
                throw new LrmInvalidArgumentException($"train: --occupancy-weight needs a closed {DatasetLayout.MeshFile} in every object folder; {without.Count} of {dataset.Objects.Count} have none (first: {Path.Combine(without[0].Directory, DatasetLayout.MeshFile)}); train without it, or with --skip-bad-data to leave them out");
            }
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train: occupancy loss at weight {options.OccupancyWeight:G}, {options.OccupancyPoints} points per object and step (half near {DatasetLayout.MeshFile}), surface at density {options.OccupancyDensity:G}"));
        }
        var lossOptions = new LrmLossOptions
        {
            MaskWeight = options.MaskWeight,
            TotalVariationWeight = options.TvWeight,
            SsimWeight = options.SsimWeight,
            Perceptual = lpips,
            PerceptualWeight = options.LpipsWeight,
            Deferred = options.Deferred,
            OccupancyWeight = options.OccupancyWeight,
            OccupancyHalfDensity = options.OccupancyDensity,
        };
        lossOptions.Validate(options.Patch);
        using var task = new LrmTrainingTask(model, lossOptions, options.ChunkRays);
        if (maxFileBytes > 0 && SafeTensorsSet.OverLimit(task.Parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)), maxFileBytes) is [var largest, ..] over)
        {
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"lrm: note: {over.Count} weight{(over.Count == 1 ? " is" : "s are")} larger than --max-file-mb {options.MaxFileMb:G} on {(over.Count == 1 ? "its" : "their")} own (largest '{largest.Name}', {largest.FileBytes / 1e6:F2} MB): each, and each of its AdamW moments, is written as a shard of its own, over the limit; --max-file-mb {Math.Ceiling(largest.FileBytes / 1e6 + 0.01):F0} keeps every file within it"));
        }
        var loop = new TrainingLoop(task, dataset, new TrainingOptions
        {
            Steps = options.Steps,
            BatchSize = options.Batch,
            Seed = options.Seed,
            WarmupSteps = options.Warmup,
            Optimizer = new AdamWOptions { LearningRate = options.LearningRate },
            CheckpointEvery = options.CheckpointEvery,
            StopAt = options.StopAt,
            OutputDirectory = options.Out,
            ConfigJson = model.Config.ToJson(),
            MaxFileBytes = maxFileBytes,
            // Stored in checkpoints and checked on resume. --deferred is not: kept and deferred render activations give
            // the same gradients bit for bit (docs/training.md), so it may change with the memory at hand.
            TaskSettings =
            [
                RunSetting.Of("mask_weight", "--mask-weight", options.MaskWeight),
                RunSetting.Of("tv_weight", "--tv-weight", options.TvWeight),
                RunSetting.Of("ssim_weight", "--ssim-weight", options.SsimWeight),
                RunSetting.Of("lpips_weight", "--lpips-weight", lpips is null ? 0f : options.LpipsWeight),
                RunSetting.Of("lpips_weights", "--lpips-weights (SHA-256 of the file)", lpips is null ? "" : FileHash(options.LpipsWeights!)),
                RunSetting.Of("chunk_rays", "--chunk-rays", options.ChunkRays),
                RunSetting.Of("occupancy_weight", "--occupancy-weight", options.OccupancyWeight),
                RunSetting.Of("occupancy_points", "--occupancy-points", options.OccupancyWeight > 0 ? options.OccupancyPoints : 0),
                RunSetting.Of("occupancy_density", "--occupancy-density", options.OccupancyDensity),
            ],
            AllowSettingChanges = options.ResumeWithChanges,
        });
        var display = new TrainProgressDisplay(log, interactive);
        loop.DataSkipped += problem =>
        {
            skipped++;
            display.Note($"lrm: warning: skipped {problem}");
        };
        loop.Warning += message => display.Note($"lrm: warning: {message}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var last = clock.Elapsed;
        var done = loop.Run(backend, checkpoint, progress =>
        {
            var now = clock.Elapsed;
            display.Report(progress, (now - last).TotalSeconds);
            if (validation is not null && validation.Due(progress.Step))
            {
                display.Note(validation.Run(progress.Step));
                now = clock.Elapsed; // the next step's time leaves the validation out
            }
            last = now;
        }, cancellation);
        display.Finish();
        var peak = backend is CudaBackend cuda
            ? $"peak device memory {cuda.MemoryStatistics.PeakInUseBytes / 1e6:F1} MB (the caching allocator's, weights included), peak host tensors {HostMemory.PeakBytes / 1e6:F1} MB"
            : $"peak host tensor memory {HostMemory.PeakBytes / 1e6:F1} MB (weights included)";
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"train: {peak}"));
        model.WeightsChanged();
        var skippedText = skipped == 0 ? "" : $"; {skipped} bad object(s) skipped (listed above)";
        if (done == options.Steps)
        {
            var modelPath = model.SaveWeights(options.Out, maxFileBytes);
            log.WriteLine($"train: done, {done} steps in {clock.Elapsed.TotalSeconds:F1} s{skippedText}; model {modelPath} (lrm reconstruct --model {modelPath}), checkpoint {loop.CheckpointPath}");
        }
        else
        {
            log.WriteLine($"train: stopped after step {done} of {options.Steps}{skippedText}; checkpoint {loop.CheckpointPath} (continue with --resume)");
        }
        return done;
    }

    // The model with its weights in the training backend's memory.
    // What a resume compares for --lpips-weights: the file's contents, not its name.
    private static string FileHash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }

    private static LrmModel LoadModel(TrainOptions options, string? checkpoint, IBackend backend)
    {
        if (checkpoint is not null)
        {
            // The checkpoint (single file or sharded index) is a model file too; TrainingLoop then restores its weights, moments and position.
            return LrmModel.Load(checkpoint, trainable: true, backend);
        }
        if (options.Model is not null)
        {
            return LrmModel.Load(options.Model, trainable: true, backend);
        }
        var config = ModelConfig.Load(options.Config!);
        var weights = ModelInitializer.Create(config, options.Seed, options.PositionInit ?? PositionInit.Normal);
        return LrmModel.Create(config, weights, trainable: true, backend);
    }

    private static void Validate(TrainOptions options)
    {
        if (options.ResumeWithChanges && !options.Resume)
        {
            throw new LrmInvalidArgumentException("train: --resume-with-changes goes with --resume");
        }
        if (!options.Resume && (options.Config is null) == (options.Model is null))
        {
            throw new LrmInvalidArgumentException("train: give exactly one of --config CONFIG.json (fresh weights) or --model MODEL (fine-tune)");
        }
        if (options.PositionInit is not null && options.Model is not null)
        {
            throw new LrmInvalidArgumentException("train: --position-init sets up fresh weights; it goes with --config, not with --model");
        }
        if (!(options.MaxFileMb >= 0) || !double.IsFinite(options.MaxFileMb))
        {
            throw new LrmInvalidArgumentException($"train: --max-file-mb must be >= 0 (0: single files), got {options.MaxFileMb}");
        }
        if (options.Steps < 1 || options.Batch < 1 || options.Views < 1 || options.CheckpointEvery < 0 || options.StopAt < 0 || options.Warmup < 0 || options.ChunkRays < 1 || options.Threads < 0)
        {
            throw new LrmInvalidArgumentException("train: --steps, --batch, --views, --chunk-rays must be >= 1; --checkpoint-every, --stop-at, --warmup, --threads >= 0");
        }
        if (!(options.LearningRate > 0) || !double.IsFinite(options.LearningRate))
        {
            throw new LrmInvalidArgumentException($"train: --lr must be positive, got {options.LearningRate}");
        }
        if (!(options.MaskWeight >= 0) || !(options.TvWeight >= 0) || !(options.SsimWeight >= 0) || !(options.LpipsWeight >= 0)
            || !float.IsFinite(options.MaskWeight + options.TvWeight + options.SsimWeight + options.LpipsWeight))
        {
            throw new LrmInvalidArgumentException("train: --mask-weight, --tv-weight, --ssim-weight and --lpips-weight must be finite and >= 0");
        }
        if (!(options.OccupancyWeight >= 0) || !float.IsFinite(options.OccupancyWeight) || !(options.OccupancyDensity > 0) || !float.IsFinite(options.OccupancyDensity))
        {
            throw new LrmInvalidArgumentException($"train: --occupancy-weight must be finite and >= 0 and --occupancy-density finite and > 0, got {options.OccupancyWeight} and {options.OccupancyDensity}");
        }
        if (options.OccupancyPoints is < 1 or > DataOptions.MaxOccupancyPoints)
        {
            throw new LrmInvalidArgumentException($"train: --occupancy-points must be in [1, {DataOptions.MaxOccupancyPoints}], got {options.OccupancyPoints}");
        }
        if (options.ValEvery < 0 || options.ValObjects < 1 || options.ValViews < 1)
        {
            throw new LrmInvalidArgumentException("train: --val-every must be >= 0, --val-objects and --val-views >= 1");
        }
    }
}

/// <summary>
/// Periodic validation of <c>lrm train --val-data</c>: the live model reconstructs the first held-out objects from their
/// source view exactly as <c>lrm eval model</c> does (docs/metrics.md), renders novel views and scores PSNR/SSIM; the renders
/// and ground truths go to OUT/val/step-NNNNNNNN/OBJECT/, one line per validation to OUT/val.jsonl. It only reads the
/// weights and draws no random numbers, so the training run is the same with or without it.
/// </summary>
internal sealed class TrainValidation
{
    public const string LogFileName = "val.jsonl";
    private readonly TrainOptions _options;
    private readonly LrmModel _model;
    private readonly IBackend _backend;
    private readonly MultiViewDataset _dataset;
    private readonly string _log;

    /// <summary>Validation for <paramref name="options"/>; <paramref name="warning"/> hears of a cut-off last line dropped from val.jsonl.</summary>
    public TrainValidation(TrainOptions options, LrmModel model, IBackend backend, long resumedStep, Action<string> warning)
    {
        _options = options;
        _model = model;
        _backend = backend;
        using (var reconstructor = Reconstructor.Borrowing(model, backend, new ReconstructorOptions { Threads = options.Threads }, options.ValData!))
        {
            _dataset = ModelEvaluation.OpenDataset(options.ValData!, reconstructor);
        }
        if (_dataset.Objects.Count == 0)
        {
            throw new LrmFormatException($"{options.ValData}: --val-data holds no usable object");
        }
        // Checked before training starts, so a bad held-out set cannot stop a run at its first validation.
        var sourceView = options.SourceView ?? 0;
        foreach (var entry in _dataset.Objects.Take(options.ValObjects))
        {
            if (!entry.ViewIndices.Contains(sourceView))
            {
                throw new LrmFormatException($"{entry.ImagePath(sourceView)}: --val-data object '{entry.Name}' has no source view {sourceView}");
            }
        }
        _log = Path.Combine(options.Out, LogFileName);
        // A resumed run continues the log after the checkpoint's step; lines of updates the checkpoint does not have go.
        TrainingLog.KeepThrough(_log, resumedStep, warning);
    }

    /// <summary>The held-out objects each validation scores.</summary>
    public IEnumerable<string> ObjectNames => _dataset.Objects.Take(_options.ValObjects).Select(o => o.Name);

    /// <summary>Whether update <paramref name="step"/> is validated (every --val-every, and the last of the schedule).</summary>
    public bool Due(long step) => step == _options.Steps || (_options.ValEvery > 0 && step % _options.ValEvery == 0);

    /// <summary>Validates the weights after update <paramref name="step"/>; returns the line for the progress log.</summary>
    public string Run(long step)
    {
        _model.WeightsChanged();
        var folder = Path.Combine(_options.Out, "val", string.Create(CultureInfo.InvariantCulture, $"step-{step:D8}"));
        using var reconstructor = Reconstructor.Borrowing(_model, _backend, new ReconstructorOptions { Threads = _options.Threads }, $"training step {step}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var results = ModelEvaluation.Run(reconstructor, _dataset, new ModelEvaluationOptions
        {
            Objects = _options.ValObjects,
            Views = _options.ValViews,
            SourceView = _options.SourceView ?? 0,
            SkipMesh = true,
            OutputDirectory = folder,
        });
        var views = results.SelectMany(r => r.Views).ToList();
        double psnr = views.Average(v => v.Psnr), ssim = views.Average(v => v.Ssim);
        using (var writer = TrainingLog.Open(_log, append: true))
        {
            writer.Write(json =>
            {
                json.WriteNumber("step", step);
                // An exact render has PSNR +∞, which JSON has no number for.
                TrainingLog.WriteNumber(json, "psnr", psnr);
                TrainingLog.WriteNumber(json, "ssim", ssim);
                json.WriteNumber("objects", results.Count);
                json.WriteNumber("views", views.Count);
                json.WriteNumber("seconds", Math.Round(clock.Elapsed.TotalSeconds, 3));
            });
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"val step {step}: PSNR {psnr:F2} dB, SSIM {ssim:F3} over {results.Count} held-out objects × {views.Count / Math.Max(results.Count, 1)} views ({clock.Elapsed.TotalSeconds:F1} s; renders in {folder})");
    }
}

/// <summary>Training progress: a live Spectre.Console status line on a terminal, one plain line per update otherwise.</summary>
internal sealed class TrainProgressDisplay(TextWriter log, bool interactive)
{
    private readonly IAnsiConsole? _console = interactive
        ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(log) })
        : null;

    // Whether the live status line is on screen (a line of its own must start below it).
    private bool _live;

    public void Report(TrainingProgress progress, double stepSeconds)
    {
        progress.Losses.TryGetValue("psnr", out var psnr);
        var line = string.Create(CultureInfo.InvariantCulture,
            $"step {progress.Step}/{progress.TotalSteps}  loss {progress.Losses["loss"]:F5}  psnr {psnr:F2} dB  lr {progress.Optimizer.LearningRate:E2}  |g| {progress.Optimizer.GradientNorm:F3}  {stepSeconds * 1000:F0} ms/step  eta {progress.Remaining:hh\\:mm\\:ss}");
        if (_console is null)
        {
            log.WriteLine(line);
            return;
        }
        var fraction = (double)progress.Step / progress.TotalSteps;
        var width = 24;
        var filled = (int)Math.Round(fraction * width);
        _console.Markup($"\r[green]{new string('━', filled)}[/][grey]{new string('━', width - filled)}[/] {Markup.Escape(line)}   ");
        _live = true;
    }

    /// <summary>A line of its own (validation results, warnings), below the live status line on a terminal.</summary>
    public void Note(string line)
    {
        Finish();
        log.WriteLine(line);
    }

    /// <summary>Ends the live status line, if one is shown.</summary>
    public void Finish()
    {
        if (_live)
        {
            _console!.WriteLine();
            _live = false;
        }
    }
}
