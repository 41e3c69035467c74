using System.Runtime.InteropServices;
using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// Runs every op of an inner backend on staged copies of the caller's tensors: each call stages each tensor argument
/// (outputs too, so their poison travels) into the inner backend's memory with poisoned guard words around it, runs
/// the op there, checks that no guard word changed, and copies the outputs back. A tensor passed twice (in-place ops)
/// maps to one staged tensor. <see cref="DeviceStagingBackend"/> lets host-tensor test bodies drive the CUDA backend;
/// <see cref="SimulatedDeviceBackend"/> lets model code run against "device" tensors the host cannot read, with the
/// CPU kernels doing the work.
/// </summary>
internal abstract class StagingBackend<TInner>(TInner inner) : IBackend where TInner : IBackend
{
    protected const uint Poison = GuardedOutputs.Poison;

    public TInner Inner { get; } = inner;

    public virtual string Name => Inner.Name;

    public abstract Device Device { get; }

    public abstract Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32);

    public abstract void Fill(Tensor output, float value);

    public abstract void Upload(Tensor destination, Tensor host);

    public abstract void Download(Tensor host, Tensor source);

    /// <summary>A guarded copy of the caller's tensor in the inner backend's memory.</summary>
    protected abstract Tensor StageIn(Tensor caller);

    /// <summary>Checks the staged output's guards and copies it back into the caller's tensor.</summary>
    protected abstract void StageOut(Tensor caller, Tensor staged);

    /// <summary>A tensor of the inner backend (e.g. a marching-cubes result) as a new tensor of the caller's kind.</summary>
    protected abstract Tensor Return(Tensor inner);

    private sealed class Call(StagingBackend<TInner> owner) : IDisposable
    {
        private readonly Dictionary<Tensor, Tensor> _map = new(ReferenceEqualityComparer.Instance);
        private readonly List<Tensor> _outputs = [];

        public Tensor In(Tensor caller)
        {
            if (!_map.TryGetValue(caller, out var staged))
            {
                staged = owner.StageIn(caller);
                _map[caller] = staged;
            }
            return staged;
        }

        public Tensor? InOptional(Tensor? caller) => caller is null ? null : In(caller);

        public Tensor Out(Tensor caller)
        {
            var staged = In(caller);
            _outputs.Add(caller);
            return staged;
        }

        public Tensor? OutOptional(Tensor? caller) => caller is null ? null : Out(caller);

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
            foreach (var caller in _outputs)
            {
                owner.StageOut(caller, _map[caller]);
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
        using var call = new Call(this);
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

    public void TriplaneSampleSum(Tensor output, Tensor planes, Tensor points, Tensor? bias, Activation activation) =>
        Run(c => Inner.TriplaneSampleSum(c.Out(output), c.In(planes), c.In(points), c.InOptional(bias), activation));

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

    public void GridPoints(Tensor points, int resolution, long first) => Run(c => Inner.GridPoints(c.Out(points), resolution, first));

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
        using var call = new Call(this);
        var (vertices, triangles) = Inner.MarchingCubes(call.In(field), level, bounds);
        using (vertices)
        using (triangles)
        {
            var returned = Return(vertices);
            try
            {
                return (returned, Return(triangles));
            }
            catch
            {
                returned.Dispose();
                throw;
            }
        }
    }

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

/// <summary>Host-tensor test bodies on the CUDA backend (see <see cref="StagingBackend{TInner}"/>).</summary>
internal sealed class DeviceStagingBackend(CudaBackend device) : StagingBackend<CudaBackend>(device)
{
    public override Device Device => Device.Cpu;

    public override Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32) => Tensor.Empty(shape, dataType);

    public override void Fill(Tensor output, float value)
    {
        using var staged = StageIn(output);
        Inner.Fill(staged, value);
        StageOut(output, staged);
    }

    public override unsafe void Upload(Tensor destination, Tensor host) => HostBytes.Copy(destination.Pointer, host);

    public override unsafe void Download(Tensor host, Tensor source) => HostBytes.Copy(host.Pointer, source);

    protected override Tensor StageIn(Tensor caller)
    {
        var staged = Inner.CreateGuarded(caller.Shape, caller.DataType, Poison);
        Inner.Upload(staged, caller);
        return staged;
    }

    protected override void StageOut(Tensor caller, Tensor staged)
    {
        Assert.That(Inner.DeviceGuardsIntact(staged, Poison), Is.True, $"CUDA op wrote outside output {caller.ShapeText} (device guard words changed)");
        Inner.Download(caller, staged);
    }

    protected override Tensor Return(Tensor inner) => Inner.Download(inner);
}

/// <summary>
/// A pretend GPU for the model code: its tensors are CUDA-kind tensors over host memory that <see cref="Tensor.AsSpan{T}"/>
/// refuses to read (as it refuses real device memory), <see cref="Empty"/> fills them with NaN (so a read before a write
/// shows), every op rejects host tensors as the CUDA backend does, and the work is done by the CPU kernels on staged
/// copies — so the model's results on it must equal the CPU backend's bit for bit, and any host access the model still
/// makes fails the test instead of waiting for a GPU session.
/// </summary>
internal sealed unsafe class SimulatedDeviceBackend() : StagingBackend<CpuBackend>(new CpuBackend())
{
    public override string Name => "simulated-cuda";

