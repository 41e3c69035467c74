using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// One image-to-triplane decoder block (LRM §3.2; OpenLRM's ConditionModulationBlock):
/// <c>x += CrossAttn(ModLN₁(x), cond)</c>, <c>x += SelfAttn(ModLN₂(x))</c>, <c>x += MLP(ModLN₃(x))</c>.
/// ModLN = LayerNorm (eps 1e-6, affine) then <c>·(1 + scale) + shift</c> with
/// <c>[shift | scale] = Linear(SiLU(camera embedding))</c>. Attention without biases (nn.MultiheadAttention,
/// bias=False); MLP Linear(D, 4D) → exact GELU → Linear(4D, D).
/// The cross-attention projections are repacked at load into q (D, D) and a joint kv (2D, C_cond), whether
/// the checkpoint packs them (in_proj_weight) or not (q/k/v_proj_weight), so the keys and values of the
/// image features come from one GEMM. A trainable block leaves the named tensors in the <see cref="WeightSet"/> (the
/// optimiser updates those), re-copies the packed pair from them at each training forward
/// (<see cref="SyncCrossAttention"/>) and scatters the packed gradients back to the names.
/// </summary>
internal sealed class DecoderBlock : IDisposable
{
    private readonly Tensor[] _normWeight = new Tensor[3], _normBias = new Tensor[3];
    private readonly Tensor[] _modulationWeight = new Tensor[3], _modulationBias = new Tensor[3];
    private readonly Tensor _crossQuery, _crossKeyValue, _crossOut, _selfInProjection, _selfOut;
    private readonly Tensor _mlpInWeight, _mlpInBias, _mlpOutWeight, _mlpOutBias;
    private readonly int _heads;
    private readonly string _prefix;
    private readonly WeightSet? _trainableWeights;
    private readonly IBackend _placement;

    /// <summary>
    /// Binds the block's weights under <paramref name="prefix"/> (e.g. "transformer.layers.0.") and takes
    /// over its cross-attention projections (repacked; the originals are freed unless <paramref name="trainable"/>).
    /// <paramref name="placement"/> is the backend whose memory the weights live in; the repacked pair is made there.
    /// </summary>
    public DecoderBlock(IBackend placement, WeightSet weights, string prefix, int heads, bool trainable = false)
    {
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(weights);
        _placement = placement;
        for (var k = 0; k < 3; k++)
        {
            _normWeight[k] = weights[$"{prefix}norm{k + 1}.norm.weight"];
            _normBias[k] = weights[$"{prefix}norm{k + 1}.norm.bias"];
            _modulationWeight[k] = weights[$"{prefix}norm{k + 1}.mlp.1.weight"];
            _modulationBias[k] = weights[$"{prefix}norm{k + 1}.mlp.1.bias"];
        }
        Width = _normWeight[0].Size(0);
        _heads = heads;
        if (Width % heads != 0)
        {
            throw new LrmShapeException($"{weights.Source}: block '{prefix}' width {Width} is not a multiple of {heads} heads");
        }
        _prefix = prefix;
        _trainableWeights = trainable ? weights : null;
        (_crossQuery, _crossKeyValue) = RepackCrossAttention(placement, weights, prefix, Width, detach: !trainable);
        _crossOut = weights[prefix + "cross_attn.out_proj.weight"];
        _selfInProjection = weights[prefix + "self_attn.in_proj_weight"];
        _selfOut = weights[prefix + "self_attn.out_proj.weight"];
        _mlpInWeight = weights[prefix + "mlp.0.weight"];
        _mlpInBias = weights[prefix + "mlp.0.bias"];
        _mlpOutWeight = weights[prefix + "mlp.3.weight"];
        _mlpOutBias = weights[prefix + "mlp.3.bias"];
    }

    /// <summary>Token width D.</summary>
    public long Width { get; }

    /// <summary>Width of the image features the block attends to.</summary>
    public long ConditionWidth => _crossKeyValue.Size(1);

