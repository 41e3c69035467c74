using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>A square-or-not GEMM size, (M,K)·(K,N): 2·M·N·K floating-point operations.</summary>
public sealed record GemmShape(int M, int N, int K) : IWorkload, IComparable
{
    /// <summary>Report rows by size (BenchmarkDotNet orders parameters through IComparable).</summary>
    public int CompareTo(object? obj) => obj is GemmShape other ? (M, N, K).CompareTo((other.M, other.N, other.K)) : 1;

    /// <inheritdoc />
    public double Amount => 2.0 * M * N * K;

    /// <inheritdoc />
    public RateUnit Unit => RateUnit.GigaFlops;

    /// <inheritdoc />
    public override string ToString() => $"{M}x{N}x{K}";
}

/// <summary>
/// fp32 GEMM through <see cref="CpuBackend.Gemm"/> against raw OpenBLAS <c>cblas_sgemm</c>
/// on the same buffers (the baseline): the best raw rate is the machine's practical peak,
/// and the ratio shows what our C ABI, shape checks and threading cost or gain.
/// liblrm_native switches OpenBLAS to one thread when it loads (its OpenMP threads each
/// run single-threaded sgemm on a block), and that setting is process-wide, so the raw
/// baseline gives OpenBLAS its own thread pool back, one thread per core, for its cases only.
/// </summary>
public class GemmBenchmarks
{
    private CpuBackend _backend = null!;
    private Tensor _a = null!;
    private Tensor _b = null!;
    private Tensor _output = null!;
    private int _engineBlasThreads;

    /// <summary>1024³ is the headline; 512³ and 2048³ show how the rate scales.</summary>
    public static IEnumerable<GemmShape> Shapes =>
    [
        new(512, 512, 512),
        new(1024, 1024, 1024),
        new(2048, 2048, 2048),
    ];

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = null!;

    [GlobalSetup(Target = nameof(CpuBackendGemm))]
    public void SetupEngine() => Allocate();

    [GlobalSetup(Target = nameof(OpenBlasSgemm))]
    public void SetupOpenBlas()
    {
        _engineBlasThreads = OpenBlasMethods.openblas_get_num_threads();
        OpenBlasMethods.openblas_set_num_threads(Environment.ProcessorCount);
        Allocate();
    }

    private void Allocate()
    {
        var random = new Random(1);
        _backend = new CpuBackend();
        _a = RandomData.Uniform(random, -1, 1, Shape.M, Shape.K);
        _b = RandomData.Uniform(random, -1, 1, Shape.K, Shape.N);
        _output = Tensor.Empty([Shape.M, Shape.N]);
    }

    [GlobalCleanup(Target = nameof(OpenBlasSgemm))]
    public void CleanupOpenBlas()
    {
        OpenBlasMethods.openblas_set_num_threads(_engineBlasThreads);
        Release();
    }

    [GlobalCleanup(Target = nameof(CpuBackendGemm))]
    public void CleanupEngine() => Release();

    private void Release()
    {
        _output.Dispose();
        _b.Dispose();
        _a.Dispose();
        _backend.Dispose();
    }

    [Benchmark(Description = "CpuBackend.Gemm")]
    public void CpuBackendGemm() => _backend.Gemm(_output, _a, _b);

    [Benchmark(Baseline = true, Description = "OpenBLAS.cblas_sgemm")]
    public unsafe void OpenBlasSgemm() =>
        OpenBlasMethods.cblas_sgemm(OpenBlasMethods.CblasRowMajor, OpenBlasMethods.CblasNoTrans, OpenBlasMethods.CblasNoTrans,
            Shape.M, Shape.N, Shape.K, 1f, (float*)_a.Pointer, Shape.K, (float*)_b.Pointer, Shape.N, 0f, (float*)_output.Pointer, Shape.N);
}
