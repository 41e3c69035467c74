using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>The backends' memory ops on the CPU: Fill per element type, bf16 rounding, uploads/downloads and leases.</summary>
[TestFixture]
public sealed class BackendMemoryTests
{
    [TestCase(1f, (ushort)0x3F80)]
    [TestCase(-2.5f, (ushort)0xC020)]
    [TestCase(1.00390625f, (ushort)0x3F80)] // 1 + 2⁻⁸: halfway between 1 and the next bf16, ties to even (down)
    [TestCase(1.01171875f, (ushort)0x3F82)] // 1 + 3·2⁻⁸: halfway, ties to even (up)
    [TestCase(1.0078125f, (ushort)0x3F81)] // exactly representable
    [TestCase(float.PositiveInfinity, (ushort)0x7F80)]
    public void BFloat16BitsRoundToNearestEven(float value, ushort expected) =>
        Assert.That(BackendMemory.BFloat16Bits(value), Is.EqualTo(expected));

    [Test]
    public void BFloat16BitsKeepNaN()
    {
        var bits = BackendMemory.BFloat16Bits(float.NaN);
        Assert.That(float.IsNaN(BitConverter.Int32BitsToSingle(bits << 16)), Is.True);
    }

    [Test]
    public void FillWritesEveryElementOfEachType()
    {
        using var backend = new CpuBackend();
        using var single = backend.Empty([5]);
        backend.Fill(single, 0.75f);
        Assert.That(single.ToFloatArray(), Is.All.EqualTo(0.75f));
        using var half = backend.Empty([3], DataType.BFloat16);
        backend.Fill(half, -2.5f);
        Assert.That(half.ToFloatArray(), Is.All.EqualTo(-2.5f));
        using var integers = backend.Empty([4], DataType.Int32);
        backend.Fill(integers, 7f);
        Assert.That(integers.AsSpan<int>().ToArray(), Is.All.EqualTo(7));
        using var zeros = backend.Zeros([2, 3]);
        Assert.That(zeros.ToFloatArray(), Is.All.Zero);
    }

    [Test]
    public void UploadDownloadAndLeasesOnTheCpuAreCopiesOrTheTensorItself()
    {
        using var backend = new CpuBackend();
        using var host = Tensor.FromArray([1f, 2f, 3f], 3);
        using var copy = backend.ToBackend(host);
        Assert.That(copy, Is.Not.SameAs(host));
        Assert.That(copy.ToFloatArray(), Is.EqualTo(host.ToFloatArray()));
        using (var lease = backend.Borrow(host))
        {
            Assert.That(lease.Tensor, Is.SameAs(host), "a host tensor is already where the CPU backend computes");
        }
        Assert.That(host.IsDisposed, Is.False, "a borrowed tensor is left alone");
        using var wrong = Tensor.Empty([4]);
        Assert.That(Assert.Throws<LrmShapeException>(() => backend.Upload(wrong, host))!.Message, Does.Contain("Upload"));
    }
}
