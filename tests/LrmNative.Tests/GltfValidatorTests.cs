using System.Diagnostics;
using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// Every kind of GLB we write passes the Khronos glTF validator (npm gltf-validator) with zero errors.
/// ./test.sh installs the validator into artifacts/gltf-validator when npm is available and points
/// LRM_GLTF_VALIDATOR_DIR at it; without node or the validator the test is skipped with the reason.
/// </summary>
[TestFixture]
public sealed class GltfValidatorTests
{
    private string _directory = null!;

    [SetUp]
    public void MakeDirectory() => _directory = Directory.CreateTempSubdirectory("lrm-gltf-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_directory, recursive: true);

    [Test]
    public void WrittenGlbFilesHaveNoValidatorErrors()
    {
        var (node, modules) = FindValidator();
        var files = new List<string>();

        // 1. A marching-cubes sphere with vertex colours (the shape reconstruct exports).
        using (var backend = new CpuBackend())
        {
            const int n = 24;
            using var field = Tensor.Empty([n, n, n]);
            var values = field.AsSpan<float>();
            for (var z = 0; z < n; z++)
            {
                for (var y = 0; y < n; y++)
                {
                    for (var x = 0; x < n; x++)
                    {
                        float fx = -1 + 2f * x / (n - 1), fy = -1 + 2f * y / (n - 1), fz = -1 + 2f * z / (n - 1);
                        values[(z * n + y) * n + x] = 0.7f - MathF.Sqrt(fx * fx + fy * fy + fz * fz);
                    }
                }
            }
            var (vertices, triangles) = backend.MarchingCubes(field, 0f, [-1f, -1f, -1f, 1f, 1f, 1f]);
            using (vertices)
            using (triangles)
            {
                var positions = vertices.AsSpan<float>();
                var colors = new float[positions.Length];
                for (var i = 0; i < colors.Length; i++)
                {
                    colors[i] = Math.Clamp(0.5f + 0.5f * positions[i], 0f, 1f);
                }
                var withColors = Path.Combine(_directory, "sphere_colored.glb");
                new Mesh(positions, triangles.AsSpan<int>(), colors).SaveGlb(withColors);
                files.Add(withColors);
                var plain = Path.Combine(_directory, "sphere_plain.glb");
                new Mesh(positions, triangles.AsSpan<int>()).ComputeVertexNormals().SaveGlb(plain);
                files.Add(plain);
            }
        }

        // 2. A single triangle without normals or colours (normals are made for the file).
        var triangle = Path.Combine(_directory, "triangle.glb");
        new Mesh([0f, 0f, 0f, 1f, 0f, 0f, 0f, 1f, 0.5f], [0, 1, 2]).SaveGlb(triangle);
        files.Add(triangle);

        var script = Path.Combine(AppContext.BaseDirectory, "tools", "validate-gltf.js");
        var start = new ProcessStartInfo(node) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (var file in files)
        {
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
        Assert.That(lines, Has.Length.EqualTo(files.Count + 1), output.Result);
        foreach (var line in lines.Take(files.Count))
        {
            Assert.That(line, Does.Contain(" errors=0 "), line);
        }
        Assert.That(lines[^1], Does.EndWith("files-with-errors 0"));
    }

    private static (string Node, string Modules) FindValidator()
    {
        var node = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(directory => Path.Combine(directory, "node")).FirstOrDefault(File.Exists);
        if (node is null)
        {
            Assert.Ignore("node is not installed: the Khronos glTF validator cannot run here");
        }
        var root = Environment.GetEnvironmentVariable("LRM_GLTF_VALIDATOR_DIR");
        var modules = root is null ? null : Path.Combine(root, "node_modules");
        if (modules is null || !Directory.Exists(Path.Combine(modules, "gltf-validator")))
        {
            Assert.Ignore("npm package gltf-validator not found (./test.sh installs it into artifacts/gltf-validator when npm is available)");
        }
        return (node!, modules!);
    }
}
