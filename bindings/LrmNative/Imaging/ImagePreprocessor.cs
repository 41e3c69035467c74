using System.Globalization;
using LrmNative.Backends;

namespace LrmNative.Imaging;

/// <summary>Settings of <see cref="ImagePreprocessor"/>.</summary>
internal sealed record ImagePreprocessOptions
{
    /// <summary>Side of the square output, the encoder's input resolution (OpenLRM: 224/336/448).</summary>
    public required int OutputSize { get; init; }

    /// <summary>
    /// Smallest foreground ratio accepted anywhere (options, model config, <c>--foreground-ratio</c>): the object then
    /// fills a twentieth of the input, a few encoder patches; below it the canvas grows without bound (1 / ratio times
    /// the object) while the object vanishes into the white.
    /// </summary>
    public const double MinForegroundRatio = 0.05;

    /// <summary>
    /// Longest side of the object's bounding box as a fraction of the square canvas (default 0.85, at least
    /// <see cref="MinForegroundRatio"/>): the object is scaled so that it fills this much of the output, centred, with
    /// white around it.
    /// </summary>
    public double ForegroundRatio { get; init; } = 0.85;

    /// <summary>A pixel belongs to the object's bounding box when its alpha exceeds this (default half of 1/255).</summary>
    public float AlphaThreshold { get; init; } = 0.5f / 255f;

    /// <summary>
    /// Background estimate for images without alpha: a pixel reached by the flood fill from the border is background
    /// when its Euclidean RGB distance (values in [0, 1]) to the border colour is at most this (default 0.1, about 15
    /// levels of 255 on each channel).
    /// </summary>
    public float BackgroundDistance { get; init; } = 0.1f;

    /// <summary>Images narrower or lower than this are refused (default 8 pixels): nothing can be reconstructed from them.</summary>
    public int MinimumSide { get; init; } = 8;

    /// <summary>Checks every value, naming the bad one.</summary>
    public void Validate()
    {
        if (OutputSize <= 0)
        {
            throw new LrmInvalidArgumentException($"preprocess: output size must be > 0, got {OutputSize}");
        }
        if (!(ForegroundRatio >= MinForegroundRatio && ForegroundRatio <= 1))
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"preprocess: foreground ratio must be in [{MinForegroundRatio}, 1], got {ForegroundRatio}"));
        }
        if (!(AlphaThreshold >= 0 && AlphaThreshold < 1))
        {
            throw new LrmInvalidArgumentException($"preprocess: alpha threshold must be in [0, 1), got {AlphaThreshold.ToString(CultureInfo.InvariantCulture)}");
        }
        if (!(BackgroundDistance >= 0 && float.IsFinite(BackgroundDistance)))
        {
            throw new LrmInvalidArgumentException($"preprocess: background distance must be finite and >= 0, got {BackgroundDistance.ToString(CultureInfo.InvariantCulture)}");
        }
        if (MinimumSide <= 0)
        {
            throw new LrmInvalidArgumentException($"preprocess: minimum side must be > 0, got {MinimumSide}");
        }
    }
}

/// <summary>The object's bounding box in source pixels: columns [X, X + Width), rows [Y, Y + Height).</summary>
internal readonly record struct PixelBox(int X, int Y, int Width, int Height);

/// <summary>
/// The encoder input made by <see cref="ImagePreprocessor.Process"/> and how it was made. Owns <see cref="Image"/>.
/// </summary>
/// <param name="Image">(1, 3, S, S) RGB in [0, 1].</param>
/// <param name="Foreground">The object's bounding box in the source image.</param>
/// <param name="CanvasSize">Side of the square, white-padded canvas (source pixels) that was resized to S.</param>
/// <param name="BackgroundEstimated">True when the source had no usable alpha and the background was estimated.</param>
/// <param name="Warnings">Things the user should know (e.g. the background estimate), one sentence each.</param>
internal sealed record PreprocessedImage(Tensor Image, PixelBox Foreground, int CanvasSize, bool BackgroundEstimated,
    IReadOnlyList<string> Warnings) : IDisposable
{
    /// <summary>Frees the image tensor.</summary>
    public void Dispose() => Image.Dispose();
}

