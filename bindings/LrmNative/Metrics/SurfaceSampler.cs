using LrmNative.Data;

namespace LrmNative.Metrics;

/// <summary>
/// Uniform random points on a triangle mesh's surface: a triangle is drawn with probability proportional to its area
/// (binary search in the cumulative areas, summed in double), then a point uniform in it by
/// p = (1 − √r₁)·a + √r₁(1 − r₂)·b + √r₁ r₂·c. The draws come from a <see cref="DeterministicRandom"/> of the given
/// seed, so the same mesh and seed always give the same points.
/// </summary>
internal static class SurfaceSampler
{
    /// <summary>Points per mesh of the evaluation protocol (docs/metrics.md).</summary>
    public const int DefaultCount = 10_000;

    /// <summary>Seed of the evaluation protocol.</summary>
    public const ulong DefaultSeed = 0;

    public static Vec3[] Sample(Mesh mesh, int count = DefaultCount, ulong seed = DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (count < 1)
        {
            throw new LrmInvalidArgumentException($"surface sampling needs at least 1 point, got {count}");
        }
        var p = mesh.Positions;
        var t = mesh.Triangles;
        var triangles = t.Length / 3;
        var cumulative = new double[triangles];
        double total = 0;
        for (var k = 0; k < triangles; k++)
        {
            var (a, b, c) = (Vertex(p, t[3 * k]), Vertex(p, t[3 * k + 1]), Vertex(p, t[3 * k + 2]));
            total += 0.5 * Vec3.Cross(b - a, c - a).Length;
            cumulative[k] = total;
        }
        if (!(total > 0))
        {
            throw new LrmInvalidArgumentException($"cannot sample a surface of zero area ({triangles} triangles)");
        }
        var random = new DeterministicRandom(seed, 0x5A4D504CUL);
        var points = new Vec3[count];
        for (var i = 0; i < count; i++)
        {
            var target = random.NextDouble() * total;
            var k = Array.BinarySearch(cumulative, target);
            k = k < 0 ? ~k : k + 1; // the first triangle whose cumulative area exceeds the target
            k = Math.Min(k, triangles - 1);
            var (a, b, c) = (Vertex(p, t[3 * k]), Vertex(p, t[3 * k + 1]), Vertex(p, t[3 * k + 2]));
            var r1 = Math.Sqrt(random.NextDouble());
            var r2 = random.NextDouble();
            points[i] = a * (1 - r1) + b * (r1 * (1 - r2)) + c * (r1 * r2);
        }
        return points;
    }

    private static Vec3 Vertex(ReadOnlySpan<float> positions, int v) => new(positions[3 * v], positions[3 * v + 1], positions[3 * v + 2]);
}
