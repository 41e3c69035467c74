using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>
/// Triplane sampling (<see cref="Backends.IBackend.TriplaneSample"/>) of one query chunk of random points in [−1, 1]³ (rays
/// sampled in rendering have no locality) against each config's channels-last triplane (1, 3, 64, 64, C).
/// Peer: torch.nn.functional.grid_sample over the three planes (channels-first, as PyTorch stores them), with the
/// features laid out as ours, (N, 3C).
/// </summary>
public class TriplaneBenchmarks : KernelBenchmarks<TriplaneShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Points, 3L * Shape.Channels]),
        RandomData.Uniform(random, -1, 1, 1, 3, Shape.Resolution, Shape.Resolution, Shape.Channels),
        RandomData.Uniform(random, -1, 1, 1, Shape.Points, 3),
    ];

    [Benchmark(Description = "TriplaneSample")]
    public void Sample()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.TriplaneSample(set[0], set[1], set[2]);
        }
    }
}

/// <summary>
/// Linear-first sampling (<see cref="Backends.IBackend.TriplaneSampleSum"/>) of one query chunk of random points against
/// projected planes (1, 3, R, R, hidden) with the bias and ReLU fused — the part of the NeRF query that replaces
/// sampling C channels per plane and the first layer. Peer: grid_sample over the three projected planes, summed, + bias, ReLU.
/// </summary>
public class TriplaneSumBenchmarks : KernelBenchmarks<TriplaneSumShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Points, Shape.Hidden]),
        RandomData.Uniform(random, -1, 1, 1, 3, Shape.Resolution, Shape.Resolution, Shape.Hidden),
        RandomData.Uniform(random, -1, 1, 1, Shape.Points, 3),
        RandomData.Uniform(random, -0.1f, 0.1f, Shape.Hidden),
    ];

    [Benchmark(Description = "TriplaneSampleSum")]
    public void SampleSum()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.TriplaneSampleSum(set[0], set[1], set[2], set[3], Activation.Relu);
        }
    }
}
