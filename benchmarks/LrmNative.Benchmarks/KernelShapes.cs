namespace LrmNative.Benchmarks;

// Every kernel family's shape and its work, in one file: FLOPs (a multiply-add is 2) and compulsory bytes
// (fp32 inputs read once, outputs written once). The roofline floor of a case is
// max(Flops / peak FLOP/s, Bytes / peak bandwidth). Shapes are built from the model configs by LrmShapes.

/// <summary>
/// GEMM as the model's linear layers call it: output (M, N) = input (M, K) · weightᵀ + bias, weight (N, K)
/// (nn.Linear's layout, transposeB). FLOPs 2·M·N·K (the bias add, M·N, is not counted).
/// </summary>
public sealed record GemmShape(string Layer, int M, int N, int K) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "gemm";

    /// <inheritdoc />
    public override string Name => $"{Layer} {Dim(M)}x{Dim(K)} * {Dim(K)}x{Dim(this.N)}";

    /// <inheritdoc />
    public override double Flops => 2.0 * M * N * K;

    /// <inheritdoc />
    public override double Bytes => Float * ((double)M * K + (double)N * K + N + (double)M * N);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["m"] = M, ["n"] = N, ["k"] = K };
}

/// <summary>
/// LayerNorm with affine weight and bias over the last dimension of (Rows, Channels). FLOPs 8 per element:
/// mean 1, variance 3 (subtract, square, add), normalise 2, affine 2.
/// </summary>
public sealed record LayerNormShape(string Where, int Rows, int Channels) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "layernorm";

    /// <inheritdoc />
    public override string Name => $"{Where} {Dim(Rows)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => 8.0 * Rows * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (2.0 * Rows * Channels + 2.0 * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["rows"] = Rows, ["channels"] = Channels };
}

/// <summary>
/// ModLN (LRM §3.2): LN(x)·(1 + scale) + shift over x (1, Tokens, Channels) with affine LN and per-image shift, scale (1, C).
/// FLOPs 10 per element: LayerNorm's 8 plus the modulation's multiply-add.
/// </summary>
public sealed record ModLNShape(string Where, int Tokens, int Channels) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "modln";

    /// <inheritdoc />
    public override string Name => $"{Where} {Dim(Tokens)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => 10.0 * Tokens * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (2.0 * Tokens * Channels + 4.0 * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["tokens"] = Tokens, ["channels"] = Channels };
}

/// <summary>
/// Multi-head attention forward, batch 1: QueryTokens queries against KeyTokens keys, Heads heads of HeadDim.
/// Self-attention reads q, k, v out of one packed qkv (1, T, 3C); cross-attention reads q (1, Tq, C) and k, v out
/// of a packed kv (1, Tk, 2C). FLOPs 4·H·Tq·Tk·D (q·kᵀ and p·v; exp and the softmax bookkeeping are not counted);
/// bytes q, k, v and the output once (the scores never reach memory in a fused kernel).
/// </summary>
public sealed record AttentionShape(string Where, bool Self, int QueryTokens, int KeyTokens, int Heads, int HeadDim) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "attention";

    /// <summary>Model width H·D.</summary>
    public int Width => Heads * HeadDim;

    /// <inheritdoc />
    public override string Name => $"{Where} {(Self ? "self" : "cross")} {Dim(QueryTokens)}x{Dim(KeyTokens)}, {Dim(Heads)}x{Dim(HeadDim)}";

    /// <inheritdoc />
    public override double Flops => 4.0 * Heads * QueryTokens * KeyTokens * HeadDim;

    /// <inheritdoc />
    public override double Bytes => Float * Width * (2.0 * QueryTokens + 2.0 * KeyTokens);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["self"] = Self ? 1 : 0, ["query_tokens"] = QueryTokens, ["key_tokens"] = KeyTokens, ["heads"] = Heads, ["head_dim"] = HeadDim,
    };
}

/// <summary>
/// Triplane sampling (LRM §3.3): Points random points in [−1, 1]³ against planes (1, 3, Resolution, Resolution, Channels),
/// bilinear, zero padding → features (1, Points, 3·Channels). FLOPs 2·4 per channel per plane (four weighted taps);
/// bytes points, planes and features once. Memory-bound: the features written dominate.
/// </summary>
public sealed record TriplaneShape(int Points, int Resolution, int Channels) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "triplane";

    /// <inheritdoc />
    public override string Name => $"{Dim(Points)} random pts, 3x{Dim(Resolution)}x{Dim(Resolution)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => 24.0 * Points * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Points + 3.0 * Resolution * Resolution * Channels + 3.0 * Points * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["points"] = Points, ["resolution"] = Resolution, ["channels"] = Channels,
    };
}

/// <summary>
/// Linear-first sampling (<see cref="Backends.IBackend.TriplaneSampleSum"/>): Points random points sample three
/// channels-last planes already multiplied by the NeRF's first-layer weight blocks (Hidden channels each), sum the three
/// and add the bias, then ReLU. FLOPs 2 per corner, channel and plane (24·Hidden) per point; bytes the points, the
/// projected planes and the (N, Hidden) output once.
/// </summary>
public sealed record TriplaneSumShape(int Points, int Resolution, int Hidden) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "triplane-sum";

    /// <inheritdoc />
    public override string Name => $"{Dim(Points)} random pts, 3x{Dim(Resolution)}x{Dim(Resolution)}x{Dim(Hidden)} summed, +bias, ReLU";

    /// <inheritdoc />
    public override double Flops => 24.0 * Points * Hidden;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Points + 3.0 * Resolution * Resolution * Hidden + Hidden + (double)Points * Hidden);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["points"] = Points, ["resolution"] = Resolution, ["hidden"] = Hidden,
    };
}

