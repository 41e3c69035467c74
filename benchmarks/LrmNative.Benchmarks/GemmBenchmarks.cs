using BenchmarkDotNet.Attributes;

namespace LrmNative.Benchmarks;

/// <summary>
/// fp32 GEMM as the model's linear layers call it (<see cref="Backends.IBackend.Gemm"/> with the weight (N, K) transposed and a
/// bias): the decoder MLP's first layer (3072 triplane tokens × D → 4D) and the encoder MLP's ([CLS] + registers +
/// patches × F → 4F) of every config. Peer: torch.nn.functional.linear.
/// </summary>
public class GemmBenchmarks : KernelBenchmarks<GemmShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([Shape.M, Shape.N]),
        RandomData.Uniform(random, -1, 1, Shape.M, Shape.K),
        RandomData.Uniform(random, -0.05f, 0.05f, Shape.N, Shape.K),
        RandomData.Uniform(random, -0.1f, 0.1f, Shape.N),
    ];

    [Benchmark(Description = "Gemm")]
    public void Gemm()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.Gemm(set[0], set[1], set[2], set[3], transposeB: true);
        }
    }
}
