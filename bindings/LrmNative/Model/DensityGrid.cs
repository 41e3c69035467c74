using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// Dense density query of a triplane NeRF on a regular grid over the object box [−1, 1]³, for mesh
/// extraction. Grid points are the corners of R−1 cells per axis (OpenLRM's linspace(−1, 1, R)), and the
/// result is laid out (R, R, R) indexed [z][y][x] — the layout the marching-cubes op reads, so grid index
/// i along an axis is the world coordinate −1 + 2i/(R−1). Points are evaluated in slabs of whole z-planes,
/// so memory beyond the result stays bounded by <see cref="ChunkPoints"/> points.
/// </summary>
internal static class DensityGrid
{
    /// <summary>Points per NeRF evaluation (memory bound of the query itself).</summary>
    public const int ChunkPoints = 1 << 18;

    /// <summary>The world coordinate of grid index <paramref name="index"/> on an axis of <paramref name="resolution"/> points.</summary>
    public static float Coordinate(int index, int resolution) => -1f + 2f * index / (resolution - 1);

    /// <summary>
    /// σ = softplus(raw₀ − 1) at every grid point: a new (R, R, R) tensor [z][y][x]. <paramref name="progress"/>
    /// is called with the fraction done after each slab.
    /// </summary>
    public static Tensor Query(IBackend backend, TriplaneNerf nerf, Tensor channelsLastPlanes, int resolution, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(nerf);
        if (resolution < 2 || resolution > 1024)
        {
            throw new LrmInvalidArgumentException($"grid resolution must be in [2, 1024], got {resolution}");
        }
        var plane = (long)resolution * resolution;
        var slab = (int)Math.Max(1, ChunkPoints / plane);
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
                var (sigma, rgb) = nerf.Query(backend, channelsLastPlanes, points);
                using (sigma)
                using (rgb)
                {
                    sigma.AsSpan<float>().CopyTo(output.Slice((int)(z0 * plane), (int)(planes * plane)));
                }
                progress?.Invoke((double)(z0 + planes) / resolution);
            }
            return grid;
        }
        catch
        {
            grid.Dispose();
            throw;
        }
    }
}
