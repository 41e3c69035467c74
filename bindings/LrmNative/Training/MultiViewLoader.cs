using LrmNative.Backends;

namespace LrmNative.Training;

/// <summary>Where the data stream stands: epoch, and the next position in that epoch's shuffled object order.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Index">Next position in the epoch's order.</param>
internal readonly record struct DataPosition(long Epoch, long Index);

/// <summary>
/// One batch of B samples × V views, in tensors (owned; Dispose frees them):
/// <list type="bullet">
/// <item><see cref="SourceImages"/> (B, 3, S, S): the source view composited over the sample's background, resized (antialiased bilinear) to S.</item>
/// <item><see cref="SourceCameras"/> (B, 16 or 20): the normalised source camera (= the canonical pose at the source's distance) + fx, fy, cx, cy.</item>
/// <item><see cref="TargetRgb"/> (B, V, P, P, 3), <see cref="TargetAlpha"/> (B, V, P, P, 1): the supervised patch of each view (view 0 = the source).</item>
/// <item><see cref="RenderCameras"/> (B, V, 25): the camera that renders exactly that patch as a P×P image (see <see cref="Windows"/>);
/// <see cref="FullCameras"/> (B, V, 25): the same view's camera for the whole image (normalised pose, normalised K).</item>
/// </list>
/// </summary>
internal sealed class TrainingBatch : IDisposable
{
    private readonly List<DataProblem> _skipped = [];

    internal TrainingBatch(int batchSize, DataOptions options, DataPosition start)
    {
        long b = batchSize, v = options.ViewsPerSample, p = options.PatchSize, s = options.SourceImageSize;
        Start = start;
        Objects = new string[batchSize];
        Backgrounds = new float[batchSize];
        ViewNumbers = new int[batchSize * options.ViewsPerSample];
        Windows = new RenderWindow[batchSize * options.ViewsPerSample];
        SourceImages = Tensor.Zeros([b, 3, s, s]);
        SourceCameras = Tensor.Zeros([b, options.CameraInputDim]);
        TargetRgb = Tensor.Zeros([b, v, p, p, 3]);
        TargetAlpha = Tensor.Zeros([b, v, p, p, 1]);
        RenderCameras = Tensor.Zeros([b, v, 25]);
        FullCameras = Tensor.Zeros([b, v, 25]);
        if (options.OccupancyPoints > 0)
        {
            OccupancyPoints = Tensor.Zeros([b, options.OccupancyPoints, 3]);
            OccupancyLabels = Tensor.Zeros([b, options.OccupancyPoints]);
        }
    }

    /// <summary>Position of this batch's first sample.</summary>
    public DataPosition Start { get; }

    /// <summary>Position after this batch (where the next one starts).</summary>
    public DataPosition Next { get; internal set; }

    /// <summary>Object name per sample.</summary>
    public string[] Objects { get; }

    /// <summary>Background colour per sample (every view of it, source included, is composited on it).</summary>
    public float[] Backgrounds { get; }

    /// <summary>File number NNN of each view, (B·V) row-major.</summary>
    public int[] ViewNumbers { get; }

    /// <summary>Render resolution and patch position of each view, (B·V) row-major.</summary>
    public RenderWindow[] Windows { get; }

    /// <summary>Objects found bad while this batch was loaded and left out from now on (<see cref="BadDataPolicy.Skip"/>), each reported by one batch only.</summary>
    public IReadOnlyList<DataProblem> Skipped => _skipped;

    /// <summary>(B, 3, S, S).</summary>
    public Tensor SourceImages { get; }

    /// <summary>(B, 16 or 20).</summary>
    public Tensor SourceCameras { get; }

    /// <summary>(B, V, P, P, 3).</summary>
    public Tensor TargetRgb { get; }

    /// <summary>(B, V, P, P, 1).</summary>
    public Tensor TargetAlpha { get; }

    /// <summary>(B, V, 25): patch cameras.</summary>
    public Tensor RenderCameras { get; }

    /// <summary>(B, V, 25): full-image cameras.</summary>
    public Tensor FullCameras { get; }

    /// <summary>(B, N, 3) occupancy query points in the normalised frame, or null (<see cref="DataOptions.OccupancyPoints"/> 0).</summary>
    public Tensor? OccupancyPoints { get; }

    /// <summary>(B, N): 1 where the point is inside the object, 0 outside; null with <see cref="OccupancyPoints"/>.</summary>
    public Tensor? OccupancyLabels { get; }

    internal void AddSkipped(DataProblem problem) => _skipped.Add(problem);

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        SourceImages.Dispose();
        SourceCameras.Dispose();
        TargetRgb.Dispose();
        TargetAlpha.Dispose();
        RenderCameras.Dispose();
        FullCameras.Dispose();
        OccupancyPoints?.Dispose();
        OccupancyLabels?.Dispose();
    }
}

/// <summary>
/// Batches from a <see cref="MultiViewDataset"/> in a deterministic, seedable order: epoch e visits the objects in a
/// permutation drawn from (seed, e); the sample at (epoch, index) draws its views, background and render windows from
/// (seed, epoch, index) alone. So a batch depends only on the seed and its <see cref="DataPosition"/> — a checkpoint
/// stores the position and a resumed run continues with the same batches. A background task decodes the next batch
/// while the current one trains. Objects whose images turn out bad are skipped (reported in <see cref="Problems"/> and
/// by the batch that found them, <see cref="TrainingBatch.Skipped"/>) or fatal, per <see cref="DataOptions.BadData"/>.
/// </summary>
internal sealed class MultiViewLoader : IDisposable
{
    private readonly MultiViewDataset _dataset;
    private readonly CpuBackend _backend = new();
    private readonly bool _prefetch;
    private readonly object _gate = new();
    private readonly List<DataProblem> _problems = [];
    private readonly HashSet<int> _badObjects = [];
    private Task<TrainingBatch>? _pending;
    private (long Epoch, int[] Order)? _order;