    /// <summary>
    /// Updates <paramref name="x"/> (B, L, D) in place, attending to <paramref name="condition"/> (B, T, C_cond),
    /// modulated by <paramref name="modulation"/> (B, E) = SiLU(camera embedding).
    /// </summary>
    public void Forward(IBackend backend, Tensor x, Tensor condition, Tensor modulation)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(modulation);
        long batch = x.Size(0), tokens = x.Size(1), width = Width, conditionTokens = condition.Size(1);
        var scale = 1.0f / MathF.Sqrt(width / _heads);
        using var scratch = new ScratchTensors(backend);
        var normed = scratch.Empty(batch, tokens, width);
        var attended = scratch.Empty(batch, tokens, width);

        // Cross-attention to the image features.
        Modulate(backend, scratch, normed, x, modulation, 0);
        var query = scratch.Empty(batch, tokens, width);
        backend.Gemm(query, normed, _crossQuery, transposeB: true);
        var keyValue = scratch.Empty(batch, conditionTokens, 2 * width);
        backend.Gemm(keyValue, condition, _crossKeyValue, transposeB: true);
        backend.Attention(attended, null, query, new ColumnSlice(keyValue, 0), new ColumnSlice(keyValue, width), _heads, scale);
        backend.Gemm(x, attended, _crossOut, residual: x, transposeB: true);

