namespace LrmNative.IO;

/// <summary>
/// The sRGB transfer function (IEC 61966-2-1), between the sRGB-encoded values of images and <see cref="Mesh"/> colours
/// (what the NeRF was trained to output: pixel values / 255) and the linear values glTF 2.0 stores in COLOR_0 and
/// baseColorFactor ("linear multipliers", glTF 2.0 §3.7.2.1 and §3.9.2).
/// </summary>
internal static class SrgbTransfer
{
    /// <summary>sRGB-encoded value in [0, 1] → linear (exact piecewise curve, not a 2.2 gamma).</summary>
    public static double ToLinear(double encoded) =>
        encoded <= 0.04045 ? encoded / 12.92 : Math.Pow((encoded + 0.055) / 1.055, 2.4);

    /// <summary>Linear value → sRGB-encoded, clamped to [0, 1].</summary>
    public static double ToSrgb(double linear)
    {
        var clamped = Math.Clamp(linear, 0, 1);
        return clamped <= 0.0031308 ? 12.92 * clamped : 1.055 * Math.Pow(clamped, 1 / 2.4) - 0.055;
    }
}
