using System.Collections.Concurrent;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>
/// The backend a kernel suite runs on and how its time is taken: the suites' <c>Target</c> parameter.
/// <para>
/// CPU: BenchmarkDotNet's wall clock around the call is the time; <see cref="Measure"/> does nothing.
/// </para>
/// <para>
/// Device (<see cref="CudaTarget"/>): <see cref="Place"/> copies the host inputs to the device,
/// <see cref="BeginMeasure"/> records a start event on the backend's stream and <see cref="EndMeasure"/> records a stop
/// event, waits for it (so BenchmarkDotNet's clock never stops before the kernel does) and passes the event-measured
/// seconds to <see cref="RecordDeviceTime"/>. The JSON results then carry the device-event time next to the wall time.
/// </para>
/// </summary>
public abstract class BenchmarkTarget : IDisposable
{
    private string _caseKey = "";

    /// <summary>Target name as the results record it: "cpu", "cuda".</summary>
    public abstract string Name { get; }

    /// <summary>The backend the suites call.</summary>
    public abstract IBackend Backend { get; }

    /// <summary>True when the target times kernels with device events (<see cref="BeginMeasure"/>/<see cref="EndMeasure"/>).</summary>
    public virtual bool HasDeviceClock => false;

    /// <summary>A tensor where the backend computes, made from a host tensor whose ownership passes to this call.</summary>
    public abstract Tensor Place(Tensor host);

    /// <summary>Names the case whose device times <see cref="RecordDeviceTime"/> keeps.</summary>
    public void BindCase(string caseKey) => _caseKey = caseKey;

    /// <summary>Brackets the measured call: <c>using (Target.Measure()) { backend.Op(...); }</c>.</summary>
    public MeasuredRegion Measure()
    {
        if (!HasDeviceClock)
        {
            return default;
        }
        BeginMeasure();
        return new MeasuredRegion(this);
    }

    /// <summary>Device targets: record the start event.</summary>
    protected virtual void BeginMeasure()
    {
    }

    /// <summary>Device targets: record the stop event, wait for it, <see cref="RecordDeviceTime"/> the elapsed seconds.</summary>
    protected internal virtual void EndMeasure()
    {
    }

    /// <summary>Keeps one device-event time (seconds) of the bound case.</summary>
    protected void RecordDeviceTime(double seconds) => DeviceTimings.Add(DeviceTimings.Key(_caseKey, Name), seconds);

    /// <summary>Frees the backend.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the backend.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Backend.Dispose();
        }
    }
}

/// <summary>The measured region of a <see cref="BenchmarkTarget"/>; ends it on dispose (a no-op on the CPU).</summary>
public readonly struct MeasuredRegion : IDisposable, IEquatable<MeasuredRegion>
{
    private readonly BenchmarkTarget? _target;

    internal MeasuredRegion(BenchmarkTarget target) => _target = target;

    /// <summary>Ends the region.</summary>
    public void Dispose() => _target?.EndMeasure();

    /// <inheritdoc />
    public bool Equals(MeasuredRegion other) => ReferenceEquals(_target, other._target);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is MeasuredRegion other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => _target?.GetHashCode() ?? 0;

    /// <summary>Same target.</summary>
    public static bool operator ==(MeasuredRegion left, MeasuredRegion right) => left.Equals(right);

    /// <summary>Different targets.</summary>
    public static bool operator !=(MeasuredRegion left, MeasuredRegion right) => !left.Equals(right);
}

/// <summary>The host CPU through <see cref="CpuBackend"/>; tensors stay where they are.</summary>
public sealed class CpuTarget : BenchmarkTarget
{
    private readonly CpuBackend _backend = new();

    /// <inheritdoc />
    public override string Name => "cpu";

    /// <inheritdoc />
    public override IBackend Backend => _backend;

    /// <inheritdoc />
    public override Tensor Place(Tensor host) => host;
}

