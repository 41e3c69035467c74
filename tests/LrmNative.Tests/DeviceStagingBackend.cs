using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// Lets host-tensor test bodies drive <see cref="CudaBackend"/>: every call uploads each tensor
/// argument (outputs too, so their poison travels) into a device tensor with poisoned guard
/// words before and after it, runs the op on the device, checks that no guard word changed, and
/// downloads the outputs into the caller's host tensors. A tensor passed twice (in-place ops)
/// maps to one device tensor. The parity tests thus see the GPU's result through the same
/// unwritten-element and out-of-bounds checks as the CPU's.
/// </summary>
internal sealed class DeviceStagingBackend(CudaBackend device) : IBackend
{
    private const uint Poison = GuardedOutputs.Poison;

    public CudaBackend Inner { get; } = device;

    public string Name => Inner.Name;

    public Device Device => Device.Cpu;

    private sealed class Call(CudaBackend backend) : IDisposable
    {
        private readonly Dictionary<Tensor, Tensor> _map = new(ReferenceEqualityComparer.Instance);
        private readonly List<Tensor> _outputs = [];

        public Tensor In(Tensor host)
        {
            if (!_map.TryGetValue(host, out var onDevice))
            {
                onDevice = backend.CreateGuarded(host.Shape, host.DataType, Poison);
                backend.Upload(onDevice, host);
                _map[host] = onDevice;
            }
            return onDevice;
        }

        public Tensor? InOptional(Tensor? host) => host is null ? null : In(host);

        public Tensor Out(Tensor host)
        {
            var onDevice = In(host);
            _outputs.Add(host);
            return onDevice;
        }

        public Tensor? OutOptional(Tensor? host) => host is null ? null : Out(host);

        public ColumnSlice Slice(ColumnSlice slice) => new(In(slice.Source), slice.ColumnOffset);

        public ColumnSlice OutSlice(ColumnSlice slice)
        {
            if (!_outputs.Contains(slice.Source))
            {
                Out(slice.Source);
            }
            return new(In(slice.Source), slice.ColumnOffset);
        }

        public void Finish()
        {
            foreach (var host in _outputs)
            {
                var onDevice = _map[host];
                Assert.That(backend.DeviceGuardsIntact(onDevice, Poison), Is.True,
                    $"CUDA op wrote outside output {host.ShapeText} (device guard words changed)");
                backend.Download(host, onDevice);
            }
        }

        public void Dispose()
        {
            foreach (var tensor in _map.Values)
            {
                tensor.Dispose();
            }
        }
    }

    private void Run(Action<Call> body)
    {
        using var call = new Call(Inner);
        body(call);
        call.Finish();
    }

    public void Gemm(Tensor output, Tensor a, Tensor b, Tensor? bias = null, Tensor? residual = null, bool transposeA = false, bool transposeB = false) =>
        Run(c => Inner.Gemm(c.Out(output), c.In(a), c.In(b), c.InOptional(bias), c.InOptional(residual), transposeA, transposeB));

    public void LayerNorm(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, float epsilon) =>
        Run(c => Inner.LayerNorm(c.Out(output), c.OutOptional(mean), c.OutOptional(rstd), c.In(input), c.InOptional(weight), c.InOptional(bias), epsilon));

    public void ModLN(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor shift, Tensor scale, float epsilon) =>
        Run(c => Inner.ModLN(c.Out(output), c.OutOptional(mean), c.OutOptional(rstd), c.In(input), c.InOptional(weight), c.InOptional(bias),
            c.In(shift), c.In(scale), epsilon));

    public void Attention(Tensor output, Tensor? logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale) =>
        Run(c => Inner.Attention(c.Out(output), c.OutOptional(logSumExp), c.Slice(query), c.Slice(key), c.Slice(value), heads, scale));

    public void Activate(Tensor output, Tensor input, Activation activation) =>
        Run(c => Inner.Activate(c.Out(output), c.In(input), activation));

