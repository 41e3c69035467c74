using LrmNative.Backends;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// Op parity with PyTorch (golden files from tests/golden/make_golden.py): every op at
/// several shapes, odd sizes included, compared by ‖out−ref‖/‖ref‖. Outputs are poisoned,
/// guarded buffers, so missed or out-of-bounds writes fail too. The same bodies run for
/// each backend through <see cref="CreateBackend"/>.
/// </summary>
public abstract class OpParityTests
{
    private IBackend _backend = null!;

    /// <summary>The backend under test.</summary>
    protected abstract IBackend CreateBackend();

    /// <summary>Largest accepted normalised error (fp32 ops: 1e-5).</summary>
    protected virtual double Tolerance => 1e-5;

    /// <summary>The bound for ops with matrix products (GEMM, attention, convolutions, MLP): 1e-2 where they use bf16 operands.</summary>
    protected virtual double MatmulTolerance => Tolerance;

    [OneTimeSetUp]
    public void CreateBackendOnce() => _backend = CreateBackend();

    [OneTimeTearDown]
    public void DisposeBackend() => _backend?.Dispose();

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "gemm" })]
    public void Gemm(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        _backend.Gemm(output, scope.Add(file.ReadTensor("a")), scope.Add(file.ReadTensor("b")),
            scope.AddOptional(file.Optional("bias")), scope.AddOptional(file.Optional("residual")),
            file.Flag("transpose_a"), file.Flag("transpose_b"));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, MatmulTolerance, "gemm out");
    }

    [Test]
    public void GemmResidualMayAliasOutput()
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Golden.DataDirectory, "gemm_m37_n53_k29_tb_bias_res.safetensors"));
        using var scope = new TensorScope();
        var expected = scope.Add(file.ReadTensor("out"));
        var inPlace = scope.Add(file.ReadTensor("residual"));
        _backend.Gemm(inPlace, scope.Add(file.ReadTensor("a")), scope.Add(file.ReadTensor("b")),
            scope.Add(file.ReadTensor("bias")), inPlace, transposeB: true);
        Compare.Close(inPlace, expected, MatmulTolerance, "gemm in-place residual");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "layernorm" })]
    public void LayerNorm(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var expectedMean = scope.Add(file.ReadTensor("mean"));
        var expectedRstd = scope.Add(file.ReadTensor("rstd"));
        var output = outputs.Like("out", expected);
        var mean = outputs.Like("mean", expectedMean);
        var rstd = outputs.Like("rstd", expectedRstd);
        _backend.LayerNorm(output, mean, rstd, scope.Add(file.ReadTensor("inp")),
            scope.AddOptional(file.Optional("weight")), scope.AddOptional(file.Optional("bias")), file.Float("eps"));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, "layernorm out");
        Compare.Close(mean, expectedMean, Tolerance, "layernorm mean");
        Compare.Close(rstd, expectedRstd, Tolerance, "layernorm rstd");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "modln" })]
    public void ModLN(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var expectedMean = scope.Add(file.ReadTensor("mean"));
        var expectedRstd = scope.Add(file.ReadTensor("rstd"));
        var output = outputs.Like("out", expected);
        var mean = outputs.Like("mean", expectedMean);
        var rstd = outputs.Like("rstd", expectedRstd);
        _backend.ModLN(output, mean, rstd, scope.Add(file.ReadTensor("inp")), scope.Add(file.ReadTensor("weight")),
            scope.Add(file.ReadTensor("bias")), scope.Add(file.ReadTensor("shift")), scope.Add(file.ReadTensor("scale")),
            file.Float("eps"));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, "modln out");
        Compare.Close(mean, expectedMean, Tolerance, "modln mean");
        Compare.Close(rstd, expectedRstd, Tolerance, "modln rstd");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "attention" })]
    public void Attention(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var expectedLse = scope.Add(file.ReadTensor("lse"));
        var output = outputs.Like("out", expected);
        var lse = outputs.Like("lse", expectedLse);
        var heads = (int)file.Long("heads");
        var width = file.Long("heads") * file.Long("head_dim");
        if (file.Flag("packed"))
        {
            var qkv = scope.Add(file.ReadTensor("qkv"));
            _backend.Attention(output, lse, new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width),
                heads, file.Float("scale"));
        }
        else
        {
            _backend.Attention(output, lse, scope.Add(file.ReadTensor("q")), scope.Add(file.ReadTensor("k")),
                scope.Add(file.ReadTensor("v")), heads, file.Float("scale"));
        }
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, MatmulTolerance, "attention out");
        Compare.Close(lse, expectedLse, MatmulTolerance, "attention lse");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "gelu" })]
    public void Gelu(string path) => CheckActivation(path, Activation.Gelu);

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "silu" })]
    public void Silu(string path) => CheckActivation(path, Activation.Silu);

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "relu" })]
    public void Relu(string path) => CheckActivation(path, Activation.Relu);

    private void CheckActivation(string path, Activation activation)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var input = scope.Add(file.ReadTensor("inp"));
        var output = outputs.Like("out", expected);
        _backend.Activate(output, input, activation);
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, $"{activation} out");
        // In place (out aliases inp) gives the same values.
        _backend.Activate(input, input, activation);
        Compare.Close(input, expected, Tolerance, $"{activation} in place");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "softmax" })]
    public void Softmax(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        _backend.Softmax(output, scope.Add(file.ReadTensor("inp")));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, "softmax out");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "patch_embed" })]
    public void PatchEmbed(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        _backend.PatchEmbed(output, scope.Add(file.ReadTensor("image")), scope.Add(file.ReadTensor("weight")),
            scope.Add(file.ReadTensor("bias")));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, MatmulTolerance, "patch_embed out");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "deconv" })]
    public void Deconvolution(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        _backend.Deconvolution(output, scope.Add(file.ReadTensor("inp")), scope.Add(file.ReadTensor("weight")),
            scope.Add(file.ReadTensor("bias")));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, MatmulTolerance, "deconv out");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "resize" })]
    public void Resize(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        var mode = file.Metadata["mode"] == "bicubic" ? ResizeMode.Bicubic : ResizeMode.Bilinear;
        _backend.Resize(output, scope.Add(file.ReadTensor("inp")), mode, file.Float("cubic_a"), file.Flag("antialias"));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, "resize out");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "triplane" })]
    public void TriplaneSample(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        _backend.TriplaneSample(output, scope.Add(file.ReadTensor("planes")), scope.Add(file.ReadTensor("points")));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, "triplane out");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "triplanesum" })]
    public void TriplaneSampleSum(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        _backend.TriplaneSampleSum(output, scope.Add(file.ReadTensor("planes")), scope.Add(file.ReadTensor("points")),
            scope.AddOptional(file.Optional("bias")), ParseActivation(file.Metadata["activation"]));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, Tolerance, "triplanesum out");
    }

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "mlp" })]
    public void Mlp(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        using var outputs = new GuardedOutputs();
        var expected = scope.Add(file.ReadTensor("out"));
        var output = outputs.Like("out", expected);
        var layers = (int)file.Long("num_layers");
        var weights = Enumerable.Range(0, layers).Select(l => scope.Add(file.ReadTensor($"w{l}"))).ToList();
        var biases = Enumerable.Range(0, layers).Select(l => scope.AddOptional(file.Optional($"b{l}"))).ToList();
        _backend.Mlp(output, scope.Add(file.ReadTensor("inp")), weights, biases,
            ParseActivation(file.Metadata["hidden_activation"]), ParseActivation(file.Metadata["output_activation"]));
        outputs.AssertWrittenExactly();
        Compare.Close(output, expected, MatmulTolerance, "mlp out");
    }

    private static Activation ParseActivation(string name) => name switch
    {
        "none" => Activation.None,
        "relu" => Activation.Relu,
        "gelu" => Activation.Gelu,
        "silu" => Activation.Silu,
        _ => throw new ArgumentException($"unknown activation '{name}' in golden metadata"),
    };

    [TestCaseSource(typeof(Golden), nameof(Golden.Cases), new object[] { "convert_bf16" })]
    public void ConvertBFloat16(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        using var scope = new TensorScope();
        var input = scope.Add(file.ReadTensor("inp"));
        var expected = scope.Add(file.ReadTensor("out"));
        var output = scope.Add(Tensor.Empty(input.Shape, DataType.BFloat16));
        _backend.Convert(output, input);
        var actualBits = output.AsSpan<ushort>();
        var expectedBits = expected.AsSpan<ushort>();
        for (var i = 0; i < actualBits.Length; i++)
        {
            var expectedNaN = float.IsNaN(BitConverter.Int32BitsToSingle(expectedBits[i] << 16));
            var actualNaN = float.IsNaN(BitConverter.Int32BitsToSingle(actualBits[i] << 16));
            // PyTorch's own NaN payload varies by code path; NaN must stay NaN, every other value must match bit for bit.
            Assert.That(actualNaN, Is.EqualTo(expectedNaN), $"element {i}: NaN-ness of bf16({input.AsSpan<float>()[i]})");
            if (!expectedNaN)
            {
                Assert.That(actualBits[i], Is.EqualTo(expectedBits[i]), $"element {i}: bf16 bits of {input.AsSpan<float>()[i]:R}");
            }
        }
        // bf16 → fp32 is exact.
        using var back = Tensor.Empty(input.Shape);
        _backend.Convert(back, output);
        for (var i = 0; i < actualBits.Length; i++)
        {
            var widened = BitConverter.Int32BitsToSingle(actualBits[i] << 16);
            Assert.That(BitConverter.SingleToInt32Bits(back.AsSpan<float>()[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(widened)), $"element {i}");
        }
    }
}

/// <summary>The CPU backend against PyTorch.</summary>
[TestFixture]
public sealed class CpuOpParityTests : OpParityTests
{
    protected override IBackend CreateBackend() => new CpuBackend();
}

/// <summary>The CUDA backend against PyTorch with fp32 operands everywhere (skipped without a CUDA device).</summary>
[TestFixture]
[Category("Cuda")]
public sealed class CudaOpParityTests : OpParityTests
{
    protected override IBackend CreateBackend() => CudaTestDevice.Open(MatmulPrecision.Float32);
}

/// <summary>The CUDA backend against PyTorch with bf16 matrix operands (tensor cores): 1e-2 for those ops, 1e-5 for the rest.</summary>
[TestFixture]
[Category("Cuda")]
public sealed class CudaBFloat16OpParityTests : OpParityTests
{
    protected override double MatmulTolerance => 1e-2;

    protected override IBackend CreateBackend() => CudaTestDevice.Open(MatmulPrecision.BFloat16);
}
