using LrmNative.Model;

namespace LrmNative.Training;

/// <summary>
/// Fresh weights for training a model from its config alone (<c>lrm train --config</c>), seeded and deterministic.
/// The schemes are those of the modules' PyTorch definitions:
/// <list type="bullet">
/// <item>Linear and convolution weights and biases: PyTorch's default, U(−1/√fan_in, 1/√fan_in)
/// (nn.Linear/nn.Conv2d reset_parameters; fan_in = in·k·k; ConvTranspose2d's fan_in is its weight's dim 1·k·k). DINOv2
/// and OpenLRM re-initialise ViT linears with trunc_normal(0.02), which at the tiny widths used from scratch leaves
/// the signal vanishing; the default scale keeps it.</item>
/// <item>LayerNorm/ModLN affine: weight 1, bias 0.</item>
/// <item>LayerScale γ: 1e-5 (DINOv2's init_values), so each encoder block starts near the identity.</item>
/// <item>[CLS], register tokens, encoder position table: N(0, 0.02²), truncated at ±2σ (DINOv2: trunc_normal(0.02) for
/// the table; [CLS]/registers get normal(1e-6) there — 0.02 keeps them from being all but zero).</item>
/// <item>Decoder triplane tokens (pos_embed): N(0, 1/D) (OpenLRM: randn · D^−½).</item>
/// </list>
/// With <see cref="PositionInit.SinCos"/> the encoder's position table is instead MAE's fixed 2D sine-cosine table
/// (still trained from there): see <see cref="SinCosTable"/>.
/// </summary>
internal static class ModelInitializer
{
    /// <summary>One tensor per <see cref="LrmWeightNames.Expected"/> name of <paramref name="config"/>; the caller owns them.</summary>
    public static Dictionary<string, Tensor> Create(ModelConfig config, ulong seed, PositionInit positions = PositionInit.Normal)
    {
        ArgumentNullException.ThrowIfNull(config);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var index = 0L;
        try
        {
            foreach (var spec in LrmWeightNames.Expected(config))
            {
                // One stream per tensor (by its index in the table): adding a tensor does not reshuffle the others.
                var random = TrainingRandom.For(seed, 0x696E6974, index++);
                // Straight into the tensor: its allocation turns a shape too large for the host into an LrmException.
                var tensor = Tensor.Empty(spec.Shape);
                tensors[spec.Name] = tensor;
                var values = tensor.AsSpan<float>();
                if (positions == PositionInit.SinCos && spec.Name == LrmWeightNames.Encoder + "pos_embed")
                {
                    SinCosTable(values, config.EncoderPositionGrid, config.EncoderFeatDim);
                }
                else
                {
                    Fill(spec, values, random, config);
                }
            }
            return tensors;
        }
        catch
        {
            foreach (var tensor in tensors.Values)
            {
                tensor.Dispose();
            }
            throw;
        }
    }

    private static void Fill(WeightSpec spec, Span<float> values, TrainingRandom random, ModelConfig config)
    {
        var name = spec.Name;
        if (name.EndsWith("ls1.gamma", StringComparison.Ordinal) || name.EndsWith("ls2.gamma", StringComparison.Ordinal))
        {
            values.Fill(1e-5f);
        }
        else if (IsNorm(name))
        {
            values.Fill(name.EndsWith(".weight", StringComparison.Ordinal) ? 1f : 0f);
        }
        else if (name == LrmWeightNames.DecoderTokens)
        {
            var std = 1.0 / Math.Sqrt(config.TransformerDim);
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)(std * Normal(random));
            }
        }
        else if (name.StartsWith(LrmWeightNames.Encoder, StringComparison.Ordinal)
            && (name.EndsWith("cls_token", StringComparison.Ordinal) || name.EndsWith("register_tokens", StringComparison.Ordinal) || name.EndsWith("pos_embed", StringComparison.Ordinal)))
        {
            for (var i = 0; i < values.Length; i++)
            {
                double z;
                do
                {
                    z = Normal(random);
                }
                while (Math.Abs(z) > 2);
                values[i] = (float)(0.02 * z);
            }
        }
        else
        {
            var bound = 1.0 / Math.Sqrt(FanIn(spec, config));
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (float)(bound * (2 * random.NextDouble() - 1));
            }
        }
    }

    /// <summary>
    /// MAE's 2D sine-cosine position table (1 + g², D) for a g×g patch grid: row 0 ([CLS]) zero; patch (i, j) (row-major)
    /// gets sin/cos of its column j in the first D/2 values and of its row i in the last D/2, each half as
    /// [sin(p·ω_k) for k &lt; D/4, cos(p·ω_k) for k &lt; D/4] with ω_k = 10000^(−k/(D/4)). D must be a multiple of 4.
    /// </summary>
    public static void SinCosTable(Span<float> values, int grid, int width)
    {
        if (width % 4 != 0)
        {
            throw new LrmInvalidArgumentException($"sin-cos position table: encoder_feat_dim must be a multiple of 4, got {width}");
        }
        if (values.Length != (1 + grid * grid) * width)
        {
            throw new LrmInvalidArgumentException($"sin-cos position table: {values.Length} values for a {grid}×{grid} grid of width {width}");
        }
        values[..width].Clear();
        var quarter = width / 4;
        for (var i = 0; i < grid; i++)
        {
            for (var j = 0; j < grid; j++)
            {
                var row = values.Slice((1 + i * grid + j) * width, width);
                for (var k = 0; k < quarter; k++)
                {
                    var omega = Math.Pow(10000.0, -(double)k / quarter);
                    row[k] = (float)Math.Sin(j * omega);
                    row[quarter + k] = (float)Math.Cos(j * omega);
                    row[2 * quarter + k] = (float)Math.Sin(i * omega);
                    row[3 * quarter + k] = (float)Math.Cos(i * omega);
                }
            }
        }
    }

    // LayerNorm / ModLN affine parameters (rank 1 under a norm).
    private static bool IsNorm(string name) =>
        name.Contains("norm", StringComparison.Ordinal) && !name.Contains(".mlp.", StringComparison.Ordinal);

    // fan_in of the layer a weight or bias belongs to.
    private static long FanIn(WeightSpec spec, ModelConfig config)
    {
        var name = spec.Name;
        if (name.EndsWith(".bias", StringComparison.Ordinal))
        {
            // The bias of a layer shares its weight's bound.
            if (name == LrmWeightNames.Upsampler + "bias")
            {
                return (long)config.TriplaneDim * ModelConfig.UpsampleFactor * ModelConfig.UpsampleFactor;
            }
            if (name.EndsWith("patch_embed.proj.bias", StringComparison.Ordinal))
            {
                return 3L * config.EncoderPatchSize * config.EncoderPatchSize;
            }
            var weight = LrmWeightNames.Expected(config).First(s => s.Name == name[..^"bias".Length] + "weight");
            return weight.Shape[1];
        }
        return name == LrmWeightNames.Upsampler + "weight"
            ? spec.Shape[1] * spec.Shape[2] * spec.Shape[3]
            : spec.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
    }

    private static double Normal(TrainingRandom random)
    {
        // Box–Muller; 1 − u keeps the logarithm finite.
        var u = 1.0 - random.NextDouble();
        var v = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2.0 * Math.PI * v);
    }
}

/// <summary>How a fresh model's encoder position table starts (<c>lrm train --position-init</c>).</summary>
internal enum PositionInit
{
    /// <summary>N(0, 0.02²) truncated at ±2σ, as DINOv2.</summary>
    Normal,

    /// <summary>MAE's 2D sine-cosine table: strong position information from the first update.</summary>
    SinCos,
}
