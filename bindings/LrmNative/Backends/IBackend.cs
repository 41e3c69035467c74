namespace LrmNative.Backends;

/// <summary>Activation functions the fused ops understand (values match <c>lrm_activation</c>).</summary>
public enum Activation
{
    /// <summary>Identity.</summary>
    None = 0,
    /// <summary>max(x, 0).</summary>
    Relu = 1,
    /// <summary>Exact GELU, 0.5·x·(1 + erf(x/√2)).</summary>
    Gelu = 2,
    /// <summary>x·sigmoid(x).</summary>
    Silu = 3,
}

/// <summary>Image resampling filters (values match <c>lrm_resize_mode</c>).</summary>
public enum ResizeMode
{
    /// <summary>Bilinear (triangle filter when antialiased).</summary>
    Bilinear = 0,
    /// <summary>Keys cubic convolution with a configurable coefficient a.</summary>
    Bicubic = 1,
}

/// <summary>
/// A column slice of a row-major (batch, tokens, columns) tensor: lets attention read q, k
/// and v straight out of a packed projection such as qkv (B, T, 3C).
/// </summary>
/// <param name="Source">The tensor holding the rows.</param>
/// <param name="ColumnOffset">First column of the slice.</param>
public readonly record struct ColumnSlice(Tensor Source, long ColumnOffset = 0)
{
    /// <summary>The whole tensor.</summary>
    public static implicit operator ColumnSlice(Tensor source) => new(source);
}

