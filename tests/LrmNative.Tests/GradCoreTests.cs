using LrmNative.Backends;
using LrmNative.Interop;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// Backward ops of the transformer (GEMM, LayerNorm, ModLN, attention, activations, softmax,
/// LayerScale), three ways: against PyTorch autograd golden data (tests/golden/make_grad_golden.py,
/// ‖out−ref‖/‖ref‖ &lt; <see cref="Tolerance"/>), against central finite differences of the
/// backend's own forward (<see cref="GradientCheck"/>), and with bad shapes. Activation gradients
/// are poisoned, guarded buffers (every element written, nothing outside); parameter gradients
/// start at zero inside guards and are called twice: they must double (+=) while activation
/// gradients stay the same (overwrite). The same bodies run for each backend.
/// </summary>
public abstract class GradCoreTests
{
    private IBackend _backend = null!;

    /// <summary>The backend under test.</summary>
    protected abstract IBackend CreateBackend();

    /// <summary>Largest accepted normalised error against the golden gradients.</summary>
    protected virtual double Tolerance => 1e-5;

    [OneTimeSetUp]
    public void CreateBackendOnce() => _backend = CreateBackend();

    [OneTimeTearDown]
    public void DisposeBackend() => _backend.Dispose();

    // ---- GEMM -------------------------------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_gemm" })]
    public void GemmBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        using var accumulators = new GuardedAccumulators();
        bool transposeA = file.Flag("transpose_a"), transposeB = file.Flag("transpose_b");
        var a = file.Read(scope, "a");
        var b = file.Read(scope, "b");
        var gradOutput = file.Read(scope, "dout");
        var expectedA = file.Read(scope, "da");
        var expectedB = file.Read(scope, "db");
        var expectedBias = file.Flag("has_bias") ? file.Read(scope, "dbias") : null;
        var gradA = outputs.Like("da", expectedA);
        var gradB = outputs.Like("db", expectedB);
        var gradBias = expectedBias is null ? null : accumulators.ZerosLike("dbias", expectedBias);

