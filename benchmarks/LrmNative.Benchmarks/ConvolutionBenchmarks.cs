using BenchmarkDotNet.Attributes;

namespace LrmNative.Benchmarks;

/// <summary>
/// The encoder's patch embedding (<see cref="Backends.IBackend.PatchEmbed"/>): the input image cut into P×P patches, each
/// projected to the encoder width, tokens out. Peer: torch.nn.functional.conv2d with stride P, flattened to tokens.
/// </summary>
public class PatchEmbedBenchmarks : KernelBenchmarks<PatchEmbedShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var fanIn = PatchEmbedShape.InputChannels * Shape.Patch * Shape.Patch;
        var bound = 1f / MathF.Sqrt(fanIn);
        return
        [
            Tensor.Empty([1, Shape.Tokens, Shape.Width]),
            RandomData.Uniform(random, 0, 1, 1, PatchEmbedShape.InputChannels, Shape.Size, Shape.Size),
            RandomData.Uniform(random, -bound, bound, Shape.Width, PatchEmbedShape.InputChannels, Shape.Patch, Shape.Patch),
            RandomData.Uniform(random, -bound, bound, Shape.Width),
        ];
    }

    [Benchmark(Description = "PatchEmbed")]
    public void PatchEmbed()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.PatchEmbed(set[0], set[1], set[2], set[3]);
        }
    }
}

/// <summary>
/// The upsampler's de-convolution (<see cref="Backends.IBackend.Deconvolution"/>): the decoder's three 32×32 token planes of
/// width D to the 64×64 triplane of C channels, kernel 2, stride 2. Peer: torch.nn.functional.conv_transpose2d.
/// </summary>
public class DeconvolutionBenchmarks : KernelBenchmarks<DeconvolutionShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var bound = 1f / MathF.Sqrt(Shape.InChannels);
        var side = Shape.Side * Shape.Kernel;
        return
        [
            Tensor.Empty([Shape.Batch, Shape.OutChannels, side, side]),
            RandomData.Uniform(random, -1, 1, Shape.Batch, Shape.InChannels, Shape.Side, Shape.Side),
            RandomData.Uniform(random, -bound, bound, Shape.InChannels, Shape.OutChannels, Shape.Kernel, Shape.Kernel),
            RandomData.Uniform(random, -bound, bound, Shape.OutChannels),
        ];
    }

    [Benchmark(Description = "Deconvolution")]
    public void Deconvolution()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.Deconvolution(set[0], set[1], set[2], set[3]);
        }
    }
}
