using BenchmarkDotNet.Attributes;

namespace LrmNative.Benchmarks;

/// <summary>
/// Several copies of a case's inputs and outputs, used in turn, one set per invocation: a kernel measured on the
/// same buffers every time would find them in the cache and look faster than it runs in the model. Enough sets are
/// made that together they exceed <see cref="RotationBytes"/> (4× the 32 MiB L3 of the baseline machine, 2.5× an
/// H100's 50 MB L2); a single set larger than that cannot stay cached anyway and is not copied.
/// </summary>
internal sealed class TensorRing : IDisposable
{
    /// <summary>Bytes the sets together exceed.</summary>
    public const double RotationBytes = 128.0 * 1024 * 1024;

    /// <summary>At most this many sets.</summary>
    public const int MaxSets = 16;

    private readonly Tensor[][] _sets;
    private int _next;

    public TensorRing(int count, Func<Tensor[]> create)
    {
        _sets = new Tensor[count][];
        try
        {
            for (var i = 0; i < count; i++)
            {
                _sets[i] = create();
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Sets needed for sets of <paramref name="bytesPerSet"/> bytes.</summary>
    public static int CountFor(double bytesPerSet) =>
        bytesPerSet <= 0 ? 1 : (int)Math.Clamp(Math.Ceiling(RotationBytes / bytesPerSet), 1, MaxSets);

    /// <summary>Number of sets.</summary>
    public int Count => _sets.Length;

    /// <summary>The next set, round robin.</summary>
    public Tensor[] Next()
    {
        var set = _sets[_next];
        _next = (_next + 1) % _sets.Length;
        return set;
    }

    public void Dispose()
    {
        foreach (var set in _sets)
        {
            if (set is null)
            {
                continue;
            }
            foreach (var tensor in set)
            {
                tensor?.Dispose();
            }
        }
    }
}

/// <summary>
/// The common frame of the kernel suites: the shapes of one family (from <see cref="LrmShapes"/>) × the targets present,
/// random (never zero) inputs from a fixed seed rotated through a <see cref="TensorRing"/>, BenchmarkDotNet's warm-up.
/// A suite supplies its inputs (<see cref="CreateSet"/>) and one <c>[Benchmark]</c> method that takes <see cref="NextSet"/>
/// and calls the backend inside <c>using (Target.Measure())</c>.
/// </summary>
/// <typeparam name="TShape">The family's shape record.</typeparam>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000:Do not declare static members on generic types",
    Justification = "BenchmarkDotNet's [ParamsSource] names a static member of the benchmark type.")]
public abstract class KernelBenchmarks<TShape> where TShape : KernelShape
{
    private TensorRing? _ring;

    /// <summary>This family's shapes.</summary>
    public static IEnumerable<TShape> Shapes => LrmShapes.All.OfType<TShape>();

    /// <summary>The targets present (the CPU; a device when one is); the CPU only for host-computed families (<see cref="IHostOnlyShape"/>).</summary>
    public static IEnumerable<string> Targets => typeof(IHostOnlyShape).IsAssignableFrom(typeof(TShape))
        ? BenchmarkTargets.Available.Where(target => target == "cpu")
        : BenchmarkTargets.Available;

    /// <summary>The case's shape.</summary>
    [ParamsSource(nameof(Shapes))]
    public TShape Shape { get; set; } = null!;

    /// <summary>The case's target ("cpu", "cuda").</summary>
    [ParamsSource(nameof(Targets))]
    public string Target { get; set; } = "cpu";

    /// <summary>The running target.</summary>
    protected BenchmarkTarget Device { get; private set; } = null!;

    /// <summary>Sets in rotation (for tests of the frame).</summary>
    internal int RotationCount => _ring?.Count ?? 0;

    /// <summary>Makes the target and the input sets.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Device = BenchmarkTargets.Create(Target);
        Device.BindCase(Shape.Key);
        var random = new Random(1000 + Shape.Order);
        _ring = new TensorRing(TensorRing.CountFor(SetBytes), () => [.. CreateSet(random).Select(Device.Place)]);
    }

    /// <summary>Frees the sets and the target.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _ring?.Dispose();
        _ring = null;
        ReleaseCase();
        Device?.Dispose();
    }

    /// <summary>Frees what a suite made for the case besides its sets (a network); called by <see cref="Cleanup"/>.</summary>
    protected virtual void ReleaseCase()
    {
    }

    /// <summary>Bytes of one input/output set (default: the shape's compulsory bytes).</summary>
    protected virtual double SetBytes => Shape.Bytes;

    /// <summary>One set of host tensors for <see cref="Shape"/>: random inputs, outputs, parameters.</summary>
    protected abstract Tensor[] CreateSet(Random random);

    /// <summary>The set for this invocation.</summary>
    protected Tensor[] NextSet() => _ring!.Next();
}
