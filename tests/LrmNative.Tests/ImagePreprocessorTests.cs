using LrmNative.Backends;
using LrmNative.Imaging;

namespace LrmNative.Tests;

/// <summary>
/// Preprocessing checked analytically on synthetic images: an opaque rectangle of w × h pixels must come out
/// centred where the canvas geometry puts it (N = round(max(w, h)/ratio), offset ⌊(N − w)/2⌋, scale S/N), with its
/// area, centroid and extent preserved by the antialiased resize; the background estimate finds a disk on a plain
/// background; bad images give clear errors.
/// </summary>
[TestFixture]
public sealed class ImagePreprocessorTests
{
    private const int Size = 64;
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    private static ImagePreprocessor Preprocessor(double ratio = 0.85) =>
        new(new ImagePreprocessOptions { OutputSize = Size, ForegroundRatio = ratio });

    // A transparent width × height image with an opaque red rectangle [x0, x0 + w) × [y0, y0 + h).
    private static Image RedRectangle(int width, int height, int x0, int y0, int w, int h, float alpha = 1f)
    {
        var rgba = new float[width * height * 4];
        for (var y = y0; y < y0 + h; y++)
        {
            for (var x = x0; x < x0 + w; x++)
            {
                var i = 4 * (y * width + x);
                rgba[i] = 1f;
                rgba[i + 3] = alpha;
            }
        }
        return Image.FromRgba(rgba, width, height);
    }

    // Coverage of the red object at output pixel (x, y): red on white leaves R = 1 and G = B = 1 − coverage.
    private static float Coverage(ReadOnlySpan<float> planar, int x, int y) => 1f - planar[Size * Size + y * Size + x];

    [TestCase(60, 40, 30, 20)]
    [TestCase(40, 60, 150, 50)]
    [TestCase(35, 35, 0, 0)]
    [TestCase(120, 7, 70, 100)]
    public void RectangleIsRecentredAndScaledAsTheGeometrySays(int w, int h, int x0, int y0)
    {
        using var image = RedRectangle(200, 120, x0, y0, w, h);
        using var result = Preprocessor().Process(_backend, image);
        Assert.That(result.Image.ShapeText, Is.EqualTo($"(1, 3, {Size}, {Size})"));
        Assert.That(result.Foreground, Is.EqualTo(new PixelBox(x0, y0, w, h)));
        Assert.That(result.BackgroundEstimated, Is.False);
        Assert.That(result.Warnings, Is.Empty);

        var longest = Math.Max(w, h);
        var canvas = (int)Math.Round(longest / 0.85, MidpointRounding.AwayFromZero);
        Assert.That(result.CanvasSize, Is.EqualTo(canvas));
        double scale = (double)Size / canvas;
        double offsetX = (canvas - w) / 2, offsetY = (canvas - h) / 2;

        var planar = result.Image.AsSpan<float>();
        double area = 0, sumX = 0, sumY = 0;
        for (var y = 0; y < Size; y++)
        {
            for (var x = 0; x < Size; x++)
            {
                var c = Coverage(planar, x, y);
                area += c;
                sumX += c * x;
                sumY += c * y;
                // Red stays 1: the object is red and the background white.
                Assert.That(planar[y * Size + x], Is.EqualTo(1f).Within(1e-5f));
            }
        }
        // Area w·h·scale², centroid at the box centre (pixel centres are at index + 0.5).
        Assert.That(area, Is.EqualTo(w * h * scale * scale).Within(0.01 * w * h * scale * scale));
        Assert.That(sumX / area, Is.EqualTo((offsetX + w / 2.0) * scale - 0.5).Within(0.02));
        Assert.That(sumY / area, Is.EqualTo((offsetY + h / 2.0) * scale - 0.5).Within(0.02));

        // The longest side fills the foreground ratio of the output (to the canvas' integer rounding).
        var middleRow = (int)((offsetY + h / 2.0) * scale);
        var middleColumn = (int)((offsetX + w / 2.0) * scale);
        double rowExtent = 0, columnExtent = 0;
        for (var i = 0; i < Size; i++)
        {
            rowExtent += Coverage(planar, i, middleRow);
            columnExtent += Coverage(planar, middleColumn, i);
        }
        // (Measured across the middle, so only where the object is several output pixels thick both ways.)
        if (h * scale >= 6 && w * scale >= 6)
        {
            // (0.1 px: upscaling is interpolation, whose clamped overshoot does not conserve sums exactly.)
            Assert.That(rowExtent, Is.EqualTo(w * scale).Within(0.1));
            Assert.That(columnExtent, Is.EqualTo(h * scale).Within(0.1));
            Assert.That(Math.Max(rowExtent, columnExtent), Is.EqualTo(0.85 * Size).Within(0.5));
        }

        // Far from the object everything is white.
        Assert.That(Coverage(planar, 0, 0), Is.LessThan(1e-6f));
        Assert.That(Coverage(planar, Size - 1, Size - 1), Is.LessThan(1e-6f));
    }

