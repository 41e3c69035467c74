using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>Rendered images: rgb (B, H, W, 3), depth (B, H, W, 1), opacity (B, H, W, 1). Owns its tensors.</summary>
/// <param name="Rgb">Colour composited over the background.</param>
/// <param name="Depth">Expected ray termination depth, clamped to the sampled range.</param>
/// <param name="Opacity">Accumulated weight Σw.</param>
internal sealed record RenderResult(Tensor Rgb, Tensor Depth, Tensor Opacity) : IDisposable
{
    /// <summary>Frees the three images.</summary>
    public void Dispose()
    {
        Rgb.Dispose();
        Depth.Dispose();
        Opacity.Dispose();
    }
}

/// <summary>
/// LRM's volume renderer in deterministic mode (OpenLRM v1.1's ImportanceRenderer without jitter and with
/// det=True importance sampling; tests/golden/model/README.md is the specification): one ray per pixel centre,
/// Nc coarse samples evenly spaced over the ray's span inside [−1, 1]³, Nc − 1 intervals composited with the
/// midpoint rule, Nf importance samples from the coarse weights, then all Nc + Nf samples composited over
/// the background. Rays are processed in chunks so memory stays bounded at any resolution.
/// </summary>
internal sealed class VolumeRenderer
{
    /// <summary>Rays per chunk (default 2048): bounds the sample buffers at any resolution.</summary>
    public int ChunkRays { get; init; } = 2048;

    /// <summary>
    /// Query the NeRF linear first (default; <see cref="TriplaneNerf.Project"/>, planes projected once per image), or, when
    /// false, through the concatenated features as training does, so a render equals the training forward bit for bit.
    /// </summary>
    public bool LinearFirst { get; init; } = true;

    /// <summary>A renderer of <paramref name="nerf"/> with Nc = Nf = samplesPerRay / 2.</summary>
    public VolumeRenderer(TriplaneNerf nerf, int samplesPerRay)
    {
        ArgumentNullException.ThrowIfNull(nerf);
        if (samplesPerRay < 8 || samplesPerRay % 2 != 0)
        {
            throw new LrmInvalidArgumentException($"renderer: samples per ray must be even and >= 8, got {samplesPerRay}");
        }
        Nerf = nerf;
        CoarseSamples = samplesPerRay / 2;
        FineSamples = samplesPerRay / 2;
    }

    /// <summary>The NeRF the renderer queries.</summary>
    public TriplaneNerf Nerf { get; }

    /// <summary>Evenly spaced samples per ray.</summary>
    public int CoarseSamples { get; }

    /// <summary>Importance samples per ray.</summary>
    public int FineSamples { get; }

