using BenchmarkDotNet.Attributes;
using LrmNative.Model;

namespace LrmNative.Benchmarks;

/// <summary>
/// LayerNorm with affine weight and bias (eps 1e-6) over the decoder's triplane tokens (the decoder's final norm),
/// inference path (no statistics saved). Peer: torch.nn.functional.layer_norm.
/// </summary>
public class LayerNormBenchmarks : KernelBenchmarks<LayerNormShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([Shape.Rows, Shape.Channels]),
        RandomData.Uniform(random, -2, 2, Shape.Rows, Shape.Channels),
        RandomData.Uniform(random, 0.5f, 1.5f, Shape.Channels),
        RandomData.Uniform(random, -0.5f, 0.5f, Shape.Channels),
    ];

    [Benchmark(Description = "LayerNorm")]
    public void LayerNorm()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.LayerNorm(set[0], null, null, set[1], set[2], set[3], ModelConfig.LayerNormEpsilon);
        }
    }
}

/// <summary>
/// ModLN (LRM §3.2), fused: LN(x)·(1 + scale) + shift with affine LN (eps 1e-6) over the decoder's triplane tokens,
/// inference path. Peer: torch.nn.functional.layer_norm followed by the modulation, as OpenLRM writes it.
/// </summary>
public class ModLNBenchmarks : KernelBenchmarks<ModLNShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Tokens, Shape.Channels]),
        RandomData.Uniform(random, -2, 2, 1, Shape.Tokens, Shape.Channels),
        RandomData.Uniform(random, 0.5f, 1.5f, Shape.Channels),
        RandomData.Uniform(random, -0.5f, 0.5f, Shape.Channels),
        RandomData.Uniform(random, -0.5f, 0.5f, 1, Shape.Channels),
        RandomData.Uniform(random, -0.5f, 0.5f, 1, Shape.Channels),
    ];

    [Benchmark(Description = "ModLN")]
    public void ModLN()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.ModLN(set[0], null, null, set[1], set[2], set[3], set[4], set[5], ModelConfig.LayerNormEpsilon);
        }
    }
}
