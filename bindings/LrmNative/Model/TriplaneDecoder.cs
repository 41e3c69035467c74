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

    /// <summary>Binds pos_embed, transformer.layers.*, transformer.norm.*; <paramref name="trainable"/> keeps the named cross-attention tensors; the weights live in <paramref name="placement"/>'s memory.</summary>
    public TriplaneDecoder(IBackend placement, ModelConfig config, WeightSet weights, bool trainable = false)
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
                _blocks[i] = new DecoderBlock(placement, weights, LrmWeightNames.DecoderBlock(i), config.TransformerHeads, trainable);
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
        using var scratch = new ScratchTensors(backend);
        var modulation = scratch.Empty(batch, cameraEmbedding.Size(1));
        backend.Activate(modulation, cameraEmbedding, Activation.Silu);
        var x = backend.Empty([batch, count, width]);
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

    /// <summary>
    /// <see cref="Forward"/> that also keeps what <see cref="Backward"/> needs, in <paramref name="saved"/> (tokens
    /// included); re-copies the blocks' packed cross-attention weights from the named ones first.
    /// </summary>
    public DecoderActivations ForwardTraining(IBackend backend, Tensor features, Tensor cameraEmbedding, ScratchTensors saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(cameraEmbedding);
        ArgumentNullException.ThrowIfNull(saved);
        long batch = features.Size(0), count = _tokens.Size(1), width = _tokens.Size(2);
        if (cameraEmbedding.Rank != 2 || cameraEmbedding.Size(0) != batch)
        {
            throw new LrmShapeException($"decoder: camera embedding must be ({batch}, E) for features {features.ShapeText}, got {cameraEmbedding.ShapeText}");
        }
        foreach (var block in _blocks)
        {
            block.SyncCrossAttention();
        }
        var modulation = saved.Empty(batch, cameraEmbedding.Size(1));
        backend.Activate(modulation, cameraEmbedding, Activation.Silu);
        var x = saved.Empty(batch, count, width);
        for (long b = 0; b < batch; b++)
        {
            backend.Copy(x, b * count * width, _tokens, 0, count * width);
        }
        var blocks = new DecoderBlockActivations[_blocks.Length];
        for (var i = 0; i < _blocks.Length; i++)
        {
            blocks[i] = _blocks[i].ForwardTraining(backend, x, features, modulation, saved);
        }
        var mean = saved.Empty(batch, count);
        var rstd = saved.Empty(batch, count);
        var tokens = saved.Empty(batch, count, width);
        backend.LayerNorm(tokens, mean, rstd, x, _normWeight, _normBias, ModelConfig.LayerNormEpsilon);
        return new DecoderActivations(modulation, blocks, x, mean, rstd, tokens);
    }

    /// <summary>
    /// Backward from ∂L/∂tokens (B, 3l², D): parameter gradients accumulate into <paramref name="gradients"/>;
    /// ∂L/∂features (B, T, C) and ∂L/∂camera embedding (B, E) are written (overwritten) to the last two arguments.
    /// The learned tokens are shared by the batch (their gradient sums over it); ∂L/∂c̃ = SiLU'(c̃)·Σ over the
    /// blocks' ModLN modulation gradients.
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradTokens, Tensor features, Tensor cameraEmbedding, DecoderActivations saved,
        Tensor gradFeatures, Tensor gradCameraEmbedding)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradTokens);
        ArgumentNullException.ThrowIfNull(saved);
        ArgumentNullException.ThrowIfNull(gradFeatures);
        ArgumentNullException.ThrowIfNull(gradCameraEmbedding);
        long batch = gradTokens.Size(0), count = _tokens.Size(1), width = _tokens.Size(2);
        using var scratch = new ScratchTensors(backend);
        var gradX = scratch.Empty(batch, count, width);
        backend.LayerNormBackward(gradX, gradients[LrmWeightNames.Decoder + "norm.weight"], gradients[LrmWeightNames.Decoder + "norm.bias"],
            gradTokens, saved.NormMean, saved.NormRstd, saved.NormInput, _normWeight);
        backend.Fill(gradFeatures, 0f);
        var gradModulation = scratch.Empty(saved.Modulation.Shape);
        backend.Fill(gradModulation, 0f);
        for (var i = _blocks.Length - 1; i >= 0; i--)
        {
            _blocks[i].Backward(backend, gradients, gradX, gradFeatures, gradModulation, features, saved.Modulation, saved.Blocks[i]);
        }
        for (long b = 0; b < batch; b++)
        {
            GradientOps.AddSlice(backend, gradients[LrmWeightNames.DecoderTokens], 0, gradX, b * count * width, count * width);
        }
        backend.ActivateBackward(gradCameraEmbedding, gradModulation, cameraEmbedding, Activation.Silu);
    }

    /// <summary>Re-copies every block's packed cross-attention weights from the named ones (trainable models).</summary>
    public void SyncCrossAttention()
    {
        foreach (var block in _blocks)
        {
            block.SyncCrossAttention();
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

/// <summary>What <see cref="TriplaneDecoder.Backward"/> needs from the training forward (tensors owned by the caller's scope).</summary>
/// <param name="Modulation">SiLU(camera embedding) (B, E).</param>
/// <param name="Blocks">Per-block activations.</param>
/// <param name="NormInput">Input of the final LayerNorm (B, 3l², D).</param>
/// <param name="NormMean">Its mean (B, 3l²).</param>
/// <param name="NormRstd">Its 1/σ (B, 3l²).</param>
/// <param name="Tokens">The decoder output (B, 3l², D).</param>
internal sealed record DecoderActivations(Tensor Modulation, DecoderBlockActivations[] Blocks, Tensor NormInput, Tensor NormMean, Tensor NormRstd, Tensor Tokens);
