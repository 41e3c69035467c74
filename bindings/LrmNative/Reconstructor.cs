using System.Diagnostics;
using System.Globalization;
using LrmNative.Backends;
using LrmNative.Imaging;
using LrmNative.Model;

namespace LrmNative;

/// <summary>Settings of a <see cref="Reconstructor"/>. Every value has a sensible default.</summary>
public sealed record ReconstructorOptions
{
    /// <summary>
    /// The object's longest side as a fraction of the encoder input: the photo is re-centred on the object and scaled
    /// so the object fills this much of the square, from 0.05 to 1. Null (default) takes the model config's
    /// "foreground_ratio" (the framing the model was trained with), else OpenLRM's 0.85.
    /// </summary>
    public double? ForegroundRatio { get; init; }

    /// <summary>
    /// Density of the extracted surface, finite and &gt; 0 (the NeRF's density σ = softplus(·) is positive everywhere, so a
    /// level of 0 or below has no surface); null (default) takes the model config's "mesh_threshold", else OpenLRM's 3.0.
    /// Higher values give tighter meshes; <see cref="Reconstruction.ExtractMesh(int, float?, bool?, CancellationToken)"/> takes one per mesh.
    /// </summary>
    public float? Threshold { get; init; }

    /// <summary>CPU threads (0, the default: OMP_NUM_THREADS or all cores).</summary>
    public int Threads { get; init; }

    /// <summary>
    /// Evaluate the mesh grid coarse-to-fine (true): the density on a grid of a quarter of the resolution first, then the
    /// full resolution only in blocks near the surface. Gives the dense mesh (identical unless the surface has features
    /// thinner than a block far from the rest of it) from a fraction of the NeRF queries. false: every grid point. null
    /// (default): coarse-to-fine on the CPU at resolutions from 256 (<see cref="Reconstruction.AutoCoarseToFineResolution"/>;
    /// about 3× faster there: the shipped model's examples at 384³ evaluate 18–22 % of the points and give byte-identical
    /// meshes), dense below that and on CUDA, where the dense grid never leaves the device and coarse-to-fine would decide
    /// its blocks on the host.
    /// </summary>
    public bool? CoarseToFine { get; init; }

    /// <summary>
    /// Called synchronously with each stage's progress (0 at its start, 1 at its end, fractions between, never decreasing
    /// within a stage); may be null. It runs on the calling thread while the call holds the reconstructor (see
    /// <see cref="Reconstructor"/>'s remarks), so it must not block on another thread that is calling the same
    /// reconstructor (e.g. a synchronous Invoke onto a UI thread that is); post instead (<see cref="Progress{T}"/> does).
    /// An exception it throws ends the call and comes out of it as it is, with everything the call made freed.
    /// </summary>
    public IProgress<ReconstructionProgress>? Progress { get; init; }

    internal void Validate()
    {
        if (ForegroundRatio is { } ratio && !(ratio >= ImagePreprocessOptions.MinForegroundRatio && ratio <= 1))
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"foreground ratio must be in [{ImagePreprocessOptions.MinForegroundRatio}, 1], got {ratio}"));
        }
        if (Threshold is { } threshold)
        {
            Reconstruction.CheckThreshold(threshold, "threshold");
        }
        if (Threads < 0)
        {
            throw new LrmInvalidArgumentException($"threads must be >= 0 (0: default), got {Threads}");
        }
    }
}

/// <summary>
/// The Large Reconstruction Model (LRM, arXiv 2311.04400) ready to run: one photo in, a triplane NeRF out, from which
/// <see cref="Reconstruction"/> renders views and extracts a coloured mesh.
/// </summary>
/// <example>
/// <code>
/// using var lrm = Reconstructor.Load("models/openlrm-small", Device.Auto);
/// using var image = Image.Load("chair.png");           // RGBA with the background removed works best
/// using var result = lrm.Reconstruct(image);
/// result.ExtractMesh(384).SaveGlb("chair.glb");          // z-up engine mesh, y-up GLB
/// using var view = result.RenderInputView(256);
/// view.Color.SavePng("chair_view.png");
/// </code>
/// </example>
/// <remarks>
/// <para>
/// One instance holds the weights (hundreds of MB for the OpenLRM models) and may reconstruct any number of images.
/// </para>
/// <para>
/// <b>Threads.</b> A reconstructor and the <see cref="Reconstruction"/>s it made may be used from any threads: their calls
/// run one at a time (they share the weights, the device's stream and its buffers), each waiting for the one in flight.
/// Two reconstructions meshed or rendered "at once" are therefore meshed one after the other, with the same results as
/// on one thread. The CPU engine already uses every core inside one call; for more throughput use one reconstructor per
/// worker (each holds its own weights).
/// </para>
/// <para>
/// <b>Dispose</b> may come from any thread and never waits: a call in flight finishes with valid memory, which is freed as
/// it returns; every later call — on the reconstructor or on a reconstruction it made — throws
/// <see cref="ObjectDisposedException"/> naming the object. Dispose reconstructions when done with them; disposing the
/// reconstructor first is safe but leaves them unusable.
/// </para>
/// </remarks>
public sealed class Reconstructor : IDisposable
{
    private readonly LrmModel _model;
    private readonly IBackend _backend;
    private readonly IBackend _host;
    private readonly bool _owned;
    private readonly CallGate _gate = new();
    private int _disposed;

