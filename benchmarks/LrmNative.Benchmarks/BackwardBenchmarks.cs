using BenchmarkDotNet.Attributes;
using LrmNative.Backends;
using LrmNative.Model;

namespace LrmNative.Benchmarks;

// The backward passes training spends its time in, one suite per family, on the forward suites' shapes. What the forward
// saved (log-sum-exp, mean/rstd) is computed once per input set by the CPU backend before measuring; only the backward call
// is timed. Peers: the same PyTorch ops under autograd, the forward run once, then torch.autograd.grad timed alone.

/// <summary>
/// <see cref="IBackend.GemmBackward"/> of the decoder MLP's first layer (weight (N, K) transposed, bias): gradInput,
/// gradWeight and gradBias from gradOutput, as training asks for all three. Peer: torch.autograd.grad of F.linear.
/// </summary>
public class GemmBackwardBenchmarks : KernelBenchmarks<GemmBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([Shape.M, Shape.K]),
        Tensor.Empty([Shape.N, Shape.K]),
        Tensor.Zeros([Shape.N]),
        RandomData.Uniform(random, -1, 1, Shape.M, Shape.N),
        RandomData.Uniform(random, -1, 1, Shape.M, Shape.K),
        RandomData.Uniform(random, -0.05f, 0.05f, Shape.N, Shape.K),
    ];

    [Benchmark(Description = "GemmBackward")]
    public void GemmBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.GemmBackward(set[0], set[1], set[2], set[3], set[4], set[5], transposeB: true);
        }
    }
}

/// <summary>
/// <see cref="IBackend.AttentionBackward"/> (fused, probabilities recomputed from the saved log-sum-exp) of the decoder's
/// self-attention (gradients into a packed dqkv) and cross-attention (dq and a packed dkv). Peer: torch.autograd.grad of the
/// forward suite's attention with respect to qkv (self) or q and kv (cross).
/// </summary>
public class AttentionBackwardBenchmarks : KernelBenchmarks<AttentionBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        int tq = Shape.QueryTokens, tk = Shape.KeyTokens, width = Shape.Width;
        var gradOutput = RandomData.Uniform(random, -1, 1, 1, tq, width);
        var output = Tensor.Empty([1, tq, width]);
        var logSumExp = Tensor.Empty([1, Shape.Heads, tq]);
        using var cpu = new CpuBackend();
        if (Shape.Self)
        {
            var qkv = RandomData.Uniform(random, -1, 1, 1, tq, 3 * width);
            cpu.Attention(output, logSumExp, new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2L * width), Shape.Heads, Scale);
            return [Tensor.Empty([1, tq, 3 * width]), gradOutput, output, logSumExp, qkv];
        }
        var query = RandomData.Uniform(random, -1, 1, 1, tq, width);
        var kv = RandomData.Uniform(random, -1, 1, 1, tk, 2 * width);
        cpu.Attention(output, logSumExp, query, new ColumnSlice(kv, 0), new ColumnSlice(kv, width), Shape.Heads, Scale);
        return [Tensor.Empty([1, tq, width]), Tensor.Empty([1, tk, 2 * width]), gradOutput, output, logSumExp, query, kv];
    }

    private float Scale => 1f / MathF.Sqrt(Shape.HeadDim);

    [Benchmark(Description = "AttentionBackward")]
    public void AttentionBackward()
    {
        var set = NextSet();
        var width = Shape.Width;
        var scale = Scale;
        using (Device.Measure())
        {
            if (Shape.Self)
            {
                Device.Backend.AttentionBackward(new ColumnSlice(set[0], 0), new ColumnSlice(set[0], width), new ColumnSlice(set[0], 2L * width),
                    set[1], set[2], set[3], new ColumnSlice(set[4], 0), new ColumnSlice(set[4], width), new ColumnSlice(set[4], 2L * width), Shape.Heads, scale);
            }
            else
            {
                Device.Backend.AttentionBackward(set[0], new ColumnSlice(set[1], 0), new ColumnSlice(set[1], width),
                    set[2], set[3], set[4], set[5], new ColumnSlice(set[6], 0), new ColumnSlice(set[6], width), Shape.Heads, scale);
            }
        }
    }
}