    [TestCase(60, 40)]
    [TestCase(40, 60)]
    public void TwoOneAxisPassesEqualOneResizeOfTheWholeCanvas(int w, int h)
    {
        using var image = RedRectangle(100, 90, 13, 17, w, h, alpha: 0.75f);
        using var result = Preprocessor(0.7).Process(_backend, image);
        var canvas = result.CanvasSize;
        int offsetX = (canvas - w) / 2, offsetY = (canvas - h) / 2;
        // The whole white canvas with the composited box, resized in one call.
        using var full = Tensor.Empty([3, canvas, canvas]);
        var values = full.AsSpan<float>();
        values.Fill(1f);
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                var at = (offsetY + y) * canvas + offsetX + x;
                values[at] = 1f;                                   // red: 1·0.75 + 0.25
                values[canvas * canvas + at] = 0.25f;              // green: 0·0.75 + 0.25
                values[2 * canvas * canvas + at] = 0.25f;
            }
        }
        using var expected = Tensor.Empty([3, Size, Size]);
        _backend.Resize(expected, full, ResizeMode.Bicubic, -0.5f, antialias: true);
        var reference = expected.AsSpan<float>();
        for (var i = 0; i < reference.Length; i++)
        {
            reference[i] = Math.Clamp(reference[i], 0f, 1f);
        }
        Assert.That(Compare.RelativeError(result.Image.AsSpan<float>(), reference), Is.LessThan(1e-6));
    }

    [Test]
    public void SemiTransparentPixelsAreCompositedOnWhite()
    {
        using var image = RedRectangle(64, 64, 0, 0, 64, 64, alpha: 0.5f);
        using var result = Preprocessor(1.0).Process(_backend, image);
        var planar = result.Image.AsSpan<float>();
        // Red (1, 0, 0) at alpha 0.5 over white: (1, 0.5, 0.5) everywhere (the canvas is the image itself).
        Assert.That(planar[32 * Size + 32], Is.EqualTo(1f).Within(1e-6f));
        Assert.That(planar[Size * Size + 32 * Size + 32], Is.EqualTo(0.5f).Within(1e-6f));
        Assert.That(planar[2 * Size * Size + 5 * Size + 60], Is.EqualTo(0.5f).Within(1e-6f));
    }

    // A plain grey background (with a little deterministic noise) and a blue disk of radius 15 at (40, 30).
    private static Image DiskOnPlainBackground(bool withOpaqueAlpha)
    {
        const int width = 96, height = 64;
        var random = new Random(5);
        var rgba = new float[width * height * 4];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = 4 * (y * width + x);
                var inside = (x - 40) * (x - 40) + (y - 30) * (y - 30) <= 15 * 15;
                for (var c = 0; c < 3; c++)
                {
                    rgba[i + c] = inside ? (c == 2 ? 0.9f : 0.1f) : 0.8f + (float)(random.NextDouble() - 0.5) * 0.04f;
                }
                rgba[i + 3] = 1f;
            }
        }
        return Image.FromRgba(rgba, width, height, hasAlpha: withOpaqueAlpha);
    }

    [TestCase(false, "no alpha channel")]
    [TestCase(true, "opaque everywhere")]
    public void BackgroundIsEstimatedWithAWarning(bool opaqueAlpha, string why)
    {
        using var image = DiskOnPlainBackground(opaqueAlpha);
        using var result = Preprocessor().Process(_backend, image);
        Assert.That(result.BackgroundEstimated, Is.True);
        Assert.That(result.Foreground, Is.EqualTo(new PixelBox(25, 15, 31, 31)));
        Assert.That(result.Warnings, Has.Count.EqualTo(1));
        Assert.That(result.Warnings[0], Does.Contain(why).And.Contain("flood fill").And.Contain("plain backgrounds"));
        // The estimated background became white: the output corners are white, the centre blue.
        var planar = result.Image.AsSpan<float>();
        Assert.That(planar[0], Is.EqualTo(1f).Within(1e-6f));
        Assert.That(planar[2 * Size * Size + 32 * Size + 32], Is.EqualTo(0.9f).Within(1e-3f));
        Assert.That(planar[32 * Size + 32], Is.EqualTo(0.1f).Within(1e-3f));
    }

    [Test]
    public void FloodFillStopsAtTheObjectAndKeepsEnclosedBackground()
    {
        // A white-ish frame enclosing a patch of background colour: the fill cannot reach the enclosed patch.
        const int width = 20, height = 20;
        var pixels = new float[width * height * 4];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var ring = Math.Max(Math.Abs(x - 10), Math.Abs(y - 10)) is 4 or 5;
                var i = 4 * (y * width + x);
                pixels[i] = pixels[i + 1] = pixels[i + 2] = ring ? 0f : 0.5f;
                pixels[i + 3] = 1f;
            }
        }
        var (mask, border) = ImagePreprocessor.EstimateForeground(pixels, width, height, 0.1f);
        Assert.That(border, Is.EqualTo((0.5f, 0.5f, 0.5f)));
        Assert.That(mask[0], Is.EqualTo(0), "corner is background");
        Assert.That(mask[10 * width + 10], Is.EqualTo(1), "the enclosed centre is kept");
        Assert.That(mask[10 * width + 5], Is.EqualTo(1), "the ring is foreground");
        Assert.That(mask.Count(m => m == 1), Is.EqualTo(11 * 11));
    }

    [Test]
    public void BadImagesGiveClearErrors()
    {
        using var tiny = Image.FromRgba(new float[4 * 4 * 4], 4, 4, name: "tiny.png");
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => Preprocessor().Process(_backend, tiny))!.Message,
            Does.Contain("tiny.png").And.Contain("4×4"));
        using var transparent = Image.FromRgba(new float[16 * 16 * 4], 16, 16, name: "empty.png");
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => Preprocessor().Process(_backend, transparent))!.Message,
            Does.Contain("empty.png").And.Contain("no object"));
        var grey = Enumerable.Repeat(0.5f, 16 * 16 * 3).ToArray();
        using var uniform = Image.FromRgb(grey, 16, 16, name: "uniform.jpg");
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => Preprocessor().Process(_backend, uniform))!.Message,
            Does.Contain("uniform.jpg").And.Contain("background"));
        Assert.Throws<LrmInvalidArgumentException>(() => Preprocessor(1.5));
        Assert.Throws<LrmInvalidArgumentException>(() => Preprocessor(0));
    }
}
