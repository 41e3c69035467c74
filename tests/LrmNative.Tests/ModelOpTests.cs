using LrmNative.Backends;
using LrmNative.Interop;

namespace LrmNative.Tests;

/// <summary>
/// The ops the model added to the engine (add, LayerScale, transpose, scale-factor resize, NeRF decode, render
/// ops) against plain C# double references, with poisoned, guarded outputs and odd sizes; and their argument
/// checks. The renderer ops are checked end to end against PyTorch in <see cref="ModelParityTests"/>.
/// </summary>
[TestFixture]
public sealed unsafe class ModelOpTests
{
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    private static Tensor Random(int seed, float scale, params long[] shape)
    {
        var random = new Random(seed);
        var tensor = Tensor.Empty(shape);
        var span = tensor.AsSpan<float>();
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = scale * (float)(random.NextDouble() * 2 - 1);
        }
        return tensor;
    }

    private static void AssertNear(ReadOnlySpan<float> actual, double[] expected, double tolerance, string what)
    {
        var reference = expected.Select(v => (float)v).ToArray();
        Assert.That(Compare.RelativeError(actual, reference), Is.LessThan(tolerance), what);
    }

    [TestCase(1L)]
    [TestCase(1027L)]
    [TestCase(70001L)]
    public void AddMatchesReference(long n)
    {
        using var a = Random(1, 1f, n);
        using var b = Random(2, 3f, n);
        using var outputs = new GuardedOutputs();
        var output = outputs.Create("out", [n]);
        _backend.Add(output, a, b);
        outputs.AssertWrittenExactly();
        var sa = a.AsSpan<float>().ToArray();
        var sb = b.AsSpan<float>().ToArray();
        Assert.That(output.AsSpan<float>().ToArray(), Is.EqualTo(sa.Zip(sb, (x, y) => x + y).ToArray()));
        _backend.Add(a, a, b);
        Assert.That(a.AsSpan<float>().ToArray(), Is.EqualTo(output.AsSpan<float>().ToArray()), "in place");
    }

    [TestCase(1L, 1L, true)]
    [TestCase(21L, 48L, true)]
    [TestCase(37L, 53L, false)]
    [TestCase(600L, 384L, true)]
    public void LayerScaleMatchesReference(long rows, long channels, bool withResidual)
    {
        using var input = Random(3, 2f, rows, channels);
        using var gamma = Random(4, 1f, channels);
        using var residual = Random(5, 1f, rows, channels);
        using var outputs = new GuardedOutputs();
        var output = outputs.Create("out", [rows, channels]);
        _backend.LayerScale(output, input, gamma, withResidual ? residual : null);
        outputs.AssertWrittenExactly();
        var x = input.AsSpan<float>().ToArray();
        var g = gamma.AsSpan<float>().ToArray();
        var r = residual.AsSpan<float>().ToArray();
        var expected = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            expected[i] = (withResidual ? r[i] : 0.0) + (double)x[i] * g[i % channels];
        }
        AssertNear(output.AsSpan<float>(), expected, 1e-7, "layerscale");
        _backend.LayerScale(residual, input, gamma, residual);
        if (withResidual)
        {
            Assert.That(residual.AsSpan<float>().ToArray(), Is.EqualTo(output.AsSpan<float>().ToArray()), "in place on the residual");
        }
    }

    [TestCase(1L, 1L, 1L)]
    [TestCase(3L, 64L, 16L)]
    [TestCase(2L, 37L, 53L)]
    [TestCase(1L, 1369L, 48L)]
    public void TransposeIsExact(long batch, long rows, long columns)
    {
        using var input = Random(6, 1f, batch, rows, columns);
        using var outputs = new GuardedOutputs();
        var output = outputs.Create("out", [batch, columns, rows]);
        _backend.Transpose(output, input);
        outputs.AssertWrittenExactly();
        var x = input.AsSpan<float>();
        var y = output.AsSpan<float>();
        for (long b = 0; b < batch; b++)
        {
            for (long r = 0; r < rows; r++)
            {
                for (long c = 0; c < columns; c++)
                {
                    Assert.That(y[(int)((b * columns + c) * rows + r)], Is.EqualTo(x[(int)((b * rows + r) * columns + c)]));
                }
            }
        }
        using var square = Random(6, 1f, batch, rows, rows);
        Assert.Throws<LrmInvalidArgumentException>(() => _backend.Transpose(square, square));
    }

    [Test]
    public void CopyChecksRanges()
    {
        using var source = Random(7, 1f, 10);
        using var destination = Tensor.Zeros([12]);
        _backend.Copy(destination, 2, source, 3, 7);
        Assert.That(destination.AsSpan<float>()[2..9].ToArray(), Is.EqualTo(source.AsSpan<float>()[3..10].ToArray()));
        Assert.Throws<LrmShapeException>(() => _backend.Copy(destination, 6, source, 3, 7));
        Assert.Throws<LrmShapeException>(() => _backend.Copy(destination, 0, source, 4, 7));
        Assert.Throws<LrmInvalidArgumentException>(() => _backend.Copy(source, 0, source, 2, 5));
    }

    /// <summary>With scale_factor = out/in exactly, interpolate(scale_factor) equals interpolate(size).</summary>
    [TestCase(37, 74, ResizeMode.Bicubic, true)]
    [TestCase(16, 8, ResizeMode.Bicubic, true)]
    [TestCase(12, 36, ResizeMode.Bilinear, false)]
    public void ScaledResizeEqualsSizedResizeForExactFactors(int input, int output, ResizeMode mode, bool antialias)
    {
        using var planes = Random(8, 1f, 5, input, input);
        using var sized = Tensor.Empty([5, output, output]);
        using var outputs = new GuardedOutputs();
        var scaled = outputs.Create("scaled", [5, output, output]);
        var a = antialias ? -0.5f : -0.75f;
        _backend.Resize(sized, planes, mode, a, antialias);
        _backend.ResizeScaled(scaled, planes, mode, (double)output / input, (double)output / input, a, antialias);
        outputs.AssertWrittenExactly();
        Assert.That(scaled.AsSpan<float>().ToArray(), Is.EqualTo(sized.AsSpan<float>().ToArray()));
    }

    /// <summary>DINOv2 with offset 0.1 (no registers): scale_factor (g + 0.1)/37 maps coordinates by 37/(g + 0.1), not 37/g.</summary>
    [Test]
    public void ScaledResizeUsesTheInverseScaleFactor()
    {
        const int input = 37, output = 16;
        const double factor = (output + 0.1) / input;
        using var planes = Random(9, 1f, 3, input, input);
        using var scaled = Tensor.Empty([3, output, output]);
        _backend.ResizeScaled(scaled, planes, ResizeMode.Bicubic, factor, factor, -0.75f, false);
        // Plain bicubic (PyTorch upsample_bicubic2d): src = (dst + 0.5)/factor − 0.5, taps clamped to the border.
        var x = planes.AsSpan<float>().ToArray();
        var expected = new double[3 * output * output];
        var taps = new (int[] Index, double[] Weight)[output];
        for (var o = 0; o < output; o++)
        {
            var source = (o + 0.5) / factor - 0.5;
            var floor = Math.Floor(source);
            var t = source - floor;
            double[] weight = [Cubic2(t + 1), Cubic1(t), Cubic1(1 - t), Cubic2(2 - t)];
            var index = Enumerable.Range(-1, 4).Select(j => Math.Clamp((int)floor + j, 0, input - 1)).ToArray();
            taps[o] = (index, weight);
        }
        for (var p = 0; p < 3; p++)
        {
            for (var oy = 0; oy < output; oy++)
            {
                for (var ox = 0; ox < output; ox++)
                {
                    double sum = 0;
                    for (var j = 0; j < 4; j++)
                    {
                        for (var i = 0; i < 4; i++)
                        {
                            sum += taps[oy].Weight[j] * taps[ox].Weight[i] * x[(p * input + taps[oy].Index[j]) * input + taps[ox].Index[i]];
                        }
                    }
                    expected[(p * output + oy) * output + ox] = sum;
                }
            }
        }
        AssertNear(scaled.AsSpan<float>(), expected, 1e-6, "scale-factor bicubic");

        static double Cubic1(double v) => ((-0.75 + 2) * v - (-0.75 + 3)) * v * v + 1;
        static double Cubic2(double v) => ((-0.75 * v - 5 * -0.75) * v + 8 * -0.75) * v - 4 * -0.75;
    }

    [TestCase(1L)]
    [TestCase(517L)]
    [TestCase(20000L)]
    public void NerfDecodeMatchesReference(long rows)
    {
        using var raw = Random(10, 30f, rows, 4);
        using var outputs = new GuardedOutputs();
        var sigma = outputs.Create("sigma", [rows, 1]);
        var rgb = outputs.Create("rgb", [rows, 3]);
        _backend.NerfDecode(sigma, rgb, raw);
        outputs.AssertWrittenExactly();
        var x = raw.AsSpan<float>().ToArray();
        var expectedSigma = new double[rows];
        var expectedRgb = new double[rows * 3];
        for (var r = 0; r < rows; r++)
        {
            var s = x[4 * r] - 1.0;
            expectedSigma[r] = s > 20 ? s : Math.Log(1 + Math.Exp(s));
            for (var c = 0; c < 3; c++)
            {
                expectedRgb[3 * r + c] = 1.0 / (1.0 + Math.Exp(-x[4 * r + 1 + c])) * 1.002 - 0.001;
            }
        }
        AssertNear(sigma.AsSpan<float>(), expectedSigma, 1e-6, "sigma");
        AssertNear(rgb.AsSpan<float>(), expectedRgb, 1e-6, "rgb");
    }

    [Test]
    public void RenderMarchOfAnEmptyBoxIsTheBackground()
    {
        // Two rays, 4 samples each, all outside the box: opacity 0, background colour, depth clamped to the range max.
        using var depths = Tensor.FromArray([1f, 2f, 3f, 4f, 1.5f, 2f, 2.5f, 3f], 1, 2, 4);
        using var decoded = Tensor.Empty([1, 8, 4]);
        using var raw = Tensor.Zeros([1, 8, 4]);
        using var points = Tensor.Empty([1, 8, 3]);
        points.AsSpan<float>().Fill(5f);
        _backend.RenderDecode(decoded, raw, points);
        using var range = Tensor.FromArray([1f, 4f], 1, 2);
        using var outputs = new GuardedOutputs();
        var rgb = outputs.Create("rgb", [1, 2, 3]);
        var depth = outputs.Create("depth", [1, 2]);
        var opacity = outputs.Create("opacity", [1, 2]);
        var weights = outputs.Create("weights", [1, 2, 3]);
        _backend.RenderMarch(rgb, depth, opacity, weights, depths, decoded, null, null, [0.25f, 0.5f, 0.75f], range);
        outputs.AssertWrittenExactly();
        Assert.That(rgb.AsSpan<float>().ToArray(), Is.EqualTo(new[] { 0.25f, 0.5f, 0.75f, 0.25f, 0.5f, 0.75f }));
        Assert.That(opacity.AsSpan<float>().ToArray(), Is.EqualTo(new[] { 0f, 0f }));
        Assert.That(weights.AsSpan<float>().ToArray(), Is.All.Zero);
        Assert.That(depth.AsSpan<float>().ToArray(), Is.EqualTo(new[] { 4f, 4f }));
    }

    [Test]
    public void RenderMarchMergesTwoSortedSets()
    {
        // Set a ∪ set b, marched together, equals the same samples marched as one sorted set.
        using var depthsA = Tensor.FromArray([0.0f, 0.5f, 1.0f, 1.5f], 1, 1, 4);
        using var depthsB = Tensor.FromArray([0.25f, 0.75f, 0.8f], 1, 1, 3);
        using var all = Tensor.FromArray([0.0f, 0.25f, 0.5f, 0.75f, 0.8f, 1.0f, 1.5f], 1, 1, 7);
        float[] sampleA = [2, .1f, .2f, .3f, 1, .4f, .5f, .6f, 3, .7f, .8f, .9f, 0, .2f, .2f, .2f];
        float[] sampleB = [1.5f, .3f, .3f, .3f, 2.5f, .6f, .5f, .4f, .5f, .9f, .1f, .5f];
        float[] merged = [.. sampleA[0..4], .. sampleB[0..4], .. sampleA[4..8], .. sampleB[4..8], .. sampleB[8..12], .. sampleA[8..12], .. sampleA[12..16]];
        using var decodedA = Tensor.FromArray(sampleA, 1, 4, 4);
        using var decodedB = Tensor.FromArray(sampleB, 1, 3, 4);
        using var decodedAll = Tensor.FromArray(merged, 1, 7, 4);
        using var range = Tensor.FromArray([0f, 1.5f], 1, 2);
        using var rgb1 = Tensor.Empty([1, 1, 3]);
        using var rgb2 = Tensor.Empty([1, 1, 3]);
        using var depth1 = Tensor.Empty([1, 1]);
        using var depth2 = Tensor.Empty([1, 1]);
        using var weights1 = Tensor.Empty([1, 1, 6]);
        using var weights2 = Tensor.Empty([1, 1, 6]);
        _backend.RenderMarch(rgb1, depth1, null, weights1, depthsA, decodedA, depthsB, decodedB, [1f, 1f, 1f], range);
        _backend.RenderMarch(rgb2, depth2, null, weights2, all, decodedAll, null, null, [1f, 1f, 1f], range);
        Assert.That(rgb1.AsSpan<float>().ToArray(), Is.EqualTo(rgb2.AsSpan<float>().ToArray()));
        Assert.That(depth1.AsSpan<float>().ToArray(), Is.EqualTo(depth2.AsSpan<float>().ToArray()));
        Assert.That(weights1.AsSpan<float>().ToArray(), Is.EqualTo(weights2.AsSpan<float>().ToArray()));
        Assert.That(weights1.AsSpan<float>().ToArray(), Has.Some.GreaterThan(0f));
    }

    [Test]
    public void NewEntryPointsRejectBadArguments()
    {
        var buffer = stackalloc float[64];
        Assert.That(NativeMethods.lrm_add_forward(buffer, null, buffer, 4), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("lrm_add_forward").And.Contain("'a'"));
        Assert.That(NativeMethods.lrm_layerscale_forward(buffer, buffer, buffer, null, 0, 4), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("rows"));
        Assert.That(NativeMethods.lrm_transpose_forward(buffer, buffer + 1, 1, 2, 2), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("overlap"));
        Assert.That(NativeMethods.lrm_resize_scaled_forward(buffer, buffer + 32, 1, 2, 2, 2, 2, 1, -0.5f, 1, 0.0, 1.0), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("scale factors"));
        Assert.That(NativeMethods.lrm_nerf_decode_forward(null, null, buffer, 4), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeMethods.lrm_render_rays_forward(buffer, buffer, buffer, null, buffer, 1, 2, 2, 1), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("samples"));
        Assert.That(NativeMethods.lrm_render_importance_forward(buffer, buffer, buffer, 1, 1, 3, 4), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("coarse_samples"));
        Assert.That(NativeMethods.lrm_render_march_forward(buffer, buffer, buffer, null, buffer, buffer, 4, null, null, 0, buffer, null, 1, 1), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("depth_range"));
        Assert.That(NativeMethods.lrm_render_march_forward(null, null, null, null, buffer, buffer, 1, null, null, 0, buffer, null, 1, 1), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("at least 2 samples"));
    }
}
