using System.Text;
using LrmNative.Interop;

namespace LrmNative;

/// <summary>
/// Limits checked from an image file's header before anything is decoded, so that a small file claiming a
/// huge size (a decompression bomb) is refused at once with a clear message.
/// </summary>
public sealed record ImageLimits
{
    /// <summary>16384 pixels per side and 64 Mpx (8192 × 8192) in all.</summary>
    public static ImageLimits Default { get; } = new();

    /// <summary>Largest width or height accepted, in pixels (default 16384).</summary>
    public long MaxSide { get; init; } = NativeMethods.LRM_IMAGE_DEFAULT_MAX_SIDE;

    /// <summary>Largest width × height accepted (default 67,108,864 = 64 Mpx).</summary>
    public long MaxPixels { get; init; } = NativeMethods.LRM_IMAGE_DEFAULT_MAX_PIXELS;
}

/// <summary>
/// An RGBA image in memory: fp32 values in [0, 1], row-major (height, width, 4). Loads PNG (8/16-bit grey,
/// grey+alpha, RGB, RGBA, palette with tRNS, interlaced) and JPEG (baseline, progressive, greyscale, CMYK)
/// through libpng and libjpeg-turbo, and saves 8-bit PNG. A file's EXIF orientation (JPEG APP1, PNG eXIf: how a
/// phone stores a portrait photo) is applied, so the pixels are upright as a viewer shows them
/// (<see cref="ExifOrientation"/>; pass applyExifOrientation: false for the stored layout). Colour values are taken
/// as stored (no colour management). A corrupt, truncated or over-sized file raises <see cref="LrmFormatException"/>
/// naming the file. Dispose frees the pixels.
/// </summary>
/// <example>
/// <code>
/// using var image = Image.Load("chair.png");
/// Console.WriteLine($"{image.Width}×{image.Height}, alpha: {image.HasAlpha}");
/// image.SavePng("copy.png");
/// </code>
/// </example>
public sealed unsafe class Image : IDisposable
{
    private readonly Tensor _pixels;

    private Image(Tensor pixels, bool hasAlpha, string source, int exifOrientation = 1)
    {
        _pixels = pixels;
        HasAlpha = hasAlpha;
        Source = source;
        ExifOrientation = exifOrientation;
    }

    /// <summary>
    /// The EXIF orientation tag (0x0112) the file carried, 1 when it had none or it was unreadable: 1 stored upright;
    /// 2 mirrored left-right; 3 turned 180°; 4 mirrored top-bottom; 5 transposed; 6 to be turned 90° clockwise;
    /// 7 transversed; 8 to be turned 90° counter-clockwise (phones store portrait photos as 6 or 8).
    /// <see cref="Load"/> and <see cref="Decode"/> have already turned the pixels upright unless told not to.
    /// </summary>
    public int ExifOrientation { get; }

    /// <summary>Width in pixels.</summary>
    public int Width => (int)_pixels.Size(1);

    /// <summary>Height in pixels.</summary>
    public int Height => (int)_pixels.Size(0);

    /// <summary>
    /// True if the source had transparency (an alpha channel or a PNG tRNS chunk). Without it the alpha channel of
    /// <see cref="Pixels"/> is 1 everywhere.
    /// </summary>
    public bool HasAlpha { get; }

    /// <summary>Where the image came from (the file path, or a name given to <see cref="Decode"/>), for messages.</summary>
    public string Source { get; }

    /// <summary>The pixels as a host tensor (height, width, 4) fp32, RGBA in [0, 1]; owned by the image.</summary>
    public Tensor Pixels
    {
        get
        {
            ObjectDisposedException.ThrowIf(_pixels.IsDisposed, this);
            return _pixels;
        }
    }

    /// <summary>
    /// Reads and decodes a PNG or JPEG file (the format is recognised from its first bytes), turned upright by its EXIF
    /// orientation unless <paramref name="applyExifOrientation"/> is false.
    /// </summary>
    /// <exception cref="LrmFormatException">The file is missing, unreadable, not PNG/JPEG, corrupt, truncated or over <paramref name="limits"/>.</exception>
    public static Image Load(string path, ImageLimits? limits = null, bool applyExifOrientation = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Decode(ReadFile(path, null, out _), path, limits, applyExifOrientation);
    }

    /// <summary>
    /// Bytes of a file's start that <see cref="ReadSize"/> reads first: a PNG's IHDR and the chunks before its pixels, or
    /// a JPEG's markers up to its frame header, fit unless large metadata (an ICC profile, an EXIF thumbnail) comes first.
    /// </summary>
    private const int HeaderBytes = 1 << 16;

