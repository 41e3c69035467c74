using System.CommandLine;
using System.Globalization;
using System.Text;
using LrmNative.IO;

namespace LrmNative.Cli;

/// <summary>
/// docs/cli.md, generated from the command tree itself (<c>lrm reference --out docs/cli.md</c>): every command, argument
/// and option with its description and default, plus the exit codes and environment variables, so the reference cannot
/// drift from the tool (<c>CliReferenceTests</c> fails when the committed file differs from what this writes).
/// </summary>
internal static class CliReference
{
    /// <summary>Where the reference lives in the repository.</summary>
    public const string RepositoryPath = "docs/cli.md";

    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = $"Write the Markdown here (e.g. {RepositoryPath}) instead of standard output" };
        var command = new Command("reference", "Print the command-line reference (docs/cli.md) generated from the commands themselves") { output };
        command.Hidden = true;
        command.SetAction(result =>
        {
            WriteDocument(result, output, Generate(Program.CreateRoot()), "command-line reference");
            return 0;
        });
        return command;
    }

    /// <summary>Writes a generated document to the file <paramref name="output"/> names (atomically), else to standard output.</summary>
    internal static void WriteDocument(ParseResult result, Option<string?> output, string text, string what)
    {
        if (result.GetValue(output) is { } path)
        {
            AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)), what);
        }
        else
        {
            result.InvocationConfiguration.Output.Write(text);
        }
    }

    /// <summary>The Markdown reference of <paramref name="root"/>'s visible commands.</summary>
    public static string Generate(RootCommand root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var text = new StringBuilder();
        text.Append("# `lrm` command-line reference\n\n")
            .Append("Generated from the commands themselves by `./lrm reference --out docs/cli.md` (`CliReferenceTests` fails when\n")
            .Append("this file and the tool differ). `./lrm COMMAND --help` prints the same per command.\n\n");
        text.Append("Conventions shared by every command:\n\n")
            .Append("- Errors are one line, `lrm: error: …`, naming the file, tensor or option and what was expected; an unknown\n")
            .Append("  option is a parse error that names it and suggests the nearest real one.\n")
            .Append("- Every output file is written to a temporary file and renamed into place: a failed or interrupted command\n")
            .Append("  never leaves a half-written file.\n")
            .Append("- Long commands print one progress line per step when standard error is not a terminal, a live bar when it is.\n\n");
        text.Append("## Exit codes\n\n| code | meaning |\n| --- | --- |\n")
            .Append("| 0 | success |\n")
            .Append("| 1 | an error (bad arguments, bad input, a failed image among several in `reconstruct`), or problems found by `dataset check` |\n")
            .Append("| 130 | interrupted by Ctrl+C (SIGINT): `reconstruct`, `dataset synth`/`render`, `eval model` and `train` stop at their next check, say what they kept (`eval model`: the scores of the finished objects), and exit; a second Ctrl+C quits at once |\n")
            .Append("| 143 | the same for SIGTERM |\n\n");
        text.Append("## Environment\n\n| variable | effect |\n| --- | --- |\n");
        foreach (var (name, effect) in Environment)
        {
            text.Append("| `").Append(name).Append("` | ").Append(effect).Append(" |\n");
        }
        text.Append('\n');
        text.Append("## Commands\n");
        foreach (var command in Walk(root))
        {
            AppendCommand(text, command);
        }
        return text.ToString();
    }

    private static readonly (string Name, string Effect)[] Environment =
    [
        ("LRM_DEFAULT_MODEL", "the model `reconstruct` uses without `--model` (`./lrm` sets it to `models/default`)"),
        ("LRM_NATIVE_LIBRARY", "full path of `liblrm_native.so`, instead of the search next to the assemblies"),
        ("LRM_CUDA_LIBRARY, LRM_NVRTC_LIBRARY, LRM_CUBLASLT_LIBRARY", "full paths of the CUDA driver, NVRTC and cuBLASLt libraries, instead of the versioned sonames newest first"),
        ("LRM_KERNEL_CACHE", "folder of compiled CUDA kernels (default `$XDG_CACHE_HOME/lrm/kernels`, else `~/.cache/lrm/kernels`)"),
        ("LRM_CUDA_SYNC", "`1`: wait for and check every CUDA kernel (slow; names a faulting kernel)"),
        ("LRM_CUDA_ATTENTION", "`2`: the second tensor-core attention kernel (default 1 until 2 has passed parity on a GPU)"),
        ("LRM_DISABLE_AVX512", "`1`: the AVX2 CPU kernels even where AVX-512 is available"),
        ("LRM_OPENBLAS_CORETYPE_AUTO", "`0`: do not set `OPENBLAS_CORETYPE=SkylakeX` (AVX-512 GEMM kernels) on AMD CPUs with AVX-512 (a non-empty `OPENBLAS_CORETYPE` from the environment always wins)"),
        ("OMP_NUM_THREADS", "CPU threads when a command's `--threads` is 0 or absent; unset: the CPUs this process may use, a container's CPU quota included (.NET's processor count, which `DOTNET_PROCESSOR_COUNT` overrides)"),
    ];

    // Depth-first, in the order the commands were added; hidden commands left out.
    private static IEnumerable<Command> Walk(Command command)
    {
        foreach (var child in command.Subcommands.Where(c => !c.Hidden))
        {
            if (child.Subcommands.Count == 0 || child.Options.Count > 0 || child.Arguments.Count > 0)
            {
                yield return child;
            }
            foreach (var grandchild in Walk(child))
            {
                yield return grandchild;
            }
        }
    }

    private static void AppendCommand(StringBuilder text, Command command)
    {
        var path = new List<string>();
        for (Symbol? symbol = command; symbol is Command c && symbol is not RootCommand; symbol = c.Parents.FirstOrDefault())
        {
            path.Insert(0, c.Name);
        }
        var arguments = string.Concat(command.Arguments.Where(a => !a.Hidden).Select(a => " " + a.Name + (a.Arity.MaximumNumberOfValues > 1 ? "…" : "")));
        text.Append("\n### `lrm ").Append(string.Join(' ', path)).Append(arguments).Append("`\n\n")
            .Append(Escape(command.Description ?? "")).Append('\n');
        var rows = new List<(string Name, string Default, string Description)>();
        foreach (var argument in command.Arguments.Where(a => !a.Hidden))
        {
            rows.Add(($"`{argument.Name}`", argument.HasDefaultValue ? Format(argument.GetDefaultValue()) : "required", argument.Description ?? ""));
        }
        foreach (var option in command.Options.Where(o => !o.Hidden && o is not System.CommandLine.Help.HelpOption && o is not VersionOption))
        {
            var names = string.Join(", ", new[] { option.Name }.Concat(option.Aliases.Order(StringComparer.Ordinal)).Select(n => $"`{n}`"));
            var value = option.Required ? "required" : option.HasDefaultValue ? Format(option.GetDefaultValue()) : option.ValueType == typeof(bool) ? "off" : "";
            rows.Add((names, value, option.Description ?? ""));
        }
        if (rows.Count == 0)
        {
            return;
        }
        text.Append("\n| argument / option | default | description |\n| --- | --- | --- |\n");
        foreach (var (name, value, description) in rows)
        {
            text.Append("| ").Append(name).Append(" | ").Append(Escape(value)).Append(" | ").Append(Escape(description)).Append(" |\n");
        }
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        bool b => b ? "on" : "off",
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    // A table cell: pipes escaped, line breaks joined.
    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