    public override Device Device { get; } = Device.Cuda(0);

    /// <summary>Device tensors allocated and not yet freed (leak checks).</summary>
    public long LiveTensors => Interlocked.Read(ref _live);

    private long _live;

    private sealed class Buffer(SimulatedDeviceBackend owner, long bytes) : IDeviceBuffer
    {
        public SimulatedDeviceBackend Owner => owner;

        private void* _memory = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);

        public ulong Address => (ulong)_memory;

        public void* Pointer => _memory is not null ? _memory : throw new ObjectDisposedException("simulated device buffer");

        public void Release()
        {
            var memory = _memory;
            _memory = null;
            if (memory is not null)
            {
                NativeMemory.AlignedFree(memory);
                Interlocked.Decrement(ref owner._live);
            }
        }
    }

    public override Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32)
    {
        var count = 1L;
        foreach (var size in shape)
        {
            count = checked(count * size);
        }
        var bytes = count * dataType.ElementSize();
        var buffer = new Buffer(this, bytes);
        Interlocked.Increment(ref _live);
        new Span<byte>(buffer.Pointer, (int)bytes).Fill(0xFF); // NaN in fp32 and bf16, -1 in Int32
        return Tensor.OnDevice(shape, dataType, Device, buffer);
    }

    public override void Fill(Tensor output, float value)
    {
        using var staged = StageIn(output);
        Inner.Fill(staged, value);
        StageOut(output, staged);
    }

    public override void Upload(Tensor destination, Tensor host)
    {
        Expect.Host("Upload", "host", host);
        BackendMemory.SameLayout("Upload", destination, host);
        HostBytes.Copy(Memory(destination), host);
    }

    public override void Download(Tensor host, Tensor source)
    {
        Expect.Host("Download", "host", host);
        BackendMemory.SameLayout("Download", host, source);
        System.Buffer.MemoryCopy(Memory(source), host.Pointer, host.ByteCount, source.ByteCount);
    }

    protected override Tensor StageIn(Tensor caller)
    {
        var staged = caller.DataType == DataType.Float32 ? Tensor.CreateGuarded(caller.Shape, Poison) : Tensor.Empty(caller.Shape, caller.DataType);
        System.Buffer.MemoryCopy(Memory(caller), staged.Pointer, staged.ByteCount, caller.ByteCount);
        return staged;
    }

    protected override void StageOut(Tensor caller, Tensor staged)
    {
        if (staged.DataType == DataType.Float32)
        {
            Assert.That(staged.GuardsIntact(Poison), Is.True, $"op wrote outside output {caller.ShapeText} (guard words changed)");
        }
        HostBytes.Copy(Memory(caller), staged);
    }

    protected override Tensor Return(Tensor inner)
    {
        var tensor = Empty(inner.Shape, inner.DataType);
        HostBytes.Copy(Memory(tensor), inner);
        return tensor;
    }

    // The memory behind one of this backend's tensors; anything else (a host tensor, another backend's) is the model's bug.
    private void* Memory(Tensor tensor)
    {
        if (tensor.DeviceBuffer is not Buffer buffer || !ReferenceEquals(buffer.Owner, this))
        {
            throw new LrmShapeException($"{tensor} was passed to the simulated device, but it is not one of its tensors (host memory in a device op)");
        }
        return buffer.Pointer;
    }
}

/// <summary>Raw copies out of host tensors of any element type.</summary>
internal static unsafe class HostBytes
{
    public static void Copy(void* destination, Tensor hostSource) =>
        System.Buffer.MemoryCopy(hostSource.Pointer, destination, hostSource.ByteCount, hostSource.ByteCount);
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

    /// <summary>
    /// True when the CUDA backend runs on tests/cuda-emulator (CPU stand-ins for the driver, NVRTC
    /// and cuBLASLt) rather than a GPU: test.sh uses it on machines without one.
    /// </summary>
    public static bool IsEmulator(CudaBackend backend) => backend.DeviceName.Contains("CUDA emulator", StringComparison.Ordinal);

    /// <summary>Skips work the CPU emulator would take many minutes over; a GPU runs it.</summary>
    public static void SkipOnEmulator(CudaBackend backend, string what)
    {
        if (IsEmulator(backend))
        {
            Assert.Ignore($"{what} is too large for the CPU CUDA emulator (tests/cuda-emulator); it runs on a GPU");
        }
    }

    /// <summary>A kernel cache shared by the test run (compiling every module once per run, not per fixture).</summary>
    public static string KernelCacheDirectory { get; } =
        Environment.GetEnvironmentVariable("LRM_KERNEL_CACHE") is { Length: > 0 } configured ? configured : Path.Combine(Path.GetTempPath(), "lrm-test-kernel-cache");
}
