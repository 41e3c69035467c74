using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// The image encoder: DINOv2 ViT with register tokens (OpenLRM v1.1) or DINO v1 ViT (the paper,
/// OpenLRM v1.0) — one module, the differences are config settings. Image (B, 3, H, W) in [0, 1] (optionally
/// normalised by encoder_image_mean/std; none by default) → patch embedding (p×p, p = 14 or 16) → tokens
/// [CLS + pos₀, registers (no position; DINOv2 *_reg only), patches + pos] → blocks (LayerScale for DINOv2)
/// → final LayerNorm → [CLS, patches] (B, 1 + P, C), registers dropped. The trained position table
/// (37×37 for DINOv2, 14×14 for DINO) is resized to the patch grid: DINOv2's interpolate_pos_encoding
/// (bicubic with scale_factor (g + offset)/grid, antialiased for the register models) or, for the paper,
/// bilinear by explicit size (align_corners=False, no antialias); it is computed once per grid size and cached.
/// </summary>
internal sealed class DinoV2Encoder : IDisposable
{
    private readonly ModelConfig _config;
    private readonly Tensor _clsToken, _positions, _patchWeight, _patchBias, _normWeight, _normBias;
    private readonly Tensor? _registers;
    private readonly VitBlock[] _blocks;
    private readonly Dictionary<(long Height, long Width), Tensor> _positionCache = [];
    private readonly Lock _cacheLock = new();

