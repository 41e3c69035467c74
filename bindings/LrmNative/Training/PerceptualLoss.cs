namespace LrmNative.Training;

/// <summary>
/// A perceptual image loss with its gradient (LPIPS, the paper's λ = 2 term), pluggable: the trainer calls it on
/// the rendered and target crops only when one is configured.
/// </summary>
internal interface IPerceptualLoss : IDisposable
{
    /// <summary>Short name for logs, e.g. "lpips-vgg".</summary>
    string Name { get; }

    /// <summary>
    /// Loss between <paramref name="prediction"/> and <paramref name="target"/>, images (B, H, W, 3) in [0, 1];
    /// writes (or with <paramref name="accumulate"/> adds) weight·∂loss/∂prediction into <paramref name="gradient"/>.
    /// </summary>
    double Evaluate(Tensor? gradient, Tensor prediction, Tensor target, float weight, bool accumulate);
}

/// <summary>Where the LPIPS term comes from: a network weights file the user supplies, or nowhere (off).</summary>
internal static class PerceptualLoss
{
    /// <summary>Said once at the start of training when no LPIPS weights are given.</summary>
    public const string UnavailableMessage =
        "LPIPS is off: its network weights (VGG-16 or AlexNet features plus the LPIPS linear heads) do not ship with LrmNative "
        + "and cannot be fetched offline; training uses MSE (and the configured TV/mask terms) only. "
        + "Give --lpips-weights FILE.safetensors to add the paper's perceptual term.";

    /// <summary>
    /// The LPIPS term of <paramref name="weightsPath"/>, or null when none is given (then training runs without it and
    /// says so with <see cref="UnavailableMessage"/>). A missing file is an <see cref="LrmFormatException"/>; a given file
    /// is refused with <see cref="LrmUnsupportedException"/> while this build has no LPIPS network (never silently ignored).
    /// </summary>
    public static IPerceptualLoss? Open(string? weightsPath)
    {
        if (string.IsNullOrEmpty(weightsPath))
        {
            return null;
        }
        if (!File.Exists(weightsPath))
        {
            throw new LrmFormatException($"{weightsPath}: LPIPS weights file not found");
        }
        throw new LrmUnsupportedException(
            $"{weightsPath}: this build cannot evaluate LPIPS networks yet (the VGG/AlexNet convolutions and their backward are not implemented); "
            + "train without --lpips-weights (MSE + TV), or plug an IPerceptualLoss implementation in");
    }
}