        // Self-attention among the triplane tokens.
        Modulate(backend, scratch, normed, x, modulation, 1);
        var qkv = scratch.Empty(batch, tokens, 3 * width);
        backend.Gemm(qkv, normed, _selfInProjection, transposeB: true);
        backend.Attention(attended, null, new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width), _heads, scale);
        backend.Gemm(x, attended, _selfOut, residual: x, transposeB: true);

        // MLP.
        Modulate(backend, scratch, normed, x, modulation, 2);
        var hidden = scratch.Empty(batch, tokens, 4 * width);
        backend.Gemm(hidden, normed, _mlpInWeight, _mlpInBias, transposeB: true);
        backend.Activate(hidden, hidden, Activation.Gelu);
        backend.Gemm(x, hidden, _mlpOutWeight, _mlpOutBias, residual: x, transposeB: true);
    }

    // ModLN k: [shift | scale] = Linear_k(SiLU(c̃)) (shift first), then LN(x)·(1 + scale) + shift.
    private void Modulate(IBackend backend, ScratchTensors scratch, Tensor output, Tensor x, Tensor modulation, int k)
    {
        long batch = x.Size(0), width = Width;
        var shiftScale = scratch.Empty(batch, 2 * width);
        backend.Gemm(shiftScale, modulation, _modulationWeight[k], _modulationBias[k], transposeB: true);
        var shift = scratch.Empty(batch, width);
        var scale = scratch.Empty(batch, width);
        for (long b = 0; b < batch; b++)
        {
            backend.Copy(shift, b * width, shiftScale, 2 * b * width, width);
            backend.Copy(scale, b * width, shiftScale, (2 * b + 1) * width, width);
        }
        backend.ModLN(output, null, null, x, _normWeight[k], _normBias[k], shift, scale, ModelConfig.LayerNormEpsilon);
    }

    // q (D, D) and kv (2D, C_cond) from in_proj_weight (3D, D) rows [q; k; v], or from q/k/v_proj_weight;
    // detach: free the originals (inference), else leave them in the set (training updates them).
    private static (Tensor Query, Tensor KeyValue) RepackCrossAttention(IBackend placement, WeightSet weights, string prefix, long width, bool detach)
    {
        var packedName = prefix + "cross_attn.in_proj_weight";
        Tensor query, keyValue;
        if (weights.Contains(packedName))
        {
            var packed = detach ? weights.Detach(packedName) : weights[packedName];
            var inputWidth = packed.Size(1);
            query = placement.Empty([width, inputWidth]);
            keyValue = placement.Empty([2 * width, inputWidth]);
            Copy(placement, query, 0, packed, 0);
            Copy(placement, keyValue, 0, packed, width * inputWidth);
            if (detach)
            {
                packed.Dispose();
            }
            return (query, keyValue);
        }
        if (!detach)
        {
            var keyWidth = weights[prefix + "cross_attn.k_proj_weight"].Size(1);
            query = placement.Empty([width, width]);
            keyValue = placement.Empty([2 * width, keyWidth]);
            CopyNamedCrossAttention(placement, weights, prefix, query, keyValue);
            return (query, keyValue);
        }
        query = weights.Detach(prefix + "cross_attn.q_proj_weight");
        using var key = weights.Detach(prefix + "cross_attn.k_proj_weight");
        using var value = weights.Detach(prefix + "cross_attn.v_proj_weight");
        keyValue = placement.Empty([2 * width, key.Size(1)]);
        Copy(placement, keyValue, 0, key, 0);
        Copy(placement, keyValue, key.ElementCount, value, 0);
        return (query, keyValue);
    }

    // The packed pair from the named tensors of a trainable block.
    private static void CopyNamedCrossAttention(IBackend placement, WeightSet weights, string prefix, Tensor query, Tensor keyValue)
    {
        var packedName = prefix + "cross_attn.in_proj_weight";
        if (weights.Contains(packedName))
        {
            var packed = weights[packedName];
            Copy(placement, query, 0, packed, 0);
            Copy(placement, keyValue, 0, packed, query.ElementCount);
            return;
        }
        var key = weights[prefix + "cross_attn.k_proj_weight"];
        Copy(placement, query, 0, weights[prefix + "cross_attn.q_proj_weight"], 0);
        Copy(placement, keyValue, 0, key, 0);
        Copy(placement, keyValue, key.ElementCount, weights[prefix + "cross_attn.v_proj_weight"], 0);
    }

    /// <summary>Re-copies the packed cross-attention projections from the named tensors (trainable blocks; after an update).</summary>
    public void SyncCrossAttention()
    {
        if (_trainableWeights is not null)
        {
            CopyNamedCrossAttention(_placement, _trainableWeights, _prefix, _crossQuery, _crossKeyValue);
        }
    }

    // Scatters the gradients of the packed q (D, D) and kv (2D, C) into the named cross-attention gradients.
    private void AccumulateCrossAttention(IBackend backend, GradientSet gradients, Tensor gradQuery, Tensor gradKeyValue)
    {
        var packedName = _prefix + "cross_attn.in_proj_weight";
        if (_trainableWeights!.Contains(packedName))
        {
            GradientOps.AddSlice(backend, gradients[packedName], 0, gradQuery, 0, gradQuery.ElementCount);
            GradientOps.AddSlice(backend, gradients[packedName], gradQuery.ElementCount, gradKeyValue, 0, gradKeyValue.ElementCount);
            return;
        }
        var half = gradKeyValue.ElementCount / 2;
        GradientOps.Accumulate(backend, gradients[_prefix + "cross_attn.q_proj_weight"], gradQuery);
        GradientOps.AddSlice(backend, gradients[_prefix + "cross_attn.k_proj_weight"], 0, gradKeyValue, 0, half);
        GradientOps.AddSlice(backend, gradients[_prefix + "cross_attn.v_proj_weight"], 0, gradKeyValue, half, half);
    }

    /// <summary>
    /// <see cref="Forward"/> that also keeps what <see cref="Backward"/> needs, in <paramref name="saved"/>; the block
    /// must be trainable. Updates <paramref name="x"/> in place.
    /// </summary>
    public DecoderBlockActivations ForwardTraining(IBackend backend, Tensor x, Tensor condition, Tensor modulation, ScratchTensors saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(modulation);
        ArgumentNullException.ThrowIfNull(saved);
        if (_trainableWeights is null)
        {
            throw new LrmInternalException($"decoder block '{_prefix}': loaded for inference (its named cross-attention weights were freed); load the model trainable");
        }
        long batch = x.Size(0), tokens = x.Size(1), width = Width, conditionTokens = condition.Size(1);
        var scale = AttentionScale;
        var norms = new ModulatedNormActivations[3];
        var a = new DecoderBlockActivations { Norms = norms };

        norms[0] = ModulateTraining(backend, saved, x, modulation, 0);
        a.Query = saved.Empty(batch, tokens, width);
        backend.Gemm(a.Query, norms[0].Output, _crossQuery, transposeB: true);
        a.KeyValue = saved.Empty(batch, conditionTokens, 2 * width);
        backend.Gemm(a.KeyValue, condition, _crossKeyValue, transposeB: true);
        a.CrossAttended = saved.Empty(batch, tokens, width);
        a.CrossLogSumExp = saved.Empty(batch, _heads, tokens);
        backend.Attention(a.CrossAttended, a.CrossLogSumExp, a.Query, new ColumnSlice(a.KeyValue, 0), new ColumnSlice(a.KeyValue, width), _heads, scale);
        backend.Gemm(x, a.CrossAttended, _crossOut, residual: x, transposeB: true);

        norms[1] = ModulateTraining(backend, saved, x, modulation, 1);
        a.Qkv = saved.Empty(batch, tokens, 3 * width);
        backend.Gemm(a.Qkv, norms[1].Output, _selfInProjection, transposeB: true);
        a.SelfAttended = saved.Empty(batch, tokens, width);
        a.SelfLogSumExp = saved.Empty(batch, _heads, tokens);
        backend.Attention(a.SelfAttended, a.SelfLogSumExp, new ColumnSlice(a.Qkv, 0), new ColumnSlice(a.Qkv, width), new ColumnSlice(a.Qkv, 2 * width), _heads, scale);
        backend.Gemm(x, a.SelfAttended, _selfOut, residual: x, transposeB: true);

        norms[2] = ModulateTraining(backend, saved, x, modulation, 2);
        a.Hidden = saved.Empty(batch, tokens, 4 * width);
        backend.Gemm(a.Hidden, norms[2].Output, _mlpInWeight, _mlpInBias, transposeB: true);
        a.Activated = saved.Empty(batch, tokens, 4 * width);
        backend.Activate(a.Activated, a.Hidden, Activation.Gelu);
        backend.Gemm(x, a.Activated, _mlpOutWeight, _mlpOutBias, residual: x, transposeB: true);
        return a;
    }

    /// <summary>
    /// Backward of the block: <paramref name="gradX"/> (B, L, D) holds ∂L/∂output on entry and ∂L/∂input on return;
    /// ∂L/∂condition (B, T, C) and ∂L/∂modulation (B, E) are added to <paramref name="gradCondition"/> and
    /// <paramref name="gradModulation"/>; parameter gradients accumulate into <paramref name="gradients"/>.
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradX, Tensor gradCondition, Tensor gradModulation,
        Tensor condition, Tensor modulation, DecoderBlockActivations saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradX);
        ArgumentNullException.ThrowIfNull(gradCondition);
        ArgumentNullException.ThrowIfNull(saved);
        long batch = gradX.Size(0), tokens = gradX.Size(1), width = Width;
        var scale = AttentionScale;
        string p = _prefix;
        using var scratch = new ScratchTensors(backend);
        var gradNormed = scratch.Empty(batch, tokens, width);
        var gradAttended = scratch.Empty(batch, tokens, width);

        // MLP: x3 = x2 + mlp.3(GELU(mlp.0(ModLN₃(x2)))).
        var gradHidden = scratch.Empty(batch, tokens, 4 * width);
        GradientOps.LinearBackward(backend, gradHidden, gradients[p + "mlp.3.weight"], gradients[p + "mlp.3.bias"], gradX, saved.Activated, _mlpOutWeight);
        backend.ActivateBackward(gradHidden, gradHidden, saved.Hidden, Activation.Gelu);
        GradientOps.LinearBackward(backend, gradNormed, gradients[p + "mlp.0.weight"], gradients[p + "mlp.0.bias"], gradHidden, saved.Norms[2].Output, _mlpInWeight);
        ModulateBackward(backend, gradients, gradX, gradModulation, gradNormed, modulation, saved.Norms[2], 2);

        // Self-attention: x2 = x1 + out(Attention(in(ModLN₂(x1)))).
        GradientOps.LinearBackward(backend, gradAttended, gradients[p + "self_attn.out_proj.weight"], null, gradX, saved.SelfAttended, _selfOut);
        var gradQkv = scratch.Empty(batch, tokens, 3 * width);
        backend.AttentionBackward(new ColumnSlice(gradQkv, 0), new ColumnSlice(gradQkv, width), new ColumnSlice(gradQkv, 2 * width), gradAttended,
            saved.SelfAttended, saved.SelfLogSumExp, new ColumnSlice(saved.Qkv, 0), new ColumnSlice(saved.Qkv, width), new ColumnSlice(saved.Qkv, 2 * width), _heads, scale);
        GradientOps.LinearBackward(backend, gradNormed, gradients[p + "self_attn.in_proj_weight"], null, gradQkv, saved.Norms[1].Output, _selfInProjection);
        ModulateBackward(backend, gradients, gradX, gradModulation, gradNormed, modulation, saved.Norms[1], 1);

        // Cross-attention: x1 = x0 + out(Attention(q(ModLN₁(x0)), kv(condition))).
        GradientOps.LinearBackward(backend, gradAttended, gradients[p + "cross_attn.out_proj.weight"], null, gradX, saved.CrossAttended, _crossOut);
        var gradQuery = scratch.Empty(batch, tokens, width);
        var gradKeyValue = scratch.Empty(saved.KeyValue.Shape);
        backend.AttentionBackward(gradQuery, new ColumnSlice(gradKeyValue, 0), new ColumnSlice(gradKeyValue, width), gradAttended,
            saved.CrossAttended, saved.CrossLogSumExp, saved.Query, new ColumnSlice(saved.KeyValue, 0), new ColumnSlice(saved.KeyValue, width), _heads, scale);
        var gradQueryWeight = scratch.Empty(_crossQuery.Shape);
        var gradKeyValueWeight = scratch.Empty(_crossKeyValue.Shape);
        backend.GemmBackward(gradNormed, gradQueryWeight, null, gradQuery, saved.Norms[0].Output, _crossQuery, transposeB: true);
        var gradConditionPart = scratch.Empty(condition.Shape);
        backend.GemmBackward(gradConditionPart, gradKeyValueWeight, null, gradKeyValue, condition, _crossKeyValue, transposeB: true);
        backend.Add(gradCondition, gradCondition, gradConditionPart);
        AccumulateCrossAttention(backend, gradients, gradQueryWeight, gradKeyValueWeight);
        ModulateBackward(backend, gradients, gradX, gradModulation, gradNormed, modulation, saved.Norms[0], 0);
    }

    private float AttentionScale => 1.0f / MathF.Sqrt(Width / _heads);

    // ModLN k with its statistics, shift, scale and input kept.
    private ModulatedNormActivations ModulateTraining(IBackend backend, ScratchTensors saved, Tensor x, Tensor modulation, int k)
    {
        long batch = x.Size(0), width = Width;
        var n = new ModulatedNormActivations
        {
            Input = saved.Empty(x.Shape),
            Mean = saved.Empty(x.Size(0), x.Size(1)),
            Rstd = saved.Empty(x.Size(0), x.Size(1)),
            Shift = saved.Empty(batch, width),
            Scale = saved.Empty(batch, width),
            Output = saved.Empty(x.Shape),
        };
        backend.Copy(n.Input, 0, x, 0, x.ElementCount);
        using var scratch = new ScratchTensors(backend);
        var shiftScale = scratch.Empty(batch, 2 * width);
        backend.Gemm(shiftScale, modulation, _modulationWeight[k], _modulationBias[k], transposeB: true);
        for (long b = 0; b < batch; b++)
        {
            backend.Copy(n.Shift, b * width, shiftScale, 2 * b * width, width);
            backend.Copy(n.Scale, b * width, shiftScale, (2 * b + 1) * width, width);
        }
        backend.ModLN(n.Output, n.Mean, n.Rstd, x, _normWeight[k], _normBias[k], n.Shift, n.Scale, ModelConfig.LayerNormEpsilon);
        return n;
    }

    // Backward of ModLN k from ∂L/∂output: ∂L/∂x is added to gradX, ∂L/∂modulation (through normk.mlp.1) to gradModulation.
    private void ModulateBackward(IBackend backend, GradientSet gradients, Tensor gradX, Tensor gradModulation, Tensor gradOutput, Tensor modulation,
        ModulatedNormActivations saved, int k)
    {
        long batch = gradX.Size(0), width = Width;
        string p = $"{_prefix}norm{k + 1}.";
        using var scratch = new ScratchTensors(backend);
        var gradInput = scratch.Empty(gradX.Shape);
        var gradShift = scratch.Empty(batch, width);
        var gradScale = scratch.Empty(batch, width);
        backend.ModLNBackward(gradInput, gradients[p + "norm.weight"], gradients[p + "norm.bias"], gradShift, gradScale, gradOutput,
            saved.Mean, saved.Rstd, saved.Input, _normWeight[k], _normBias[k], saved.Scale);
        backend.Add(gradX, gradX, gradInput);
        var gradShiftScale = scratch.Empty(batch, 2 * width);
        for (long b = 0; b < batch; b++)
        {
            backend.Copy(gradShiftScale, 2 * b * width, gradShift, b * width, width);
            backend.Copy(gradShiftScale, (2 * b + 1) * width, gradScale, b * width, width);
        }
        var gradModulationPart = scratch.Empty(modulation.Shape);
        GradientOps.LinearBackward(backend, gradModulationPart, gradients[p + "mlp.1.weight"], gradients[p + "mlp.1.bias"], gradShiftScale, modulation, _modulationWeight[k]);
        backend.Add(gradModulation, gradModulation, gradModulationPart);
    }

    // Copies as much of source (from sourceOffset) as fits in destination (from destinationOffset), on the weights' backend.
    private static void Copy(IBackend placement, Tensor destination, long destinationOffset, Tensor source, long sourceOffset)
    {
        var count = Math.Min(destination.ElementCount - destinationOffset, source.ElementCount - sourceOffset);
        placement.Copy(destination, destinationOffset, source, sourceOffset, count);
    }

    /// <summary>Frees the repacked cross-attention weights (the rest belongs to the <see cref="WeightSet"/>).</summary>
    public void Dispose()
    {
        _crossQuery.Dispose();
        _crossKeyValue.Dispose();
    }
}

