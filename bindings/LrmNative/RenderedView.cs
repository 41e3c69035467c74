namespace LrmNative;

/// <summary>
/// One rendered view of a reconstruction: the colour image composited on white, and per pixel the expected depth
/// (distance along the ray) and the opacity (accumulated weight Σw, 0 = empty, 1 = solid). Dispose frees the image.
/// </summary>
public sealed class RenderedView : IDisposable
{
    private readonly float[] _depth;
    private readonly float[] _opacity;

    internal RenderedView(Camera camera, Image color, float[] depth, float[] opacity)
    {
        Camera = camera;
        Color = color;
        _depth = depth;
        _opacity = opacity;
    }

    /// <summary>The camera the view was rendered from.</summary>
    public Camera Camera { get; }

    /// <summary>Width in pixels.</summary>
    public int Width => Color.Width;

    /// <summary>Height in pixels.</summary>
    public int Height => Color.Height;

    /// <summary>The colour image (RGB, no alpha), composited on white; owned by the view.</summary>
    public Image Color { get; }

    /// <summary>Expected depth per pixel (height × width, row-major), in world units along the ray.</summary>
    public ReadOnlySpan<float> Depth => _depth;

    /// <summary>Opacity per pixel (height × width, row-major) in [0, 1].</summary>
    public ReadOnlySpan<float> Opacity => _opacity;

    /// <summary>The depth as a grey image, the nearest finite depth black and the farthest white; the caller owns it.</summary>
    public Image DepthImage() => Grey(_depth, normalise: true, "depth");

    /// <summary>The opacity as a grey image (0 black, 1 white); the caller owns it.</summary>
    public Image OpacityImage() => Grey(_opacity, normalise: false, "opacity");

    /// <summary>Frees the colour image.</summary>
    public void Dispose() => Color.Dispose();

    private Image Grey(float[] values, bool normalise, string name)
    {
        float low = 0, high = 1;
        if (normalise)
        {
            low = float.PositiveInfinity;
            high = float.NegativeInfinity;
            foreach (var v in values)
            {
                if (float.IsFinite(v))
                {
                    low = Math.Min(low, v);
                    high = Math.Max(high, v);
                }
            }
            if (!(high > low))
            {
                (low, high) = (0, 1);
            }
        }
        var rgb = new float[values.Length * 3];
        for (var i = 0; i < values.Length; i++)
        {
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (values[i] - low) / (high - low);
        }
        return Image.FromRgb(rgb, Width, Height, name);
    }
}