/// <summary>
/// cuda:0 through <see cref="CudaBackend"/> (bf16 GEMMs, the engine's default; LRM_BENCH_CUDA_PRECISION=fp32 for fp32):
/// inputs are uploaded once per set, the measured call is bracketed by CUDA events on the backend's stream, and the
/// region ends only when the stop event has completed, so BenchmarkDotNet's wall clock and the device-event time
/// (<see cref="DeviceTimings"/>, in the JSON results) cover the same work. Kernels are compiled during BenchmarkDotNet's
/// warm-up (LRM_KERNEL_CACHE keeps them between processes).
/// </summary>
public sealed class CudaTarget : BenchmarkTarget
{
    private readonly CudaBackend _backend = new(new CudaBackendOptions
    {
        Precision = Environment.GetEnvironmentVariable("LRM_BENCH_CUDA_PRECISION") == "fp32" ? MatmulPrecision.Float32 : MatmulPrecision.BFloat16,
        KernelCacheDirectory = Environment.GetEnvironmentVariable("LRM_KERNEL_CACHE") is { Length: > 0 } cache ? cache : null,
    });

    private readonly CudaBackend.DeviceTimer _timer;

    /// <summary>Opens cuda:0.</summary>
    public CudaTarget()
    {
        try
        {
            _timer = _backend.CreateTimer();
        }
        catch
        {
            _backend.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public override string Name => "cuda";

    /// <inheritdoc />
    public override IBackend Backend => _backend;

    /// <inheritdoc />
    public override bool HasDeviceClock => true;

    /// <inheritdoc />
    public override Tensor Place(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        using (host)
        {
            return _backend.ToBackend(host);
        }
    }

    /// <inheritdoc />
    protected override void BeginMeasure() => _timer.Start();

    /// <inheritdoc />
    protected internal override void EndMeasure() => RecordDeviceTime(_timer.StopMilliseconds() / 1000.0);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _timer.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>The targets the suites run on: the CPU always, cuda when a CUDA backend can run here.</summary>
public static class BenchmarkTargets
{
    // (name, whether it is present on this machine, factory): a machine without a GPU runs the CPU cases only.
    private static readonly (string Name, Func<bool> Present, Func<BenchmarkTarget> Create)[] Known =
    [
        ("cpu", () => true, () => new CpuTarget()),
        ("cuda", () => CudaBackend.IsAvailable(out _), () => new CudaTarget()),
    ];

    /// <summary>Names of the targets present on this machine, CPU first; LRM_BENCH_TARGETS (comma-separated) restricts them.</summary>
    public static IEnumerable<string> Available
    {
        get
        {
            var wanted = Environment.GetEnvironmentVariable("LRM_BENCH_TARGETS")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return Known.Where(target => (wanted is null || wanted.Contains(target.Name)) && target.Present()).Select(target => target.Name);
        }
    }

    /// <summary>Creates the named target.</summary>
    public static BenchmarkTarget Create(string name)
    {
        foreach (var target in Known)
        {
            if (target.Name == name)
            {
                return target.Create();
            }
        }
        throw new LrmInvalidArgumentException($"benchmark target '{name}' is not known (known: {string.Join(", ", Known.Select(target => target.Name))})");
    }
}

/// <summary>Device-event times per case and target, kept in process for the JSON results (empty on the CPU).</summary>
public static class DeviceTimings
{
    private static readonly ConcurrentDictionary<string, List<double>> Samples = new(StringComparer.Ordinal);

    /// <summary>The key of a case on a target.</summary>
    public static string Key(string caseKey, string target) => $"{target}|{caseKey}";

    /// <summary>Adds one time in seconds.</summary>
    public static void Add(string key, double seconds)
    {
        var list = Samples.GetOrAdd(key, _ => []);
        lock (list)
        {
            list.Add(seconds);
        }
    }

    /// <summary>
    /// The last <paramref name="count"/> times of a key (BenchmarkDotNet's actual iterations run last, after jitting,
    /// pilot and warm-up, so these are the measured invocations); null when the target kept none.
    /// </summary>
    public static double[]? Last(string key, int count)
    {
        if (!Samples.TryGetValue(key, out var list))
        {
            return null;
        }
        lock (list)
        {
            return list.Count == 0 || count <= 0 ? null : [.. list.Skip(Math.Max(0, list.Count - count))];
        }
    }
}
