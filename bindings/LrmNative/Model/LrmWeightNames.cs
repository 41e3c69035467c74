namespace LrmNative.Model;

/// <summary>One tensor the model expects in a checkpoint: its name and shape.</summary>
/// <param name="Name">Checkpoint key, e.g. "encoder.model.blocks.0.attn.qkv.weight".</param>
/// <param name="Shape">Sizes, PyTorch layout.</param>
internal sealed record WeightSpec(string Name, long[] Shape)
{
    /// <summary>Product of the shape.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// <summary>
/// The weight-name table of OpenLRM v1.1 checkpoints (model.safetensors): every tensor the model reads,
/// under its exact key, with the shape the config implies. Loading checks a file against it, and the
/// parameter count is its sum, so the two cannot drift apart. DINO v1 encoders use the same encoder.model.*
/// keys without register_tokens and ls1/ls2, with a 14×14 position table. DINOv2's mask_token is not in the table:
/// OpenLRM removed it (unused at inference), and the published parameter counts leave it out.
/// </summary>
internal static class LrmWeightNames
{
    /// <summary>Key prefix of the DINOv2 encoder.</summary>
    public const string Encoder = "encoder.model.";

    /// <summary>Key prefix of encoder block <paramref name="index"/>.</summary>
    public static string EncoderBlock(int index) => $"{Encoder}blocks.{index}.";

    /// <summary>Key prefix of the camera embedder.</summary>
    public const string CameraEmbedder = "camera_embedder.";

    /// <summary>Key of the decoder's learned triplane tokens.</summary>
    public const string DecoderTokens = "pos_embed";

    /// <summary>Key prefix of the decoder (the layers and the final norm).</summary>
    public const string Decoder = "transformer.";

    /// <summary>Key prefix of decoder block <paramref name="index"/>.</summary>
    public static string DecoderBlock(int index) => $"{Decoder}layers.{index}.";

    /// <summary>Key prefix of the upsampler (ConvTranspose2d).</summary>
    public const string Upsampler = "upsampler.";

    /// <summary>Key prefix of the triplane NeRF MLP.</summary>
    public const string Nerf = "synthesizer.decoder.net.";

    /// <summary>Indices of OpenLRM's 4 NeRF MLP Linear layers inside its nn.Sequential (ReLUs between).</summary>
    public static readonly int[] NerfLinearIndices = [0, 2, 4, 6];

    /// <summary>Indices of the Linear layers of a <paramref name="layers"/>-layer NeRF MLP: 0, 2, …, 2(layers − 1).</summary>
    public static int[] NerfLinearIndicesFor(int layers) => [.. Enumerable.Range(0, layers).Select(l => 2 * l)];

    /// <summary>Every tensor of the model in checkpoint order (encoder, camera, decoder, upsampler, NeRF).</summary>
    public static IReadOnlyList<WeightSpec> Expected(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var specs = new List<WeightSpec>();
        void Add(string name, params long[] shape) => specs.Add(new WeightSpec(name, shape));
        void Linear(string prefix, long output, long input, bool bias = true)
        {
            Add(prefix + "weight", output, input);
            if (bias)
            {
                Add(prefix + "bias", output);
            }
        }
        void Norm(string prefix, long width)
        {
            Add(prefix + "weight", width);
            Add(prefix + "bias", width);
        }

        // DINOv2 / DINO v1 encoder.
        long c = config.EncoderFeatDim;
        Add(Encoder + "cls_token", 1, 1, c);
        Add(Encoder + "pos_embed", 1, 1 + (long)config.EncoderPositionGrid * config.EncoderPositionGrid, c);
        if (config.EncoderRegisters > 0)
        {
            Add(Encoder + "register_tokens", 1, config.EncoderRegisters, c);
        }
        Add(Encoder + "patch_embed.proj.weight", c, 3, config.EncoderPatchSize, config.EncoderPatchSize);
        Add(Encoder + "patch_embed.proj.bias", c);
        for (var i = 0; i < config.EncoderDepth; i++)
        {
            specs.AddRange(EncoderBlockSpecs(EncoderBlock(i), c, config.EncoderLayerScale));
        }
        Norm(Encoder + "norm.", c);

        // Camera embedder: Linear → SiLU → Linear.
        long e = config.CameraEmbedDim;
        Linear(CameraEmbedder + "mlp.0.", e, config.CameraInputDim);
        Linear(CameraEmbedder + "mlp.2.", e, e);

        // Decoder: learned tokens, ModLN blocks, final norm.
        long d = config.TransformerDim;
        Add(DecoderTokens, 1, config.TriplaneTokens, d);
        for (var i = 0; i < config.TransformerLayers; i++)
        {
            specs.AddRange(DecoderBlockSpecs(DecoderBlock(i), d, e, c));
        }
        Norm(Decoder + "norm.", d);

        // Upsampler: ConvTranspose2d(D, C_tri, 2, 2).
        Add(Upsampler + "weight", d, config.TriplaneDim, ModelConfig.UpsampleFactor, ModelConfig.UpsampleFactor);
        Add(Upsampler + "bias", config.TriplaneDim);

        // Triplane NeRF MLP: 3·C_tri → hidden → … → hidden → 4 (OpenLRM: 4 layers × 64; the paper: 10 × 64).
        specs.AddRange(NerfSpecs(config));
        return specs;
    }

