using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// The CPU kernels against plain C# double-precision references on shapes the golden
/// files do not cover: long key sequences (the paper's 1025 image tokens), head dims
/// that are not powers of two, many points outside the triplane.
/// </summary>
[TestFixture]
public sealed class DoubleReferenceTests
{
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    private static Tensor Random(Random random, float scale, params long[] shape)
    {
        var tensor = Tensor.Empty(shape);
        var span = tensor.AsSpan<float>();
        for (var i = 0; i < span.Length; i++)
        {
            // Sum of uniforms: cheap, roughly normal, deterministic for a seed.
            span[i] = scale * (float)(random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5);
        }
        return tensor;
    }

    [TestCase(1, 2, 65, 1025, 64)]
    [TestCase(2, 3, 129, 31, 40)]
    [TestCase(1, 1, 1, 1, 8)]
    [TestCase(1, 4, 7, 513, 12)]
    public void AttentionMatchesDoubleReference(int batch, int heads, int queryLength, int keyLength, int headDim)
    {
        var random = new Random(1234 + queryLength);
        var width = heads * headDim;
        using var q = Random(random, 2f, batch, queryLength, width);
        using var k = Random(random, 2f, batch, keyLength, width);
        using var v = Random(random, 1f, batch, keyLength, width);
        using var outputs = new GuardedOutputs();
        var output = outputs.Create("out", [batch, queryLength, width]);
        var lse = outputs.Create("lse", [batch, heads, queryLength]);
        var scale = 1f / MathF.Sqrt(headDim);
        _backend.Attention(output, lse, q, k, v, heads, scale);
        outputs.AssertWrittenExactly();

        var qs = q.AsSpan<float>().ToArray();
        var ks = k.AsSpan<float>().ToArray();
        var vs = v.AsSpan<float>().ToArray();
        var expected = new float[batch * queryLength * width];
        var expectedLse = new float[batch * heads * queryLength];
        var scores = new double[keyLength];
        for (var b = 0; b < batch; b++)
        {
            for (var h = 0; h < heads; h++)
            {
                for (var i = 0; i < queryLength; i++)
                {
                    var max = double.NegativeInfinity;
                    for (var j = 0; j < keyLength; j++)
                    {
                        double dot = 0;
                        for (var d = 0; d < headDim; d++)
                        {
                            dot += (double)qs[((b * queryLength) + i) * width + h * headDim + d] * ks[((b * keyLength) + j) * width + h * headDim + d];
                        }
                        scores[j] = dot * scale;
                        max = Math.Max(max, scores[j]);
                    }
                    double sum = 0;
                    for (var j = 0; j < keyLength; j++)
                    {
                        scores[j] = Math.Exp(scores[j] - max);
                        sum += scores[j];
                    }
                    expectedLse[(b * heads + h) * queryLength + i] = (float)(max + Math.Log(sum));
                    for (var d = 0; d < headDim; d++)
                    {
                        double acc = 0;
                        for (var j = 0; j < keyLength; j++)
                        {
                            acc += scores[j] * vs[((b * keyLength) + j) * width + h * headDim + d];
                        }
                        expected[((b * queryLength) + i) * width + h * headDim + d] = (float)(acc / sum);
                    }
                }
            }
        }
        Assert.That(Compare.RelativeError(output.AsSpan<float>(), expected), Is.LessThan(1e-5), "out");
        Assert.That(Compare.RelativeError(lse.AsSpan<float>(), expectedLse), Is.LessThan(1e-5), "lse");
    }

