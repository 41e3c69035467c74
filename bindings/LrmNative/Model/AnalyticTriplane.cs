namespace LrmNative.Model;

/// <summary>
/// A triplane and NeRF weights, of any config's sizes, whose density is a known closed surface: a sphere of radius r,
/// optionally rippled. The weights are the model's own NeRF MLP shapes, so queries cost exactly what a trained
/// model's do; only the values are chosen. Used where random weights would give no surface at all: the grid-query
/// and end-to-end benchmarks (`lrm bench` without a checkpoint) and the coarse-to-fine tests.
/// <para>
/// Channel 0 of the planes holds f₀(x, y) = −x² − y²/2 on plane 0 (sampled at (x, y)), a ripple
/// a·sin(bx)·sin(bz) on plane 1 (x, z) and f₂(z, y) = −z² − y²/2 on plane 2 (z, y); the other channels are zero.
/// Bilinear sampling therefore returns, up to the texel interpolation, s(p) = −|p|² + a·sin(bx)·sin(bz). The first
/// NeRF layer computes h₀ = ReLU(k(r² + s)), h₁ = ReLU(−k(r² + s)); the hidden layers pass h₀ and h₁ through; the
/// last layer outputs raw₀ = h₀ − h₁ + 1 + softplus⁻¹(T), so σ = softplus(raw₀ − 1) = softplus(k(r² + s) + softplus⁻¹(T))
/// equals the level T exactly on the surface |p|² − a·sin(bx)·sin(bz) = r². The colour is a constant (sigmoid of
/// the output biases).
/// </para>
/// </summary>
internal static class AnalyticTriplane
{
    /// <summary>Density slope k (per unit of r² − |p|²).</summary>
    public const float Steepness = 10f;

    /// <summary>Planes (1, 3, C, H, W) in the upsampler's layout for <paramref name="config"/>'s triplane sizes.</summary>
    public static Tensor Planes(ModelConfig config, float ripple = 0f, float rippleFrequency = 9f)
    {
        ArgumentNullException.ThrowIfNull(config);
        int channels = config.TriplaneDim, size = config.TriplaneHighRes;
        var planes = Tensor.Zeros([1, 3, channels, size, size]);
        var values = planes.AsSpan<float>();
        long planeStride = (long)channels * size * size;
        for (var row = 0; row < size; row++)
        {
            // Texel centres for grid_sample with align_corners=False: u = (2i + 1)/W − 1.
            var v = (2f * row + 1) / size - 1;
            for (var column = 0; column < size; column++)
            {
                var u = (2f * column + 1) / size - 1;
                var texel = row * size + column;
                values[texel] = -u * u - v * v / 2;                                                              // plane 0: (x, y)
                values[(int)(planeStride + texel)] = ripple * MathF.Sin(rippleFrequency * u) * MathF.Sin(rippleFrequency * v); // plane 1: (x, z)
                values[(int)(2 * planeStride + texel)] = -u * u - v * v / 2;                                     // plane 2: (z, y)
            }
        }
        return planes;
    }

    /// <summary>
    /// NeRF MLP weights (OpenLRM names, the config's shapes) making σ = <paramref name="level"/> on the surface of
    /// radius <paramref name="radius"/>; the caller owns the tensors.
    /// </summary>
    public static Dictionary<string, Tensor> NerfWeights(ModelConfig config, float level, float radius = 0.6f)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.NerfHiddenWidth < 2)
        {
            throw new LrmInvalidArgumentException($"analytic triplane: the NeRF needs at least 2 hidden units, the config has {config.NerfHiddenWidth}");
        }
        if (!(level > 0))
        {
            throw new LrmInvalidArgumentException($"analytic triplane: the level must be a positive density, got {level}");
        }
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var indices = LrmWeightNames.NerfLinearIndicesFor(config.NerfLayerCount);
        var inverseSoftplus = (float)(level > 20 ? level : Math.Log(Math.Exp(level) - 1));
        int channels = config.TriplaneDim;
        for (var l = 0; l < indices.Length; l++)
        {
            var spec = LrmWeightNames.NerfSpecs(config).First(s => s.Name == $"{LrmWeightNames.Nerf}{indices[l]}.weight");
            var weight = Tensor.Zeros(spec.Shape);
            var bias = Tensor.Zeros([spec.Shape[0]]);
            var w = weight.AsSpan<float>();
            var b = bias.AsSpan<float>();
            var inputs = (int)spec.Shape[1];
            if (l == 0)
            {
                for (var plane = 0; plane < 3; plane++)
                {
                    w[plane * channels] = Steepness;              // unit 0 reads channel 0 of each plane
                    w[inputs + plane * channels] = -Steepness;    // unit 1 its negative
                }
                b[0] = Steepness * radius * radius;
                b[1] = -Steepness * radius * radius;
            }
            else if (l < indices.Length - 1)
            {
                w[0] = 1f;
                w[inputs + 1] = 1f;
            }
            else
            {
                w[0] = 1f;
                w[1] = -1f;
                b[0] = 1f + inverseSoftplus;
                b[1] = 0.8f; // colour: a warm grey
                b[2] = 0.2f;
                b[3] = -0.4f;
            }
            result[spec.Name] = weight;
            result[$"{LrmWeightNames.Nerf}{indices[l]}.bias"] = bias;
        }
        return result;
    }
}
