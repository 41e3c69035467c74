namespace LrmNative.Benchmarks;

/// <summary>
/// Random tensors for benchmarks: zeros can flatter a kernel (a constant softmax, one
/// texel for every point), so every input is uniform noise from a fixed seed.
/// </summary>
internal static class RandomData
{
    /// <summary>A tensor of the given shape, uniform in [low, high).</summary>
    public static Tensor Uniform(Random random, float low, float high, params ReadOnlySpan<long> shape)
    {
        var tensor = Tensor.Empty(shape);
        var values = tensor.AsSpan<float>();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = low + (high - low) * random.NextSingle();
        }
        return tensor;
    }
}