/// <summary>
/// Turns a photo into the encoder's input, as OpenLRM/TripoSR prepare theirs:
/// <list type="number">
/// <item>Alpha: the image's own, or for images without alpha (or whose alpha is opaque everywhere) a background
/// estimate (<see cref="EstimateForeground"/>) with a warning that it only suits plain backgrounds.</item>
/// <item>The object's bounding box: pixels with alpha &gt; <see cref="ImagePreprocessOptions.AlphaThreshold"/>.</item>
/// <item>RGB composited on white: c·α + (1 − α).</item>
/// <item>Re-centring and scale: the box is placed in the middle of a white square canvas of side
/// N = round(max(w, h) / ratio) (at least max(w, h)), at offset (⌊(N − w)/2⌋, ⌊(N − h)/2⌋), so its longest side fills
/// <see cref="ImagePreprocessOptions.ForegroundRatio"/> of it.</item>
/// <item>The canvas is resized to S × S with antialiased bicubic (a = −0.5, PIL/torch antialias=True) through
/// <see cref="IBackend.Resize"/> and clamped to [0, 1] (bicubic overshoots at sharp edges).</item>
/// </list>
/// The resize runs as two one-axis passes (the filter is separable; the other axis is resized to its own size,
/// which bicubic reproduces exactly), padding along one axis at a time, so memory stays proportional to the
/// object's box rather than to N².
/// </summary>
internal sealed class ImagePreprocessor
{
    private const float CubicA = -0.5f;

    public ImagePreprocessor(ImagePreprocessOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The settings.</summary>
    public ImagePreprocessOptions Options { get; }

    /// <summary>Image → encoder input (1, 3, S, S); the caller owns the result.</summary>
    /// <exception cref="LrmInvalidArgumentException">The image is too small or no object can be found in it.</exception>
    public PreprocessedImage Process(IBackend backend, Image image)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(image);
        int width = image.Width, height = image.Height;
        if (width < Options.MinimumSide || height < Options.MinimumSide)
        {
            throw new LrmInvalidArgumentException($"{image.Source}: the image is {width}×{height} pixels; reconstruction needs at least {Options.MinimumSide}×{Options.MinimumSide}");
        }
        var warnings = new List<string>();
        var pixels = image.Pixels.AsSpan<float>();
        byte[]? mask = null;
        var useAlpha = image.HasAlpha && !AlphaIsOpaque(pixels);
        if (!useAlpha)
        {
            var (estimate, border) = EstimateForeground(pixels, width, height, Options.BackgroundDistance);
            mask = estimate;
            var why = image.HasAlpha ? "its alpha channel is opaque everywhere" : "it has no alpha channel";
            warnings.Add(string.Create(CultureInfo.InvariantCulture,
                $"{image.Source}: {why}, so the background was estimated by a flood fill from the border (pixels within RGB distance {Options.BackgroundDistance} of the border colour ({border.R:F3}, {border.G:F3}, {border.B:F3})); this only suits plain backgrounds: for anything else, remove the background first and pass an RGBA PNG"));
        }
        var box = ForegroundBox(pixels, mask, width, height, Options.AlphaThreshold)
            ?? throw new LrmInvalidArgumentException(useAlpha
                ? $"{image.Source}: no object found: alpha is {Options.AlphaThreshold.ToString(CultureInfo.InvariantCulture)} or less everywhere"
                : $"{image.Source}: no object found: the whole image looks like background (a flood fill from the border within RGB distance {Options.BackgroundDistance.ToString(CultureInfo.InvariantCulture)} covers it)");
        var canvas = CanvasSize(image.Source, box);
        var output = Resample(backend, pixels, mask, width, box, canvas);
        return new PreprocessedImage(output, box, canvas, mask is not null, warnings);
    }

    /// <summary>
    /// Side of the square canvas for <paramref name="box"/>: round(max(w, h) / ratio), at least max(w, h), computed in
    /// 64 bits. Its largest buffers (3 channels × canvas × the box's shorter side or the output size) must fit a host
    /// tensor; past that the error names the image and the ratio (a larger ratio or a smaller image fixes it).
    /// </summary>
    internal int CanvasSize(string source, PixelBox box)
    {
        long longest = Math.Max(box.Width, box.Height);
        long across = Math.Max(Math.Min(box.Width, box.Height), Options.OutputSize);
        var scaled = Math.Round(longest / Options.ForegroundRatio, MidpointRounding.AwayFromZero);
        var limit = Tensor.MaxHostElements / (3 * across);
        if (!(scaled <= limit))
        {
            throw new LrmInvalidArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{source}: a foreground ratio of {Options.ForegroundRatio} puts the {box.Width}×{box.Height}-pixel object on a {scaled:F0}-pixel square canvas, too large to resample (at most {limit} pixels here); use a ratio nearer 1 or a smaller image"));
        }
        // limit < 2³¹ / 3, so the canvas fits an int.
        return (int)Math.Max(longest, (long)scaled);
    }

