using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>
/// Attention forward (fused, scores never written) as the model calls it: the decoder's self-attention over the
/// 3×32×32 triplane tokens reading q, k, v out of one packed qkv projection, its cross-attention from those tokens to
/// the image features ([CLS] + patches) reading k, v out of a packed kv projection, and the encoder's self-attention
/// ([CLS] + registers + patches). Scale 1/√D; inference path (no log-sum-exp saved).
/// Peer: torch.nn.functional.scaled_dot_product_attention where the torch version has it, else softmax(q·kᵀ·scale)·v.
/// </summary>
public class AttentionBenchmarks : KernelBenchmarks<AttentionShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) => Shape.Self
        ?
        [
            Tensor.Empty([1, Shape.QueryTokens, Shape.Width]),
            RandomData.Uniform(random, -1, 1, 1, Shape.QueryTokens, 3 * Shape.Width),
        ]
        :
        [
            Tensor.Empty([1, Shape.QueryTokens, Shape.Width]),
            RandomData.Uniform(random, -1, 1, 1, Shape.QueryTokens, Shape.Width),
            RandomData.Uniform(random, -1, 1, 1, Shape.KeyTokens, 2 * Shape.Width),
        ];

    [Benchmark(Description = "Attention")]
    public void Attention()
    {
        var set = NextSet();
        var width = Shape.Width;
        var scale = 1f / MathF.Sqrt(Shape.HeadDim);
        using (Device.Measure())
        {
            if (Shape.Self)
            {
                Device.Backend.Attention(set[0], null, new ColumnSlice(set[1], 0), new ColumnSlice(set[1], width), new ColumnSlice(set[1], 2L * width), Shape.Heads, scale);
            }
            else
            {
                Device.Backend.Attention(set[0], null, set[1], new ColumnSlice(set[2], 0), new ColumnSlice(set[2], width), Shape.Heads, scale);
            }
        }
    }
}
