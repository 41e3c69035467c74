using BenchmarkDotNet.Attributes;
using LrmNative.Backends;

namespace LrmNative.Benchmarks;

/// <summary>
/// Image resize as the preprocessor does it (<see cref="IBackend.Resize"/>, antialiased bicubic, a = −0.5): a 1024² RGB
/// canvas to each config's encoder input. Peer: torch.nn.functional.interpolate(mode='bicubic', antialias=True).
/// </summary>
public class ResizeBenchmarks : KernelBenchmarks<ResizeShape>
{
    private const float CubicA = -0.5f;

    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Planes, Shape.OutSize, Shape.OutSize]),
        RandomData.Uniform(random, 0, 1, 1, Shape.Planes, Shape.InSize, Shape.InSize),
    ];

    [Benchmark(Description = "Resize")]
    public void Resize()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.Resize(set[0], set[1], ResizeMode.Bicubic, CubicA, antialias: true);
        }
    }
}
