using System.CommandLine;
using System.CommandLine.Parsing;

namespace LrmNative.Cli;

/// <summary>Rules every `lrm` command follows, applied to the whole command tree once it is built.</summary>
internal static class CliConventions
{
    /// <summary>
    /// A positional argument (IMAGE, DIR, PRED, …) never takes a value that looks like an option: System.CommandLine
    /// hands a mistyped option (`--mesh-res 64`) to a file argument, and `lrm reconstruct` would then report
    /// "--mesh-res: image file not found" and go on with the others. Such a value is a parse error naming the option,
    /// with the nearest real option when one is close. A file whose name starts with '-' still works when it exists
    /// (or as ./-name).
    /// </summary>
    public static T Apply<T>(T command) where T : Command
    {
        Visit(command, command is RootCommand ? "lrm" : command.Name);
        return command;
    }

    private static void Visit(Command command, string path)
    {
        foreach (var argument in command.Arguments)
        {
            argument.Validators.Add(result =>
            {
                foreach (var token in result.Tokens)
                {
                    if (LooksLikeOption(token.Value) && !File.Exists(token.Value) && !Directory.Exists(token.Value))
                    {
                        result.AddError(UnknownOption(token.Value, command, path));
                        return;
                    }
                }
            });
        }
        foreach (var subcommand in command.Subcommands)
        {
            Visit(subcommand, $"{path} {subcommand.Name}");
        }
    }

    private static bool LooksLikeOption(string value) =>
        value.Length > 1 && value[0] == '-' && (value[1] == '-' || char.IsLetter(value[1]));

    private static string UnknownOption(string value, Command command, string path)
    {
        var name = value.Split('=', 2)[0];
        var nearest = command.Options
            .Select(option => (Option: option.Name, Distance: Distance(name, option.Name)))
            .Where(candidate => candidate.Distance <= Math.Max(2, name.Length / 3))
            .OrderBy(candidate => candidate.Distance)
            .Select(candidate => candidate.Option)
            .FirstOrDefault();
        var hint = nearest is null ? "" : $"; did you mean {nearest}?";
        return $"unknown option '{name}' for '{path}'{hint} ('{path} --help' lists the options)";
    }

    /// <summary>Levenshtein distance (insertions, deletions, substitutions).</summary>
    internal static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j] + 1, current[j - 1] + 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
