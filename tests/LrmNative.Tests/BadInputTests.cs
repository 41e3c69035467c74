using LrmNative.Backends;
using LrmNative.Interop;

namespace LrmNative.Tests;

/// <summary>
/// Bad input never crashes: the C ABI returns a status with a readable message, and the
/// C# side raises a typed exception naming the op and the shapes.
/// </summary>
[TestFixture]
public sealed unsafe class BadInputTests
{
    private static string LastError() => NativeCheck.LastError();

    [Test]
    public void NullPointerIsRejectedWithTheArgumentName()
    {
        var buffer = stackalloc float[16];
        var status = NativeMethods.lrm_gemm_forward(buffer, null, buffer, null, null, 2, 2, 2, 0, 0);
        Assert.That(status, Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(LastError(), Does.Contain("lrm_gemm_forward").And.Contain("'a'"));
    }

    [TestCase(0)]
    [TestCase(-3)]
    public void NonPositiveSizesAreRejected(long channels)
    {
        var buffer = stackalloc float[16];
        var status = NativeMethods.lrm_layernorm_forward(buffer, null, null, buffer, null, null, 2, channels, 1e-5f);
        Assert.That(status, Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(LastError(), Does.Contain("lrm_layernorm_forward").And.Contain("channels").And.Contain(channels.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public void EveryEntryPointRejectsNullOutput()
    {
        var memory = (IntPtr)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1024);
        var pointers = (IntPtr)System.Runtime.InteropServices.NativeMemory.AllocZeroed(64);
        var dimsMemory = (IntPtr)System.Runtime.InteropServices.NativeMemory.AllocZeroed(64);
        ((IntPtr*)pointers)[0] = memory;
        ((long*)dimsMemory)[0] = 2;
        ((long*)dimsMemory)[1] = 2;
        var x = (float*)memory;
        var w = (float**)pointers;
        var dims = (long*)dimsMemory;
        var calls = new (string Name, Func<LrmStatus> Call)[]
        {
            ("lrm_gemm_forward", () => NativeMethods.lrm_gemm_forward(null, x, x, null, null, 2, 2, 2, 0, 0)),
            ("lrm_layernorm_forward", () => NativeMethods.lrm_layernorm_forward(null, null, null, x, null, null, 2, 2, 1e-5f)),
            ("lrm_modln_forward", () => NativeMethods.lrm_modln_forward(null, null, null, x, null, null, x, x, 1, 2, 2, 1e-5f)),
            ("lrm_attention_forward", () => NativeMethods.lrm_attention_forward(null, null, x, x, x, 1, 1, 2, 2, 2, 2, 2, 1f)),
            ("lrm_gelu_forward", () => NativeMethods.lrm_gelu_forward(null, x, 4)),
            ("lrm_silu_forward", () => NativeMethods.lrm_silu_forward(null, x, 4)),
            ("lrm_relu_forward", () => NativeMethods.lrm_relu_forward(null, x, 4)),
            ("lrm_softmax_forward", () => NativeMethods.lrm_softmax_forward(null, x, 2, 2)),
            ("lrm_patch_embed_forward", () => NativeMethods.lrm_patch_embed_forward(null, x, x, null, 1, 1, 2, 2, 1, 2)),
            ("lrm_deconv_forward", () => NativeMethods.lrm_deconv_forward(null, x, x, null, 1, 1, 2, 2, 1, 2)),
            ("lrm_resize_forward", () => NativeMethods.lrm_resize_forward(null, x, 1, 2, 2, 4, 4, 0, -0.75f, 0)),
            ("lrm_triplane_sample_forward", () => NativeMethods.lrm_triplane_sample_forward(null, x, x, 1, 2, 1, 2, 2)),
            ("lrm_mlp_forward", () => NativeMethods.lrm_mlp_forward(null, x, w, w, dims, 1, 2, 1, 0)),
            ("lrm_convert_f32_to_bf16", () => NativeMethods.lrm_convert_f32_to_bf16(null, x, 4)),
        };
        try
        {
            foreach (var (name, call) in calls)
            {
                Assert.That(call(), Is.EqualTo(LrmStatus.InvalidArgument), name);
                Assert.That(LastError(), Does.Contain(name).And.Contain("NULL").IgnoreCase, name);
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.Free((void*)memory);
            System.Runtime.InteropServices.NativeMemory.Free((void*)pointers);
            System.Runtime.InteropServices.NativeMemory.Free((void*)dimsMemory);
        }
    }

    [Test]
    public void BadEnumValuesAreRejected()
    {
        var x = stackalloc float[64];
        Assert.That(NativeMethods.lrm_resize_forward(x, x, 1, 2, 2, 4, 4, 7, -0.75f, 0), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(LastError(), Does.Contain("lrm_resize_forward").And.Contain("mode"));
    }

    [Test]
    public void AttentionStrideSmallerThanRowIsRejected()
    {
        var x = stackalloc float[64];
        var status = NativeMethods.lrm_attention_forward(x, null, x, x, x, 1, 2, 2, 2, 4, 4, 8, 1f);
        Assert.That(status, Is.Not.EqualTo(LrmStatus.Ok));
        Assert.That(LastError(), Does.Contain("stride"));
    }

    [Test]
    public void PatchLargerThanImageIsAShapeError()
    {
        var x = stackalloc float[64];
        var status = NativeMethods.lrm_patch_embed_forward(x, x, x, null, 1, 1, 4, 4, 1, 8);
        Assert.That(status, Is.EqualTo(LrmStatus.ShapeMismatch).Or.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(LastError(), Does.Contain("patch"));
    }

    [Test]
    public void SuccessfulCallLeavesNoStaleError()
    {
        var x = stackalloc float[4] { 1, 2, 3, 4 };
        NativeMethods.lrm_clear_error();
        Assert.That(NativeMethods.lrm_relu_forward(x, x, 4), Is.EqualTo(LrmStatus.Ok));
        Assert.That(NativeCheck.Utf8(NativeMethods.lrm_last_error()), Is.Empty);
    }

    [Test]
    public void ErrorsAreThreadLocal()
    {
        var x = stackalloc float[4];
        Assert.That(NativeMethods.lrm_gelu_forward(x, x, 0), Is.EqualTo(LrmStatus.InvalidArgument));
        var other = "";
        var thread = new Thread(() => other = NativeCheck.Utf8(NativeMethods.lrm_last_error()));
        thread.Start();
        thread.Join();
        Assert.That(other, Is.Empty, "another thread must not see this thread's error");
        Assert.That(LastError(), Does.Contain("lrm_gelu_forward"));
    }

    // ---- C# side: typed exceptions naming op, tensor and shape ---------------------

    [Test]
    public void MismatchedGemmShapesNameOpAndShapes()
    {
        using var backend = new CpuBackend();
        using var a = Tensor.Zeros([3, 5]);
        using var b = Tensor.Zeros([4, 7]);
        using var output = Tensor.Zeros([3, 7]);
        var error = Assert.Throws<LrmShapeException>(() => backend.Gemm(output, a, b));
        Assert.That(error!.Message, Does.Contain("Gemm").And.Contain("(3, 5)").And.Contain("(4, 7)"));
    }

    [Test]
    public void WrongOutputShapeNamesTheTensor()
    {
        using var backend = new CpuBackend();
        using var input = Tensor.Zeros([4, 53]);
        using var output = Tensor.Zeros([4, 52]);
        var error = Assert.Throws<LrmShapeException>(() => backend.LayerNorm(output, null, null, input, null, null, 1e-5f));
        Assert.That(error!.Message, Does.Contain("LayerNorm").And.Contain("'output'").And.Contain("(4, 53)").And.Contain("(4, 52)"));
    }

    [Test]
    public void WrongModulationShapeNamesTheTensor()
    {
        using var backend = new CpuBackend();
        using var input = Tensor.Zeros([2, 5, 8]);
        using var output = Tensor.Zeros([2, 5, 8]);
        using var shift = Tensor.Zeros([2, 8]);
        using var scale = Tensor.Zeros([1, 8]);
        var error = Assert.Throws<LrmShapeException>(() => backend.ModLN(output, null, null, input, null, null, shift, scale, 1e-6f));
        Assert.That(error!.Message, Does.Contain("ModLN").And.Contain("'scale'").And.Contain("(2, 8)").And.Contain("(1, 8)"));
    }

    [Test]
    public void WrongDataTypeIsRejected()
    {
        using var backend = new CpuBackend();
        using var input = Tensor.Zeros([4, 8], DataType.BFloat16);
        using var output = Tensor.Zeros([4, 8]);
        var error = Assert.Throws<LrmShapeException>(() => backend.Softmax(output, input));
        Assert.That(error!.Message, Does.Contain("Softmax").And.Contain("'input'").And.Contain("Float32"));
    }

    [Test]
    public void AttentionHeadsMustDivideWidth()
    {
        using var backend = new CpuBackend();
        using var q = Tensor.Zeros([1, 4, 10]);
        using var output = Tensor.Zeros([1, 4, 10]);
        var error = Assert.Throws<LrmShapeException>(() => backend.Attention(output, null, q, q, q, 3, 1f));
        Assert.That(error!.Message, Does.Contain("Attention").And.Contain("heads = 3"));
    }

    [Test]
    public void ZeroSizedTensorReachesNativeCheckAsTypedError()
    {
        using var backend = new CpuBackend();
        using var input = Tensor.Zeros([0, 8]);
        using var output = Tensor.Zeros([0, 8]);
        // The native check rejects rows = 0 and the status becomes a typed exception that names the call and the shape.
        var error = Assert.Throws<LrmInvalidArgumentException>(() => backend.LayerNorm(output, null, null, input, null, null, 1e-5f));
        Assert.That(error!.Message, Does.Contain("lrm_layernorm_forward").And.Contain("(0, 8)"));
    }

    [Test]
    public void DisposedTensorThrows()
    {
        using var backend = new CpuBackend();
        var input = Tensor.Zeros([2, 2]);
        using var output = Tensor.Zeros([2, 2]);
        input.Dispose();
        Assert.Throws<ObjectDisposedException>(() => backend.Softmax(output, input));
    }

    [Test]
    public void BackwardSlotsNameTheOp()
    {
        using var backend = new CpuBackend();
        using var t = Tensor.Zeros([2, 2]);
        using var wrong = Tensor.Zeros([2, 3]);
        var error = Assert.Throws<LrmShapeException>(() => backend.SoftmaxBackward(t, wrong, t));
        Assert.That(error!.Message, Does.StartWith("SoftmaxBackward:").And.Contain("'gradOutput'"));
    }
}
