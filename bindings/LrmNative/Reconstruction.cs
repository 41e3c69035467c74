using System.Globalization;
using LrmNative.Backends;
using LrmNative.Imaging;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative;

/// <summary>How the last mesh's density grid was evaluated.</summary>
/// <param name="Resolution">Grid points per axis, R.</param>
/// <param name="CoarseToFine">True when only blocks near the surface were evaluated at full resolution.</param>
/// <param name="PointsEvaluated">NeRF queries made (R³ for the dense grid).</param>
/// <param name="BlocksRefined">Coarse blocks evaluated at full resolution (0 for the dense grid).</param>
/// <param name="Blocks">Coarse blocks in all (0 for the dense grid).</param>
public sealed record GridQueryStatistics(int Resolution, bool CoarseToFine, long PointsEvaluated, long BlocksRefined, long Blocks)
{
    /// <summary>R³: what a dense grid evaluates.</summary>
    public long DensePoints => (long)Resolution * Resolution * Resolution;

    /// <summary>Points evaluated as a fraction of the dense grid.</summary>
    public double Fraction => (double)PointsEvaluated / DensePoints;
}

/// <summary>
/// One photo reconstructed as a triplane NeRF (LRM §3.3): render it from any camera, extract a coloured mesh, read
/// the triplane or query the NeRF at points. Made by <see cref="Reconstructor.Reconstruct(Image, CancellationToken)"/>; uses its
/// reconstructor's model, so dispose this first (afterwards its calls throw <see cref="ObjectDisposedException"/>). Calls
/// from several threads are safe and run one at a time with those of its reconstructor (see <see cref="Reconstructor"/>'s
/// remarks). Dispose frees the triplane; it never waits, and a call in flight on another thread finishes first.
/// </summary>
public sealed class Reconstruction : IDisposable
{
    /// <summary>Side of the input-view render when none is given (OpenLRM's default render size).</summary>
    public const int DefaultRenderSize = 128;

    /// <summary>Default mesh grid resolution: the paper's 384³.</summary>
    public const int DefaultMeshResolution = 384;

    private const int MaxRenderSize = 4096;
    private readonly Reconstructor _owner;
    private readonly Tensor _planes;
    private readonly Tensor _channelsLast;
    private ProjectedTriplane? _projected;
    private readonly PreprocessedImage? _input;
    private Image? _inputImage;
    private int _disposed;

    // Takes ownership of the planes (1, 3, C, H, W), their channels-last copy (1, 3, H, W, C) and the input.
    internal Reconstruction(Reconstructor owner, Tensor planes, Tensor channelsLast, PreprocessedImage? input, string source, ReconstructionTimings timings)
    {
        _owner = owner;
        _planes = planes;
        _channelsLast = channelsLast;
        _input = input;
        Source = source;
        Timings = timings;
    }

    /// <summary>Where the photo came from (its path, or the name of an in-memory image).</summary>
    public string Source { get; }

    /// <summary>Time spent in each stage so far, including the reconstructor's load.</summary>
    public ReconstructionTimings Timings { get; }

    /// <summary>Things the user should know about the input, one sentence each (e.g. that the background was estimated).</summary>
    public IReadOnlyList<string> Warnings => _input?.Warnings ?? [];

    /// <summary>
    /// The smallest mesh resolution at which the default grid query on the CPU is coarse-to-fine: below it the coarse grid
    /// (R/4 per axis) is too coarse to trust, and a dense grid is cheap anyway.
    /// </summary>
    public const int AutoCoarseToFineResolution = 256;

    /// <summary>The surface density <see cref="ExtractMesh(int)"/> uses by default (the reconstructor's).</summary>
    public float Threshold => _owner.Threshold;

    /// <summary>How the last <see cref="ExtractMesh(int, float?, bool?, CancellationToken)"/> evaluated its grid; null before the first.</summary>
    public GridQueryStatistics? LastGridQuery { get; private set; }

    /// <summary>
    /// The encoder input the photo became (RGB, <see cref="Reconstructor.InputResolution"/> square: composited on white,
    /// re-centred, resized); owned by the reconstruction. Throws for reconstructions made without a photo.
    /// </summary>
    public Image InputImage
    {
        get
        {
            using var call = Enter();
            return _inputImage ??= MakeInputImage();
        }
    }

    /// <summary>Triplane channels C.</summary>
    public int TriplaneChannels => (int)_planes.Size(2);

    /// <summary>Triplane resolution H = W.</summary>
    public int TriplaneResolution => (int)_planes.Size(3);

    internal PreprocessedImage? Preprocessed => _input;

    internal Tensor Planes => _planes;

    internal Tensor ChannelsLastPlanes => _channelsLast;

