using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// Writes the density at points (1, n, 3) into <paramref name="density"/> (n values). The density grid calls it in
/// chunks of at most <see cref="DensityGrid.ChunkPoints"/> points.
/// </summary>
internal delegate void DensityFunction(Tensor points, Span<float> density);

/// <summary>A density grid and how it was made. Owns <see cref="Grid"/>.</summary>
/// <param name="Grid">(R, R, R) densities indexed [z][y][x].</param>
/// <param name="Resolution">R, grid points per axis.</param>
/// <param name="PointsEvaluated">Points the density function was evaluated at (R³ for the dense query).</param>
/// <param name="CoarseStride">Fine cells per coarse block edge (0 for the dense query).</param>
/// <param name="Blocks">Coarse blocks in all (0 for the dense query).</param>
/// <param name="BlocksRefined">Coarse blocks evaluated at full resolution (near the surface, dilated by one block).</param>
internal sealed record DensityGridResult(Tensor Grid, int Resolution, long PointsEvaluated, int CoarseStride, long Blocks, long BlocksRefined) : IDisposable
{
    /// <summary>R³: the points a dense query evaluates.</summary>
    public long DensePoints => (long)Resolution * Resolution * Resolution;

    /// <summary>Frees the grid.</summary>
    public void Dispose() => Grid.Dispose();
}

/// <summary>
/// Density of a triplane NeRF (or any <see cref="DensityFunction"/>) on a regular grid over the object box [−1, 1]³,
/// for mesh extraction. Grid points are the corners of R−1 cells per axis (OpenLRM's linspace(−1, 1, R)), and the
/// result is laid out (R, R, R) indexed [z][y][x] — the layout the marching-cubes op reads, so grid index i along an
/// axis is the world coordinate −1 + 2i/(R−1). Points are evaluated in chunks of at most <see cref="ChunkPoints"/>,
/// so memory beyond the result stays bounded.
/// <para>
/// Coarse-to-fine (<see cref="QueryCoarseToFine"/>): the density is first evaluated on every s-th grid point (a coarse
/// grid of ⌈(R−1)/s⌉+1 points per axis; the last one is R−1). A coarse block (s³ fine cells) is refined when the level
/// lies within its corner range widened by that range, [2·min − max, 2·max − min] plus a tiny absolute margin — a
/// smooth field rarely strays further from its corners than they spread — and then every block next to a refined one
/// (26-neighbourhood) is refined too. Refined blocks get the exact density at all their points; the other points get
/// the trilinear interpolation of their block's corners. Every corner of an unrefined block lies strictly on one side
/// of the level and a trilinear interpolation is a convex combination of them, so no cell inside an unrefined block
/// can cross the level: marching cubes finds exactly the crossings inside refined blocks, from exact values, and the
/// mesh equals the dense one unless the surface enters a block the coarse test missed: a feature thinner than a block
/// and more than a block away from any detected surface. A trap on the way: a crossing on a face that an unrefined block
/// shares with a refined neighbour — the face points hold the neighbour's exact values, which can cross the level where the block's
/// own corners do not. So after the fine grid is filled, every unrefined block next to a refined one whose boundary
/// values cross the level is refined as well, and its neighbours are checked again, until none is left; only a
/// feature the coarse grid misses entirely can then change the mesh. The shipped model's six examples give
/// byte-identical meshes at 384³.
/// </para>
/// </summary>
internal static class DensityGrid
{
    /// <summary>Points per density evaluation (memory bound of the query itself).</summary>
    public const int ChunkPoints = 1 << 18;

    /// <summary>Default widening of a block's corner range, as a multiple of that range (see the class remarks).</summary>
    public const float DefaultBand = 1f;

    /// <summary>Default coarse stride: the coarse grid is R/4 per axis.</summary>
    public const int DefaultCoarseStride = 4;

    /// <summary>The world coordinate of grid index <paramref name="index"/> on an axis of <paramref name="resolution"/> points.</summary>
    public static float Coordinate(int index, int resolution) => -1f + 2f * index / (resolution - 1);

