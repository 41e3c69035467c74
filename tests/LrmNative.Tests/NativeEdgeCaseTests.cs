using System.Runtime.InteropServices;
using LrmNative.Backends;
using LrmNative.Interop;

namespace LrmNative.Tests;

/// <summary>
/// Edge cases of the CPU engine that ordinary shapes never reach: parameter-gradient sums when OpenMP
/// starts fewer threads than asked for (checked in a child test process run with OMP_THREAD_LIMIT=1 or
/// OMP_DYNAMIC=true, bit for bit against this process), triplane planes wider than 2^24 (where float
/// loses the last pixel index), resize scale factors so small that the source coordinates leave any
/// image, GELU of NaN, sample counts whose sum overflows, and marching-cubes bounds whose span overflows
/// float.
/// </summary>
[TestFixture]
[NonParallelizable] // sets the engine's process-wide thread count
public sealed unsafe class NativeEdgeCaseTests
{
    // Set in the child process: the directory the parameter-gradient test writes its results' bits to.
    private const string TeamDumpVariable = "LRM_TEST_TEAM_DUMP";

    private static readonly int[] ThreadCounts = [1, 3, 4, 7];

    // ---- reductions over rows: the requested split, whatever team OpenMP delivers ------------------------

    /// <summary>
    /// The parameter gradients summed over rows (GEMM dbias, LayerNorm and ModLN dweight/dbias/dshift/dscale,
    /// LayerScale dgamma) against sums in double, and the triplane per-thread-partials dplanes against the
    /// deterministic chunked scatter. The sizes give every reduction 7 row ranges, so each thread count splits.
    /// </summary>
    [TestCaseSource(nameof(ThreadCounts))]
    public void ParameterGradientsMatchTheDoubleReference(int threads)
    {
        var results = ParameterGradients(threads);
        foreach (var (name, actual, expected) in results)
        {
            Assert.That(Compare.RelativeError(actual, expected.Select(v => (float)v).ToArray()), Is.LessThan(1e-5),
                $"{name} with {threads} threads");
        }
        if (Environment.GetEnvironmentVariable(TeamDumpVariable) is { Length: > 0 } directory)
        {
            foreach (var (name, actual, _) in results)
            {
                File.WriteAllBytes(Path.Combine(directory, $"{threads}-{name}.bin"), MemoryMarshal.AsBytes(actual.AsSpan()).ToArray());
            }
        }
    }