/// <summary>What the backward of one ModLN needs: its input, statistics, shift and scale, and its output (the next GEMM's input).</summary>
internal sealed class ModulatedNormActivations
{
    /// <summary>ModLN input (B, L, D).</summary>
    public required Tensor Input { get; init; }
    /// <summary>LayerNorm mean (B, L).</summary>
    public required Tensor Mean { get; init; }
    /// <summary>LayerNorm 1/σ (B, L).</summary>
    public required Tensor Rstd { get; init; }
    /// <summary>Shift (B, D).</summary>
    public required Tensor Shift { get; init; }
    /// <summary>Scale (B, D).</summary>
    public required Tensor Scale { get; init; }
    /// <summary>ModLN output (B, L, D).</summary>
    public required Tensor Output { get; init; }
}

/// <summary>What <see cref="DecoderBlock.Backward"/> needs from the training forward (tensors owned by the caller's scope).</summary>
internal sealed class DecoderBlockActivations
{
    /// <summary>The three ModLNs (cross, self, MLP).</summary>
    public required ModulatedNormActivations[] Norms { get; init; }
    /// <summary>Cross-attention queries (B, L, D).</summary>
    public Tensor Query { get; set; } = null!;
    /// <summary>Cross-attention keys and values (B, T, 2D).</summary>
    public Tensor KeyValue { get; set; } = null!;
    /// <summary>Cross-attention output (B, L, D).</summary>
    public Tensor CrossAttended { get; set; } = null!;
    /// <summary>Cross-attention log-sum-exp (B, H, L).</summary>
    public Tensor CrossLogSumExp { get; set; } = null!;
    /// <summary>Self-attention packed q, k, v (B, L, 3D).</summary>
    public Tensor Qkv { get; set; } = null!;
    /// <summary>Self-attention output (B, L, D).</summary>
    public Tensor SelfAttended { get; set; } = null!;
    /// <summary>Self-attention log-sum-exp (B, H, L).</summary>
    public Tensor SelfLogSumExp { get; set; } = null!;
    /// <summary>mlp.0 output before GELU (B, L, 4D).</summary>
    public Tensor Hidden { get; set; } = null!;
    /// <summary>GELU output (B, L, 4D).</summary>
    public Tensor Activated { get; set; } = null!;
}
