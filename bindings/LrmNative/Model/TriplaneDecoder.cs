using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// The image-to-triplane decoder (LRM §3.2; OpenLRM's TransformerDecoder with 'cond_mod' blocks):
/// learned tokens (1, 3·l·l, D), plane-major then row-major, repeated over the batch → ModLN blocks
/// attending to the image features → final LayerNorm (eps 1e-6) → tokens (B, 3·l·l, D).
/// </summary>
internal sealed class TriplaneDecoder : IDisposable
{
    private readonly Tensor _tokens, _normWeight, _normBias;
    private readonly DecoderBlock[] _blocks;

    /// <summary>Binds pos_embed, transformer.layers.*, transformer.norm.*.</summary>
    public TriplaneDecoder(ModelConfig config, WeightSet weights)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        _tokens = weights[LrmWeightNames.DecoderTokens];
        _normWeight = weights[LrmWeightNames.Decoder + "norm.weight"];
        _normBias = weights[LrmWeightNames.Decoder + "norm.bias"];
        _blocks = new DecoderBlock[config.TransformerLayers];
        try
        {
            for (var i = 0; i < _blocks.Length; i++)
            {
                _blocks[i] = new DecoderBlock(weights, LrmWeightNames.DecoderBlock(i), config.TransformerHeads);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Triplane tokens (B, 3·l·l, D) from image features (B, T, C) and camera embeddings (B, E); the caller owns the result.
    /// </summary>
    public Tensor Forward(IBackend backend, Tensor features, Tensor cameraEmbedding)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(cameraEmbedding);
        long batch = features.Size(0), count = _tokens.Size(1), width = _tokens.Size(2);
        if (cameraEmbedding.Rank != 2 || cameraEmbedding.Size(0) != batch)
        {
            throw new LrmShapeException($"decoder: camera embedding must be ({batch}, E) for features {features.ShapeText}, got {cameraEmbedding.ShapeText}");
        }
        using var scratch = new ScratchTensors();
        var modulation = scratch.Empty(batch, cameraEmbedding.Size(1));
        backend.Activate(modulation, cameraEmbedding, Activation.Silu);
        var x = Tensor.Empty([batch, count, width]);
        try
        {
            for (long b = 0; b < batch; b++)
            {
                backend.Copy(x, b * count * width, _tokens, 0, count * width);
            }
            foreach (var block in _blocks)
            {
                block.Forward(backend, x, features, modulation);
            }
            backend.LayerNorm(x, null, null, x, _normWeight, _normBias, ModelConfig.LayerNormEpsilon);
            return x;
        }
        catch
        {
            x.Dispose();
            throw;
        }
    }

    /// <summary>Frees the blocks' repacked weights.</summary>
    public void Dispose()
    {
        foreach (var block in _blocks)
        {
            block?.Dispose();
        }
    }
}
