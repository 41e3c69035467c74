namespace LrmNative.Training;

/// <summary>
/// A perceptual image loss with its gradient (LPIPS, the paper's λ = 2 term), pluggable: the training step calls it on
/// each view's rendered and target patches only when one is configured (<see cref="LrmLossOptions.Perceptual"/>).
/// </summary>
internal interface IPerceptualLoss : IDisposable
{
    /// <summary>Short name for logs, e.g. "lpips-alex".</summary>
    string Name { get; }

    /// <summary>Smallest image side the network accepts (LPIPS-AlexNet: 31).</summary>
    int MinimumImageSize { get; }

    /// <summary>
    /// Loss between <paramref name="prediction"/> and <paramref name="target"/>, host images (B, H, W, 3) in [0, 1]
    /// (the mean over the B images); writes (or with <paramref name="accumulate"/> adds) weight·∂loss/∂prediction into
    /// <paramref name="gradient"/> when given.
    /// </summary>
    double Evaluate(Tensor? gradient, Tensor prediction, Tensor target, float weight, bool accumulate);
}

/// <summary>Where the LPIPS term comes from: a network weights file the user supplies, or nowhere (off).</summary>
internal static class PerceptualLoss
{
    /// <summary>The LPIPS weight λ of LRM's loss (paper §3.3).</summary>
    public const float PaperWeight = 2f;

    /// <summary>Said once at the start of training when no LPIPS weights are given.</summary>
    public const string UnavailableMessage =
        "LPIPS is off: its network weights (torchvision's AlexNet features plus the LPIPS v0.1 linear heads) do not ship with LrmNative "
        + "and cannot be fetched offline; training uses MSE (and the configured TV/mask/SSIM terms) only. "
        + "Give --lpips-weights FILE.safetensors (converted once from torchvision and lpips, docs/training.md \"LPIPS\") to add the paper's perceptual term.";

    /// <summary>
    /// The LPIPS-AlexNet loss of the weights file <paramref name="weightsPath"/> (<see cref="Lpips.Load"/>: tensor names,
    /// shapes and checks there), or null when none is given (then training runs without it and says so with
    /// <see cref="UnavailableMessage"/>). A missing or invalid file is an <see cref="LrmFormatException"/> naming the file
    /// and tensor. The caller disposes the result.
    /// </summary>
    public static IPerceptualLoss? Open(string? weightsPath) => string.IsNullOrEmpty(weightsPath) ? null : Lpips.Load(weightsPath);
}
