using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>Where the image fixtures (tests/fixtures/images/make_fixtures.py) are copied next to the tests.</summary>
internal static class ImageFixtures
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "images");

    public static string PathOf(string file)
    {
        var path = Path.Combine(Directory, file);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"missing fixture {path}; regenerate with /usr/bin/python3 tests/fixtures/images/make_fixtures.py");
        }
        return path;
    }

    /// <summary>Every fixture file with this extension (names without extension), sorted.</summary>
    public static IEnumerable<string> All(string extension) =>
        System.IO.Directory.GetFiles(Directory, "*" + extension).Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;

    /// <summary>CRC-32 (PNG's, ISO 3309) of a chunk's type and data.</summary>
    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
            }
        }
        return ~crc;
    }

    /// <summary>A fresh empty folder under the system temp folder.</summary>
    public static string TemporaryFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "lrm-tests-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(folder);
        return folder;
    }
}

/// <summary>
/// PNG and JPEG decoding against the fixtures' expected values, and PNG encoding: every PNG variant libpng can
/// store (1/4/8/16-bit grey, grey+alpha, RGB, RGBA, palette, tRNS, Adam7, all row filters) decodes to the stored
/// samples over 2^bits − 1; JPEGs (baseline, progressive, greyscale, CMYK) agree with PIL's decode of the same
/// libjpeg-turbo files; 8-bit PNG round trips are exact; writes are atomic.
/// </summary>
[TestFixture]
public sealed class ImageCodecTests : TemporaryFolderFixture
{
    private static readonly (string Name, bool HasAlpha)[] PngCases =
    [
        ("grey1", false), ("grey4", false), ("grey8", false), ("grey16", false), ("grey8_trns", true),
        ("grey16_interlaced", false), ("greyalpha8", true), ("greyalpha16", true), ("rgb8", false), ("rgb16", false),
        ("rgb8_trns", true), ("rgba8", true), ("rgba16", true), ("rgba8_interlaced", true), ("palette4", false),
        ("palette8_trns", true),
    ];

    private static IEnumerable<TestCaseData> Pngs() =>
        PngCases.Select(c => new TestCaseData(c.Name, c.HasAlpha).SetArgDisplayNames(c.Name));

    private static IEnumerable<TestCaseData> Jpegs() =>
        new[] { "rgb_baseline", "rgb_progressive", "grey", "cmyk" }.Select(n => new TestCaseData(n).SetArgDisplayNames(n));