/// <summary>
/// The triplane NeRF MLP: Rows × (3·Channels) → Hidden (ReLU) → … → 4, Layers linear layers with biases.
/// FLOPs 2·Rows·Σ in·out; bytes input, output and weights once.
/// </summary>
public sealed record NerfMlpShape(int Rows, int InputWidth, int Hidden, int Layers) : KernelShape
{
    /// <summary>Outputs per row: raw density and RGB.</summary>
    public const int OutputWidth = 4;

    /// <inheritdoc />
    public override string Family => "nerf-mlp";

    /// <inheritdoc />
    public override string Name => $"{Dim(Rows)} rows, {Dim(InputWidth)}->{Dim(Hidden)}x{Dim(Layers - 1)}->{Dim(OutputWidth)}";

    /// <summary>Layer widths: input, hidden…, output.</summary>
    public IReadOnlyList<int> Widths => [InputWidth, .. Enumerable.Repeat(Hidden, Layers - 1), OutputWidth];

    private double WeightElements => Enumerable.Range(0, Layers).Sum(l => (double)Widths[l] * Widths[l + 1]);

    private double BiasElements => Enumerable.Range(1, Layers).Sum(l => (double)Widths[l]);

    /// <inheritdoc />
    public override double Flops => 2.0 * Rows * WeightElements;

    /// <inheritdoc />
    public override double Bytes => Float * ((double)Rows * (InputWidth + OutputWidth) + WeightElements + BiasElements);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["rows"] = Rows, ["input_width"] = InputWidth, ["hidden"] = Hidden, ["layers"] = Layers, ["output_width"] = OutputWidth,
    };
}

/// <summary>
/// Ray compositing (LRM §3.3, OpenLRM's MipRayMarcher2): Rays rays whose coarse (SamplesA) and fine (SamplesB) sorted sample
/// sets are merged by depth and composited on white → rgb, depth, opacity. FLOPs 25 per interval (midpoints 5, softplus 3,
/// alpha 3, transmittance 3, weighted colour 6, depth 2, totals 3; exp and log counted 1); bytes depths (4) and decoded
/// samples (16) per sample, rgb + depth + opacity per ray. Memory-bound.
/// </summary>
public sealed record RenderMarchShape(int Rays, int SamplesA, int SamplesB) : KernelShape
{
    /// <summary>FLOPs counted per interval between consecutive samples.</summary>
    public const double FlopsPerInterval = 25;

    /// <inheritdoc />
    public override string Family => "render-march";

    /// <inheritdoc />
    public override string Name => $"{Dim(Rays)} rays, {Dim(SamplesA)}+{Dim(SamplesB)} samples";

    /// <inheritdoc />
    public override double Flops => FlopsPerInterval * Rays * (SamplesA + SamplesB - 1.0);

    /// <inheritdoc />
    public override double Bytes => Float * ((double)Rays * (SamplesA + SamplesB) * 5 + Rays * 5.0 + 2);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["rays"] = Rays, ["samples_a"] = SamplesA, ["samples_b"] = SamplesB,
    };
}

/// <summary>
/// Marching cubes over a Resolution³ density grid (a rippled sphere, every case class occurs). Work is table-driven, so
/// no FLOPs are counted; bytes are the field read once (the mesh written depends on the surface). Rate: cells per second.
/// </summary>
public sealed record MarchingCubesShape(int Resolution) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "marching-cubes";

    /// <inheritdoc />
    public override string Name => $"{Dim(Resolution)}^3 rippled sphere";

    /// <inheritdoc />
    public override double Flops => 0;

    /// <inheritdoc />
    public override double Bytes => Float * Math.Pow(Resolution, 3);

    /// <inheritdoc />
    public override double Items => Math.Pow(Resolution - 1, 3);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.MegaVoxels;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["resolution"] = Resolution };
}

/// <summary>
/// Image resize (the encoder's input): Planes planes of InSize² → OutSize², antialiased bicubic (a = −0.5), align_corners
/// false, separable: a horizontal pass (Planes·InSize·OutSize outputs) then a vertical one (Planes·OutSize² outputs). Taps per
/// output 4·max(1, In/Out) (the filter window), 2 FLOPs each; bytes input and output once (the intermediate not counted).
/// </summary>
public sealed record ResizeShape(int Planes, int InSize, int OutSize) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "resize";

    /// <inheritdoc />
    public override string Name => $"bicubic-aa {Dim(Planes)}x{Dim(InSize)}x{Dim(InSize)} -> {Dim(OutSize)}x{Dim(OutSize)}";

    /// <summary>Filter taps per output along one axis.</summary>
    public double Taps => 4.0 * Math.Max(1.0, (double)InSize / OutSize);

    /// <inheritdoc />
    public override double Flops => 2.0 * Taps * Planes * ((double)InSize * OutSize + (double)OutSize * OutSize);

    /// <inheritdoc />
    public override double Bytes => Float * Planes * ((double)InSize * InSize + (double)OutSize * OutSize);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["planes"] = Planes, ["in_size"] = InSize, ["out_size"] = OutSize,
    };
}

