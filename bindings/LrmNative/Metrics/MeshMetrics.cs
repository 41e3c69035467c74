using LrmNative.Data;

namespace LrmNative.Metrics;

/// <summary>How two meshes are put in a common frame before sampling.</summary>
internal enum MeshNormalization
{
    /// <summary>As given (our datasets and reconstructions share the [−1, 1]³ object box).</summary>
    None,
    /// <summary>Each mesh's bounding box centred at the origin and scaled so its longest side is 1 ([−0.5, 0.5]).</summary>
    UnitBox,
}

/// <summary>The mesh evaluation protocol of docs/metrics.md: surface samples, then <see cref="PointCloudMetrics"/>.</summary>
internal static class MeshMetrics
{
    public static ShapeScores Compare(Mesh prediction, Mesh target, int samples = SurfaceSampler.DefaultCount, ulong seed = SurfaceSampler.DefaultSeed,
        double threshold = PointCloudMetrics.DefaultThreshold, MeshNormalization normalization = MeshNormalization.None)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        var p = Normalize(SurfaceSampler.Sample(prediction, samples, seed), prediction.Bounds, normalization);
        // The target draws from another stream of the same seed, so the two point sets are independent.
        var g = Normalize(SurfaceSampler.Sample(target, samples, seed + 1), target.Bounds, normalization);
        return PointCloudMetrics.Compare(p, g, threshold);
    }

    private static Vec3[] Normalize(Vec3[] points, MeshBounds bounds, MeshNormalization normalization)
    {
        if (normalization == MeshNormalization.None)
        {
            return points;
        }
        var centre = new Vec3(bounds.Center.X, bounds.Center.Y, bounds.Center.Z);
        var side = Math.Max(bounds.Size.X, Math.Max(bounds.Size.Y, bounds.Size.Z));
        var scale = side > 0 ? 1 / (double)side : 1;
        return points.Select(q => (q - centre) * scale).ToArray();
    }
}
