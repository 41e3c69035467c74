using System.Buffers.Binary;
using System.Text;
using LrmNative.Interop;

namespace LrmNative.Tests;

/// <summary>
/// Corrupt, truncated, lying and over-sized image files: each gives one <see cref="LrmFormatException"/> naming the
/// file, never a crash; decompression bombs are refused from the header alone.
/// </summary>
[TestFixture]
public sealed unsafe class ImageBadInputTests
{
    private const string Name = "suspect-file.img";

    private static byte[] Fixture(string file) => File.ReadAllBytes(ImageFixtures.PathOf(file));

    private static LrmFormatException Refused(byte[] data, ImageLimits? limits = null)
    {
        var error = Assert.Throws<LrmFormatException>(() => Image.Decode(data, Name, limits).Dispose());
        Assert.That(error!.Message, Does.Contain(Name));
        return error;
    }

    private static byte[] Chunk(string type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), ImageFixtures.Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    // A well-formed PNG header claiming width × height RGBA8, then a few bytes of IDAT and IEND.
    private static byte[] PngClaiming(uint width, uint height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 6;
        byte[] signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10];
        return [.. signature, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00]), .. Chunk("IEND", [])];
    }

    [Test]
    public void PngDecompressionBombIsRefusedFromItsHeader()
    {
        var bomb = PngClaiming(100000, 100000);
        Assert.That(bomb.Length, Is.LessThan(100));
        var error = Refused(bomb);
        Assert.That(error.Message, Does.Contain("100000 x 100000").And.Contain("limit").And.Contain("16384"));
    }

    [Test]
    public void JpegDecompressionBombIsRefusedFromItsHeader()
    {
        var data = Fixture("rgb_baseline.jpg");
        var sof = data.AsSpan().IndexOf(new byte[] { 0xFF, 0xC0 });
        Assert.That(sof, Is.GreaterThan(0));
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(sof + 5), 65000); // height
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(sof + 7), 65000); // width
        var error = Refused(data);
        Assert.That(error.Message, Does.Contain("65000 x 65000").And.Contain("limit"));
    }

    [Test]
    public void TotalPixelLimitIsCheckedToo()
    {
        // 16000 × 16000 is within the side limit but over 64 Mpx.
        var error = Refused(PngClaiming(16000, 16000));
        Assert.That(error.Message, Does.Contain("256000000 pixels").And.Contain("67108864"));
    }

    [Test]
    public void LimitsAreConfigurable()
    {
        var data = Fixture("rgb8.png"); // 13 × 7
        Assert.That(Refused(data, new ImageLimits { MaxSide = 12 }).Message, Does.Contain("13 x 7"));
        Assert.That(Refused(data, new ImageLimits { MaxPixels = 90 }).Message, Does.Contain("91 pixels"));
        using var fits = Image.Decode(data, Name, new ImageLimits { MaxSide = 13, MaxPixels = 91 });
        Assert.That(fits.Width, Is.EqualTo(13));
    }

    [TestCase("rgba8.png")]
    [TestCase("grey16_interlaced.png")]
    [TestCase("palette8_trns.png")]
    [TestCase("rgb_baseline.jpg")]
    [TestCase("rgb_progressive.jpg")]
    [TestCase("cmyk.jpg")]
    public void EveryTruncationIsAnError(string file)
    {
        var data = Fixture(file);
        for (var length = 0; length < data.Length; length++)
        {
            var cut = data[..length];
            var error = Assert.Throws<LrmFormatException>(() => Image.Decode(cut, Name).Dispose(), $"{file} cut to {length} bytes");
            Assert.That(error!.Message, Does.Contain(Name), $"{file} cut to {length} bytes");
        }
    }

    [TestCase("rgba8.png")]
    [TestCase("grey4.png")]
    [TestCase("rgba16.png")]
    [TestCase("rgb_baseline.jpg")]
    [TestCase("rgb_progressive.jpg")]
    [TestCase("grey.jpg")]
    public void MutatedFilesNeverCrash(string file)
    {
        var original = Fixture(file);
        var random = new Random(file.Length * 7919);
        var failures = 0;
        for (var trial = 0; trial < 400; trial++)
        {
            var data = (byte[])original.Clone();
            var edits = 1 + random.Next(4);
            for (var e = 0; e < edits; e++)
            {
                data[random.Next(data.Length)] = (byte)random.Next(256);
            }
            try
            {
                using var image = Image.Decode(data, Name);
                Assert.That(image.Width * image.Height, Is.GreaterThan(0));
            }
            catch (LrmFormatException error)
            {
                Assert.That(error.Message, Does.Contain(Name));
                failures++;
            }
        }
        // PNG CRCs catch nearly every edit; JPEG entropy data often decodes to other pixels, which is fine.
        Assert.That(failures, Is.GreaterThan(0));
    }

    [Test]
    public void CorruptPngDataNamesTheProblem()
    {
        var original = Fixture("rgb8.png");
        var idat = original.AsSpan().IndexOf("IDAT"u8);
        var length = (int)BinaryPrimitives.ReadUInt32BigEndian(original.AsSpan(idat - 4));
        // Damaged compressed data: zlib notices before the chunk's CRC is read.
        var data = (byte[])original.Clone();
        data[idat + 10] ^= 0xFF;
        Assert.That(Refused(data).Message, Does.Contain("corrupt").And.Contain("PNG").And.Contain("IDAT"));
        // Intact data, wrong CRC.
        data = (byte[])original.Clone();
        data[idat + 4 + length] ^= 0x01;
        Assert.That(Refused(data).Message, Does.Contain("corrupt").And.Contain("CRC"));
    }

    [Test]
    public void NotAnImageIsRefusedWithItsFirstBytes()
    {
        var error = Refused("GIF89a and then some"u8.ToArray());
        Assert.That(error.Message, Does.Contain("not a PNG or JPEG").And.Contain("47 49 46"));
    }

    [Test]
    public void EmptyAndMissingFilesAreClearErrors()
    {
        Assert.That(Assert.Throws<LrmFormatException>(() => Image.Decode([], Name))!.Message, Does.Contain(Name).And.Contain("empty"));
        var folder = ImageFixtures.TemporaryFolder();
        try
        {
            var missing = Path.Combine(folder, "missing.png");
            Assert.That(Assert.Throws<LrmFormatException>(() => Image.Load(missing))!.Message, Does.Contain(missing).And.Contain("not found"));
            var empty = Path.Combine(folder, "empty.png");
            File.WriteAllBytes(empty, []);
            Assert.That(Assert.Throws<LrmFormatException>(() => Image.Load(empty))!.Message, Does.Contain(empty).And.Contain("empty"));
            Assert.That(Assert.Throws<LrmFormatException>(() => Image.Load(folder))!.Message, Does.Contain(folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // Image.ReadSize (the dataset reader's size check) reads the header alone: for every fixture the stored size that
    // Load without EXIF orientation gives; past the first 64 KiB when metadata before the pixels is larger; a header
    // cut short or a missing file is an error naming the file.
    [Test]
    public void ReadSizeIsTheStoredSizeFromTheHeaderAlone()
    {
        foreach (var file in ImageFixtures.All(".png").Select(n => n + ".png").Concat(ImageFixtures.All(".jpg").Select(n => n + ".jpg")))
        {
            var path = ImageFixtures.PathOf(file);
            using var image = Image.Load(path, applyExifOrientation: false);
            Assert.That(Image.ReadSize(path), Is.EqualTo((image.Width, image.Height)), file);
        }
        var folder = ImageFixtures.TemporaryFolder();
        try
        {
            var png = Fixture("rgb8.png");
            const int Signature = 8, Ihdr = 25;
            var text = new byte[100_000];
            text.AsSpan().Fill((byte)'x');
            "Comment\0"u8.CopyTo(text);
            var longHeader = Path.Combine(folder, "long-header.png");
            File.WriteAllBytes(longHeader, [.. png[..(Signature + Ihdr)], .. Chunk("tEXt", text), .. png[(Signature + Ihdr)..]]);
            Assert.That(Image.ReadSize(longHeader), Is.EqualTo((13, 7)));

            var cut = Path.Combine(folder, "cut.png");
            File.WriteAllBytes(cut, png[..20]);
            Assert.That(Assert.Throws<LrmFormatException>(() => Image.ReadSize(cut))!.Message, Does.Contain(cut).And.Contain("truncated"));
            var missing = Path.Combine(folder, "missing.png");
            Assert.That(Assert.Throws<LrmFormatException>(() => Image.ReadSize(missing))!.Message, Does.Contain(missing).And.Contain("not found"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void NativeEntryPointsValidateArguments()
    {
        var data = Fixture("rgb8.png");
        long height, width;
        var pixels = stackalloc float[13 * 7 * 4];
        fixed (byte* bytes = data)
        {
            Assert.That(NativeMethods.lrm_image_probe(null, &width, null, null, bytes, data.Length, null, 100, 100),
                Is.EqualTo(LrmStatus.InvalidArgument));
            Assert.That(NativeCheck.LastError(), Does.Contain("lrm_image_probe").And.Contain("'height'"));
            Assert.That(NativeMethods.lrm_image_probe(&height, &width, null, null, bytes, data.Length, null, 0, 100),
                Is.EqualTo(LrmStatus.InvalidArgument));
            Assert.That(NativeCheck.LastError(), Does.Contain("max_side"));
            int format;
            Assert.That(NativeMethods.lrm_image_probe(&height, &width, null, &format, bytes, data.Length, null, 100, 1000),
                Is.EqualTo(LrmStatus.Ok));
            Assert.That((height, width, (LrmImageFormat)format), Is.EqualTo((7L, 13L, LrmImageFormat.Png)));
            // The caller's size must be the file's.
            Assert.That(NativeMethods.lrm_image_decode(pixels, null, bytes, data.Length, null, 7, 12, 100, 1000),
                Is.EqualTo(LrmStatus.ShapeMismatch));
            Assert.That(NativeCheck.LastError(), Does.Contain("<memory>").And.Contain("13 x 7"));
        }
        Assert.That(NativeMethods.lrm_image_write_png(null, pixels, 7, 13, 4), Is.EqualTo(LrmStatus.InvalidArgument));
        var path = "x.png\0"u8.ToArray();
        fixed (byte* p = path)
        {
            Assert.That(NativeMethods.lrm_image_write_png(p, pixels, 7, 13, 2), Is.EqualTo(LrmStatus.InvalidArgument));
            Assert.That(NativeCheck.LastError(), Does.Contain("channels"));
        }
    }
}
