using System.Diagnostics;

namespace LrmNative.Tests;

/// <summary>
/// The Khronos glTF validator (npm gltf-validator, run by tests/tools/validate-gltf.js under node) for every GLB the
/// tests write. ./test.sh installs it into artifacts/gltf-validator when npm is available and points
/// LRM_GLTF_VALIDATOR_DIR at it. <see cref="AssertValid"/> checks files when the validator is here; when it is not,
/// it notes that in the test output and returns, so the test's own assertions still run — the missing validator is
/// reported as a skip, with its reason, by <see cref="GltfValidatorTests"/>.
/// </summary>
internal static class GltfValidator
{
    /// <summary>Why the validator cannot run here, or null when it can.</summary>
    public static string? UnavailableReason => Find().Reason;

    /// <summary>Validates <paramref name="files"/>: every one must have zero errors. Returns false (with a note) when the validator is absent.</summary>
    public static bool AssertValid(params string[] files)
    {
        var (node, modules, reason) = Find();
        if (reason is not null)
        {
            TestContext.Out.WriteLine($"glTF validator not run: {reason}");
            return false;
        }
        var script = Path.Combine(AppContext.BaseDirectory, "tools", "validate-gltf.js");
        var start = new ProcessStartInfo(node!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (var file in files)
        {
            Assert.That(File.Exists(file), Is.True, $"{file} was not written");
            start.ArgumentList.Add(file);
        }
        start.Environment["NODE_PATH"] = modules;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(120_000), Is.True, "validator did not finish in 2 minutes");
        TestContext.Out.WriteLine(output.Result);
        Assert.That(process.ExitCode, Is.Zero, errors.Result);
        var lines = output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(files.Length + 1), output.Result);
        foreach (var line in lines.Take(files.Length))
        {
            Assert.That(line, Does.Contain(" errors=0 "), line);
        }
        Assert.That(lines[^1], Does.EndWith("files-with-errors 0"));
        return true;
    }

    private static (string? Node, string? Modules, string? Reason) Find()
    {
        var node = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(directory => Path.Combine(directory, "node")).FirstOrDefault(File.Exists);
        if (node is null)
        {
            return (null, null, "node is not installed: the Khronos glTF validator cannot run here");
        }
        var root = Environment.GetEnvironmentVariable("LRM_GLTF_VALIDATOR_DIR");
        var modules = root is null ? null : Path.Combine(root, "node_modules");
        if (modules is null || !Directory.Exists(Path.Combine(modules, "gltf-validator")))
        {
            return (null, null, "npm package gltf-validator not found (./test.sh installs it into artifacts/gltf-validator when npm is available)");
        }
        return (node, modules, null);
    }
}
