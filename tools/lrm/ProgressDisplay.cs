using System.Globalization;
using Spectre.Console;

namespace LrmNative.Cli;

/// <summary>
/// What `lrm reconstruct` and `lrm bench` show while they work: one line per finished stage, notes, warnings and
/// errors, live progress of the running stage, and a timing table at the end. <see cref="Create"/> picks a Spectre.Console
/// display for a terminal and plain "lrm: …" lines otherwise (redirected output, tests, CI).
/// </summary>
internal abstract class ProgressDisplay : IProgress<ReconstructionProgress>
{
    /// <summary>A display writing to <paramref name="log"/>: Spectre.Console when it is the console's stderr on a terminal.</summary>
    public static ProgressDisplay Create(TextWriter log)
    {
        var interactive = ReferenceEquals(log, Console.Error) && !Console.IsErrorRedirected
            && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");
        if (!interactive)
        {
            return new PlainDisplay(log);
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return new SpectreDisplay(console);
    }

    /// <summary>Runs <paramref name="body"/> with the live display active.</summary>
    public abstract void Run(Action body);

    /// <summary>A finished stage: its name, what it made, and its wall time.</summary>
    public abstract void Stage(string name, string description, TimeSpan time);

    /// <summary>A line of information (not a problem).</summary>
    public abstract void Note(string text);

    /// <summary>Something the user should know; the work went on.</summary>
    public abstract void Warning(string text);

    /// <summary>A failure (one line).</summary>
    public abstract void Error(string text);

    /// <summary>The timing breakdown: one column per image, rows are stages in the order given.</summary>
    public abstract void Breakdown(IReadOnlyList<string> stages, IReadOnlyList<(string Name, IReadOnlyDictionary<string, TimeSpan> Times)> columns);

    /// <inheritdoc />
    public abstract void Report(ReconstructionProgress value);

    /// <summary>The name of a facade stage in the CLI's words.</summary>
    public static string StageName(ReconstructionStage stage) => stage switch
    {
        ReconstructionStage.Load => "model",
        ReconstructionStage.Preprocess => "preprocess",
        ReconstructionStage.ImageToTriplane => "triplane",
        ReconstructionStage.Render => "render",
        ReconstructionStage.GridQuery => "grid query",
        ReconstructionStage.MarchingCubes => "marching cubes",
        ReconstructionStage.VertexColors => "colours",
        _ => stage.ToString(),
    };

    protected static string Seconds(TimeSpan time) => time.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture);
}

/// <summary>Plain lines "lrm: &lt;stage&gt; &lt;what&gt;  (&lt;s&gt; s)" — what tests and log files see.</summary>
internal sealed class PlainDisplay(TextWriter log) : ProgressDisplay
{
    public override void Run(Action body) => body();

    public override void Stage(string name, string description, TimeSpan time) =>
        log.WriteLine($"lrm: {name,-10} {description}  ({Seconds(time)} s)");

    public override void Note(string text) => log.WriteLine($"lrm: note: {text}");

    public override void Warning(string text) => log.WriteLine($"lrm: warning: {text}");

    public override void Error(string text) => log.WriteLine($"lrm: error: {text}");

    public override void Breakdown(IReadOnlyList<string> stages, IReadOnlyList<(string Name, IReadOnlyDictionary<string, TimeSpan> Times)> columns)
    {
        foreach (var (name, times) in columns)
        {
            var parts = stages.Where(times.ContainsKey).Select(stage => $"{stage} {Seconds(times[stage])}");
            log.WriteLine($"lrm: timings {name}: {string.Join(" · ", parts)} s");
        }
    }

    public override void Report(ReconstructionProgress value)
    {
    }
}

/// <summary>Spectre.Console: a progress bar per stage while it runs, coloured stage lines, a table at the end.</summary>
internal sealed class SpectreDisplay(IAnsiConsole console) : ProgressDisplay
{
    private ProgressContext? _context;
    private ProgressTask? _task;
    private ReconstructionStage? _stage;

    public override void Run(Action body)
    {
        console.Progress()
            .AutoClear(true)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                _context = context;
                try
                {
                    body();
                }
                finally
                {
                    _task?.StopTask();
                    _context = null;
                }
            });
    }

    public override void Stage(string name, string description, TimeSpan time) =>
        console.MarkupLine($"[green]✓[/] [bold]{Markup.Escape(name),-14}[/] {Markup.Escape(description)} [grey]({Seconds(time)} s)[/]");

    public override void Note(string text) => console.MarkupLine($"[grey]note: {Markup.Escape(text)}[/]");

    public override void Warning(string text) => console.MarkupLine($"[yellow]warning:[/] {Markup.Escape(text)}");

    public override void Error(string text) => console.MarkupLine($"[red]error:[/] {Markup.Escape(text)}");

    public override void Breakdown(IReadOnlyList<string> stages, IReadOnlyList<(string Name, IReadOnlyDictionary<string, TimeSpan> Times)> columns)
    {
        var table = new Table().Title("timings (s)").AddColumn("stage");
        foreach (var (name, _) in columns)
        {
            table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
        }
        foreach (var stage in stages.Where(s => columns.Any(c => c.Times.ContainsKey(s))))
        {
            table.AddRow([Markup.Escape(stage), .. columns.Select(c => c.Times.TryGetValue(stage, out var t) ? Seconds(t) : "")]);
        }
        console.Write(table);
    }

    public override void Report(ReconstructionProgress value)
    {
        if (_context is null)
        {
            return;
        }
        if (_stage != value.Stage || _task is null || _task.IsFinished)
        {
            _task?.StopTask();
            _task = _context.AddTask(StageName(value.Stage), maxValue: 1.0);
            _stage = value.Stage;
        }
        _task.Value = Math.Clamp(value.Fraction, 0, 1);
        if (value.Fraction >= 1)
        {
            _task.StopTask();
        }
    }
}
