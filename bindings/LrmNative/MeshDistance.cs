namespace LrmNative;

/// <summary>How far apart two meshes are, measured between their vertex sets.</summary>
/// <param name="Chamfer">Symmetric Chamfer distance: the mean nearest-vertex distance from A to B plus that from B to A, halved.</param>
/// <param name="Hausdorff">Symmetric Hausdorff distance: the largest nearest-vertex distance either way.</param>
/// <param name="Identical">True when both meshes have the same vertices and triangles, bit for bit, in the same order.</param>
internal readonly record struct MeshDifference(double Chamfer, double Hausdorff, bool Identical);

/// <summary>
/// Vertex-set distances between meshes (used to compare the dense and coarse-to-fine grid queries): for every vertex
/// of one mesh the distance to the nearest vertex of the other, found through a uniform bucket grid. Vertex-to-vertex
/// distances bound vertex-to-surface ones from above, so a small value is a conservative statement.
/// </summary>
internal static class MeshDistance
{
    /// <summary>Chamfer and Hausdorff distances between the vertex sets of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static MeshDifference Compare(Mesh a, Mesh b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var identical = a.Positions.SequenceEqual(b.Positions) && a.Triangles.SequenceEqual(b.Triangles);
        if (a.VertexCount == 0 || b.VertexCount == 0)
        {
            return a.VertexCount == b.VertexCount
                ? new MeshDifference(0, 0, identical)
                : new MeshDifference(double.PositiveInfinity, double.PositiveInfinity, false);
        }
        var (meanAb, maxAb) = OneWay(a.Positions, new Buckets(b.Positions));
        var (meanBa, maxBa) = OneWay(b.Positions, new Buckets(a.Positions));
        return new MeshDifference((meanAb + meanBa) / 2, Math.Max(maxAb, maxBa), identical);
    }

    private static (double Mean, double Max) OneWay(ReadOnlySpan<float> from, Buckets to)
    {
        double sum = 0, max = 0;
        var count = from.Length / 3;
        for (var i = 0; i < count; i++)
        {
            var d = to.Nearest(from[3 * i], from[3 * i + 1], from[3 * i + 2]);
            sum += d;
            max = Math.Max(max, d);
        }
        return (sum / count, max);
    }

    // Points sorted into cubic buckets of about two points each; nearest-point search in growing shells of buckets.
    private sealed class Buckets
    {
        private readonly float[] _points;
        private readonly int[] _start;
        private readonly int[] _order;
        private readonly double _cell;
        private readonly double[] _min = new double[3];
        private readonly int _side;

        public Buckets(ReadOnlySpan<float> points)
        {
            _points = points.ToArray();
            var count = _points.Length / 3;
            var max = new double[3];
            for (var k = 0; k < 3; k++)
            {
                _min[k] = double.PositiveInfinity;
                max[k] = double.NegativeInfinity;
            }
            for (var i = 0; i < count; i++)
            {
                for (var k = 0; k < 3; k++)
                {
                    _min[k] = Math.Min(_min[k], _points[3 * i + k]);
                    max[k] = Math.Max(max[k], _points[3 * i + k]);
                }
            }
            var extent = Math.Max(max[0] - _min[0], Math.Max(max[1] - _min[1], max[2] - _min[2]));
            _side = Math.Clamp((int)Math.Ceiling(Math.Cbrt(count / 2.0)), 1, 256);
            _cell = extent > 0 ? extent / _side * (1 + 1e-9) : 1;
            var cells = _side * _side * _side;
            _start = new int[cells + 1];
            var cellOf = new int[count];
            for (var i = 0; i < count; i++)
            {
                cellOf[i] = CellIndex(Cell(_points[3 * i], 0), Cell(_points[3 * i + 1], 1), Cell(_points[3 * i + 2], 2));
                _start[cellOf[i] + 1]++;
            }
            for (var c = 0; c < cells; c++)
            {
                _start[c + 1] += _start[c];
            }
            _order = new int[count];
            var fill = (int[])_start.Clone();
            for (var i = 0; i < count; i++)
            {
                _order[fill[cellOf[i]]++] = i;
            }
        }

        private int Cell(double value, int axis) => Math.Clamp((int)Math.Floor((value - _min[axis]) / _cell), 0, _side - 1);

        private int CellIndex(int x, int y, int z) => (z * _side + y) * _side + x;

        public double Nearest(float x, float y, float z)
        {
            int cx = Cell(x, 0), cy = Cell(y, 1), cz = Cell(z, 2);
            var best = double.PositiveInfinity;
            for (var shell = 0; shell <= _side; shell++)
            {
                for (var iz = Math.Max(0, cz - shell); iz <= Math.Min(_side - 1, cz + shell); iz++)
                {
                    for (var iy = Math.Max(0, cy - shell); iy <= Math.Min(_side - 1, cy + shell); iy++)
                    {
                        for (var ix = Math.Max(0, cx - shell); ix <= Math.Min(_side - 1, cx + shell); ix++)
                        {
                            if (Math.Max(Math.Abs(ix - cx), Math.Max(Math.Abs(iy - cy), Math.Abs(iz - cz))) != shell)
                            {
                                continue; // inner buckets were searched in earlier shells
                            }
                            var cell = CellIndex(ix, iy, iz);
                            for (var j = _start[cell]; j < _start[cell + 1]; j++)
                            {
                                var p = 3 * _order[j];
                                double dx = _points[p] - x, dy = _points[p + 1] - y, dz = _points[p + 2] - z;
                                best = Math.Min(best, dx * dx + dy * dy + dz * dz);
                            }
                        }
                    }
                }
                // Every point outside the searched shells is at least shell·cell away (in any one coordinate).
                if (best <= Math.Pow(shell * _cell, 2))
                {
                    break;
                }
            }
            return Math.Sqrt(best);
        }
    }
}
