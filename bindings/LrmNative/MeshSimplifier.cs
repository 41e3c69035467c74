namespace LrmNative;

/// <summary>
/// Quadric edge-collapse simplification (Garland and Heckbert, "Surface Simplification Using Quadric Error Metrics",
/// SIGGRAPH 1997): each vertex carries the sum of the area-weighted squared-distance quadrics of the planes of its
/// triangles; the edge whose merged quadric has the smallest error at its best point is collapsed first, and the merged
/// vertex moves to that point. Game engines want assets of a few thousand triangles, marching cubes at 384³ gives
/// hundreds of thousands.
/// <list type="bullet">
/// <item>Topology is kept: a collapse must pass the link condition (the two ends share exactly the neighbours opposite
/// the edge), must not create a duplicate triangle, and must not flip or flatten any triangle that survives it, so a
/// closed manifold stays closed with the same genus, and a piece never shrinks below a tetrahedron.</item>
/// <item>Open borders stay where they are: each border edge adds a heavily weighted plane through it, perpendicular to
/// its triangle, and an interior edge between two border vertices is never collapsed (it would pinch the border).</item>
/// <item>Vertices on non-manifold edges (three or more triangles) do not move and are not merged.</item>
/// <item>The best point solves the quadric's 3×3 system when it is well conditioned and lies near the edge; otherwise
/// the best of the two ends and the midpoint. Colours are interpolated along the edge at the best point's projection
/// onto it; normals, when the mesh had them, are recomputed area-weighted at the end.</item>
/// </list>
/// Deterministic: ties in the error are broken by the vertex numbers, so the same mesh always gives the same result.
/// </summary>
internal static class MeshSimplifier
{
    // Border planes weigh this much more than a triangle of the same size (Garland and Heckbert's "penalty" planes).
    private const double BorderWeight = 1000;

    // A surviving triangle's unit normal may turn by at most acos(MinNormalCosine) in one collapse.
    private const double MinNormalCosine = 0.2;

    // A queued edge (A < B) with its error and the sum of its ends' versions when it was measured (versions only grow,
    // so an equal sum means both are unchanged). The queue orders by the error, then by the vertex numbers, a total
    // order so runs are identical; the best point is found again when it comes out. 16 bytes: four children of the
    // 4-ary heap share about one cache line.
    private struct Candidate
    {
        public float Error;
        public int A, B, Versions;

        public readonly bool Before(in Candidate other) =>
            Error < other.Error || (Error == other.Error && (A < other.A || (A == other.A && B < other.B)));
    }

    public static Mesh Simplify(Mesh mesh, int maxTriangles, CancellationToken cancellation)
    {
        var state = new State(mesh);
        state.Run(maxTriangles, cancellation);
        return state.ToMesh(mesh.HasNormals);
    }

    private sealed class State
    {
        private readonly double[] _position;      // (V, 3)
        private readonly double[]? _color;        // (V, 3)
        private readonly double[] _quadric;       // (V, 10): a11 a12 a13 a22 a23 a33 b1 b2 b3 c of vᵀAv + 2bᵀv + c
        private readonly int[] _triangles;        // (T, 3), rewritten as vertices merge
        private readonly bool[] _triangleAlive;
        private readonly List<int>[] _trianglesOf; // live triangles around each vertex
        private readonly bool[] _vertexAlive;
        private readonly int[] _version;          // bumped when a vertex moves: queue entries with an older one are stale
        private readonly bool[] _border;
        private readonly bool[] _locked;
        private Candidate[] _heap = [];           // 4-ary min-heap of candidates, stale ones included (shallower than binary)
        private int _heapCount;
        private readonly int[] _mark;             // neighbour marks for the link condition, one stamp per test
        private readonly List<int> _neighbours = [];
        private int _stamp;
        private int _liveTriangles;

