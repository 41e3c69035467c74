using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// One ViT block (pre-LN), forward only — DINOv2's with LayerScale:
/// <c>x += ls1 ⊙ proj(Attention(qkv(LN₁(x))))</c>, <c>x += ls2 ⊙ fc2(GELU(fc1(LN₂(x))))</c>; DINO v1's
/// without (the gammas are 1); LayerNorm eps 1e-6, packed qkv with bias, exact GELU, MLP 4× wide.
/// </summary>
internal sealed class VitBlock
{
    private readonly Tensor _norm1Weight, _norm1Bias, _qkvWeight, _qkvBias, _projWeight, _projBias;
    private readonly Tensor _norm2Weight, _norm2Bias, _fc1Weight, _fc1Bias, _fc2Weight, _fc2Bias;
    private readonly Tensor? _gamma1, _gamma2;
    private readonly int _heads;

    /// <summary>
    /// Binds the block's weights under <paramref name="prefix"/> (e.g. "encoder.model.blocks.0."); the
    /// LayerScale gammas ls1/ls2 only when <paramref name="layerScale"/>.
    /// </summary>
    public VitBlock(WeightSet weights, string prefix, int heads, bool layerScale = true)
    {
        ArgumentNullException.ThrowIfNull(weights);
        _norm1Weight = weights[prefix + "norm1.weight"];
        _norm1Bias = weights[prefix + "norm1.bias"];
        _qkvWeight = weights[prefix + "attn.qkv.weight"];
        _qkvBias = weights[prefix + "attn.qkv.bias"];
        _projWeight = weights[prefix + "attn.proj.weight"];
        _projBias = weights[prefix + "attn.proj.bias"];
        _gamma1 = layerScale ? weights[prefix + "ls1.gamma"] : null;
        _norm2Weight = weights[prefix + "norm2.weight"];
        _norm2Bias = weights[prefix + "norm2.bias"];
        _fc1Weight = weights[prefix + "mlp.fc1.weight"];
        _fc1Bias = weights[prefix + "mlp.fc1.bias"];
        _fc2Weight = weights[prefix + "mlp.fc2.weight"];
        _fc2Bias = weights[prefix + "mlp.fc2.bias"];
        _gamma2 = layerScale ? weights[prefix + "ls2.gamma"] : null;
        _heads = heads;
        Width = _norm1Weight.Size(0);
        if (Width % heads != 0)
        {
            throw new LrmShapeException($"{weights.Source}: block '{prefix}' width {Width} is not a multiple of {heads} heads");
        }
    }

    /// <summary>Token width C.</summary>
    public long Width { get; }

    /// <summary>Updates <paramref name="x"/> (B, T, C) in place.</summary>
    public void Forward(IBackend backend, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(x);
        long batch = x.Size(0), tokens = x.Size(1), width = Width;
        using var scratch = new ScratchTensors();
        var normed = scratch.Empty(batch, tokens, width);
        var qkv = scratch.Empty(batch, tokens, 3 * width);
        var attended = scratch.Empty(batch, tokens, width);
        var projected = scratch.Empty(batch, tokens, width);
        var hidden = scratch.Empty(batch, tokens, 4 * width);

        backend.LayerNorm(normed, null, null, x, _norm1Weight, _norm1Bias, ModelConfig.LayerNormEpsilon);
        backend.Gemm(qkv, normed, _qkvWeight, _qkvBias, transposeB: true);
        var scale = 1.0f / MathF.Sqrt(width / _heads);
        backend.Attention(attended, null, new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width), _heads, scale);
        backend.Gemm(projected, attended, _projWeight, _projBias, transposeB: true);
        Residual(backend, x, projected, _gamma1);

        backend.LayerNorm(normed, null, null, x, _norm2Weight, _norm2Bias, ModelConfig.LayerNormEpsilon);
        backend.Gemm(hidden, normed, _fc1Weight, _fc1Bias, transposeB: true);
        backend.Activate(hidden, hidden, Activation.Gelu);
        backend.Gemm(projected, hidden, _fc2Weight, _fc2Bias, transposeB: true);
        Residual(backend, x, projected, _gamma2);
    }

    // x += gamma ⊙ update (LayerScale), or x += update without it.
    private static void Residual(IBackend backend, Tensor x, Tensor update, Tensor? gamma)
    {
        if (gamma is null)
        {
            backend.Add(x, x, update);
        }
        else
        {
            backend.LayerScale(x, update, gamma, x);
        }
    }
}
