namespace LrmNative.Training;

/// <summary>
/// Linear warm-up then cosine decay (LRM appendix B: cosine schedule with 3000 warm-up steps). For update number
/// s = 1 … total:
/// <code>
///   s ≤ warmup:  lr(s) = base · s / warmup
///   s &gt; warmup:  lr(s) = min + (base − min) · ½ (1 + cos(π · p)),  p = (s − warmup) / (total − warmup), clamped to [0, 1]
/// </code>
/// The first update already moves (base/warmup, not 0); the warm-up ends exactly at base; the last update uses
/// <c>min</c>; beyond <c>total</c> the rate stays at <c>min</c>.
/// </summary>
internal sealed record LearningRateSchedule
{
    /// <summary>A schedule; every value is checked.</summary>
    public LearningRateSchedule(double baseRate, long warmupSteps, long totalSteps, double minimumRate = 0)
    {
        if (!(baseRate > 0) || !double.IsFinite(baseRate))
        {
            throw new LrmInvalidArgumentException($"learning rate must be positive and finite, got {baseRate}");
        }
        if (!(minimumRate >= 0) || minimumRate > baseRate)
        {
            throw new LrmInvalidArgumentException($"minimum learning rate must be in [0, {baseRate}], got {minimumRate}");
        }
        if (totalSteps < 1)
        {
            throw new LrmInvalidArgumentException($"total steps must be >= 1, got {totalSteps}");
        }
        if (warmupSteps < 0 || warmupSteps > totalSteps)
        {
            throw new LrmInvalidArgumentException($"warm-up steps must be in [0, {totalSteps}] (the total), got {warmupSteps}");
        }
        BaseRate = baseRate;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinimumRate = minimumRate;
    }

    /// <summary>Peak learning rate (the paper: 4e-4).</summary>
    public double BaseRate { get; }

    /// <summary>Linear warm-up length in updates (the paper: 3000).</summary>
    public long WarmupSteps { get; }

    /// <summary>Updates in the whole run; the cosine reaches <see cref="MinimumRate"/> here.</summary>
    public long TotalSteps { get; }

    /// <summary>Rate at the end of the cosine (default 0).</summary>
    public double MinimumRate { get; }

    /// <summary>The learning rate of update number <paramref name="step"/> (1-based).</summary>
    public double At(long step)
    {
        if (step < 1)
        {
            throw new LrmInvalidArgumentException($"schedule steps count from 1, got {step}");
        }
        if (WarmupSteps > 0 && step <= WarmupSteps)
        {
            return BaseRate * step / WarmupSteps;
        }
        var progress = Math.Clamp((step - WarmupSteps) / (double)Math.Max(TotalSteps - WarmupSteps, 1), 0.0, 1.0);
        return MinimumRate + (BaseRate - MinimumRate) * 0.5 * (1.0 + Math.Cos(Math.PI * progress));
    }
}