/// <summary>
/// Patch embedding (the ViT's stem): image (1, 3, Size, Size) → (1, (Size/Patch)², Width) by a Patch×Patch, stride-Patch
/// convolution with bias. FLOPs 2·tokens·Width·3·Patch²; bytes image, weight, bias and tokens once.
/// </summary>
public sealed record PatchEmbedShape(int Size, int Patch, int Width) : KernelShape
{
    /// <summary>Input channels (RGB).</summary>
    public const int InputChannels = 3;

    /// <inheritdoc />
    public override string Family => "patch-embed";

    /// <summary>Patches (tokens) produced.</summary>
    public int Tokens => Size / Patch * (Size / Patch);

    /// <inheritdoc />
    public override string Name => $"{Dim(Size)}x{Dim(Size)} /{Dim(Patch)} -> {Dim(Tokens)}x{Dim(Width)}";

    /// <inheritdoc />
    public override double Flops => 2.0 * Tokens * Width * InputChannels * Patch * Patch;

    /// <inheritdoc />
    public override double Bytes => Float * (InputChannels * (double)Size * Size + (double)Width * InputChannels * Patch * Patch + Width + (double)Tokens * Width);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["size"] = Size, ["patch"] = Patch, ["width"] = Width,
    };
}

/// <summary>
/// The upsampler's de-convolution: input (Batch, InChannels, Side, Side) → (Batch, OutChannels, Side·K, Side·K), a K×K
/// transposed convolution with stride K (no overlap) and bias. FLOPs 2·Batch·Side²·InChannels·OutChannels·K²; bytes
/// input, weight, bias and output once.
/// </summary>
public sealed record DeconvolutionShape(int Batch, int InChannels, int OutChannels, int Side, int Kernel) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "deconvolution";

    /// <inheritdoc />
    public override string Name => $"{Dim(Batch)}x{Dim(InChannels)}x{Dim(Side)}x{Dim(Side)} -> {Dim(OutChannels)}x{Dim(Side * Kernel)}x{Dim(Side * Kernel)}";

    /// <inheritdoc />
    public override double Flops => 2.0 * Batch * Side * Side * (double)InChannels * OutChannels * Kernel * Kernel;

    /// <inheritdoc />
    public override double Bytes => Float * ((double)Batch * InChannels * Side * Side + (double)InChannels * OutChannels * Kernel * Kernel
        + OutChannels + (double)Batch * OutChannels * Side * Kernel * Side * Kernel);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["batch"] = Batch, ["in_channels"] = InChannels, ["out_channels"] = OutChannels, ["side"] = Side, ["kernel"] = Kernel,
    };
}

// ---- backward families (training): the same shapes, the gradients the trainer asks for -------------------------------

/// <summary>
/// Backward of <see cref="GemmShape"/> as training calls it: from gradOutput (M, N), gradInput (M, K) = gradOutput · weight,
/// gradWeight (N, K) = gradOutputᵀ · input and gradBias (N) = column sums of gradOutput. FLOPs 2× the forward, 4·M·N·K
/// (two products of 2·M·N·K; the bias sum, M·N, is not counted); bytes gradOutput, input, weight read once, gradInput and
/// gradWeight written once, gradBias read and written (it accumulates).
/// </summary>
public sealed record GemmBackwardShape(string Layer, int M, int N, int K) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "gemm-backward";

    /// <inheritdoc />
    public override string Name => $"{Layer} {Dim(M)}x{Dim(K)} * {Dim(K)}x{Dim(this.N)}";

    /// <inheritdoc />
    public override double Flops => 4.0 * M * N * K;

    /// <inheritdoc />
    public override double Bytes => Float * ((double)M * N + 2.0 * M * K + 2.0 * N * K + 2.0 * N);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["m"] = M, ["n"] = N, ["k"] = K };
}

/// <summary>
/// Backward of <see cref="AttentionShape"/> (fused, from the saved log-sum-exp; the probabilities are recomputed, never stored):
/// per head five products of 2·Tq·Tk·D — the scores q·kᵀ again, dP = dO·vᵀ, dV = Pᵀ·dO, dQ = dS·k, dK = dSᵀ·q — so FLOPs
/// 10·H·Tq·Tk·D, 2.5× the forward (exp and the softmax bookkeeping not counted). Bytes: q, output, gradOutput and gradQuery
/// (Tq rows each), k, v, gradKey and gradValue (Tk rows each) once, and the log-sum-exp (H·Tq).
/// </summary>
public sealed record AttentionBackwardShape(string Where, bool Self, int QueryTokens, int KeyTokens, int Heads, int HeadDim) : KernelShape
{
    /// <summary>Matrix products per head, each 2·Tq·Tk·D FLOPs.</summary>
    public const int Products = 5;

    /// <inheritdoc />
    public override string Family => "attention-backward";

    /// <summary>Model width H·D.</summary>
    public int Width => Heads * HeadDim;

    /// <inheritdoc />
    public override string Name => $"{Where} {(Self ? "self" : "cross")} {Dim(QueryTokens)}x{Dim(KeyTokens)}, {Dim(Heads)}x{Dim(HeadDim)}";