    /// <summary>Tensors of the triplane NeRF MLP of <paramref name="config"/> (synthesizer.decoder.net.{0,2,…}).</summary>
    public static IEnumerable<WeightSpec> NerfSpecs(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var indices = NerfLinearIndicesFor(config.NerfLayerCount);
        for (var l = 0; l < indices.Length; l++)
        {
            long input = l == 0 ? 3L * config.TriplaneDim : config.NerfHiddenWidth;
            long output = l == indices.Length - 1 ? 4 : config.NerfHiddenWidth;
            yield return new($"{Nerf}{indices[l]}.weight", [output, input]);
            yield return new($"{Nerf}{indices[l]}.bias", [output]);
        }
    }

    /// <summary>
    /// Tensors of one ViT block of width <paramref name="width"/> under <paramref name="prefix"/>; DINOv2's
    /// LayerScale gammas ls1/ls2 only when <paramref name="layerScale"/> (DINO v1 has none).
    /// </summary>
    public static IEnumerable<WeightSpec> EncoderBlockSpecs(string prefix, long width, bool layerScale = true)
    {
        long c = width;
        yield return new(prefix + "norm1.weight", [c]);
        yield return new(prefix + "norm1.bias", [c]);
        yield return new(prefix + "attn.qkv.weight", [3 * c, c]);
        yield return new(prefix + "attn.qkv.bias", [3 * c]);
        yield return new(prefix + "attn.proj.weight", [c, c]);
        yield return new(prefix + "attn.proj.bias", [c]);
        if (layerScale)
        {
            yield return new(prefix + "ls1.gamma", [c]);
        }
        yield return new(prefix + "norm2.weight", [c]);
        yield return new(prefix + "norm2.bias", [c]);
        yield return new(prefix + "mlp.fc1.weight", [4 * c, c]);
        yield return new(prefix + "mlp.fc1.bias", [4 * c]);
        yield return new(prefix + "mlp.fc2.weight", [c, 4 * c]);
        yield return new(prefix + "mlp.fc2.bias", [c]);
        if (layerScale)
        {
            yield return new(prefix + "ls2.gamma", [c]);
        }
    }

    /// <summary>
    /// Tensors of one decoder block (width <paramref name="width"/>, modulation width
    /// <paramref name="modulationWidth"/>, image-feature width <paramref name="conditionWidth"/>) under
    /// <paramref name="prefix"/>. nn.MultiheadAttention packs the cross-attention projections into one
    /// in_proj_weight only when the condition is as wide as the tokens.
    /// </summary>
    public static IEnumerable<WeightSpec> DecoderBlockSpecs(string prefix, long width, long modulationWidth, long conditionWidth)
    {
        long d = width;
        for (var k = 1; k <= 3; k++)
        {
            yield return new($"{prefix}norm{k}.norm.weight", [d]);
            yield return new($"{prefix}norm{k}.norm.bias", [d]);
            yield return new($"{prefix}norm{k}.mlp.1.weight", [2 * d, modulationWidth]);
            yield return new($"{prefix}norm{k}.mlp.1.bias", [2 * d]);
        }
        if (conditionWidth == width)
        {
            yield return new(prefix + "cross_attn.in_proj_weight", [3 * d, d]);
        }
        else
        {
            yield return new(prefix + "cross_attn.q_proj_weight", [d, d]);
            yield return new(prefix + "cross_attn.k_proj_weight", [d, conditionWidth]);
            yield return new(prefix + "cross_attn.v_proj_weight", [d, conditionWidth]);
        }
        yield return new(prefix + "cross_attn.out_proj.weight", [d, d]);
        yield return new(prefix + "self_attn.in_proj_weight", [3 * d, d]);
        yield return new(prefix + "self_attn.out_proj.weight", [d, d]);
        yield return new(prefix + "mlp.0.weight", [4 * d, d]);
        yield return new(prefix + "mlp.0.bias", [4 * d]);
        yield return new(prefix + "mlp.3.weight", [d, 4 * d]);
        yield return new(prefix + "mlp.3.bias", [d]);
    }
}