        public State(Mesh mesh)
        {
            var vertexCount = mesh.VertexCount;
            var triangleCount = mesh.TriangleCount;
            _position = new double[3 * vertexCount];
            for (var i = 0; i < _position.Length; i++)
            {
                _position[i] = mesh.Positions[i];
            }
            if (mesh.HasColors)
            {
                _color = new double[3 * vertexCount];
                for (var i = 0; i < _color.Length; i++)
                {
                    _color[i] = mesh.Colors[i];
                }
            }
            _quadric = new double[10 * vertexCount];
            _triangles = mesh.Triangles.ToArray();
            _triangleAlive = new bool[triangleCount];
            _trianglesOf = new List<int>[vertexCount];
            _vertexAlive = new bool[vertexCount];
            _version = new int[vertexCount];
            _border = new bool[vertexCount];
            _locked = new bool[vertexCount];
            _mark = new int[vertexCount];
            for (var v = 0; v < vertexCount; v++)
            {
                _trianglesOf[v] = [];
            }

            // Triangles that repeat a vertex are dropped up front: they have no plane and no area.
            for (var t = 0; t < triangleCount; t++)
            {
                int a = _triangles[3 * t], b = _triangles[3 * t + 1], c = _triangles[3 * t + 2];
                if (a == b || b == c || a == c)
                {
                    continue;
                }
                _triangleAlive[t] = true;
                _liveTriangles++;
                foreach (var v in (ReadOnlySpan<int>)[a, b, c])
                {
                    _trianglesOf[v].Add(t);
                    _vertexAlive[v] = true;
                }
                AddTrianglePlane(t);
            }

            // Undirected edges with the triangles that use them (sorted keys, so runs of equal keys are one edge): one
            // triangle is a border, three or more a non-manifold edge.
            var keys = new long[3 * _liveTriangles];
            var owners = new int[keys.Length];
            var n = 0;
            for (var t = 0; t < triangleCount; t++)
            {
                if (_triangleAlive[t])
                {
                    for (var k = 0; k < 3; k++)
                    {
                        keys[n] = EdgeKey(_triangles[3 * t + k], _triangles[3 * t + (k + 1) % 3]);
                        owners[n++] = t;
                    }
                }
            }
            Array.Sort(keys, owners);
            var edges = new List<long>(keys.Length / 2 + 1);
            for (var start = 0; start < keys.Length;)
            {
                var end = start + 1;
                while (end < keys.Length && keys[end] == keys[start])
                {
                    end++;
                }
                var (a, b) = EdgeEnds(keys[start]);
                if (end - start == 1)
                {
                    _border[a] = _border[b] = true;
                    AddBorderPlane(a, b, owners[start]);
                }
                else if (end - start > 2)
                {
                    _locked[a] = _locked[b] = true;
                }
                edges.Add(keys[start]);
                start = end;
            }
            _heap = new Candidate[Math.Max(16, 2 * edges.Count)];
            foreach (var key in edges)
            {
                var (a, b) = EdgeEnds(key);
                if (Evaluate(a, b, out var candidate, out _, out _, out _))
                {
                    _heap[_heapCount++] = candidate;
                }
            }
            for (var i = (_heapCount - 2) / 4; i >= 0; i--)
            {
                SiftDown(i);
            }
        }

        private long EdgeKey(int a, int b) => a < b ? (long)a * _vertexAlive.Length + b : (long)b * _vertexAlive.Length + a;

        private (int A, int B) EdgeEnds(long key) => ((int)(key / _vertexAlive.Length), (int)(key % _vertexAlive.Length));

        public void Run(int maxTriangles, CancellationToken cancellation)
        {
            var steps = 0;
            while (_liveTriangles > maxTriangles && _heapCount > 0)
            {
                if ((++steps & 1023) == 0)
                {
                    cancellation.ThrowIfCancellationRequested();
                }
                var candidate = _heap[0];
                _heap[0] = _heap[--_heapCount];
                SiftDown(0);
                int a = candidate.A, b = candidate.B;
                if (!_vertexAlive[a] || !_vertexAlive[b] || _version[a] + _version[b] != candidate.Versions)
                {
                    continue; // stale: an end moved or went since this was queued, and was queued again then
                }
                // Unchanged ends give the same point as when queued.
                Evaluate(a, b, out _, out var x, out var y, out var z);
                if (CanCollapse(a, b, x, y, z))
                {
                    Collapse(a, b, x, y, z);
                }
            }
        }