    public void Softmax(Tensor output, Tensor input) => Run(c => Inner.Softmax(c.Out(output), c.In(input)));

    public void PatchEmbed(Tensor output, Tensor image, Tensor weight, Tensor? bias) =>
        Run(c => Inner.PatchEmbed(c.Out(output), c.In(image), c.In(weight), c.InOptional(bias)));

    public void Deconvolution(Tensor output, Tensor input, Tensor weight, Tensor? bias) =>
        Run(c => Inner.Deconvolution(c.Out(output), c.In(input), c.In(weight), c.InOptional(bias)));

    public void Resize(Tensor output, Tensor input, ResizeMode mode, float cubicA = -0.75f, bool antialias = false) =>
        Run(c => Inner.Resize(c.Out(output), c.In(input), mode, cubicA, antialias));

    public void ResizeScaled(Tensor output, Tensor input, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias) =>
        Run(c => Inner.ResizeScaled(c.Out(output), c.In(input), mode, scaleFactorHeight, scaleFactorWidth, cubicA, antialias));

    public void TriplaneSample(Tensor output, Tensor planes, Tensor points) =>
        Run(c => Inner.TriplaneSample(c.Out(output), c.In(planes), c.In(points)));

    public void Mlp(Tensor output, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation) =>
        Run(c => Inner.Mlp(c.Out(output), c.In(input), weights.Select(c.In).ToList(), biases.Select(c.InOptional).ToList(), hiddenActivation, outputActivation));

    public void Convert(Tensor output, Tensor input) => Run(c => Inner.Convert(c.Out(output), c.In(input)));

    public void Add(Tensor output, Tensor a, Tensor b) => Run(c => Inner.Add(c.Out(output), c.In(a), c.In(b)));

    public void LayerScale(Tensor output, Tensor input, Tensor gamma, Tensor? residual) =>
        Run(c => Inner.LayerScale(c.Out(output), c.In(input), c.In(gamma), c.InOptional(residual)));

    public void Transpose(Tensor output, Tensor input) => Run(c => Inner.Transpose(c.Out(output), c.In(input)));