    /// <summary>A loader of <paramref name="batchSize"/> samples from <paramref name="start"/>; <paramref name="prefetch"/> decodes ahead.</summary>
    public MultiViewLoader(MultiViewDataset dataset, int batchSize, ulong seed, DataPosition start = default, bool prefetch = true)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize < 1)
        {
            throw new LrmInvalidArgumentException($"batch size must be >= 1, got {batchSize}");
        }
        if (start.Epoch < 0 || start.Index < 0 || start.Index > dataset.Objects.Count)
        {
            throw new LrmInvalidArgumentException($"data position (epoch {start.Epoch}, index {start.Index}) is outside a {dataset.Objects.Count}-object dataset");
        }
        _dataset = dataset;
        BatchSize = batchSize;
        Seed = seed;
        Position = start;
        _prefetch = prefetch;
        if (prefetch)
        {
            _pending = StartLoad(start);
        }
    }

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }

    /// <summary>The seed of the order and of every sample's draws.</summary>
    public ulong Seed { get; }

    /// <summary>Where the next batch starts (save it in a checkpoint).</summary>
    public DataPosition Position { get; private set; }

    /// <summary>Objects skipped while loading (bad images), in the order found.</summary>
    public IReadOnlyList<DataProblem> Problems
    {
        get
        {
            lock (_gate)
            {
                return [.. _problems];
            }
        }
    }

    /// <summary>The object order of <paramref name="epoch"/>: a permutation of 0…N−1 drawn from (seed, epoch).</summary>
    public int[] EpochOrder(long epoch)
    {
        var order = Enumerable.Range(0, _dataset.Objects.Count).ToArray();
        TrainingRandom.For(Seed, 0x6F72646572, epoch).Shuffle<int>(order);
        return order;
    }

    /// <summary>The next batch (the caller disposes it); the following one starts loading in the background.</summary>
    public TrainingBatch Next()
    {
        var batch = _pending is null ? Load(Position) : _pending.GetAwaiter().GetResult();
        _pending = null;
        Position = batch.Next;
        if (_prefetch)
        {
            _pending = StartLoad(Position);
        }
        return batch;
    }

    private Task<TrainingBatch> StartLoad(DataPosition position) => Task.Run(() => Load(position));

    private TrainingBatch Load(DataPosition position)
    {
        var batch = new TrainingBatch(BatchSize, _dataset.Options, position);
        try
        {
            var (epoch, index) = (position.Epoch, position.Index);
            var count = _dataset.Objects.Count;
            var failuresInARow = 0;
            for (var row = 0; row < BatchSize;)
            {
                if (index >= count)
                {
                    epoch++;
                    index = 0;
                }
                var order = OrderOf(epoch);
                var objectIndex = order[index];
                var random = TrainingRandom.For(Seed, 0x73616D706C65, epoch, index);
                index++;
                if (IsBad(objectIndex))
                {
                    failuresInARow++;
                }
                else
                {
                    try
                    {
                        _dataset.LoadInto(batch, row, objectIndex, random, _backend);
                        row++;
                        failuresInARow = 0;
                        continue;
                    }
                    catch (BadDataException bad)
                    {
                        if (_dataset.Options.BadData == BadDataPolicy.Fatal)
                        {
                            throw new LrmFormatException($"bad training data: {bad.Problem} (train with --skip-bad-data to leave such objects out)");
                        }
                        if (MarkBad(objectIndex, bad.Problem))
                        {
                            batch.AddSkipped(bad.Problem);
                        }
                        failuresInARow++;
                    }
                }
                if (failuresInARow >= count)
                {
                    throw new LrmFormatException($"{_dataset.Root}: every object failed to load; the first problem: {Problems[0]}");
                }
            }
            batch.Next = new DataPosition(epoch, index);
            return batch;
        }
        catch
        {
            batch.Dispose();
            throw;
        }
    }

    private int[] OrderOf(long epoch)
    {
        lock (_gate)
        {
            if (_order is not { } cached || cached.Epoch != epoch)
            {
                _order = (epoch, EpochOrder(epoch));
            }
            return _order.Value.Order;
        }
    }

    private bool IsBad(int objectIndex)
    {
        lock (_gate)
        {
            return _badObjects.Contains(objectIndex);
        }
    }

    // True when the object was not known to be bad yet.
    private bool MarkBad(int objectIndex, DataProblem problem)
    {
        lock (_gate)
        {
            if (!_badObjects.Add(objectIndex))
            {
                return false;
            }
            _problems.Add(problem);
            return true;
        }
    }

    /// <summary>Waits for the batch being decoded and frees it, then the decoding backend; never throws.</summary>
    public void Dispose()
    {
        try
        {
            _pending?.GetAwaiter().GetResult().Dispose();
        }
        catch (Exception)
        {
            // Whatever it is, the failure belongs to a batch nobody asked for, and it must not replace the exception a
            // `using` may be unwinding with (a NaN stop naming the step).
        }
        finally
        {
            _pending = null;
            _backend.Dispose();
        }
    }
}