        // Queues the edge (a, b) with its error at its best point, unless either end may not move.
        private void Push(int a, int b)
        {
            if (!Evaluate(a, b, out var candidate, out _, out _, out _))
            {
                return;
            }
            if (_heapCount == _heap.Length)
            {
                Array.Resize(ref _heap, 2 * _heap.Length);
            }
            var i = _heapCount++;
            while (i > 0)
            {
                var parent = (i - 1) / 4;
                if (!candidate.Before(_heap[parent]))
                {
                    break;
                }
                _heap[i] = _heap[parent];
                i = parent;
            }
            _heap[i] = candidate;
        }

        private void SiftDown(int i)
        {
            if (_heapCount == 0)
            {
                return;
            }
            var item = _heap[i];
            while (true)
            {
                var first = 4 * i + 1;
                if (first >= _heapCount)
                {
                    break;
                }
                var child = first;
                for (var c = first + 1; c < Math.Min(first + 4, _heapCount); c++)
                {
                    if (_heap[c].Before(_heap[child]))
                    {
                        child = c;
                    }
                }
                if (!_heap[child].Before(item))
                {
                    break;
                }
                _heap[i] = _heap[child];
                i = child;
            }
            _heap[i] = item;
        }

        // The edge (a, b) as a queue entry with its best point, false when either end may not move.
        private bool Evaluate(int a, int b, out Candidate candidate, out double x, out double y, out double z)
        {
            candidate = default;
            (x, y, z) = (0, 0, 0);
            if (_locked[a] || _locked[b])
            {
                return false;
            }
            Span<double> q = stackalloc double[10];
            for (var i = 0; i < 10; i++)
            {
                q[i] = _quadric[10 * a + i] + _quadric[10 * b + i];
            }
            if (a > b)
            {
                (a, b) = (b, a);
            }
            (x, y, z, var error) = BestPoint(q, a, b);
            candidate = new Candidate { Error = (float)error, A = a, B = b, Versions = _version[a] + _version[b] };
            return true;
        }

        private (double X, double Y, double Z, double Error) BestPoint(ReadOnlySpan<double> q, int a, int b)
        {
            double ax = _position[3 * a], ay = _position[3 * a + 1], az = _position[3 * a + 2];
            double bx = _position[3 * b], by = _position[3 * b + 1], bz = _position[3 * b + 2];
            double mx = (ax + bx) / 2, my = (ay + by) / 2, mz = (az + bz) / 2;
            var length2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay) + (bz - az) * (bz - az);

            var best = (X: ax, Y: ay, Z: az, Error: Error(q, ax, ay, az));
            Consider(q, ref best, bx, by, bz);
            Consider(q, ref best, mx, my, mz);

            // A v = −b by Cramer's rule; trusted only when A is far from singular (a flat or straight neighbourhood
            // leaves a line or plane of equally good points) and the point stays within one edge length of the midpoint.
            double a11 = q[0], a12 = q[1], a13 = q[2], a22 = q[3], a23 = q[4], a33 = q[5];
            double c1 = a22 * a33 - a23 * a23, c2 = a13 * a23 - a12 * a33, c3 = a12 * a23 - a13 * a22;
            var determinant = a11 * c1 + a12 * c2 + a13 * c3;
            var scale = Math.Abs(a11) + Math.Abs(a22) + Math.Abs(a33);
            if (scale > 0 && Math.Abs(determinant) > 1e-9 * scale * scale * scale)
            {
                double r1 = -q[6], r2 = -q[7], r3 = -q[8];
                var x = (r1 * c1 + r2 * c2 + r3 * c3) / determinant;
                var y = (r1 * c2 + r2 * (a11 * a33 - a13 * a13) + r3 * (a12 * a13 - a11 * a23)) / determinant;
                var z = (r1 * c3 + r2 * (a12 * a13 - a11 * a23) + r3 * (a11 * a22 - a12 * a12)) / determinant;
                var offset2 = (x - mx) * (x - mx) + (y - my) * (y - my) + (z - mz) * (z - mz);
                if (double.IsFinite(x) && double.IsFinite(y) && double.IsFinite(z) && offset2 <= length2)
                {
                    Consider(q, ref best, x, y, z);
                }
            }
            return best;
        }

