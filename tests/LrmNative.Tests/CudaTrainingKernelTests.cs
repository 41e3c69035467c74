using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// The CUDA training kernels (GEMM, LayerNorm, ModLN, attention, softmax, patch embedding, de-convolution, resize, triplane sampling, the MLP, compositing, activation, LayerScale and NeRF/render-decode backward, the AdamW step, the
/// sum of squares behind gradient clipping) against the CPU backend on random inputs of odd sizes, through <see cref="DeviceStagingBackend"/> (outputs
/// poisoned, guard words checked; every output the GPU overwrites also starts poisoned on the host side, which is what the
/// staging uploads): fp32, ‖gpu − cpu‖/‖cpu‖ &lt; 1e-5, no NaN. Skipped without a CUDA device.
/// </summary>
[TestFixture]
[Category("Cuda")]
public sealed class CudaTrainingKernelTests
{
    private DeviceStagingBackend? _cuda;
    private DeviceStagingBackend? _cudaBFloat16;
    private CpuBackend? _cpu;

    [OneTimeSetUp]
    public void Open()
    {
        _cuda = CudaTestDevice.Open(MatmulPrecision.Float32);
        _cudaBFloat16 = CudaTestDevice.Open(MatmulPrecision.BFloat16);
        _cpu = new CpuBackend();
    }

    [OneTimeTearDown]
    public void Close()
    {
        _cuda?.Dispose();
        _cudaBFloat16?.Dispose();
        _cpu?.Dispose();
    }

    [TestCase(false, false, 1e-5)]
    [TestCase(true, false, 1e-5)]
    [TestCase(false, true, 1e-5)]
    [TestCase(true, true, 1e-5)]
    [TestCase(false, true, 1e-2)] // bf16 tensor cores (nn.Linear's layout)
    public void GemmBackwardMatchesTheCpu(bool transposeA, bool transposeB, double tolerance)
    {
        var device = tolerance < 1e-3 ? _cuda! : _cudaBFloat16!;
        const int m = 77, n = 131, k = 65;
        var random = new Random(m + (transposeA ? 1 : 0) + (transposeB ? 2 : 0));
        using var a = GradientCheck.Random(random, 1f, transposeA ? new long[] { k, m } : new long[] { m, k });
        using var b = GradientCheck.Random(random, 1f, transposeB ? new long[] { n, k } : new long[] { k, n });
        using var gradOutput = GradientCheck.Random(random, 1f, m, n);
        using var startBias = GradientCheck.Random(random, 0.1f, n);
        using var cpuA = Tensor.Empty(a.Shape);
        using var cpuB = Tensor.Empty(b.Shape);
        using var cpuBias = Tensor.FromArray(startBias.ToFloatArray(), n);
        using var gpuA = Poisoned(a.Shape);
        using var gpuB = Poisoned(b.Shape);
        using var gpuBias = Tensor.FromArray(startBias.ToFloatArray(), n);
        _cpu!.GemmBackward(cpuA, cpuB, cpuBias, gradOutput, a, b, transposeA, transposeB);
        device.GemmBackward(gpuA, gpuB, gpuBias, gradOutput, a, b, transposeA, transposeB);
        AssertFinite(gpuA, "dA");
        AssertFinite(gpuB, "dB");
        Compare.Close(gpuA, cpuA, tolerance, $"dA (transposeA {transposeA}, transposeB {transposeB})");
        Compare.Close(gpuB, cpuB, tolerance, $"dB (transposeA {transposeA}, transposeB {transposeB})");
        Compare.Close(gpuBias, cpuBias, 1e-5, "dbias (accumulated onto its start; fp32 sums)");
    }

    // A GPU output that the kernel overwrites starts as NaN bit patterns (staged onto the device as they are), so an element
    // the kernel skips, or a sum its atomics add onto instead of a zeroed buffer, fails the comparison with the CPU.
    private static Tensor Poisoned(ReadOnlySpan<long> shape) => GuardedOutputs.Poisoned(shape);

    private static void AssertFinite(Tensor tensor, string what) =>
        Assert.That(tensor.ToFloatArray().All(float.IsFinite), Is.True, $"{what}: NaN or inf");