    // The planes projected for the NeRF's linear-first queries (TriplaneNerf.Project), made at the first query.
    private ProjectedTriplane Projected => _projected ??= _owner.Model.Nerf.Project(_owner.Backend, _channelsLast);

    /// <summary>
    /// A copy of the triplane, (3, C, H, W) row-major fp32 as the model's upsampler makes it: a point (x, y, z) of the
    /// box [−1, 1]³ reads plane 0 at (u = x, v = y), plane 1 at (x, z), plane 2 at (z, y) (bilinear, zero padding,
    /// align_corners = false; u runs along W, v along H).
    /// </summary>
    public float[] GetTriplane()
    {
        using var call = Enter();
        return _owner.Backend.ToFloatArray(_planes);
    }

    /// <summary>
    /// Saves the triplane as safetensors (atomically): tensor "planes" (3, C, H, W) fp32, and metadata "config" (the model
    /// config JSON), "source_camera" (the conditioning camera values), "image" and "layout".
    /// </summary>
    /// <exception cref="LrmFormatException">The file cannot be written.</exception>
    public void SaveTriplane(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var call = Enter();
        var config = _owner.Model.Config;
        using var single = Tensor.Empty(_planes.Shape[1..]);
        using (var planes = _owner.Backend.BorrowHost(_planes))
        {
            planes.Tensor.AsSpan<float>().CopyTo(single.AsSpan<float>());
        }
        var camera = string.Join(", ", Cameras.CanonicalSourceFor(config.CameraInputDim).Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        SafeTensorsFile.Write(path, [new("planes", single)], new Dictionary<string, string>
        {
            ["config"] = config.ToJson(),
            ["source_camera"] = $"[{camera}]",
            ["image"] = Source,
            ["layout"] = "planes (3, C, H, W) fp32 as the upsampler makes them; a point (x, y, z) in [-1, 1]^3 samples plane 0 at (u=x, v=y), plane 1 at (x, z), plane 2 at (z, y), bilinear, zero padding, align_corners=False",
        });
    }

    /// <summary>
    /// The NeRF at points: <paramref name="points"/> is (N, 3) x, y, z in world units (the object box is [−1, 1]³);
    /// returns (N, 4) = [σ, r, g, b] with σ = softplus(raw₀ − 1) (the density the renderer integrates and the mesh
    /// threshold applies to) and rgb = sigmoid(raw₁…₃)·1.002 − 0.001, evaluated as is (no masking outside the box).
    /// </summary>
    public float[] Query(ReadOnlySpan<float> points)
    {
        if (points.Length == 0 || points.Length % 3 != 0)
        {
            throw new LrmShapeException($"query: points must be a non-empty (N, 3) array, got {points.Length} values");
        }
        using var batch = Tensor.FromArray(points, 1, points.Length / 3, 3);
        using var result = Query(batch);
        return result.AsSpan<float>().ToArray();
    }

    /// <summary>The NeRF at host points (1, N, 3) → a host tensor (N, 4) = [σ, r, g, b]; the caller owns the result.</summary>
    internal Tensor Query(Tensor points)
    {
        using var call = Enter();
        var backend = _owner.Backend;
        using var onBackend = backend.Borrow(points);
        var (sigma, rgb) = _owner.Model.Nerf.Query(backend, Projected, onBackend.Tensor);
        using (sigma)
        using (rgb)
        using (var hostSigma = backend.BorrowHost(sigma))
        using (var hostRgb = backend.BorrowHost(rgb))
        {
            var count = points.Size(1);
            var result = Tensor.Empty([count, 4]);
            var target = result.AsSpan<float>();
            var density = hostSigma.Tensor.AsSpan<float>();
            var colour = hostRgb.Tensor.AsSpan<float>();
            for (var i = 0; i < count; i++)
            {
                target[4 * i] = density[i];
                target[4 * i + 1] = colour[3 * i];
                target[4 * i + 2] = colour[3 * i + 1];
                target[4 * i + 3] = colour[3 * i + 2];
            }
            return result;
        }
    }

    /// <summary>Renders the input view (<see cref="Camera.Input"/>) at <paramref name="size"/>² pixels; the caller owns the view.</summary>
    public RenderedView RenderInputView(int size = DefaultRenderSize) => Render(Camera.Input, size, size);

    /// <summary>
    /// Volume-renders the triplane NeRF from <paramref name="camera"/> (LRM §3.3: coarse and importance samples inside
    /// the object box, composited on white) at <paramref name="width"/> × <paramref name="height"/>; the caller owns the view.
    /// </summary>
    /// <exception cref="LrmInvalidArgumentException">A size outside 1..4096.</exception>
    public RenderedView Render(Camera camera, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(camera);
        if (width is <= 0 or > MaxRenderSize || height is <= 0 or > MaxRenderSize)
        {
            throw new LrmInvalidArgumentException($"render size must be in 1..{MaxRenderSize} on each side, got {width}×{height}");
        }
        using var call = Enter();
        return _owner.Stage(Timings, ReconstructionStage.Render, () =>
        {
            var backend = _owner.Backend;
            using var cameras = backend.FromArray(camera.RenderVector(), 1, 25);
            using var render = _owner.Model.Renderer.Render(backend, _channelsLast, cameras, height, width, projected: Projected);
            using var rgb = backend.BorrowHost(render.Rgb);
            var color = Image.FromRgb(rgb.Tensor.AsSpan<float>(), width, height, $"{Source} rendered from {camera}");
            return new RenderedView(camera, color, backend.ToFloatArray(render.Depth), backend.ToFloatArray(render.Opacity));
        });
    }

    /// <summary>
    /// OpenLRM's turntable: <paramref name="frames"/> views of <paramref name="size"/>² from <see cref="Camera.Turntable"/>
    /// (radius 2, height 0.8, starting in front), rendered one at a time as the sequence is enumerated; the caller
    /// disposes each view.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (checked before each frame).</exception>
    public IEnumerable<RenderedView> RenderTurntable(int frames, int size = DefaultRenderSize, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var cameras = Camera.Turntable(frames);
        return Frames();

        IEnumerable<RenderedView> Frames()
        {
            foreach (var camera in cameras)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return Render(camera, size, size);
            }
        }
    }