        // Keeps (x, y, z) when its error is strictly smaller: ties go to the point considered first.
        private static void Consider(ReadOnlySpan<double> q, ref (double X, double Y, double Z, double Error) best, double x, double y, double z)
        {
            var error = Error(q, x, y, z);
            if (error < best.Error)
            {
                best = (x, y, z, error);
            }
        }

        // vᵀAv + 2bᵀv + c, never below zero (rounding can take a sum of squares a hair under it).
        private static double Error(ReadOnlySpan<double> q, double x, double y, double z) => Math.Max(0,
            q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + q[3] * y * y + 2 * q[4] * y * z + q[5] * z * z
            + 2 * (q[6] * x + q[7] * y + q[8] * z) + q[9]);

        private void AddTrianglePlane(int t)
        {
            var (nx, ny, nz, twiceArea) = Normal(_triangles[3 * t], _triangles[3 * t + 1], _triangles[3 * t + 2]);
            if (twiceArea == 0)
            {
                return;
            }
            var p = 3 * _triangles[3 * t];
            var d = -(nx * _position[p] + ny * _position[p + 1] + nz * _position[p + 2]);
            foreach (var v in _triangles.AsSpan(3 * t, 3))
            {
                AddPlane(v, nx, ny, nz, d, twiceArea / 2);
            }
        }

        // The plane through the border edge (a, b), perpendicular to its triangle, weighted like a large triangle on
        // the edge: moving a border vertex off its border line costs much more than bending the surface.
        private void AddBorderPlane(int a, int b, int triangle)
        {
            var (fx, fy, fz, twiceArea) = Normal(_triangles[3 * triangle], _triangles[3 * triangle + 1], _triangles[3 * triangle + 2]);
            double ex = _position[3 * b] - _position[3 * a], ey = _position[3 * b + 1] - _position[3 * a + 1], ez = _position[3 * b + 2] - _position[3 * a + 2];
            var length2 = ex * ex + ey * ey + ez * ez;
            if (twiceArea == 0 || length2 == 0)
            {
                return;
            }
            double nx = ey * fz - ez * fy, ny = ez * fx - ex * fz, nz = ex * fy - ey * fx;
            var norm = Math.Sqrt(nx * nx + ny * ny + nz * nz);
            (nx, ny, nz) = (nx / norm, ny / norm, nz / norm);
            var d = -(nx * _position[3 * a] + ny * _position[3 * a + 1] + nz * _position[3 * a + 2]);
            AddPlane(a, nx, ny, nz, d, BorderWeight * length2);
            AddPlane(b, nx, ny, nz, d, BorderWeight * length2);
        }

        private void AddPlane(int v, double nx, double ny, double nz, double d, double weight)
        {
            var q = _quadric.AsSpan(10 * v, 10);
            q[0] += weight * nx * nx;
            q[1] += weight * nx * ny;
            q[2] += weight * nx * nz;
            q[3] += weight * ny * ny;
            q[4] += weight * ny * nz;
            q[5] += weight * nz * nz;
            q[6] += weight * nx * d;
            q[7] += weight * ny * d;
            q[8] += weight * nz * d;
            q[9] += weight * d * d;
        }

