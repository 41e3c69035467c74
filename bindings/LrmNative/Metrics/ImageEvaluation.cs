namespace LrmNative.Metrics;

/// <summary>Background an RGBA image is composited on before it is compared (RGB = rgb·α + bg·(1 − α)).</summary>
internal enum EvaluationBackground
{
    /// <summary>White, as the model renders (the default).</summary>
    White,
    /// <summary>Black.</summary>
    Black,
    /// <summary>Alpha ignored: the stored RGB as is.</summary>
    None,
}

/// <summary>PSNR and SSIM of one predicted image against its ground truth.</summary>
internal readonly record struct ImageScores(double Psnr, double Ssim);

/// <summary>Compares images the way <c>lrm eval images</c> does (docs/metrics.md): composited RGB, L = 1.</summary>
internal static class ImageEvaluation
{
    /// <summary>RGB (H, W, 3) of an image composited on the background.</summary>
    public static float[] CompositeRgb(Image image, EvaluationBackground background)
    {
        ArgumentNullException.ThrowIfNull(image);
        var pixels = image.Pixels.AsSpan<float>();
        var rgb = new float[image.Width * image.Height * 3];
        var bg = background == EvaluationBackground.Black ? 0f : 1f;
        for (var p = 0; p < rgb.Length / 3; p++)
        {
            var alpha = background == EvaluationBackground.None ? 1f : pixels[4 * p + 3];
            for (var c = 0; c < 3; c++)
            {
                rgb[3 * p + c] = pixels[4 * p + c] * alpha + bg * (1 - alpha);
            }
        }
        return rgb;
    }

    public static ImageScores Compare(Image prediction, Image target, EvaluationBackground background = EvaluationBackground.White)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        if (prediction.Width != target.Width || prediction.Height != target.Height)
        {
            throw new LrmShapeException($"{prediction.Source} is {prediction.Width}×{prediction.Height} but {target.Source} is {target.Width}×{target.Height}; images must have the same size");
        }
        var p = CompositeRgb(prediction, background);
        var g = CompositeRgb(target, background);
        return new ImageScores(ImageMetrics.Psnr(p, g), ImageMetrics.Ssim(p, g, prediction.Height, prediction.Width, 3));
    }
}