    /// <summary>Extracts the mesh at the default threshold on a <paramref name="resolution"/>³ grid; see <see cref="ExtractMesh(int, float?, bool?, CancellationToken)"/>.</summary>
    public Mesh ExtractMesh(int resolution = DefaultMeshResolution) => ExtractMesh(resolution, null, null);

    /// <summary>
    /// The surface σ = <paramref name="threshold"/> (default <see cref="Threshold"/>) of the NeRF's density on a
    /// <paramref name="resolution"/>³ grid over [−1, 1]³ (marching cubes, LRM §4), coarse-to-fine when
    /// <paramref name="coarseToFine"/> (default: the reconstructor's option, whose default is coarse-to-fine on the CPU at
    /// resolutions from <see cref="AutoCoarseToFineResolution"/> and dense otherwise), with each vertex coloured by the NeRF at
    /// it (clamped to [0, 1]) and area-weighted normals. Coordinates are the engine's (z up); <see cref="Mesh.SaveGlb"/>
    /// converts to glTF's y-up. A mesh without triangles (<see cref="Mesh.IsEmpty"/>) means no surface at that density.
    /// </summary>
    /// <remarks>
    /// <paramref name="cancellationToken"/> is checked before each stage and while the grid is queried (every slab of
    /// z-planes dense, every 8 z-planes coarse-to-fine), the long part at high resolutions; a cancelled call frees its
    /// grid and leaves the reconstruction usable.
    /// </remarks>
    /// <exception cref="LrmInvalidArgumentException">A resolution outside 2..1024, or a threshold that is not finite and &gt; 0.</exception>
    /// <exception cref="LrmOutOfMemoryException">The host has less memory available than the grid needs (4·resolution³ bytes:
    /// 4 GiB at 1024³), checked before any work; the reconstruction stays usable.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Mesh ExtractMesh(int resolution, float? threshold, bool? coarseToFine = null, CancellationToken cancellationToken = default)
    {
        if (resolution is < 2 or > 1024)
        {
            throw new LrmInvalidArgumentException($"mesh resolution must be in 2..1024, got {resolution}");
        }
        var level = threshold ?? Threshold;
        CheckThreshold(level, "mesh threshold");
        using var call = Enter();
        var refine = coarseToFine ?? _owner.Options.CoarseToFine ?? (_owner.Backend.Device.Kind == DeviceKind.Cpu && resolution >= AutoCoarseToFineResolution);
        var backend = _owner.Backend;
        if (refine || backend.Device.Kind == DeviceKind.Cpu)
        {
            // The R³ grid lives on the host: say so before the minutes of querying, not as the OOM killer's SIGKILL.
            var half = resolution / 2;
            HostMemory.EnsureAvailable(GridBytes(resolution), $"mesh extraction at {resolution}³ (its density grid)",
                $"a lower resolution needs less ({half}³: {HostMemory.FormatBytes(GridBytes(half))})");
        }
        var progress = _owner.Options.Progress;
        void Report(double fraction)
        {
            // The grid query calls back from its own loop, which frees the grid when this throws.
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new ReconstructionProgress(ReconstructionStage.GridQuery, fraction));
        }
        // Dense: the grid is made where the backend computes; coarse-to-fine decides its blocks on the host.
        using var grid = _owner.Stage(Timings, ReconstructionStage.GridQuery, () => refine
            ? DensityGrid.QueryCoarseToFine(DensityGrid.Nerf(backend, _owner.Model.Nerf, Projected), resolution, level, DensityGrid.DefaultCoarseStride, Report)
            : DensityGrid.QueryDense(backend, _owner.Model.Nerf, Projected, resolution, Report), cancellationToken);
        LastGridQuery = new GridQueryStatistics(resolution, grid.CoarseStride > 0, grid.PointsEvaluated, grid.BlocksRefined, grid.Blocks);
        var (vertices, triangles) = _owner.Stage(Timings, ReconstructionStage.MarchingCubes, () =>
        {
            using var field = backend.Borrow(grid.Grid);
            return backend.MarchingCubes(field.Tensor, level, [-1f, -1f, -1f, 1f, 1f, 1f]);
        }, made =>
        {
            made.Vertices.Dispose();
            made.Triangles.Dispose();
        }, cancellationToken);
        using (vertices)
        using (triangles)
        {
            return _owner.Stage(Timings, ReconstructionStage.VertexColors, () =>
            {
                if (triangles.ElementCount == 0)
                {
                    return new Mesh([], []);
                }
                using var points = backend.Empty([1, vertices.Size(0), 3]);
                backend.Copy(points, 0, vertices, 0, vertices.ElementCount);
                var (sigma, rgb) = _owner.Model.Nerf.Query(backend, Projected, points);
                using (sigma)
                using (rgb)
                {
                    var colors = backend.ToFloatArray(rgb);
                    for (var i = 0; i < colors.Length; i++)
                    {
                        colors[i] = Math.Clamp(colors[i], 0f, 1f); // the NeRF's rgb spans [−0.001, 1.001]
                    }
                    using var hostVertices = backend.BorrowHost(vertices);
                    using var hostTriangles = backend.BorrowHost(triangles);
                    return new Mesh(hostVertices.Tensor.AsSpan<float>(), hostTriangles.Tensor.AsSpan<int>(), colors).ComputeVertexNormals();
                }
            }, cancellationToken);
        }
    }

    /// <summary>Bytes of the fp32 density grid of a <paramref name="resolution"/>³ mesh extraction.</summary>
    internal static long GridBytes(int resolution) => 4L * resolution * resolution * resolution;

    /// <summary>
    /// A mesh threshold must be finite and &gt; 0: the NeRF's σ = softplus(·) is positive everywhere, so at 0 or below
    /// every grid point is inside and there is no surface (an empty mesh that would look like a failed reconstruction).
    /// </summary>
    internal static void CheckThreshold(float threshold, string name)
    {
        if (!(threshold > 0 && float.IsFinite(threshold)))
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{name} must be a finite density > 0 (the NeRF's density is positive everywhere, so there is no surface at 0 or below), got {threshold}"));
        }
    }

    /// <summary>
    /// Frees the triplane and the input image. Safe to call twice and from any thread: it never waits. A call in flight
    /// on another thread finishes (its result stays valid) and the memory is freed as it returns; later calls throw
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _owner.Gate.Retire(() =>
        {
            _inputImage?.Dispose();
            _input?.Dispose();
            _projected?.Dispose();
            _channelsLast.Dispose();
            _planes.Dispose();
        });
    }

    // Enters the reconstructor's gate for one call: this reconstruction and its reconstructor must both be alive.
    private CallGate.Scope Enter()
    {
        var call = _owner.Gate.Enter();
        try
        {
            ThrowIfDisposed();
        }
        catch
        {
            call.Dispose();
            throw;
        }
        return call;
    }

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_owner.IsDisposed)
        {
            throw new ObjectDisposedException(nameof(Reconstructor),
                $"{this}: the Reconstructor that made it was disposed; keep the reconstructor alive while its reconstructions are used");
        }
    }

    /// <summary>The source and triplane size, e.g. "Reconstruction of chair.png: triplane 3 × 80 × 64²".</summary>
    public override string ToString() => $"Reconstruction of {Source}: triplane 3 × {TriplaneChannels} × {TriplaneResolution}²";

    // (1, 3, S, S) planar → an RGB image.
    private Image MakeInputImage()
    {
        if (_input is null)
        {
            throw new LrmInvalidArgumentException($"{Source}: this reconstruction was made without an input image");
        }
        var image = _input.Image;
        int height = (int)image.Size(2), width = (int)image.Size(3);
        var size = height * width;
        var source = image.AsSpan<float>();
        var rgb = new float[3 * size];
        for (var i = 0; i < size; i++)
        {
            for (var c = 0; c < 3; c++)
            {
                rgb[3 * i + c] = source[c * size + i];
            }
        }
        return Image.FromRgb(rgb, width, height, $"{Source} (encoder input)");
    }
}