    /// <inheritdoc />
    public override double Flops => Products * 2.0 * Heads * QueryTokens * KeyTokens * HeadDim;

    /// <inheritdoc />
    public override double Bytes => Float * ((double)Width * (4.0 * QueryTokens + 4.0 * KeyTokens) + (double)Heads * QueryTokens);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["self"] = Self ? 1 : 0, ["query_tokens"] = QueryTokens, ["key_tokens"] = KeyTokens, ["heads"] = Heads, ["head_dim"] = HeadDim,
    };
}

/// <summary>
/// Backward of <see cref="LayerNormShape"/> from the saved mean and rstd: FLOPs 13 per element — x̂ = (x − mean)·rstd 2,
/// g = dy·weight 1, gradWeight += dy·x̂ 2, gradBias += dy 1, the row sums Σg 1 and Σg·x̂ 2, gradInput = rstd·(g − mean g
/// − x̂·mean g·x̂) 4. Bytes: gradOutput and input read, gradInput written (3 per element), mean and rstd read (2 per row),
/// weight read and gradWeight, gradBias read and written (5 per channel).
/// </summary>
public sealed record LayerNormBackwardShape(string Where, int Rows, int Channels) : KernelShape
{
    /// <summary>FLOPs counted per element.</summary>
    public const double FlopsPerElement = 13;

    /// <inheritdoc />
    public override string Family => "layernorm-backward";

    /// <inheritdoc />
    public override string Name => $"{Where} {Dim(Rows)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => FlopsPerElement * Rows * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Rows * Channels + 2.0 * Rows + 5.0 * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["rows"] = Rows, ["channels"] = Channels };
}

/// <summary>
/// Backward of <see cref="ModLNShape"/> from the saved mean and rstd: FLOPs 20 per element — LayerNorm backward's 13 (on
/// dy·(1 + scale)) plus the modulation's 7: the LayerNorm output x̂·weight + bias again 2, dy·(1 + scale) 2, gradScale += dy·LN 2,
/// gradShift += dy 1. Bytes: gradOutput and input read, gradInput written (3 per element),
/// mean and rstd (2 per token), weight, bias, scale read, gradShift, gradScale written, gradWeight, gradBias read and written
/// (9 per channel).
/// </summary>
public sealed record ModLNBackwardShape(string Where, int Tokens, int Channels) : KernelShape
{
    /// <summary>FLOPs counted per element.</summary>
    public const double FlopsPerElement = 20;

    /// <inheritdoc />
    public override string Family => "modln-backward";

    /// <inheritdoc />
    public override string Name => $"{Where} {Dim(Tokens)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => FlopsPerElement * Tokens * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Tokens * Channels + 2.0 * Tokens + 9.0 * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["tokens"] = Tokens, ["channels"] = Channels };
}

/// <summary>
/// Backward of <see cref="TriplaneShape"/> into the planes (the points get no gradient, as in training): each feature's
/// gradient scattered into the four taps of its plane, 2 FLOPs per tap, the forward's 24·Points·Channels. Bytes: points and
/// gradOutput read once, gradPlanes written once (overwritten). The scatter is a read-modify-write at random addresses.
/// </summary>
public sealed record TriplaneBackwardShape(int Points, int Resolution, int Channels) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "triplane-backward";

    /// <inheritdoc />
    public override string Name => $"{Dim(Points)} random pts, 3x{Dim(Resolution)}x{Dim(Resolution)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => 24.0 * Points * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Points + 3.0 * Resolution * Resolution * Channels + 3.0 * Points * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["points"] = Points, ["resolution"] = Resolution, ["channels"] = Channels,
    };
}

/// <summary>
/// Backward of <see cref="NerfMlpShape"/>: per layer gradInput = gradOut·W and gradWeight = gradOutᵀ·input, 2× the forward,
/// 4·Rows·Σ in·out (bias sums and the ReLU masks not counted; the gradient reaches the input features, as it must to train the
/// triplane). The fused kernel also recomputes the forward activations (2·Rows·Σ in·out more), which PyTorch keeps from the
/// forward instead: not counted, so both sides are rated on the same work. Bytes: input, gradOutput read and gradInput
/// written once, weights and biases read once, their gradients read and written.
/// </summary>
public sealed record NerfMlpBackwardShape(int Rows, int InputWidth, int Hidden, int Layers) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "nerf-mlp-backward";

    /// <inheritdoc />
    public override string Name => $"{Dim(Rows)} rows, {Dim(InputWidth)}->{Dim(Hidden)}x{Dim(Layers - 1)}->{Dim(NerfMlpShape.OutputWidth)}";

    /// <summary>Layer widths: input, hidden…, output.</summary>
    public IReadOnlyList<int> Widths => [InputWidth, .. Enumerable.Repeat(Hidden, Layers - 1), NerfMlpShape.OutputWidth];

    private double WeightElements => Enumerable.Range(0, Layers).Sum(l => (double)Widths[l] * Widths[l + 1]);

    private double BiasElements => Enumerable.Range(1, Layers).Sum(l => (double)Widths[l]);

    /// <inheritdoc />
    public override double Flops => 4.0 * Rows * WeightElements;

    /// <inheritdoc />
    public override double Bytes => Float * ((double)Rows * (2.0 * InputWidth + NerfMlpShape.OutputWidth) + 3.0 * (WeightElements + BiasElements));

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["rows"] = Rows, ["input_width"] = InputWidth, ["hidden"] = Hidden, ["layers"] = Layers, ["output_width"] = NerfMlpShape.OutputWidth,
    };
}