    [TestCase(Activation.Gelu, 1)]
    [TestCase(Activation.Gelu, 4097)]
    [TestCase(Activation.Silu, 100_003)]
    [TestCase(Activation.Relu, 777)]
    [TestCase(Activation.None, 33)]
    public void ActivateBackwardMatchesTheCpu(Activation activation, int n)
    {
        var random = new Random(n);
        using var input = GradientCheck.Uniform(random, -6f, 6f, n);
        input.AsSpan<float>()[0] = 0f; // the ReLU kink: exactly 0 on both
        using var gradOutput = GradientCheck.Random(random, 2f, n);
        using var expected = Tensor.Empty([n]);
        using var actual = Poisoned([n]);
        _cpu!.ActivateBackward(expected, gradOutput, input, activation);
        _cuda!.ActivateBackward(actual, gradOutput, input, activation);
        AssertFinite(actual, "dinp");
        Compare.Close(actual, expected, 1e-5, $"{activation} backward, n = {n}");
        if (activation == Activation.Relu)
        {
            Assert.That(actual.AsSpan<float>()[0], Is.EqualTo(0f), "relu'(0) = 0");
        }
    }

    [TestCase(1)]
    [TestCase(16_385)]
    [TestCase(1_048_583)]
    public void AdamWStepMatchesTheCpuOverThreeSteps(int n)
    {
        var random = new Random(n);
        using var cpuParameter = GradientCheck.Random(random, 1f, n);
        using var gpuParameter = Tensor.FromArray(cpuParameter.ToFloatArray(), n);
        using var cpuAvg = Tensor.Zeros([n]);
        using var cpuAvgSq = Tensor.Zeros([n]);
        using var gpuAvg = Tensor.Zeros([n]);
        using var gpuAvgSq = Tensor.Zeros([n]);
        for (var step = 1; step <= 3; step++)
        {
            using var gradient = GradientCheck.Random(random, 0.1f * step, n);
            var scale = step == 2 ? 0.5f : 1f; // one clipped step
            _cpu!.AdamWStep(cpuParameter, cpuAvg, cpuAvgSq, gradient, 4e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, scale, step);
            _cuda!.AdamWStep(gpuParameter, gpuAvg, gpuAvgSq, gradient, 4e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, scale, step);
            AssertFinite(gpuParameter, "parameter");
            Compare.Close(gpuParameter, cpuParameter, 1e-5, $"step {step}: parameter");
            Compare.Close(gpuAvg, cpuAvg, 1e-5, $"step {step}: exp_avg");
            Compare.Close(gpuAvgSq, cpuAvgSq, 1e-5, $"step {step}: exp_avg_sq");
        }
        using var gradientAgain = GradientCheck.Random(random, 1f, n);
        Assert.Throws<LrmInvalidArgumentException>(() => _cuda!.AdamWStep(gpuParameter, gpuAvg, gpuAvgSq, gradientAgain, 4e-4f, 0.9f, 0.95f, 1e-8f, 0.05f, 1f, 0));
    }

    [Test]
    public void SumOfSquaresMatchesTheCpuAndCountsNonFiniteElements()
    {
        const int n = 3 * 16384 + 5;
        var random = new Random(5);
        using var input = GradientCheck.Random(random, 3f, n);
        var expected = _cpu!.SumOfSquares(input, out var cpuBad);
        var actual = _cuda!.SumOfSquares(input, out var gpuBad);
        Assert.That((cpuBad, gpuBad), Is.EqualTo((0L, 0L)));
        Assert.That(actual, Is.EqualTo(expected).Within(1e-12 * expected), "Σx² in double");
        var exact = input.ToFloatArray().Sum(v => (double)v * v);
        Assert.That(actual, Is.EqualTo(exact).Within(1e-12 * exact), "against a plain double sum");

        input.AsSpan<float>()[7] = float.NaN;
        input.AsSpan<float>()[n - 1] = float.PositiveInfinity;
        Assert.That(double.IsFinite(_cuda.SumOfSquares(input, out gpuBad)), Is.False);
        _cpu.SumOfSquares(input, out cpuBad);
        Assert.That(gpuBad, Is.EqualTo(2).And.EqualTo(cpuBad), "non-finite elements named by count");
    }

