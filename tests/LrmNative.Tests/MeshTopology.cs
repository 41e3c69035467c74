namespace LrmNative.Tests;

/// <summary>Checks on triangle meshes given as flat arrays, shared by the marching-cubes and simplification tests.</summary>
internal static class MeshTopology
{
    /// <summary>
    /// Asserts a watertight, consistently wound mesh: every directed edge occurs once and its reverse once, so every
    /// undirected edge lies in exactly two triangles that traverse it in opposite directions; no triangle repeats a
    /// vertex and every vertex is used. Returns the Euler characteristic V − E + F.
    /// </summary>
    public static int AssertClosedManifold(ReadOnlySpan<int> triangles, int vertexCount)
    {
        var directed = new HashSet<(int, int)>();
        var used = new bool[vertexCount];
        for (var t = 0; t < triangles.Length / 3; t++)
        {
            for (var k = 0; k < 3; k++)
            {
                int a = triangles[3 * t + k], b = triangles[3 * t + (k + 1) % 3];
                Assert.That(a, Is.InRange(0, vertexCount - 1));
                Assert.That(a, Is.Not.EqualTo(b), $"triangle {t} repeats vertex {a}");
                Assert.That(directed.Add((a, b)), Is.True, $"directed edge ({a}, {b}) is used twice: non-manifold or inconsistent winding");
                used[a] = true;
            }
        }
        foreach (var (a, b) in directed)
        {
            Assert.That(directed.Contains((b, a)), Is.True, $"edge ({a}, {b}) is a boundary (hole)");
        }
        Assert.That(used, Has.All.True, "every vertex belongs to a triangle");
        return vertexCount - directed.Count / 2 + triangles.Length / 3;
    }

    /// <summary>Signed enclosed volume by the divergence theorem, Σ a·(b × c) / 6 (positive when wound outward).</summary>
    public static double SignedVolume(ReadOnlySpan<float> positions, ReadOnlySpan<int> triangles)
    {
        var volume = 0.0;
        for (var t = 0; t < triangles.Length; t += 3)
        {
            int a = 3 * triangles[t], b = 3 * triangles[t + 1], c = 3 * triangles[t + 2];
            double ax = positions[a], ay = positions[a + 1], az = positions[a + 2];
            double bx = positions[b], by = positions[b + 1], bz = positions[b + 2];
            double cx = positions[c], cy = positions[c + 1], cz = positions[c + 2];
            volume += ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx);
        }
        return volume / 6;
    }
}