/// <summary>
/// Backward of <see cref="RenderMarchShape"/> into the decoded samples of both sets, from the gradients of rgb and opacity
/// (the depth gets none, as in training): FLOPs 2× the forward's 25 per interval, 50 — each ray is recomputed (25) and every
/// forward operation's adjoint counted at its own cost (25). Bytes: depths (4) and decoded samples (16) read and their
/// gradients (16) written per sample, the rgb and opacity gradients (4 per ray) and the depth range read once. Memory-bound.
/// </summary>
public sealed record RenderMarchBackwardShape(int Rays, int SamplesA, int SamplesB) : KernelShape
{
    /// <summary>FLOPs counted per interval between consecutive samples.</summary>
    public const double FlopsPerInterval = 2 * RenderMarchShape.FlopsPerInterval;

    /// <inheritdoc />
    public override string Family => "render-march-backward";

    /// <inheritdoc />
    public override string Name => $"{Dim(Rays)} rays, {Dim(SamplesA)}+{Dim(SamplesB)} samples";

    /// <inheritdoc />
    public override double Flops => FlopsPerInterval * Rays * (SamplesA + SamplesB - 1.0);

    /// <inheritdoc />
    public override double Bytes => Float * ((double)Rays * (SamplesA + SamplesB) * 9 + Rays * 4.0 + 2);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["rays"] = Rays, ["samples_a"] = SamplesA, ["samples_b"] = SamplesB,
    };
}

/// <summary>
/// Backward of <see cref="PatchEmbedShape"/> as training calls it: gradWeight (Width, 3, P, P) += dYᵀ · patches and gradBias
/// (Width) += column sums of dY; the image is an input, so it gets no gradient. FLOPs the forward's 2·tokens·Width·3·P² (the
/// bias sum not counted); bytes image and gradOutput read once, gradWeight and gradBias read and written (they accumulate,
/// lrm_patch_embed_backward).
/// </summary>
public sealed record PatchEmbedBackwardShape(int Size, int Patch, int Width) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "patch-embed-backward";

    /// <summary>Patches (tokens).</summary>
    public int Tokens => Size / Patch * (Size / Patch);

    /// <inheritdoc />
    public override string Name => $"{Dim(Size)}x{Dim(Size)} /{Dim(Patch)} -> {Dim(Tokens)}x{Dim(Width)}";

    /// <inheritdoc />
    public override double Flops => 2.0 * Tokens * Width * PatchEmbedShape.InputChannels * Patch * Patch;

    /// <inheritdoc />
    public override double Bytes => Float * (PatchEmbedShape.InputChannels * (double)Size * Size + (double)Tokens * Width
        + 2.0 * Width * PatchEmbedShape.InputChannels * Patch * Patch + 2.0 * Width);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["size"] = Size, ["patch"] = Patch, ["width"] = Width,
    };
}

/// <summary>
/// Backward of <see cref="DeconvolutionShape"/>: gradInput (it flows on into the decoder, overwritten), gradWeight and
/// gradBias (accumulated, lrm_deconv_backward). Two products of the forward's size, FLOPs 4·Batch·Side²·InChannels·OutChannels·K²;
/// bytes input and gradOutput read, weight read, gradInput written, gradWeight and gradBias read and written.
/// </summary>
public sealed record DeconvolutionBackwardShape(int Batch, int InChannels, int OutChannels, int Side, int Kernel) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "deconvolution-backward";

    /// <inheritdoc />
    public override string Name => $"{Dim(Batch)}x{Dim(InChannels)}x{Dim(Side)}x{Dim(Side)} -> {Dim(OutChannels)}x{Dim(Side * Kernel)}x{Dim(Side * Kernel)}";

    /// <inheritdoc />
    public override double Flops => 4.0 * Batch * Side * Side * (double)InChannels * OutChannels * Kernel * Kernel;

    /// <inheritdoc />
    public override double Bytes => Float * (2.0 * Batch * InChannels * Side * Side + 3.0 * InChannels * OutChannels * Kernel * Kernel
        + 2.0 * OutChannels + (double)Batch * OutChannels * Side * Kernel * Side * Kernel);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["batch"] = Batch, ["in_channels"] = InChannels, ["out_channels"] = OutChannels, ["side"] = Side, ["kernel"] = Kernel,
    };
}

