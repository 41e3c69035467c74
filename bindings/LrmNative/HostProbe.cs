using System.Diagnostics;

namespace LrmNative;

/// <summary>
/// Reads facts about the host for benchmark records (`lrm bench` and the kernel benchmarks): "key : value" files
/// such as /proc/cpuinfo, and git. Never throws for a missing file or tool: the caller decides what to write instead.
/// </summary>
internal static class HostProbe
{
    /// <summary>The file's text, or "" when it is missing or unreadable.</summary>
    public static string ReadOrEmpty(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>The value of the first "key : value" line with this key (both trimmed), or null.</summary>
    public static string? Field(string text, string key)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var line in text.Split('\n'))
        {
            var (k, v) = Split(line);
            if (k == key)
            {
                return v;
            }
        }
        return null;
    }

    /// <summary>A "key : value" line split at its first colon, both sides trimmed (no colon: the line and "").</summary>
    public static (string Key, string Value) Split(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? (line.Trim(), "") : (line[..colon].Trim(), line[(colon + 1)..].Trim());
    }

    /// <summary>The CPU's "model name" from /proc/cpuinfo, or null (not Linux, unreadable).</summary>
    public static string? CpuModel() => Field(ReadOrEmpty("/proc/cpuinfo"), "model name");

    /// <summary>
    /// Runs git with these arguments in the working folder; its trimmed standard output, or null when git is missing,
    /// fails, or takes longer than 5 seconds.
    /// </summary>
    public static string? Git(params string[] arguments)
    {
        try
        {
            var start = new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var process = Process.Start(start);
            if (process is null)
            {
                return null;
            }
            var error = process.StandardError.ReadToEndAsync();
            var text = process.StandardOutput.ReadToEnd().Trim();
            error.Wait();
            return process.WaitForExit(5000) && process.ExitCode == 0 ? text : null;
        }
        catch (Exception error) when (error is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            return null;
        }
    }
}