    /// <summary>Binds the encoder's weights (keys under encoder.model.).</summary>
    public DinoV2Encoder(ModelConfig config, WeightSet weights)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        _config = config;
        const string prefix = LrmWeightNames.Encoder;
        _clsToken = weights[prefix + "cls_token"];
        _positions = weights[prefix + "pos_embed"];
        _registers = config.EncoderRegisters > 0 ? weights[prefix + "register_tokens"] : null;
        _patchWeight = weights[prefix + "patch_embed.proj.weight"];
        _patchBias = weights[prefix + "patch_embed.proj.bias"];
        _normWeight = weights[prefix + "norm.weight"];
        _normBias = weights[prefix + "norm.bias"];
        _blocks = new VitBlock[config.EncoderDepth];
        for (var i = 0; i < _blocks.Length; i++)
        {
            _blocks[i] = new VitBlock(weights, LrmWeightNames.EncoderBlock(i), config.EncoderHeads, config.EncoderLayerScale);
        }
    }

    /// <summary>Encodes images (B, 3, H, W) into features (B, 1 + (H/p)·(W/p), C); the caller owns the result.</summary>
    public Tensor Forward(IBackend backend, Tensor image)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var (batch, gridHeight, gridWidth) = CheckImage(image);
        long width = _config.EncoderFeatDim, patches = gridHeight * gridWidth;
        var positions = PositionTable(backend, gridHeight, gridWidth);

        using var scratch = new ScratchTensors(backend);
        var embedded = scratch.Empty(batch, patches, width);
        backend.PatchEmbed(embedded, Normalized(scratch, image), _patchWeight, _patchBias);
        var x = scratch.Empty(batch, 1 + _config.EncoderRegisters + patches, width);
        AssembleTokens(backend, x, embedded, positions);
        foreach (var block in _blocks)
        {
            block.Forward(backend, x);
        }

        // Drop the registers, then the final LayerNorm (per token, so the order does not matter).
        var features = backend.Empty([batch, 1 + patches, width]);
        try
        {
            DropRegisters(backend, features, x);
            backend.LayerNorm(features, null, null, features, _normWeight, _normBias, ModelConfig.LayerNormEpsilon);
            return features;
        }
        catch
        {
            features.Dispose();
            throw;
        }
    }

    // (batch, patch rows, patch columns) of an image (B, 3, H, W), or one clear error.
    private (long Batch, long GridHeight, long GridWidth) CheckImage(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Rank != 4 || image.Size(1) != 3)
        {
            throw new LrmShapeException($"encoder: image must be (batch, 3, height, width), got {image.ShapeText}");
        }
        long patch = _config.EncoderPatchSize;
        long gridHeight = image.Size(2) / patch, gridWidth = image.Size(3) / patch;
        if (gridHeight == 0 || gridWidth == 0)
        {
            throw new LrmShapeException($"encoder: image {image.ShapeText} is smaller than one {patch}×{patch} patch");
        }
        return (image.Size(0), gridHeight, gridWidth);
    }

    // x (B, 1 + R + P, C) = [CLS + pos₀, registers, patch tokens + pos₁…], as prepare_tokens_with_masks builds them;
    // embedded (B, P, C) gets its positions added in place.
    private void AssembleTokens(IBackend backend, Tensor x, Tensor embedded, Tensor positions)
    {
        long batch = embedded.Size(0), patches = embedded.Size(1), width = embedded.Size(2);
        long registers = _config.EncoderRegisters, tokens = 1 + registers + patches;
        using var scratch = new ScratchTensors(backend);
        var patchPositions = scratch.Empty(batch, patches, width);
        var cls = scratch.Empty(1, width);
        var clsPosition = scratch.Empty(1, width);
        backend.Copy(clsPosition, 0, positions, 0, width);
        backend.Add(cls, clsPosition, scratch.Reshaped(backend, _clsToken, 1, width));
        for (long b = 0; b < batch; b++)
        {
            backend.Copy(patchPositions, b * patches * width, positions, width, patches * width);
        }
        backend.Add(embedded, embedded, patchPositions);
        for (long b = 0; b < batch; b++)
        {
            var row = b * tokens * width;
            backend.Copy(x, row, cls, 0, width);
            if (_registers is not null)
            {
                backend.Copy(x, row + width, _registers, 0, registers * width);
            }
            backend.Copy(x, row + (1 + registers) * width, embedded, b * patches * width, patches * width);
        }
    }

    // target (B, 1 + P, C) = x (B, 1 + R + P, C) without the R register tokens.
    private void DropRegisters(IBackend backend, Tensor target, Tensor x)
    {
        long batch = x.Size(0), tokens = x.Size(1), width = x.Size(2), registers = _config.EncoderRegisters, patches = tokens - 1 - registers;
        for (long b = 0; b < batch; b++)
        {
            var row = b * tokens * width;
            backend.Copy(target, b * (1 + patches) * width, x, row, width);
            backend.Copy(target, (b * (1 + patches) + 1) * width, x, row + (1 + registers) * width, patches * width);
        }
    }

    // The image normalised per channel, (x − mean) / std, when the config gives mean/std; else the image itself.
    // Done on the host (a device image goes down and back up: 3 channels, once per forward).
    private Tensor Normalized(ScratchTensors scratch, Tensor image)
    {
        if (_config.EncoderImageMean is null && _config.EncoderImageStd is null)
        {
            return image;
        }
        var mean = _config.EncoderImageMean ?? [0f, 0f, 0f];
        var std = _config.EncoderImageStd ?? [1f, 1f, 1f];
        var backend = scratch.Backend;
        using var host = backend.ToHost(image);
        var values = host.AsSpan<float>();
        long plane = image.Size(2) * image.Size(3);
        for (long b = 0; b < image.Size(0); b++)
        {
            for (var c = 0; c < 3; c++)
            {
                var start = (int)((b * 3 + c) * plane);
                for (var k = 0; k < plane; k++)
                {
                    values[start + k] = (values[start + k] - mean[c]) / std[c];
                }
            }
        }
        var normalized = scratch.Empty(image.Shape.ToArray());
        backend.Upload(normalized, host);
        return normalized;
    }

    /// <summary>
    /// <see cref="Forward"/> that also keeps what <see cref="Backward"/> needs, in <paramref name="saved"/> (features
    /// included). The position table is resized afresh (not cached), from the current weights.
    /// </summary>
    public EncoderActivations ForwardTraining(IBackend backend, Tensor image, ScratchTensors saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(saved);
        var (batch, gridHeight, gridWidth) = CheckImage(image);
        long width = _config.EncoderFeatDim, patches = gridHeight * gridWidth;
        var positions = saved.Adopt(ResizePositions(backend, gridHeight, gridWidth));
        var normalized = Normalized(saved, image);
        var embedded = saved.Empty(batch, patches, width);
        backend.PatchEmbed(embedded, normalized, _patchWeight, _patchBias);
        var x = saved.Empty(batch, 1 + _config.EncoderRegisters + patches, width);
        AssembleTokens(backend, x, embedded, positions);
        var blocks = new VitBlockActivations[_blocks.Length];
        for (var i = 0; i < _blocks.Length; i++)
        {
            blocks[i] = _blocks[i].ForwardTraining(backend, x, saved);
        }
        var normInput = saved.Empty(batch, 1 + patches, width);
        DropRegisters(backend, normInput, x);
        var features = saved.Empty(batch, 1 + patches, width);
        var mean = saved.Empty(batch, 1 + patches);
        var rstd = saved.Empty(batch, 1 + patches);
        backend.LayerNorm(features, mean, rstd, normInput, _normWeight, _normBias, ModelConfig.LayerNormEpsilon);
        return new EncoderActivations(normalized, gridHeight, gridWidth, blocks, normInput, mean, rstd, features);
    }

    /// <summary>
    /// Backward of the encoder from ∂L/∂features (B, 1 + P, C): every encoder parameter gradient accumulates into
    /// <paramref name="gradients"/> (the image is data and gets none). The [CLS] token, registers and position table
    /// are shared by the batch, so their gradients sum over it; the resized table's gradient goes back through the
    /// adjoint of the resampling (<see cref="IBackend.ResizeScaledBackward"/> / <see cref="IBackend.ResizeBackward"/>).
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradFeatures, EncoderActivations saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradFeatures);
        ArgumentNullException.ThrowIfNull(saved);
        const string p = LrmWeightNames.Encoder;
        long batch = gradFeatures.Size(0), width = _config.EncoderFeatDim;
        long patches = saved.GridHeight * saved.GridWidth, registers = _config.EncoderRegisters, tokens = 1 + registers + patches;
        using var scratch = new ScratchTensors(backend);
        var gradNormInput = scratch.Empty(batch, 1 + patches, width);
        backend.LayerNormBackward(gradNormInput, gradients[p + "norm.weight"], gradients[p + "norm.bias"], gradFeatures, saved.NormMean, saved.NormRstd, saved.NormInput, _normWeight);
        var gradX = scratch.Empty(batch, tokens, width);
        backend.Fill(gradX, 0f);
        for (long b = 0; b < batch; b++)
        {
            var row = b * tokens * width;
            backend.Copy(gradX, row, gradNormInput, b * (1 + patches) * width, width);
            backend.Copy(gradX, row + (1 + registers) * width, gradNormInput, (b * (1 + patches) + 1) * width, patches * width);
        }
        for (var i = _blocks.Length - 1; i >= 0; i--)
        {
            _blocks[i].Backward(backend, gradients, gradX, saved.Blocks[i]);
        }

        // x[b] = [cls + pos₀, registers, patch_embed(image) + pos₁…]: the shared tensors sum over the batch.
        var gradTable = scratch.Empty(1 + patches, width);
        backend.Fill(gradTable, 0f);
        var gradEmbedded = scratch.Empty(batch, patches, width);
        for (long b = 0; b < batch; b++)
        {
            var row = b * tokens * width;
            GradientOps.AddSlice(backend, gradients[p + "cls_token"], 0, gradX, row, width);
            GradientOps.AddSlice(backend, gradTable, 0, gradX, row, width);
            if (registers > 0)
            {
                GradientOps.AddSlice(backend, gradients[p + "register_tokens"], 0, gradX, row + width, registers * width);
            }
            GradientOps.AddSlice(backend, gradTable, width, gradX, row + (1 + registers) * width, patches * width);
            backend.Copy(gradEmbedded, b * patches * width, gradX, row + (1 + registers) * width, patches * width);
        }
        backend.PatchEmbedBackward(null, gradients[p + "patch_embed.proj.weight"], gradients[p + "patch_embed.proj.bias"], gradEmbedded, saved.Image, _patchWeight);
        PositionTableBackward(backend, gradients[p + "pos_embed"], gradTable, saved.GridHeight, saved.GridWidth);
    }

    // ∂L/∂pos_embed (1, 1 + G², C) += the adjoint of ResizePositions applied to ∂L/∂table (1 + P, C).
    private void PositionTableBackward(IBackend backend, Tensor gradPositions, Tensor gradTable, long gridHeight, long gridWidth)
    {
        int trained = _config.EncoderPositionGrid;
        long width = _config.EncoderFeatDim, patches = gridHeight * gridWidth;
        GradientOps.AddSlice(backend, gradPositions, 0, gradTable, 0, width);
        if (gridHeight == trained && gridWidth == trained)
        {
            GradientOps.AddSlice(backend, gradPositions, width, gradTable, width, patches * width);
            return;
        }
        using var scratch = new ScratchTensors(backend);
        // (P, C) → (C, gh, gw) → adjoint resize → (C, G, G) → (G², C).
        var tokenMajor = scratch.Empty(patches, width);
        backend.Copy(tokenMajor, 0, gradTable, width, patches * width);
        var channelsFirst = scratch.Empty(width, patches);
        backend.Transpose(channelsFirst, tokenMajor);
        var gradResized = scratch.Reshaped(backend, channelsFirst, width, gridHeight, gridWidth);
        var gradGrid = scratch.Empty(width, trained, trained);
        if (_config.EncoderPositionInterpolation == ModelConfig.InterpolationBilinear)
        {
            backend.ResizeBackward(gradGrid, gradResized, ResizeMode.Bilinear);
        }
        else
        {
            var offset = _config.EncoderInterpolateOffset;
            var antialias = _config.EncoderInterpolateAntialias;
            backend.ResizeScaledBackward(gradGrid, gradResized, ResizeMode.Bicubic,
                (gridHeight + offset) / trained, (gridWidth + offset) / trained, antialias ? -0.5f : -0.75f, antialias);
        }
        var gradRows = scratch.Empty(trained * trained, width);
        backend.Transpose(gradRows, scratch.Reshaped(backend, gradGrid, width, trained * trained));
        GradientOps.AddSlice(backend, gradPositions, width, gradRows, 0, trained * trained * width);
    }

    /// <summary>Drops the cached position tables (after the weights changed, e.g. a training update).</summary>
    public void ClearPositionCache()
    {
        lock (_cacheLock)
        {
            foreach (var table in _positionCache.Values)
            {
                table.Dispose();
            }
            _positionCache.Clear();
        }
    }

    /// <summary>
    /// The position table added to [CLS, patches] for a gridHeight×gridWidth patch grid, (1 + P, C):
    /// row 0 is the [CLS] position, the rest the trained grid×grid table resized (cached; owned by the encoder).
    /// </summary>
    public Tensor PositionTable(IBackend backend, long gridHeight, long gridWidth)
    {
        ArgumentNullException.ThrowIfNull(backend);
        lock (_cacheLock)
        {
            if (_positionCache.TryGetValue((gridHeight, gridWidth), out var cached))
            {
                return cached;
            }
            var table = ResizePositions(backend, gridHeight, gridWidth);
            _positionCache[(gridHeight, gridWidth)] = table;
            return table;
        }
    }

    private Tensor ResizePositions(IBackend backend, long gridHeight, long gridWidth)
    {
        int trained = _config.EncoderPositionGrid;
        long width = _config.EncoderFeatDim, patches = gridHeight * gridWidth;
        var table = backend.Empty([1 + patches, width]);
        try
        {
            backend.Copy(table, 0, _positions, 0, width);
            if (gridHeight == trained && gridWidth == trained)
            {
                // interpolate_pos_encoding returns the table unchanged at the trained size.
                backend.Copy(table, width, _positions, width, patches * width);
                return table;
            }
            using var scratch = new ScratchTensors(backend);
            // (37·37, C) → (C, 37, 37), resize → (C, gh, gw) → (gh·gw, C).
            var grid = scratch.Empty(trained * trained, width);
            backend.Copy(grid, 0, _positions, width, trained * trained * width);
            var channelsFirst = scratch.Empty(width, trained * trained);
            backend.Transpose(channelsFirst, grid);
            var resized = scratch.Empty(width, gridHeight, gridWidth);
            if (_config.EncoderPositionInterpolation == ModelConfig.InterpolationBilinear)
            {
                // The paper: bilinear to the explicit grid size, align_corners=False, no antialias.
                backend.Resize(resized, scratch.Reshaped(backend, channelsFirst, width, trained, trained), ResizeMode.Bilinear);
                var positions = scratch.Empty(patches, width);
                backend.Transpose(positions, scratch.Reshaped(backend, resized, width, patches));
                backend.Copy(table, width, positions, 0, patches * width);
                return table;
            }
            var offset = _config.EncoderInterpolateOffset;
            var antialias = _config.EncoderInterpolateAntialias;
            backend.ResizeScaled(resized, scratch.Reshaped(backend, channelsFirst, width, trained, trained), ResizeMode.Bicubic,
                (gridHeight + offset) / trained, (gridWidth + offset) / trained, antialias ? -0.5f : -0.75f, antialias);
            var tokenMajor = scratch.Empty(patches, width);
            backend.Transpose(tokenMajor, scratch.Reshaped(backend, resized, width, patches));
            backend.Copy(table, width, tokenMajor, 0, patches * width);
            return table;
        }
        catch
        {
            table.Dispose();
            throw;
        }
    }

    /// <summary>Frees the cached position tables (the weights belong to the <see cref="WeightSet"/>).</summary>
    public void Dispose() => ClearPositionCache();
}

/// <summary>What <see cref="DinoV2Encoder.Backward"/> needs from the training forward (tensors owned by the caller's scope).</summary>
/// <param name="Image">The image the patch embedding saw (normalised when the config normalises).</param>
/// <param name="GridHeight">Patch rows.</param>
/// <param name="GridWidth">Patch columns.</param>
/// <param name="Blocks">Per-block activations.</param>
/// <param name="NormInput">Input of the final LayerNorm (B, 1 + P, C).</param>
/// <param name="NormMean">Its mean (B, 1 + P).</param>
/// <param name="NormRstd">Its 1/σ (B, 1 + P).</param>
/// <param name="Features">The encoder output (B, 1 + P, C).</param>
internal sealed record EncoderActivations(Tensor Image, long GridHeight, long GridWidth, VitBlockActivations[] Blocks,
    Tensor NormInput, Tensor NormMean, Tensor NormRstd, Tensor Features);