/// <summary>
/// Backward of the encoder's position-table resize (the table's Grid² positions of Channels values resized to the patch
/// grid; DINOv2: antialiased bicubic, a = −0.5; DINO v1, the paper: bilinear): the adjoint of the forward's two separable
/// passes, gradOutput (Channels, Patches², from the patch grid) spread back onto the table. Taps per output 4 (bicubic) or 2
/// (bilinear) · max(1, Grid/Patches), 2 FLOPs each, over both passes as for <see cref="ResizeShape"/>; bytes gradOutput read
/// and gradInput written once (the intermediate not counted).
/// </summary>
public sealed record ResizeBackwardShape(int Channels, int Grid, int Patches, bool Bicubic) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "resize-backward";

    /// <inheritdoc />
    public override string Name => $"pos table {(Bicubic ? "bicubic-aa" : "bilinear")} {Dim(Channels)}x{Dim(Grid)}x{Dim(Grid)} -> {Dim(Patches)}x{Dim(Patches)}";

    /// <summary>Filter taps per output along one axis.</summary>
    public double Taps => (Bicubic ? 4.0 : 2.0) * Math.Max(1.0, (double)Grid / Patches);

    /// <inheritdoc />
    public override double Flops => 2.0 * Taps * Channels * ((double)Grid * Patches + (double)Patches * Patches);

    /// <inheritdoc />
    public override double Bytes => Float * Channels * ((double)Grid * Grid + (double)Patches * Patches);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["planes"] = Channels, ["in_size"] = Grid, ["out_size"] = Patches, ["bicubic"] = Bicubic ? 1 : 0,
    };
}

/// <summary>
/// Backward of the exact GELU of the decoder MLP's hidden layer, (Rows, Channels): gradInput = dY·(Φ(x) + x·φ(x)). FLOPs 7 per
/// element (erf and exp counted once each as 1); bytes gradOutput and input read, gradInput written (3 per element).
/// </summary>
public sealed record ActivationBackwardShape(string Where, int Rows, int Channels) : KernelShape
{
    /// <summary>FLOPs counted per element.</summary>
    public const double FlopsPerElement = 7;

    /// <inheritdoc />
    public override string Family => "activation-backward";

    /// <inheritdoc />
    public override string Name => $"GELU {Where} {Dim(Rows)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => FlopsPerElement * Rows * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * 3.0 * Rows * Channels;

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["rows"] = Rows, ["channels"] = Channels };
}

/// <summary>
/// Backward of DINOv2's LayerScale (y = x·γ) on the encoder's tokens: gradInput = dY·γ, gradGamma += Σ_rows dY·x. FLOPs 3 per
/// element; bytes gradOutput and input read, gradInput written (3 per element), γ read and gradGamma read and written (3 per
/// channel).
/// </summary>
public sealed record LayerScaleBackwardShape(string Where, int Tokens, int Channels) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "layerscale-backward";

    /// <inheritdoc />
    public override string Name => $"{Where} {Dim(Tokens)}x{Dim(Channels)}";

    /// <inheritdoc />
    public override double Flops => 3.0 * Tokens * Channels;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Tokens * Channels + 3.0 * Channels);

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["tokens"] = Tokens, ["channels"] = Channels };
}

/// <summary>
/// Backward of the render decode (MLP output → [σ_raw, rgb] inside the [−1, 1]³ box, constants outside) for the samples of
/// one 128² render (Rays · Samples rows): dσ_raw passes through, drgb·1.002·s·(1 − s) with the sigmoid recomputed. FLOPs 4
/// per colour channel (the exp counted as 1), 12 per sample; bytes gradDecoded (16), raw (16) and the points (12) read and
/// gradRaw (16) written, 60 per sample.
/// </summary>
public sealed record RenderDecodeBackwardShape(int Rays, int Samples) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "render-decode-backward";

    /// <summary>Samples decoded.</summary>
    public long Rows => (long)Rays * Samples;

    /// <inheritdoc />
    public override string Name => $"{Dim(Rays)} rays x {Dim(Samples)} samples";

    /// <inheritdoc />
    public override double Flops => 12.0 * Rows;

    /// <inheritdoc />
    public override double Bytes => 60.0 * Rows;

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["rows"] = Rows, ["rays"] = Rays, ["samples"] = Samples };
}

/// <summary>
/// The points of one slab of a dense R³ mesh grid over [−1, 1]³ (<see cref="Backends.IBackend.GridPoints"/>), as
/// DensityGrid makes them: whole z-planes, as many as fit in its query chunk (2¹⁸ points; one plane at 384³), from the
/// middle of the grid. FLOPs 3 per point (the per-axis coordinates are a table); bytes the points written, 12 per point.
/// </summary>
public sealed record GridPointsShape(int Resolution) : KernelShape
{
    /// <summary>DensityGrid.ChunkPoints: the most points a slab holds (unless one plane is larger).</summary>
    public const long ChunkPoints = 1 << 18;

    /// <inheritdoc />
    public override string Family => "grid-points";

    /// <summary>z-planes in the slab.</summary>
    public long Planes => Math.Max(1, ChunkPoints / ((long)Resolution * Resolution));

    /// <summary>Points in the slab.</summary>
    public long Points => Planes * Resolution * Resolution;

    /// <summary>The slab's first grid index (the middle of the grid).</summary>
    public long First => Resolution / 2 * (long)Resolution * Resolution;

    /// <inheritdoc />
    public override string Name => $"{Dim(Resolution)}^3 slab of {Dim((int)Planes)} planes";

    /// <inheritdoc />
    public override double Flops => 3.0 * Points;

    /// <inheritdoc />
    public override double Bytes => 12.0 * Points;

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["resolution"] = Resolution, ["planes"] = Planes, ["points"] = Points, ["first"] = First,
    };
}

