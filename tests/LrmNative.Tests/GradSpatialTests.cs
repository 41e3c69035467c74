using LrmNative.Backends;
using LrmNative.Interop;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// Backward ops of the convolution / resampling / NeRF / rendering half of issue 6, on the CPU:
/// each against PyTorch autograd (tests/golden/make_grad_golden_spatial.py, rel. error &lt; 1e-4),
/// against central finite differences of its own forward (<see cref="GradientCheck"/>), for the
/// accumulate (+=) vs overwrite contract with poisoned, guarded buffers, and for shape errors.
/// Finite-difference bounds: 1e-3 for ops linear in the perturbed argument (measured ~1e-5),
/// 2e-3–5e-3 for the nonlinear ones (measured ≤ 9e-4); each test writes its measured error.
/// </summary>
[TestFixture]
public sealed class GradSpatialTests
{
    private const double GoldenTolerance = 1e-4;
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    // ---- patch embedding ------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_patch_embed" })]
    public void PatchEmbedBackwardMatchesAutograd(string path) =>
        AssertConvolutionBackwardMatchesAutograd(path, "patch_embed", "image", 1, _backend.PatchEmbedBackward);

    /// <summary>(gradInput, gradWeight, gradBias, gradOutput, input, weight), as PatchEmbedBackward and DeconvolutionBackward.</summary>
    private delegate void ConvolutionBackward(Tensor? gradInput, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight);

