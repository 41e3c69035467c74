using BenchmarkDotNet.Attributes;
using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Benchmarks;

// The training losses on rendered patches, value and gradient with respect to the prediction in one call, as the trainer
// calls them (LrmTrainingStep). Host code: no device kernel, so the suites run on the CPU only (IHostOnlyShape). Predictions
// and targets are uniform in [0, 1], rotated as every suite's inputs. Peers: benchmarks/peers/kernels_torch.py, the same
// losses written with torch.nn.functional / torch.nn and differentiated by autograd, forward and backward timed together.

/// <summary>
/// <see cref="Losses.SsimLoss(Tensor?, Tensor, Tensor, float, bool)"/> of a batch of (B, S, S, 3) patches: 1 − SSIM (11×11
/// Gaussian, σ 1.5, valid windows) and its gradient. Peer: the same SSIM from separable depthwise F.conv2d passes on (B, 3, S, S),
/// torch.autograd.grad of 1 − mean SSIM with respect to the prediction.
/// </summary>
public class SsimLossBenchmarks : KernelBenchmarks<SsimLossShape>
{
    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random) =>
    [
        Tensor.Empty([Shape.Batch, Shape.Side, Shape.Side, SsimLossShape.Channels]),
        RandomData.Uniform(random, 0, 1, Shape.Batch, Shape.Side, Shape.Side, SsimLossShape.Channels),
        RandomData.Uniform(random, 0, 1, Shape.Batch, Shape.Side, Shape.Side, SsimLossShape.Channels),
    ];

    [Benchmark(Description = "SsimLoss")]
    public double SsimLoss()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            return Losses.SsimLoss(set[0], set[1], set[2]);
        }
    }
}

/// <summary>
/// <see cref="Lpips.Evaluate(Tensor?, Tensor, Tensor, float, bool)"/> (LPIPS v0.1, AlexNet features) of a batch of (B, S, S, 3)
/// patches and its gradient, through a network of AlexNet's sizes with seeded random weights written in the user's weights
/// format (torchvision's features.{0,3,6,8,10} and lpips' lin0..lin4) and read by <see cref="Lpips.Load"/>, as training
/// opens one. Peer: AlexNet's features from torch.nn layers with lpips' scaling, unit normalisation and linear heads,
/// parameters frozen, torch.autograd.grad of the batch mean with respect to the prediction.
/// </summary>
public class LpipsLossBenchmarks : KernelBenchmarks<LpipsLossShape>
{
    private static readonly int[] Kernels = [11, 5, 3, 3, 3];

    private Lpips? _network;

    /// <inheritdoc />
    protected override Tensor[] CreateSet(Random random)
    {
        _network ??= RandomNetwork(Shape.Channels, seed: 7);
        return
        [
            Tensor.Empty([Shape.Batch, Shape.Side, Shape.Side, 3]),
            RandomData.Uniform(random, 0, 1, Shape.Batch, Shape.Side, Shape.Side, 3),
            RandomData.Uniform(random, 0, 1, Shape.Batch, Shape.Side, Shape.Side, 3),
        ];
    }

    /// <inheritdoc />
    protected override void ReleaseCase()
    {
        _network?.Dispose();
        _network = null;
    }

    [Benchmark(Description = "LpipsLoss")]
    public double LpipsLoss()
    {
        var set = NextSet();
        using (Device.Measure())
        {
            return _network!.Evaluate(set[0], set[1], set[2], 1f, accumulate: false);
        }
    }

    /// <summary>
    /// An LPIPS network with the given channel counts and random weights (PyTorch's default ranges: weights and biases uniform
    /// in ±1/√fan-in; the linear heads uniform in [0, 1/C), non-negative as lpips keeps them), saved in the user's weights format
    /// and loaded from it.
    /// </summary>
    internal static Lpips RandomNetwork(IReadOnlyList<int> channels, int seed)
    {
        var random = new Random(seed);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var folder = Directory.CreateTempSubdirectory("lrm-bench-lpips-").FullName;
        try
        {
            var inChannels = 3;
            for (var k = 0; k < Kernels.Length; k++)
            {
                var bound = 1f / MathF.Sqrt(inChannels * Kernels[k] * Kernels[k]);
                tensors[Training.Lpips.WeightName(k)] = RandomData.Uniform(random, -bound, bound, channels[k], inChannels, Kernels[k], Kernels[k]);
                tensors[Training.Lpips.BiasName(k)] = RandomData.Uniform(random, -bound, bound, channels[k]);
                tensors[Training.Lpips.LinearName(k)] = RandomData.Uniform(random, 0, 1f / channels[k], 1, channels[k], 1, 1);
                inChannels = channels[k];
            }
            var path = Path.Combine(folder, "lpips-alex-random.safetensors");
            SafeTensorsFile.Write(path, tensors);
            return Training.Lpips.Load(path);
        }
        finally
        {
            foreach (var tensor in tensors.Values)
            {
                tensor.Dispose();
            }
            Directory.Delete(folder, recursive: true);
        }
    }
}