    private Reconstructor(LrmModel model, IBackend backend, Device device, string? deviceNote, ReconstructorOptions options, TimeSpan loadTime, string source,
        bool owned = true)
    {
        _owned = owned;
        _model = model;
        _backend = backend;
        // Image preparation runs on the host; on the CPU that is the model's own backend.
        _host = backend.Device.Kind == DeviceKind.Cpu ? backend : new CpuBackend(options.Threads);
        Device = device;
        DeviceNote = deviceNote;
        Options = options;
        LoadTime = loadTime;
        Source = source;
        Threshold = options.Threshold ?? model.Config.MeshThreshold ?? ModelConfig.DefaultMeshThreshold;
        ForegroundRatio = options.ForegroundRatio ?? model.Config.ForegroundRatio ?? ModelConfig.DefaultForegroundRatio;
    }

    /// <summary>Loads a model for <see cref="Device.Auto"/> with default options.</summary>
    /// <inheritdoc cref="Load(string, Device, ReconstructorOptions?)" path="/exception"/>
    public static Reconstructor Load(string path) => Load(path, Device.Auto);

    /// <summary>
    /// Loads a model: an OpenLRM-style folder (<c>config.json</c> + <c>model.safetensors</c>) or an LrmNative model file
    /// (<c>lrm convert</c>), for <paramref name="device"/>. <see cref="Device.Auto"/> uses CUDA when a CUDA backend can run
    /// here and the CPU otherwise (<see cref="DeviceNote"/> says why).
    /// </summary>
    /// <exception cref="LrmFormatException">The model is missing, or its config or weights are unreadable or do not match.</exception>
    /// <exception cref="LrmUnsupportedException">
    /// <see cref="Device.Cuda"/> was asked for and cannot be used ("CUDA backend not available: reason"), or the
    /// model's architecture is not supported.
    /// </exception>
    /// <exception cref="LrmInvalidArgumentException">An option is out of range.</exception>
    public static Reconstructor Load(string path, Device device, ReconstructorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new ReconstructorOptions();
        options.Validate();
        var (backend, used, note) = BackendFactory.Create(device, options.Threads);
        try
        {
            options.Progress?.Report(new ReconstructionProgress(ReconstructionStage.Load, 0));
            var clock = Stopwatch.StartNew();
            var model = LrmModel.Load(path, trainable: false, placement: backend);
            try
            {
                options.Progress?.Report(new ReconstructionProgress(ReconstructionStage.Load, 1));
            }
            catch
            {
                // A throwing progress callback must not leave the weights behind.
                model.Dispose();
                throw;
            }
            return new Reconstructor(model, backend, used, note, options, clock.Elapsed, path);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A reconstructor around a model made in memory (benchmarks, tests): <paramref name="createModel"/> gets the backend
    /// the device resolved to, to place the weights there (LrmModel.Create/CreateRandom's placement); the reconstructor
    /// owns the model.
    /// </summary>
    internal static Reconstructor FromModel(Func<IBackend, LrmModel> createModel, Device device, ReconstructorOptions? options, string source)
    {
        ArgumentNullException.ThrowIfNull(createModel);
        options ??= new ReconstructorOptions();
        options.Validate();
        var (backend, used, note) = BackendFactory.Create(device, options.Threads);
        return WithBackend(backend, createModel, options, source, note);
    }

    /// <summary>
    /// <see cref="FromModel"/> on a given backend (tests: a simulated device); takes ownership of the backend, which is
    /// disposed if the model cannot be made.
    /// </summary>
    internal static Reconstructor WithBackend(IBackend backend, Func<IBackend, LrmModel> createModel, ReconstructorOptions? options, string source, string? deviceNote = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(createModel);
        options ??= new ReconstructorOptions();
        try
        {
            options.Validate();
            var clock = Stopwatch.StartNew();
            var model = createModel(backend);
            return new Reconstructor(model, backend, backend.Device, deviceNote, options, clock.Elapsed, source);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A reconstructor over a model and backend that stay the caller's (training's periodic validation: the live model,
    /// whose inference copies <see cref="LrmModel.WeightsChanged"/> must have refreshed); Dispose frees neither.
    /// </summary>
    internal static Reconstructor Borrowing(LrmModel model, IBackend backend, ReconstructorOptions? options, string source)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(backend);
        options ??= new ReconstructorOptions();
        options.Validate();
        return new Reconstructor(model, backend, backend.Device, null, options, TimeSpan.Zero, source, owned: false);
    }

    /// <summary>The device the model runs on (the CPU when <see cref="Device.Auto"/> found no usable GPU backend).</summary>
    public Device Device { get; }

    /// <summary>Why <see cref="Device.Auto"/> chose the CPU ("CUDA backend not available: …"); null otherwise.</summary>
    public string? DeviceNote { get; }

    /// <summary>The options the reconstructor was made with.</summary>
    public ReconstructorOptions Options { get; }

    /// <summary>Where the model came from (the path given to <see cref="Load(string)"/>).</summary>
    public string Source { get; }

    /// <summary>Time spent loading the model.</summary>
    public TimeSpan LoadTime { get; }

    /// <summary>The default surface density for meshes: <see cref="ReconstructorOptions.Threshold"/>, the config's, or 3.0.</summary>
    public float Threshold { get; }

    /// <summary>
    /// The fill a photo is re-centred to: <see cref="ReconstructorOptions.ForegroundRatio"/>, the config's
    /// "foreground_ratio", or OpenLRM's 0.85.
    /// </summary>
    public double ForegroundRatio { get; }

    /// <summary>Side of the square image the encoder reads (OpenLRM small/base/large: 224/336/448, the paper: 512).</summary>
    public int InputResolution => _model.Config.EncoderImageSize;

    /// <summary>Number of model parameters.</summary>
    public long ParameterCount => _model.ParameterCount;

    /// <summary>One line about the model: parameters, input resolution, triplane size.</summary>
    public string Description =>
        $"{_model.Config.ParameterCountText} parameters, encoder input {InputResolution}², triplane 3 × {_model.Config.TriplaneDim} × {_model.Config.TriplaneHighRes}²";

    internal LrmModel Model => _model;

    internal IBackend Backend => _backend;

    /// <summary>The CPU backend host-side preparation uses (the model's own backend when that is the CPU).</summary>
    internal IBackend HostBackend => _host;

    /// <summary>Reads a photo (PNG or JPEG, turned upright by its EXIF orientation) and reconstructs it; see <see cref="Reconstruct(Image, CancellationToken)"/>.</summary>
    /// <exception cref="LrmFormatException">The file is missing, unreadable, corrupt or too large.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before image → triplane began.</exception>
    public Reconstruction Reconstruct(string imagePath, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        using var image = Image.Load(imagePath);
        return Reconstruct(image, cancellationToken);
    }

    /// <summary>
    /// One photo → triplane: the image is composited on white, re-centred on the object (alpha bounding box, or a
    /// background estimate for images without alpha — see <see cref="Reconstruction.Warnings"/>), resized to
    /// <see cref="InputResolution"/> and run through the model from LRM's canonical input camera. The image may be
    /// disposed afterwards.
    /// </summary>
    /// <remarks>
    /// <paramref name="cancellationToken"/> is checked before each stage; image → triplane, once begun, runs to its end
    /// (tens of milliseconds for the default model, seconds for OpenLRM-large on a CPU). A cancelled call frees what it
    /// made and leaves the reconstructor usable.
    /// </remarks>
    /// <exception cref="LrmInvalidArgumentException">The image is too small or no object can be found in it.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Reconstruction Reconstruct(Image image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var call = Enter();
        var timings = new ReconstructionTimings();
        timings.Add(ReconstructionStage.Load, LoadTime);
        var preprocessor = new ImagePreprocessor(new ImagePreprocessOptions
        {
            OutputSize = _model.Config.EncoderImageSize,
            ForegroundRatio = ForegroundRatio,
        });
        var input = Stage(timings, ReconstructionStage.Preprocess, () => preprocessor.Process(_host, image), cancellationToken);
        try
        {
            var (planes, channelsLast) = Stage(timings, ReconstructionStage.ImageToTriplane, () =>
            {
                using var camera = _backend.FromArray(Cameras.CanonicalSourceFor(_model.Config.CameraInputDim), 1, _model.Config.CameraInputDim);
                using var encoderInput = _backend.Borrow(input.Image);
                var planes = _model.ForwardPlanes(_backend, encoderInput.Tensor, camera);
                try
                {
                    return (Planes: planes, ChannelsLast: TriplaneNerf.ToChannelsLast(_backend, planes));
                }
                catch
                {
                    planes.Dispose();
                    throw;
                }
            }, made =>
            {
                made.Planes.Dispose();
                made.ChannelsLast.Dispose();
            }, cancellationToken);
            return new Reconstruction(this, planes, channelsLast, input, image.Source, timings);
        }
        catch
        {
            input.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reconstructs an encoder input already prepared as planar RGB (1, 3, S, S) from an explicit source camera feature
    /// (the config's camera_input_dim values) — the conditioning training uses (<c>lrm eval model</c>); the image stays the caller's.
    /// </summary>
    internal Reconstruction ReconstructPrepared(Tensor image, float[] sourceCamera, string source)
    {
        using var call = Enter();
        if (sourceCamera.Length != _model.Config.CameraInputDim)
        {
            throw new LrmInvalidArgumentException($"{source}: the source camera feature has {sourceCamera.Length} values; the model reads {_model.Config.CameraInputDim}");
        }
        using var camera = _backend.FromArray(sourceCamera, 1, sourceCamera.Length);
        using var encoderInput = _backend.Borrow(image);
        var planes = _model.ForwardPlanes(_backend, encoderInput.Tensor, camera);
        try
        {
            return FromPlanes(planes, source);
        }
        catch
        {
            planes.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A reconstruction of given planes (1, 3, C, H, W), without an input image (benchmarks, tests); takes ownership
    /// (host planes for a device backend are uploaded and freed).
    /// </summary>
    internal Reconstruction FromPlanes(Tensor planes, string source)
    {
        ArgumentNullException.ThrowIfNull(planes);
        using var call = Enter();
        if (planes.Device != _backend.Device)
        {
            using var host = planes;
            planes = _backend.ToBackend(host);
        }
        var timings = new ReconstructionTimings();
        timings.Add(ReconstructionStage.Load, LoadTime);
        var channelsLast = TriplaneNerf.ToChannelsLast(_backend, planes);
        return new Reconstruction(this, planes, channelsLast, null, source, timings);
    }

    /// <summary>
    /// Runs <paramref name="work"/> as <paramref name="stage"/>: progress at 0 and 1, time added to <paramref name="timings"/>;
    /// nothing runs when <paramref name="cancellationToken"/> is already cancelled. When the progress callback throws at 1,
    /// the stage's result is freed (Dispose when it is <see cref="IDisposable"/>) before the exception goes on, so a
    /// throwing callback leaks nothing (device memory is not the GC's to reclaim).
    /// </summary>
    internal T Stage<T>(ReconstructionTimings timings, ReconstructionStage stage, Func<T> work, CancellationToken cancellationToken = default) =>
        Stage(timings, stage, work, discard: null, cancellationToken);

    /// <summary>
    /// <see cref="Stage{T}(ReconstructionTimings, ReconstructionStage, Func{T}, CancellationToken)"/> for results that are
    /// not one <see cref="IDisposable"/> (tuples of tensors): <paramref name="discard"/> frees them (null: Dispose).
    /// </summary>
    internal T Stage<T>(ReconstructionTimings timings, ReconstructionStage stage, Func<T> work, Action<T>? discard, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Options.Progress?.Report(new ReconstructionProgress(stage, 0));
        var clock = Stopwatch.StartNew();
        var result = work();
        timings.Add(stage, clock.Elapsed);
        try
        {
            Options.Progress?.Report(new ReconstructionProgress(stage, 1));
        }
        catch
        {
            if (discard is not null)
            {
                discard(result);
            }
            else if (result is IDisposable disposable)
            {
                disposable.Dispose();
            }
            throw;
        }
        return result;
    }

    /// <summary>
    /// Frees the weights and the backend. Safe to call twice and from any thread: it never waits. A call in flight on
    /// another thread finishes (its result stays valid) and the memory is freed as it returns; every later call, on this
    /// reconstructor or on a <see cref="Reconstruction"/> it made, throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _gate.Retire(() =>
        {
            if (!ReferenceEquals(_host, _backend))
            {
                _host.Dispose();
            }
            if (_owned)
            {
                _model.Dispose();
                _backend.Dispose();
            }
        });
    }

    /// <summary>True after <see cref="Dispose"/> (the memory may still be in use by a call in flight until it returns).</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Serialises the calls of this reconstructor and its reconstructions, and defers their disposal.</summary>
    internal CallGate Gate => _gate;

    /// <summary>Enters the gate for one call; throws (holding nothing) when the reconstructor was disposed.</summary>
    internal CallGate.Scope Enter()
    {
        var call = _gate.Enter();
        if (IsDisposed)
        {
            call.Dispose();
            ThrowIfDisposed();
        }
        return call;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    /// <summary>The model's source, device and <see cref="Description"/> on one line.</summary>
    public override string ToString() => $"Reconstructor {Source} on {Device}: {Description}";
}
