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
        GradientCheck.AssertMatches("da", a, gradA, Loss, tolerance: 1e-3);
        GradientCheck.AssertMatches("db", b, gradB, Loss, tolerance: 1e-3);
        GradientCheck.AssertMatches("dbias", bias, gradBias, Loss, tolerance: 1e-3);
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
