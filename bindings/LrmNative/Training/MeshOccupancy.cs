namespace LrmNative.Training;

/// <summary>
/// Inside or outside a closed triangle mesh, and the query points of the occupancy loss (docs/training.md, "Occupancy
/// supervision"). A point is inside when a ray from it along +X crosses the surface an odd number of times. Triangles
/// are bucketed by their bounds in the YZ plane, so a query tests only the few whose projection can hold its (y, z).
/// A ray through a shared edge or vertex is counted once: each projected triangle owns its edges by the top-left rule
/// (as rasterisers do), oriented counter-clockwise first, so two triangles sharing an edge never both claim it.
/// Triangles seen edge-on (zero projected area) are never crossed.
/// </summary>
internal sealed class MeshOccupancy
{
    /// <summary>Share of <see cref="Sample"/>'s points drawn near the surface (the rest uniformly in the box).</summary>
    public const double NearSurfaceShare = 0.5;

    /// <summary>Standard deviation of the Gaussian offset of near-surface points, per axis (half the F-score's τ of 0.1).</summary>
    public const double SurfaceNoise = 0.05;

    /// <summary>Half side of the box points are drawn in: the triplane's [−1, 1]³.</summary>
    public const double BoxHalfSide = 1.0;

    private readonly double[] _y0, _z0, _y1, _z1, _y2, _z2, _x0, _x1, _x2;
    private readonly double[] _cumulativeArea;
    private readonly int[] _bucketStart, _bucketItems;
    private readonly int _cells;
    private readonly double _minY, _minZ, _cellY, _cellZ, _minX, _maxX, _maxY, _maxZ;