/// <summary>
/// <see cref="IBackend.LayerNormBackward"/> of the decoder's final norm from the saved mean and rstd: gradInput, gradWeight,
/// gradBias. Peer: torch.autograd.grad of F.layer_norm with respect to input, weight and bias.
/// </summary>
public class LayerNormBackwardBenchmarks : KernelBenchmarks<LayerNormBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        int rows = Shape.Rows, channels = Shape.Channels;
        var input = RandomData.Uniform(random, -2, 2, rows, channels);
        var weight = RandomData.Uniform(random, 0.5f, 1.5f, channels);
        var bias = RandomData.Uniform(random, -0.5f, 0.5f, channels);
        var mean = Tensor.Empty([rows]);
        var rstd = Tensor.Empty([rows]);
        using (var cpu = new CpuBackend())
        using (var output = Tensor.Empty([rows, channels]))
        {
            cpu.LayerNorm(output, mean, rstd, input, weight, bias, ModelConfig.LayerNormEpsilon);
        }
        bias.Dispose();
        return
        [
            Tensor.Empty([rows, channels]),
            Tensor.Zeros([channels]),
            Tensor.Zeros([channels]),
            RandomData.Uniform(random, -1, 1, rows, channels),
            mean,
            rstd,
            input,
            weight,
        ];
    }

    [Benchmark(Description = "LayerNormBackward")]
    public void LayerNormBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.LayerNormBackward(set[0], set[1], set[2], set[3], set[4], set[5], set[6], set[7]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.ModLNBackward"/> of the decoder's ModLN from the saved mean and rstd: gradInput, gradWeight, gradBias,
/// gradShift, gradScale. Peer: torch.autograd.grad of F.layer_norm(x)·(1 + scale) + shift with respect to all five.
/// </summary>
public class ModLNBackwardBenchmarks : KernelBenchmarks<ModLNBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        int tokens = Shape.Tokens, channels = Shape.Channels;
        var input = RandomData.Uniform(random, -2, 2, 1, tokens, channels);
        var weight = RandomData.Uniform(random, 0.5f, 1.5f, channels);
        var bias = RandomData.Uniform(random, -0.5f, 0.5f, channels);
        var shift = RandomData.Uniform(random, -0.5f, 0.5f, 1, channels);
        var scale = RandomData.Uniform(random, -0.5f, 0.5f, 1, channels);
        var mean = Tensor.Empty([1, tokens]);
        var rstd = Tensor.Empty([1, tokens]);
        using (var cpu = new CpuBackend())
        using (var output = Tensor.Empty([1, tokens, channels]))
        {
            cpu.ModLN(output, mean, rstd, input, weight, bias, shift, scale, ModelConfig.LayerNormEpsilon);
        }
        shift.Dispose();
        return
        [
            Tensor.Empty([1, tokens, channels]),
            Tensor.Zeros([channels]),
            Tensor.Zeros([channels]),
            Tensor.Empty([1, channels]),
            Tensor.Empty([1, channels]),
            RandomData.Uniform(random, -1, 1, 1, tokens, channels),
            mean,
            rstd,
            input,
            weight,
            bias,
            scale,
        ];
    }

    [Benchmark(Description = "ModLNBackward")]
    public void ModLNBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.ModLNBackward(set[0], set[1], set[2], set[3], set[4], set[5], set[6], set[7], set[8], set[9], set[10], set[11]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.TriplaneSampleBackward"/> into the planes (no point gradient, as in training) of one query chunk of
/// random points. Peer: torch.autograd.grad of the forward suite's F.grid_sample with respect to the planes.
/// </summary>
public class TriplaneBackwardBenchmarks : KernelBenchmarks<TriplaneBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, 3, Shape.Resolution, Shape.Resolution, Shape.Channels]),
        RandomData.Uniform(random, -1, 1, 1, Shape.Points, 3L * Shape.Channels),
        RandomData.Uniform(random, -1, 1, 1, 3, Shape.Resolution, Shape.Resolution, Shape.Channels),
        RandomData.Uniform(random, -1, 1, 1, Shape.Points, 3),
    ];

    [Benchmark(Description = "TriplaneSampleBackward")]
    public void SampleBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.TriplaneSampleBackward(set[0], null, set[1], set[2], set[3]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.MlpBackward"/> of the triplane NeRF MLP (ReLU hidden, linear output) on one query chunk: the input
/// gradient (it flows on to the triplane) and every weight and bias gradient; the fused kernel recomputes the activations.
/// Peer: torch.autograd.grad of the nn.Sequential with respect to the input and all parameters.
/// </summary>
public class NerfMlpBackwardBenchmarks : KernelBenchmarks<NerfMlpBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var widths = Shape.Widths;
        var layers = Shape.Layers;
        var set = new List<Tensor>
        {
            Tensor.Empty([Shape.Rows, Shape.InputWidth]),
            RandomData.Uniform(random, -1, 1, Shape.Rows, NerfMlpShape.OutputWidth),
            RandomData.Uniform(random, -1, 1, Shape.Rows, Shape.InputWidth),
        };
        for (var layer = 0; layer < layers; layer++)
        {
            var bound = MathF.Sqrt(6f / widths[layer]);
            set.Add(RandomData.Uniform(random, -bound, bound, widths[layer + 1], widths[layer]));
        }
        for (var layer = 0; layer < layers; layer++)
        {
            set.Add(RandomData.Uniform(random, -0.1f, 0.1f, widths[layer + 1]));
        }
        for (var layer = 0; layer < layers; layer++)
        {
            set.Add(Tensor.Zeros([widths[layer + 1], widths[layer]]));
        }
        for (var layer = 0; layer < layers; layer++)
        {
            set.Add(Tensor.Zeros([widths[layer + 1]]));
        }
        return [.. set];
    }

    [Benchmark(Description = "MlpBackward")]
    public void MlpBackward()
    {
        var set = NextSet();
        var layers = Shape.Layers;
        var weights = set[3..(3 + layers)];
        var biases = set[(3 + layers)..(3 + 2 * layers)];
        var gradWeights = set[(3 + 2 * layers)..(3 + 3 * layers)];
        var gradBiases = set[(3 + 3 * layers)..(3 + 4 * layers)];
        using (Device.Measure())
        {
            Device.Backend.MlpBackward(set[0], gradWeights, gradBiases, set[1], set[2], weights, biases, Activation.Relu, Activation.None);
        }
    }
}