/// <summary>
/// The whole triplane NeRF query as the dense mesh grid runs it, linear first (<see cref="Model.TriplaneNerf"/>): the
/// points of one z-plane of a 256³ grid (65,536, the middle plane, x fastest: neighbours share bilinear corners, as in
/// the real query), the three planes already multiplied by the first layer's weight blocks (once per reconstruction,
/// outside the measured region), sampled and summed with the bias and ReLU
/// (<see cref="Backends.IBackend.TriplaneSampleSum"/>), then the remaining layers (Hidden → … → 4). FLOPs as executed:
/// 2 per corner, channel and plane (24·Hidden) plus 2·Σ in·out of the remaining layers, per point; bytes the points in,
/// the raw output, the projected planes, the first layer's bias and the remaining layers' weights and biases once.
/// </summary>
public sealed record NerfQueryShape(int Resolution, int Channels, int Hidden, int Layers) : KernelShape
{
    /// <summary>The mesh grid whose middle z-plane is queried.</summary>
    public const int Grid = 256;

    /// <summary>Points queried: one z-plane of the grid.</summary>
    public const int Points = Grid * Grid;

    /// <summary>The plane's z index.</summary>
    public const int Plane = Grid / 2;

    /// <inheritdoc />
    public override string Family => "nerf-query";

    /// <inheritdoc />
    public override string Name => $"{Dim(Grid)}^3 grid plane, 3x{Dim(Resolution)}x{Dim(Resolution)}x{Dim(Channels)}, {Dim(3 * Channels)}->{Dim(Hidden)}x{Dim(Layers - 1)}->4";

    /// <summary>Widths of the layers after the first: Hidden…, 4.</summary>
    public IReadOnlyList<int> RemainingWidths => [.. Enumerable.Repeat(Hidden, Layers - 1), NerfMlpShape.OutputWidth];

    private double RemainingWeights => Enumerable.Range(0, Layers - 1).Sum(l => (double)RemainingWidths[l] * RemainingWidths[l + 1]);

    // Every layer's bias: the first's (added after the sum) and the remaining layers'.
    private double BiasElements => Hidden + RemainingWidths.Skip(1).Sum(width => (double)width);

    /// <inheritdoc />
    public override double Flops => (double)Points * (24.0 * Hidden + 2.0 * RemainingWeights);

    /// <inheritdoc />
    public override double Bytes => Float * ((3.0 + NerfMlpShape.OutputWidth) * Points + 3.0 * Resolution * Resolution * Hidden + RemainingWeights + BiasElements);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["grid"] = Grid, ["plane"] = Plane, ["points"] = Points, ["resolution"] = Resolution, ["channels"] = Channels, ["hidden"] = Hidden,
        ["layers"] = Layers,
    };
}

/// <summary>
/// One AdamW update (paper: β = (0.9, 0.95), weight decay 0.05) of one parameter tensor, as the trainer calls it per tensor:
/// the decoder MLP's first weight (4·D × D), its largest. FLOPs 15 per element (decay 2, first moment 3, second moment 4, the
/// bias-corrected denominator 3 with the square root counted as 1, the update 3); bytes the parameter and both moments read
/// and written, the gradient read: 28 per element.
/// </summary>
public sealed record AdamWShape(string Parameter, int Rows, int Columns) : KernelShape
{
    /// <inheritdoc />
    public override string Family => "adamw";

    /// <summary>Elements updated.</summary>
    public long Elements => (long)Rows * Columns;

    /// <inheritdoc />
    public override string Name => $"{Parameter} {Dim(Rows)}x{Dim(Columns)}";

    /// <inheritdoc />
    public override double Flops => 15.0 * Elements;

    /// <inheritdoc />
    public override double Bytes => 28.0 * Elements;

    /// <inheritdoc />
    public override RateUnit Unit => RateUnit.GigabytesPerSecond;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long> { ["elements"] = Elements, ["rows"] = Rows, ["columns"] = Columns };
}

// ---- training losses (host code, no device kernel): forward and the gradient with respect to the prediction ---------

/// <summary>
/// A family computed on the host whatever the target (the training losses): its suite runs on the CPU only, and the peer
/// skips it on a GPU.
/// </summary>
public interface IHostOnlyShape;

/// <summary>
/// SSIM loss (Losses.SsimLoss, the trainer's λ_SSIM term) of a batch of Batch rendered patches (Batch, Side, Side, 3) against
/// their targets: 1 − SSIM with the 11×11 Gaussian window (σ 1.5, separable), valid windows, per channel, and the gradient with
/// respect to the prediction. Per image and channel, with W = (Side − 10)² windows: eight separable filter passes (the five
/// local sums x, y, x², y², xy, and the three adjoint passes of the gradient's coefficients), each a row pass of Side·(Side − 10)
/// and a column pass of W outputs at 11 taps and 2 FLOPs per tap; 18 FLOPs per window for the SSIM map (squares and the
/// product of the means shared), 11 for the gradient's three coefficients; 9 per pixel (the three products, the gradient's
/// combination and its scale). Bytes: prediction and target read, gradient written (fp32).
/// </summary>
public sealed record SsimLossShape(int Batch, int Side) : KernelShape, IHostOnlyShape
{
    /// <summary>Colour channels.</summary>
    public const int Channels = 3;

    /// <summary>The Gaussian window's side.</summary>
    public const int Window = 11;

    /// <summary>FLOPs per window: the SSIM map 18, the gradient's coefficients 11.</summary>
    public const double FlopsPerWindow = 18 + 11;