        // Unit normal of the triangle (a, b, c) and twice its area (0 and a zero normal for a degenerate one).
        private (double X, double Y, double Z, double TwiceArea) Normal(int a, int b, int c) =>
            Normal(a, b, c, -1, 0, 0, 0);

        // The same with vertex `moved` placed at (x, y, z).
        private (double X, double Y, double Z, double TwiceArea) Normal(int a, int b, int c, int moved, double x, double y, double z)
        {
            Span<double> p = stackalloc double[9];
            var corners = (ReadOnlySpan<int>)[a, b, c];
            for (var k = 0; k < 3; k++)
            {
                if (corners[k] == moved)
                {
                    (p[3 * k], p[3 * k + 1], p[3 * k + 2]) = (x, y, z);
                }
                else
                {
                    (p[3 * k], p[3 * k + 1], p[3 * k + 2]) = (_position[3 * corners[k]], _position[3 * corners[k] + 1], _position[3 * corners[k] + 2]);
                }
            }
            double ux = p[3] - p[0], uy = p[4] - p[1], uz = p[5] - p[2];
            double wx = p[6] - p[0], wy = p[7] - p[1], wz = p[8] - p[2];
            double nx = uy * wz - uz * wy, ny = uz * wx - ux * wz, nz = ux * wy - uy * wx;
            var length = Math.Sqrt(nx * nx + ny * ny + nz * nz);
            return length > 0 && double.IsFinite(length) ? (nx / length, ny / length, nz / length, length) : (0, 0, 0, 0);
        }

        // Collapsing b into a, moved to (x, y, z): allowed when it keeps the topology and flips no triangle.
        private bool CanCollapse(int a, int b, double x, double y, double z)
        {
            // Triangles on the edge and the vertices opposite it.
            Span<int> opposite = stackalloc int[2];
            var shared = 0;
            foreach (var t in _trianglesOf[a])
            {
                if (Has(t, b))
                {
                    if (shared == 2)
                    {
                        return false;
                    }
                    opposite[shared++] = Third(t, a, b);
                }
            }
            if (shared == 0 || (shared == 2 && _border[a] && _border[b]))
            {
                return false; // not an edge any more, or an inner edge between two border vertices (it would pinch)
            }

            // Link condition: every neighbour a and b share is opposite the edge.
            _stamp++;
            foreach (var t in _trianglesOf[a])
            {
                for (var k = 0; k < 3; k++)
                {
                    _mark[_triangles[3 * t + k]] = _stamp;
                }
            }
            foreach (var t in _trianglesOf[b])
            {
                for (var k = 0; k < 3; k++)
                {
                    var v = _triangles[3 * t + k];
                    if (v != a && v != b && _mark[v] == _stamp && v != opposite[0] && (shared == 1 || v != opposite[1]))
                    {
                        return false;
                    }
                }
            }

            // b's triangles that stay must not become copies of a's, and no surviving triangle may flip or collapse.
            foreach (var t in _trianglesOf[b])
            {
                if (Has(t, a))
                {
                    continue;
                }
                var (u, w) = Others(t, b);
                foreach (var s in _trianglesOf[a])
                {
                    if (Has(s, u) && Has(s, w))
                    {
                        return false;
                    }
                }
                if (!KeepsOrientation(t, b, x, y, z))
                {
                    return false;
                }
            }
            foreach (var t in _trianglesOf[a])
            {
                if (!Has(t, b) && !KeepsOrientation(t, a, x, y, z))
                {
                    return false;
                }
            }
            return true;
        }

        private bool KeepsOrientation(int t, int moved, double x, double y, double z)
        {
            int a = _triangles[3 * t], b = _triangles[3 * t + 1], c = _triangles[3 * t + 2];
            var before = Normal(a, b, c);
            var after = Normal(a, b, c, moved, x, y, z);
            if (after.TwiceArea == 0)
            {
                return false;
            }
            // A triangle that had no area has no direction to keep.
            return before.TwiceArea == 0 || before.X * after.X + before.Y * after.Y + before.Z * after.Z >= MinNormalCosine;
        }