    public void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count) =>
        Run(c => Inner.Copy(c.Out(destination), destinationOffset, c.In(source), sourceOffset, count));

    public void NerfDecode(Tensor? sigma, Tensor? rgb, Tensor raw) => Run(c => Inner.NerfDecode(c.OutOptional(sigma), c.OutOptional(rgb), c.In(raw)));

    public void RenderRays(Tensor origins, Tensor directions, Tensor depths, Tensor? depthRange, Tensor cameras, int height, int width) =>
        Run(c => Inner.RenderRays(c.Out(origins), c.Out(directions), c.Out(depths), c.OutOptional(depthRange), c.In(cameras), height, width));

    public void RenderPoints(Tensor points, Tensor origins, Tensor directions, Tensor depths) =>
        Run(c => Inner.RenderPoints(c.Out(points), c.In(origins), c.In(directions), c.In(depths)));

    public void RenderDecode(Tensor decoded, Tensor raw, Tensor points) => Run(c => Inner.RenderDecode(c.Out(decoded), c.In(raw), c.In(points)));

    public void RenderImportance(Tensor fineDepths, Tensor coarseDepths, Tensor coarseWeights) =>
        Run(c => Inner.RenderImportance(c.Out(fineDepths), c.In(coarseDepths), c.In(coarseWeights)));

    public void RenderMarch(Tensor? rgb, Tensor? depth, Tensor? opacity, Tensor? weights, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        var colour = background.ToArray();
        Run(c => Inner.RenderMarch(c.OutOptional(rgb), c.OutOptional(depth), c.OutOptional(opacity), c.OutOptional(weights), c.In(depthsA), c.In(decodedA),
            c.InOptional(depthsB), c.InOptional(decodedB), colour, c.InOptional(depthRange)));
    }

    public (Tensor Vertices, Tensor Triangles) MarchingCubes(Tensor field, float level, ReadOnlySpan<float> bounds = default)
    {
        using var onDevice = Inner.Upload(field);
        var (vertices, triangles) = Inner.MarchingCubes(onDevice, level, bounds);
        using (vertices)
        using (triangles)
        {
            return (Inner.Download(vertices), Inner.Download(triangles));
        }
    }

    // Backward ops are not staged: the CUDA backend has none yet, and says so.
    public void GemmBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA = false, bool transposeB = false) =>
        Run(c => Inner.GemmBackward(c.OutOptional(gradA), c.OutOptional(gradB), c.OutOptional(gradBias), c.In(gradOutput), c.In(a), c.In(b), transposeA, transposeB));

    public void LayerNormBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight) =>
        Run(c => Inner.LayerNormBackward(c.Out(gradInput), c.OutOptional(gradWeight), c.OutOptional(gradBias), c.In(gradOutput), c.In(mean), c.In(rstd),
            c.In(input), c.InOptional(weight)));

    public void ModLNBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradShift, Tensor gradScale, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor scale) =>
        Run(c => Inner.ModLNBackward(c.Out(gradInput), c.OutOptional(gradWeight), c.OutOptional(gradBias), c.Out(gradShift), c.Out(gradScale),
            c.In(gradOutput), c.In(mean), c.In(rstd), c.In(input), c.InOptional(weight), c.InOptional(bias), c.In(scale)));

    public void AttentionBackward(ColumnSlice gradQuery, ColumnSlice gradKey, ColumnSlice gradValue, Tensor gradOutput, Tensor output, Tensor logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale) =>
        Run(c => Inner.AttentionBackward(c.OutSlice(gradQuery), c.OutSlice(gradKey), c.OutSlice(gradValue), c.In(gradOutput), c.In(output), c.In(logSumExp),
            c.Slice(query), c.Slice(key), c.Slice(value), heads, scale));

    public void ActivateBackward(Tensor gradInput, Tensor gradOutput, Tensor input, Activation activation) =>
        Run(c => Inner.ActivateBackward(c.Out(gradInput), c.In(gradOutput), c.In(input), activation));

    public void SoftmaxBackward(Tensor gradInput, Tensor gradOutput, Tensor output) =>
        Run(c => Inner.SoftmaxBackward(c.Out(gradInput), c.In(gradOutput), c.In(output)));

    public void PatchEmbedBackward(Tensor? gradImage, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor image, Tensor weight) =>
        Run(c => Inner.PatchEmbedBackward(c.OutOptional(gradImage), c.Out(gradWeight), c.OutOptional(gradBias), c.In(gradOutput), c.In(image), c.In(weight)));

    public void DeconvolutionBackward(Tensor? gradInput, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight) =>
        Run(c => Inner.DeconvolutionBackward(c.OutOptional(gradInput), c.Out(gradWeight), c.OutOptional(gradBias), c.In(gradOutput), c.In(input), c.In(weight)));

    public void ResizeBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, float cubicA = -0.75f, bool antialias = false) =>
        Run(c => Inner.ResizeBackward(c.Out(gradInput), c.In(gradOutput), mode, cubicA, antialias));

    public void TriplaneSampleBackward(Tensor gradPlanes, Tensor? gradPoints, Tensor gradOutput, Tensor planes, Tensor points) =>
        Run(c => Inner.TriplaneSampleBackward(c.Out(gradPlanes), c.OutOptional(gradPoints), c.In(gradOutput), c.In(planes), c.In(points)));

    public void MlpBackward(Tensor? gradInput, IReadOnlyList<Tensor> gradWeights, IReadOnlyList<Tensor?> gradBiases, Tensor gradOutput, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation) =>
        Run(c => Inner.MlpBackward(c.OutOptional(gradInput), gradWeights.Select(c.Out).ToList(), gradBiases.Select(c.OutOptional).ToList(), c.In(gradOutput),
            c.In(input), weights.Select(c.In).ToList(), biases.Select(c.InOptional).ToList(), hiddenActivation, outputActivation));

    public void LayerScaleBackward(Tensor? gradInput, Tensor? gradGamma, Tensor? gradResidual, Tensor gradOutput, Tensor input, Tensor gamma) =>
        Run(c => Inner.LayerScaleBackward(c.OutOptional(gradInput), c.OutOptional(gradGamma), c.OutOptional(gradResidual), c.In(gradOutput), c.In(input), c.In(gamma)));

    public void ResizeScaledBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias) =>
        Run(c => Inner.ResizeScaledBackward(c.Out(gradInput), c.In(gradOutput), mode, scaleFactorHeight, scaleFactorWidth, cubicA, antialias));

    public void NerfDecodeBackward(Tensor gradRaw, Tensor? gradSigma, Tensor? gradRgb, Tensor raw) =>
        Run(c => Inner.NerfDecodeBackward(c.Out(gradRaw), c.InOptional(gradSigma), c.InOptional(gradRgb), c.In(raw)));

    public void RenderDecodeBackward(Tensor gradRaw, Tensor gradDecoded, Tensor raw, Tensor points) =>
        Run(c => Inner.RenderDecodeBackward(c.Out(gradRaw), c.In(gradDecoded), c.In(raw), c.In(points)));

    public void RenderMarchBackward(Tensor gradDecodedA, Tensor? gradDecodedB, Tensor? gradRgb, Tensor? gradDepth, Tensor? gradOpacity, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        var colour = background.ToArray();
        Run(c => Inner.RenderMarchBackward(c.Out(gradDecodedA), c.OutOptional(gradDecodedB), c.InOptional(gradRgb), c.InOptional(gradDepth), c.InOptional(gradOpacity),
            c.In(depthsA), c.In(decodedA), c.InOptional(depthsB), c.InOptional(decodedB), colour, c.InOptional(depthRange)));
    }

    public void AdamWStep(Tensor parameter, Tensor expAvg, Tensor expAvgSq, Tensor gradient, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, float gradientScale, long stepNumber) =>
        Run(c => Inner.AdamWStep(c.Out(parameter), c.Out(expAvg), c.Out(expAvgSq), c.In(gradient), learningRate, beta1, beta2, epsilon, weightDecay,
            gradientScale, stepNumber));

    public double SumOfSquares(Tensor input, out long nonFinite)
    {
        double sum = 0;
        long bad = 0;
        Run(c => sum = Inner.SumOfSquares(c.In(input), out bad));
        nonFinite = bad;
        return sum;
    }

    public void Dispose() => Inner.Dispose();
}

/// <summary>Opens the CUDA backend for a test fixture, or skips it with the reason there is none.</summary>
internal static class CudaTestDevice
{
    /// <summary>A staged CUDA backend with every launch checked, or Assert.Ignore("no CUDA device: …").</summary>
    public static DeviceStagingBackend Open(MatmulPrecision precision, int tensorCoreAttentionVersion = 1)
    {
        if (!CudaBackend.IsAvailable(out var reason))
        {
            Assert.Ignore($"no CUDA device: {reason}");
        }
        return new DeviceStagingBackend(new CudaBackend(new CudaBackendOptions
        {
            Precision = precision,
            SynchronizeEachLaunch = true,
            KernelCacheDirectory = KernelCacheDirectory,
            TensorCoreAttentionVersion = tensorCoreAttentionVersion,
        }));
    }

    /// <summary>A kernel cache shared by the test run (compiling every module once per run, not per fixture).</summary>
    public static string KernelCacheDirectory { get; } =
        Environment.GetEnvironmentVariable("LRM_KERNEL_CACHE") is { Length: > 0 } configured ? configured : Path.Combine(Path.GetTempPath(), "lrm-test-kernel-cache");
}
