using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LrmNative.Data;

namespace LrmNative.Cli;

/// <summary>
/// <c>lrm dataset synth | render | check</c>: multi-view training data without downloads (docs/datasets.md).
/// <list type="bullet">
/// <item><c>synth --objects N --views V --resolution R --seed S --out DIR</c>: procedural objects.</item>
/// <item><c>render --meshes DIR --views V --out DIR</c>: the user's OBJ/PLY/GLB meshes, same cameras and layout.</item>
/// <item><c>check DIR</c>: validates a dataset folder; exit code 1 when it finds problems.</item>
/// </list>
/// </summary>
internal static class DatasetCommand
{
    public static Command Create()
    {
        var command = new Command("dataset", "Make and check multi-view datasets (OpenLRM layout): procedural objects, your meshes");
        command.Subcommands.Add(CreateSynth());
        command.Subcommands.Add(CreateRender());
        command.Subcommands.Add(CreateCheck());
        return command;
    }

    private sealed class CommonOptions
    {
        public Option<int> Views { get; } = new("--views") { Description = "Views per object", DefaultValueFactory = _ => 32 };
        public Option<int> Resolution { get; } = new("--resolution") { Description = "Image side in pixels", DefaultValueFactory = _ => 256 };
        public Option<ulong> Seed { get; } = new("--seed") { Description = "Random seed (same seed, same bytes)", DefaultValueFactory = _ => 0UL };
        public Option<string> Out { get; } = new("--out") { Description = "Output dataset folder", Required = true };
        public Option<int> Threads { get; } = new("--threads") { Description = "CPU threads (0: all cores); the output does not depend on it", DefaultValueFactory = _ => 0 };
        public Option<bool> Overwrite { get; } = new("--overwrite") { Description = "Replace the dataset in a non-empty output folder: its object folders (with rgba/ or pose/), uids.json and synth.json are removed first; other files stay" };
        public Option<double?> SourceDistance { get; } = new("--source-distance") { Description = "Put view 000 (the source view) at this distance from the origin, e.g. 2 (LRM's canonical input camera); default: random in [1.5, 3] like the other views" };

        public void AddTo(Command command)
        {
            command.Options.Add(Views);
            command.Options.Add(Resolution);
            command.Options.Add(Seed);
            command.Options.Add(Out);
            command.Options.Add(Threads);
            command.Options.Add(Overwrite);
            command.Options.Add(SourceDistance);
        }

        public DatasetOptions Read(ParseResult result, int meshResolution = 128) => new()
        {
            Views = result.GetValue(Views),
            Resolution = result.GetValue(Resolution),
            Seed = result.GetValue(Seed),
            Threads = result.GetValue(Threads),
            Overwrite = result.GetValue(Overwrite),
            SourceDistance = result.GetValue(SourceDistance),
            MeshResolution = meshResolution,
        };
    }

    // A bar only when the command writes to the real stderr and that is a terminal.
    private static bool Interactive(ParseResult result) =>
        ReferenceEquals(result.InvocationConfiguration.Error, Console.Error) && ProgressBar.Interactive;

    private static Command CreateSynth()
    {
        var common = new CommonOptions();
        var objects = new Option<int>("--objects") { Description = "Number of procedural objects", Required = true };
        var meshResolution = new Option<int>("--mesh-resolution") { Description = "Marching-cubes cells per axis of the ground-truth mesh", DefaultValueFactory = _ => 128 };
        var style = new Option<string>("--style")
        {
            Description = "zeroverse (2-6 textured primitives, cuts, thin parts, bumps) or simple (one or two solid-coloured primitives)",
            DefaultValueFactory = _ => "zeroverse",
        };
        style.AcceptOnlyFromAmong("zeroverse", "simple");
        var resume = new Option<bool>("--resume")
        {
            Description = $"Continue an interrupted run in --out (or grow it to more --objects): keeps the objects already there, needs the same options ({SynthManifest.FileName})",
        };
        var command = new Command("synth", "Procedural objects (random textured primitives, unions and cuts) rendered from random cameras") { objects, meshResolution, style, resume };
        common.AddTo(command);
        command.SetAction(result =>
        {
            var options = common.Read(result, result.GetValue(meshResolution)) with
            {
                Style = result.GetValue(style) == "simple" ? ObjectStyle.Simple : ObjectStyle.Zeroverse,
                Resume = result.GetValue(resume),
            };
            var log = result.InvocationConfiguration.Error;
            var output = result.GetValue(common.Out)!;
            using var interruption = Interruption.Listen(log, "stopping after the current object");
            return Interruptible(log, interruption, output, "continue with the same command plus --resume", done =>
                RunSynth(result.GetValue(objects), options, output, log, Interactive(result), done, interruption.Token));
        });
        return command;
    }

