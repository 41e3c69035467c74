using System.Globalization;
using Spectre.Console;

namespace LrmNative.Cli;

/// <summary>
/// What `lrm reconstruct` and `lrm bench` show while they work: one line per finished stage, notes, warnings and
/// errors, the running stage and its progress (a live status line), and a timing table at the end. <see cref="Create"/> picks a Spectre.Console
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

    /// <summary>The last line: everything done in <paramref name="time"/>, results in <paramref name="where"/>.</summary>
    public abstract void Finished(TimeSpan time, string where);

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

    public override void Finished(TimeSpan time, string where) => log.WriteLine($"lrm: done in {Seconds(time)} s → {where}");

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

/// <summary>Spectre.Console: a spinner with the running stage and how far it is, coloured stage lines, a table at the end.</summary>
internal sealed class SpectreDisplay(IAnsiConsole console) : ProgressDisplay
{
    private StatusContext? _status;

    public override void Run(Action body)
    {
        console.Status().Spinner(Spinner.Known.Dots).Start("starting", status =>
        {
            _status = status;
            try
            {
                body();
            }
            finally
            {
                _status = null;
            }
        });
    }

    public override void Stage(string name, string description, TimeSpan time) =>
        console.MarkupLine($"[green]✓[/] [bold]{Markup.Escape(name),-14}[/] {Markup.Escape(description)} [grey]({Seconds(time)} s)[/]");

    public override void Finished(TimeSpan time, string where) =>
        console.MarkupLine($"[green bold]done[/] in {Seconds(time)} s → {Markup.Escape(where)}");

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
        if (_status is null)
        {
            return;
        }
        var name = Markup.Escape(StageName(value.Stage));
        _status.Status(value.Fraction >= 1
            ? $"{name} [green]done[/]"
            : string.Create(CultureInfo.InvariantCulture, $"{name} [blue]{100 * value.Fraction:F0} %[/]"));
    }
}
