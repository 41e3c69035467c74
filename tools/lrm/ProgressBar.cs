using Spectre.Console;

namespace LrmNative.Cli;

/// <summary>
/// Progress of a long command on stderr: a Spectre.Console bar when stderr is an interactive terminal, otherwise
/// (redirected, CI, tests) one plain line per step.
/// </summary>
internal static class ProgressBar
{
    /// <summary>True when stderr is a terminal that can redraw a bar.</summary>
    public static bool Interactive
    {
        get
        {
            if (Console.IsErrorRedirected)
            {
                return false;
            }
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            return console.Profile.Capabilities.Interactive;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> with a report callback (done, total, label). Interactive: a bar titled
    /// <paramref name="title"/>; otherwise each report becomes a line on <paramref name="log"/>.
    /// </summary>
    public static void Run(string title, TextWriter log, bool interactive, Action<Action<int, int, string>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (!interactive)
        {
            work((done, total, label) => log.WriteLine($"lrm: {title} {done}/{total} {label}"));
            return;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(title));
                work((done, total, label) =>
                {
                    task.MaxValue = total;
                    task.Value = done;
                    task.Description = Markup.Escape($"{title} {label}");
                });
            });
    }
}
