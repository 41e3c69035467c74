using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// EXIF orientation (tests/fixtures/images/make_fixtures.py: a JPEG per orientation 1–8 with a hand-built Exif block,
/// one big-endian, one cut short; PNGs with eXIf chunks): Image.Load turns the pixels upright exactly as PIL's
/// ImageOps.exif_transpose does, an independent reading of the tag, and keeps the stored layout when asked.
/// </summary>
public sealed class ImageExifOrientationTests
{
    private static readonly (string File, int Orientation)[] Cases =
    [
        ("exif1.jpg", 1), ("exif2.jpg", 2), ("exif3.jpg", 3), ("exif4.jpg", 4), ("exif5.jpg", 5), ("exif6.jpg", 6),
        ("exif7.jpg", 7), ("exif8.jpg", 8), ("exif6_bigendian.jpg", 6), ("exif_truncated.jpg", 1), ("exif6_png.png", 6),
        ("exif3_png_bigendian.png", 3),
    ];

    private static IEnumerable<TestCaseData> All() =>
        Cases.Select(c => new TestCaseData(c.File, c.Orientation).SetArgDisplayNames(c.File));

    [Test]
    public void EveryExifFixtureHasACase()
    {
        var fixtures = ImageFixtures.All(".jpg").Select(n => n + ".jpg").Concat(ImageFixtures.All(".png").Select(n => n + ".png"))
            .Where(n => n.StartsWith("exif", StringComparison.Ordinal));
        Assert.That(fixtures, Is.EquivalentTo(Cases.Select(c => c.File)));
    }

    [TestCaseSource(nameof(All))]
    public void LoadTurnsThePixelsUprightAsPilDoes(string file, int orientation)
    {
        var path = ImageFixtures.PathOf(file);
        Assert.That(ExifOrientation.Read(File.ReadAllBytes(path)), Is.EqualTo(orientation));
        using var image = Image.Load(path);
        using var expected = Npy.ReadFloat32(ImageFixtures.PathOf(Path.ChangeExtension(file, ".npy")));
        Assert.That(image.ExifOrientation, Is.EqualTo(orientation));
        Assert.That(image.Pixels.ShapeText, Is.EqualTo(expected.ShapeText));
        // JPEG: the same libjpeg-turbo decode on both sides; PNG: exact.
        var tolerance = file.EndsWith(".png", StringComparison.Ordinal) ? 1e-7f : 1f / 255f;
        var actual = image.Pixels.AsSpan<float>();
        var reference = expected.AsSpan<float>();
        var worst = 0f;
        for (var i = 0; i < actual.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(actual[i] - reference[i]));
        }
        Assert.That(worst, Is.LessThanOrEqualTo(tolerance));
    }

    [TestCaseSource(nameof(All))]
    public void TheStoredLayoutIsKeptWhenAskedAndPermutesIntoTheUprightOne(string file, int orientation)
    {
        var path = ImageFixtures.PathOf(file);
        using var stored = Image.Load(path, applyExifOrientation: false);
        using var upright = Image.Load(path);
        Assert.That(stored.ExifOrientation, Is.EqualTo(orientation));
        // The stored pixels are the file's own layout: landscape 24 × 16 (JPEG) or 13 × 7 (PNG) whatever the tag says.
        Assert.That((stored.Width, stored.Height), Is.EqualTo(file.EndsWith(".png", StringComparison.Ordinal) ? (13, 7) : (24, 16)));
        var swapped = orientation >= 5;
        Assert.That((upright.Width, upright.Height), Is.EqualTo(swapped ? (stored.Height, stored.Width) : (stored.Width, stored.Height)));
        var s = stored.Pixels.AsSpan<float>();
        var u = upright.Pixels.AsSpan<float>();
        for (var y = 0; y < upright.Height; y++)
        {
            for (var x = 0; x < upright.Width; x++)
            {
                var (sx, sy) = ExifOrientation.StoredPixel(orientation, x, y, stored.Width, stored.Height);
                for (var c = 0; c < 4; c++)
                {
                    Assert.That(u[(y * upright.Width + x) * 4 + c], Is.EqualTo(s[(sy * stored.Width + sx) * 4 + c]), $"({x}, {y}) channel {c}");
                }
            }
        }
    }

    [Test]
    public void TheEightOrientationsAreTheDihedralGroupOfTheRectangle()
    {
        // An independent statement of the EXIF table: the upright image's corners (top-left, top-right, bottom-left) come
        // from these stored corners (TL, TR, BL, BR), as in the EXIF 2.32 specification's figure for tag 0x0112.
        var corners = new Dictionary<int, string>
        {
            [1] = "TL TR BL", [2] = "TR TL BR", [3] = "BR BL TR", [4] = "BL BR TL",
            [5] = "TL BL TR", [6] = "BL TL BR", [7] = "BR TR BL", [8] = "TR BR TL",
        };
        const int width = 5, height = 3;
        string Name(int x, int y) => (y == 0 ? "T" : "B") + (x == 0 ? "L" : "R");
        foreach (var (orientation, expected) in corners)
        {
            var (w, h) = ExifOrientation.UprightSize(orientation, width, height);
            var tl = ExifOrientation.StoredPixel(orientation, 0, 0, width, height);
            var tr = ExifOrientation.StoredPixel(orientation, w - 1, 0, width, height);
            var bl = ExifOrientation.StoredPixel(orientation, 0, h - 1, width, height);
            Assert.That($"{Name(tl.X, tl.Y)} {Name(tr.X, tr.Y)} {Name(bl.X, bl.Y)}", Is.EqualTo(expected), $"orientation {orientation}");
        }
    }

    [Test]
    public void DamagedOrAbsentMetadataReadsAsUpright()
    {
        var jpeg = File.ReadAllBytes(ImageFixtures.PathOf("exif6.jpg"));
        Assert.That(ExifOrientation.Read(jpeg), Is.EqualTo(6));
        // Every prefix of the file (a truncated download): the reader never throws; it says 1 until the whole APP1
        // segment is there and 6 from then on.
        var app1 = jpeg.AsSpan().IndexOf(new byte[] { 0xFF, 0xE1 });
        var app1End = app1 + 2 + ((jpeg[app1 + 2] << 8) | jpeg[app1 + 3]);
        for (var length = 0; length < jpeg.Length; length++)
        {
            Assert.That(ExifOrientation.Read(jpeg.AsSpan(0, length)), Is.EqualTo(length >= app1End ? 6 : 1), $"prefix of {length} bytes");
        }
        // An out-of-range value counts as 1, and so does a file without metadata or one that is not an image.
        var outOfRange = (byte[])jpeg.Clone();
        var tag = outOfRange.AsSpan().IndexOf(new byte[] { 0x12, 0x01, 0x03, 0x00 });
        Assert.That(tag, Is.GreaterThan(0), "little-endian Orientation entry");
        outOfRange[tag + 8] = 9;
        Assert.That(ExifOrientation.Read(outOfRange), Is.EqualTo(1));
        using (var image = Image.Decode(outOfRange, "out-of-range.jpg"))
        {
            Assert.That((image.Width, image.Height, image.ExifOrientation), Is.EqualTo((24, 16, 1)));
        }
        Assert.That(ExifOrientation.Read(File.ReadAllBytes(ImageFixtures.PathOf("rgba8.png"))), Is.EqualTo(1));
        Assert.That(ExifOrientation.Read(File.ReadAllBytes(ImageFixtures.PathOf("rgb_baseline.jpg"))), Is.EqualTo(1));
        Assert.That(ExifOrientation.Read("hello"u8), Is.EqualTo(1));
    }
}

