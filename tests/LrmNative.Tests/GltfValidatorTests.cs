using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// Every kind of GLB we write passes the Khronos glTF validator (npm gltf-validator) with zero errors (see
/// <see cref="GltfValidator"/>, which the other tests writing GLBs call too). Without node or the validator this
/// test is skipped with the reason — the one place the missing validator shows.
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
        if (GltfValidator.UnavailableReason is { } reason)
        {
            Assert.Ignore(reason);
        }
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

        GltfValidator.AssertValid([.. files]);
    }
}