    [TestCase(1, 1)]
    [TestCase(37, 130)]
    [TestCase(3077, 1024)]
    public void LayerScaleBackwardMatchesTheCpu(int rows, int channels)
    {
        var random = new Random(rows * 7 + channels);
        using var input = GradientCheck.Random(random, 1f, rows, channels);
        using var gamma = GradientCheck.Random(random, 0.5f, channels);
        using var gradOutput = GradientCheck.Random(random, 1f, rows, channels);
        using var startGamma = GradientCheck.Random(random, 0.1f, channels);
        using var cpuInput = Tensor.Empty([rows, channels]);
        using var cpuResidual = Tensor.Empty([rows, channels]);
        using var cpuGamma = Tensor.FromArray(startGamma.ToFloatArray(), channels);
        using var gpuInput = Poisoned([rows, channels]);
        using var gpuResidual = Poisoned([rows, channels]);
        using var gpuGamma = Tensor.FromArray(startGamma.ToFloatArray(), channels);
        _cpu!.LayerScaleBackward(cpuInput, cpuGamma, cpuResidual, gradOutput, input, gamma);
        _cuda!.LayerScaleBackward(gpuInput, gpuGamma, gpuResidual, gradOutput, input, gamma);
        Compare.Close(gpuInput, cpuInput, 1e-6, "dinp");
        Assert.That(gpuResidual.ToFloatArray(), Is.EqualTo(gradOutput.ToFloatArray()), "dresidual = dout");
        Compare.Close(gpuGamma, cpuGamma, 1e-6, "dgamma (accumulated onto its start)");
        // Only dgamma, twice: accumulates, and the same bits each time (a fixed order).
        using var once = Tensor.Zeros([channels]);
        _cuda.LayerScaleBackward(null, once, null, gradOutput, input, gamma);
        using var twice = Tensor.FromArray(once.ToFloatArray(), channels);
        _cuda.LayerScaleBackward(null, twice, null, gradOutput, input, gamma);
        using var again = Tensor.Zeros([channels]);
        _cuda.LayerScaleBackward(null, again, null, gradOutput, input, gamma);
        Assert.That(again.ToFloatArray(), Is.EqualTo(once.ToFloatArray()), "deterministic");
        using var doubled = Tensor.FromArray(once.ToFloatArray().Select(v => 2 * v).ToArray(), channels);
        Compare.Close(twice, doubled, 1e-6, "+= twice");
    }

    [TestCase(1)]
    [TestCase(70_001)]
    public void NerfAndRenderDecodeBackwardMatchTheCpu(int samples)
    {
        var random = new Random(samples);
        using var raw = GradientCheck.Uniform(random, -25f, 25f, samples, 4); // both softplus branches (x − 1 > 20)
        using var gradSigma = GradientCheck.Random(random, 1f, samples, 1);
        using var gradRgb = GradientCheck.Random(random, 1f, samples, 3);
        foreach (var (sigma, rgb, what) in new (Tensor? Sigma, Tensor? Rgb, string What)[] { (gradSigma, gradRgb, "both"), (gradSigma, null, "sigma only"), (null, gradRgb, "rgb only") })
        {
            using var expected = Tensor.Empty([samples, 4]);
            using var actual = Poisoned([samples, 4]);
            _cpu!.NerfDecodeBackward(expected, sigma, rgb, raw);
            _cuda!.NerfDecodeBackward(actual, sigma, rgb, raw);
            AssertFinite(actual, "draw");
            Compare.Close(actual, expected, 1e-5, $"NeRF decode backward, {what}");
        }
        using var points = GradientCheck.Uniform(random, -1.3f, 1.3f, samples, 3); // some outside the box
        using var gradDecoded = GradientCheck.Random(random, 1f, samples, 4);
        using var cpuRaw = Tensor.Empty([samples, 4]);
        using var gpuRaw = Poisoned([samples, 4]);
        _cpu!.RenderDecodeBackward(cpuRaw, gradDecoded, raw, points);
        _cuda!.RenderDecodeBackward(gpuRaw, gradDecoded, raw, points);
        AssertFinite(gpuRaw, "draw");
        Compare.Close(gpuRaw, cpuRaw, 1e-5, "render decode backward");
    }