/// <summary>
/// <see cref="IBackend.RenderMarchBackward"/> of a 128×128 render (coarse and fine sets merged by depth, composited on white)
/// into both sets' decoded samples, from the rgb and opacity gradients as the trainer passes them; each ray is recomputed.
/// Peer: torch.autograd.grad of the forward suite's unify-samples + MipRayMarcher2 with respect to both decoded sets.
/// </summary>
public class RenderMarchBackwardBenchmarks : KernelBenchmarks<RenderMarchBackwardShape>
{
    private static readonly float[] White = [1f, 1f, 1f];

    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        int rays = Shape.Rays, a = Shape.SamplesA, b = Shape.SamplesB;
        return
        [
            Tensor.Empty([1, rays * a, 4]),
            Tensor.Empty([1, rays * b, 4]),
            RandomData.Uniform(random, -1, 1, 1, rays, 3),
            RandomData.Uniform(random, -1, 1, 1, rays),
            RenderMarchBenchmarks.SortedDepths(random, rays, a),
            RenderMarchBenchmarks.Decoded(random, rays * a),
            RenderMarchBenchmarks.SortedDepths(random, rays, b),
            RenderMarchBenchmarks.Decoded(random, rays * b),
            Tensor.FromArray([RenderMarchBenchmarks.Near, RenderMarchBenchmarks.Far], 1, 2),
        ];
    }

    [Benchmark(Description = "RenderMarchBackward")]
    public void MarchBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.RenderMarchBackward(set[0], set[1], set[2], null, set[3], set[4], set[5], set[6], set[7], White, set[8]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.PatchEmbedBackward"/> of the encoder's stem as training calls it: gradWeight and gradBias, no image
/// gradient (the image is an input). Peer: torch.autograd.grad of the forward suite's F.conv2d with respect to weight and bias.
/// </summary>
public class PatchEmbedBackwardBenchmarks : KernelBenchmarks<PatchEmbedBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var bound = 1f / MathF.Sqrt(PatchEmbedShape.InputChannels * Shape.Patch * Shape.Patch);
        return
        [
            // gradWeight and gradBias accumulate (+=): zeros, not whatever memory held.
            Tensor.Zeros([Shape.Width, PatchEmbedShape.InputChannels, Shape.Patch, Shape.Patch]),
            Tensor.Zeros([Shape.Width]),
            RandomData.Uniform(random, -1, 1, 1, Shape.Tokens, Shape.Width),
            RandomData.Uniform(random, 0, 1, 1, PatchEmbedShape.InputChannels, Shape.Size, Shape.Size),
            RandomData.Uniform(random, -bound, bound, Shape.Width, PatchEmbedShape.InputChannels, Shape.Patch, Shape.Patch),
        ];
    }

    [Benchmark(Description = "PatchEmbedBackward")]
    public void PatchEmbedBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.PatchEmbedBackward(null, set[0], set[1], set[2], set[3], set[4]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.DeconvolutionBackward"/> of the upsampler: gradInput (on into the decoder), gradWeight, gradBias.
/// Peer: torch.autograd.grad of F.conv_transpose2d with respect to input, weight and bias.
/// </summary>
public class DeconvolutionBackwardBenchmarks : KernelBenchmarks<DeconvolutionBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        var bound = 1f / MathF.Sqrt(Shape.InChannels);
        var side = Shape.Side * Shape.Kernel;
        return
        [
            Tensor.Empty([Shape.Batch, Shape.InChannels, Shape.Side, Shape.Side]),
            // gradWeight and gradBias accumulate (+=): zeros, not whatever memory held.
            Tensor.Zeros([Shape.InChannels, Shape.OutChannels, Shape.Kernel, Shape.Kernel]),
            Tensor.Zeros([Shape.OutChannels]),
            RandomData.Uniform(random, -1, 1, Shape.Batch, Shape.OutChannels, side, side),
            RandomData.Uniform(random, -1, 1, Shape.Batch, Shape.InChannels, Shape.Side, Shape.Side),
            RandomData.Uniform(random, -bound, bound, Shape.InChannels, Shape.OutChannels, Shape.Kernel, Shape.Kernel),
        ];
    }

    [Benchmark(Description = "DeconvolutionBackward")]
    public void DeconvolutionBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.DeconvolutionBackward(set[0], set[1], set[2], set[3], set[4], set[5]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.ResizeBackward"/> of the encoder's position table: the patch-grid gradient spread back onto the
/// table (DINOv2: antialiased bicubic, a = −0.5; DINO v1: bilinear). The model reaches the same kernel through
/// ResizeScaledBackward with the scale factors of its config. Peer: torch.autograd.grad of F.interpolate with respect to the table.
/// </summary>
public class ResizeBackwardBenchmarks : KernelBenchmarks<ResizeBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Channels, Shape.Grid, Shape.Grid]),
        RandomData.Uniform(random, -1, 1, 1, Shape.Channels, Shape.Patches, Shape.Patches),
    ];

    [Benchmark(Description = "ResizeBackward")]
    public void ResizeBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            if (Shape.Bicubic)
            {
                Device.Backend.ResizeBackward(set[0], set[1], ResizeMode.Bicubic, -0.5f, antialias: true);
            }
            else
            {
                Device.Backend.ResizeBackward(set[0], set[1], ResizeMode.Bilinear);
            }
        }
    }
}

