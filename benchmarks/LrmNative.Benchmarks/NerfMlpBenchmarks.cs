using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>
/// The triplane NeRF MLP (<see cref="IBackend.Mlp"/>, fused): one query chunk of concatenated triplane features (3·C)
/// through the config's layers (OpenLRM 4, the paper 10) of width 64 with ReLU, to raw density and colour (4).
/// Peer: an nn.Sequential of Linear and ReLU.
/// </summary>
public class NerfMlpBenchmarks : KernelBenchmarks<NerfMlpShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var widths = Shape.Widths;
        var set = new List<Tensor>
        {
            Tensor.Empty([Shape.Rows, NerfMlpShape.OutputWidth]),
            RandomData.Uniform(random, -1, 1, Shape.Rows, Shape.InputWidth),
        };
        for (var layer = 0; layer < Shape.Layers; layer++)
        {
            // Kaiming-like range keeps activations from vanishing or exploding through the layers.
            var bound = MathF.Sqrt(6f / widths[layer]);
            set.Add(RandomData.Uniform(random, -bound, bound, widths[layer + 1], widths[layer]));
        }
        for (var layer = 0; layer < Shape.Layers; layer++)
        {
            set.Add(RandomData.Uniform(random, -0.1f, 0.1f, widths[layer + 1]));
        }
        return [.. set];
    }

    [Benchmark(Description = "Mlp")]
    public void Mlp()
    {
        var set = NextSet();
        var layers = Shape.Layers;
        var weights = set[2..(2 + layers)];
        var biases = set[(2 + layers)..(2 + 2 * layers)];
        using (Device.Measure())
        {
            Device.Backend.Mlp(set[0], set[1], weights, biases, Activation.Relu, Activation.None);
        }
    }
}