        for (var call = 1; call <= 2; call++)
        {
            _backend.GemmBackward(gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB);
            outputs.AssertWrittenExactly();
            accumulators.AssertGuardsIntact();
            Compare.Close(gradA, expectedA, Tolerance, $"call {call}: da (overwritten)");
            Compare.Close(gradB, expectedB, Tolerance, $"call {call}: db (overwritten)");
            if (gradBias is not null)
            {
                accumulators.AssertAccumulated(gradBias, expectedBias!, call, Tolerance, $"call {call}: dbias (accumulated)");
            }
        }
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void GemmBackwardMatchesFiniteDifferences(bool transposeA, bool transposeB)
    {
        const long m = 7, n = 5, k = 9;
        var random = new Random(11 + (transposeA ? 2 : 0) + (transposeB ? 1 : 0));
        using var scope = new TensorScope();
        var a = scope.Add(GradientCheck.Random(random, 1f, transposeA ? [k, m] : [m, k]));
        var b = scope.Add(GradientCheck.Random(random, 1f, transposeB ? [n, k] : [k, n]));
        var bias = scope.Add(GradientCheck.Random(random, 1f, n));
        var probe = scope.Add(GradientCheck.Random(random, 1f, m, n));
        var output = scope.Add(Tensor.Empty([m, n]));
        var gradA = scope.Add(Tensor.Empty(a.Shape));
        var gradB = scope.Add(Tensor.Empty(b.Shape));
        var gradBias = scope.Add(Tensor.Zeros([n]));
        _backend.GemmBackward(gradA, gradB, gradBias, probe, a, b, transposeA, transposeB);

        double Loss()
        {
            _backend.Gemm(output, a, b, bias, null, transposeA, transposeB);
            return GradientCheck.ProbeLoss(output, probe);
        }
        // GEMM is bilinear: central differences are exact up to rounding, so the check is tight.
        GradientCheck.AssertMatches("da", a, gradA, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("db", b, gradB, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dbias", bias, gradBias, Loss, tolerance: 1e-4);
    }

    [Test]
    public void GemmBackwardComputesOnlyTheRequestedGradients()
    {
        var random = new Random(5);
        using var scope = new TensorScope();
        var a = scope.Add(GradientCheck.Random(random, 1f, 2, 3, 4));
        var b = scope.Add(GradientCheck.Random(random, 1f, 6, 4));
        var gradOutput = scope.Add(GradientCheck.Random(random, 1f, 2, 3, 6));
        var full = scope.Add(Tensor.Empty([2, 3, 4]));
        _backend.GemmBackward(full, scope.Add(Tensor.Empty([6, 4])), null, gradOutput, a, b, transposeB: true);
        using var outputs = new GuardedOutputs();
        var onlyA = outputs.Create("da", [2, 3, 4]);
        _backend.GemmBackward(onlyA, null, null, gradOutput, a, b, transposeB: true);
        outputs.AssertWrittenExactly();
        Assert.That(onlyA.ToFloatArray(), Is.EqualTo(full.ToFloatArray()), "da alone equals da computed with db");
    }

    [Test]
    public void GemmBackwardRejectsBadShapes()
    {
        using var scope = new TensorScope();
        var a = scope.Add(Tensor.Zeros([4, 3]));
        var b = scope.Add(Tensor.Zeros([3, 5]));
        var gradOutput = scope.Add(Tensor.Zeros([4, 5]));
        GradientCheck.AssertShapeError(() => _backend.GemmBackward(scope.Add(Tensor.Zeros([3, 4])), null, null, gradOutput, a, b), "GemmBackward", "'gradA'");
        GradientCheck.AssertShapeError(() => _backend.GemmBackward(null, scope.Add(Tensor.Zeros([5, 3])), null, gradOutput, a, b), "GemmBackward", "'gradB'");
        GradientCheck.AssertShapeError(() => _backend.GemmBackward(null, null, scope.Add(Tensor.Zeros([4])), gradOutput, a, b), "GemmBackward", "'gradBias'");
        GradientCheck.AssertShapeError(() => _backend.GemmBackward(null, null, scope.Add(Tensor.Zeros([5])), scope.Add(Tensor.Zeros([5, 4])), a, b), "GemmBackward", "'gradOutput'");
        GradientCheck.AssertShapeError(() => _backend.GemmBackward(null, null, scope.Add(Tensor.Zeros([5])), gradOutput, a, scope.Add(Tensor.Zeros([4, 5]))), "GemmBackward", "inner sizes");
        Assert.Throws<LrmInvalidArgumentException>(() => _backend.GemmBackward(null, null, null, gradOutput, a, b));
    }

    // ---- LayerNorm and ModLN -------------------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_layernorm" })]
    public void LayerNormBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        using var accumulators = new GuardedAccumulators();
        var affine = file.Flag("has_weight");
        var input = file.Read(scope, "inp");
        var gradOutput = file.Read(scope, "dout");
        var weight = affine ? file.Read(scope, "weight") : null;
        var expectedInput = file.Read(scope, "dinp");
        var expectedWeight = affine ? file.Read(scope, "dweight") : null;
        var expectedBias = affine ? file.Read(scope, "dbias") : null;
        var gradInput = outputs.Like("dinp", expectedInput);
        var gradWeight = affine ? accumulators.ZerosLike("dweight", expectedWeight!) : null;
        var gradBias = affine ? accumulators.ZerosLike("dbias", expectedBias!) : null;
        for (var call = 1; call <= 2; call++)
        {
            _backend.LayerNormBackward(gradInput, gradWeight, gradBias, gradOutput, file.Read(scope, "mean"), file.Read(scope, "rstd"), input, weight);
            outputs.AssertWrittenExactly();
            accumulators.AssertGuardsIntact();
            Compare.Close(gradInput, expectedInput, Tolerance, $"call {call}: dinp (overwritten)");
            if (affine)
            {
                accumulators.AssertAccumulated(gradWeight!, expectedWeight!, call, Tolerance, $"call {call}: dweight (accumulated)");
                accumulators.AssertAccumulated(gradBias!, expectedBias!, call, Tolerance, $"call {call}: dbias (accumulated)");
            }
        }
    }

    [Test]
    public void LayerNormBackwardMatchesFiniteDifferences()
    {
        const long rows = 6, channels = 37;
        var random = new Random(21);
        using var scope = new TensorScope();
        var input = scope.Add(GradientCheck.Random(random, 1.5f, 0.7f, rows, channels));
        var weight = scope.Add(GradientCheck.Random(random, 0.5f, 1f, channels));
        var bias = scope.Add(GradientCheck.Random(random, 0.5f, channels));
        var probe = scope.Add(GradientCheck.Random(random, 1f, rows, channels));
        var output = scope.Add(Tensor.Empty([rows, channels]));
        var mean = scope.Add(Tensor.Empty([rows]));
        var rstd = scope.Add(Tensor.Empty([rows]));
        var gradInput = scope.Add(Tensor.Empty([rows, channels]));
        var gradWeight = scope.Add(Tensor.Zeros([channels]));
        var gradBias = scope.Add(Tensor.Zeros([channels]));
        _backend.LayerNorm(output, mean, rstd, input, weight, bias, 1e-5f);
        _backend.LayerNormBackward(gradInput, gradWeight, gradBias, probe, mean, rstd, input, weight);

        double Loss()
        {
            _backend.LayerNorm(output, null, null, input, weight, bias, 1e-5f);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("dinp", input, gradInput, Loss, tolerance: 3e-4);
        GradientCheck.AssertMatches("dweight", weight, gradWeight, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dbias", bias, gradBias, Loss, tolerance: 1e-4);
    }

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_modln" })]
    public void ModLNBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        using var accumulators = new GuardedAccumulators();
        var expectedInput = file.Read(scope, "dinp");
        var expectedShift = file.Read(scope, "dshift");
        var expectedScale = file.Read(scope, "dscale");
        var expectedWeight = file.Read(scope, "dweight");
        var expectedBias = file.Read(scope, "dbias");
        var gradInput = outputs.Like("dinp", expectedInput);
        var gradShift = outputs.Like("dshift", expectedShift);
        var gradScale = outputs.Like("dscale", expectedScale);
        var gradWeight = accumulators.ZerosLike("dweight", expectedWeight);
        var gradBias = accumulators.ZerosLike("dbias", expectedBias);
        for (var call = 1; call <= 2; call++)
        {
            _backend.ModLNBackward(gradInput, gradWeight, gradBias, gradShift, gradScale, file.Read(scope, "dout"),
                file.Read(scope, "mean"), file.Read(scope, "rstd"), file.Read(scope, "inp"), file.Read(scope, "weight"),
                file.Read(scope, "bias"), file.Read(scope, "scale"));
            outputs.AssertWrittenExactly();
            accumulators.AssertGuardsIntact();
            Compare.Close(gradInput, expectedInput, Tolerance, $"call {call}: dinp (overwritten)");
            Compare.Close(gradShift, expectedShift, Tolerance, $"call {call}: dshift (overwritten)");
            Compare.Close(gradScale, expectedScale, Tolerance, $"call {call}: dscale (overwritten)");
            accumulators.AssertAccumulated(gradWeight, expectedWeight, call, Tolerance, $"call {call}: dweight (accumulated)");
            accumulators.AssertAccumulated(gradBias, expectedBias, call, Tolerance, $"call {call}: dbias (accumulated)");
        }
    }

    [Test]
    public void ModLNBackwardMatchesFiniteDifferences()
    {
        const long batch = 2, tokens = 5, channels = 19;
        var random = new Random(31);
        using var scope = new TensorScope();
        var input = scope.Add(GradientCheck.Random(random, 1.5f, 0.3f, batch, tokens, channels));
        var weight = scope.Add(GradientCheck.Random(random, 0.5f, 1f, channels));
        var bias = scope.Add(GradientCheck.Random(random, 0.5f, channels));
        var shift = scope.Add(GradientCheck.Random(random, 0.5f, batch, channels));
        var scale = scope.Add(GradientCheck.Random(random, 0.5f, batch, channels));
        var probe = scope.Add(GradientCheck.Random(random, 1f, batch, tokens, channels));
        var output = scope.Add(Tensor.Empty([batch, tokens, channels]));
        var mean = scope.Add(Tensor.Empty([batch, tokens]));
        var rstd = scope.Add(Tensor.Empty([batch, tokens]));
        var gradInput = scope.Add(Tensor.Empty(input.Shape));
        var gradShift = scope.Add(Tensor.Empty(shift.Shape));
        var gradScale = scope.Add(Tensor.Empty(scale.Shape));
        var gradWeight = scope.Add(Tensor.Zeros([channels]));
        var gradBias = scope.Add(Tensor.Zeros([channels]));
        _backend.ModLN(output, mean, rstd, input, weight, bias, shift, scale, 1e-6f);
        _backend.ModLNBackward(gradInput, gradWeight, gradBias, gradShift, gradScale, probe, mean, rstd, input, weight, bias, scale);

        double Loss()
        {
            _backend.ModLN(output, null, null, input, weight, bias, shift, scale, 1e-6f);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("dinp", input, gradInput, Loss, tolerance: 3e-4);
        GradientCheck.AssertMatches("dweight", weight, gradWeight, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dbias", bias, gradBias, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dshift", shift, gradShift, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dscale", scale, gradScale, Loss, tolerance: 1e-4);
    }

    [Test]
    public void NormalisationBackwardRejectsBadShapes()
    {
        using var scope = new TensorScope();
        var input = scope.Add(Tensor.Zeros([2, 3, 8]));
        var stats = scope.Add(Tensor.Zeros([2, 3]));
        var channels = scope.Add(Tensor.Zeros([8]));
        var modulation = scope.Add(Tensor.Zeros([2, 8]));
        var good = scope.Add(Tensor.Zeros([2, 3, 8]));
        GradientCheck.AssertShapeError(() => _backend.LayerNormBackward(scope.Add(Tensor.Zeros([2, 3, 7])), null, null, good, stats, stats, input, null), "LayerNormBackward", "'gradInput'");
        GradientCheck.AssertShapeError(() => _backend.LayerNormBackward(good, null, null, good, scope.Add(Tensor.Zeros([6])), stats, input, null), "LayerNormBackward", "'mean'");
        GradientCheck.AssertShapeError(() => _backend.LayerNormBackward(good, scope.Add(Tensor.Zeros([7])), null, good, stats, stats, input, channels), "LayerNormBackward", "'gradWeight'");
        GradientCheck.AssertShapeError(() => _backend.ModLNBackward(good, null, null, modulation, scope.Add(Tensor.Zeros([3, 8])), good, stats, stats, input, channels, channels, modulation), "ModLNBackward", "'gradScale'");
        GradientCheck.AssertShapeError(() => _backend.ModLNBackward(good, null, null, modulation, modulation, good, stats, stats, input, channels, channels, scope.Add(Tensor.Zeros([8]))), "ModLNBackward", "'scale'");
        GradientCheck.AssertShapeError(() => _backend.ModLNBackward(good, null, null, modulation, modulation, scope.Add(Tensor.Zeros([2, 8, 3])), stats, stats, input, channels, channels, modulation), "ModLNBackward", "'gradOutput'");
    }

    // ---- attention --------------------------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_attention" })]
    public void AttentionBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var heads = (int)file.Long("heads");
        var width = file.Long("heads") * file.Long("head_dim");
        var scale = file.Float("scale");
        var gradOutput = file.Read(scope, "dout");
        var output = file.Read(scope, "out");
        var lse = file.Read(scope, "lse");
        for (var call = 1; call <= 2; call++)
        {
            if (file.Flag("packed"))
            {
                var qkv = file.Read(scope, "qkv");
                var expected = file.Read(scope, "dqkv");
                var gradient = call == 1 ? outputs.Like("dqkv", expected) : outputs.Create("dqkv again", expected.Shape);
                _backend.AttentionBackward(new ColumnSlice(gradient, 0), new ColumnSlice(gradient, width), new ColumnSlice(gradient, 2 * width),
                    gradOutput, output, lse, new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width), heads, scale);
                outputs.AssertWrittenExactly();
                Compare.Close(gradient, expected, Tolerance, $"call {call}: packed dqkv");
            }
            else
            {
                var (expectedQ, expectedK, expectedV) = (file.Read(scope, "dq"), file.Read(scope, "dk"), file.Read(scope, "dv"));
                var gradQuery = outputs.Create($"dq {call}", expectedQ.Shape);
                var gradKey = outputs.Create($"dk {call}", expectedK.Shape);
                var gradValue = outputs.Create($"dv {call}", expectedV.Shape);
                _backend.AttentionBackward(gradQuery, gradKey, gradValue, gradOutput, output, lse,
                    file.Read(scope, "q"), file.Read(scope, "k"), file.Read(scope, "v"), heads, scale);
                outputs.AssertWrittenExactly();
                Compare.Close(gradQuery, expectedQ, Tolerance, $"call {call}: dq");
                Compare.Close(gradKey, expectedK, Tolerance, $"call {call}: dk");
                Compare.Close(gradValue, expectedV, Tolerance, $"call {call}: dv");
            }
        }
    }

    [Test]
    public void AttentionBackwardGradientsOverwrite()
    {
        var random = new Random(41);
        using var scope = new TensorScope();
        var (q, k, v) = (scope.Add(GradientCheck.Random(random, 1f, 1, 9, 8)), scope.Add(GradientCheck.Random(random, 1f, 1, 11, 8)), scope.Add(GradientCheck.Random(random, 1f, 1, 11, 8)));
        var output = scope.Add(Tensor.Empty([1, 9, 8]));
        var lse = scope.Add(Tensor.Empty([1, 2, 9]));
        var gradOutput = scope.Add(GradientCheck.Random(random, 1f, 1, 9, 8));
        _backend.Attention(output, lse, q, k, v, 2, 0.5f);
        var first = (scope.Add(Tensor.Empty(q.Shape)), scope.Add(Tensor.Empty(k.Shape)), scope.Add(Tensor.Empty(v.Shape)));
        _backend.AttentionBackward(first.Item1, first.Item2, first.Item3, gradOutput, output, lse, q, k, v, 2, 0.5f);
        var again = (scope.Add(GradientCheck.Random(random, 5f, q.Shape.ToArray())), scope.Add(GradientCheck.Random(random, 5f, k.Shape.ToArray())), scope.Add(GradientCheck.Random(random, 5f, v.Shape.ToArray())));
        _backend.AttentionBackward(again.Item1, again.Item2, again.Item3, gradOutput, output, lse, q, k, v, 2, 0.5f);
        Assert.That(again.Item1.ToFloatArray(), Is.EqualTo(first.Item1.ToFloatArray()), "dq ignores what the buffer held");
        Assert.That(again.Item2.ToFloatArray(), Is.EqualTo(first.Item2.ToFloatArray()), "dk ignores what the buffer held");
        Assert.That(again.Item3.ToFloatArray(), Is.EqualTo(first.Item3.ToFloatArray()), "dv ignores what the buffer held");
    }

    [TestCase(1, 2, 5, 7, 4)]
    [TestCase(2, 1, 13, 9, 6)]
    public void AttentionBackwardMatchesFiniteDifferences(int batch, int heads, int queryLength, int keyLength, int headDim)
    {
        var random = new Random(51 + queryLength);
        var width = heads * headDim;
        var scale = 1f / MathF.Sqrt(headDim);
        using var scope = new TensorScope();
        var q = scope.Add(GradientCheck.Random(random, 1.5f, batch, queryLength, width));
        var k = scope.Add(GradientCheck.Random(random, 1.5f, batch, keyLength, width));
        var v = scope.Add(GradientCheck.Random(random, 1f, batch, keyLength, width));
        var probe = scope.Add(GradientCheck.Random(random, 1f, batch, queryLength, width));
        var output = scope.Add(Tensor.Empty([batch, queryLength, width]));
        var lse = scope.Add(Tensor.Empty([batch, heads, queryLength]));
        var (gradQuery, gradKey, gradValue) = (scope.Add(Tensor.Empty(q.Shape)), scope.Add(Tensor.Empty(k.Shape)), scope.Add(Tensor.Empty(v.Shape)));
        _backend.Attention(output, lse, q, k, v, heads, scale);
        _backend.AttentionBackward(gradQuery, gradKey, gradValue, probe, output, lse, q, k, v, heads, scale);

        double Loss()
        {
            _backend.Attention(output, null, q, k, v, heads, scale);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("dq", q, gradQuery, Loss, tolerance: 1e-3);
        GradientCheck.AssertMatches("dk", k, gradKey, Loss, tolerance: 1e-3);
        GradientCheck.AssertMatches("dv", v, gradValue, Loss, tolerance: 1e-3);
    }

    [Test]
    public void AttentionBackwardOnPackedQkvMatchesFiniteDifferences()
    {
        const int heads = 2, headDim = 6, tokens = 13, width = heads * headDim;
        var random = new Random(61);
        using var scope = new TensorScope();
        var qkv = scope.Add(GradientCheck.Random(random, 1.5f, 1, tokens, 3 * width));
        var probe = scope.Add(GradientCheck.Random(random, 1f, 1, tokens, width));
        var output = scope.Add(Tensor.Empty([1, tokens, width]));
        var lse = scope.Add(Tensor.Empty([1, heads, tokens]));
        var gradient = scope.Add(Tensor.Empty(qkv.Shape));
        var (q, k, v) = (new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width));
        _backend.Attention(output, lse, q, k, v, heads, 0.4f);
        _backend.AttentionBackward(new ColumnSlice(gradient, 0), new ColumnSlice(gradient, width), new ColumnSlice(gradient, 2 * width),
            probe, output, lse, q, k, v, heads, 0.4f);

        double Loss()
        {
            _backend.Attention(output, null, q, k, v, heads, 0.4f);
            return GradientCheck.ProbeLoss(output, probe);
        }
        // One qkv element feeds q, k or v: the packed gradient must be their sum laid out as qkv.
        GradientCheck.AssertMatches("dqkv", qkv, gradient, Loss, tolerance: 1e-3, maxElements: 160);
    }

    // Long sequences against a double-precision reference: the paper's cross-attention shape
    // (3072 triplane tokens × 1025 image tokens, one head of 16 to keep the reference fast),
    // and self-attention across many key blocks with three threads on one head, which splits the
    // keys into groups whose dQ partials are summed afterwards.
    [TestCase(1, 1, 3072, 1025, 16, 0)]
    [TestCase(1, 1, 700, 700, 24, 3)]
    [TestCase(2, 3, 130, 257, 64, 0)]
    public void AttentionBackwardMatchesDoubleReference(int batch, int heads, int queryLength, int keyLength, int headDim, int threads)
    {
        var random = new Random(71 + keyLength);
        var width = heads * headDim;
        var scale = 1f / MathF.Sqrt(headDim);
        using var scope = new TensorScope();
        var q = scope.Add(GradientCheck.Random(random, 2f, batch, queryLength, width));
        var k = scope.Add(GradientCheck.Random(random, 2f, batch, keyLength, width));
        var v = scope.Add(GradientCheck.Random(random, 1f, batch, keyLength, width));
        var gradOutput = scope.Add(GradientCheck.Random(random, 1f, batch, queryLength, width));
        var output = scope.Add(Tensor.Empty([batch, queryLength, width]));
        var lse = scope.Add(Tensor.Empty([batch, heads, queryLength]));
        using var outputs = new GuardedOutputs();
        var gradQuery = outputs.Create("dq", q.Shape);
        var gradKey = outputs.Create("dk", k.Shape);
        var gradValue = outputs.Create("dv", v.Shape);
        _backend.Attention(output, lse, q, k, v, heads, scale);
        if (threads > 0)
        {
            NativeCheck.Check(Interop.NativeMethods.lrm_set_num_threads(threads));
        }
        try
        {
            _backend.AttentionBackward(gradQuery, gradKey, gradValue, gradOutput, output, lse, q, k, v, heads, scale);
        }
        finally
        {
            if (threads > 0)
            {
                NativeCheck.Check(Interop.NativeMethods.lrm_set_num_threads(0));
            }
        }
        outputs.AssertWrittenExactly();
        var (dq, dk, dv) = AttentionReference.Backward(q, k, v, gradOutput, heads, scale);
        Assert.That(Compare.RelativeError(gradQuery.AsSpan<float>(), dq), Is.LessThan(1e-5), "dq");
        Assert.That(Compare.RelativeError(gradKey.AsSpan<float>(), dk), Is.LessThan(1e-5), "dk");
        Assert.That(Compare.RelativeError(gradValue.AsSpan<float>(), dv), Is.LessThan(1e-5), "dv");
    }

    // Self-attention over the paper's 3072 triplane tokens: a stored score (or probability) matrix
    // would take 3072² floats per head (2 heads: 75 MB). The peak resident set, reset just before the
    // call (Linux: /proc/self/clear_refs "5"), may grow by the per-thread tiles only.
    [Test]
    public void AttentionBackwardRunsInBoundedMemory()
    {
        const int heads = 2, headDim = 64, tokens = 3072, width = heads * headDim;
        var random = new Random(81);
        using var scope = new TensorScope();
        var qkv = scope.Add(GradientCheck.Random(random, 1f, 1, tokens, 3 * width));
        var gradOutput = scope.Add(GradientCheck.Random(random, 1f, 1, tokens, width));
        var output = scope.Add(Tensor.Empty([1, tokens, width]));
        var lse = scope.Add(Tensor.Empty([1, heads, tokens]));
        var gradient = scope.Add(Tensor.Zeros(qkv.Shape));
        var (q, k, v) = (new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width));
        _backend.Attention(output, lse, q, k, v, heads, 0.125f);
        if (!ResetPeakResidentSet())
        {
            Assert.Ignore("peak RSS cannot be reset here (needs Linux /proc/self/clear_refs)");
        }
        var before = ReadStatusKilobytes("VmRSS");
        _backend.AttentionBackward(new ColumnSlice(gradient, 0), new ColumnSlice(gradient, width), new ColumnSlice(gradient, 2 * width),
            gradOutput, output, lse, q, k, v, heads, 0.125f);
        var growthMegabytes = (ReadStatusKilobytes("VmHWM") - before) / 1024.0;
        Assert.That(growthMegabytes, Is.LessThan(32), "peak memory growth of attention backward, 2 heads × 3072² (a score matrix would be 75 MB)");
        Assert.That(gradient.ToFloatArray().All(float.IsFinite), Is.True, "finite gradients");
    }

    private static bool ResetPeakResidentSet()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return File.Exists("/proc/self/status");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long ReadStatusKilobytes(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public void AttentionBackwardRejectsBadShapes()
    {
        using var scope = new TensorScope();
        var q = scope.Add(Tensor.Zeros([1, 4, 8]));
        var kv = scope.Add(Tensor.Zeros([1, 6, 8]));
        var output = scope.Add(Tensor.Zeros([1, 4, 8]));
        var lse = scope.Add(Tensor.Zeros([1, 2, 4]));
        var (dq, dk, dv) = (scope.Add(Tensor.Zeros([1, 4, 8])), scope.Add(Tensor.Zeros([1, 6, 8])), scope.Add(Tensor.Zeros([1, 6, 8])));
        GradientCheck.AssertShapeError(() => _backend.AttentionBackward(dq, dk, scope.Add(Tensor.Zeros([1, 5, 8])), output, output, lse, q, kv, kv, 2, 1f), "AttentionBackward", "'gradValue'");
        GradientCheck.AssertShapeError(() => _backend.AttentionBackward(dq, dk, dv, output, output, scope.Add(Tensor.Zeros([1, 2, 5])), q, kv, kv, 2, 1f), "AttentionBackward", "'lse'");
        GradientCheck.AssertShapeError(() => _backend.AttentionBackward(dq, dk, dv, scope.Add(Tensor.Zeros([1, 4, 4])), output, lse, q, kv, kv, 2, 1f), "AttentionBackward", "'gradOutput'");
        GradientCheck.AssertShapeError(() => _backend.AttentionBackward(new ColumnSlice(dq, 4), dk, dv, output, output, lse, q, kv, kv, 2, 1f), "AttentionBackward", "'gradQuery'");
        var error = Assert.Throws<LrmInvalidArgumentException>(() => _backend.AttentionBackward(q, dk, dv, output, output, lse, q, kv, kv, 2, 1f));
        Assert.That(error!.Message, Does.StartWith("AttentionBackward:").And.Contain("input"));
    }

    // ---- activations and softmax -----------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_gelu" })]
    public void GeluBackwardMatchesAutograd(string path) => CheckActivationBackward(path, Activation.Gelu);

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_silu" })]
    public void SiluBackwardMatchesAutograd(string path) => CheckActivationBackward(path, Activation.Silu);

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_relu" })]
    public void ReluBackwardMatchesAutograd(string path) => CheckActivationBackward(path, Activation.Relu);

    private void CheckActivationBackward(string path, Activation activation)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var input = file.Read(scope, "inp");
        var gradOutput = file.Read(scope, "dout");
        var expected = file.Read(scope, "dinp");
        var gradInput = outputs.Like("dinp", expected);
        _backend.ActivateBackward(gradInput, gradOutput, input, activation);
        outputs.AssertWrittenExactly();
        Compare.Close(gradInput, expected, Tolerance, $"{activation} dinp");
        // In place (dinp aliases dout) gives the same values.
        _backend.ActivateBackward(gradOutput, gradOutput, input, activation);
        Compare.Close(gradOutput, expected, Tolerance, $"{activation} dinp in place");
    }

    [TestCase(Activation.Gelu)]
    [TestCase(Activation.Silu)]
    [TestCase(Activation.Relu)]
    [TestCase(Activation.None)]
    public void ActivationBackwardMatchesFiniteDifferences(Activation activation)
    {
        var random = new Random(91 + (int)activation);
        using var scope = new TensorScope();
        var input = scope.Add(GradientCheck.Random(random, 3f, 4, 29));
        // Keep ReLU's kink out of reach of the ±h steps.
        var values = input.AsSpan<float>();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = MathF.Abs(values[i]) < 0.1f ? 0.1f + values[i] : values[i];
        }
        var probe = scope.Add(GradientCheck.Random(random, 1f, 4, 29));
        var output = scope.Add(Tensor.Empty([4, 29]));
        var gradInput = scope.Add(Tensor.Empty([4, 29]));
        _backend.ActivateBackward(gradInput, probe, input, activation);

        double Loss()
        {
            _backend.Activate(output, input, activation);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches($"{activation} dinp", input, gradInput, Loss, tolerance: 1e-4);
    }

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_softmax" })]
    public void SoftmaxBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var gradOutput = file.Read(scope, "dout");
        var expected = file.Read(scope, "dinp");
        var gradInput = outputs.Like("dinp", expected);
        _backend.SoftmaxBackward(gradInput, gradOutput, file.Read(scope, "out"));
        outputs.AssertWrittenExactly();
        // A one-column softmax is constant: its gradient is exactly zero (absolute error then).
        Compare.Close(gradInput, expected, Tolerance, "softmax dinp");
    }

