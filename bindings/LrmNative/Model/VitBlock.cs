using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// One ViT block (pre-LN) — DINOv2's with LayerScale:
/// <c>x += ls1 ⊙ proj(Attention(qkv(LN₁(x))))</c>, <c>x += ls2 ⊙ fc2(GELU(fc1(LN₂(x))))</c>; DINO v1's
/// without (the gammas are 1); LayerNorm eps 1e-6, packed qkv with bias, exact GELU, MLP 4× wide.
/// </summary>
internal sealed class VitBlock
{
    private readonly Tensor _norm1Weight, _norm1Bias, _qkvWeight, _qkvBias, _projWeight, _projBias;
    private readonly Tensor _norm2Weight, _norm2Bias, _fc1Weight, _fc1Bias, _fc2Weight, _fc2Bias;
    private readonly Tensor? _gamma1, _gamma2;
    private readonly int _heads;
    private readonly string _prefix;

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
        _prefix = prefix;
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
        using var scratch = new ScratchTensors(backend);
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

    /// <summary>
    /// <see cref="Forward"/> that also keeps what <see cref="Backward"/> needs (docs/training.md, "What the backward
    /// keeps"), allocated in <paramref name="saved"/>. Updates <paramref name="x"/> in place like the forward.
    /// </summary>
    public VitBlockActivations ForwardTraining(IBackend backend, Tensor x, ScratchTensors saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(saved);
        long batch = x.Size(0), tokens = x.Size(1), width = Width;
        var a = new VitBlockActivations
        {
            Input = saved.Empty(batch, tokens, width),
            Mean1 = saved.Empty(batch, tokens),
            Rstd1 = saved.Empty(batch, tokens),
            Normed1 = saved.Empty(batch, tokens, width),
            Qkv = saved.Empty(batch, tokens, 3 * width),
            Attended = saved.Empty(batch, tokens, width),
            LogSumExp = saved.Empty(batch, _heads, tokens),
            Projected1 = saved.Empty(batch, tokens, width),
            Middle = saved.Empty(batch, tokens, width),
            Mean2 = saved.Empty(batch, tokens),
            Rstd2 = saved.Empty(batch, tokens),
            Normed2 = saved.Empty(batch, tokens, width),
            Hidden = saved.Empty(batch, tokens, 4 * width),
            Activated = saved.Empty(batch, tokens, 4 * width),
            Projected2 = saved.Empty(batch, tokens, width),
        };
        backend.Copy(a.Input, 0, x, 0, x.ElementCount);
        backend.LayerNorm(a.Normed1, a.Mean1, a.Rstd1, x, _norm1Weight, _norm1Bias, ModelConfig.LayerNormEpsilon);
        backend.Gemm(a.Qkv, a.Normed1, _qkvWeight, _qkvBias, transposeB: true);
        var scale = AttentionScale;
        backend.Attention(a.Attended, a.LogSumExp, new ColumnSlice(a.Qkv, 0), new ColumnSlice(a.Qkv, width), new ColumnSlice(a.Qkv, 2 * width), _heads, scale);
        backend.Gemm(a.Projected1, a.Attended, _projWeight, _projBias, transposeB: true);
        Residual(backend, x, a.Projected1, _gamma1);
        backend.Copy(a.Middle, 0, x, 0, x.ElementCount);

        backend.LayerNorm(a.Normed2, a.Mean2, a.Rstd2, x, _norm2Weight, _norm2Bias, ModelConfig.LayerNormEpsilon);
        backend.Gemm(a.Hidden, a.Normed2, _fc1Weight, _fc1Bias, transposeB: true);
        backend.Activate(a.Activated, a.Hidden, Activation.Gelu);
        backend.Gemm(a.Projected2, a.Activated, _fc2Weight, _fc2Bias, transposeB: true);
        Residual(backend, x, a.Projected2, _gamma2);
        return a;
    }