    /// <summary>FLOPs per pixel and channel: x², y², xy 3, the gradient's combination 5 and its loss scale 1.</summary>
    public const double FlopsPerPixel = 9;

    /// <summary>Separable filter passes: five for the local sums, three adjoint ones for the gradient.</summary>
    public const int FilterPasses = 8;

    /// <inheritdoc />
    public override string Family => "ssim-loss";

    /// <summary>Valid window positions along one side.</summary>
    public int Positions => Side - Window + 1;

    /// <inheritdoc />
    public override string Name => $"{Dim(Batch)}x{Dim(Side)}x{Dim(Side)}x{Dim(Channels)}, 11x11 Gaussian, value + gradient";

    /// <inheritdoc />
    public override double Flops => (double)Batch * Channels * (FlopsPerPixel * Side * Side + FlopsPerWindow * Positions * Positions
        + FilterPasses * 2.0 * Window * ((double)Side * Positions + (double)Positions * Positions));

    /// <inheritdoc />
    public override double Bytes => Float * 3.0 * Batch * Side * Side * Channels;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["batch"] = Batch, ["side"] = Side, ["channels"] = Channels, ["window"] = Window,
    };
}

/// <summary>
/// LPIPS-AlexNet (Training/Lpips.cs, the trainer's λ_LPIPS term, paper §3.3) of Batch patches (Batch, Side, Side, 3) against their
/// targets, and its gradient with respect to the prediction; the network is frozen (no weight gradients), as in training.
/// AlexNet's five convolutions (11×11/4 pad 2, 5×5 pad 2, three 3×3 pad 1) with Conv1..Conv5 output channels, 3×3/2 max pools
/// after the first two. FLOPs 3 × Σ 2·h·w·C_out·k²·C_in per image: the forward of the prediction and of the target, and the
/// prediction's input gradient (one product of the same size per layer); bias, ReLU, pools, the unit normalisation and the
/// distances are not counted. Bytes: prediction and target read, gradient written, the network's weights, biases and linear
/// heads read once.
/// </summary>
public sealed record LpipsLossShape(int Batch, int Side, int Conv1, int Conv2, int Conv3, int Conv4, int Conv5) : KernelShape, IHostOnlyShape
{
    /// <summary>AlexNet's channel counts (torchvision's alexnet().features).</summary>
    public static IReadOnlyList<int> AlexNetChannels { get; } = [64, 192, 384, 256, 256];

    // Kernel, stride, padding of the five convolutions; max pools (3, stride 2) after the first two.
    private static readonly (int Kernel, int Stride, int Padding)[] Layers = [(11, 4, 2), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1)];

    /// <summary>AlexNet-sized LPIPS of Batch patches of Side².</summary>
    public static LpipsLossShape AlexNet(int batch, int side) =>
        new(batch, side, AlexNetChannels[0], AlexNetChannels[1], AlexNetChannels[2], AlexNetChannels[3], AlexNetChannels[4]);

    /// <inheritdoc />
    public override string Family => "lpips-loss";

    /// <summary>Output channels of the five convolutions.</summary>
    public IReadOnlyList<int> Channels => [Conv1, Conv2, Conv3, Conv4, Conv5];

    /// <summary>Output side of each convolution.</summary>
    public IReadOnlyList<int> Sides
    {
        get
        {
            var sides = new int[Layers.Length];
            var side = Side;
            for (var k = 0; k < Layers.Length; k++)
            {
                var (kernel, stride, padding) = Layers[k];
                sides[k] = (side + 2 * padding - kernel) / stride + 1;
                side = k < 2 ? (sides[k] - 3) / 2 + 1 : sides[k];
            }
            return sides;
        }
    }

    /// <summary>FLOPs of one forward of one image through the five convolutions.</summary>
    public double ForwardFlopsPerImage
    {
        get
        {
            var sides = Sides;
            double flops = 0;
            var inChannels = 3;
            for (var k = 0; k < Layers.Length; k++)
            {
                var kernel = Layers[k].Kernel;
                flops += 2.0 * sides[k] * sides[k] * Channels[k] * kernel * kernel * inChannels;
                inChannels = Channels[k];
            }
            return flops;
        }
    }

    /// <summary>Weights, biases and linear heads.</summary>
    public double Parameters
    {
        get
        {
            double parameters = 0;
            var inChannels = 3;
            for (var k = 0; k < Layers.Length; k++)
            {
                var kernel = Layers[k].Kernel;
                parameters += (double)Channels[k] * inChannels * kernel * kernel + 2.0 * Channels[k];
                inChannels = Channels[k];
            }
            return parameters;
        }
    }

    /// <inheritdoc />
    public override string Name => $"{Dim(Batch)}x{Dim(Side)}x{Dim(Side)}x3, AlexNet {string.Join("-", Channels.Select(c => Dim(c)))}, value + gradient";

    /// <inheritdoc />
    public override double Flops => 3.0 * Batch * ForwardFlopsPerImage;

    /// <inheritdoc />
    public override double Bytes => Float * (3.0 * Batch * Side * Side * 3 + Parameters);

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, long> Dimensions => new Dictionary<string, long>
    {
        ["batch"] = Batch, ["side"] = Side, ["conv1"] = Conv1, ["conv2"] = Conv2, ["conv3"] = Conv3, ["conv4"] = Conv4, ["conv5"] = Conv5,
    };
}
