using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>
/// One attention call: Tq queries against Tk keys, H heads of D channels.
/// Work counted as 4·B·H·Tq·Tk·D (q·kᵀ and p·v, a multiply-add each); exp and the
/// softmax bookkeeping are not counted.
/// </summary>
public sealed record AttentionShape(string Kind, int Batch, int Heads, int HeadDim, int QueryTokens, int KeyTokens) : IWorkload, IComparable
{
    /// <summary>Report rows by work (BenchmarkDotNet orders parameters through IComparable).</summary>
    public int CompareTo(object? obj) => obj is AttentionShape other ? Amount.CompareTo(other.Amount) : 1;

    /// <summary>Model width H·D.</summary>
    public int Width => Heads * HeadDim;

    /// <inheritdoc />
    public double Amount => 4.0 * Batch * Heads * QueryTokens * KeyTokens * HeadDim;

    /// <inheritdoc />
    public RateUnit Unit => RateUnit.GigaFlops;

    /// <inheritdoc />
    public override string ToString() => $"{Kind} {QueryTokens}x{KeyTokens} {Heads}x{HeadDim}";
}

/// <summary>
/// Attention forward as the LRM decoder (§3.2, 16 heads × 64) calls it: self-attention over the
/// 3×32×32 = 3072 triplane tokens reading q, k, v out of one packed qkv projection, and
/// cross-attention from those tokens to the image features reading k, v out of a packed kv
/// projection: 1025 = 32×32 patches + CLS (the paper's DINO ViT-B/16 at 512²), 257 = 16×16 + CLS
/// (a smaller encoder, e.g. ViT/14 at 224²).
/// Inference path: no log-sum-exp is saved. Scale 1/√64 = 1/8.
/// </summary>
public class AttentionBenchmarks
{
    private CpuBackend _backend = null!;
    private Tensor _query = null!;
    private Tensor _keyValue = null!;
    private Tensor _output = null!;

    public static IEnumerable<AttentionShape> Shapes =>
    [
        new("self", 1, 16, 64, 3072, 3072),
        new("cross", 1, 16, 64, 3072, 1025),
        new("cross", 1, 16, 64, 3072, 257),
    ];

    [ParamsSource(nameof(Shapes))]
    public AttentionShape Shape { get; set; } = null!;

    private bool IsSelf => Shape.Kind == "self";

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(2);
        _backend = new CpuBackend();
        var width = Shape.Width;
        if (IsSelf)
        {
            // qkv (B, T, 3C): q, k, v are column slices, as the fused projection produces them.
            _query = RandomData.Uniform(random, -1, 1, Shape.Batch, Shape.QueryTokens, 3 * width);
            _keyValue = _query;
        }
        else
        {
            _query = RandomData.Uniform(random, -1, 1, Shape.Batch, Shape.QueryTokens, width);
            _keyValue = RandomData.Uniform(random, -1, 1, Shape.Batch, Shape.KeyTokens, 2 * width);
        }
        _output = Tensor.Empty([Shape.Batch, Shape.QueryTokens, width]);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _output.Dispose();
        if (!ReferenceEquals(_keyValue, _query))
        {
            _keyValue.Dispose();
        }
        _query.Dispose();
        _backend.Dispose();
    }

    [Benchmark(Description = "CpuBackend.Attention")]
    public void Forward()
    {
        var width = Shape.Width;
        var (key, value) = IsSelf
            ? (new ColumnSlice(_keyValue, width), new ColumnSlice(_keyValue, 2L * width))
            : (new ColumnSlice(_keyValue, 0), new ColumnSlice(_keyValue, width));
        _backend.Attention(_output, null, _query, key, value, Shape.Heads, 1f / MathF.Sqrt(Shape.HeadDim));
    }
}