/// <summary>
/// Every op of the engine, forward and backward, in one interface with two
/// implementations (CPU, CUDA). Argument order follows the house rule: outputs,
/// saved-for-backward, inputs, parameters, sizes. Backward: input gradients first;
/// parameter gradients accumulate (+=), activation gradients overwrite.
/// All tensors are fp32 unless an op says otherwise.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name: "cpu" or "cuda".</summary>
    string Name { get; }

    /// <summary>The device the backend computes on.</summary>
    Device Device { get; }

    // ---- tensors and transfers -------------------------------------------------

    /// <summary>A new tensor on this backend's device, contents unspecified (the CPU: host memory; CUDA: the caching allocator).</summary>
    Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32);

    /// <summary>Sets every element of <paramref name="output"/> (fp32, bf16 rounded to nearest even, or Int32 truncated) to <paramref name="value"/>.</summary>
    void Fill(Tensor output, float value);

    /// <summary>Copies a host tensor into a tensor of this backend of the same shape and type (on the CPU: a copy).</summary>
    void Upload(Tensor destination, Tensor host);

    /// <summary>Copies a tensor of this backend into a host tensor of the same shape and type, waiting for queued work.</summary>
    void Download(Tensor host, Tensor source);

    // ---- GEMM ---------------------------------------------------------------

    /// <summary>output (M,N) = op(a)·op(b) + bias (N) + residual (M,N); a (M,K) or (K,M) if transposeA; b (K,N) or (N,K) if transposeB (nn.Linear weights). residual may be output.</summary>
    void Gemm(Tensor output, Tensor a, Tensor b, Tensor? bias = null, Tensor? residual = null, bool transposeA = false, bool transposeB = false);

    /// <summary>Backward of <see cref="Gemm"/>: gradA, gradB (each in its operand's layout) overwrite; gradBias accumulates; each optional. The residual's gradient is gradOutput itself.</summary>
    void GemmBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA = false, bool transposeB = false);

    // ---- normalisation -------------------------------------------------------

    /// <summary>LayerNorm over the last dimension of input (…, C); mean/rstd (rows) are optional saved statistics.</summary>
    void LayerNorm(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, float epsilon);

    /// <summary>Backward of <see cref="LayerNorm"/> from the saved mean/rstd: gradInput overwrites; gradWeight, gradBias accumulate.</summary>
    void LayerNormBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight);

    /// <summary>ModLN (LRM §3.2): LN(input)·(1 + scale) + shift; input (B,T,C), shift and scale (B,C).</summary>
    void ModLN(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor shift, Tensor scale, float epsilon);

    /// <summary>Backward of <see cref="ModLN"/>: gradInput, gradShift, gradScale overwrite (shift/scale are activations of the modulation MLP); gradWeight, gradBias accumulate.</summary>
    void ModLNBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradShift, Tensor gradScale, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor scale);

    // ---- attention -------------------------------------------------------------

    /// <summary>
    /// Multi-head attention without masks or biases: output (B,Tq,H·D) = softmax(scale·q·kᵀ)·v per head.
    /// q is a slice (B,Tq,H·D) and k, v slices (B,Tk,H·D) of possibly wider tensors;
    /// lse (B,H,Tq) optionally receives the log-sum-exp saved for backward.
    /// </summary>
    void Attention(Tensor output, Tensor? logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale);

    /// <summary>
    /// Backward of <see cref="Attention"/> (recomputes probabilities from the log-sum-exp; no Tq×Tk matrix is stored).
    /// The gradients are slices like the inputs, so a packed dqkv (B,T,3C) is written in place; all three overwrite
    /// (their head columns only). output and logSumExp are what the forward returned.
    /// </summary>
    void AttentionBackward(ColumnSlice gradQuery, ColumnSlice gradKey, ColumnSlice gradValue, Tensor gradOutput, Tensor output, Tensor logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale);

    // ---- element-wise ----------------------------------------------------------

    /// <summary>output = act(input), element-wise; output may be input.</summary>
    void Activate(Tensor output, Tensor input, Activation activation);

    /// <summary>Backward of <see cref="Activate"/> from the forward's input: gradInput = gradOutput·act'(input), overwritten; may be gradOutput.</summary>
    void ActivateBackward(Tensor gradInput, Tensor gradOutput, Tensor input, Activation activation);

    /// <summary>Softmax over the last dimension; output may be input.</summary>
    void Softmax(Tensor output, Tensor input);

    /// <summary>Backward of <see cref="Softmax"/> from the forward's output: gradInput = output·(gradOutput − Σ output·gradOutput), overwritten; may be gradOutput.</summary>
    void SoftmaxBackward(Tensor gradInput, Tensor gradOutput, Tensor output);

    // ---- convolutions ----------------------------------------------------------

    /// <summary>Patch embedding: image (B,Cin,H,W), weight (Cout,Cin,P,P), bias (Cout) → output (B,(H/P)·(W/P),Cout).</summary>
    void PatchEmbed(Tensor output, Tensor image, Tensor weight, Tensor? bias);

    /// <summary>Backward of <see cref="PatchEmbed"/>.</summary>
    void PatchEmbedBackward(Tensor? gradImage, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor image, Tensor weight);

    /// <summary>Transposed convolution, kernel = stride: input (B,Cin,H,W), weight (Cin,Cout,K,K) → output (B,Cout,H·K,W·K).</summary>
    void Deconvolution(Tensor output, Tensor input, Tensor weight, Tensor? bias);

    /// <summary>Backward of <see cref="Deconvolution"/>.</summary>
    void DeconvolutionBackward(Tensor? gradInput, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight);

    // ---- resampling ------------------------------------------------------------

    /// <summary>Resize (…, Hin, Win) → (…, Hout, Wout), align_corners = false, as torch.nn.functional.interpolate.</summary>
    void Resize(Tensor output, Tensor input, ResizeMode mode, float cubicA = -0.75f, bool antialias = false);

    /// <summary>Backward of <see cref="Resize"/> (the adjoint of the resampling matrix).</summary>
    void ResizeBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, float cubicA = -0.75f, bool antialias = false);

    /// <summary>Triplane sampling: planes (B,3,H,W,C) channels-last, points (B,N,3) → output (B,N,3C).</summary>
    void TriplaneSample(Tensor output, Tensor planes, Tensor points);

    /// <summary>
    /// The NeRF MLP's first layer through the sampling ("linear first"): planes (B,3,H,W,C) channels-last already
    /// multiplied by the layer's weight block of each plane, points (B,N,3) → output (B,N,C) =
    /// activation(Σ over the three planes of the bilinear sample + bias (C, optional)).
    /// </summary>
    void TriplaneSampleSum(Tensor output, Tensor planes, Tensor points, Tensor? bias, Activation activation);

    /// <summary>Backward of <see cref="TriplaneSample"/> into the planes (and optionally the points), both overwritten.</summary>
    void TriplaneSampleBackward(Tensor gradPlanes, Tensor? gradPoints, Tensor gradOutput, Tensor planes, Tensor points);

    // ---- small MLP -------------------------------------------------------------

    /// <summary>Linear layers (weights (out,in), optional biases) with <paramref name="hiddenActivation"/> between them and <paramref name="outputActivation"/> after the last.</summary>
    void Mlp(Tensor output, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation);

    /// <summary>Backward of <see cref="Mlp"/>.</summary>
    void MlpBackward(Tensor? gradInput, IReadOnlyList<Tensor> gradWeights, IReadOnlyList<Tensor?> gradBiases, Tensor gradOutput, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation);

    // ---- conversion ------------------------------------------------------------

    /// <summary>Element type conversion between fp32 and bf16 (round to nearest even), same shape.</summary>
    void Convert(Tensor output, Tensor input);

    // ---- element-wise arithmetic and layout -------------------------------------

    /// <summary>output = a + b, element-wise, all the same shape; output may be a or b.</summary>
    void Add(Tensor output, Tensor a, Tensor b);

    /// <summary>
    /// LayerScale with residual (DINOv2): output (…, C) = residual + input·gamma, gamma (C);
    /// residual optional (absent = 0). output may be input or residual.
    /// </summary>
    void LayerScale(Tensor output, Tensor input, Tensor gamma, Tensor? residual);

    /// <summary>
    /// Backward of <see cref="LayerScale"/>: gradInput = gradOutput·gamma and gradResidual = gradOutput overwrite,
    /// gradGamma (C) += Σ_rows gradOutput·input accumulates; each optional, at least one given.
    /// (<see cref="Add"/> needs no backward: both inputs receive gradOutput.)
    /// </summary>
    void LayerScaleBackward(Tensor? gradInput, Tensor? gradGamma, Tensor? gradResidual, Tensor gradOutput, Tensor input, Tensor gamma);

    /// <summary>Transpose of the last two dimensions: input (…, R, C) → output (…, C, R); output must not be input.</summary>
    void Transpose(Tensor output, Tensor input);

    /// <summary>
    /// Copies <paramref name="count"/> elements, flat row-major indices: destination[destinationOffset + i] =
    /// source[sourceOffset + i]. Both tensors of the same element type; the ranges must not overlap.
    /// </summary>
    void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count);

    /// <summary>
    /// <see cref="Resize"/> with interpolate(scale_factor=…) coordinates: source positions use 1/scaleFactor per
    /// axis rather than in/out (DINOv2's position-table resize). The output size is output's.
    /// </summary>
    void ResizeScaled(Tensor output, Tensor input, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias);

    /// <summary>Backward of <see cref="ResizeScaled"/> (the adjoint of its resampling matrix); gradInput is overwritten.</summary>
    void ResizeScaledBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias);

    // ---- triplane NeRF and volume rendering -----------------------------------

    /// <summary>NeRF head: raw (…, 4) → sigma (…, 1) = softplus(raw₀ − 1), rgb (…, 3) = sigmoid(raw₁…₃)·1.002 − 0.001; either output optional.</summary>
    void NerfDecode(Tensor? sigma, Tensor? rgb, Tensor raw);

    /// <summary>Backward of <see cref="NerfDecode"/>: gradRaw (…, 4) is overwritten; an absent upstream gradient counts as zero (at least one is required).</summary>
    void NerfDecodeBackward(Tensor gradRaw, Tensor? gradSigma, Tensor? gradRgb, Tensor raw);

    /// <summary>
    /// Rays through the pixel centres of a height×width image and their coarse depths:
    /// cameras (B, 25) = 4×4 camera-to-world (OpenGL) + 3×3 normalised intrinsics, row-major →
    /// origins, directions (B, H·W, 3), depths (B, H·W, S) = linspace(near, far, S) over the ray's span in [−1, 1]³,
    /// and optionally depthRange (B, 2), each image's [min, max] depth (for <see cref="RenderMarch"/>).
    /// </summary>
    void RenderRays(Tensor origins, Tensor directions, Tensor depths, Tensor? depthRange, Tensor cameras, int height, int width);

    /// <summary>Sample positions: points (B, R·S, 3) = origins (B, R, 3) + depths (B, R, S)·directions (B, R, 3), ray-major.</summary>
    void RenderPoints(Tensor points, Tensor origins, Tensor directions, Tensor depths);

    /// <summary>Samples ready to march: decoded (…, 4) = [σ_raw, rgb] from raw MLP output (…, 4) inside the box, [−FLT_MAX/8, 0, 0, 0] outside; points (…, 3).</summary>
    void RenderDecode(Tensor decoded, Tensor raw, Tensor points);

    /// <summary>Backward of <see cref="RenderDecode"/> into the raw MLP output (overwritten; zero outside the box). The points get no gradient.</summary>
    void RenderDecodeBackward(Tensor gradRaw, Tensor gradDecoded, Tensor raw, Tensor points);

    /// <summary>Deterministic importance depths: fine (B, R, Nf) from coarse depths (B, R, Nc) and their march weights (B, R, Nc − 1).</summary>
    void RenderImportance(Tensor fineDepths, Tensor coarseDepths, Tensor coarseWeights);

    /// <summary>
    /// Volume rendering of the merge (by depth) of two sorted sample sets: depthsA (B, R, Sa) with decodedA (B, R·Sa, 4),
    /// optional depthsB (B, R, Sb) with decodedB (B, R·Sb, 4) → rgb (B, R, 3), depth (B, R), opacity (B, R),
    /// weights (B, R, Sa + Sb − 1), each optional; background (3) is composited behind; depth is clamped to
    /// depthRange (B, 2), which it requires.
    /// </summary>
    void RenderMarch(Tensor? rgb, Tensor? depth, Tensor? opacity, Tensor? weights, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange);

    /// <summary>
    /// Backward of <see cref="RenderMarch"/> into the decoded samples of both sets (gradDecodedB required with decodedB),
    /// overwritten, from the gradients of rgb, depth and opacity (each optional, at least one). Depths, background and
    /// depthRange are constants; the depth gradient vanishes where the forward clamped it (depthRange required with it).
    /// Nothing per sample is kept from the forward: each ray is recomputed.
    /// </summary>
    void RenderMarchBackward(Tensor gradDecodedA, Tensor? gradDecodedB, Tensor? gradRgb, Tensor? gradDepth, Tensor? gradOpacity, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange);

    /// <summary>
    /// Points of a resolution³ grid over [−1, 1]³ for mesh extraction: points (1, n, 3) = (x, y, z) of the grid points with
    /// flat indices first … first + n − 1 in [z][y][x] order, coordinate −1 + 2·i/(R − 1) per axis (fp32, as
    /// DensityGrid.Coordinate computes it), so a density grid is filled chunk by chunk where it lives.
    /// </summary>
    void GridPoints(Tensor points, int resolution, long first);

    // ---- iso-surfaces ------------------------------------------------------------

    /// <summary>
    /// Marching cubes: the surface value = <paramref name="level"/> of field (D, H, W), indexed [z][y][x], with
    /// value &gt; level inside (density convention). Returns new tensors the caller disposes: vertices (V, 3) fp32 as
    /// (x, y, z), one per crossing grid edge, placed by linear interpolation; triangles (T, 3) Int32, counter-clockwise
    /// seen from outside. Vertices are in grid coordinates (x = column, y = row, z = plane), or, when
    /// <paramref name="bounds"/> holds six values [minX, minY, minZ, maxX, maxY, maxZ], in that box with grid point
    /// (0, 0, 0) at min and (W−1, H−1, D−1) at max. Level sets closed inside the grid give watertight meshes; the
    /// output order does not depend on the thread count. D, H, W ≥ 2; V = T = 0 when nothing crosses.
    /// </summary>
    (Tensor Vertices, Tensor Triangles) MarchingCubes(Tensor field, float level, ReadOnlySpan<float> bounds = default);

    // ---- optimizer (training) ------------------------------------------------------

    /// <summary>
    /// One AdamW step <paramref name="stepNumber"/> (≥ 1) in place, as torch.optim.AdamW: the gradient is first scaled by
    /// <paramref name="gradientScale"/> (global-norm clipping), then decoupled weight decay, moment updates and the
    /// bias-corrected step (kernels/optimizer.cuh). parameter, expAvg, expAvgSq, gradient: same shape, fp32.
    /// </summary>
    void AdamWStep(Tensor parameter, Tensor expAvg, Tensor expAvgSq, Tensor gradient, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, float gradientScale, long stepNumber);

    /// <summary>Σ x² over <paramref name="input"/> in double (the same for any thread count); <paramref name="nonFinite"/> counts NaN/±inf elements.</summary>
    double SumOfSquares(Tensor input, out long nonFinite);
}
