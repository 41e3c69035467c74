using BenchmarkDotNet.Attributes;

namespace LrmNative.Benchmarks;

/// <summary>
/// Ray compositing (<see cref="Backends.IBackend.RenderMarch"/>) of a 128×128 render: each ray's coarse and fine sample sets
/// (half the config's samples per ray each, sorted) merged by depth and composited on white into colour, depth and
/// opacity, as the renderer's final pass does. Peer: OpenLRM's unify-samples (cat, sort, gather) and MipRayMarcher2 in PyTorch.
/// </summary>
public class RenderMarchBenchmarks : KernelBenchmarks<RenderMarchShape>
{
    internal const float Near = 1f;
    internal const float Far = 3f;
    private static readonly float[] White = [1f, 1f, 1f];

    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        int rays = Shape.Rays, a = Shape.SamplesA, b = Shape.SamplesB;
        return
        [
            Tensor.Empty([1, rays, 3]),
            Tensor.Empty([1, rays]),
            Tensor.Empty([1, rays]),
            SortedDepths(random, rays, a),
            Decoded(random, rays * a),
            SortedDepths(random, rays, b),
            Decoded(random, rays * b),
            Tensor.FromArray([Near, Far], 1, 2),
        ];
    }

    [Benchmark(Description = "RenderMarch")]
    public void March()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.RenderMarch(set[0], set[1], set[2], null, set[3], set[4], set[5], set[6], White, set[7]);
        }
    }

    // (1, rays, samples) depths in [Near, Far], increasing along each ray.
    internal static Tensor SortedDepths(Random random, int rays, int samples)
    {
        var depths = RandomData.Uniform(random, Near, Far, 1, rays, samples);
        var values = depths.AsSpan<float>();
        for (var ray = 0; ray < rays; ray++)
        {
            values.Slice(ray * samples, samples).Sort();
        }
        return depths;
    }

    // (1, count, 4): raw density in [−1, 3] (softplus(x − 1) spans thin to opaque), colour in [0, 1].
    internal static Tensor Decoded(Random random, int count)
    {
        var decoded = RandomData.Uniform(random, 0, 1, 1, count, 4);
        var values = decoded.AsSpan<float>();
        for (var i = 0; i < count; i++)
        {
            values[4 * i] = -1 + 4 * values[4 * i];
        }
        return decoded;
    }
}