        private void Collapse(int a, int b, double x, double y, double z)
        {
            double ax = _position[3 * a], ay = _position[3 * a + 1], az = _position[3 * a + 2];
            double ex = _position[3 * b] - ax, ey = _position[3 * b + 1] - ay, ez = _position[3 * b + 2] - az;
            var length2 = ex * ex + ey * ey + ez * ez;
            if (_color is not null)
            {
                // The colour at the new point's projection onto the edge.
                var s = length2 > 0 ? Math.Clamp(((x - ax) * ex + (y - ay) * ey + (z - az) * ez) / length2, 0, 1) : 0;
                for (var k = 0; k < 3; k++)
                {
                    _color[3 * a + k] += s * (_color[3 * b + k] - _color[3 * a + k]);
                }
            }
            (_position[3 * a], _position[3 * a + 1], _position[3 * a + 2]) = (x, y, z);
            for (var i = 0; i < 10; i++)
            {
                _quadric[10 * a + i] += _quadric[10 * b + i];
            }
            _border[a] |= _border[b];

            foreach (var t in _trianglesOf[b])
            {
                if (Has(t, a))
                {
                    // The triangle on the edge goes, and leaves the lists of its other two corners.
                    _triangleAlive[t] = false;
                    _liveTriangles--;
                    _trianglesOf[a].Remove(t);
                    _trianglesOf[Third(t, a, b)].Remove(t);
                }
                else
                {
                    for (var k = 0; k < 3; k++)
                    {
                        if (_triangles[3 * t + k] == b)
                        {
                            _triangles[3 * t + k] = a;
                        }
                    }
                    _trianglesOf[a].Add(t);
                }
            }
            _trianglesOf[b].Clear();
            _vertexAlive[b] = false;
            _version[a]++;

            // a's edges have new errors; the queue's old entries for them and for b are now stale.
            _stamp++;
            _neighbours.Clear();
            foreach (var t in _trianglesOf[a])
            {
                for (var k = 0; k < 3; k++)
                {
                    var v = _triangles[3 * t + k];
                    if (v != a && _mark[v] != _stamp)
                    {
                        _mark[v] = _stamp;
                        _neighbours.Add(v);
                    }
                }
            }
            foreach (var v in _neighbours)
            {
                Push(a, v);
            }
        }

        private bool Has(int t, int v) => _triangles[3 * t] == v || _triangles[3 * t + 1] == v || _triangles[3 * t + 2] == v;

        private int Third(int t, int a, int b)
        {
            for (var k = 0; k < 3; k++)
            {
                var v = _triangles[3 * t + k];
                if (v != a && v != b)
                {
                    return v;
                }
            }
            throw new InvalidOperationException("mesh simplification: a triangle repeats a vertex");
        }

        private (int U, int W) Others(int t, int v)
        {
            var k = _triangles[3 * t] == v ? 0 : _triangles[3 * t + 1] == v ? 1 : 2;
            return (_triangles[3 * t + (k + 1) % 3], _triangles[3 * t + (k + 2) % 3]);
        }

        // The live triangles over the vertices they use, in the original order of both.
        public Mesh ToMesh(bool withNormals)
        {
            var positions = new float[_position.Length];
            for (var i = 0; i < positions.Length; i++)
            {
                positions[i] = (float)_position[i];
            }
            float[]? colors = null;
            if (_color is not null)
            {
                colors = new float[_color.Length];
                for (var i = 0; i < colors.Length; i++)
                {
                    colors[i] = (float)Math.Clamp(_color[i], 0, 1);
                }
            }
            var mesh = Mesh.Compacted(positions, _triangles, colors, null, t => _triangleAlive[t]);
            return withNormals ? mesh.ComputeVertexNormals() : mesh;
        }
    }
}
