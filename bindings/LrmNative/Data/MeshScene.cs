namespace LrmNative.Data;

/// <summary>
/// A triangle mesh for the CPU ray tracer: a bounding volume hierarchy (binned surface-area heuristic, up to
/// <see cref="LeafSize"/> triangles per leaf, nodes in one flat array, children visited nearer first) over the
/// triangles, Möller–Trumbore intersection in double precision, smooth shading from area-weighted vertex normals
/// (turned to face the ray, so open meshes shade on both sides) and per-vertex colours interpolated barycentrically
/// (a constant base colour when the mesh has none).
/// </summary>
internal sealed class MeshScene : IRayScene
{
    public const int LeafSize = 4;
    private const int Bins = 16;

    private readonly Vec3[] _positions;
    private readonly Vec3[] _normals;
    private readonly Vec3[]? _colors;
    private readonly Vec3 _baseColor;
    private readonly int[] _triangles; // reordered so every leaf covers a contiguous range
    private readonly List<Node> _nodes = [];

    private struct Node
    {
        public Vec3 Min, Max;
        public int Left;  // children of inner nodes
        public int Right;
        public int First; // first triangle (leaf)
        public int Count; // triangles in a leaf, 0 for inner nodes
    }

    public MeshScene(Mesh mesh, Vec3? baseColor = null)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (mesh.TriangleCount == 0)
        {
            throw new LrmInvalidArgumentException("cannot ray trace a mesh without triangles");
        }
        var p = mesh.Positions;
        _positions = new Vec3[mesh.VertexCount];
        for (var v = 0; v < _positions.Length; v++)
        {
            _positions[v] = new Vec3(p[3 * v], p[3 * v + 1], p[3 * v + 2]);
        }
        var n = mesh.HasNormals ? mesh.Normals.ToArray() : Mesh.AreaWeightedNormals(mesh.Positions, mesh.Triangles);
        _normals = new Vec3[mesh.VertexCount];
        for (var v = 0; v < _normals.Length; v++)
        {
            _normals[v] = new Vec3(n[3 * v], n[3 * v + 1], n[3 * v + 2]);
        }
        if (mesh.HasColors)
        {
            var c = mesh.Colors;
            _colors = new Vec3[mesh.VertexCount];
            for (var v = 0; v < _colors.Length; v++)
            {
                _colors[v] = new Vec3(c[3 * v], c[3 * v + 1], c[3 * v + 2]);
            }
        }
        _baseColor = baseColor ?? new Vec3(0.8, 0.8, 0.8);
        _triangles = mesh.Triangles.ToArray();
        Build();
    }

    /// <summary>Nodes in the hierarchy (for tests and messages).</summary>
    public int NodeCount => _nodes.Count;

    private void Build()
    {
        var count = _triangles.Length / 3;
        var order = new int[count];
        var centroids = new Vec3[count];
        var boxMin = new Vec3[count];
        var boxMax = new Vec3[count];
        for (var t = 0; t < count; t++)
        {
            order[t] = t;
            Vec3 a = _positions[_triangles[3 * t]], b = _positions[_triangles[3 * t + 1]], c = _positions[_triangles[3 * t + 2]];
            boxMin[t] = Vec3.Min(a, Vec3.Min(b, c));
            boxMax[t] = Vec3.Max(a, Vec3.Max(b, c));
            centroids[t] = (a + b + c) / 3;
        }
        var stack = new Stack<(int Node, int First, int Count)>();
        _nodes.Add(default);
        stack.Push((0, 0, count));
        while (stack.Count > 0)
        {
            var (index, first, n) = stack.Pop();
            Vec3 min = new(double.MaxValue, double.MaxValue, double.MaxValue), max = -min;
            Vec3 cmin = min, cmax = max;
            for (var k = first; k < first + n; k++)
            {
                var t = order[k];
                min = Vec3.Min(min, boxMin[t]);
                max = Vec3.Max(max, boxMax[t]);
                cmin = Vec3.Min(cmin, centroids[t]);
                cmax = Vec3.Max(cmax, centroids[t]);
            }
            var node = new Node { Min = min, Max = max, First = first, Count = n };
            var split = n > LeafSize ? ChooseSplit(order, first, n, centroids, boxMin, boxMax, cmin, cmax) : null;
            if (split is not { } chosen)
            {
                _nodes[index] = node;
                continue;
            }
            // Partition by the chosen bin boundary.
            var (axis, boundary) = chosen;
            int i = first, j = first + n - 1;
            while (i <= j)
            {
                if (centroids[order[i]][axis] < boundary)
                {
                    i++;
                }
                else
                {
                    (order[i], order[j]) = (order[j], order[i]);
                    j--;
                }
            }
            var leftCount = i - first;
            if (leftCount == 0 || leftCount == n)
            {
                leftCount = n / 2; // degenerate centroids: split in the middle of the current order
            }
            node.Count = 0;
            node.Left = _nodes.Count;
            node.Right = _nodes.Count + 1;
            _nodes.Add(default);
            _nodes.Add(default);
            _nodes[index] = node;
            stack.Push((node.Left, first, leftCount));
            stack.Push((node.Right, first + leftCount, n - leftCount));
        }
        // Reorder the triangles so leaves index them directly.
        var reordered = new int[_triangles.Length];
        for (var k = 0; k < count; k++)
        {
            Array.Copy(_triangles, 3 * order[k], reordered, 3 * k, 3);
        }
        Array.Copy(reordered, _triangles, reordered.Length);
    }

    // Binned SAH: the bin boundary with the lowest area-weighted cost, or null when a leaf is cheaper.
    private static (int Axis, double Boundary)? ChooseSplit(int[] order, int first, int n, Vec3[] centroids, Vec3[] boxMin, Vec3[] boxMax,
        Vec3 cmin, Vec3 cmax)
    {
        var best = (Cost: n * 1.0, Axis: -1, Boundary: 0.0);
        var binCount = new int[Bins];
        var binMin = new Vec3[Bins];
        var binMax = new Vec3[Bins];
        for (var axis = 0; axis < 3; axis++)
        {
            var extent = cmax[axis] - cmin[axis];
            if (extent <= 0)
            {
                continue;
            }
            Array.Clear(binCount);
            for (var b = 0; b < Bins; b++)
            {
                binMin[b] = new Vec3(double.MaxValue, double.MaxValue, double.MaxValue);
                binMax[b] = -binMin[b];
            }
            for (var k = first; k < first + n; k++)
            {
                var t = order[k];
                var b = Math.Min(Bins - 1, (int)((centroids[t][axis] - cmin[axis]) / extent * Bins));
                binCount[b]++;
                binMin[b] = Vec3.Min(binMin[b], boxMin[t]);
                binMax[b] = Vec3.Max(binMax[b], boxMax[t]);
            }
            // Sweep from the right to get suffix areas, then from the left.
            var rightArea = new double[Bins];
            var rightCount = new int[Bins];
            Vec3 rmin = new(double.MaxValue, double.MaxValue, double.MaxValue), rmax = -rmin;
            var rc = 0;
            for (var b = Bins - 1; b > 0; b--)
            {
                rc += binCount[b];
                if (binCount[b] > 0)
                {
                    rmin = Vec3.Min(rmin, binMin[b]);
                    rmax = Vec3.Max(rmax, binMax[b]);
                }
                rightCount[b] = rc;
                rightArea[b] = rc > 0 ? Area(rmin, rmax) : 0;
            }
            Vec3 lmin = new(double.MaxValue, double.MaxValue, double.MaxValue), lmax = -lmin;
            var lc = 0;
            var parentArea = Area(Vec3.Min(lmin, cmin), Vec3.Max(lmax, cmax));
            for (var b = 0; b < Bins - 1; b++)
            {
                lc += binCount[b];
                if (binCount[b] > 0)
                {
                    lmin = Vec3.Min(lmin, binMin[b]);
                    lmax = Vec3.Max(lmax, binMax[b]);
                }
                if (lc == 0 || rightCount[b + 1] == 0)
                {
                    continue;
                }
                var cost = 0.5 + (lc * Area(lmin, lmax) + rightCount[b + 1] * rightArea[b + 1]) / Math.Max(parentArea, 1e-300);
                if (cost < best.Cost)
                {
                    best = (cost, axis, cmin[axis] + extent * (b + 1) / Bins);
                }
            }
        }
        if (best.Axis < 0)
        {
            // No useful split found: still split large nodes so leaves stay small.
            return n > 4 * LeafSize ? (LongestAxis(cmin, cmax), 0.5 * (cmin[LongestAxis(cmin, cmax)] + cmax[LongestAxis(cmin, cmax)])) : null;
        }
        return (best.Axis, best.Boundary);
    }

    private static int LongestAxis(Vec3 min, Vec3 max)
    {
        var e = max - min;
        return e.X >= e.Y && e.X >= e.Z ? 0 : e.Y >= e.Z ? 1 : 2;
    }

    private static double Area(Vec3 min, Vec3 max)
    {
        var e = max - min;
        return 2 * (e.X * e.Y + e.Y * e.Z + e.Z * e.X);
    }

    /// <inheritdoc />
    public bool Intersect(Vec3 origin, Vec3 direction, out SurfaceHit hit)
    {
        hit = default;
        var inverse = new Vec3(1 / direction.X, 1 / direction.Y, 1 / direction.Z);
        var best = double.PositiveInfinity;
        int bestTriangle = -1;
        double bestU = 0, bestV = 0;
        Span<int> stack = stackalloc int[64];
        var top = 0;
        stack[top++] = 0;
        while (top > 0)
        {
            var node = _nodes[stack[--top]];
            if (!Slab(origin, inverse, node.Min, node.Max, best, out _))
            {
                continue;
            }
            if (node.Count > 0)
            {
                for (var t = node.First; t < node.First + node.Count; t++)
                {
                    if (Triangle(origin, direction, t, out var distance, out var u, out var v) && distance < best)
                    {
                        best = distance;
                        bestTriangle = t;
                        bestU = u;
                        bestV = v;
                    }
                }
                continue;
            }
            var left = _nodes[node.Left];
            var right = _nodes[node.Right];
            var hitLeft = Slab(origin, inverse, left.Min, left.Max, best, out var nearLeft);
            var hitRight = Slab(origin, inverse, right.Min, right.Max, best, out var nearRight);
            if (top + 2 > stack.Length)
            {
                throw new LrmInternalException("BVH deeper than the traversal stack");
            }
            // Push the farther child first so the nearer one is visited next.
            if (hitLeft && hitRight)
            {
                if (nearLeft <= nearRight)
                {
                    stack[top++] = node.Right;
                    stack[top++] = node.Left;
                }
                else
                {
                    stack[top++] = node.Left;
                    stack[top++] = node.Right;
                }
            }
            else if (hitLeft)
            {
                stack[top++] = node.Left;
            }
            else if (hitRight)
            {
                stack[top++] = node.Right;
            }
        }
        if (bestTriangle < 0)
        {
            return false;
        }
        int ia = _triangles[3 * bestTriangle], ib = _triangles[3 * bestTriangle + 1], ic = _triangles[3 * bestTriangle + 2];
        var w = 1 - bestU - bestV;
        var normal = (_normals[ia] * w + _normals[ib] * bestU + _normals[ic] * bestV).Normalized();
        hit.Distance = best;
        hit.Normal = Vec3.Dot(normal, direction) > 0 ? -normal : normal;
        hit.Albedo = _colors is null ? _baseColor : _colors[ia] * w + _colors[ib] * bestU + _colors[ic] * bestV;
        hit.Part = 0;
        return true;
    }

    /// <summary>Brute-force nearest hit over all triangles (the reference the tests compare the hierarchy with).</summary>
    public bool IntersectBruteForce(Vec3 origin, Vec3 direction, out double distance, out int triangleVertexA)
    {
        distance = double.PositiveInfinity;
        triangleVertexA = -1;
        for (var t = 0; t < _triangles.Length / 3; t++)
        {
            if (Triangle(origin, direction, t, out var d, out _, out _) && d < distance)
            {
                distance = d;
                triangleVertexA = _triangles[3 * t];
            }
        }
        return triangleVertexA >= 0;
    }

    private bool Triangle(Vec3 origin, Vec3 direction, int t, out double distance, out double u, out double v)
    {
        distance = u = v = 0;
        Vec3 a = _positions[_triangles[3 * t]], b = _positions[_triangles[3 * t + 1]], c = _positions[_triangles[3 * t + 2]];
        var e1 = b - a;
        var e2 = c - a;
        var pvec = Vec3.Cross(direction, e2);
        var det = Vec3.Dot(e1, pvec);
        if (Math.Abs(det) < 1e-300)
        {
            return false;
        }
        var inverse = 1 / det;
        var tvec = origin - a;
        u = Vec3.Dot(tvec, pvec) * inverse;
        if (u < 0 || u > 1)
        {
            return false;
        }
        var qvec = Vec3.Cross(tvec, e1);
        v = Vec3.Dot(direction, qvec) * inverse;
        if (v < 0 || u + v > 1)
        {
            return false;
        }
        distance = Vec3.Dot(e2, qvec) * inverse;
        return distance > 1e-9;
    }

    private static bool Slab(Vec3 o, Vec3 inverse, Vec3 min, Vec3 max, double limit, out double near)
    {
        double t0 = (min.X - o.X) * inverse.X, t1 = (max.X - o.X) * inverse.X;
        double lo = Math.Min(t0, t1), hi = Math.Max(t0, t1);
        t0 = (min.Y - o.Y) * inverse.Y;
        t1 = (max.Y - o.Y) * inverse.Y;
        lo = Math.Max(lo, Math.Min(t0, t1));
        hi = Math.Min(hi, Math.Max(t0, t1));
        t0 = (min.Z - o.Z) * inverse.Z;
        t1 = (max.Z - o.Z) * inverse.Z;
        lo = Math.Max(lo, Math.Min(t0, t1));
        hi = Math.Min(hi, Math.Max(t0, t1));
        near = lo;
        // A tiny relative slack keeps flat boxes (a planar mesh) from being missed by rounding.
        return hi >= lo - 1e-12 * Math.Abs(lo) && hi > 0 && lo < limit;
    }
}
