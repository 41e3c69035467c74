using LrmNative.Backends;
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
                GradientCheck.CloseScaled(gradBias, expectedBias!, call, Tolerance, $"call {call}: dbias (accumulated)");
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
        AssertShapeError(() => _backend.GemmBackward(scope.Add(Tensor.Zeros([3, 4])), null, null, gradOutput, a, b), "GemmBackward", "'gradA'");
        AssertShapeError(() => _backend.GemmBackward(null, scope.Add(Tensor.Zeros([5, 3])), null, gradOutput, a, b), "GemmBackward", "'gradB'");
        AssertShapeError(() => _backend.GemmBackward(null, null, scope.Add(Tensor.Zeros([4])), gradOutput, a, b), "GemmBackward", "'gradBias'");
        AssertShapeError(() => _backend.GemmBackward(null, null, scope.Add(Tensor.Zeros([5])), scope.Add(Tensor.Zeros([5, 4])), a, b), "GemmBackward", "'gradOutput'");
        AssertShapeError(() => _backend.GemmBackward(null, null, scope.Add(Tensor.Zeros([5])), gradOutput, a, scope.Add(Tensor.Zeros([4, 5]))), "GemmBackward", "inner sizes");
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
                GradientCheck.CloseScaled(gradWeight!, expectedWeight!, call, Tolerance, $"call {call}: dweight (accumulated)");
                GradientCheck.CloseScaled(gradBias!, expectedBias!, call, Tolerance, $"call {call}: dbias (accumulated)");
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
            GradientCheck.CloseScaled(gradWeight, expectedWeight, call, Tolerance, $"call {call}: dweight (accumulated)");
            GradientCheck.CloseScaled(gradBias, expectedBias, call, Tolerance, $"call {call}: dbias (accumulated)");
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
        AssertShapeError(() => _backend.LayerNormBackward(scope.Add(Tensor.Zeros([2, 3, 7])), null, null, good, stats, stats, input, null), "LayerNormBackward", "'gradInput'");
        AssertShapeError(() => _backend.LayerNormBackward(good, null, null, good, scope.Add(Tensor.Zeros([6])), stats, input, null), "LayerNormBackward", "'mean'");
        AssertShapeError(() => _backend.LayerNormBackward(good, scope.Add(Tensor.Zeros([7])), null, good, stats, stats, input, channels), "LayerNormBackward", "'gradWeight'");
        AssertShapeError(() => _backend.ModLNBackward(good, null, null, modulation, scope.Add(Tensor.Zeros([3, 8])), good, stats, stats, input, channels, channels, modulation), "ModLNBackward", "'gradScale'");
        AssertShapeError(() => _backend.ModLNBackward(good, null, null, modulation, modulation, good, stats, stats, input, channels, channels, scope.Add(Tensor.Zeros([8]))), "ModLNBackward", "'scale'");
        AssertShapeError(() => _backend.ModLNBackward(good, null, null, modulation, modulation, scope.Add(Tensor.Zeros([2, 8, 3])), stats, stats, input, channels, channels, modulation), "ModLNBackward", "'gradOutput'");
    }

    // ---- helpers ------------------------------------------------------------------------------

    private static void AssertShapeError(Action call, string op, string detail)
    {
        var error = Assert.Throws<LrmShapeException>(() => call());
        Assert.That(error!.Message, Does.StartWith(op + ":").And.Contain(detail));
    }
}

/// <summary>The CPU backend's backward ops.</summary>
[TestFixture]
public sealed class CpuGradCoreTests : GradCoreTests
{
    protected override IBackend CreateBackend() => new CpuBackend();
}
