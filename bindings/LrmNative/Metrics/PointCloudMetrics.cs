using LrmNative.Data;

namespace LrmNative.Metrics;

/// <summary>Chamfer distance and F-score between two point sets, with what went into them.</summary>
/// <param name="Chamfer">½(mean_p min_g ‖p − g‖ + mean_g min_p ‖g − p‖), Euclidean (not squared).</param>
/// <param name="Accuracy">mean_p min_g ‖p − g‖ (prediction → ground truth).</param>
/// <param name="Completeness">mean_g min_p ‖g − p‖ (ground truth → prediction).</param>
/// <param name="Precision">Fraction of predicted points within the threshold of the ground truth.</param>
/// <param name="Recall">Fraction of ground-truth points within the threshold of the prediction.</param>
/// <param name="FScore">2·P·R / (P + R), 0 when both are 0.</param>
/// <param name="Threshold">Distance threshold τ of precision and recall.</param>
internal readonly record struct ShapeScores(double Chamfer, double Accuracy, double Completeness, double Precision, double Recall, double FScore,
    double Threshold);

/// <summary>Point-set distances (docs/metrics.md): nearest neighbours by an exact k-d tree, sums in double.</summary>
internal static class PointCloudMetrics
{
    /// <summary>F-score threshold of TripoSR/SF3D-style tables.</summary>
    public const double DefaultThreshold = 0.1;

    public static ShapeScores Compare(IReadOnlyList<Vec3> prediction, IReadOnlyList<Vec3> target, double threshold = DefaultThreshold)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (prediction.Count == 0 || target.Count == 0)
        {
            throw new LrmInvalidArgumentException($"point metrics need non-empty point sets, got {prediction.Count} predicted and {target.Count} target points");
        }
        if (!(threshold > 0) || !double.IsFinite(threshold))
        {
            throw new LrmInvalidArgumentException($"the F-score threshold must be positive, got {threshold}");
        }
        var (accuracy, precision) = Directed(prediction, new KdTree(target), threshold);
        var (completeness, recall) = Directed(target, new KdTree(prediction), threshold);
        var f = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
        return new ShapeScores(0.5 * (accuracy + completeness), accuracy, completeness, precision, recall, f, threshold);
    }

    private static (double MeanDistance, double WithinFraction) Directed(IReadOnlyList<Vec3> from, KdTree to, double threshold)
    {
        double sum = 0;
        long within = 0;
        for (var i = 0; i < from.Count; i++)
        {
            var d = Math.Sqrt(to.NearestSquaredDistance(from[i]));
            sum += d;
            if (d < threshold)
            {
                within++;
            }
        }
        return (sum / from.Count, within / (double)from.Count);
    }
}

/// <summary>A static 3-d tree for exact nearest-neighbour distances (median splits on the widest axis, leaves of 8 points).</summary>
internal sealed class KdTree
{
    private const int LeafSize = 8;
    private readonly Vec3[] _points;
    private readonly List<(int First, int Count, int Axis, double Split, int Left, int Right)> _nodes = [];

    public KdTree(IReadOnlyList<Vec3> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        _points = [.. points];
        if (_points.Length > 0)
        {
            Build(0, _points.Length);
        }
    }

    private int Build(int first, int count)
    {
        var index = _nodes.Count;
        _nodes.Add(default);
        if (count <= LeafSize)
        {
            _nodes[index] = (first, count, -1, 0, -1, -1);
            return index;
        }
        Vec3 min = _points[first], max = _points[first];
        for (var i = first; i < first + count; i++)
        {
            min = Vec3.Min(min, _points[i]);
            max = Vec3.Max(max, _points[i]);
        }
        var e = max - min;
        var axis = e.X >= e.Y && e.X >= e.Z ? 0 : e.Y >= e.Z ? 1 : 2;
        Array.Sort(_points, first, count, Comparer<Vec3>.Create((a, b) => a[axis].CompareTo(b[axis])));
        var half = count / 2;
        var split = _points[first + half][axis];
        var left = Build(first, half);
        var right = Build(first + half, count - half);
        _nodes[index] = (first, count, axis, split, left, right);
        return index;
    }

    /// <summary>Squared distance from <paramref name="query"/> to the nearest point (+∞ for an empty tree).</summary>
    public double NearestSquaredDistance(Vec3 query)
    {
        var best = double.PositiveInfinity;
        if (_points.Length > 0)
        {
            Search(0, query, ref best);
        }
        return best;
    }

    private void Search(int index, Vec3 query, ref double best)
    {
        var node = _nodes[index];
        if (node.Axis < 0)
        {
            for (var i = node.First; i < node.First + node.Count; i++)
            {
                var d = (_points[i] - query).LengthSquared;
                if (d < best)
                {
                    best = d;
                }
            }
            return;
        }
        var delta = query[node.Axis] - node.Split;
        var (near, far) = delta < 0 ? (node.Left, node.Right) : (node.Right, node.Left);
        Search(near, query, ref best);
        if (delta * delta < best)
        {
            Search(far, query, ref best);
        }
    }
}
