using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// One image-to-triplane decoder block (LRM §3.2; OpenLRM's ConditionModulationBlock), forward only:
/// <c>x += CrossAttn(ModLN₁(x), cond)</c>, <c>x += SelfAttn(ModLN₂(x))</c>, <c>x += MLP(ModLN₃(x))</c>.
/// ModLN = LayerNorm (eps 1e-6, affine) then <c>·(1 + scale) + shift</c> with
/// <c>[shift | scale] = Linear(SiLU(camera embedding))</c>. Attention without biases (nn.MultiheadAttention,
/// bias=False); MLP Linear(D, 4D) → exact GELU → Linear(4D, D).
/// The cross-attention projections are repacked at load into q (D, D) and a joint kv (2D, C_cond), whether
/// the checkpoint packs them (in_proj_weight) or not (q/k/v_proj_weight), so the keys and values of the
/// image features come from one GEMM.
/// </summary>
internal sealed class DecoderBlock : IDisposable
{
    private readonly Tensor[] _normWeight = new Tensor[3], _normBias = new Tensor[3];
    private readonly Tensor[] _modulationWeight = new Tensor[3], _modulationBias = new Tensor[3];
    private readonly Tensor _crossQuery, _crossKeyValue, _crossOut, _selfInProjection, _selfOut;
    private readonly Tensor _mlpInWeight, _mlpInBias, _mlpOutWeight, _mlpOutBias;
    private readonly int _heads;

    /// <summary>
    /// Binds the block's weights under <paramref name="prefix"/> (e.g. "transformer.layers.0.") and takes
    /// over its cross-attention projections (repacked; the originals are freed).
    /// </summary>
    public DecoderBlock(WeightSet weights, string prefix, int heads)
    {
        ArgumentNullException.ThrowIfNull(weights);
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
        (_crossQuery, _crossKeyValue) = RepackCrossAttention(weights, prefix, Width);
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
        using var scratch = new ScratchTensors();
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

    // q (D, D) and kv (2D, C_cond) from in_proj_weight (3D, D) rows [q; k; v], or from q/k/v_proj_weight.
    private static (Tensor Query, Tensor KeyValue) RepackCrossAttention(WeightSet weights, string prefix, long width)
    {
        var packedName = prefix + "cross_attn.in_proj_weight";
        Tensor query, keyValue;
        if (weights.Contains(packedName))
        {
            using var packed = weights.Detach(packedName);
            var inputWidth = packed.Size(1);
            query = Tensor.Empty([width, inputWidth]);
            keyValue = Tensor.Empty([2 * width, inputWidth]);
            Copy(query, 0, packed, 0);
            Copy(keyValue, 0, packed, width * inputWidth);
            return (query, keyValue);
        }
        query = weights.Detach(prefix + "cross_attn.q_proj_weight");
        using var key = weights.Detach(prefix + "cross_attn.k_proj_weight");
        using var value = weights.Detach(prefix + "cross_attn.v_proj_weight");
        keyValue = Tensor.Empty([2 * width, key.Size(1)]);
        Copy(keyValue, 0, key, 0);
        Copy(keyValue, key.ElementCount, value, 0);
        return (query, keyValue);
    }

    // Host copy at load time (weights always live on the host before a backend sees them).
    private static void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset)
    {
        var count = Math.Min(destination.ElementCount - destinationOffset, source.ElementCount - sourceOffset);
        source.AsSpan<float>().Slice((int)sourceOffset, (int)count).CopyTo(destination.AsSpan<float>()[(int)destinationOffset..]);
    }

    /// <summary>Frees the repacked cross-attention weights (the rest belongs to the <see cref="WeightSet"/>).</summary>
    public void Dispose()
    {
        _crossQuery.Dispose();
        _crossKeyValue.Dispose();
    }
}
