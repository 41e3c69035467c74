using System.Buffers.Binary;

namespace LrmNative;

/// <summary>
/// The EXIF orientation tag (0x0112) of a JPEG (APP1 "Exif" segment) or PNG (eXIf chunk), and the pixel permutation
/// it asks for. Values follow the EXIF/TIFF specification: 1 stored upright; 2 mirrored left-right; 3 turned 180°;
/// 4 mirrored top-bottom; 5 transposed; 6 to be turned 90° clockwise; 7 transversed; 8 to be turned 90° counter-clockwise.
/// Phone cameras store portrait photos as landscape pixels plus orientation 6 or 8. Metadata that is missing,
/// truncated or out of range counts as 1 (upright), as viewers treat it: it never makes an image unreadable.
/// </summary>
internal static class ExifOrientation
{
    private const ushort OrientationTag = 0x0112;
    private const ushort ShortType = 3;

    /// <summary>The orientation (1–8) stored in a PNG or JPEG file's bytes; 1 when there is none or it is unreadable.</summary>
    public static int Read(ReadOnlySpan<byte> file)
    {
        if (file.Length >= 8 && file[..8].SequenceEqual(PngSignature))
        {
            return FromPng(file);
        }
        if (file.Length >= 3 && file[0] == 0xFF && file[1] == 0xD8 && file[2] == 0xFF)
        {
            return FromJpeg(file);
        }
        return 1;
    }

    /// <summary>
    /// The upright size of an image stored as <paramref name="width"/> × <paramref name="height"/> with
    /// <paramref name="orientation"/>: orientations 5–8 swap the sides.
    /// </summary>
    public static (int Width, int Height) UprightSize(int orientation, int width, int height) =>
        orientation is >= 5 and <= 8 ? (height, width) : (width, height);

    /// <summary>
    /// Where the upright pixel (<paramref name="x"/>, <paramref name="y"/>) lies in the stored image of
    /// <paramref name="width"/> × <paramref name="height"/> (the stored sides).
    /// </summary>
    public static (int X, int Y) StoredPixel(int orientation, int x, int y, int width, int height) => orientation switch
    {
        2 => (width - 1 - x, y),
        3 => (width - 1 - x, height - 1 - y),
        4 => (x, height - 1 - y),
        5 => (y, x),
        6 => (y, height - 1 - x),
        7 => (width - 1 - y, height - 1 - x),
        8 => (width - 1 - y, x),
        _ => (x, y),
    };

    private static ReadOnlySpan<byte> PngSignature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private static int FromPng(ReadOnlySpan<byte> file)
    {
        // Chunks: length (4, big-endian), type (4), data, CRC (4). eXIf normally precedes IDAT; any position is read.
        var position = 8L;
        while (position + 8 <= file.Length)
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(file.Slice((int)position, 4));
            var type = file.Slice((int)position + 4, 4);
            var dataStart = position + 8;
            if (length > int.MaxValue || dataStart + length > file.Length)
            {
                return 1;
            }
            if (type.SequenceEqual("eXIf"u8))
            {
                return FromTiff(file.Slice((int)dataStart, (int)length));
            }
            if (type.SequenceEqual("IEND"u8))
            {
                return 1;
            }
            position = dataStart + length + 4;
        }
        return 1;
    }

    private static int FromJpeg(ReadOnlySpan<byte> file)
    {
        // Segments after SOI: 0xFF, marker, then (except standalone markers) a big-endian length that counts itself.
        var position = 2;
        while (position + 4 <= file.Length)
        {
            if (file[position] != 0xFF)
            {
                return 1;
            }
            var marker = file[position + 1];
            if (marker == 0xFF)
            {
                position++;            // fill byte
                continue;
            }
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7))
            {
                position += 2;         // standalone markers
                continue;
            }
            if (marker is 0xDA or 0xD9)
            {
                return 1;              // start of scan or end of image: metadata comes before
            }
            var length = BinaryPrimitives.ReadUInt16BigEndian(file.Slice(position + 2, 2));
            if (length < 2 || position + 2 + length > file.Length)
            {
                return 1;
            }
            var segment = file.Slice(position + 4, length - 2);
            if (marker == 0xE1 && segment.Length >= 6 && segment[..6].SequenceEqual("Exif\0\0"u8))
            {
                return FromTiff(segment[6..]);
            }
            position += 2 + length;
        }
        return 1;
    }

    /// <summary>The orientation in IFD0 of a TIFF-structured EXIF block ("II" little- or "MM" big-endian).</summary>
    private static int FromTiff(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8)
        {
            return 1;
        }
        bool little;
        if (tiff[0] == (byte)'I' && tiff[1] == (byte)'I')
        {
            little = true;
        }
        else if (tiff[0] == (byte)'M' && tiff[1] == (byte)'M')
        {
            little = false;
        }
        else
        {
            return 1;
        }
        if (U16(tiff, 2, little) != 42)
        {
            return 1;
        }
        var ifd = U32(tiff, 4, little);
        if (ifd > (uint)tiff.Length - 2)
        {
            return 1;
        }
        var entries = U16(tiff, (int)ifd, little);
        for (var i = 0; i < entries; i++)
        {
            var entry = (long)ifd + 2 + 12L * i;
            if (entry + 12 > tiff.Length)
            {
                return 1;
            }
            if (U16(tiff, (int)entry, little) != OrientationTag)
            {
                continue;
            }
            if (U16(tiff, (int)entry + 2, little) != ShortType || U32(tiff, (int)entry + 4, little) < 1)
            {
                return 1;
            }
            // A SHORT value sits left-justified in the entry's 4-byte value field, in the file's byte order.
            var value = U16(tiff, (int)entry + 8, little);
            return value is >= 1 and <= 8 ? value : 1;
        }
        return 1;
    }

    private static ushort U16(ReadOnlySpan<byte> tiff, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(tiff.Slice(at, 2)) : BinaryPrimitives.ReadUInt16BigEndian(tiff.Slice(at, 2));

    private static uint U32(ReadOnlySpan<byte> tiff, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(tiff.Slice(at, 4)) : BinaryPrimitives.ReadUInt32BigEndian(tiff.Slice(at, 4));
}