    // Sorted depths in [1, 3] per ray, raw densities in [−3, 6] (some saturated intervals), colours in [0, 1].
    private static (Tensor Depths, Tensor Decoded) MarchSamples(Random random, int batch, int rays, int samples)
    {
        var depths = Tensor.Empty([batch, rays, samples]);
        var span = depths.AsSpan<float>();
        for (var ray = 0; ray < batch * rays; ray++)
        {
            var row = span.Slice(ray * samples, samples);
            for (var s = 0; s < samples; s++)
            {
                row[s] = 1f + 2f * (float)random.NextDouble();
            }
            row.Sort();
        }
        var decoded = Tensor.Empty([batch, rays * samples, 4]);
        var values = decoded.AsSpan<float>();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = i % 4 == 0 ? -3f + 9f * (float)random.NextDouble() : (float)random.NextDouble();
        }
        return (depths, decoded);
    }

    [TestCase(1, 1, 2, 0)]
    [TestCase(2, 333, 24, 0)]
    [TestCase(2, 1000, 48, 48)]
    public void RenderMarchBackwardMatchesTheCpu(int batch, int rays, int samplesA, int samplesB)
    {
        var random = new Random(rays + samplesA + samplesB);
        var (depthsA, decodedA) = MarchSamples(random, batch, rays, samplesA);
        using var _1 = depthsA;
        using var _2 = decodedA;
        Tensor? depthsB = null, decodedB = null;
        if (samplesB > 0)
        {
            (depthsB, decodedB) = MarchSamples(random, batch, rays, samplesB);
        }
        using var _3 = depthsB;
        using var _4 = decodedB;
        using var gradRgb = GradientCheck.Random(random, 1f, batch, rays, 3);
        using var gradDepth = GradientCheck.Random(random, 1f, batch, rays);
        using var gradOpacity = GradientCheck.Random(random, 1f, batch, rays);
        using var depthRange = Tensor.FromArray(Enumerable.Range(0, batch).SelectMany(_ => new[] { 1.2f, 2.8f }).ToArray(), batch, 2);
        float[] background = [1f, 0.5f, 0f];
        using var cpuA = Tensor.Empty(decodedA.Shape);
        using var gpuA = Poisoned(decodedA.Shape);
        using var cpuB = decodedB is null ? null : Tensor.Empty(decodedB.Shape);
        using var gpuB = decodedB is null ? null : Poisoned(decodedB.Shape);
        _cpu!.RenderMarchBackward(cpuA, cpuB, gradRgb, gradDepth, gradOpacity, depthsA, decodedA, depthsB, decodedB, background, depthRange);
        _cuda!.RenderMarchBackward(gpuA, gpuB, gradRgb, gradDepth, gradOpacity, depthsA, decodedA, depthsB, decodedB, background, depthRange);
        AssertFinite(gpuA, "ddecodedA");
        Compare.Close(gpuA, cpuA, 1e-5, "ddecodedA");
        if (gpuB is not null)
        {
            AssertFinite(gpuB, "ddecodedB");
            Compare.Close(gpuB, cpuB!, 1e-5, "ddecodedB");
        }
    }

    [TestCase(1, 1)]
    [TestCase(77, 33)]
    [TestCase(3001, 1024)]
    public void LayerNormBackwardMatchesTheCpu(int rows, int channels)
    {
        var random = new Random(rows + channels);
        using var input = GradientCheck.Random(random, 2f, 0.5f, rows, channels);
        using var weight = GradientCheck.Random(random, 1f, 1f, channels);
        using var bias = GradientCheck.Random(random, 0.5f, channels);
        using var output = Tensor.Empty([rows, channels]);
        using var mean = Tensor.Empty([rows]);
        using var rstd = Tensor.Empty([rows]);
        _cpu!.LayerNorm(output, mean, rstd, input, weight, bias, 1e-6f);
        using var gradOutput = GradientCheck.Random(random, 1f, rows, channels);
        using var start = GradientCheck.Random(random, 0.1f, channels);
        using var cpuInput = Tensor.Empty([rows, channels]);
        using var gpuInput = Poisoned([rows, channels]);
        using var cpuWeight = Tensor.FromArray(start.ToFloatArray(), channels);
        using var gpuWeight = Tensor.FromArray(start.ToFloatArray(), channels);
        using var cpuBias = Tensor.FromArray(start.ToFloatArray(), channels);
        using var gpuBias = Tensor.FromArray(start.ToFloatArray(), channels);
        _cpu.LayerNormBackward(cpuInput, cpuWeight, cpuBias, gradOutput, mean, rstd, input, weight);
        _cuda!.LayerNormBackward(gpuInput, gpuWeight, gpuBias, gradOutput, mean, rstd, input, weight);
        AssertFinite(gpuInput, "dx");
        if (channels == 1)
        {
            // One channel: x̂ ≡ 0 whatever x is, so dx is exactly 0. A relative error against the
            // CPU's rounding noise (g − mean(g) in fp32, times rstd = 1000) would be meaningless;
            // both must be zero up to that noise.
            var noise = 1e-6 * rstd.ToFloatArray().Max() * gradOutput.ToFloatArray().Max(Math.Abs) * weight.ToFloatArray().Max(Math.Abs);
            Assert.That(gpuInput.ToFloatArray().Max(Math.Abs), Is.LessThanOrEqualTo(noise), "dx of a one-channel LayerNorm (CUDA)");
            Assert.That(cpuInput.ToFloatArray().Max(Math.Abs), Is.LessThanOrEqualTo(noise), "dx of a one-channel LayerNorm (CPU)");
        }
        else
        {
            Compare.Close(gpuInput, cpuInput, 1e-5, "dx");
        }
        Compare.Close(gpuWeight, cpuWeight, 1e-5, "dweight (accumulated)");
        Compare.Close(gpuBias, cpuBias, 1e-5, "dbias (accumulated)");
        // Without the affine parameters.
        using var plainCpu = Tensor.Empty([rows, channels]);
        using var plainGpu = Poisoned([rows, channels]);
        _cpu.LayerNormBackward(plainCpu, null, null, gradOutput, mean, rstd, input, null);
        _cuda.LayerNormBackward(plainGpu, null, null, gradOutput, mean, rstd, input, null);
        Compare.Close(plainGpu, plainCpu, 1e-5, "dx without weight");
    }

    [TestCase(1, 1, 4)]
    [TestCase(3, 129, 96)]
    [TestCase(2, 3072, 128)]
    public void ModLNBackwardMatchesTheCpu(int batch, int tokens, int channels)
    {
        var random = new Random(batch * tokens + channels);
        using var input = GradientCheck.Random(random, 2f, batch, tokens, channels);
        using var weight = GradientCheck.Random(random, 1f, 1f, channels);
        using var bias = GradientCheck.Random(random, 0.5f, channels);
        using var shift = GradientCheck.Random(random, 0.5f, batch, channels);
        using var scale = GradientCheck.Random(random, 0.5f, batch, channels);
        using var output = Tensor.Empty([batch, tokens, channels]);
        using var mean = Tensor.Empty([batch, tokens]);
        using var rstd = Tensor.Empty([batch, tokens]);
        _cpu!.ModLN(output, mean, rstd, input, weight, bias, shift, scale, 1e-6f);
        using var gradOutput = GradientCheck.Random(random, 1f, batch, tokens, channels);
        using var start = GradientCheck.Random(random, 0.1f, channels);
        using var cpuInput = Tensor.Empty([batch, tokens, channels]);
        using var gpuInput = Poisoned([batch, tokens, channels]);
        using var cpuWeight = Tensor.FromArray(start.ToFloatArray(), channels);
        using var gpuWeight = Tensor.FromArray(start.ToFloatArray(), channels);
        using var cpuBias = Tensor.FromArray(start.ToFloatArray(), channels);
        using var gpuBias = Tensor.FromArray(start.ToFloatArray(), channels);
        using var cpuShift = Tensor.Empty([batch, channels]);
        using var gpuShift = Poisoned([batch, channels]);
        using var cpuScale = Tensor.Empty([batch, channels]);
        using var gpuScale = Poisoned([batch, channels]);
        _cpu.ModLNBackward(cpuInput, cpuWeight, cpuBias, cpuShift, cpuScale, gradOutput, mean, rstd, input, weight, bias, scale);
        _cuda!.ModLNBackward(gpuInput, gpuWeight, gpuBias, gpuShift, gpuScale, gradOutput, mean, rstd, input, weight, bias, scale);
        AssertFinite(gpuInput, "dx");
        Compare.Close(gpuInput, cpuInput, 1e-5, "dx");
        Compare.Close(gpuWeight, cpuWeight, 1e-5, "dweight (accumulated)");
        Compare.Close(gpuBias, cpuBias, 1e-5, "dbias (accumulated)");
        Compare.Close(gpuShift, cpuShift, 1e-5, "dshift");
        Compare.Close(gpuScale, cpuScale, 1e-5, "dscale");
    }

    // Gradients of a parameter-gradient op that accumulates: both sides start from the same values.
    private static (Tensor Cpu, Tensor Gpu) Accumulators(Random random, params long[] shape)
    {
        using var start = GradientCheck.Random(random, 0.1f, shape);
        return (Tensor.FromArray(start.ToFloatArray(), shape), Tensor.FromArray(start.ToFloatArray(), shape));
    }

    [TestCase(1, 3, 14, 14, 5, 14)]
    [TestCase(2, 3, 31, 45, 24, 7)]   // H, W not multiples of P: the uncovered pixels get 0
    [TestCase(2, 3, 224, 224, 64, 14)]
    public void PatchEmbedBackwardMatchesTheCpu(int batch, int channels, int height, int width, int outChannels, int patch)
    {
        var random = new Random(height * width + patch);
        using var image = GradientCheck.Random(random, 1f, batch, channels, height, width);
        using var weight = GradientCheck.Random(random, 0.2f, outChannels, channels, patch, patch);
        using var gradOutput = GradientCheck.Random(random, 1f, batch, height / patch * (width / patch), outChannels);
        ConvolutionBackwardParity(random, image, weight, gradOutput, outChannels, "dimage",
            (backend, gradImage, gradWeight, gradBias) => backend.PatchEmbedBackward(gradImage, gradWeight, gradBias, gradOutput, image, weight));
    }

    // A convolution backward (gradInput overwrites; gradWeight, gradBias accumulate onto the same random start) on both backends.
    private void ConvolutionBackwardParity(Random random, Tensor input, Tensor weight, Tensor gradOutput, long outChannels, string inputName,
        Action<IBackend, Tensor, Tensor, Tensor> backward)
    {
        var (cpuWeight, gpuWeight) = Accumulators(random, weight.Shape.ToArray());
        var (cpuBias, gpuBias) = Accumulators(random, outChannels);
        using var _1 = cpuWeight;
        using var _2 = gpuWeight;
        using var _3 = cpuBias;
        using var _4 = gpuBias;
        using var cpuInput = Tensor.Empty(input.Shape);
        using var gpuInput = Poisoned(input.Shape);
        backward(_cpu!, cpuInput, cpuWeight, cpuBias);
        backward(_cuda!, gpuInput, gpuWeight, gpuBias);
        AssertFinite(gpuInput, inputName);
        Compare.Close(gpuInput, cpuInput, 1e-5, inputName);
        Compare.Close(gpuWeight, cpuWeight, 1e-5, "dweight (accumulated)");
        Compare.Close(gpuBias, cpuBias, 1e-5, "dbias (accumulated)");
    }

    [TestCase(1, 4, 1, 1, 3, 2)]
    [TestCase(3, 32, 16, 16, 16, 2)]
    [TestCase(2, 48, 5, 7, 11, 3)]
    public void DeconvolutionBackwardMatchesTheCpu(int batch, int inChannels, int height, int width, int outChannels, int kernel)
    {
        var random = new Random(inChannels * height + kernel);
        using var input = GradientCheck.Random(random, 1f, batch, inChannels, height, width);
        using var weight = GradientCheck.Random(random, 0.2f, inChannels, outChannels, kernel, kernel);
        using var gradOutput = GradientCheck.Random(random, 1f, batch, outChannels, height * kernel, width * kernel);
        ConvolutionBackwardParity(random, input, weight, gradOutput, outChannels, "dinput",
            (backend, gradInput, gradWeight, gradBias) => backend.DeconvolutionBackward(gradInput, gradWeight, gradBias, gradOutput, input, weight));
    }

    [TestCase(1, 1, 1, 4, 4)]
    [TestCase(2, 5000, 16, 32, 32)]
    [TestCase(1, 20000, 40, 64, 64)]
    [TestCase(2, 777, 3, 7, 9)]
    public void TriplaneSampleBackwardMatchesTheCpu(int batch, int count, int channels, int height, int width)
    {
        var random = new Random(count + channels);
        using var planes = GradientCheck.Random(random, 1f, batch, 3, height, width, channels);
        using var points = GradientCheck.Uniform(random, -1.1f, 1.1f, batch, count, 3); // some outside the planes
        using var gradOutput = GradientCheck.Random(random, 1f, batch, count, 3 * channels);
        using var cpuPlanes = Tensor.Empty(planes.Shape);
        using var gpuPlanes = Poisoned(planes.Shape);
        using var cpuPoints = Tensor.Empty(points.Shape);
        using var gpuPoints = Poisoned(points.Shape);
        _cpu!.TriplaneSampleBackward(cpuPlanes, cpuPoints, gradOutput, planes, points);
        _cuda!.TriplaneSampleBackward(gpuPlanes, gpuPoints, gradOutput, planes, points);
        AssertFinite(gpuPlanes, "dplanes");
        AssertFinite(gpuPoints, "dpoints");
        Compare.Close(gpuPlanes, cpuPlanes, 1e-5, "dplanes (overwritten; atomics)");
        Compare.Close(gpuPoints, cpuPoints, 1e-5, "dpoints");
    }

    [TestCase(1, new[] { 3, 4 }, Activation.Relu, Activation.None)]
    [TestCase(5003, new[] { 48, 32, 32, 32, 4 }, Activation.Relu, Activation.None)]   // the NeRF MLP (3 × 16 channels)
    [TestCase(777, new[] { 24, 96, 17 }, Activation.Gelu, Activation.Silu)]
    public void MlpBackwardMatchesTheCpu(int rows, int[] dims, Activation hidden, Activation output)
    {
        var random = new Random(rows + dims.Sum());
        var layers = dims.Length - 1;
        using var input = GradientCheck.Random(random, 1f, rows, dims[0]);
        using var gradOutput = GradientCheck.Random(random, 1f, rows, dims[^1]);
        var owned = new List<Tensor>();
        Tensor Own(Tensor tensor)
        {
            owned.Add(tensor);
            return tensor;
        }
        try
        {
            var weights = Enumerable.Range(0, layers).Select(l => Own(GradientCheck.Random(random, 1f / MathF.Sqrt(dims[l]), dims[l + 1], dims[l]))).ToList();
            var biases = Enumerable.Range(0, layers).Select(l => (Tensor?)(l == 1 ? null : Own(GradientCheck.Random(random, 0.1f, dims[l + 1])))).ToList();
            var starts = Enumerable.Range(0, layers).Select(l => GradientCheck.Random(random, 0.01f, dims[l + 1], dims[l]).ToFloatArray()).ToList();
            var cpuWeights = starts.Select((v, l) => Own(Tensor.FromArray(v, dims[l + 1], dims[l]))).ToList();
            var gpuWeights = starts.Select((v, l) => Own(Tensor.FromArray(v, dims[l + 1], dims[l]))).ToList();
            var cpuBiases = biases.Select((b, l) => b is null ? null : Own(Tensor.Zeros([dims[l + 1]]))).ToList();
            var gpuBiases = biases.Select((b, l) => b is null ? null : Own(Tensor.Zeros([dims[l + 1]]))).ToList();
            using var cpuInput = Tensor.Empty([rows, dims[0]]);
            using var gpuInput = Poisoned([rows, dims[0]]);
            _cpu!.MlpBackward(cpuInput, cpuWeights, cpuBiases, gradOutput, input, weights, biases, hidden, output);
            _cuda!.MlpBackward(gpuInput, gpuWeights, gpuBiases, gradOutput, input, weights, biases, hidden, output);
            AssertFinite(gpuInput, "dinput");
            Compare.Close(gpuInput, cpuInput, 1e-5, "dinput");
            for (var l = 0; l < layers; l++)
            {
                Compare.Close(gpuWeights[l], cpuWeights[l], 1e-5, $"dW[{l}] (accumulated)");
                if (cpuBiases[l] is { } expected)
                {
                    Compare.Close(gpuBiases[l]!, expected, 1e-5, $"db[{l}] (accumulated)");
                }
            }
        }
        finally
        {
            foreach (var tensor in owned)
            {
                tensor.Dispose();
            }
        }
    }

    [TestCase(ResizeMode.Bilinear, true, 3, 224, 224, 112, 112)]   // the source image, antialiased down
    [TestCase(ResizeMode.Bilinear, false, 2, 7, 9, 16, 11)]
    [TestCase(ResizeMode.Bicubic, false, 4, 14, 14, 8, 8)]       // DINO v1's position table, bilinear by size in the model; bicubic here
    [TestCase(ResizeMode.Bicubic, true, 5, 31, 17, 64, 40)]
    public void ResizeBackwardMatchesTheCpu(ResizeMode mode, bool antialias, int planes, int inHeight, int inWidth, int outHeight, int outWidth)
    {
        var random = new Random(inHeight * outWidth + planes);
        using var gradOutput = GradientCheck.Random(random, 1f, planes, outHeight, outWidth);
        using var cpuInput = Tensor.Empty([planes, inHeight, inWidth]);
        using var gpuInput = Poisoned([planes, inHeight, inWidth]);
        _cpu!.ResizeBackward(cpuInput, gradOutput, mode, -0.75f, antialias);
        _cuda!.ResizeBackward(gpuInput, gradOutput, mode, -0.75f, antialias);
        AssertFinite(gpuInput, "dinput");
        Compare.Close(gpuInput, cpuInput, 1e-5, $"{mode}{(antialias ? " antialiased" : "")} backward");
    }

    [Test]
    public void ResizeScaledBackwardMatchesTheCpuOnTheDinoV2PositionTable()
    {
        // DINOv2 (registers): the 37×37 table to 16×16 by scale factor 16/37, bicubic, antialiased; 384 channels.
        var random = new Random(37);
        using var gradOutput = GradientCheck.Random(random, 1f, 384, 16, 16);
        using var cpuTable = Tensor.Empty([384, 37, 37]);
        using var gpuTable = Poisoned([384, 37, 37]);
        _cpu!.ResizeScaledBackward(cpuTable, gradOutput, ResizeMode.Bicubic, 16.0 / 37, 16.0 / 37, -0.75f, true);
        _cuda!.ResizeScaledBackward(gpuTable, gradOutput, ResizeMode.Bicubic, 16.0 / 37, 16.0 / 37, -0.75f, true);
        AssertFinite(gpuTable, "dtable");
        Compare.Close(gpuTable, cpuTable, 1e-5, "position-table resize backward");
    }

    // Self-attention on packed qkv (B, L, 3W) with its gradient packed the same way, or cross-attention with q (B, Lq, W)
    // and packed kv (B, Lk, 2W), as the model calls it.
    [TestCase(1, 1, 1, 1, 8, false)]
    [TestCase(2, 77, 77, 2, 64, false)]
    [TestCase(2, 300, 65, 4, 64, true)]
    [TestCase(1, 129, 33, 3, 40, true)]
    public void AttentionBackwardMatchesTheCpu(int batch, int queryLength, int keyLength, int heads, int headDim, bool cross)
    {
        var random = new Random(queryLength * keyLength + heads);
        var width = heads * headDim;
        var scale = 1f / MathF.Sqrt(headDim);
        using var queries = GradientCheck.Random(random, 1f, batch, queryLength, cross ? width : 3 * width);
        using var keysValues = cross ? GradientCheck.Random(random, 1f, batch, keyLength, 2 * width) : null;
        var kv = keysValues ?? queries;
        ColumnSlice query = new(queries, 0), key = new(kv, cross ? 0 : width), value = new(kv, cross ? width : 2 * width);
        using var output = Tensor.Empty([batch, queryLength, width]);
        using var lse = Tensor.Empty([batch, heads, queryLength]);
        _cpu!.Attention(output, lse, query, key, value, heads, scale);
        using var gradOutput = GradientCheck.Random(random, 1f, batch, queryLength, width);
        Tensor[] Gradients(Func<long[], Tensor> create) => cross
            ? [create([batch, queryLength, width]), create([batch, keyLength, 2 * width])]
            : [create([batch, queryLength, 3 * width])];
        var cpu = Gradients(shape => Tensor.Empty(shape));
        var gpu = Gradients(shape => Poisoned(shape));
        try
        {
            (ColumnSlice Q, ColumnSlice K, ColumnSlice V) Slices(Tensor[] g) => cross
                ? (new(g[0], 0), new(g[1], 0), new(g[1], width))
                : (new(g[0], 0), new(g[0], width), new(g[0], 2 * width));
            var (cq, ck, cv) = Slices(cpu);
            var (gq, gk, gv) = Slices(gpu);
            _cpu.AttentionBackward(cq, ck, cv, gradOutput, output, lse, query, key, value, heads, scale);
            _cuda!.AttentionBackward(gq, gk, gv, gradOutput, output, lse, query, key, value, heads, scale);
            for (var t = 0; t < cpu.Length; t++)
            {
                AssertFinite(gpu[t], $"gradient tensor {t}");
                Compare.Close(gpu[t], cpu[t], 1e-5, cross ? (t == 0 ? "dq" : "dk, dv (packed)") : "dq, dk, dv (packed)");
            }
        }
        finally
        {
            foreach (var tensor in cpu.Concat(gpu))
            {
                tensor.Dispose();
            }
        }
    }

    [TestCase(1, 1)]
    [TestCase(333, 65)]
    [TestCase(12, 3073)]
    public void SoftmaxBackwardMatchesTheCpu(int rows, int columns)
    {
        var random = new Random(rows + columns);
        using var logits = GradientCheck.Random(random, 3f, rows, columns);
        using var output = Tensor.Empty([rows, columns]);
        _cpu!.Softmax(output, logits);
        using var gradOutput = GradientCheck.Random(random, 1f, rows, columns);
        using var cpuInput = Tensor.Empty([rows, columns]);
        using var gpuInput = Poisoned([rows, columns]);
        _cpu.SoftmaxBackward(cpuInput, gradOutput, output);
        _cuda!.SoftmaxBackward(gpuInput, gradOutput, output);
        AssertFinite(gpuInput, "dinput");
        Compare.Close(gpuInput, cpuInput, 1e-5, "softmax backward");
    }
}