    /// <summary>
    /// OpenMP may start fewer threads than num_threads() asks for. The reductions keep the split of the requested
    /// count and let the threads that exist take several ranges, so a child process whose runtime is limited to one
    /// thread (or lets the runtime pick) must pass the reference test and produce the same bits as this process.
    /// </summary>
    [TestCase("OMP_THREAD_LIMIT", "1")]
    [TestCase("OMP_DYNAMIC", "true")]
    public void ParameterGradientsDoNotDependOnTheTeamOpenMPDelivers(string variable, string value)
    {
        var directory = Directory.CreateTempSubdirectory("lrm-team-").FullName;
        try
        {
            var program = Path.Combine(AppContext.BaseDirectory, "LrmNative.Tests");
            var filter = $"FullyQualifiedName~{nameof(NativeEdgeCaseTests)}.{nameof(ParameterGradientsMatchTheDoubleReference)}";
            var environment = new Dictionary<string, string> { [variable] = value, [TeamDumpVariable] = directory };
            var (exitCode, output, errors) = ExternalProcess.Run(program, ["--filter", filter], environment, TimeSpan.FromMinutes(5));
            Assert.That(exitCode, Is.EqualTo(0), $"the child test run with {variable}={value} failed:\n{output}\n{errors}");
            foreach (var threads in ThreadCounts)
            {
                foreach (var (name, actual, _) in ParameterGradients(threads))
                {
                    var child = File.ReadAllBytes(Path.Combine(directory, $"{threads}-{name}.bin"));
                    Assert.That(child, Is.EqualTo(MemoryMarshal.AsBytes(actual.AsSpan()).ToArray()),
                        $"{name} with {threads} threads requested: {variable}={value} changed the bits");
                }
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    // Every row-reduced gradient at a requested thread count: (name, engine result, reference).
    private static List<(string Name, float[] Actual, double[] Expected)> ParameterGradients(int threads)
    {
        var results = new List<(string, float[], double[])>();
        var random = new Random(1009);
        using var scope = new TensorScope();
        var backend = scope.Add(new CpuBackend(threads));
        try
        {
            // LayerNorm: 1500 rows of 80 (16384/80 = 204 rows per range at least: 7 ranges).
            const int rows = 1500, channels = 80;
            var input = scope.Add(GradientCheck.Random(random, 1f, 0.3f, rows, channels));
            var weight = scope.Add(GradientCheck.Random(random, 1f, 1f, channels));
            var bias = scope.Add(GradientCheck.Random(random, 0.5f, channels));
            var gradOutput = scope.Add(GradientCheck.Random(random, 1f, rows, channels));
            var output = scope.Add(Tensor.Empty([rows, channels]));
            var mean = scope.Add(Tensor.Empty([rows]));
            var rstd = scope.Add(Tensor.Empty([rows]));
            backend.LayerNorm(output, mean, rstd, input, weight, bias, 1e-5f);
            var gradInput = scope.Add(Tensor.Empty([rows, channels]));
            var gradWeight = scope.Add(Tensor.Zeros([channels]));
            var gradBias = scope.Add(Tensor.Zeros([channels]));
            backend.LayerNormBackward(gradInput, gradWeight, gradBias, gradOutput, mean, rstd, input, weight);
            var (dweight, dbias, _, _) = NormReference(input, gradOutput, mean, rstd, weight, bias, null, 1, rows, channels);
            results.Add(("layernorm.dweight", gradWeight.AsSpan<float>().ToArray(), dweight));
            results.Add(("layernorm.dbias", gradBias.AsSpan<float>().ToArray(), dbias));

            // ModLN: 3 samples of 500 tokens.
            const int batch = 3, tokens = 500;
            var tokensIn = scope.Add(GradientCheck.Random(random, 1f, batch, tokens, channels));
            var shift = scope.Add(GradientCheck.Random(random, 0.5f, batch, channels));
            var scale = scope.Add(GradientCheck.Random(random, 0.5f, batch, channels));
            var gradTokens = scope.Add(GradientCheck.Random(random, 1f, batch, tokens, channels));
            var modulated = scope.Add(Tensor.Empty([batch, tokens, channels]));
            var modMean = scope.Add(Tensor.Empty([batch, tokens]));
            var modRstd = scope.Add(Tensor.Empty([batch, tokens]));
            backend.ModLN(modulated, modMean, modRstd, tokensIn, weight, bias, shift, scale, 1e-6f);
            var gradModInput = scope.Add(Tensor.Empty([batch, tokens, channels]));
            var gradModWeight = scope.Add(Tensor.Zeros([channels]));
            var gradModBias = scope.Add(Tensor.Zeros([channels]));
            var gradShift = scope.Add(Tensor.Empty([batch, channels]));
            var gradScale = scope.Add(Tensor.Empty([batch, channels]));
            backend.ModLNBackward(gradModInput, gradModWeight, gradModBias, gradShift, gradScale, gradTokens, modMean, modRstd, tokensIn,
                weight, bias, scale);
            var (mw, mb, ms, mc) = NormReference(tokensIn, gradTokens, modMean, modRstd, weight, bias, scale, batch, tokens, channels);
            results.Add(("modln.dweight", gradModWeight.AsSpan<float>().ToArray(), mw));
            results.Add(("modln.dbias", gradModBias.AsSpan<float>().ToArray(), mb));
            results.Add(("modln.dshift", gradShift.AsSpan<float>().ToArray(), ms!));
            results.Add(("modln.dscale", gradScale.AsSpan<float>().ToArray(), mc!));

            // GEMM dbias and LayerScale dgamma: 3000 rows of 80 (32768/80 = 409 rows per range at least).
            const int longRows = 3000, inner = 8;
            var a = scope.Add(GradientCheck.Random(random, 1f, longRows, inner));
            var b = scope.Add(GradientCheck.Random(random, 1f, inner, channels));
            var gradProduct = scope.Add(GradientCheck.Random(random, 1f, longRows, channels));
            var gradGemmBias = scope.Add(Tensor.Zeros([channels]));
            backend.GemmBackward(null, null, gradGemmBias, gradProduct, a, b);
            var columnSums = new double[channels];
            var dout = gradProduct.AsSpan<float>();
            for (var r = 0; r < longRows; r++)
            {
                for (var c = 0; c < channels; c++)
                {
                    columnSums[c] += dout[r * channels + c];
                }
            }
            results.Add(("gemm.dbias", gradGemmBias.AsSpan<float>().ToArray(), columnSums));

            var layerInput = scope.Add(GradientCheck.Random(random, 1f, longRows, channels));
            var gamma = scope.Add(GradientCheck.Random(random, 0.1f, channels));
            var gradGamma = scope.Add(Tensor.Zeros([channels]));
            backend.LayerScaleBackward(null, gradGamma, null, gradProduct, layerInput, gamma);
            var dgamma = new double[channels];
            var x = layerInput.AsSpan<float>();
            for (var r = 0; r < longRows; r++)
            {
                for (var c = 0; c < channels; c++)
                {
                    dgamma[c] += (double)dout[r * channels + c] * x[r * channels + c];
                }
            }
            results.Add(("layerscale.dgamma", gradGamma.AsSpan<float>().ToArray(), dgamma));

            // Triplane dplanes by per-thread partial images, against the chunked scatter (thread-count independent).
            var planes = scope.Add(GradientCheck.Random(random, 1f, 2, 3, 8, 8, 4));
            var points = scope.Add(GradientCheck.Uniform(random, -1.1f, 1.1f, 2, 5000, 3));
            var gradSamples = scope.Add(GradientCheck.Random(random, 1f, 2, 5000, 12));
            var chunked = scope.Add(Tensor.Empty(planes.Shape));
            var partials = scope.Add(Tensor.Empty(planes.Shape));
            backend.Deterministic = true;
            backend.TriplaneSampleBackward(chunked, null, gradSamples, planes, points);
            backend.Deterministic = false;
            backend.TriplaneSampleBackward(partials, null, gradSamples, planes, points);
            results.Add(("triplane.dplanes", partials.AsSpan<float>().ToArray(), chunked.AsSpan<float>().ToArray().Select(v => (double)v).ToArray()));
        }
        finally
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(0));
        }
        return results;
    }

    // Σ over rows in double of the LayerNorm (scale null) or ModLN parameter gradients, from the saved statistics:
    // dy = dout·(1 + scale), x̂ = (x − mean)·rstd; dweight = Σ dy·x̂, dbias = Σ dy, dshift = Σ_t dout, dscale = Σ_t dout·(x̂·w + b).
    private static (double[] Weight, double[] Bias, double[]? Shift, double[]? Scale) NormReference(Tensor input, Tensor gradOutput,
        Tensor mean, Tensor rstd, Tensor weight, Tensor bias, Tensor? scale, int batch, int tokens, int channels)
    {
        ReadOnlySpan<float> x = input.AsSpan<float>(), dout = gradOutput.AsSpan<float>(), mu = mean.AsSpan<float>(), rs = rstd.AsSpan<float>();
        ReadOnlySpan<float> w = weight.AsSpan<float>(), b = bias.AsSpan<float>();
        ReadOnlySpan<float> s = scale is null ? default : scale.AsSpan<float>();
        double[] dweight = new double[channels], dbias = new double[channels];
        double[]? dshift = scale is null ? null : new double[batch * channels], dscale = scale is null ? null : new double[batch * channels];
        for (var row = 0; row < batch * tokens; row++)
        {
            var sample = row / tokens;
            for (var c = 0; c < channels; c++)
            {
                var at = row * channels + c;
                var xhat = ((double)x[at] - mu[row]) * rs[row];
                var dy = scale is null ? dout[at] : dout[at] * (1.0 + s[sample * channels + c]);
                dweight[c] += dy * xhat;
                dbias[c] += dy;
                if (scale is not null)
                {
                    dshift![sample * channels + c] += dout[at];
                    dscale![sample * channels + c] += dout[at] * (xhat * w[c] + b[c]);
                }
            }
        }
        return (dweight, dbias, dshift, dscale);
    }

    // ---- normalisation backward: any subset of the gradients, in place ------------------------------------

    /// <summary>
    /// LayerNorm and ModLN backward through the C entry points, 2 threads, 77 channels (a partial 16-column block),
    /// two samples of 150 tokens (the tile flushed at the sample change and every 32 rows): the parameter gradients
    /// alone (dinp NULL) and dinp alone give the bits of the call that asks for everything, and so does dinp written
    /// over dout (documented as allowed). Bit equality, since all of them take the same path through the same rows.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void NormalisationBackwardGivesTheSameBitsForAnySubsetOfGradientsAndInPlace(bool modulated)
    {
        const int batch = 2, tokens = 150, channels = 77;
        var random = new Random(4099);
        using var scope = new TensorScope();
        var input = scope.Add(GradientCheck.Random(random, 1f, 0.3f, batch, tokens, channels));
        var weight = scope.Add(GradientCheck.Random(random, 1f, 1f, channels));
        var bias = scope.Add(GradientCheck.Random(random, 0.5f, channels));
        var shift = scope.Add(GradientCheck.Random(random, 0.5f, batch, channels));
        var scale = scope.Add(GradientCheck.Random(random, 0.5f, batch, channels));
        var gradOutput = scope.Add(GradientCheck.Random(random, 1f, batch, tokens, channels));
        var mean = scope.Add(Tensor.Empty([batch, tokens]));
        var rstd = scope.Add(Tensor.Empty([batch, tokens]));
        using (var backend = new CpuBackend())
        using (var output = Tensor.Empty([batch, tokens, channels]))
        {
            backend.ModLN(output, mean, rstd, input, weight, bias, shift, scale, 1e-6f);
        }
        // gradients[0..4]: dinp, dweight, dbias (accumulated: start from the same non-zero values), dshift, dscale.
        Tensor[] Gradients()
        {
            var start = new Random(7);
            return [scope.Add(Tensor.Empty(input.Shape)), scope.Add(GradientCheck.Random(start, 1f, channels)),
                scope.Add(GradientCheck.Random(start, 1f, channels)), scope.Add(Tensor.Empty(shift.Shape)), scope.Add(Tensor.Empty(scale.Shape))];
        }
        void Backward(Tensor? dinp, Tensor? dweight, Tensor? dbias, Tensor? dshift, Tensor? dscale, Tensor dout)
        {
            var status = modulated
                ? NativeMethods.lrm_modln_backward(F(dinp), F(dweight), F(dbias), F(dshift), F(dscale), F(dout), F(mean), F(rstd), F(input),
                    F(weight), F(bias), F(scale), batch, tokens, channels)
                : NativeMethods.lrm_layernorm_backward(F(dinp), F(dweight), F(dbias), F(dout), F(mean), F(rstd), F(input), F(weight),
                    batch * tokens, channels);
            NativeCheck.Check(status);
        }
        static float[] Bits(Tensor tensor) => tensor.AsSpan<float>().ToArray();
        static float* F(Tensor? tensor) => tensor is null ? null : (float*)tensor.Pointer;

        NativeCheck.Check(NativeMethods.lrm_set_num_threads(2));
        try
        {
            var all = Gradients();
            Backward(all[0], all[1], all[2], modulated ? all[3] : null, modulated ? all[4] : null, gradOutput);
            var parameters = Gradients();
            Backward(null, parameters[1], parameters[2], modulated ? parameters[3] : null, modulated ? parameters[4] : null, gradOutput);
            var names = new[] { "dinp", "dweight", "dbias", "dshift", "dscale" };
            for (var i = 1; i < (modulated ? 5 : 3); i++)
            {
                Assert.That(Bits(parameters[i]), Is.EqualTo(Bits(all[i])), $"{names[i]} without dinp");
            }
            var alone = scope.Add(Tensor.Empty(input.Shape));
            Backward(alone, null, null, null, null, gradOutput);
            Assert.That(Bits(alone), Is.EqualTo(Bits(all[0])), "dinp alone");
            var inPlace = scope.Add(Tensor.Empty(input.Shape));
            gradOutput.AsSpan<float>().CopyTo(inPlace.AsSpan<float>());
            Backward(inPlace, null, null, null, null, inPlace);
            Assert.That(Bits(inPlace), Is.EqualTo(Bits(all[0])), "dinp written over dout");
            Assert.That(Bits(all[0]).Count(v => v != 0f), Is.GreaterThan(batch * tokens * channels / 2), "dinp is not mostly zero");
        }
        finally
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(0));
        }
    }

    // ---- triplane planes wider than 2^24 -------------------------------------------------------------------

    /// <summary>
    /// Width 2^24 + 4: width − 1 = 2^24 + 3 rounds up to 2^24 + 4 in float, and u = 1 lands on pixel coordinate
    /// exactly 2^24 + 4 = width, one past the last pixel. That corner lies outside the plane and must contribute
    /// nothing (zero padding): neither read (the planes sit between NaN guards, and plane p's pixel W is plane p+1's
    /// pixel 0) nor, backward, written. Sample, dplanes and dpoints against a reference with integer corner tests.
    /// The coordinates are chosen so every product is exact: the comparison is to float rounding only.
    /// </summary>
    [Test]
    public void TriplaneSampleOnAPlaneWiderThan2To24StaysInsideIt()
    {
        const long width = (1L << 24) + 4;
        const int count = 75;
        using var backend = new CpuBackend();
        using var planes = Tensor.CreateGuarded([1, 3, 1, width, 1], GuardedOutputs.Poison);
        var values = planes.AsSpan<float>();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = 1 + i % 7;
        }
        using var points = Tensor.Empty([1, count, 3]);
        var coordinates = points.AsSpan<float>();
        ReadOnlySpan<float> along = [-1f, -0.5f, 0f, 0.5f, 1f], across = [-0.5f, 0f, 0.5f];
        var n = 0;
        foreach (var px in along)
        {
            foreach (var py in across)
            {
                foreach (var pz in along)
                {
                    coordinates[3 * n] = px;
                    coordinates[3 * n + 1] = py;
                    coordinates[3 * n + 2] = pz;
                    n++;
                }
            }
        }
        using var gradOutput = Tensor.Empty([1, count, 3]);
        var dout = gradOutput.AsSpan<float>();
        for (var i = 0; i < dout.Length; i++)
        {
            dout[i] = 1 + i % 3;
        }
        var (expected, expectedPlanes, expectedPoints) = TriplaneReference(planes.AsSpan<float>(), coordinates, dout, count, width);

        using var output = Tensor.Empty([1, count, 3]);
        backend.TriplaneSample(output, planes, points);
        Assert.That(output.AsSpan<float>().ToArray(), Is.EqualTo(expected).Within(1e-6), "sample");
        using var gradPoints = Tensor.Empty(points.Shape);
        using (var gradPlanes = Tensor.Empty(planes.Shape))
        {
            backend.TriplaneSampleBackward(gradPlanes, gradPoints, gradOutput, planes, points);
            var actualPlanes = gradPlanes.AsSpan<float>();
            foreach (var (index, value) in expectedPlanes)
            {
                Assert.That(actualPlanes[(int)index], Is.EqualTo(value), $"dplanes[{index}]");
            }
            var total = 0.0;
            foreach (var value in actualPlanes)
            {
                total += Math.Abs(value);
            }
            Assert.That(total, Is.EqualTo(expectedPlanes.Values.Sum(v => Math.Abs((double)v))).Within(1e-9), "dplanes outside the touched texels");
        }
        Assert.That(Compare.RelativeError(gradPoints.AsSpan<float>(), expectedPoints), Is.LessThan(1e-6), "dpoints");
        Assert.That(planes.GuardsIntact(GuardedOutputs.Poison), Is.True, "planes' guards");
    }

    // grid_sample (bilinear, zeros, align_corners=False) of three (1, W, 1) planes, its dplanes (texel → value, touched
    // texels only) and dpoints, in the engine's float operations and order, corners tested as integers.
    private static (float[] Output, Dictionary<long, float> GradPlanes, float[] GradPoints) TriplaneReference(ReadOnlySpan<float> planes,
        ReadOnlySpan<float> points, ReadOnlySpan<float> dout, int count, long width)
    {
        var output = new float[count * 3];
        var gradPlanes = new Dictionary<long, float>();
        var gradPoints = new float[count * 3];
        for (var n = 0; n < count; n++)
        {
            for (var plane = 0; plane < 3; plane++)
            {
                int axisU = plane == 2 ? 2 : 0, axisV = plane == 1 ? 2 : 1;
                var ix = ((points[3 * n + axisU] + 1f) * width - 1f) * 0.5f;
                var iy = ((points[3 * n + axisV] + 1f) * 1f - 1f) * 0.5f;
                float fx0 = MathF.Floor(ix), fy0 = MathF.Floor(iy);
                float wx1 = ix - fx0, wx0 = fx0 + 1f - ix, wy1 = iy - fy0, wy0 = fy0 + 1f - iy;
                long x0 = (long)fx0, y0 = (long)fy0;
                // nw, ne, sw, se
                var corners = new (long X, long Y, float Weight)[] { (x0, y0, wx0 * wy0), (x0 + 1, y0, wx1 * wy0), (x0, y0 + 1, wx0 * wy1), (x0 + 1, y0 + 1, wx1 * wy1) };
                var g = dout[3 * n + plane];
                var sum = 0f;
                var dots = new float[4];
                for (var k = 0; k < 4; k++)
                {
                    var (cx, cy, weight) = corners[k];
                    if (cx < 0 || cx >= width || cy != 0)
                    {
                        continue;
                    }
                    var texel = plane * width + cx;
                    sum += weight * planes[(int)texel];
                    dots[k] = g * planes[(int)texel];
                    gradPlanes[texel] = gradPlanes.GetValueOrDefault(texel) + weight * g;
                }
                output[3 * n + plane] = sum;
                var du = ((dots[1] - dots[0]) * wy0 + (dots[3] - dots[2]) * wy1) * width * 0.5f;
                var dv = ((dots[2] - dots[0]) * wx0 + (dots[3] - dots[1]) * wx1) * 1f * 0.5f;
                gradPoints[3 * n + axisU] += du;
                gradPoints[3 * n + axisV] += dv;
            }
        }
        return (output, gradPlanes, gradPoints);
    }

    // ---- resize with a tiny scale factor ------------------------------------------------------------------

    [TestCase(ResizeMode.Bilinear, false)]
    [TestCase(ResizeMode.Bicubic, false)]
    [TestCase(ResizeMode.Bilinear, true)]
    [TestCase(ResizeMode.Bicubic, true)]
    public void ResizeScaledRejectsAFactorWhoseSourceExtentExceeds2To31(ResizeMode mode, bool antialias)
    {
        using var backend = new CpuBackend();
        using var input = Tensor.Zeros([1, 4, 4]);
        using var output = Tensor.Zeros([1, 4, 4]);
        var forward = Assert.Throws<LrmInvalidArgumentException>(() => backend.ResizeScaled(output, input, mode, 1e-300, 1.0, -0.75f, antialias));
        Assert.That(forward!.Message, Does.Contain("ResizeScaled").And.Contain("1E-300").And.Contain("height"));
        var backward = Assert.Throws<LrmInvalidArgumentException>(() => backend.ResizeScaledBackward(input, output, mode, 1.0, 1e-12, -0.75f, antialias));
        Assert.That(backward!.Message, Does.Contain("ResizeScaledBackward").And.Contain("1E-12").And.Contain("width"));

        // The C entry points check the same for C callers.
        var inPixels = stackalloc float[16];
        var outPixels = stackalloc float[16];
        Assert.That(NativeMethods.lrm_resize_scaled_forward(outPixels, inPixels, 1, 4, 4, 4, 4, (int)mode, -0.75f, antialias ? 1 : 0, 1e-300, 1.0),
            Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("lrm_resize_scaled_forward").And.Contain("1e-300"));
        Assert.That(NativeMethods.lrm_resize_scaled_backward(inPixels, outPixels, 1, 4, 4, 4, 4, (int)mode, -0.75f, antialias ? 1 : 0, 1.0, 1e-12),
            Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("lrm_resize_scaled_backward").And.Contain("1e-12"));
    }

    /// <summary>
    /// At the bound (4 outputs reading 2^31 source pixels) the factor is accepted: every source coordinate lies far
    /// past the last pixel, so every tap clamps to it and the output is the bottom-right pixel.
    /// </summary>
    [TestCase(ResizeMode.Bilinear)]
    [TestCase(ResizeMode.Bicubic)]
    public void ResizeScaledAtTheBoundClampsToTheLastPixel(ResizeMode mode)
    {
        using var backend = new CpuBackend();
        using var input = Tensor.FromArray(Enumerable.Range(0, 16).Select(v => (float)v).ToArray(), 1, 4, 4);
        using var output = Tensor.Empty([1, 4, 4]);
        var factor = 4.0 / 2147483648.0;
        backend.ResizeScaled(output, input, mode, factor, factor, -0.75f, false);
        Assert.That(output.AsSpan<float>().ToArray(), Is.All.EqualTo(15f).Within(1e-4));
    }

    // ---- NaN through the vectorised exp2 -----------------------------------------------------------------

    [Test]
    public void GeluOfNaNIsNaN()
    {
        using var backend = new CpuBackend();
        // Long enough for the vectorised loop as well as the scalar tail.
        const int count = 67;
        using var input = Tensor.Empty([count]);
        var x = input.AsSpan<float>();
        for (var i = 0; i < count; i++)
        {
            x[i] = i % 3 == 0 ? float.NaN : i % 3 == 1 ? -float.NaN : (i - count / 2) * 0.08f;
        }
        using var output = Tensor.Empty([count]);
        backend.Activate(output, input, Activation.Gelu);
        using var gradOutput = Tensor.FromArray(Enumerable.Repeat(1f, count).ToArray(), count);
        using var gradInput = Tensor.Empty([count]);
        backend.ActivateBackward(gradInput, gradOutput, input, Activation.Gelu);
        for (var i = 0; i < count; i++)
        {
            if (float.IsNaN(x[i]))
            {
                Assert.That(output.AsSpan<float>()[i], Is.NaN, $"GELU(NaN) at {i}");
                Assert.That(gradInput.AsSpan<float>()[i], Is.NaN, $"GELU'(NaN) at {i}");
            }
            else
            {
                var reference = 0.5 * x[i] * (1.0 + Erf(x[i] / Math.Sqrt(2.0)));
                Assert.That(output.AsSpan<float>()[i], Is.EqualTo(reference).Within(1e-5), $"GELU({x[i]})");
            }
        }
    }

    // erf(z) by its Taylor series: ~1e-14 for the |z| < 2 used here.
    private static double Erf(double z)
    {
        double term = z, sum = z;
        for (var k = 1; k < 200 && Math.Abs(term) > 1e-17; k++)
        {
            term *= -z * z / k;
            sum += term / (2 * k + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    // ---- sample counts whose sum overflows ---------------------------------------------------------------

    [TestCase(2L, long.MaxValue, "decoded_b")]
    [TestCase(long.MaxValue, 2L, "decoded_a")]
    public void RenderMarchRejectsSampleCountsBeyondAddressableMemory(long samplesA, long samplesB, string tensor)
    {
        var depths = stackalloc float[] { 0f, 1f };
        var decoded = stackalloc float[8];
        var gradDecoded = stackalloc float[8];
        var background = stackalloc float[] { 1f, 1f, 1f };
        var rgb = stackalloc float[3];
        Assert.That(NativeMethods.lrm_render_march_forward(rgb, null, null, null, depths, decoded, samplesA, depths, decoded, samplesB, background, null, 1, 1),
            Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain(tensor).And.Contain("too large"));
        Assert.That(NativeMethods.lrm_render_march_backward(gradDecoded, gradDecoded, rgb, null, null, depths, decoded, samplesA, depths, decoded, samplesB,
            background, null, 1, 1), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain(tensor).And.Contain("too large"));
    }

    // ---- marching-cubes bounds whose span overflows float ------------------------------------------------

    [Test]
    public void MarchingCubesRejectsBoundsWhoseSpanOverflowsFloat()
    {
        using var backend = new CpuBackend();
        using var field = Tensor.Empty([4, 4, 4]);
        var values = field.AsSpan<float>();
        for (var i = 0; i < values.Length; i++)
        {
            int x = i % 4, y = i / 4 % 4, z = i / 16;
            values[i] = (x - 1.5f) * (x - 1.5f) + (y - 1.5f) * (y - 1.5f) + (z - 1.5f) * (z - 1.5f) - 2f; // a sphere
        }
        var error = Assert.Throws<LrmInvalidArgumentException>(() => backend.MarchingCubes(field, 0f, [-3e38f, -1f, -1f, 3e38f, 1f, 1f]));
        Assert.That(error!.Message, Does.Contain("axis x").And.Contain("float"));

        // A span that fits float places the vertices, all finite.
        var (vertices, triangles) = backend.MarchingCubes(field, 0f, [-1e38f, -1f, -1f, 1e38f, 1f, 1f]);
        using (vertices)
        using (triangles)
        {
            Assert.That(vertices.ElementCount, Is.GreaterThan(0));
            Assert.That(vertices.AsSpan<float>().ToArray(), Has.All.Matches<float>(float.IsFinite));
        }
    }
}