    /// <summary>
    /// The stored width and height of a PNG or JPEG file (before any EXIF orientation: the size
    /// <c>Load(path, applyExifOrientation: false)</c> gives), from its header alone: its first 64 KiB are read, the
    /// whole file only when the header runs past them; the pixels are not decoded. Limits as <see cref="Load"/>.
    /// </summary>
    /// <exception cref="LrmFormatException">The file is missing, unreadable, not PNG/JPEG, its header corrupt or truncated, or over <paramref name="limits"/>.</exception>
    internal static (int Width, int Height) ReadSize(string path, ImageLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        limits ??= ImageLimits.Default;
        var nameBytes = Utf8z(path);
        var start = ReadFile(path, HeaderBytes, out var complete);
        (long Height, long Width, bool HasAlpha) header;
        try
        {
            header = Probe(start, nameBytes, limits);
        }
        catch (LrmFormatException) when (!complete)
        {
            header = Probe(ReadFile(path, null, out _), nameBytes, limits);
        }
        return ((int)header.Width, (int)header.Height);
    }

    /// <summary>The largest image file read (1 GiB; the decoders' pixel limit is far below what that holds).</summary>
    internal const long MaxFileBytes = 1L << 30;

    // The file's bytes, or only its first `prefix` bytes when given (`complete` says whether that is all of it); a missing,
    // unreadable or empty file is an LrmFormatException naming it.
    private static byte[] ReadFile(string path, int? prefix, out bool complete)
    {
        // Sized before opening: an endless device (/dev/zero) would be read until memory ran out, a named pipe would wait
        // for a writer, and a process substitution's pipe cannot be sized at all.
        var length = IO.FileLength.OfFile(path, "image file");
        if (length == 0)
        {
            throw new LrmFormatException($"{path}: the image file is empty (0 bytes; or not a regular file: a pipe or device)");
        }
        if (prefix is null && length > MaxFileBytes)
        {
            throw new LrmFormatException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{path}: {length} bytes is more than the {MaxFileBytes >> 20} MiB an image file may have"));
        }
        byte[] data;
        try
        {
            if (prefix is not { } limit)
            {
                data = File.ReadAllBytes(path);
                complete = true;
            }
            else
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
                var buffer = new byte[limit];
                var read = stream.ReadAtLeast(buffer, limit, throwOnEndOfStream: false);
                complete = read < limit || stream.ReadByte() < 0;
                data = buffer[..read];
            }
        }
        catch (Exception error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new LrmFormatException($"{path}: image file not found");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{path}: cannot read the image file: {error.Message}");
        }
        if (data.Length == 0)
        {
            throw new LrmFormatException($"{path}: the image file is empty");
        }
        return data;
    }

    /// <summary>
    /// Decodes a PNG or JPEG file held in memory, turned upright by its EXIF orientation unless
    /// <paramref name="applyExifOrientation"/> is false; <paramref name="name"/> appears in error messages.
    /// </summary>
    /// <exception cref="LrmFormatException">The data is not PNG/JPEG, corrupt, truncated or over <paramref name="limits"/>.</exception>
    public static Image Decode(ReadOnlySpan<byte> data, string? name = null, ImageLimits? limits = null, bool applyExifOrientation = true)
    {
        limits ??= ImageLimits.Default;
        var source = string.IsNullOrEmpty(name) ? "<memory>" : name;
        if (data.IsEmpty)
        {
            throw new LrmFormatException($"{source}: the image data is empty");
        }
        var nameBytes = Utf8z(source);
        var (height, width, _) = Probe(data, nameBytes, limits);
        int hasAlpha;
        fixed (byte* bytes = data)
        fixed (byte* namePointer = nameBytes)
        {
            var pixels = Tensor.Empty([height, width, 4]);
            try
            {
                NativeCheck.Check(NativeMethods.lrm_image_decode((float*)pixels.Pointer, &hasAlpha, bytes, data.Length, namePointer,
                    height, width, limits.MaxSide, limits.MaxPixels));
                var orientation = LrmNative.ExifOrientation.Read(data);
                if (applyExifOrientation && orientation != 1)
                {
                    var upright = Orient(pixels, orientation);
                    pixels.Dispose();
                    pixels = upright;
                }
                return new Image(pixels, hasAlpha != 0, source, orientation);
            }
            catch
            {
                pixels.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// An image from RGBA values (height, width, 4) row-major in [0, 1] (copied). <paramref name="hasAlpha"/> says whether
    /// the alpha values are meaningful (preprocessing uses them to find the object).
    /// </summary>
    public static Image FromRgba(ReadOnlySpan<float> rgba, int width, int height, bool hasAlpha = true, string name = "<memory>")
    {
        CheckSize(width, height);
        if (rgba.Length != (long)width * height * 4)
        {
            throw new LrmShapeException($"image: {rgba.Length} values cannot fill {width}×{height} RGBA pixels ({(long)width * height * 4} values)");
        }
        return new Image(Tensor.FromArray(rgba, height, width, 4), hasAlpha, name);
    }

    /// <summary>An image from RGB values (height, width, 3) row-major in [0, 1] (copied); alpha is 1 and <see cref="HasAlpha"/> false.</summary>
    public static Image FromRgb(ReadOnlySpan<float> rgb, int width, int height, string name = "<memory>")
    {
        CheckSize(width, height);
        var count = (long)width * height;
        if (rgb.Length != count * 3)
        {
            throw new LrmShapeException($"image: {rgb.Length} values cannot fill {width}×{height} RGB pixels ({count * 3} values)");
        }
        var pixels = Tensor.Empty([height, width, 4]);
        var span = pixels.AsSpan<float>();
        for (var i = 0; i < (int)count; i++)
        {
            span[4 * i] = rgb[3 * i];
            span[4 * i + 1] = rgb[3 * i + 1];
            span[4 * i + 2] = rgb[3 * i + 2];
            span[4 * i + 3] = 1f;
        }
        return new Image(pixels, false, name);
    }

    /// <summary>
    /// Writes an 8-bit PNG atomically (a temporary file renamed over <paramref name="path"/>; the folder is created if
    /// needed): RGBA when <paramref name="includeAlpha"/> (default: <see cref="HasAlpha"/>), else RGB. Values are
    /// clamped to [0, 1] and rounded, so saving a loaded 8-bit PNG reproduces its pixels exactly.
    /// </summary>
    /// <exception cref="LrmFormatException">The file cannot be written (the message names it and says why).</exception>
    public void SavePng(string path, bool? includeAlpha = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var pixels = Pixels;
        if (includeAlpha ?? HasAlpha)
        {
            WritePng(path, pixels);
            return;
        }
        using var rgb = Tensor.Empty([Height, Width, 3]);
        var source = pixels.AsSpan<float>();
        var target = rgb.AsSpan<float>();
        for (var i = 0; i < target.Length / 3; i++)
        {
            target[3 * i] = source[4 * i];
            target[3 * i + 1] = source[4 * i + 1];
            target[3 * i + 2] = source[4 * i + 2];
        }
        WritePng(path, rgb);
    }

    /// <summary>
    /// Writes a host fp32 tensor (height, width, 3 or 4), or (1, height, width, 3 or 4), as an 8-bit RGB/RGBA PNG,
    /// atomically; the folder is created if needed.
    /// </summary>
    internal static void WritePng(string path, Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(pixels);
        var shape = pixels.Shape;
        var rank = pixels.Rank;
        if (pixels.DataType != DataType.Float32 || rank < 3 || (rank == 4 && shape[0] != 1) || rank > 4 || (shape[^1] != 3 && shape[^1] != 4))
        {
            throw new LrmShapeException($"PNG: pixels must be a Float32 tensor (height, width, 3 or 4), got {pixels.DataType} {pixels.ShapeText}");
        }
        var full = Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full) ?? ".");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{path}: cannot create its folder: {error.Message}");
        }
        var pathBytes = Utf8z(full);
        fixed (byte* pathPointer = pathBytes)
        {
            NativeCheck.Check(NativeMethods.lrm_image_write_png(pathPointer, (float*)pixels.Pointer, shape[^3], shape[^2], shape[^1]));
        }
    }

    // The header of an encoded PNG or JPEG file: its size and whether it has alpha (lrm_image_probe); limits checked there.
    private static (long Height, long Width, bool HasAlpha) Probe(ReadOnlySpan<byte> data, byte[] nameBytes, ImageLimits limits)
    {
        long height, width;
        int hasAlpha;
        fixed (byte* bytes = data)
        fixed (byte* namePointer = nameBytes)
        {
            NativeCheck.Check(NativeMethods.lrm_image_probe(&height, &width, &hasAlpha, null, bytes, data.Length, namePointer,
                limits.MaxSide, limits.MaxPixels));
        }
        return (height, width, hasAlpha != 0);
    }

    /// <summary>A new (height', width', 4) tensor holding <paramref name="stored"/> turned upright by <paramref name="orientation"/>.</summary>
    private static Tensor Orient(Tensor stored, int orientation)
    {
        var height = (int)stored.Size(0);
        var width = (int)stored.Size(1);
        var (uprightWidth, uprightHeight) = LrmNative.ExifOrientation.UprightSize(orientation, width, height);
        var upright = Tensor.Empty([uprightHeight, uprightWidth, 4]);
        var source = (float*)stored.Pointer;
        var target = (float*)upright.Pointer;
        for (var y = 0; y < uprightHeight; y++)
        {
            for (var x = 0; x < uprightWidth; x++)
            {
                var (sx, sy) = LrmNative.ExifOrientation.StoredPixel(orientation, x, y, width, height);
                var from = source + ((long)sy * width + sx) * 4;
                var to = target + ((long)y * uprightWidth + x) * 4;
                to[0] = from[0];
                to[1] = from[1];
                to[2] = from[2];
                to[3] = from[3];
            }
        }
        return upright;
    }

    /// <summary>Frees the pixels. Safe to call twice.</summary>
    public void Dispose() => _pixels.Dispose();

    /// <summary>The source and size, e.g. "Image chair.png: 512×512 RGBA".</summary>
    public override string ToString() => $"Image {Source}: {Width}×{Height}{(HasAlpha ? " RGBA" : " RGB")}";

    private static void CheckSize(int width, int height)
    {
        if (width <= 0 || height <= 0)
        {
            throw new LrmInvalidArgumentException($"image: width and height must be > 0, got {width}×{height}");
        }
    }

    private static byte[] Utf8z(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}