    private static float MaxAbsoluteDifference(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "element count");
        var worst = 0f;
        for (var i = 0; i < actual.Length; i++)
        {
            var difference = Math.Abs(actual[i] - expected[i]);
            worst = float.IsNaN(difference) ? float.PositiveInfinity : Math.Max(worst, difference);
        }
        return worst;
    }

    [Test]
    public void EveryFixtureHasACase()
    {
        // The exif* fixtures belong to ImageExifOrientationTests.
        Assert.That(ImageFixtures.All(".png").Where(n => !n.StartsWith("exif", StringComparison.Ordinal)), Is.EquivalentTo(PngCases.Select(c => c.Name)));
        Assert.That(ImageFixtures.All(".jpg").Where(n => !n.StartsWith("exif", StringComparison.Ordinal)), Is.EquivalentTo(Jpegs().Select(c => (string)c.Arguments[0]!)));
    }

    [TestCaseSource(nameof(Pngs))]
    public void PngDecodesToTheStoredSamples(string name, bool hasAlpha)
    {
        using var image = Image.Load(ImageFixtures.PathOf(name + ".png"));
        using var expected = Npy.ReadFloat32(ImageFixtures.PathOf(name + ".npy"));
        Assert.That(image.Pixels.ShapeText, Is.EqualTo(expected.ShapeText));
        Assert.That((image.Width, image.Height), Is.EqualTo((13, 7)));
        Assert.That(image.HasAlpha, Is.EqualTo(hasAlpha));
        Assert.That(MaxAbsoluteDifference(image.Pixels.AsSpan<float>(), expected.AsSpan<float>()), Is.LessThanOrEqualTo(1e-7f));
    }

    [TestCaseSource(nameof(Jpegs))]
    public void JpegAgreesWithPil(string name)
    {
        using var image = Image.Load(ImageFixtures.PathOf(name + ".jpg"));
        using var expected = Npy.ReadFloat32(ImageFixtures.PathOf(name + ".npy"));
        Assert.That(image.Pixels.ShapeText, Is.EqualTo(expected.ShapeText));
        Assert.That(image.HasAlpha, Is.False);
        // Same library (libjpeg-turbo, islow DCT, fancy upsampling); PIL's integer CMYK conversion rounds differently.
        Assert.That(MaxAbsoluteDifference(image.Pixels.AsSpan<float>(), expected.AsSpan<float>()), Is.LessThanOrEqualTo(2f / 255f));
    }

    [Test]
    public void DecodeFromMemoryEqualsLoad()
    {
        var path = ImageFixtures.PathOf("rgba16.png");
        using var loaded = Image.Load(path);
        using var decoded = Image.Decode(File.ReadAllBytes(path), "in-memory.png");
        Assert.That(decoded.Pixels.AsSpan<float>().SequenceEqual(loaded.Pixels.AsSpan<float>()), Is.True);
        Assert.That(decoded.Source, Is.EqualTo("in-memory.png"));
    }

    [TestCase("rgba8", true)]
    [TestCase("rgb8", false)]
    [TestCase("palette8_trns", true)]
    [TestCase("rgba8_interlaced", true)]
    public void EightBitPngRoundTripIsExact(string name, bool alpha)
    {
        using var original = Image.Load(ImageFixtures.PathOf(name + ".png"));
        var copy = Path.Combine(Folder, name + ".png");
        original.SavePng(copy);
        using var reloaded = Image.Load(copy);
        Assert.That(reloaded.HasAlpha, Is.EqualTo(alpha));
        Assert.That(reloaded.Pixels.AsSpan<float>().SequenceEqual(original.Pixels.AsSpan<float>()), Is.True);
        // And once more: the bytes of the second copy equal the first (the encoder is deterministic).
        var again = Path.Combine(Folder, name + "-again.png");
        reloaded.SavePng(again);
        Assert.That(File.ReadAllBytes(again), Is.EqualTo(File.ReadAllBytes(copy)));
    }

    [Test]
    public void EncoderClampsAndRoundsToNearest()
    {
        float[] rgba =
        [
            -0.5f, 1.5f, float.NaN, 0.5f,            // clamped low, clamped high, NaN → 0, 127.5 → 128
            0.4f / 255f, 1.49f / 255f, 1.51f / 255f, 1f, // 0.4 → 0, 1.49 → 1, 1.51 → 2
            254.6f / 255f, 254.4f / 255f, float.PositiveInfinity, float.NegativeInfinity,
        ];
        using var image = Image.FromRgba(rgba, 3, 1);
        var path = Path.Combine(Folder, "clamp.png");
        image.SavePng(path);
        using var decoded = Image.Load(path);
        var bytes = decoded.Pixels.AsSpan<float>().ToArray().Select(v => (int)Math.Round(v * 255)).ToArray();
        Assert.That(bytes, Is.EqualTo(new[] { 0, 255, 0, 128, 0, 1, 2, 255, 255, 254, 255, 0 }));
    }

    [Test]
    public void RgbSaveDropsAlphaAndFromRgbHasNone()
    {
        float[] rgb = [0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f];
        using var image = Image.FromRgb(rgb, 2, 1);
        Assert.That(image.HasAlpha, Is.False);
        Assert.That(image.Pixels.AsSpan<float>()[3], Is.EqualTo(1f));
        var path = Path.Combine(Folder, "rgb.png");
        image.SavePng(path);
        using var decoded = Image.Load(path);
        Assert.That(decoded.HasAlpha, Is.False);
        Assert.That(MaxAbsoluteDifference(decoded.Pixels.AsSpan<float>(), image.Pixels.AsSpan<float>()), Is.LessThanOrEqualTo(0.5f / 255f + 1e-6f));
    }

    [Test]
    public void SaveCreatesTheFolderAndLeavesNoTemporaryFiles()
    {
        using var image = Image.Load(ImageFixtures.PathOf("rgba8.png"));
        var path = Path.Combine(Folder, "a", "b", "out.png");
        image.SavePng(path);
        image.SavePng(path); // overwrite in place
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void FailedWriteNamesTheFileAndKeepsTheOldOne()
    {
        using var image = Image.Load(ImageFixtures.PathOf("rgb8.png"));
        // The target is a folder: rename cannot replace it; nothing else may be left behind.
        var target = Path.Combine(Folder, "occupied.png");
        Directory.CreateDirectory(target);
        var error = Assert.Throws<LrmFormatException>(() => image.SavePng(target));
        Assert.That(error!.Message, Does.Contain(target));
        Assert.That(Directory.Exists(target), Is.True);
        Assert.That(Directory.GetFileSystemEntries(Folder), Is.EqualTo(new[] { target }));
    }

    [Test]
    public void WriteIntoAFileAsFolderFails()
    {
        using var image = Image.Load(ImageFixtures.PathOf("rgb8.png"));
        var file = Path.Combine(Folder, "plain-file");
        File.WriteAllText(file, "x");
        var error = Assert.Throws<LrmFormatException>(() => image.SavePng(Path.Combine(file, "out.png")));
        Assert.That(error!.Message, Does.Contain("plain-file"));
    }

    [Test]
    public void FromRgbaChecksItsArguments()
    {
        Assert.Throws<LrmShapeException>(() => Image.FromRgba(new float[7], 1, 2));
        Assert.Throws<LrmInvalidArgumentException>(() => Image.FromRgba([], 0, 1));
        using var image = Image.FromRgba(new float[8], 2, 1);
        image.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = image.Pixels);
        image.Dispose(); // twice is fine
    }
}
