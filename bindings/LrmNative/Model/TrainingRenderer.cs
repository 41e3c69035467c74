using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// The training side of <see cref="VolumeRenderer"/>: renders a view of one sample's planes and back-propagates
/// image-space gradients (∂L/∂rgb, ∂L/∂opacity) into the NeRF MLP's parameters and the planes, in chunks of
/// <see cref="ChunkRays"/> rays. Two ways (docs/training.md, "Deferred back-propagation"):
/// <list type="bullet">
/// <item>kept: the forward keeps every chunk's activations (sample points, triplane features, raw MLP outputs,
/// decoded samples) until the backward — memory grows with the rendered pixels;</item>
/// <item>deferred (ARF, Zhang et al. 2022): the forward is the inference renderer, which keeps nothing; the
/// backward re-renders each chunk with activations, back-propagates its slice of the image gradient and frees it
/// before the next, so activation memory is one chunk's whatever the resolution. The renderer is deterministic, so
/// the re-render equals the first render and the gradient is the same.</item>
/// </list>
/// As in OpenLRM, the importance (fine) depths come from the coarse weights without gradient: gradients reach the
/// NeRF only through σ and rgb of the coarse and fine samples in the final composite. Depth gets no gradient.
/// </summary>
internal sealed class TrainingRenderer
{
    private long _liveActivations;

    /// <summary>A training renderer over <paramref name="renderer"/> (same NeRF and sample counts).</summary>
    public TrainingRenderer(VolumeRenderer renderer)
    {
        ArgumentNullException.ThrowIfNull(renderer);
        Renderer = renderer;
        ChunkRays = renderer.ChunkRays;
    }

    /// <summary>The inference renderer (the deferred forward).</summary>
    public VolumeRenderer Renderer { get; }

    /// <summary>Rays per chunk of the training passes (and of the deferred forward).</summary>
    public int ChunkRays { get; init; }

    /// <summary>Most fp32 activation elements held at once since construction or <see cref="ResetPeak"/>.</summary>
    public long PeakActivationElements { get; private set; }

    /// <summary>Restarts <see cref="PeakActivationElements"/>.</summary>
    public void ResetPeak() => PeakActivationElements = _liveActivations;