    /// <summary>
    /// Backward of the block: <paramref name="gradX"/> (B, T, C) holds ∂L/∂output on entry and ∂L/∂input on return
    /// (overwritten); the block's parameter gradients accumulate into <paramref name="gradients"/>.
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradX, VitBlockActivations saved)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradX);
        ArgumentNullException.ThrowIfNull(saved);
        long batch = gradX.Size(0), tokens = gradX.Size(1), width = Width;
        using var scratch = new ScratchTensors(backend);
        var gradBranch = scratch.Empty(batch, tokens, width);
        var gradHidden = scratch.Empty(batch, tokens, 4 * width);
        var gradNormed = scratch.Empty(batch, tokens, width);
        var gradResidual = scratch.Empty(batch, tokens, width);
        var gradAttended = scratch.Empty(batch, tokens, width);
        var gradQkv = scratch.Empty(batch, tokens, 3 * width);
        string p = _prefix;

        // x_out = middle + γ2 ⊙ fc2(GELU(fc1(LN2(middle)))).
        ResidualBackward(backend, gradients, gradBranch, gradX, saved.Projected2, _gamma2, p + "ls2.gamma");
        GradientOps.LinearBackward(backend, gradHidden, gradients[p + "mlp.fc2.weight"], gradients[p + "mlp.fc2.bias"], gradBranch, saved.Activated, _fc2Weight);
        backend.ActivateBackward(gradHidden, gradHidden, saved.Hidden, Activation.Gelu);
        GradientOps.LinearBackward(backend, gradNormed, gradients[p + "mlp.fc1.weight"], gradients[p + "mlp.fc1.bias"], gradHidden, saved.Normed2, _fc1Weight);
        backend.LayerNormBackward(gradResidual, gradients[p + "norm2.weight"], gradients[p + "norm2.bias"], gradNormed, saved.Mean2, saved.Rstd2, saved.Middle, _norm2Weight);
        backend.Add(gradX, gradX, gradResidual);

        // middle = x + γ1 ⊙ proj(Attention(qkv(LN1(x)))).
        ResidualBackward(backend, gradients, gradBranch, gradX, saved.Projected1, _gamma1, p + "ls1.gamma");
        GradientOps.LinearBackward(backend, gradAttended, gradients[p + "attn.proj.weight"], gradients[p + "attn.proj.bias"], gradBranch, saved.Attended, _projWeight);
        backend.AttentionBackward(new ColumnSlice(gradQkv, 0), new ColumnSlice(gradQkv, width), new ColumnSlice(gradQkv, 2 * width), gradAttended,
            saved.Attended, saved.LogSumExp, new ColumnSlice(saved.Qkv, 0), new ColumnSlice(saved.Qkv, width), new ColumnSlice(saved.Qkv, 2 * width), _heads, AttentionScale);
        GradientOps.LinearBackward(backend, gradNormed, gradients[p + "attn.qkv.weight"], gradients[p + "attn.qkv.bias"], gradQkv, saved.Normed1, _qkvWeight);
        backend.LayerNormBackward(gradResidual, gradients[p + "norm1.weight"], gradients[p + "norm1.bias"], gradNormed, saved.Mean1, saved.Rstd1, saved.Input, _norm1Weight);
        backend.Add(gradX, gradX, gradResidual);
    }

    private float AttentionScale => 1.0f / MathF.Sqrt(Width / _heads);

    // ∂L/∂update of x += γ ⊙ update (dγ accumulates), or of x += update.
    private static void ResidualBackward(IBackend backend, GradientSet gradients, Tensor gradUpdate, Tensor gradOutput, Tensor update, Tensor? gamma, string gammaName)
    {
        if (gamma is null)
        {
            backend.Copy(gradUpdate, 0, gradOutput, 0, gradOutput.ElementCount);
        }
        else
        {
            backend.LayerScaleBackward(gradUpdate, gradients[gammaName], null, gradOutput, update, gamma);
        }
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

/// <summary>What <see cref="VitBlock.Backward"/> needs from the forward (tensors owned by the caller's scope).</summary>
internal sealed class VitBlockActivations
{
    /// <summary>Block input x (B, T, C).</summary>
    public required Tensor Input { get; init; }
    /// <summary>LN1 statistics (B, T).</summary>
    public required Tensor Mean1 { get; init; }
    /// <summary>LN1 statistics (B, T).</summary>
    public required Tensor Rstd1 { get; init; }
    /// <summary>LN1(x) (B, T, C).</summary>
    public required Tensor Normed1 { get; init; }
    /// <summary>Packed q, k, v (B, T, 3C).</summary>
    public required Tensor Qkv { get; init; }
    /// <summary>Attention output (B, T, C).</summary>
    public required Tensor Attended { get; init; }
    /// <summary>Attention log-sum-exp (B, H, T).</summary>
    public required Tensor LogSumExp { get; init; }
    /// <summary>proj output before LayerScale (B, T, C).</summary>
    public required Tensor Projected1 { get; init; }
    /// <summary>x after the attention residual (B, T, C).</summary>
    public required Tensor Middle { get; init; }
    /// <summary>LN2 statistics (B, T).</summary>
    public required Tensor Mean2 { get; init; }
    /// <summary>LN2 statistics (B, T).</summary>
    public required Tensor Rstd2 { get; init; }
    /// <summary>LN2(middle) (B, T, C).</summary>
    public required Tensor Normed2 { get; init; }
    /// <summary>fc1 output before GELU (B, T, 4C).</summary>
    public required Tensor Hidden { get; init; }
    /// <summary>GELU(fc1) (B, T, 4C).</summary>
    public required Tensor Activated { get; init; }
    /// <summary>fc2 output before LayerScale (B, T, C).</summary>
    public required Tensor Projected2 { get; init; }
}