/// <summary>
/// <see cref="IBackend.ActivateBackward"/> of the exact GELU on the decoder MLP's hidden layer (input recomputed from, i.e.
/// read as, the saved pre-activation). Peer: torch.autograd.grad of F.gelu with respect to its input.
/// </summary>
public class ActivationBackwardBenchmarks : KernelBenchmarks<ActivationBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([Shape.Rows, Shape.Channels]),
        RandomData.Uniform(random, -1, 1, Shape.Rows, Shape.Channels),
        RandomData.Uniform(random, -3, 3, Shape.Rows, Shape.Channels),
    ];

    [Benchmark(Description = "ActivateBackward")]
    public void ActivateBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.ActivateBackward(set[0], set[1], set[2], Activation.Gelu);
        }
    }
}

/// <summary>
/// <see cref="IBackend.LayerScaleBackward"/> of a DINOv2 block's LayerScale as the encoder calls it: gradInput and gradGamma
/// (the residual branch is added by the caller). Peer: torch.autograd.grad of x·γ with respect to x and γ.
/// </summary>
public class LayerScaleBackwardBenchmarks : KernelBenchmarks<LayerScaleBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Tokens, Shape.Channels]),
        Tensor.Zeros([Shape.Channels]),
        RandomData.Uniform(random, -1, 1, 1, Shape.Tokens, Shape.Channels),
        RandomData.Uniform(random, -2, 2, 1, Shape.Tokens, Shape.Channels),
        RandomData.Uniform(random, 0.5f, 1.5f, Shape.Channels),
    ];

    [Benchmark(Description = "LayerScaleBackward")]
    public void LayerScaleBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.LayerScaleBackward(set[0], set[1], null, set[2], set[3], set[4]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.RenderDecodeBackward"/> of one 128² render's samples into the raw MLP output, about a sixth of the
/// points outside the box (zero gradient there). Peer: torch.autograd.grad of the same decode written with torch.where.
/// </summary>
public class RenderDecodeBackwardBenchmarks : KernelBenchmarks<RenderDecodeBackwardShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([1, Shape.Rows, 4]),
        RandomData.Uniform(random, -1, 1, 1, Shape.Rows, 4),
        RandomData.Uniform(random, -3, 3, 1, Shape.Rows, 4),
        RandomData.Uniform(random, -1.06f, 1.06f, 1, Shape.Rows, 3),
    ];

    [Benchmark(Description = "RenderDecodeBackward")]
    public void RenderDecodeBackward()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            Device.Backend.RenderDecodeBackward(set[0], set[1], set[2], set[3]);
        }
    }
}

/// <summary>
/// <see cref="IBackend.AdamWStep"/> on one parameter tensor with the paper's settings (lr 4e-4, β (0.9, 0.95), ε 1e-8, weight
/// decay 0.05, no clipping scale). Each call updates the weights and moments in place, as training does. Peer:
/// torch.optim.AdamW(foreach=False).step() on a parameter of the same size with its .grad set.
/// </summary>
public class AdamWBenchmarks : KernelBenchmarks<AdamWShape>
{
    private long _step;

    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        RandomData.Uniform(random, -0.05f, 0.05f, Shape.Rows, Shape.Columns),
        RandomData.Uniform(random, -1e-3f, 1e-3f, Shape.Rows, Shape.Columns),
        RandomData.Uniform(random, 1e-8f, 1e-6f, Shape.Rows, Shape.Columns),
        RandomData.Uniform(random, -1e-2f, 1e-2f, Shape.Rows, Shape.Columns),
    ];

    [Benchmark(Description = "AdamWStep")]
    public void AdamWStep()
    {
        var set = NextSet();
        var step = ++_step;
        using (Device.Measure())
        {
            Device.Backend.AdamWStep(set[0], set[1], set[2], set[3], 4e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, 1f, step);
        }
    }
}