    /// <summary>
    /// Renders one view of channels-last <paramref name="planes"/> (1, 3, H, W, C) through <paramref name="camera"/>
    /// (1, 25) at size×size over a grey <paramref name="background"/>; with <paramref name="keepActivations"/> the
    /// chunks' activations stay in the result for <see cref="Backward"/>, otherwise the backward re-renders (deferred).
    /// </summary>
    public RenderedPatch Render(IBackend backend, Tensor planes, Tensor camera, int size, float background, bool keepActivations)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(planes);
        ArgumentNullException.ThrowIfNull(camera);
        if (planes.Rank != 5 || planes.Size(0) != 1 || camera.Rank != 2 || camera.Size(0) != 1 || camera.Size(1) != 25)
        {
            throw new LrmShapeException($"training renderer: one view at a time — planes (1, 3, H, W, C) and camera (1, 25), got {planes.ShapeText} and {camera.ShapeText}");
        }
        var view = new RenderedPatch(backend, planes, camera, size, background);
        try
        {
            if (!keepActivations)
            {
                var renderer = new VolumeRenderer(Renderer.Nerf, Renderer.CoarseSamples + Renderer.FineSamples) { ChunkRays = ChunkRays, LinearFirst = false };
                using var render = renderer.Render(backend, planes, camera, size, size, view.Background);
                backend.Copy(view.Rgb, 0, render.Rgb, 0, render.Rgb.ElementCount);
                backend.Copy(view.Opacity, 0, render.Opacity, 0, render.Opacity.ElementCount);
                return view;
            }
            view.Chunks = [];
            using var rays = RayScratch(backend, camera, size);
            for (long start = 0; start < rays.Count; start += ChunkRays)
            {
                var chunk = ForwardChunk(backend, planes, rays, start, Math.Min(ChunkRays, rays.Count - start), view.Background);
                view.Chunks.Add(chunk);
                backend.Copy(view.Rgb, start * 3, chunk.Rgb, 0, chunk.Count * 3);
                backend.Copy(view.Opacity, start, chunk.Opacity, 0, chunk.Count);
            }
            return view;
        }
        catch
        {
            view.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Back-propagates ∂L/∂rgb (1, s, s, 3) and ∂L/∂opacity (1, s, s, 1) of <paramref name="view"/>: the NeRF's
    /// parameter gradients accumulate into <paramref name="gradients"/>, ∂L/∂planes (channels-last, like the view's
    /// planes) is added to <paramref name="gradPlanes"/>. A deferred view is re-rendered chunk by chunk here.
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradPlanes, RenderedPatch view, Tensor gradRgb, Tensor gradOpacity)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradPlanes);
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(gradRgb);
        ArgumentNullException.ThrowIfNull(gradOpacity);
        if (gradRgb.ElementCount != view.Rgb.ElementCount || gradOpacity.ElementCount != view.Opacity.ElementCount)
        {
            throw new LrmShapeException($"training renderer: gradients {gradRgb.ShapeText} and {gradOpacity.ShapeText} do not match the view {view.Rgb.ShapeText}");
        }
        if (view.Chunks is not null)
        {
            foreach (var chunk in view.Chunks)
            {
                BackwardChunk(backend, gradients, gradPlanes, view, chunk, gradRgb, gradOpacity);
            }
            return;
        }
        using var rays = RayScratch(backend, view.Camera, view.Size);
        for (long start = 0; start < rays.Count; start += ChunkRays)
        {
            using var chunk = ForwardChunk(backend, view.Planes, rays, start, Math.Min(ChunkRays, rays.Count - start), view.Background);
            BackwardChunk(backend, gradients, gradPlanes, view, chunk, gradRgb, gradOpacity);
        }
    }

    // Rays of a size×size view (origins, directions, coarse depths, the image's depth range): camera-only, no activations.
    private ViewRays RayScratch(IBackend backend, Tensor camera, int size)
    {
        var rays = new ViewRays(backend, (long)size * size, Renderer.CoarseSamples);
        try
        {
            backend.RenderRays(rays.Origins, rays.Directions, rays.Coarse, rays.DepthRange, camera, size, size);
            return rays;
        }
        catch
        {
            rays.Dispose();
            throw;
        }
    }

    // The forward of rays [first, first + count) with every activation the backward needs (VolumeRenderer.RenderChunk's steps).
    private RenderChunkActivations ForwardChunk(IBackend backend, Tensor planes, ViewRays rays, long first, long count, float[] background)
    {
        int nc = Renderer.CoarseSamples, nf = Renderer.FineSamples;
        var featureWidth = 3 * Renderer.Nerf.Channels;
        var chunk = new RenderChunkActivations(this, backend, first, count);
        try
        {
            var s = chunk.Saved;
            using var scratch = new ScratchTensors(backend);
            var origins = scratch.Empty(1, count, 3);
            var directions = scratch.Empty(1, count, 3);
            backend.Copy(origins, 0, rays.Origins, first * 3, count * 3);
            backend.Copy(directions, 0, rays.Directions, first * 3, count * 3);
            chunk.CoarseDepths = s.Empty(1, count, nc);
            backend.Copy(chunk.CoarseDepths, 0, rays.Coarse, first * nc, count * nc);
            chunk.Coarse = DecodeTraining(backend, s, planes, origins, directions, chunk.CoarseDepths, featureWidth);
            var weights = scratch.Empty(1, count, nc - 1);
            backend.RenderMarch(null, null, null, weights, chunk.CoarseDepths, chunk.Coarse.Decoded, null, null, background, null);
            chunk.FineDepths = s.Empty(1, count, nf);
            backend.RenderImportance(chunk.FineDepths, chunk.CoarseDepths, weights);
            chunk.Fine = DecodeTraining(backend, s, planes, origins, directions, chunk.FineDepths, featureWidth);
            chunk.DepthRange = s.Empty(1, 2);
            backend.Copy(chunk.DepthRange, 0, rays.DepthRange, 0, 2);
            chunk.Rgb = s.Empty(1, count, 3);
            chunk.Opacity = s.Empty(1, count);
            var depth = scratch.Empty(1, count);
            backend.RenderMarch(chunk.Rgb, depth, chunk.Opacity, null, chunk.CoarseDepths, chunk.Coarse.Decoded, chunk.FineDepths, chunk.Fine.Decoded, background, chunk.DepthRange);
            chunk.Register();
            return chunk;
        }
        catch
        {
            chunk.Dispose();
            throw;
        }
    }

    private SampleSet DecodeTraining(IBackend backend, ScratchTensors saved, Tensor planes, Tensor origins, Tensor directions, Tensor depths, long featureWidth)
    {
        var samples = depths.Size(1) * depths.Size(2);
        var set = new SampleSet(saved.Empty(1, samples, 3), saved.Empty(1, samples, featureWidth), saved.Empty(1, samples, 4), saved.Empty(1, samples, 4));
        backend.RenderPoints(set.Points, origins, directions, depths);
        Renderer.Nerf.QueryRawTraining(backend, set.Features, set.Raw, planes, set.Points);
        backend.RenderDecode(set.Decoded, set.Raw, set.Points);
        return set;
    }

    private void BackwardChunk(IBackend backend, GradientSet gradients, Tensor gradPlanes, RenderedPatch view, RenderChunkActivations chunk, Tensor gradRgb, Tensor gradOpacity)
    {
        using var scratch = new ScratchTensors(backend);
        var chunkRgb = scratch.Empty(1, chunk.Count, 3);
        var chunkOpacity = scratch.Empty(1, chunk.Count);
        backend.Copy(chunkRgb, 0, gradRgb, chunk.First * 3, chunk.Count * 3);
        backend.Copy(chunkOpacity, 0, gradOpacity, chunk.First, chunk.Count);
        var gradCoarse = scratch.Empty(chunk.Coarse.Decoded.Shape);
        var gradFine = scratch.Empty(chunk.Fine.Decoded.Shape);
        backend.RenderMarchBackward(gradCoarse, gradFine, chunkRgb, null, chunkOpacity, chunk.CoarseDepths, chunk.Coarse.Decoded,
            chunk.FineDepths, chunk.Fine.Decoded, view.Background, chunk.DepthRange);
        foreach (var (set, gradDecoded) in new[] { (chunk.Coarse, gradCoarse), (chunk.Fine, gradFine) })
        {
            var gradRaw = scratch.Empty(set.Raw.Shape);
            backend.RenderDecodeBackward(gradRaw, gradDecoded, set.Raw, set.Points);
            Renderer.Nerf.BackwardRaw(backend, gradients, gradPlanes, gradRaw, set.Features, view.Planes, set.Points);
        }
    }

    internal void Track(long elements)
    {
        _liveActivations += elements;
        PeakActivationElements = Math.Max(PeakActivationElements, _liveActivations);
    }

    private sealed class ViewRays(IBackend backend, long count, int coarseSamples) : IDisposable
    {
        public long Count { get; } = count;
        public Tensor Origins { get; } = backend.Empty([1, count, 3]);
        public Tensor Directions { get; } = backend.Empty([1, count, 3]);
        public Tensor Coarse { get; } = backend.Empty([1, count, coarseSamples]);
        public Tensor DepthRange { get; } = backend.Empty([1, 2]);

        public void Dispose()
        {
            Origins.Dispose();
            Directions.Dispose();
            Coarse.Dispose();
            DepthRange.Dispose();
        }
    }
}