    /// <summary>
    /// Background estimate for images without alpha, documented behaviour: the border colour is the per-channel median
    /// of the image's border pixels; a 4-connected flood fill starts from every border pixel within
    /// <paramref name="distance"/> (Euclidean, RGB in [0, 1]) of it and spreads to neighbours that are also within that
    /// distance of the border colour (not of each other, so it cannot creep along a soft gradient into the object).
    /// Returns a mask, 1 = foreground, and the border colour.
    /// </summary>
    internal static (byte[] Mask, (float R, float G, float B) Border) EstimateForeground(ReadOnlySpan<float> pixels, int width, int height, float distance)
    {
        var border = BorderColor(pixels, width, height);
        var limit = distance * distance;
        var count = width * height;
        var mask = new byte[count];
        Array.Fill(mask, (byte)1);
        var queue = new int[count];
        int head = 0, tail = 0;
        bool IsBackground(ReadOnlySpan<float> p, int index)
        {
            float dr = p[4 * index] - border.R, dg = p[4 * index + 1] - border.G, db = p[4 * index + 2] - border.B;
            return dr * dr + dg * dg + db * db <= limit;
        }
        void Seed(ReadOnlySpan<float> p, int index, byte[] m, int[] q, ref int t)
        {
            if (m[index] == 1 && IsBackground(p, index))
            {
                m[index] = 0;
                q[t++] = index;
            }
        }
        for (var x = 0; x < width; x++)
        {
            Seed(pixels, x, mask, queue, ref tail);
            Seed(pixels, (height - 1) * width + x, mask, queue, ref tail);
        }
        for (var y = 0; y < height; y++)
        {
            Seed(pixels, y * width, mask, queue, ref tail);
            Seed(pixels, y * width + width - 1, mask, queue, ref tail);
        }
        while (head < tail)
        {
            var index = queue[head++];
            int x = index % width, y = index / width;
            if (x > 0)
            {
                Seed(pixels, index - 1, mask, queue, ref tail);
            }
            if (x < width - 1)
            {
                Seed(pixels, index + 1, mask, queue, ref tail);
            }
            if (y > 0)
            {
                Seed(pixels, index - width, mask, queue, ref tail);
            }
            if (y < height - 1)
            {
                Seed(pixels, index + width, mask, queue, ref tail);
            }
        }
        return (mask, border);
    }

    // Per-channel median of the pixels on the image's four edges.
    private static (float R, float G, float B) BorderColor(ReadOnlySpan<float> pixels, int width, int height)
    {
        var indices = new List<int>(2 * (width + height));
        for (var x = 0; x < width; x++)
        {
            indices.Add(x);
            if (height > 1)
            {
                indices.Add((height - 1) * width + x);
            }
        }
        for (var y = 1; y < height - 1; y++)
        {
            indices.Add(y * width);
            if (width > 1)
            {
                indices.Add(y * width + width - 1);
            }
        }
        var values = new float[indices.Count];
        var median = new float[3];
        for (var c = 0; c < 3; c++)
        {
            for (var i = 0; i < indices.Count; i++)
            {
                values[i] = pixels[4 * indices[i] + c];
            }
            Array.Sort(values);
            median[c] = values[values.Length / 2];
        }
        return (median[0], median[1], median[2]);
    }

    private static bool AlphaIsOpaque(ReadOnlySpan<float> pixels)
    {
        for (var i = 3; i < pixels.Length; i += 4)
        {
            if (pixels[i] < 1f)
            {
                return false;
            }
        }
        return true;
    }