    /// <summary>
    /// A golden case of a convolution's backward: tensors &lt;input&gt;, weight, dout and their gradients
    /// grad_&lt;input&gt;, grad_weight, grad_bias. The input gradient is overwritten (poisoned, guarded); the
    /// parameter gradients start at prefilled values (from <paramref name="seed"/>) and must grow by the reference.
    /// </summary>
    private static void AssertConvolutionBackwardMatchesAutograd(string path, string op, string inputName, int seed, ConvolutionBackward backward)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        using var accumulators = new GuardedAccumulators();
        var input = file.Read(scope, inputName);
        var weight = file.Read(scope, "weight");
        var expectedInput = file.Read(scope, $"grad_{inputName}");
        var expectedWeight = file.Read(scope, "grad_weight");
        var expectedBias = file.Read(scope, "grad_bias");
        var gradInput = outputs.Like($"grad_{inputName}", expectedInput);
        var gradWeight = accumulators.Prefilled("grad_weight", weight.Shape, seed);
        var gradBias = accumulators.Prefilled("grad_bias", expectedBias.Shape, seed + 1);
        backward(gradInput, gradWeight, gradBias, file.Read(scope, "dout"), input, weight);
        outputs.AssertWrittenExactly();
        Compare.Close(gradInput, expectedInput, GoldenTolerance, $"{op} grad_{inputName}");
        accumulators.AssertAccumulated(gradWeight, expectedWeight, 1, GoldenTolerance, $"{op} grad_weight");
        accumulators.AssertAccumulated(gradBias, expectedBias, 1, GoldenTolerance, $"{op} grad_bias");
    }

    [TestCase(2, 3, 23, 17, 6, 5)]
    [TestCase(1, 2, 8, 12, 4, 4)]
    public void PatchEmbedBackwardMatchesFiniteDifferences(int batch, int inChannels, int height, int width, int outChannels, int patch)
    {
        var random = new Random(11 + height);
        using var image = GradientCheck.Random(random, 1f, batch, inChannels, height, width);
        using var weight = GradientCheck.Random(random, 0.3f, outChannels, inChannels, patch, patch);
        using var bias = GradientCheck.Random(random, 0.1f, outChannels);
        long tokens = (height / patch) * (width / patch);
        using var probe = GradientCheck.Random(random, 1f, batch, tokens, outChannels);
        using var output = Tensor.Empty([batch, tokens, outChannels]);
        using var gradImage = Tensor.Empty(image.Shape);
        using var gradWeight = Tensor.Zeros(weight.Shape);
        using var gradBias = Tensor.Zeros(bias.Shape);
        _backend.PatchEmbedBackward(gradImage, gradWeight, gradBias, probe, image, weight);

        double Loss()
        {
            _backend.PatchEmbed(output, image, weight, bias);
            return GradientCheck.ProbeLoss(output, probe);
        }
        // Linear in each argument: differences are exact up to rounding, so the bound is tight.
        GradientCheck.AssertMatches("d image", image, gradImage, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 60, random: random);
        GradientCheck.AssertMatches("d weight", weight, gradWeight, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 60, random: random);
        GradientCheck.AssertMatches("d bias", bias, gradBias, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 60, random: random);
        // Pixels beyond the last full patch do not reach the output: their gradient is exactly 0.
        var gi = gradImage.AsSpan<float>();
        for (var i = 0; i < gi.Length; i++)
        {
            var x = i % width;
            var y = i / width % height;
            if (x >= width / patch * patch || y >= height / patch * patch)
            {
                Assert.That(gi[i], Is.EqualTo(0f), $"grad_image[{i}] outside every patch");
            }
        }
    }

    // Shapes large enough for the packed products to split over threads (> 4 MFLOP per image), with every edge: tokens
    // not a multiple of the row tile (8 or 6), out channels not a multiple of it nor of the column panel (32 or 16),
    // depth 3·7² = 147 not a multiple of a vector, pixels past the last patch; batch 2 (the weight gradient sums over
    // both images). Forward and backward against a double-precision reference at 1, 2 and 3 threads; outputs guarded,
    // parameter gradients accumulate onto prefilled values.
    [TestCase(2, 95, 90, 100, 7)]
    [TestCase(1, 160, 150, 37, 16)] // depth 768 (three depth blocks), 90 tokens, 37 channels, 6 pixels past the patches
    public void PatchEmbedMatchesADoubleReferenceAtEveryThreadCount(int batch, int height, int width, int outChannels, int patch)
    {
        const int inChannels = 3;
        var random = new Random(height * 1000 + outChannels);
        using var scope = new TensorScope();
        var image = scope.Add(GradientCheck.Random(random, 1f, batch, inChannels, height, width));
        var weight = scope.Add(GradientCheck.Random(random, 0.1f, outChannels, inChannels, patch, patch));
        var bias = scope.Add(GradientCheck.Random(random, 0.5f, outChannels));
        int gridH = height / patch, gridW = width / patch, tokens = gridH * gridW, depth = inChannels * patch * patch;
        var dout = scope.Add(GradientCheck.Random(random, 1f, batch, tokens, outChannels));
        var x = image.AsSpan<float>().ToArray();
        var w = weight.AsSpan<float>().ToArray();
        var g = dout.AsSpan<float>().ToArray();
        float Pixel(int b, int t, int p) =>
            x[((b * inChannels + p / (patch * patch)) * height + t / gridW * patch + p / patch % patch) * width + t % gridW * patch + p % patch];

        var expectedOut = new float[batch * tokens * outChannels];
        var expectedWeight = new float[outChannels * depth];
        var expectedBias = new float[outChannels];
        var expectedImage = new float[x.Length];
        for (var o = 0; o < outChannels; o++)
        {
            double biasSum = 0;
            for (var b = 0; b < batch; b++)
            {
                for (var t = 0; t < tokens; t++)
                {
                    double sum = bias.AsSpan<float>()[o];
                    for (var p = 0; p < depth; p++)
                    {
                        sum += (double)Pixel(b, t, p) * w[o * depth + p];
                    }
                    expectedOut[(b * tokens + t) * outChannels + o] = (float)sum;
                    biasSum += g[(b * tokens + t) * outChannels + o];
                }
            }
            expectedBias[o] = (float)biasSum;
            for (var p = 0; p < depth; p++)
            {
                double sum = 0;
                for (var b = 0; b < batch; b++)
                {
                    for (var t = 0; t < tokens; t++)
                    {
                        sum += (double)g[(b * tokens + t) * outChannels + o] * Pixel(b, t, p);
                    }
                }
                expectedWeight[o * depth + p] = (float)sum;
            }
        }
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < tokens; t++)
            {
                for (var p = 0; p < depth; p++)
                {
                    double sum = 0;
                    for (var o = 0; o < outChannels; o++)
                    {
                        sum += (double)g[(b * tokens + t) * outChannels + o] * w[o * depth + p];
                    }
                    expectedImage[((b * inChannels + p / (patch * patch)) * height + t / gridW * patch + p / patch % patch) * width + t % gridW * patch + p % patch] = (float)sum;
                }
            }
        }
        using var expectedWeightTensor = Tensor.FromArray(expectedWeight, weight.Shape.ToArray());
        using var expectedBiasTensor = Tensor.FromArray(expectedBias, outChannels);
        int[]? firstOut = null, firstWeight = null;
        try
        {
            foreach (var threads in new[] { 1, 2, 3 })
            {
                using var backend = new CpuBackend(threads);
                using var outputs = new GuardedOutputs();
                using var accumulators = new GuardedAccumulators();
                var output = outputs.Create("out", [batch, tokens, outChannels]);
                backend.PatchEmbed(output, image, weight, bias);
                var gradImage = outputs.Create("grad_image", image.Shape);
                var gradWeight = accumulators.Prefilled("grad_weight", weight.Shape, 1);
                var gradBias = accumulators.Prefilled("grad_bias", bias.Shape, 2);
                backend.PatchEmbedBackward(gradImage, gradWeight, gradBias, dout, image, weight);
                outputs.AssertWrittenExactly();
                Assert.That(Compare.RelativeError(output.AsSpan<float>(), expectedOut), Is.LessThan(1e-6), $"out, {threads} threads");
                Assert.That(Compare.RelativeError(gradImage.AsSpan<float>(), expectedImage), Is.LessThan(1e-6), $"grad_image, {threads} threads");
                accumulators.AssertAccumulated(gradWeight, expectedWeightTensor, 1, 1e-6, $"grad_weight, {threads} threads");
                accumulators.AssertAccumulated(gradBias, expectedBiasTensor, 1, 1e-6, $"grad_bias, {threads} threads");
                // Each output and weight-gradient element is one multiply-add chain whatever thread computes it.
                var outBits = output.AsSpan<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
                var weightBits = gradWeight.AsSpan<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
                firstOut ??= outBits;
                firstWeight ??= weightBits;
                Assert.That(outBits, Is.EqualTo(firstOut), $"out with {threads} threads, bitwise vs 1 thread");
                Assert.That(weightBits, Is.EqualTo(firstWeight), $"grad_weight with {threads} threads, bitwise vs 1 thread");
            }
        }
        finally
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(0));
        }
    }

    [Test]
    public void PatchEmbedBackwardWithoutImageGradient()
    {
        var random = new Random(5);
        using var image = GradientCheck.Random(random, 1f, 1, 3, 8, 8);
        using var weight = GradientCheck.Random(random, 0.3f, 4, 3, 4, 4);
        using var dout = GradientCheck.Random(random, 1f, 1, 4, 4);
        using var full = Tensor.Zeros(weight.Shape);
        using var gradImage = Tensor.Empty(image.Shape);
        _backend.PatchEmbedBackward(gradImage, full, null, dout, image, weight);
        using var only = Tensor.Zeros(weight.Shape);
        _backend.PatchEmbedBackward(null, only, null, dout, image, weight);
        Assert.That(only.AsSpan<float>().ToArray(), Is.EqualTo(full.AsSpan<float>().ToArray()));
    }

    // ---- transposed convolution ---------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_deconv" })]
    public void DeconvolutionBackwardMatchesAutograd(string path) =>
        AssertConvolutionBackwardMatchesAutograd(path, "deconv", "inp", 3, _backend.DeconvolutionBackward);

    [TestCase(2, 5, 3, 7, 4, 2)]
    [TestCase(1, 3, 4, 5, 2, 3)]
    public void DeconvolutionBackwardMatchesFiniteDifferences(int batch, int inChannels, int height, int width, int outChannels, int kernel)
    {
        var random = new Random(21 + width);
        using var input = GradientCheck.Random(random, 1f, batch, inChannels, height, width);
        using var weight = GradientCheck.Random(random, 0.4f, inChannels, outChannels, kernel, kernel);
        using var bias = GradientCheck.Random(random, 0.1f, outChannels);
        using var probe = GradientCheck.Random(random, 1f, batch, outChannels, height * kernel, width * kernel);
        using var output = Tensor.Empty(probe.Shape);
        using var gradInput = Tensor.Empty(input.Shape);
        using var gradWeight = Tensor.Zeros(weight.Shape);
        using var gradBias = Tensor.Zeros(bias.Shape);
        _backend.DeconvolutionBackward(gradInput, gradWeight, gradBias, probe, input, weight);

        double Loss()
        {
            _backend.Deconvolution(output, input, weight, bias);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("d input", input, gradInput, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 60, random: random);
        GradientCheck.AssertMatches("d weight", weight, gradWeight, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 60, random: random);
        GradientCheck.AssertMatches("d bias", bias, gradBias, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 60, random: random);
    }

    [Test]
    public void ConvolutionBackwardShapeErrorsNameTheTensor()
    {
        using var image = Tensor.Zeros([1, 3, 8, 8]);
        using var weight = Tensor.Zeros([4, 3, 4, 4]);
        using var dout = Tensor.Zeros([1, 4, 4]);
        using var wrongDout = Tensor.Zeros([1, 5, 4]);
        using var gradWeight = Tensor.Zeros([4, 3, 4, 4]);
        using var wrongGradWeight = Tensor.Zeros([4, 3, 4, 5]);
        using var wrongGradImage = Tensor.Zeros([1, 3, 8, 9]);
        GradientCheck.AssertShapeError(() => _backend.PatchEmbedBackward(null, gradWeight, null, wrongDout, image, weight), "PatchEmbedBackward", "gradOutput");
        GradientCheck.AssertShapeError(() => _backend.PatchEmbedBackward(null, wrongGradWeight, null, dout, image, weight), "PatchEmbedBackward", "gradWeight");
        GradientCheck.AssertShapeError(() => _backend.PatchEmbedBackward(wrongGradImage, gradWeight, null, dout, image, weight), "PatchEmbedBackward", "gradImage");

        using var input = Tensor.Zeros([1, 3, 4, 5]);
        using var deconvWeight = Tensor.Zeros([3, 2, 2, 2]);
        using var deconvDout = Tensor.Zeros([1, 2, 8, 10]);
        using var wrongDeconvDout = Tensor.Zeros([1, 2, 8, 11]);
        using var deconvGradWeight = Tensor.Zeros([3, 2, 2, 2]);
        using var wrongBias = Tensor.Zeros([3]);
        GradientCheck.AssertShapeError(() => _backend.DeconvolutionBackward(null, deconvGradWeight, null, wrongDeconvDout, input, deconvWeight), "DeconvolutionBackward", "gradOutput");
        GradientCheck.AssertShapeError(() => _backend.DeconvolutionBackward(null, deconvGradWeight, wrongBias, deconvDout, input, deconvWeight), "DeconvolutionBackward", "gradBias");
    }

    // ---- resize ------------------------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_resize" })]
    public void ResizeBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = file.Read(scope, "grad_inp");
        var gradInput = outputs.Like("grad_inp", expected);
        var mode = file.Metadata["mode"] == "bicubic" ? ResizeMode.Bicubic : ResizeMode.Bilinear;
        _backend.ResizeBackward(gradInput, file.Read(scope, "dout"), mode, file.Float("cubic_a"), file.Flag("antialias"));
        outputs.AssertWrittenExactly();
        Compare.Close(gradInput, expected, GoldenTolerance, "resize grad_inp");
    }

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_scaled_resize" })]
    public void ResizeScaledBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = file.Read(scope, "grad_inp");
        var gradInput = outputs.Like("grad_inp", expected);
        var mode = file.Metadata["mode"] == "bicubic" ? ResizeMode.Bicubic : ResizeMode.Bilinear;
        var scaleHeight = double.Parse(file.Metadata["scale_factor_h"], System.Globalization.CultureInfo.InvariantCulture);
        var scaleWidth = double.Parse(file.Metadata["scale_factor_w"], System.Globalization.CultureInfo.InvariantCulture);
        _backend.ResizeScaledBackward(gradInput, file.Read(scope, "dout"), mode, scaleHeight, scaleWidth,
            file.Float("cubic_a"), file.Flag("antialias"));
        outputs.AssertWrittenExactly();
        Compare.Close(gradInput, expected, GoldenTolerance, "scaled_resize grad_inp");
    }

    [TestCase(ResizeMode.Bilinear, false, 7, 11, 16, 5)]
    [TestCase(ResizeMode.Bilinear, true, 23, 19, 8, 7)]
    [TestCase(ResizeMode.Bicubic, false, 9, 6, 5, 13)]
    [TestCase(ResizeMode.Bicubic, true, 37, 37, 16, 16)]
    [TestCase(ResizeMode.Bicubic, true, 5, 8, 12, 17)]
    public void ResizeBackwardMatchesFiniteDifferences(ResizeMode mode, bool antialias, int inHeight, int inWidth, int outHeight, int outWidth)
    {
        var random = new Random(31 + inHeight * outWidth);
        var cubicA = antialias ? -0.5f : -0.75f;
        using var input = GradientCheck.Random(random, 1f, 2, inHeight, inWidth);
        using var probe = GradientCheck.Random(random, 1f, 2, outHeight, outWidth);
        using var output = Tensor.Empty(probe.Shape);
        using var gradInput = Tensor.Empty(input.Shape);
        _backend.ResizeBackward(gradInput, probe, mode, cubicA, antialias);
        double Loss()
        {
            _backend.Resize(output, input, mode, cubicA, antialias);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches($"{mode} d input", input, gradInput, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: 80, random: random);

        // The scale-factor variant (DINOv2's table resize) against its own forward.
        double scaleHeight = (outHeight + 0.1) / inHeight, scaleWidth = (outWidth + 0.1) / inWidth;
        _backend.ResizeScaledBackward(gradInput, probe, mode, scaleHeight, scaleWidth, cubicA, antialias);
        double ScaledLoss()
        {
            _backend.ResizeScaled(output, input, mode, scaleHeight, scaleWidth, cubicA, antialias);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches($"{mode} scaled d input", input, gradInput, ScaledLoss, step: 1e-2f, tolerance: 1e-3, maxElements: 80, random: random);
    }

    [Test]
    public void ResizeBackwardShapeErrorsNameTheTensor()
    {
        using var gradInput = Tensor.Zeros([3, 7, 9]);
        using var gradOutput = Tensor.Zeros([2, 14, 18]);
        GradientCheck.AssertShapeError(() => _backend.ResizeBackward(gradInput, gradOutput, ResizeMode.Bilinear), "ResizeBackward", "gradOutput");
        using var flat = Tensor.Zeros([9]);
        GradientCheck.AssertShapeError(() => _backend.ResizeScaledBackward(flat, gradOutput, ResizeMode.Bicubic, 2, 2, -0.5f, true), "ResizeScaledBackward", "gradInput");
    }

    // ---- triplane sampling -------------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_triplane" })]
    public void TriplaneSampleBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        var planes = file.Read(scope, "planes");
        var points = file.Read(scope, "points");
        var dout = file.Read(scope, "dout");
        var expectedPlanes = file.Read(scope, "grad_planes");
        var expectedPoints = file.Read(scope, "grad_points");
        foreach (var deterministic in new[] { true, false })
        {
            using var outputs = new GuardedOutputs();
            var gradPlanes = outputs.Like("grad_planes", expectedPlanes);
            var gradPoints = outputs.Like("grad_points", expectedPoints);
            using var backend = new CpuBackend { Deterministic = deterministic };
            backend.TriplaneSampleBackward(gradPlanes, gradPoints, dout, planes, points);
            outputs.AssertWrittenExactly();
            Compare.Close(gradPlanes, expectedPlanes, GoldenTolerance, $"triplane grad_planes (deterministic {deterministic})");
            Compare.Close(gradPoints, expectedPoints, GoldenTolerance, $"triplane grad_points (deterministic {deterministic})");
        }
    }

    [TestCase(1, 200, 6, 9, 13)]
    [TestCase(2, 90, 4, 16, 16)]
    public void TriplaneSampleBackwardMatchesFiniteDifferences(int batch, int count, int channels, int height, int width)
    {
        var random = new Random(41 + count);
        using var planes = GradientCheck.Random(random, 1f, batch, 3, height, width, channels);
        using var points = GradientCheck.Uniform(random, -1.08f, 1.08f, batch, count, 3);
        using var probe = GradientCheck.Random(random, 1f, batch, count, 3 * channels);
        using var output = Tensor.Empty(probe.Shape);
        using var gradPlanes = Tensor.Empty(planes.Shape);
        using var gradPoints = Tensor.Empty(points.Shape);
        _backend.TriplaneSampleBackward(gradPlanes, gradPoints, probe, planes, points);
        double Loss()
        {
            _backend.TriplaneSample(output, planes, points);
            return GradientCheck.ProbeLoss(output, probe);
        }
        // Every texel, those no point reads included (the loss is linear in the planes, so this is cheap and exact): a
        // backward that drops a corner, a border texel or a whole plane shows up as a non-zero difference there.
        GradientCheck.AssertMatches("d planes", planes, gradPlanes, Loss, step: 1e-2f, tolerance: 1e-3, maxElements: (int)planes.ElementCount, random: random);
        // Points: avoid the kinks of bilinear interpolation (pixel-centre lines, where floor() switches cells)
        // and the image border, so ±step stays inside one cell in every plane reading that coordinate.
        const float step = 1e-3f;
        var coordinates = points.AsSpan<float>().ToArray();
        bool AwayFromKinks(int i)
        {
            var axis = i % 3;
            var size = axis == 1 ? height : width; // y is always a v (height) coordinate; x and z are u (width) ones...
            if (axis == 2)
            {
                // ...except z, which is v on plane 1 (height) and u on plane 2 (width): check both.
                return Smooth(coordinates[i], height) && Smooth(coordinates[i], width);
            }
            return Smooth(coordinates[i], size);
        }
        static bool Smooth(float u, int size)
        {
            var pixel = ((u + 1.0) * size - 1.0) / 2.0;
            var fraction = pixel - Math.Floor(pixel);
            var margin = 4.0 * step * size / 2.0;
            return fraction > margin && fraction < 1.0 - margin;
        }
        GradientCheck.AssertMatches("d points", points, gradPoints, Loss, step: step, tolerance: 1e-3, maxElements: 90, random: random,
            usable: AwayFromKinks);
    }

    [Test]
    public void TriplaneSampleBackwardIsIndependentOfTheThreadCount()
    {
        var random = new Random(51);
        // Big enough for every parallel branch (> 8192 points, plane > 4096 values), points crowded into a few cells.
        using var planes = GradientCheck.Random(random, 1f, 2, 3, 24, 20, 12);
        using var points = GradientCheck.Uniform(random, -0.3f, 0.3f, 2, 9000, 3);
        using var dout = GradientCheck.Random(random, 1f, 2, 9000, 36);
        float[]? reference = null;
        float[]? referencePoints = null;
        try
        {
            foreach (var threads in new[] { 1, 2, 3, 5 })
            {
                using var backend = new CpuBackend(threads);
                using var gradPlanes = Tensor.Empty(planes.Shape);
                using var gradPoints = Tensor.Empty(points.Shape);
                backend.TriplaneSampleBackward(gradPlanes, gradPoints, dout, planes, points);
                var bits = gradPlanes.AsSpan<float>().ToArray();
                if (reference is null)
                {
                    reference = bits;
                    referencePoints = gradPoints.AsSpan<float>().ToArray();
                }
                else
                {
                    Assert.That(bits.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(reference.Select(BitConverter.SingleToInt32Bits)),
                        $"grad_planes with {threads} threads");
                    Assert.That(gradPoints.AsSpan<float>().ToArray(), Is.EqualTo(referencePoints), $"grad_points with {threads} threads");
                }
                // The per-thread-partials mode sums in another order: same values to rounding.
                backend.Deterministic = false;
                using var partial = Tensor.Empty(planes.Shape);
                backend.TriplaneSampleBackward(partial, null, dout, planes, points);
                Assert.That(Compare.RelativeError(partial.AsSpan<float>(), reference), Is.LessThan(1e-6), $"partials with {threads} threads");
            }
        }
        finally
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(0));
        }
    }

    [Test]
    public void TriplaneSampleBackwardShapeErrorsNameTheTensor()
    {
        using var planes = Tensor.Zeros([1, 3, 4, 5, 2]);
        using var points = Tensor.Zeros([1, 7, 3]);
        using var dout = Tensor.Zeros([1, 7, 6]);
        using var gradPlanes = Tensor.Zeros([1, 3, 4, 5, 2]);
        using var wrongDout = Tensor.Zeros([1, 7, 5]);
        using var wrongGradPlanes = Tensor.Zeros([1, 3, 5, 4, 2]);
        using var wrongGradPoints = Tensor.Zeros([1, 6, 3]);
        GradientCheck.AssertShapeError(() => _backend.TriplaneSampleBackward(gradPlanes, null, wrongDout, planes, points), "TriplaneSampleBackward", "gradOutput");
        GradientCheck.AssertShapeError(() => _backend.TriplaneSampleBackward(wrongGradPlanes, null, dout, planes, points), "TriplaneSampleBackward", "gradPlanes");
        GradientCheck.AssertShapeError(() => _backend.TriplaneSampleBackward(gradPlanes, wrongGradPoints, dout, planes, points), "TriplaneSampleBackward", "gradPoints");
    }

    // ---- NeRF MLP ----------------------------------------------------------------------

    private static Activation ParseActivation(string name) => name switch
    {
        "none" => Activation.None,
        "relu" => Activation.Relu,
        "gelu" => Activation.Gelu,
        "silu" => Activation.Silu,
        _ => throw new ArgumentException($"unknown activation '{name}' in golden metadata"),
    };

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_mlp" })]
    public void MlpBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var layers = (int)file.Long("num_layers");
        var input = file.Read(scope, "inp");
        var weights = Enumerable.Range(0, layers).Select(l => file.Read(scope, $"w{l}")).ToList();
        var biases = Enumerable.Range(0, layers).Select(l => scope.AddOptional(file.Optional($"b{l}"))).ToList();
        using var accumulators = new GuardedAccumulators();
        var gradWeights = Enumerable.Range(0, layers).Select(l => accumulators.Prefilled($"grad_w{l}", weights[l].Shape, 10 + l)).ToList();
        var gradBiases = Enumerable.Range(0, layers)
            .Select(l => biases[l] is null ? null : accumulators.Prefilled($"grad_b{l}", biases[l]!.Shape, 20 + l)).ToList();
        var expectedInput = file.Read(scope, "grad_inp");
        var gradInput = outputs.Like("grad_inp", expectedInput);
        _backend.MlpBackward(gradInput, gradWeights, gradBiases,
            file.Read(scope, "dout"), input, weights, biases,
            ParseActivation(file.Metadata["hidden_activation"]), ParseActivation(file.Metadata["output_activation"]));
        outputs.AssertWrittenExactly();
        Compare.Close(gradInput, expectedInput, GoldenTolerance, "mlp grad_inp");
        for (var l = 0; l < layers; l++)
        {
            accumulators.AssertAccumulated(gradWeights[l], file.Read(scope, $"grad_w{l}"), 1, GoldenTolerance, $"mlp grad_w{l}");
            if (gradBiases[l] is { } gradBias)
            {
                accumulators.AssertAccumulated(gradBias, file.Read(scope, $"grad_b{l}"), 1, GoldenTolerance, $"mlp grad_b{l}");
            }
        }
    }

    // ReLU's kinks make finite differences unreliable at random points (a 1e-3 step crosses
    // some zero among hundreds of pre-activations): ReLU is checked against autograd above.
    [TestCase(Activation.Gelu, Activation.Silu, new long[] { 7, 12, 9, 3 }, 5)]
    [TestCase(Activation.Silu, Activation.None, new long[] { 5, 8, 4 }, 11)]
    [TestCase(Activation.None, Activation.Gelu, new long[] { 3, 6 }, 4)]
    public void MlpBackwardMatchesFiniteDifferences(Activation hidden, Activation output, long[] dims, int rows)
    {
        var random = new Random(61 + rows);
        using var scope = new TensorScope();
        var layers = dims.Length - 1;
        var input = scope.Add(GradientCheck.Random(random, 1f, rows, dims[0]));
        var weights = Enumerable.Range(0, layers).Select(l => scope.Add(GradientCheck.Random(random, 1.5f / MathF.Sqrt(dims[l]), dims[l + 1], dims[l]))).ToList();
        var biases = Enumerable.Range(0, layers).Select(l => (Tensor?)scope.Add(GradientCheck.Random(random, 0.2f, dims[l + 1]))).ToList();
        var probe = scope.Add(GradientCheck.Random(random, 1f, rows, dims[^1]));
        var result = scope.Add(Tensor.Empty([rows, dims[^1]]));
        var gradInput = scope.Add(Tensor.Empty(input.Shape));
        var gradWeights = weights.Select(w => scope.Add(Tensor.Zeros(w.Shape))).ToList();
        var gradBiases = biases.Select(b => (Tensor?)scope.Add(Tensor.Zeros(b!.Shape))).ToList();
        _backend.MlpBackward(gradInput, gradWeights, gradBiases, probe, input, weights, biases, hidden, output);
        double Loss()
        {
            _backend.Mlp(result, input, weights, biases, hidden, output);
            return GradientCheck.ProbeLoss(result, probe);
        }
        GradientCheck.AssertMatches("d input", input, gradInput, Loss, step: 1e-3f, tolerance: 2e-3, maxElements: 30, random: random);
        for (var l = 0; l < layers; l++)
        {
            GradientCheck.AssertMatches($"d weights[{l}]", weights[l], gradWeights[l], Loss, step: 1e-3f, tolerance: 2e-3, maxElements: 30, random: random);
            GradientCheck.AssertMatches($"d biases[{l}]", biases[l]!, gradBiases[l]!, Loss, step: 1e-3f, tolerance: 2e-3, maxElements: 30, random: random);
        }
    }

    [Test]
    public void MlpBackwardOverManyRowsEqualsTheSumOverTheirHalves()
    {
        // 9000 rows of the NeRF MLP shape take two recomputation chunks; two halves take one each.
        var random = new Random(71);
        using var scope = new TensorScope();
        long[] dims = [24, 64, 64, 64, 4];
        const int rows = 9000, half = rows / 2;
        var input = scope.Add(GradientCheck.Random(random, 1f, rows, dims[0]));
        var dout = scope.Add(GradientCheck.Random(random, 1f, rows, dims[^1]));
        var weights = Enumerable.Range(0, 4).Select(l => scope.Add(GradientCheck.Random(random, 1.5f / MathF.Sqrt(dims[l]), dims[l + 1], dims[l]))).ToList();
        var biases = Enumerable.Range(0, 4).Select(l => (Tensor?)scope.Add(GradientCheck.Random(random, 0.2f, dims[l + 1]))).ToList();
        var gradInput = scope.Add(Tensor.Empty(input.Shape));
        var gradWeights = weights.Select(w => scope.Add(Tensor.Zeros(w.Shape))).ToList();
        var gradBiases = biases.Select(b => (Tensor?)scope.Add(Tensor.Zeros(b!.Shape))).ToList();
        _backend.MlpBackward(gradInput, gradWeights, gradBiases, dout, input, weights, biases, Activation.Relu, Activation.None);

        var halfWeights = weights.Select(w => scope.Add(Tensor.Zeros(w.Shape))).ToList();
        var halfBiases = biases.Select(b => (Tensor?)scope.Add(Tensor.Zeros(b!.Shape))).ToList();
        var halfInput = scope.Add(Tensor.Empty([half, dims[0]]));
        var halfDout = scope.Add(Tensor.Empty([half, dims[^1]]));
        var halfGradInput = scope.Add(Tensor.Empty([half, dims[0]]));
        var joined = new float[rows * dims[0]];
        for (var part = 0; part < 2; part++)
        {
            _backend.Copy(halfInput, 0, input, part * half * dims[0], half * dims[0]);
            _backend.Copy(halfDout, 0, dout, part * half * dims[^1], half * dims[^1]);
            _backend.MlpBackward(halfGradInput, halfWeights, halfBiases, halfDout, halfInput, weights, biases, Activation.Relu, Activation.None);
            halfGradInput.AsSpan<float>().CopyTo(joined.AsSpan(part * half * (int)dims[0]));
        }
        Assert.That(Compare.RelativeError(gradInput.AsSpan<float>(), joined), Is.LessThan(1e-6), "grad_inp");
        for (var l = 0; l < 4; l++)
        {
            Assert.That(Compare.RelativeError(gradWeights[l].AsSpan<float>(), halfWeights[l].AsSpan<float>()), Is.LessThan(1e-5), $"grad_w{l}");
            Assert.That(Compare.RelativeError(gradBiases[l]!.AsSpan<float>(), halfBiases[l]!.AsSpan<float>()), Is.LessThan(1e-5), $"grad_b{l}");
        }
    }

    [Test]
    public void MlpBackwardShapeErrorsNameTheTensor()
    {
        using var input = Tensor.Zeros([5, 4]);
        using var w0 = Tensor.Zeros([6, 4]);
        using var w1 = Tensor.Zeros([2, 6]);
        using var dout = Tensor.Zeros([5, 2]);
        using var gw0 = Tensor.Zeros([6, 4]);
        using var gw1 = Tensor.Zeros([2, 6]);
        using var wrongGw1 = Tensor.Zeros([6, 2]);
        using var wrongDout = Tensor.Zeros([5, 3]);
        using var wrongGb0 = Tensor.Zeros([4]);
        GradientCheck.AssertShapeError(() => _backend.MlpBackward(null, [gw0, gw1], [null, null], wrongDout, input, [w0, w1], [null, null], Activation.Relu, Activation.None),
            "MlpBackward", "gradOutput");
        GradientCheck.AssertShapeError(() => _backend.MlpBackward(null, [gw0, wrongGw1], [null, null], dout, input, [w0, w1], [null, null], Activation.Relu, Activation.None),
            "MlpBackward", "gradWeights[1]");
        GradientCheck.AssertShapeError(() => _backend.MlpBackward(null, [gw0, gw1], [wrongGb0, null], dout, input, [w0, w1], [null, null], Activation.Relu, Activation.None),
            "MlpBackward", "gradBiases[0]");
    }

    // ---- NeRF output activations and the box mask -------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_nerf_decode" })]
    public void NerfDecodeBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var raw = file.Read(scope, "raw");
        var expected = file.Read(scope, "grad_raw");
        var gradRaw = outputs.Like("grad_raw", expected);
        var dsigma = file.Read(scope, "dsigma");
        var drgb = file.Read(scope, "drgb");
        _backend.NerfDecodeBackward(gradRaw, dsigma, drgb, raw);
        outputs.AssertWrittenExactly();
        Compare.Close(gradRaw, expected, GoldenTolerance, "nerf_decode grad_raw");

        // One upstream gradient absent: its channels get exactly 0, the others are unchanged.
        using var sigmaOnly = Tensor.Empty(raw.Shape);
        _backend.NerfDecodeBackward(sigmaOnly, dsigma, null, raw);
        using var rgbOnly = Tensor.Empty(raw.Shape);
        _backend.NerfDecodeBackward(rgbOnly, null, drgb, raw);
        var all = gradRaw.AsSpan<float>();
        for (var i = 0; i < all.Length; i++)
        {
            var density = i % 4 == 0;
            Assert.That(sigmaOnly.AsSpan<float>()[i], Is.EqualTo(density ? all[i] : 0f), $"sigma only, element {i}");
            Assert.That(rgbOnly.AsSpan<float>()[i], Is.EqualTo(density ? 0f : all[i]), $"rgb only, element {i}");
        }
    }

    [Test]
    public void NerfDecodeBackwardMatchesFiniteDifferences()
    {
        var random = new Random(81);
        using var raw = GradientCheck.Random(random, 6f, 40, 4);
        raw.AsSpan<float>()[0] = 24f; // above softplus' threshold (linear there)
        raw.AsSpan<float>()[4] = -30f;
        using var probeSigma = GradientCheck.Random(random, 1f, 40, 1);
        using var probeRgb = GradientCheck.Random(random, 1f, 40, 3);
        using var sigma = Tensor.Empty(probeSigma.Shape);
        using var rgb = Tensor.Empty(probeRgb.Shape);
        using var gradRaw = Tensor.Empty(raw.Shape);
        _backend.NerfDecodeBackward(gradRaw, probeSigma, probeRgb, raw);
        double Loss()
        {
            _backend.NerfDecode(sigma, rgb, raw);
            return GradientCheck.ProbeLoss(sigma, probeSigma) + GradientCheck.ProbeLoss(rgb, probeRgb);
        }
        var values = raw.AsSpan<float>().ToArray();
        // Away from the softplus threshold (raw₀ − 1 = 20), where float log1p(e^x) and x differ by ~2e-9.
        GradientCheck.AssertMatches("d raw", raw, gradRaw, Loss, step: 1e-3f, tolerance: 1e-3, maxElements: 160, random: random,
            usable: i => i % 4 != 0 || Math.Abs(values[i] - 21f) > 0.1f);
    }

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_render_decode" })]
    public void RenderDecodeBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = file.Read(scope, "grad_raw");
        var gradRaw = outputs.Like("grad_raw", expected);
        _backend.RenderDecodeBackward(gradRaw, file.Read(scope, "ddecoded"), file.Read(scope, "raw"),
            file.Read(scope, "points"));
        outputs.AssertWrittenExactly();
        Compare.Close(gradRaw, expected, GoldenTolerance, "render_decode grad_raw");
    }

    [Test]
    public void RenderDecodeBackwardMatchesFiniteDifferences()
    {
        var random = new Random(91);
        using var raw = GradientCheck.Random(random, 3f, 50, 4);
        using var points = GradientCheck.Uniform(random, -1.4f, 1.4f, 50, 3);
        using var probe = GradientCheck.Random(random, 1f, 50, 4);
        var p = points.AsSpan<float>().ToArray();
        bool Outside(int n) => Math.Max(Math.Abs(p[3 * n]), Math.Max(Math.Abs(p[3 * n + 1]), Math.Abs(p[3 * n + 2]))) > 1.00001f;
        for (var n = 0; n < 50; n++)
        {
            if (Outside(n))
            {
                // The outside density (−FLT_MAX/8) is a constant; left in the probe it would swamp the loss.
                probe.AsSpan<float>()[4 * n] = 0f;
            }
        }
        using var decoded = Tensor.Empty(raw.Shape);
        using var gradRaw = Tensor.Empty(raw.Shape);
        _backend.RenderDecodeBackward(gradRaw, probe, raw, points);
        double Loss()
        {
            _backend.RenderDecode(decoded, raw, points);
            return GradientCheck.ProbeLoss(decoded, probe);
        }
        GradientCheck.AssertMatches("d raw", raw, gradRaw, Loss, step: 1e-3f, tolerance: 1e-3, maxElements: 120, random: random);
        // Samples outside the box: exactly zero gradient (whatever the upstream gradient).
        _backend.RenderDecodeBackward(gradRaw, raw, raw, points);
        for (var n = 0; n < 50; n++)
        {
            if (Outside(n))
            {
                Assert.That(gradRaw.AsSpan<float>().Slice(4 * n, 4).ToArray(), Is.All.EqualTo(0f), $"sample {n} outside the box");
            }
        }
    }

    [Test]
    public void NerfAndRenderDecodeBackwardShapeErrorsNameTheTensor()
    {
        using var raw = Tensor.Zeros([6, 4]);
        using var gradRaw = Tensor.Zeros([6, 4]);
        using var wrongSigma = Tensor.Zeros([6, 2]);
        using var wrongGradRaw = Tensor.Zeros([5, 4]);
        using var points = Tensor.Zeros([6, 3]);
        using var gradDecoded = Tensor.Zeros([6, 4]);
        using var wrongGradDecoded = Tensor.Zeros([6, 3]);
        GradientCheck.AssertShapeError(() => _backend.NerfDecodeBackward(gradRaw, wrongSigma, null, raw), "NerfDecodeBackward", "gradSigma");
        GradientCheck.AssertShapeError(() => _backend.NerfDecodeBackward(wrongGradRaw, null, gradDecoded, raw), "NerfDecodeBackward", "gradRaw");
        GradientCheck.AssertShapeError(() => _backend.RenderDecodeBackward(gradRaw, wrongGradDecoded, raw, points), "RenderDecodeBackward", "gradDecoded");
        GradientCheck.AssertShapeError(() => _backend.RenderDecodeBackward(wrongGradRaw, gradDecoded, raw, points), "RenderDecodeBackward", "gradRaw");
    }

    // ---- ray compositing ---------------------------------------------------------------------

    private static readonly float[] MarchBackground = [1f, 0.5f, 0f];

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "spatial_render_march" })]
    public void RenderMarchBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var depthsA = file.Read(scope, "depths_a");
        var decodedA = file.Read(scope, "decoded_a");
        var depthsB = scope.AddOptional(file.Optional("depths_b"));
        var decodedB = scope.AddOptional(file.Optional("decoded_b"));
        var background = file.Read(scope, "background").AsSpan<float>().ToArray();
        var expectedA = file.Read(scope, "grad_decoded_a");
        var expectedB = scope.AddOptional(file.Optional("grad_decoded_b"));
        var gradA = outputs.Like("grad_decoded_a", expectedA);
        var gradB = expectedB is null ? null : outputs.Like("grad_decoded_b", expectedB);
        _backend.RenderMarchBackward(gradA, gradB, scope.AddOptional(file.Optional("drgb")), scope.AddOptional(file.Optional("ddepth")),
            scope.AddOptional(file.Optional("dopacity")), depthsA, decodedA, depthsB, decodedB, background,
            file.Read(scope, "depth_range"));
        outputs.AssertWrittenExactly();
        Compare.Close(gradA, expectedA, GoldenTolerance, "render_march grad_decoded_a");
        if (gradB is not null)
        {
            Compare.Close(gradB, expectedB!, GoldenTolerance, "render_march grad_decoded_b");
        }
    }

    /// <summary>Sorted depths per ray (near + span·sorted uniforms) and decoded samples with σ_raw ~ N(offset, scale).</summary>
    private static (Tensor Depths, Tensor Decoded) MarchSamples(Random random, int batch, int rays, int samples, float sigmaScale, float sigmaOffset)
    {
        var depths = Tensor.Empty([batch, rays, samples]);
        var decoded = Tensor.Empty([batch, rays * samples, 4]);
        var t = depths.AsSpan<float>();
        var s = decoded.AsSpan<float>();
        for (var ray = 0; ray < batch * rays; ray++)
        {
            var near = 1.0 + 0.5 * random.NextDouble();
            var u = Enumerable.Range(0, samples).Select(_ => random.NextDouble()).Order().ToArray();
            for (var k = 0; k < samples; k++)
            {
                t[ray * samples + k] = (float)(near + 1.5 * u[k]);
                var at = 4 * (ray * samples + k);
                s[at] = sigmaOffset + sigmaScale * (float)(random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5);
                for (var c = 1; c < 4; c++)
                {
                    s[at + c] = (float)random.NextDouble();
                }
            }
        }
        return (depths, decoded);
    }

    [TestCase(2, 7, 9, 0)]
    [TestCase(1, 5, 6, 8)]
    public void RenderMarchBackwardMatchesFiniteDifferences(int batch, int rays, int samplesA, int samplesB)
    {
        var random = new Random(101 + samplesB);
        using var scope = new TensorScope();
        var (depthsA, decodedA) = MarchSamples(random, batch, rays, samplesA, 2.5f, 1.5f);
        scope.Add(depthsA);
        scope.Add(decodedA);
        Tensor? depthsB = null, decodedB = null, gradB = null;
        if (samplesB > 0)
        {
            (depthsB, decodedB) = MarchSamples(random, batch, rays, samplesB, 2.5f, 1.5f);
            scope.Add(depthsB);
            scope.Add(decodedB);
            gradB = scope.Add(Tensor.Empty(decodedB.Shape));
        }
        // A range wide enough that no depth is clamped.
        var depthRange = scope.Add(Tensor.FromArray(Enumerable.Repeat(new[] { 0f, 10f }, batch).SelectMany(x => x).ToArray(), batch, 2));
        var probeRgb = scope.Add(GradientCheck.Random(random, 1f, batch, rays, 3));
        var probeDepth = scope.Add(GradientCheck.Random(random, 1f, batch, rays));
        var probeOpacity = scope.Add(GradientCheck.Random(random, 1f, batch, rays));
        var rgb = scope.Add(Tensor.Empty(probeRgb.Shape));
        var depth = scope.Add(Tensor.Empty(probeDepth.Shape));
        var opacity = scope.Add(Tensor.Empty(probeOpacity.Shape));
        var gradA = scope.Add(Tensor.Empty(decodedA.Shape));
        _backend.RenderMarchBackward(gradA, gradB, probeRgb, probeDepth, probeOpacity, depthsA, decodedA, depthsB, decodedB, MarchBackground, depthRange);
        double Loss()
        {
            _backend.RenderMarch(rgb, depth, opacity, null, depthsA, decodedA, depthsB, decodedB, MarchBackground, depthRange);
            return GradientCheck.ProbeLoss(rgb, probeRgb) + GradientCheck.ProbeLoss(depth, probeDepth) + GradientCheck.ProbeLoss(opacity, probeOpacity);
        }
        GradientCheck.AssertMatches("d decoded_a", decodedA, gradA, Loss, step: 1e-3f, tolerance: 5e-3, maxElements: 120, random: random);
        if (decodedB is not null)
        {
            GradientCheck.AssertMatches("d decoded_b", decodedB, gradB!, Loss, step: 1e-3f, tolerance: 5e-3, maxElements: 120, random: random);
        }
    }

    /// <summary>One ray composited in double precision, as kernels/render.cuh: Σ rgb·R + clamp(depth)·Rd + opacity·Ro.</summary>
    private static double MarchLossDouble(float[] t, double[] s, double[] probe, double lo, double hi)
    {
        double transmittance = 1, total = 0, depthSum = 0;
        var color = new double[3];
        for (var k = 0; k + 1 < t.Length; k++)
        {
            double delta = t[k + 1] - t[k], m = (s[4 * k] + s[4 * k + 4]) / 2 - 1;
            var sigma = m > 20 ? m : Math.Log(1 + Math.Exp(m));
            var alpha = 1 - Math.Exp(-sigma * delta);
            var w = alpha * transmittance;
            transmittance *= 1 - alpha + 1e-10;
            for (var c = 0; c < 3; c++)
            {
                color[c] += w * (s[4 * k + 1 + c] + s[4 * k + 5 + c]) / 2;
            }
            depthSum += w * ((double)t[k] + t[k + 1]) / 2;
            total += w;
        }
        double loss = 0;
        for (var c = 0; c < 3; c++)
        {
            loss += probe[c] * (color[c] + MarchBackground[c] * (1 - total));
        }
        return loss + probe[3] * Math.Clamp(depthSum / total, lo, hi) + probe[4] * total;
    }

    [Test]
    public void RenderMarchBackwardIsExactThroughSaturatedIntervals()
    {
        // Opaque intervals (σΔ ≈ 30 → α = 1 in float, T drops to ~1e-10) between ordinary ones: the suffix-sum
        // backward has no 1/(1 − α) and no difference of totals, so every sample, before and after the wall,
        // keeps its gradient. Reference: central differences of a double-precision forward.
        const int samples = 12;
        var t = Enumerable.Range(0, samples).Select(k => 1.0f + 0.1f * k).ToArray();
        var random = new Random(111);
        var s = new float[4 * samples];
        for (var k = 0; k < samples; k++)
        {
            s[4 * k] = (float)(random.NextDouble() * 3 - 1);
            for (var c = 1; c < 4; c++)
            {
                s[4 * k + c] = (float)random.NextDouble();
            }
        }
        s[4 * 5] = s[4 * 6] = 300f; // interval 5 saturates
        s[4 * 9] = 120f;            // intervals 8 and 9 are half-saturated (σΔ ≈ 6)
        var probe = new double[] { 0.7, -1.2, 0.4, 0.9, -0.5 };
        using var depths = Tensor.FromArray(t, 1, 1, samples);
        using var decoded = Tensor.FromArray(s, 1, samples, 4);
        using var gradRgb = Tensor.FromArray([0.7f, -1.2f, 0.4f], 1, 1, 3);
        using var gradDepth = Tensor.FromArray([0.9f], 1, 1);
        using var gradOpacity = Tensor.FromArray([-0.5f], 1, 1);
        using var depthRange = Tensor.FromArray([0f, 10f], 1, 2);
        using var gradDecoded = Tensor.Empty(decoded.Shape);
        _backend.RenderMarchBackward(gradDecoded, null, gradRgb, gradDepth, gradOpacity, depths, decoded, null, null, MarchBackground, depthRange);

        var analytic = gradDecoded.AsSpan<float>().ToArray();
        var values = s.Select(v => (double)v).ToArray();
        var numeric = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var h = 1e-6 * Math.Max(1, Math.Abs(values[i]));
            var original = values[i];
            values[i] = original + h;
            var up = MarchLossDouble(t, values, probe, 0, 10);
            values[i] = original - h;
            var down = MarchLossDouble(t, values, probe, 0, 10);
            values[i] = original;
            numeric[i] = (up - down) / (2 * h);
        }
        var error = Compare.RelativeError(analytic, numeric.Select(v => (float)v).ToArray());
        TestContext.Out.WriteLine($"saturated ray: ‖analytic − fd(double)‖/‖fd‖ = {error:G3}");
        Assert.That(error, Is.LessThan(1e-4), "‖analytic − fd(double)‖/‖fd‖ over every sample");
        // The samples before the wall carry real gradient, and it is right sample by sample.
        for (var i = 0; i < 4 * 5; i++)
        {
            Assert.That(analytic[i], Is.EqualTo(numeric[i]).Within(1e-4 * Math.Max(1, Math.Abs(numeric[i]))), $"element {i} before the wall");
        }
    }

    [Test]
    public void RenderMarchBackwardOfTheMergedSetsEqualsTheBackwardOfTheMerge()
    {
        // Marching a ∪ b merged by the op must give the gradients of marching the pre-merged set, scattered back.
        var random = new Random(121);
        using var scope = new TensorScope();
        var (depthsA, decodedA) = MarchSamples(random, 1, 3, 5, 2f, 1f);
        var (depthsB, decodedB) = MarchSamples(random, 1, 3, 4, 2f, 1f);
        scope.Add(depthsA); scope.Add(decodedA); scope.Add(depthsB); scope.Add(decodedB);
        var gradRgb = scope.Add(GradientCheck.Random(random, 1f, 1, 3, 3));
        var gradOpacity = scope.Add(GradientCheck.Random(random, 1f, 1, 3));
        var gradA = scope.Add(Tensor.Empty(decodedA.Shape));
        var gradB = scope.Add(Tensor.Empty(decodedB.Shape));
        _backend.RenderMarchBackward(gradA, gradB, gradRgb, null, gradOpacity, depthsA, decodedA, depthsB, decodedB, MarchBackground, null);

        var ta = depthsA.AsSpan<float>().ToArray();
        var tb = depthsB.AsSpan<float>().ToArray();
        var sa = decodedA.AsSpan<float>().ToArray();
        var sb = decodedB.AsSpan<float>().ToArray();
        var merged = new List<(float T, bool IsA, int Index)>();
        var mergedT = new float[3 * 9];
        var mergedS = new float[3 * 9 * 4];
        for (var ray = 0; ray < 3; ray++)
        {
            var order = Enumerable.Range(0, 5).Select(i => (T: ta[ray * 5 + i], IsA: true, Index: ray * 5 + i))
                .Concat(Enumerable.Range(0, 4).Select(i => (T: tb[ray * 4 + i], IsA: false, Index: ray * 4 + i)))
                .OrderBy(x => x.T).ThenBy(x => x.IsA ? 0 : 1).ToList();
            for (var k = 0; k < 9; k++)
            {
                var (depth, isA, index) = order[k];
                mergedT[ray * 9 + k] = depth;
                (isA ? sa : sb).AsSpan(4 * index, 4).CopyTo(mergedS.AsSpan(4 * (ray * 9 + k)));
            }
            merged.AddRange(order);
        }
        using var depthsMerged = Tensor.FromArray(mergedT, 1, 3, 9);
        using var decodedMerged = Tensor.FromArray(mergedS, 1, 27, 4);
        using var gradMerged = Tensor.Empty(decodedMerged.Shape);
        _backend.RenderMarchBackward(gradMerged, null, gradRgb, null, gradOpacity, depthsMerged, decodedMerged, null, null, MarchBackground, null);
        var g = gradMerged.AsSpan<float>();
        for (var k = 0; k < merged.Count; k++)
        {
            var (_, isA, index) = merged[k];
            var expected = g.Slice(4 * k, 4).ToArray();
            var actual = (isA ? gradA : gradB).AsSpan<float>().Slice(4 * index, 4).ToArray();
            Assert.That(actual, Is.EqualTo(expected), $"merged sample {k} ({(isA ? "a" : "b")}[{index}])");
        }
    }

    [Test]
    public void RenderMarchBackwardShapeErrorsNameTheTensor()
    {
        using var depthsA = Tensor.Zeros([1, 2, 4]);
        using var decodedA = Tensor.Zeros([1, 8, 4]);
        using var gradA = Tensor.Zeros([1, 8, 4]);
        using var wrongGradA = Tensor.Zeros([1, 7, 4]);
        using var gradRgb = Tensor.Zeros([1, 2, 3]);
        using var wrongGradRgb = Tensor.Zeros([1, 2, 4]);
        using var wrongGradOpacity = Tensor.Zeros([2, 1]);
        GradientCheck.AssertShapeError(() => _backend.RenderMarchBackward(wrongGradA, null, gradRgb, null, null, depthsA, decodedA, null, null, MarchBackground, null),
            "RenderMarchBackward", "gradDecodedA");
        GradientCheck.AssertShapeError(() => _backend.RenderMarchBackward(gradA, null, wrongGradRgb, null, null, depthsA, decodedA, null, null, MarchBackground, null),
            "RenderMarchBackward", "gradRgb");
        GradientCheck.AssertShapeError(() => _backend.RenderMarchBackward(gradA, null, null, null, wrongGradOpacity, depthsA, decodedA, null, null, MarchBackground, null),
            "RenderMarchBackward", "gradOpacity");
        Assert.Throws<LrmInvalidArgumentException>(() =>
            _backend.RenderMarchBackward(gradA, null, gradRgb, gradRgb, null, depthsA, decodedA, null, null, MarchBackground, null));
    }
}
