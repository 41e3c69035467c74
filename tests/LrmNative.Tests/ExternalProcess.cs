using System.Diagnostics;

namespace LrmNative.Tests;

/// <summary>Runs a helper program (clang, the CUDA emulator's self-test) and collects what it printed.</summary>
internal static class ExternalProcess
{
    /// <summary>
    /// Runs <paramref name="program"/> with <paramref name="arguments"/> and, on top of this process's
    /// environment, <paramref name="environment"/>; waits for it to exit (at most <paramref name="timeout"/>,
    /// when given: null exit code if it did not), in <paramref name="workingDirectory"/> when given.
    /// </summary>
    public static (int? ExitCode, string Output, string Errors) Run(string program, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory ?? "",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (timeout is { } limit && !process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            return (null, stdout.Result, stderr.Result);
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