/// <summary>A photo stored sideways with an EXIF orientation reconstructs exactly as its upright twin.</summary>
public sealed class ReconstructExifOrientationTests
{
    [Test]
    public void APhotoStoredSidewaysReconstructsAsItsUprightTwin()
    {
        var folder = ImageFixtures.TemporaryFolder();
        try
        {
            using var upright = Image.Load(Golden.ExampleImagePath);
            // Store the example as a phone would a portrait shot: pixels turned 90° counter-clockwise, orientation 6
            // ("turn 90° clockwise to view") in an eXIf chunk written after IHDR.
            var (w, h) = (upright.Width, upright.Height);
            var stored = new float[w * h * 4];
            var source = upright.Pixels.AsSpan<float>();
            // Stored is h wide and w high; upright (x, y) comes from stored (y, h - 1 - x).
            for (var y = 0; y < h; y++)
            {
                for (var x = 0; x < w; x++)
                {
                    var (sx, sy) = ExifOrientation.StoredPixel(6, x, y, h, w);
                    source.Slice((y * w + x) * 4, 4).CopyTo(stored.AsSpan((sy * h + sx) * 4, 4));
                }
            }
            var plain = Path.Combine(folder, "sideways-plain.png");
            using (var sideways = Image.FromRgba(stored, h, w, hasAlpha: true))
            {
                sideways.SavePng(plain);
            }
            var tagged = Path.Combine(folder, "sideways.png");
            File.WriteAllBytes(tagged, WithExifChunk(File.ReadAllBytes(plain), orientation: 6));

            using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
            using var expected = lrm.Reconstruct(Golden.ExampleImagePath);
            using var turned = lrm.Reconstruct(tagged);
            using var ignored = lrm.Reconstruct(plain);
            Assert.That(turned.GetTriplane(), Is.EqualTo(expected.GetTriplane()), "the sideways photo, turned upright");
            Assert.That(ignored.GetTriplane(), Is.Not.EqualTo(expected.GetTriplane()), "without the tag the same pixels are another input");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The PNG with an eXIf chunk (little-endian TIFF, IFD0 = one Orientation entry) inserted after IHDR.</summary>
    private static byte[] WithExifChunk(byte[] png, int orientation)
    {
        byte[] tiff = [(byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte)orientation, 0, 0, 0, 0, 0, 0, 0];
        var chunk = new byte[12 + tiff.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)tiff.Length);
        "eXIf"u8.CopyTo(chunk.AsSpan(4));
        tiff.CopyTo(chunk.AsSpan(8));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + tiff.Length), ImageFixtures.Crc32(chunk.AsSpan(4, 4 + tiff.Length)));
        const int afterIhdr = 8 + 12 + 13;
        return [.. png.AsSpan(0, afterIhdr), .. chunk, .. png.AsSpan(afterIhdr)];
    }
}