    /// <summary>σ = softplus(raw₀ − 1) of a triplane NeRF (planes <see cref="TriplaneNerf.Project"/>ed), as a <see cref="DensityFunction"/>.</summary>
    public static DensityFunction Nerf(IBackend backend, TriplaneNerf nerf, ProjectedTriplane planes)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(nerf);
        ArgumentNullException.ThrowIfNull(planes);
        // The grid is laid out on the host: points go to the backend and densities come back per chunk.
        return (points, density) =>
        {
            using var onBackend = backend.Borrow(points);
            var (sigma, rgb) = nerf.Query(backend, planes, onBackend.Tensor);
            using (sigma)
            using (rgb)
            using (var host = backend.BorrowHost(sigma))
            {
                host.Tensor.AsSpan<float>().CopyTo(density);
            }
        };
    }

    /// <summary>
    /// σ = softplus(raw₀ − 1) at every grid point: a new (R, R, R) tensor [z][y][x] of the backend. <paramref name="progress"/>
    /// is called with the fraction done after each slab.
    /// </summary>
    public static Tensor Query(IBackend backend, TriplaneNerf nerf, Tensor channelsLastPlanes, int resolution, Action<double>? progress = null) =>
        QueryDense(backend, nerf, channelsLastPlanes, resolution, progress).Grid;

    /// <summary>
    /// <see cref="QueryDense(DensityFunction, int, Action{double}?)"/> of a triplane NeRF where the backend computes: the
    /// points of each slab of whole z-planes are made there (<see cref="IBackend.GridPoints"/>) and the densities copied
    /// into a grid there, so on a GPU nothing crosses the bus; on the CPU the values equal the host path's.
    /// </summary>
    public static DensityGridResult QueryDense(IBackend backend, TriplaneNerf nerf, Tensor channelsLastPlanes, int resolution, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(nerf);
        CheckResolution(resolution); // before the projection's work
        using var projected = nerf.Project(backend, channelsLastPlanes);
        return QueryDense(backend, nerf, projected, resolution, progress);
    }

    /// <summary><see cref="QueryDense(IBackend, TriplaneNerf, Tensor, int, Action{double}?)"/> of planes already <see cref="TriplaneNerf.Project"/>ed.</summary>
    public static DensityGridResult QueryDense(IBackend backend, TriplaneNerf nerf, ProjectedTriplane projected, int resolution, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(nerf);
        ArgumentNullException.ThrowIfNull(projected);
        var (plane, slab) = Slabs(resolution);
        var grid = backend.Empty([resolution, resolution, resolution]);
        try
        {
            for (var z0 = 0; z0 < resolution; z0 += slab)
            {
                var planes = Math.Min(slab, resolution - z0);
                using var scratch = new ScratchTensors(backend);
                var points = scratch.Empty(1, planes * plane, 3);
                backend.GridPoints(points, resolution, z0 * plane);
                var raw = scratch.Adopt(nerf.QueryRaw(backend, projected, points));
                var sigma = scratch.Empty(1, planes * plane, 1);
                backend.NerfDecode(sigma, null, raw);
                backend.Copy(grid, z0 * plane, sigma, 0, planes * plane);
                progress?.Invoke((double)(z0 + planes) / resolution);
            }
            return new DensityGridResult(grid, resolution, plane * resolution, 0, 0, 0);
        }
        catch
        {
            grid.Dispose();
            throw;
        }
    }

    // Points per z-plane and whole z-planes per slab (a slab stays within ChunkPoints unless one plane exceeds it).
    private static (long Plane, int Slab) Slabs(int resolution)
    {
        CheckResolution(resolution);
        var plane = (long)resolution * resolution;
        return (plane, (int)Math.Max(1, ChunkPoints / plane));
    }

    /// <summary>The density at every grid point (R³ evaluations), in slabs of whole z-planes.</summary>
    public static DensityGridResult QueryDense(DensityFunction density, int resolution, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(density);
        var (plane, slab) = Slabs(resolution);
        var grid = Tensor.Empty([resolution, resolution, resolution]);
        try
        {
            var output = grid.AsSpan<float>();
            for (var z0 = 0; z0 < resolution; z0 += slab)
            {
                var planes = Math.Min(slab, resolution - z0);
                using var points = Tensor.Empty([1, planes * plane, 3]);
                var p = points.AsSpan<float>();
                var n = 0;
                for (var z = z0; z < z0 + planes; z++)
                {
                    var wz = Coordinate(z, resolution);
                    for (var y = 0; y < resolution; y++)
                    {
                        var wy = Coordinate(y, resolution);
                        for (var x = 0; x < resolution; x++)
                        {
                            p[n++] = Coordinate(x, resolution);
                            p[n++] = wy;
                            p[n++] = wz;
                        }
                    }
                }
                density(points, output.Slice((int)(z0 * plane), (int)(planes * plane)));
                progress?.Invoke((double)(z0 + planes) / resolution);
            }
            return new DensityGridResult(grid, resolution, (long)resolution * resolution * resolution, 0, 0, 0);
        }
        catch
        {
            grid.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The grid of <see cref="QueryDense(DensityFunction, int, Action{double}?)"/>, evaluating the full resolution only near the <paramref name="level"/>
    /// surface (see the class remarks); <paramref name="stride"/> fine cells per coarse block edge (≥ 2).
    /// <paramref name="progress"/> gets the fraction done.
    /// </summary>
    public static DensityGridResult QueryCoarseToFine(DensityFunction density, int resolution, float level, int stride = DefaultCoarseStride,
        Action<double>? progress = null, float band = DefaultBand)
    {
        ArgumentNullException.ThrowIfNull(density);
        CheckResolution(resolution);
        if (stride < 2)
        {
            throw new LrmInvalidArgumentException($"coarse-to-fine grid query: the coarse stride must be >= 2, got {stride}");
        }
        if (!float.IsFinite(level))
        {
            throw new LrmInvalidArgumentException($"coarse-to-fine grid query: the level must be finite, got {level}");
        }
        var coarseCount = (resolution - 1 + stride - 1) / stride + 1; // coarse points per axis
        if (coarseCount < 3)
        {
            // One coarse block per axis: nothing to save.
            return QueryDense(density, resolution, progress);
        }
        var coarseIndex = new int[coarseCount];
        for (var i = 0; i < coarseCount; i++)
        {
            coarseIndex[i] = Math.Min(i * stride, resolution - 1);
        }
        var blocks = coarseCount - 1;

        // 1. The coarse grid, exact.
        var coarse = new float[(long)coarseCount * coarseCount * coarseCount];
        var evaluated = EvaluateCoarse(density, coarse, coarseIndex, resolution);
        progress?.Invoke(0.1);

        // 2. Blocks near the level, dilated by one block.
        var near = new bool[blocks * blocks * blocks];
        var margin = 1e-6f * (Math.Abs(level) + 1f);
        for (var bz = 0; bz < blocks; bz++)
        {
            for (var by = 0; by < blocks; by++)
            {
                for (var bx = 0; bx < blocks; bx++)
                {
                    float low = float.PositiveInfinity, high = float.NegativeInfinity;
                    for (var corner = 0; corner < 8; corner++)
                    {
                        var v = coarse[((bz + (corner >> 2)) * coarseCount + by + ((corner >> 1) & 1)) * coarseCount + bx + (corner & 1)];
                        low = MathF.Min(low, v);
                        high = MathF.Max(high, v);
                    }
                    var spread = band * (high - low);
                    // NaN corners fail both tests below and so are refined: the exact values decide.
                    near[(bz * blocks + by) * blocks + bx] = !(level < low - spread - margin) && !(level > high + spread + margin);
                }
            }
        }
        var refined = Dilate(near, blocks);
        long refinedCount = refined.Count(r => r);

        // 3. The fine grid: coarse points copied, refined blocks evaluated, the rest interpolated.
        // Per axis, the (up to two) blocks holding each fine index and its position inside the first.
        var blockOf = new int[resolution];
        var lowerBlock = new int[resolution];
        var weight = new float[resolution];
        var isCoarse = new bool[resolution];
        for (var i = 0; i < resolution; i++)
        {
            var b = Math.Min(i / stride, blocks - 1);
            blockOf[i] = b;
            lowerBlock[i] = i == coarseIndex[b] && b > 0 ? b - 1 : b;
            weight[i] = (float)(i - coarseIndex[b]) / (coarseIndex[b + 1] - coarseIndex[b]);
            isCoarse[i] = i == coarseIndex[b] || i == coarseIndex[b + 1];
        }
        var grid = Tensor.Empty([resolution, resolution, resolution]);
        try
        {
            var values = grid.AsSpan<float>();
            using var batch = new PointBatch(density, grid);
            for (var z = 0; z < resolution; z++)
            {
                var wz = Coordinate(z, resolution);
                int bz = blockOf[z], bz0 = lowerBlock[z];
                var tz = weight[z];
                for (var y = 0; y < resolution; y++)
                {
                    var wy = Coordinate(y, resolution);
                    int by = blockOf[y], by0 = lowerBlock[y];
                    var ty = weight[y];
                    var row = ((long)z * resolution + y) * resolution;
                    for (var x = 0; x < resolution; x++)
                    {
                        int bx = blockOf[x], bx0 = lowerBlock[x];
                        if (isCoarse[x] && isCoarse[y] && isCoarse[z])
                        {
                            values[(int)(row + x)] = coarse[((CoarsePosition(z, bz, coarseIndex) * coarseCount) + CoarsePosition(y, by, coarseIndex)) * coarseCount + CoarsePosition(x, bx, coarseIndex)];
                        }
                        else if (AnyRefined(refined, blocks, bx0, bx, by0, by, bz0, bz))
                        {
                            batch.Add(row + x, Coordinate(x, resolution), wy, wz);
                        }
                        else
                        {
                            values[(int)(row + x)] = Trilinear(coarse, coarseCount, bx, by, bz, weight[x], ty, tz);
                        }
                    }
                }
                if ((z & 7) == 7)
                {
                    progress?.Invoke(0.1 + 0.9 * (z + 1) / resolution);
                }
            }
            batch.Flush();

            // 4. An unrefined block next to a refined one holds the neighbour's exact values on their shared face (and
            // edge and corner points). Where such a value lies on the other side of the level from the block's corners,
            // a cell of the block would cross the level from mixed exact and interpolated values: the block is refined
            // too (all its points exact) and its unrefined neighbours are looked at again, until none is left.
            var candidates = UnrefinedNeighbours(refined, blocks, Enumerable.Range(0, refined.Length).Where(b => refined[b]));
            while (candidates.Count > 0)
            {
                var crossing = new List<int>();
                foreach (var b in candidates)
                {
                    if (FaceCrossesLevel(grid.AsSpan<float>(), coarse, coarseIndex, resolution, blocks, b, level))
                    {
                        crossing.Add(b);
                    }
                }
                foreach (var b in crossing)
                {
                    refined[b] = true;
                    EvaluateBlock(batch, coarseIndex, resolution, blocks, b);
                }
                batch.Flush();
                refinedCount += crossing.Count;
                candidates = UnrefinedNeighbours(refined, blocks, crossing);
            }
            evaluated += batch.Evaluated;
            progress?.Invoke(1.0);
            return new DensityGridResult(grid, resolution, evaluated, stride, (long)blocks * blocks * blocks, refinedCount);
        }
        catch
        {
            grid.Dispose();
            throw;
        }
    }

    private static void CheckResolution(int resolution)
    {
        if (resolution < 2 || resolution > 1024)
        {
            throw new LrmInvalidArgumentException($"grid resolution must be in [2, 1024], got {resolution}");
        }
    }

    // Coarse grid values at the fine indices coarseIndex[i] (all three axes), evaluated in chunks.
    private static long EvaluateCoarse(DensityFunction density, float[] coarse, int[] coarseIndex, int resolution)
    {
        var count = coarseIndex.Length;
        var plane = (long)count * count;
        var slab = (int)Math.Max(1, ChunkPoints / plane);
        for (var z0 = 0; z0 < count; z0 += slab)
        {
            var planes = Math.Min(slab, count - z0);
            using var points = Tensor.Empty([1, planes * plane, 3]);
            var p = points.AsSpan<float>();
            var n = 0;
            for (var z = z0; z < z0 + planes; z++)
            {
                for (var y = 0; y < count; y++)
                {
                    for (var x = 0; x < count; x++)
                    {
                        p[n++] = Coordinate(coarseIndex[x], resolution);
                        p[n++] = Coordinate(coarseIndex[y], resolution);
                        p[n++] = Coordinate(coarseIndex[z], resolution);
                    }
                }
            }
            density(points, coarse.AsSpan((int)(z0 * plane), (int)(planes * plane)));
        }
        return plane * count;
    }

    // The coarse position of fine index i, which is a coarse point of block b (its lower or upper corner).
    // Block b's (x, y, z) in a blocks³ grid of coarse blocks, x fastest.
    private static (int X, int Y, int Z) BlockCoordinates(int b, int blocks) => (b % blocks, b / blocks % blocks, b / (blocks * blocks));

    // The unrefined blocks in the 26-neighbourhoods of the given blocks, in block order.
    private static List<int> UnrefinedNeighbours(bool[] refined, int blocks, IEnumerable<int> sources)
    {
        var found = new SortedSet<int>();
        foreach (var b in sources)
        {
            var (bx, by, bz) = BlockCoordinates(b, blocks);
            for (var z = Math.Max(0, bz - 1); z <= Math.Min(blocks - 1, bz + 1); z++)
            {
                for (var y = Math.Max(0, by - 1); y <= Math.Min(blocks - 1, by + 1); y++)
                {
                    for (var x = Math.Max(0, bx - 1); x <= Math.Min(blocks - 1, bx + 1); x++)
                    {
                        var n = (z * blocks + y) * blocks + x;
                        if (!refined[n])
                        {
                            found.Add(n);
                        }
                    }
                }
            }
        }
        return [.. found];
    }

    // Whether a fine point on the boundary of unrefined block b is NaN or on the other side of the level (marching
    // cubes' inside: value > level) from the block's corners, which all lie on one side.
    private static bool FaceCrossesLevel(Span<float> values, float[] coarse, int[] coarseIndex, int resolution, int blocks, int b, float level)
    {
        var (bx, by, bz) = BlockCoordinates(b, blocks);
        var count = coarseIndex.Length;
        var inside = coarse[(bz * count + by) * count + bx] > level;
        int x0 = coarseIndex[bx], x1 = coarseIndex[bx + 1], y0 = coarseIndex[by], y1 = coarseIndex[by + 1], z0 = coarseIndex[bz], z1 = coarseIndex[bz + 1];
        for (var z = z0; z <= z1; z++)
        {
            var zFace = z == z0 || z == z1;
            for (var y = y0; y <= y1; y++)
            {
                var yFace = zFace || y == y0 || y == y1;
                var row = ((long)z * resolution + y) * resolution;
                for (var x = x0; x <= x1; x++)
                {
                    if (!yFace && x != x0 && x != x1)
                    {
                        continue;
                    }
                    var v = values[(int)(row + x)];
                    if (float.IsNaN(v) || (v > level) != inside)
                    {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    // Queues every point of block b that is not a coarse point (those are exact already) for exact evaluation.
    private static void EvaluateBlock(PointBatch batch, int[] coarseIndex, int resolution, int blocks, int b)
    {
        var (bx, by, bz) = BlockCoordinates(b, blocks);
        for (var z = coarseIndex[bz]; z <= coarseIndex[bz + 1]; z++)
        {
            for (var y = coarseIndex[by]; y <= coarseIndex[by + 1]; y++)
            {
                var row = ((long)z * resolution + y) * resolution;
                for (var x = coarseIndex[bx]; x <= coarseIndex[bx + 1]; x++)
                {
                    var coarsePoint = (x == coarseIndex[bx] || x == coarseIndex[bx + 1]) && (y == coarseIndex[by] || y == coarseIndex[by + 1])
                        && (z == coarseIndex[bz] || z == coarseIndex[bz + 1]);
                    if (!coarsePoint)
                    {
                        batch.Add(row + x, Coordinate(x, resolution), Coordinate(y, resolution), Coordinate(z, resolution));
                    }
                }
            }
        }
    }

    private static int CoarsePosition(int i, int b, int[] coarseIndex) => i == coarseIndex[b] ? b : b + 1;

    private static bool AnyRefined(bool[] refined, int blocks, int x0, int x1, int y0, int y1, int z0, int z1)
    {
        for (var z = z0; z <= z1; z++)
        {
            for (var y = y0; y <= y1; y++)
            {
                for (var x = x0; x <= x1; x++)
                {
                    if (refined[(z * blocks + y) * blocks + x])
                    {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    private static float Trilinear(float[] coarse, int count, int bx, int by, int bz, float tx, float ty, float tz)
    {
        float At(int dx, int dy, int dz) => coarse[((bz + dz) * count + by + dy) * count + bx + dx];
        var c00 = At(0, 0, 0) + tx * (At(1, 0, 0) - At(0, 0, 0));
        var c10 = At(0, 1, 0) + tx * (At(1, 1, 0) - At(0, 1, 0));
        var c01 = At(0, 0, 1) + tx * (At(1, 0, 1) - At(0, 0, 1));
        var c11 = At(0, 1, 1) + tx * (At(1, 1, 1) - At(0, 1, 1));
        var c0 = c00 + ty * (c10 - c00);
        var c1 = c01 + ty * (c11 - c01);
        return c0 + tz * (c1 - c0);
    }

    private static bool[] Dilate(bool[] marked, int blocks)
    {
        var result = new bool[marked.Length];
        for (var z = 0; z < blocks; z++)
        {
            for (var y = 0; y < blocks; y++)
            {
                for (var x = 0; x < blocks; x++)
                {
                    if (!marked[(z * blocks + y) * blocks + x])
                    {
                        continue;
                    }
                    for (var dz = Math.Max(0, z - 1); dz <= Math.Min(blocks - 1, z + 1); dz++)
                    {
                        for (var dy = Math.Max(0, y - 1); dy <= Math.Min(blocks - 1, y + 1); dy++)
                        {
                            for (var dx = Math.Max(0, x - 1); dx <= Math.Min(blocks - 1, x + 1); dx++)
                            {
                                result[(dz * blocks + dy) * blocks + dx] = true;
                            }
                        }
                    }
                }
            }
        }
        return result;
    }

    // Points gathered for exact evaluation, ChunkPoints at a time, scattered into the grid by flat index.
    private sealed class PointBatch(DensityFunction density, Tensor grid) : IDisposable
    {
        private readonly Tensor _points = Tensor.Empty([1, ChunkPoints, 3]);
        private readonly long[] _targets = new long[ChunkPoints];
        private readonly float[] _values = new float[ChunkPoints];
        private int _count;

        public long Evaluated { get; private set; }

        public void Add(long target, float x, float y, float z)
        {
            var p = _points.AsSpan<float>();
            p[3 * _count] = x;
            p[3 * _count + 1] = y;
            p[3 * _count + 2] = z;
            _targets[_count++] = target;
            if (_count == ChunkPoints)
            {
                Flush();
            }
        }

        public void Flush()
        {
            if (_count == 0)
            {
                return;
            }
            var grid1 = grid.AsSpan<float>();
            if (_count == ChunkPoints)
            {
                density(_points, _values);
            }
            else
            {
                using var part = Tensor.Empty([1, _count, 3]);
                _points.AsSpan<float>()[..(3 * _count)].CopyTo(part.AsSpan<float>());
                density(part, _values.AsSpan(0, _count));
            }
            for (var i = 0; i < _count; i++)
            {
                grid1[(int)_targets[i]] = _values[i];
            }
            Evaluated += _count;
            _count = 0;
        }

        public void Dispose() => _points.Dispose();
    }
}