    // Bounding box of alpha > threshold (or mask = 1), null if empty.
    private static PixelBox? ForegroundBox(ReadOnlySpan<float> pixels, byte[]? mask, int width, int height, float threshold)
    {
        int minX = width, minY = height, maxX = -1, maxY = -1;
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var index = y * width + x;
                var inside = mask is null ? pixels[4 * index + 3] > threshold : mask[index] != 0;
                if (inside)
                {
                    minX = Math.Min(minX, x);
                    maxX = Math.Max(maxX, x);
                    minY = Math.Min(minY, y);
                    maxY = Math.Max(maxY, y);
                }
            }
        }
        return maxX < 0 ? null : new PixelBox(minX, minY, maxX - minX + 1, maxY - minY + 1);
    }

    // Composites the box on white, pads it to the N×N canvas one axis at a time and resizes to S×S.
    private Tensor Resample(IBackend backend, ReadOnlySpan<float> pixels, byte[]? mask, int width, PixelBox box, int canvas)
    {
        var size = Options.OutputSize;
        int offsetX = (canvas - box.Width) / 2, offsetY = (canvas - box.Height) / 2;
        var output = Tensor.Empty([1, 3, size, size]);
        try
        {
            // Pad and resize along the box's longer axis first: the first buffer is then canvas × shorter side.
            if (box.Height >= box.Width)
            {
                using var tall = Tensor.Empty([3, canvas, box.Width]);
                FillWhite(tall);
                Composite(tall.AsSpan<float>(), canvas, box.Width, offsetY, 0, pixels, mask, width, box);
                using var rows = Tensor.Empty([3, size, box.Width]);
                backend.Resize(rows, tall, ResizeMode.Bicubic, CubicA, antialias: true);
                using var wide = Tensor.Empty([1, 3, size, canvas]);
                FillWhite(wide);
                CopyBlock(wide.AsSpan<float>(), size, canvas, 0, offsetX, rows.AsSpan<float>(), size, box.Width);
                backend.Resize(output, wide, ResizeMode.Bicubic, CubicA, antialias: true);
            }
            else
            {
                using var wide = Tensor.Empty([3, box.Height, canvas]);
                FillWhite(wide);
                Composite(wide.AsSpan<float>(), box.Height, canvas, 0, offsetX, pixels, mask, width, box);
                using var columns = Tensor.Empty([3, box.Height, size]);
                backend.Resize(columns, wide, ResizeMode.Bicubic, CubicA, antialias: true);
                using var tall = Tensor.Empty([1, 3, canvas, size]);
                FillWhite(tall);
                CopyBlock(tall.AsSpan<float>(), canvas, size, offsetY, 0, columns.AsSpan<float>(), box.Height, size);
                backend.Resize(output, tall, ResizeMode.Bicubic, CubicA, antialias: true);
            }
            var values = output.AsSpan<float>();
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = Math.Clamp(values[i], 0f, 1f);
            }
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    private static void FillWhite(Tensor tensor) => tensor.AsSpan<float>().Fill(1f);

    // Writes the box's pixels composited on white, planar (3, rows, columns), at (top, left) of target.
    private static void Composite(Span<float> target, int rows, int columns, int top, int left, ReadOnlySpan<float> pixels,
        byte[]? mask, int width, PixelBox box)
    {
        var plane = rows * columns;
        for (var y = 0; y < box.Height; y++)
        {
            for (var x = 0; x < box.Width; x++)
            {
                var index = (box.Y + y) * width + box.X + x;
                var alpha = mask is null ? Math.Clamp(pixels[4 * index + 3], 0f, 1f) : mask[index];
                var at = (top + y) * columns + left + x;
                for (var c = 0; c < 3; c++)
                {
                    target[c * plane + at] = pixels[4 * index + c] * alpha + (1f - alpha);
                }
            }
        }
    }

    // Copies planar source (3, sourceRows, sourceColumns) into planar target (3, rows, columns) at (top, left).
    private static void CopyBlock(Span<float> target, int rows, int columns, int top, int left, ReadOnlySpan<float> source,
        int sourceRows, int sourceColumns)
    {
        for (var c = 0; c < 3; c++)
        {
            for (var y = 0; y < sourceRows; y++)
            {
                source.Slice((c * sourceRows + y) * sourceColumns, sourceColumns)
                    .CopyTo(target.Slice((c * rows + top + y) * columns + left, sourceColumns));
            }
        }
    }
}