    /// <summary>
    /// The occupancy of <paramref name="mesh"/>, which must be closed (every edge shared by exactly two triangles);
    /// <paramref name="cells"/>² YZ buckets. Throws <see cref="LrmFormatException"/> naming <paramref name="what"/> otherwise.
    /// </summary>
    public MeshOccupancy(Mesh mesh, string what, int cells = 32)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (cells < 1)
        {
            throw new LrmInvalidArgumentException($"occupancy: bucket cells must be >= 1, got {cells}");
        }
        if (mesh.IsEmpty)
        {
            throw new LrmFormatException($"{what}: the mesh has no triangles; occupancy needs a closed surface");
        }
        var open = OpenEdges(mesh.Triangles);
        if (open > 0)
        {
            throw new LrmFormatException($"{what}: the mesh is not closed ({open} edge(s) not shared by exactly two triangles); occupancy needs a watertight surface");
        }
        var positions = mesh.Positions;
        var triangles = mesh.Triangles;
        var count = triangles.Length / 3;
        _x0 = new double[count]; _y0 = new double[count]; _z0 = new double[count];
        _x1 = new double[count]; _y1 = new double[count]; _z1 = new double[count];
        _x2 = new double[count]; _y2 = new double[count]; _z2 = new double[count];
        _cumulativeArea = new double[count];
        var bounds = mesh.Bounds;
        (_minX, _maxX) = (bounds.Min.X, bounds.Max.X);
        (_minY, _maxY) = (bounds.Min.Y, bounds.Max.Y);
        (_minZ, _maxZ) = (bounds.Min.Z, bounds.Max.Z);
        _cells = cells;
        _cellY = Math.Max(_maxY - _minY, 1e-12) / cells;
        _cellZ = Math.Max(_maxZ - _minZ, 1e-12) / cells;
        double total = 0;
        var perBucket = new int[cells * cells + 1];
        for (var t = 0; t < count; t++)
        {
            Vertex(positions, triangles[3 * t], out _x0[t], out _y0[t], out _z0[t]);
            Vertex(positions, triangles[3 * t + 1], out _x1[t], out _y1[t], out _z1[t]);
            Vertex(positions, triangles[3 * t + 2], out _x2[t], out _y2[t], out _z2[t]);
            double ax = _x1[t] - _x0[t], ay = _y1[t] - _y0[t], az = _z1[t] - _z0[t];
            double bx = _x2[t] - _x0[t], by = _y2[t] - _y0[t], bz = _z2[t] - _z0[t];
            double cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx;
            total += 0.5 * Math.Sqrt(cx * cx + cy * cy + cz * cz);
            _cumulativeArea[t] = total;
            ForEachBucket(t, bucket => perBucket[bucket + 1]++);
        }
        for (var b = 0; b < cells * cells; b++)
        {
            perBucket[b + 1] += perBucket[b];
        }
        _bucketStart = perBucket;
        _bucketItems = new int[perBucket[^1]];
        var fill = (int[])perBucket.Clone();
        for (var t = 0; t < count; t++)
        {
            ForEachBucket(t, bucket => _bucketItems[fill[bucket]++] = t);
        }
        if (!(total > 0))
        {
            throw new LrmFormatException($"{what}: the mesh has zero surface area");
        }
    }

    /// <summary>Total surface area.</summary>
    public double Area => _cumulativeArea[^1];

    /// <summary>True when (x, y, z) is inside the surface.</summary>
    public bool Contains(double x, double y, double z)
    {
        if (x > _maxX || y < _minY || y > _maxY || z < _minZ || z > _maxZ)
        {
            return false;
        }
        var cy = Math.Clamp((int)((y - _minY) / _cellY), 0, _cells - 1);
        var cz = Math.Clamp((int)((z - _minZ) / _cellZ), 0, _cells - 1);
        var bucket = cy * _cells + cz;
        var crossings = 0;
        for (var i = _bucketStart[bucket]; i < _bucketStart[bucket + 1]; i++)
        {
            var t = _bucketItems[i];
            if (CrossesAhead(t, x, y, z))
            {
                crossings++;
            }
        }
        return (crossings & 1) == 1;
    }

    /// <summary>
    /// Draws <paramref name="labels"/>.Length query points into <paramref name="points"/> (x, y, z interleaved) with
    /// their occupancy (1 inside, 0 outside) in <paramref name="labels"/>: the first <see cref="NearSurfaceShare"/> of
    /// them on the surface (area-weighted) plus a Gaussian offset of σ <see cref="SurfaceNoise"/> per axis, the rest
    /// uniform in the box; every point is clamped into the box.
    /// </summary>
    public void Sample(TrainingRandom random, Span<float> points, Span<float> labels)
    {
        ArgumentNullException.ThrowIfNull(random);
        var n = labels.Length;
        if (points.Length != 3 * n)
        {
            throw new LrmShapeException($"occupancy: {n} labels need {3 * n} point coordinates, got {points.Length}");
        }
        var near = (int)Math.Round(n * NearSurfaceShare);
        for (var i = 0; i < n; i++)
        {
            double x, y, z;
            if (i < near)
            {
                var t = PickTriangle(random.NextDouble() * Area);
                var r1 = Math.Sqrt(random.NextDouble());
                var r2 = random.NextDouble();
                double w0 = 1 - r1, w1 = r1 * (1 - r2), w2 = r1 * r2;
                x = w0 * _x0[t] + w1 * _x1[t] + w2 * _x2[t] + SurfaceNoise * Gaussian(random);
                y = w0 * _y0[t] + w1 * _y1[t] + w2 * _y2[t] + SurfaceNoise * Gaussian(random);
                z = w0 * _z0[t] + w1 * _z1[t] + w2 * _z2[t] + SurfaceNoise * Gaussian(random);
            }
            else
            {
                x = (2 * random.NextDouble() - 1) * BoxHalfSide;
                y = (2 * random.NextDouble() - 1) * BoxHalfSide;
                z = (2 * random.NextDouble() - 1) * BoxHalfSide;
            }
            // Rounded to float first, so the label belongs to the point the model is queried at.
            var fx = (float)Math.Clamp(x, -BoxHalfSide, BoxHalfSide);
            var fy = (float)Math.Clamp(y, -BoxHalfSide, BoxHalfSide);
            var fz = (float)Math.Clamp(z, -BoxHalfSide, BoxHalfSide);
            points[3 * i] = fx;
            points[3 * i + 1] = fy;
            points[3 * i + 2] = fz;
            labels[i] = Contains(fx, fy, fz) ? 1f : 0f;
        }
    }

    /// <summary>Edges of <paramref name="triangles"/> not used by exactly two triangles (0 for a closed mesh).</summary>
    internal static int OpenEdges(ReadOnlySpan<int> triangles)
    {
        var uses = new Dictionary<long, int>();
        for (var t = 0; t < triangles.Length; t += 3)
        {
            for (var e = 0; e < 3; e++)
            {
                int a = triangles[t + e], b = triangles[t + (e + 1) % 3];
                var key = ((long)Math.Min(a, b) << 32) | (uint)Math.Max(a, b);
                uses[key] = uses.GetValueOrDefault(key) + 1;
            }
        }
        return uses.Values.Count(u => u != 2);
    }

    private static void Vertex(ReadOnlySpan<float> positions, int index, out double x, out double y, out double z)
    {
        x = positions[3 * index];
        y = positions[3 * index + 1];
        z = positions[3 * index + 2];
    }

    private void ForEachBucket(int t, Action<int> action)
    {
        var lowY = Math.Clamp((int)((Math.Min(_y0[t], Math.Min(_y1[t], _y2[t])) - _minY) / _cellY), 0, _cells - 1);
        var highY = Math.Clamp((int)((Math.Max(_y0[t], Math.Max(_y1[t], _y2[t])) - _minY) / _cellY), 0, _cells - 1);
        var lowZ = Math.Clamp((int)((Math.Min(_z0[t], Math.Min(_z1[t], _z2[t])) - _minZ) / _cellZ), 0, _cells - 1);
        var highZ = Math.Clamp((int)((Math.Max(_z0[t], Math.Max(_z1[t], _z2[t])) - _minZ) / _cellZ), 0, _cells - 1);
        for (var cy = lowY; cy <= highY; cy++)
        {
            for (var cz = lowZ; cz <= highZ; cz++)
            {
                action(cy * _cells + cz);
            }
        }
    }

    // Does the +X ray from (x, y, z) cross triangle t at a larger x? The (y, z) test follows the top-left rule.
    private bool CrossesAhead(int t, double x, double y, double z)
    {
        double ya = _y0[t], za = _z0[t], yb = _y1[t], zb = _z1[t], yc = _y2[t], zc = _z2[t];
        double xa = _x0[t], xb = _x1[t], xc = _x2[t];
        var twiceArea = (yb - ya) * (zc - za) - (zb - za) * (yc - ya);
        if (twiceArea == 0)
        {
            return false;
        }
        if (twiceArea < 0)
        {
            (yb, zb, xb, yc, zc, xc) = (yc, zc, xc, yb, zb, xb);
            twiceArea = -twiceArea;
        }
        var w0 = Edge(yb, zb, yc, zc, y, z);
        var w1 = Edge(yc, zc, ya, za, y, z);
        var w2 = Edge(ya, za, yb, zb, y, z);
        if (!Owns(w0, yb, zb, yc, zc) || !Owns(w1, yc, zc, ya, za) || !Owns(w2, ya, za, yb, zb))
        {
            return false;
        }
        var hitX = (w0 * xa + w1 * xb + w2 * xc) / twiceArea;
        return hitX > x;
    }

    // Twice the signed area of (p, q, point): positive on the inner side of a counter-clockwise triangle's edge p→q.
    private static double Edge(double py, double pz, double qy, double qz, double y, double z) => (qy - py) * (z - pz) - (qz - pz) * (y - py);

    // Inside the edge, or on it and the edge is a top or left one (counter-clockwise in (y, z)).
    private static bool Owns(double w, double py, double pz, double qy, double qz)
    {
        if (w != 0)
        {
            return w > 0;
        }
        double dy = qy - py, dz = qz - pz;
        return dz < 0 || (dz == 0 && dy > 0);
    }

    private int PickTriangle(double target)
    {
        var index = Array.BinarySearch(_cumulativeArea, target);
        index = index < 0 ? ~index : index;
        return Math.Min(index, _cumulativeArea.Length - 1);
    }

    // A standard normal draw (Box–Muller, one of the pair).
    private static double Gaussian(TrainingRandom random)
    {
        var u = 1.0 - random.NextDouble();
        var v = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2.0 * Math.PI * v);
    }
}