    /// <summary>
    /// <c>lrm dataset synth</c>; <paramref name="done"/> hears the number of complete objects in the folder after each one,
    /// and <paramref name="cancellation"/> stops the run between objects.
    /// </summary>
    public static void RunSynth(int objects, DatasetOptions options, string output, TextWriter log, bool interactive,
        Action<int>? done = null, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        var kept = 0;
        ProgressBar.Run("synth", log, interactive, report =>
            DatasetGeneration.Synthesize(output, objects, options, p =>
            {
                kept += p.Kept ? 1 : 0;
                done?.Invoke(p.Done);
                report(p.Done, p.Total, p.Name);
            }, note: text => log.WriteLine($"lrm: {text}"), cancel: cancellation));
        if (kept > 0)
        {
            log.WriteLine($"lrm: resumed: {kept} objects were already there and kept");
        }
        Summary(log, objects - kept, options, output, clock.Elapsed);
    }

    // Runs a dataset command; a Ctrl+C/SIGTERM between objects ends it with what was written and how to go on.
    private static int Interruptible(TextWriter log, Interruption interruption, string output, string howToContinue, Action<Action<int>> run)
    {
        var complete = 0;
        try
        {
            run(n => complete = n);
            return 0;
        }
        catch (OperationCanceledException error) when (interruption.Caused(error))
        {
            log.WriteLine($"lrm: cancelled: {output} holds {complete} complete objects (uids.json lists them, no object is half-written); {howToContinue}");
            return interruption.ExitCode;
        }
    }

    private static Command CreateRender()
    {
        var common = new CommonOptions();
        var meshes = new Option<string>("--meshes") { Description = "Folder of .obj/.ply/.glb meshes (one object each)", Required = true };
        var engine = new Option<string>("--engine") { Description = "cpu (BVH ray tracer) or blender (textured assets; needs `blender` on PATH)", DefaultValueFactory = _ => "cpu" };
        var command = new Command("render", "Render your own meshes with the same cameras and layout as synth") { meshes, engine };
        common.AddTo(command);
        command.SetAction(result =>
        {
            var log = result.InvocationConfiguration.Error;
            var output = result.GetValue(common.Out)!;
            using var interruption = Interruption.Listen(log, "stopping after the current mesh");
            return Interruptible(log, interruption, output, "rerun with --overwrite to render them all", done =>
                RunRender(result.GetValue(meshes)!, common.Read(result), output, result.GetValue(engine)!, log, Interactive(result), done, interruption.Token));
        });
        return command;
    }

    public static void RunRender(string meshes, DatasetOptions options, string output, string engine, TextWriter log, bool interactive,
        Action<int>? done = null, CancellationToken cancellation = default)
    {
        BlenderSettings? blender = null;
        switch (engine.ToLowerInvariant())
        {
            case "cpu":
                break;
            case "blender":
                var executable = BlenderEngine.FindOnPath()
                    ?? throw new LrmUnsupportedException("--engine blender: `blender` is not on PATH; install Blender for textured assets or use --engine cpu (vertex and base colours)");
                var script = BlenderEngine.DefaultScript;
                if (!File.Exists(script))
                {
                    throw new LrmInternalException($"--engine blender: the Blender script is missing: {script} (it ships next to the lrm tool)");
                }
                blender = new BlenderSettings(executable, script);
                break;
            default:
                throw new LrmInvalidArgumentException($"--engine must be cpu or blender, got '{engine}'");
        }
        var clock = Stopwatch.StartNew();
        var count = 0;
        ProgressBar.Run("render", log, interactive, report =>
            DatasetGeneration.RenderMeshes(meshes, output, options, p =>
            {
                count = p.Total;
                done?.Invoke(p.Done);
                report(p.Done, p.Total, p.Name);
            }, blender: blender, cancel: cancellation, note: text => log.WriteLine($"lrm: {text}")));
        Summary(log, count, options, output, clock.Elapsed);
    }

    private static void Summary(TextWriter log, int objects, DatasetOptions options, string output, TimeSpan elapsed)
    {
        var perMinute = objects / Math.Max(elapsed.TotalMinutes, 1e-9);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"lrm: wrote {objects} objects × {options.Views} views ({options.Resolution}×{options.Resolution}) to {output} in {elapsed.TotalSeconds:F1} s ({perMinute:F1} objects/min)"));
    }

    private static Command CreateCheck()
    {
        var folder = new Argument<string>("DIR") { Description = "Dataset folder (object folders, or one object folder)" };
        var command = new Command("check", "Validate a dataset folder: images and poses paired, poses rigid, sizes consistent") { folder };
        command.SetAction(result => RunCheck(result.GetValue(folder)!, result.InvocationConfiguration.Output));
        return command;
    }

    /// <summary>Prints counts and problems; returns 0 when there are none, 1 otherwise.</summary>
    public static int RunCheck(string folder, TextWriter output)
    {
        var report = DatasetChecker.Check(folder);
        output.WriteLine($"{folder}: {report.Objects} objects, {report.Views} views, {report.Meshes} meshes, images {(report.Resolutions.Count == 0 ? "none" : string.Join(", ", report.Resolutions))}");
        foreach (var note in report.Notes)
        {
            output.WriteLine($"note: {note}");
        }
        foreach (var problem in report.Problems)
        {
            output.WriteLine($"problem: {problem}");
        }
        output.WriteLine(report.Ok ? "ok: no problems" : $"{report.Problems.Count} problem(s)");
        return report.Ok ? 0 : 1;
    }
}
