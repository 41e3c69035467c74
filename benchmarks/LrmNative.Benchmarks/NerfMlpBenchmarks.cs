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

/// <summary>
/// The whole NeRF query of one z-plane of the dense mesh grid as inference runs it, linear first:
/// <see cref="IBackend.TriplaneSampleSum"/> of the projected planes (bias and ReLU fused) then <see cref="IBackend.Mlp"/> of
/// the remaining layers. The projection of the planes (once per reconstruction) is made in the set, outside the measured
/// region. Peer: OpenLRM's way, grid_sample over the three planes, the features concatenated (N, 3C) and an
/// nn.Sequential of Linear and ReLU, on the same points.
/// </summary>
public class NerfQueryBenchmarks : KernelBenchmarks<NerfQueryShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var widths = Shape.RemainingWidths;
        var set = new List<Tensor>
        {
            Tensor.Empty([1, NerfQueryShape.Points, NerfMlpShape.OutputWidth]),
            Tensor.Empty([1, NerfQueryShape.Points, Shape.Hidden]),
            // Projected planes: Σ over 3C channels of uniform(−1, 1)·W keeps a Kaiming-like scale.
            RandomData.Uniform(random, -1, 1, 1, 3, Shape.Resolution, Shape.Resolution, Shape.Hidden),
            GridPlane(),
            RandomData.Uniform(random, -0.1f, 0.1f, Shape.Hidden),
        };
        for (var layer = 0; layer + 1 < widths.Count; layer++)
        {
            var bound = MathF.Sqrt(6f / widths[layer]);
            set.Add(RandomData.Uniform(random, -bound, bound, widths[layer + 1], widths[layer]));
        }
        for (var layer = 0; layer + 1 < widths.Count; layer++)
        {
            set.Add(RandomData.Uniform(random, -0.1f, 0.1f, widths[layer + 1]));
        }
        return [.. set];
    }

    // The grid's middle z-plane, x fastest (DensityGrid's order and coordinates).
    private static Tensor GridPlane()
    {
        var points = Tensor.Empty([1, NerfQueryShape.Points, 3]);
        var values = points.AsSpan<float>();
        var z = Model.DensityGrid.Coordinate(NerfQueryShape.Plane, NerfQueryShape.Grid);
        for (var i = 0; i < NerfQueryShape.Points; i++)
        {
            values[3 * i] = Model.DensityGrid.Coordinate(i % NerfQueryShape.Grid, NerfQueryShape.Grid);
            values[3 * i + 1] = Model.DensityGrid.Coordinate(i / NerfQueryShape.Grid, NerfQueryShape.Grid);
            values[3 * i + 2] = z;
        }
        return points;
    }

    [Benchmark(Description = "NerfQuery")]
    public void Query()
    {
        var set = NextSet();
        var remaining = Shape.Layers - 1;
        var weights = set[5..(5 + remaining)];
        var biases = set[(5 + remaining)..(5 + 2 * remaining)];
        using (Device.Measure())
        {
            Device.Backend.TriplaneSampleSum(set[1], set[2], set[3], set[4], Activation.Relu);
            Device.Backend.Mlp(set[0], set[1], weights, biases, Activation.Relu, Activation.None);
        }
    }
}
