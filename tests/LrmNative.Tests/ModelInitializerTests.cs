using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// Fresh weights: MAE's 2D sine-cosine position table, checked by its defining properties rather than by restating the
/// formula (each half encodes one axis; the inner product of two rows depends only on their offset, so it is a
/// relative-position code), and <c>--position-init</c> leaving every other tensor as the default initialisation draws it.
/// </summary>
[TestFixture]
public sealed class ModelInitializerTests
{
    [Test]
    public void SinCosTableEncodesEachAxisInOneHalfAndDependsOnlyOnOffsets()
    {
        const int grid = 6, width = 32, quarter = width / 4;
        var table = new float[(1 + grid * grid) * width];
        ModelInitializer.SinCosTable(table, grid, width);
        Assert.That(table[..width], Is.All.EqualTo(0f), "[CLS] row");
        double[] Row(int i, int j) => [.. table.AsSpan((1 + i * grid + j) * width, width).ToArray().Select(v => (double)v)];
        static double Dot(double[] a, double[] b, int from, int count) => Enumerable.Range(from, count).Sum(k => a[k] * b[k]);

        // Patch (0, 0): sin 0 = 0, cos 0 = 1 in both halves.
        var origin = Row(0, 0);
        for (var k = 0; k < quarter; k++)
        {
            Assert.That(origin[k], Is.EqualTo(0).Within(1e-7));
            Assert.That(origin[quarter + k], Is.EqualTo(1).Within(1e-7));
        }
        // The first half depends only on the column, the second only on the row.
        Assert.That(Row(3, 2)[..(width / 2)], Is.EqualTo(Row(5, 2)[..(width / 2)]).Within(1e-7));
        Assert.That(Row(4, 1)[(width / 2)..], Is.EqualTo(Row(4, 5)[(width / 2)..]).Within(1e-7));
        // Per half: Σ sin(aω)sin(bω) + cos(aω)cos(bω) = Σ cos((a − b)ω), a function of the offset only; the lowest
        // frequency is 1 (ω_0 = 10000⁰) and the highest 10000^(−(Q−1)/Q).
        for (var a = 0; a < grid; a++)
        {
            for (var b = 0; b < grid; b++)
            {
                var expected = Enumerable.Range(0, quarter).Sum(k => Math.Cos((a - b) * Math.Pow(10000.0, -(double)k / quarter)));
                Assert.That(Dot(Row(0, a), Row(0, b), 0, width / 2), Is.EqualTo(expected).Within(1e-5), $"columns {a}, {b}");
                Assert.That(Dot(Row(a, 0), Row(b, 0), width / 2, width / 2), Is.EqualTo(expected).Within(1e-5), $"rows {a}, {b}");
            }
        }
        // Every patch has its own code: squared norm D/2, strictly above the inner product with any other patch.
        for (var p = 0; p < grid * grid; p++)
        {
            var self = Row(p / grid, p % grid);
            Assert.That(Dot(self, self, 0, width), Is.EqualTo(width / 2.0).Within(1e-5));
            for (var q = p + 1; q < grid * grid; q++)
            {
                Assert.That(Dot(self, Row(q / grid, q % grid), 0, width), Is.LessThan(width / 2.0 - 1e-3), $"patches {p}, {q}");
            }
        }
        Assert.Throws<LrmInvalidArgumentException>(() => ModelInitializer.SinCosTable(new float[(1 + 4) * 30], 2, 30));
    }

    [Test]
    public void PositionInitChangesOnlyTheEncoderPositionTable()
    {
        var config = ModelConfig.Parse(TrainingSceneData.TinyConfigJson, "tiny training config");
        var normal = ModelInitializer.Create(config, 11);
        var sinCos = ModelInitializer.Create(config, 11, PositionInit.SinCos);
        try
        {
            foreach (var (name, tensor) in normal)
            {
                if (name == LrmWeightNames.Encoder + "pos_embed")
                {
                    var expected = new float[tensor.ElementCount];
                    ModelInitializer.SinCosTable(expected, config.EncoderPositionGrid, config.EncoderFeatDim);
                    Assert.That(sinCos[name].ToFloatArray(), Is.EqualTo(expected));
                    Assert.That(tensor.ToFloatArray().Max(Math.Abs), Is.LessThanOrEqualTo(0.04f), "the default: truncated N(0, 0.02²)");
                }
                else
                {
                    Assert.That(sinCos[name].ToFloatArray(), Is.EqualTo(tensor.ToFloatArray()), name);
                }
            }
        }
        finally
        {
            foreach (var tensor in normal.Values.Concat(sinCos.Values))
            {
                tensor.Dispose();
            }
        }
    }
}