    /// <summary>
    /// Renders channels-last planes (B, 3, H, W, C) from cameras (B, 25) (4×4 camera-to-world, OpenGL convention,
    /// then 3×3 normalised intrinsics) at height×width, over <paramref name="background"/> (3 values; white if empty).
    /// <paramref name="projected"/>: the one image's planes already <see cref="TriplaneNerf.Project"/>ed (a reconstruction
    /// rendering many views keeps them), else they are projected here, once per image.
    /// </summary>
    public RenderResult Render(IBackend backend, Tensor planes, Tensor cameras, int height, int width, ReadOnlySpan<float> background = default,
        ProjectedTriplane? projected = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(planes);
        ArgumentNullException.ThrowIfNull(cameras);
        if (cameras.Rank != 2 || cameras.Size(1) != 25 || cameras.Size(0) != planes.Size(0))
        {
            throw new LrmShapeException($"renderer: cameras must be ({planes.Size(0)}, 25) for planes {planes.ShapeText}, got {cameras.ShapeText}");
        }
        if (projected is not null && (planes.Size(0) != 1 || !LinearFirst))
        {
            throw new LrmInvalidArgumentException($"renderer: projected planes are for one image rendered linear first, got planes {planes.ShapeText}");
        }
        Span<float> white = [1f, 1f, 1f];
        var backgroundColor = background.IsEmpty ? white : background;
        long batch = planes.Size(0), rays = (long)height * width;
        var rgb = backend.Empty([batch, height, width, 3]);
        var depth = backend.Empty([batch, height, width, 1]);
        var opacity = backend.Empty([batch, height, width, 1]);
        var result = new RenderResult(rgb, depth, opacity);
        try
        {
            using var scratch = new ScratchTensors(backend);
            var origins = scratch.Empty(batch, rays, 3);
            var directions = scratch.Empty(batch, rays, 3);
            var coarse = scratch.Empty(batch, rays, CoarseSamples);
            var depthRange = scratch.Empty(batch, 2);
            backend.RenderRays(origins, directions, coarse, depthRange, cameras, height, width);
            var planeSize = planes.ElementCount / batch;
            var imagePlanes = batch == 1 ? planes : scratch.Empty([1, .. planes.Shape[1..]]);
            var imageRange = batch == 1 ? depthRange : scratch.Empty(1, 2);
            for (long b = 0; b < batch; b++)
            {
                if (batch > 1)
                {
                    backend.Copy(imagePlanes, 0, planes, b * planeSize, planeSize);
                    backend.Copy(imageRange, 0, depthRange, 2 * b, 2);
                }
                using var own = LinearFirst && projected is null ? Nerf.Project(backend, imagePlanes) : null;
                var imageProjected = projected ?? own;
                for (long start = 0; start < rays; start += ChunkRays)
                {
                    var count = Math.Min(ChunkRays, rays - start);
                    RenderChunk(backend, result, imagePlanes, imageProjected, imageRange, origins, directions, coarse, b * rays + start, count, backgroundColor);
                }
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    // Rays [first, first + count) of the flattened (B·R) ray list, all of one image.
    private void RenderChunk(IBackend backend, RenderResult result, Tensor planes, ProjectedTriplane? projected, Tensor depthRange, Tensor origins,
        Tensor directions, Tensor coarseDepths, long first, long count, ReadOnlySpan<float> background)
    {
        using var scratch = new ScratchTensors(backend);
        var chunkOrigins = scratch.Empty(1, count, 3);
        var chunkDirections = scratch.Empty(1, count, 3);
        var coarse = scratch.Empty(1, count, CoarseSamples);
        backend.Copy(chunkOrigins, 0, origins, first * 3, count * 3);
        backend.Copy(chunkDirections, 0, directions, first * 3, count * 3);
        backend.Copy(coarse, 0, coarseDepths, first * CoarseSamples, count * CoarseSamples);

        // Coarse pass: its weights drive the importance samples.
        var coarseSamples = Decode(backend, scratch, planes, projected, chunkOrigins, chunkDirections, coarse);
        var weights = scratch.Empty(1, count, CoarseSamples - 1);
        backend.RenderMarch(null, null, null, weights, coarse, coarseSamples, null, null, background, null);
        var fine = scratch.Empty(1, count, FineSamples);
        backend.RenderImportance(fine, coarse, weights);

        // Fine pass, then both sets merged by depth and composited.
        var fineSamples = Decode(backend, scratch, planes, projected, chunkOrigins, chunkDirections, fine);
        var rgb = scratch.Empty(1, count, 3);
        var depth = scratch.Empty(1, count);
        var opacity = scratch.Empty(1, count);
        backend.RenderMarch(rgb, depth, opacity, null, coarse, coarseSamples, fine, fineSamples, background, depthRange);
        backend.Copy(result.Rgb, first * 3, rgb, 0, count * 3);
        backend.Copy(result.Depth, first, depth, 0, count);
        backend.Copy(result.Opacity, first, opacity, 0, count);
    }

    // Decoded samples (1, n·S, 4) = [σ_raw, rgb] (box mask applied) at depths (1, n, S) along the rays.
    private Tensor Decode(IBackend backend, ScratchTensors scratch, Tensor planes, ProjectedTriplane? projected, Tensor origins, Tensor directions,
        Tensor depths)
    {
        var samples = depths.Size(1) * depths.Size(2);
        var points = scratch.Empty(1, samples, 3);
        backend.RenderPoints(points, origins, directions, depths);
        var raw = scratch.Empty(1, samples, 4);
        if (projected is not null)
        {
            Nerf.QueryRawInto(backend, raw, projected, points);
        }
        else
        {
            Nerf.QueryRawTraining(backend, scratch.Empty(1, samples, 3 * Nerf.Channels), raw, planes, points);
        }
        var decoded = scratch.Empty(1, samples, 4);
        backend.RenderDecode(decoded, raw, points);
        return decoded;
    }
}
