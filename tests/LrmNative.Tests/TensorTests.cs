namespace LrmNative.Tests;

[TestFixture]
public sealed class TensorTests
{
    [Test]
    public void ShapeCountsAndBytes()
    {
        using var t = Tensor.Zeros([3, 37, 53]);
        Assert.That(t.ElementCount, Is.EqualTo(3 * 37 * 53));
        Assert.That(t.ByteCount, Is.EqualTo(3 * 37 * 53 * 4));
        Assert.That(t.ShapeText, Is.EqualTo("(3, 37, 53)"));
        Assert.That(t.Size(-1), Is.EqualTo(53));
        Assert.That(t.AsSpan<float>().ToArray(), Is.All.EqualTo(0f));
        using var b = Tensor.Zeros([5], DataType.BFloat16);
        Assert.That(b.ByteCount, Is.EqualTo(10));
    }

    [Test]
    public void WrongElementViewIsRejected()
    {
        using var t = Tensor.Zeros([4], DataType.BFloat16);
        Assert.Throws<LrmShapeException>(() => t.AsSpan<float>());
    }

    [Test]
    public void NegativeShapeAndWrongValueCountAreRejected()
    {
        Assert.Throws<LrmInvalidArgumentException>(() => Tensor.Empty([2, -1]));
        var error = Assert.Throws<LrmShapeException>(() => Tensor.FromArray([1f, 2f, 3f], 2, 2));
        Assert.That(error!.Message, Does.Contain("(2, 2)"));
    }

    [Test]
    public void DisposeIsIdempotentAndUseAfterDisposeThrows()
    {
        var t = Tensor.Zeros([2]);
        t.Dispose();
        t.Dispose();
        Assert.That(t.IsDisposed, Is.True);
        Assert.Throws<ObjectDisposedException>(() => t.AsSpan<float>());
    }

    [Test]
    public void GuardedTensorDetectsWritesOutsideAndUnwrittenElements()
    {
        using var t = Tensor.CreateGuarded([8], GuardedOutputs.Poison, guardElements: 4);
        Assert.That(t.CountBits(GuardedOutputs.Poison), Is.EqualTo(8));
        t.AsSpan<float>().Fill(1f);
        Assert.That(t.CountBits(GuardedOutputs.Poison), Is.Zero);
        Assert.That(t.GuardsIntact(GuardedOutputs.Poison), Is.True);
        unsafe
        {
            ((float*)t.Pointer)[8] = 0f; // one past the end
        }
        Assert.That(t.GuardsIntact(GuardedOutputs.Poison), Is.False);
    }
}