    [TestCase(3, 1030, 1024, 1e-6f)]
    [TestCase(2, 17, 7, 1e-5f)]
    public void ModLNMatchesDoubleReference(int batch, int tokens, int channels, float epsilon)
    {
        var random = new Random(99 + channels);
        using var input = Random(random, 3f, batch, tokens, channels);
        // A large common offset: a naive one-pass variance in fp32 would lose digits here.
        var x = input.AsSpan<float>();
        for (var i = 0; i < x.Length; i++)
        {
            x[i] += 50f;
        }
        using var weight = Random(random, 1f, channels);
        using var bias = Random(random, 1f, channels);
        using var shift = Random(random, 1f, batch, channels);
        using var scale = Random(random, 0.5f, batch, channels);
        using var output = Tensor.Empty([batch, tokens, channels]);
        _backend.ModLN(output, null, null, input, weight, bias, shift, scale, epsilon);

        var expected = new float[x.Length];
        var w = weight.AsSpan<float>();
        var bb = bias.AsSpan<float>();
        var sh = shift.AsSpan<float>();
        var sc = scale.AsSpan<float>();
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < tokens; t++)
            {
                var row = x.Slice((b * tokens + t) * channels, channels);
                double mean = 0, variance = 0;
                foreach (var value in row)
                {
                    mean += value;
                }
                mean /= channels;
                foreach (var value in row)
                {
                    variance += (value - mean) * (value - mean);
                }
                var rstd = 1 / Math.Sqrt(variance / channels + epsilon);
                for (var c = 0; c < channels; c++)
                {
                    var normalised = (row[c] - mean) * rstd * w[c] + bb[c];
                    expected[(b * tokens + t) * channels + c] = (float)(normalised * (1 + sc[b * channels + c]) + sh[b * channels + c]);
                }
            }
        }
        Assert.That(Compare.RelativeError(output.AsSpan<float>(), expected), Is.LessThan(1e-5));
    }

    [Test]
    public void TriplaneMatchesDoubleReferenceIncludingOutsidePoints()
    {
        const int batch = 2, count = 777, height = 11, width = 23, channels = 6;
        var random = new Random(7);
        using var planes = Random(random, 1f, batch, 3, height, width, channels);
        using var points = Tensor.Empty([batch, count, 3]);
        var p = points.AsSpan<float>();
        for (var i = 0; i < p.Length; i++)
        {
            p[i] = (float)(random.NextDouble() * 2.6 - 1.3);
        }
        using var outputs = new GuardedOutputs();
        var output = outputs.Create("out", [batch, count, 3 * channels]);
        _backend.TriplaneSample(output, planes, points);
        outputs.AssertWrittenExactly();

        var pl = planes.AsSpan<float>();
        var expected = new float[batch * count * 3 * channels];
        for (var b = 0; b < batch; b++)
        {
            for (var n = 0; n < count; n++)
            {
                double x = p[(b * count + n) * 3], y = p[(b * count + n) * 3 + 1], z = p[(b * count + n) * 3 + 2];
                (double U, double V)[] coordinates = [(x, y), (x, z), (z, y)];
                for (var plane = 0; plane < 3; plane++)
                {
                    var ix = ((coordinates[plane].U + 1) * width - 1) / 2;
                    var iy = ((coordinates[plane].V + 1) * height - 1) / 2;
                    var x0 = (int)Math.Floor(ix);
                    var y0 = (int)Math.Floor(iy);
                    for (var c = 0; c < channels; c++)
                    {
                        double acc = 0;
                        for (var dy = 0; dy <= 1; dy++)
                        {
                            for (var dx = 0; dx <= 1; dx++)
                            {
                                int xi = x0 + dx, yi = y0 + dy;
                                if (xi < 0 || yi < 0 || xi >= width || yi >= height)
                                {
                                    continue;
                                }
                                var wx = dx == 1 ? ix - x0 : 1 - (ix - x0);
                                var wy = dy == 1 ? iy - y0 : 1 - (iy - y0);
                                acc += wx * wy * pl[(((b * 3 + plane) * height + yi) * width + xi) * channels + c];
                            }
                        }
                        expected[(b * count + n) * 3 * channels + plane * channels + c] = (float)acc;
                    }
                }
            }
        }
        Assert.That(Compare.RelativeError(output.AsSpan<float>(), expected), Is.LessThan(1e-5));
    }

    [TestCase(1024, 1024, 1024)]
    [TestCase(3, 1, 1000)]
    public void GemmMatchesDoubleReferenceOnSampledEntries(int m, int n, int k)
    {
        var random = new Random(m + n + k);
        using var a = Random(random, 1f, m, k);
        using var b = Random(random, 1f, n, k);
        using var bias = Random(random, 1f, n);
        using var output = Tensor.Empty([m, n]);
        _backend.Gemm(output, a, b, bias, transposeB: true);
        var av = a.AsSpan<float>();
        var bv = b.AsSpan<float>();
        var sampled = new List<float>();
        var actual = new List<float>();
        for (var s = 0; s < 500; s++)
        {
            int i = random.Next(m), j = random.Next(n);
            double acc = bias.AsSpan<float>()[j];
            for (var t = 0; t < k; t++)
            {
                acc += (double)av[i * k + t] * bv[j * k + t];
            }
            sampled.Add((float)acc);
            actual.Add(output.AsSpan<float>()[i * n + j]);
        }
        Assert.That(Compare.RelativeError(actual.ToArray(), sampled.ToArray()), Is.LessThan(1e-5));
    }
}