/// <summary>One sample set's kept activations: points (1, n, 3), triplane features (1, n, 3C), raw MLP output and decoded samples (1, n, 4).</summary>
internal sealed record SampleSet(Tensor Points, Tensor Features, Tensor Raw, Tensor Decoded);

/// <summary>The activations of one chunk of rays (owned; counted by the renderer while alive).</summary>
internal sealed class RenderChunkActivations : IDisposable
{
    private readonly TrainingRenderer _owner;
    private long _registered;

    internal RenderChunkActivations(TrainingRenderer owner, IBackend backend, long first, long count)
    {
        _owner = owner;
        Saved = new ScratchTensors(backend);
        First = first;
        Count = count;
    }

    /// <summary>The tensors.</summary>
    public ScratchTensors Saved { get; }

    /// <summary>First ray of the chunk in the view.</summary>
    public long First { get; }

    /// <summary>Rays in the chunk.</summary>
    public long Count { get; }

    /// <summary>Coarse depths (1, n, Nc).</summary>
    public Tensor CoarseDepths { get; set; } = null!;

    /// <summary>Fine depths (1, n, Nf), constants of the backward.</summary>
    public Tensor FineDepths { get; set; } = null!;

    /// <summary>The view's depth range (1, 2).</summary>
    public Tensor DepthRange { get; set; } = null!;

    /// <summary>Coarse samples.</summary>
    public SampleSet Coarse { get; set; } = null!;

    /// <summary>Fine samples.</summary>
    public SampleSet Fine { get; set; } = null!;

    /// <summary>Composited colour (1, n, 3).</summary>
    public Tensor Rgb { get; set; } = null!;

    /// <summary>Opacity (1, n).</summary>
    public Tensor Opacity { get; set; } = null!;

    internal void Register()
    {
        _registered = Saved.ElementCount;
        _owner.Track(_registered);
    }

    /// <summary>Frees the activations.</summary>
    public void Dispose()
    {
        _owner.Track(-_registered);
        _registered = 0;
        Saved.Dispose();
    }
}

/// <summary>A rendered training view: its images and either its chunks' activations (kept) or nothing (deferred).</summary>
internal sealed class RenderedPatch : IDisposable
{
    internal RenderedPatch(IBackend backend, Tensor planes, Tensor camera, int size, float background)
    {
        Planes = planes;
        Camera = camera;
        Size = size;
        Background = [background, background, background];
        Rgb = backend.Empty([1, size, size, 3]);
        Opacity = backend.Empty([1, size, size, 1]);
    }

    /// <summary>Channels-last planes rendered (not owned).</summary>
    public Tensor Planes { get; }

    /// <summary>The camera (1, 25) (not owned).</summary>
    public Tensor Camera { get; }

    /// <summary>Side in pixels.</summary>
    public int Size { get; }

    /// <summary>Background colour.</summary>
    public float[] Background { get; }

    /// <summary>Colour (1, s, s, 3).</summary>
    public Tensor Rgb { get; }

    /// <summary>Opacity (1, s, s, 1).</summary>
    public Tensor Opacity { get; }

    /// <summary>Kept chunk activations; null when deferred.</summary>
    public List<RenderChunkActivations>? Chunks { get; set; }

    /// <summary>Frees the images and any kept activations.</summary>
    public void Dispose()
    {
        Rgb.Dispose();
        Opacity.Dispose();
        if (Chunks is not null)
        {
            foreach (var chunk in Chunks)
            {
                chunk.Dispose();
            }
            Chunks = null;
        }
    }
}