    [Test]
    public void SoftmaxBackwardMatchesFiniteDifferences()
    {
        var random = new Random(101);
        using var scope = new TensorScope();
        var input = scope.Add(GradientCheck.Random(random, 2f, 3, 2, 17));
        var probe = scope.Add(GradientCheck.Random(random, 1f, 3, 2, 17));
        var output = scope.Add(Tensor.Empty(input.Shape));
        var gradInput = scope.Add(Tensor.Empty(input.Shape));
        _backend.Softmax(output, input);
        _backend.SoftmaxBackward(gradInput, probe, output);

        double Loss()
        {
            _backend.Softmax(output, input);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("softmax dinp", input, gradInput, Loss, tolerance: 1e-4);
    }

    [Test]
    public void ElementwiseBackwardRejectsBadShapes()
    {
        using var scope = new TensorScope();
        var input = scope.Add(Tensor.Zeros([3, 5]));
        GradientCheck.AssertShapeError(() => _backend.ActivateBackward(scope.Add(Tensor.Zeros([5, 3])), input, input, Activation.Gelu), "ActivateBackward", "'gradInput'");
        GradientCheck.AssertShapeError(() => _backend.ActivateBackward(input, scope.Add(Tensor.Zeros([15])), input, Activation.Relu), "ActivateBackward", "'gradOutput'");
        GradientCheck.AssertShapeError(() => _backend.SoftmaxBackward(input, scope.Add(Tensor.Zeros([3, 4])), input), "SoftmaxBackward", "'gradOutput'");
        GradientCheck.AssertShapeError(() => _backend.SoftmaxBackward(scope.Add(Tensor.Zeros([3, 5, 1])), input, input), "SoftmaxBackward", "'gradInput'");
    }

    // ---- LayerScale (and Add) ------------------------------------------------------------------

    [TestCaseSource(typeof(GradGolden), nameof(GradGolden.Cases), new object[] { "core_layerscale" })]
    public void LayerScaleBackwardMatchesAutograd(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        using var accumulators = new GuardedAccumulators();
        var hasResidual = file.Flag("has_residual");
        var expectedInput = file.Read(scope, "dinp");
        var expectedGamma = file.Read(scope, "dgamma");
        var expectedResidual = hasResidual ? file.Read(scope, "dresidual") : null;
        var gradInput = outputs.Like("dinp", expectedInput);
        var gradResidual = hasResidual ? outputs.Like("dresidual", expectedResidual!) : null;
        var gradGamma = accumulators.ZerosLike("dgamma", expectedGamma);
        var (gradOutput, input, gamma) = (file.Read(scope, "dout"), file.Read(scope, "inp"), file.Read(scope, "gamma"));
        for (var call = 1; call <= 2; call++)
        {
            _backend.LayerScaleBackward(gradInput, gradGamma, gradResidual, gradOutput, input, gamma);
            outputs.AssertWrittenExactly();
            accumulators.AssertGuardsIntact();
            Compare.Close(gradInput, expectedInput, Tolerance, $"call {call}: dinp (overwritten)");
            if (hasResidual)
            {
                Assert.That(gradResidual!.ToFloatArray(), Is.EqualTo(expectedResidual!.ToFloatArray()), $"call {call}: dresidual = dout");
            }
            accumulators.AssertAccumulated(gradGamma, expectedGamma, call, Tolerance, $"call {call}: dgamma (accumulated)");
        }
        // In place: dinp written over dout still gives the same dinp and dgamma.
        using var copy = Tensor.FromArray(gradOutput.AsSpan<float>(), gradOutput.Shape);
        using var gammaOnly = Tensor.Zeros(expectedGamma.Shape);
        _backend.LayerScaleBackward(copy, gammaOnly, null, copy, input, gamma);
        Compare.Close(copy, expectedInput, Tolerance, "dinp in place over dout");
        Compare.Close(gammaOnly, expectedGamma, Tolerance, "dgamma with dinp in place over dout");
    }

    [Test]
    public void LayerScaleBackwardMatchesFiniteDifferences()
    {
        var random = new Random(111);
        using var scope = new TensorScope();
        var input = scope.Add(GradientCheck.Random(random, 1f, 3, 4, 11));
        var gamma = scope.Add(GradientCheck.Random(random, 0.5f, 11));
        var residual = scope.Add(GradientCheck.Random(random, 1f, 3, 4, 11));
        var probe = scope.Add(GradientCheck.Random(random, 1f, 3, 4, 11));
        var output = scope.Add(Tensor.Empty(input.Shape));
        var gradInput = scope.Add(Tensor.Empty(input.Shape));
        var gradResidual = scope.Add(Tensor.Empty(input.Shape));
        var gradGamma = scope.Add(Tensor.Zeros([11]));
        _backend.LayerScaleBackward(gradInput, gradGamma, gradResidual, probe, input, gamma);

        double Loss()
        {
            _backend.LayerScale(output, input, gamma, residual);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("dinp", input, gradInput, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dgamma", gamma, gradGamma, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("dresidual", residual, gradResidual, Loss, tolerance: 1e-4);
    }

    // Add has no backward op: both inputs receive dout. The check that this is right.
    [Test]
    public void AddGradientIsTheUpstreamGradientForBothInputs()
    {
        var random = new Random(121);
        using var scope = new TensorScope();
        var a = scope.Add(GradientCheck.Random(random, 1f, 5, 7));
        var b = scope.Add(GradientCheck.Random(random, 1f, 5, 7));
        var probe = scope.Add(GradientCheck.Random(random, 1f, 5, 7));
        var output = scope.Add(Tensor.Empty([5, 7]));

        double Loss()
        {
            _backend.Add(output, a, b);
            return GradientCheck.ProbeLoss(output, probe);
        }
        GradientCheck.AssertMatches("da", a, probe, Loss, tolerance: 1e-4);
        GradientCheck.AssertMatches("db", b, probe, Loss, tolerance: 1e-4);
    }

    [Test]
    public void LayerScaleBackwardRejectsBadShapes()
    {
        using var scope = new TensorScope();
        var input = scope.Add(Tensor.Zeros([2, 3, 4]));
        var gamma = scope.Add(Tensor.Zeros([4]));
        GradientCheck.AssertShapeError(() => _backend.LayerScaleBackward(input, scope.Add(Tensor.Zeros([3])), null, input, input, gamma), "LayerScaleBackward", "'gradGamma'");
        GradientCheck.AssertShapeError(() => _backend.LayerScaleBackward(null, null, scope.Add(Tensor.Zeros([6, 4])), input, input, gamma), "LayerScaleBackward", "'gradResidual'");
        GradientCheck.AssertShapeError(() => _backend.LayerScaleBackward(input, null, null, scope.Add(Tensor.Zeros([2, 3, 5])), input, gamma), "LayerScaleBackward", "'gradOutput'");
        GradientCheck.AssertShapeError(() => _backend.LayerScaleBackward(input, null, null, input, input, scope.Add(Tensor.Zeros([3]))), "LayerScaleBackward", "'gamma'");
        Assert.Throws<LrmInvalidArgumentException>(() => _backend.LayerScaleBackward(null, null, null, input, input, gamma));
    }

    // ---- helpers ------------------------------------------------------------------------------

}

/// <summary>Plain double-precision attention backward (S, P, dP, dS row by row) for the tests.</summary>
internal static class AttentionReference
{
    public static (float[] Dq, float[] Dk, float[] Dv) Backward(Tensor q, Tensor k, Tensor v, Tensor gradOutput, int heads, float scale)
    {
        int batch = (int)q.Size(0), queryLength = (int)q.Size(1), keyLength = (int)k.Size(1), width = (int)q.Size(2);
        var headDim = width / heads;
        var (qs, ks, vs, gs) = (q.AsSpan<float>().ToArray(), k.AsSpan<float>().ToArray(), v.AsSpan<float>().ToArray(), gradOutput.AsSpan<float>().ToArray());
        var dq = new double[qs.Length];
        var dk = new double[ks.Length];
        var dv = new double[vs.Length];
        var p = new double[keyLength];
        var dp = new double[keyLength];
        for (var b = 0; b < batch; b++)
        {
            for (var h = 0; h < heads; h++)
            {
                for (var i = 0; i < queryLength; i++)
                {
                    var qRow = (b * queryLength + i) * width + h * headDim;
                    var max = double.NegativeInfinity;
                    for (var j = 0; j < keyLength; j++)
                    {
                        var kRow = (b * keyLength + j) * width + h * headDim;
                        double dot = 0;
                        for (var d = 0; d < headDim; d++)
                        {
                            dot += (double)qs[qRow + d] * ks[kRow + d];
                        }
                        p[j] = dot * scale;
                        max = Math.Max(max, p[j]);
                    }
                    double sum = 0;
                    for (var j = 0; j < keyLength; j++)
                    {
                        p[j] = Math.Exp(p[j] - max);
                        sum += p[j];
                    }
                    double delta = 0;
                    for (var j = 0; j < keyLength; j++)
                    {
                        p[j] /= sum;
                        var vRow = (b * keyLength + j) * width + h * headDim;
                        double dot = 0;
                        for (var d = 0; d < headDim; d++)
                        {
                            dot += (double)gs[qRow + d] * vs[vRow + d];
                        }
                        dp[j] = dot;
                        delta += p[j] * dot;
                    }
                    for (var j = 0; j < keyLength; j++)
                    {
                        var kRow = (b * keyLength + j) * width + h * headDim;
                        var ds = p[j] * (dp[j] - delta) * scale;
                        for (var d = 0; d < headDim; d++)
                        {
                            dq[qRow + d] += ds * ks[kRow + d];
                            dk[kRow + d] += ds * qs[qRow + d];
                            dv[kRow + d] += p[j] * gs[qRow + d];
                        }
                    }
                }
            }
        }
        return (dq.Select(x => (float)x).ToArray(), dk.Select(x => (float)x).ToArray(), dv.Select(x => (float)x).ToArray());
    }
}

/// <summary>The backward entry points of the C ABI reject null pointers and impossible strides with the function's name.</summary>
[TestFixture]
public sealed unsafe class NativeBackwardBadInputTests
{
    [Test]
    public void EveryBackwardEntryPointRejectsNullInputs()
    {
        var x = stackalloc float[64];
        var calls = new (string Name, Func<LrmStatus> Call)[]
        {
            ("lrm_gemm_backward", () => NativeMethods.lrm_gemm_backward(x, x, null, null, x, x, 2, 2, 2, 0, 0)),
            ("lrm_layernorm_backward", () => NativeMethods.lrm_layernorm_backward(x, null, null, x, null, x, x, null, 2, 2)),
            ("lrm_modln_backward", () => NativeMethods.lrm_modln_backward(x, null, null, x, x, x, x, x, x, null, null, null, 1, 2, 2)),
            ("lrm_attention_backward", () => NativeMethods.lrm_attention_backward(x, x, x, x, x, null, x, x, x, 1, 1, 2, 2, 2, 2, 2, 2, 2, 1f)),
            ("lrm_gelu_backward", () => NativeMethods.lrm_gelu_backward(x, x, null, 4)),
            ("lrm_silu_backward", () => NativeMethods.lrm_silu_backward(null, x, x, 4)),
            ("lrm_relu_backward", () => NativeMethods.lrm_relu_backward(x, null, x, 4)),
            ("lrm_softmax_backward", () => NativeMethods.lrm_softmax_backward(x, x, null, 2, 2)),
            ("lrm_layerscale_backward", () => NativeMethods.lrm_layerscale_backward(x, null, null, x, x, null, 2, 2)),
        };
        foreach (var (name, call) in calls)
        {
            Assert.That(call(), Is.EqualTo(LrmStatus.InvalidArgument), name);
            Assert.That(NativeCheck.LastError(), Does.StartWith(name).And.Contain("NULL"), name);
        }
    }

    [Test]
    public void AttentionBackwardRejectsShortGradientStrides()
    {
        var x = stackalloc float[256];
        var status = NativeMethods.lrm_attention_backward(x, x, x, x, x, x, x, x, x, 1, 2, 3, 3, 4, 8, 8, 8, 7, 0.5f);
        Assert.That(status, Is.EqualTo(LrmStatus.ShapeMismatch));
        Assert.That(NativeCheck.LastError(), Does.StartWith("lrm_attention_backward").And.Contain("dkv_row_stride"));
    }
}

/// <summary>The CPU backend's backward ops.</summary>
[TestFixture]
public sealed class CpuGradCoreTests : GradCoreTests
{
    protected override IBackend CreateBackend() => new CpuBackend();
}
