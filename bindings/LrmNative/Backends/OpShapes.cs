namespace LrmNative.Backends;

/// <summary>
/// Shape checks that every backend makes the same way for an op, after its own placement/data-type check
/// (host fp32 for the CPU backend, device tensors for CUDA). Each returns the sizes the op is computed with,
/// and every failure names the op and the tensor (see <see cref="Expect"/>). Checks that only one backend
/// needs (kernel limits, a minimum sample count) stay in that backend, after these.
/// </summary>
internal static class OpShapes
{
    // ---- dense ---------------------------------------------------------------------------------------------

    /// <summary>(M, N, K) of op(a)·op(b), with the checks on a and b that Gemm and GemmBackward share.</summary>
    public static (long M, long N, long K) GemmSizes(string op, Tensor a, Tensor b, bool transposeA, bool transposeB)
    {
        Expect.Rank(op, "a", a, 2, "a matrix (M, K) or a batch of rows (..., K)");
        Expect.Shape(op, "b", b, -1, -1);
        if (transposeA && a.Rank != 2)
        {
            throw new LrmShapeException($"{op}: tensor 'a' must be a matrix (K, M) when transposed, got {a.ShapeText}");
        }
        var k = transposeA ? a.Size(0) : a.Size(-1);
        var m = a.ElementCount / Math.Max(k, 1);
        var n = transposeB ? b.Size(0) : b.Size(1);
        var bInner = transposeB ? b.Size(1) : b.Size(0);
        if (bInner != k)
        {
            throw new LrmShapeException($"{op}: inner sizes differ: 'a' {a.ShapeText}{(transposeA ? "ᵀ" : "")} has K = {k}, 'b' {b.ShapeText}{(transposeB ? "ᵀ" : "")} has K = {bInner}");
        }
        return (m, n, k);
    }

    /// <summary>
    /// The forward's output shape, (M, N) or a's leading dimensions and N, written into <paramref name="shape"/>
    /// (length 2 when transposeA, else a.Rank).
    /// </summary>
    public static Span<long> GemmOutputShape(Tensor a, long n, bool transposeA, Span<long> shape)
    {
        if (transposeA)
        {
            shape[0] = a.Size(1);
        }
        else
        {
            a.Shape[..^1].CopyTo(shape);
        }
        shape[^1] = n;
        return shape;
    }

    // ---- normalisation -------------------------------------------------------------------------------------

    /// <summary>(rows, channels) of a LayerNorm over the last dimension of input (..., C).</summary>
    public static (long Rows, long Channels) LayerNorm(string op, Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias)
    {
        Expect.Rank(op, "input", input, 1, "(..., channels)");
        var channels = input.Size(-1);
        var rows = input.ElementCount / Math.Max(channels, 1);
        Expect.Shape(op, "output", output, input.Shape);
        Expect.Shape(op, "mean", mean, input.Shape[..^1]);
        Expect.Shape(op, "rstd", rstd, input.Shape[..^1]);
        Expect.Shape(op, "weight", weight, channels);
        Expect.Shape(op, "bias", bias, channels);
        return (rows, channels);
    }

    // ---- attention -----------------------------------------------------------------------------------------

    /// <summary>
    /// (B, Lq, Lkv, heads·head_dim) of attention writing output (B, Lq, heads·head_dim), with the checks on
    /// output, q, k, v and lse that Attention and AttentionBackward share.
    /// </summary>
    public static (long Batch, long QueryLength, long KeyLength, long Width) AttentionSizes(string op, Tensor output, Tensor? logSumExp,
        ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads)
    {
        Expect.Positive(op, "heads", heads);
        Expect.Shape(op, "output", output, -1, -1, -1);
        long batch = output.Size(0), queryLength = output.Size(1), width = output.Size(2);
        if (width % heads != 0)
        {
            throw new LrmShapeException($"{op}: output width {width} of {output.ShapeText} is not a multiple of heads = {heads}");
        }
        Expect.Shape(op, "query", query.Source, batch, queryLength, -1);
        Expect.Shape(op, "key", key.Source, batch, -1, -1);
        var keyLength = key.Source.Size(1);
        Expect.Shape(op, "value", value.Source, batch, keyLength, key.Source.Size(2));
        Expect.Shape(op, "lse", logSumExp, batch, heads, queryLength);
        ColumnSliceInRange(op, "query", query, width);
        ColumnSliceInRange(op, "key", key, width);
        ColumnSliceInRange(op, "value", value, width);
        return (batch, queryLength, keyLength, width);
    }

    /// <summary>AttentionBackward's arguments before their types are checked: none null, no gradient written into an input.</summary>
    public static void AttentionBackwardArguments(string op, ColumnSlice gradQuery, ColumnSlice gradKey, ColumnSlice gradValue, Tensor gradOutput,
        Tensor output, Tensor logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value)
    {
        foreach (var (name, tensor) in new[] { ("gradQuery", gradQuery.Source), ("gradKey", gradKey.Source), ("gradValue", gradValue.Source),
            ("gradOutput", gradOutput), ("output", output), ("lse", logSumExp), ("query", query.Source), ("key", key.Source), ("value", value.Source) })
        {
            if (tensor is null)
            {
                throw new LrmInvalidArgumentException($"{op}: tensor '{name}' is null");
            }
        }
        foreach (var gradient in new[] { gradQuery.Source, gradKey.Source, gradValue.Source })
        {
            if (gradient == query.Source || gradient == key.Source || gradient == value.Source || gradient == gradOutput || gradient == output)
            {
                throw new LrmInvalidArgumentException($"{op}: the gradients must not be written into an input tensor ({gradient.ShapeText})");
            }
        }
    }

    /// <summary>(B, Lq, Lkv, width) of AttentionBackward, after the forward's checks and the gradients' shapes (gradKey and gradValue share a row stride).</summary>
    public static (long Batch, long QueryLength, long KeyLength, long Width) AttentionBackwardSizes(string op, ColumnSlice gradQuery, ColumnSlice gradKey,
        ColumnSlice gradValue, Tensor gradOutput, Tensor output, Tensor logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads)
    {
        var sizes = AttentionSizes(op, output, logSumExp, query, key, value, heads);
        Expect.Shape(op, "gradOutput", gradOutput, output.Shape);
        Expect.Shape(op, "gradQuery", gradQuery.Source, sizes.Batch, sizes.QueryLength, -1);
        Expect.Shape(op, "gradKey", gradKey.Source, sizes.Batch, sizes.KeyLength, -1);
        Expect.Shape(op, "gradValue", gradValue.Source, sizes.Batch, sizes.KeyLength, gradKey.Source.Size(2));
        ColumnSliceInRange(op, "gradQuery", gradQuery, sizes.Width);
        ColumnSliceInRange(op, "gradKey", gradKey, sizes.Width);
        ColumnSliceInRange(op, "gradValue", gradValue, sizes.Width);
        return sizes;
    }

    /// <summary>Columns [offset, offset + width) of the slice's (B, L, D) source must exist.</summary>
    public static void ColumnSliceInRange(string op, string name, ColumnSlice slice, long width)
    {
        if (slice.ColumnOffset < 0 || slice.ColumnOffset + width > slice.Source.Size(2))
        {
            throw new LrmShapeException($"{op}: columns [{slice.ColumnOffset}, {slice.ColumnOffset + width}) of '{name}' {slice.Source.ShapeText} are out of range");
        }
    }

    // ---- convolution ---------------------------------------------------------------------------------------

    /// <summary>
    /// (B, Cin, H, W, Cout, P) of an image (B, Cin, H, W) and weight (Cout, Cin, P, P), with the checks
    /// PatchEmbed and PatchEmbedBackward share.
    /// </summary>
    public static (long Batch, long InChannels, long Height, long Width, long OutChannels, long Patch) PatchEmbedSizes(
        string op, Tensor image, Tensor weight)
    {
        Expect.Shape(op, "image", image, -1, -1, -1, -1);
        Expect.Shape(op, "weight", weight, -1, image.Size(1), -1, -1);
        long batch = image.Size(0), inChannels = image.Size(1), height = image.Size(2), width = image.Size(3);
        long outChannels = weight.Size(0), patch = weight.Size(2);
        Expect.Shape(op, "weight", weight, outChannels, inChannels, patch, patch);
        Expect.Positive(op, "patch", patch);
        if (patch > height || patch > width)
        {
            throw new LrmShapeException($"{op}: image {image.ShapeText} is smaller than one {patch}×{patch} patch");
        }
        return (batch, inChannels, height, width, outChannels, patch);
    }

    /// <summary>
    /// (B, Cin, H, W, Cout, K) of an input (B, Cin, H, W) and weight (Cin, Cout, K, K), with the checks
    /// Deconvolution and DeconvolutionBackward share.
    /// </summary>
    public static (long Batch, long InChannels, long Height, long Width, long OutChannels, long Kernel) DeconvolutionSizes(
        string op, Tensor input, Tensor weight)
    {
        Expect.Shape(op, "input", input, -1, -1, -1, -1);
        Expect.Shape(op, "weight", weight, input.Size(1), -1, -1, -1);
        long batch = input.Size(0), inChannels = input.Size(1), height = input.Size(2), width = input.Size(3);
        long outChannels = weight.Size(1), kernel = weight.Size(2);
        Expect.Shape(op, "weight", weight, inChannels, outChannels, kernel, kernel);
        return (batch, inChannels, height, width, outChannels, kernel);
    }

    // ---- triplane ------------------------------------------------------------------------------------------

    /// <summary>
    /// (B, N, C, H, W) of planes (B, 3, H, W, C) and points (B, N, 3), with the checks TriplaneSample and
    /// TriplaneSampleBackward share.
    /// </summary>
    public static (long Batch, long Count, long Channels, long Height, long Width) TriplaneSizes(string op, Tensor planes, Tensor points)
    {
        Expect.Shape(op, "planes", planes, -1, 3, -1, -1, -1);
        long batch = planes.Size(0), height = planes.Size(2), width = planes.Size(3), channels = planes.Size(4);
        Expect.Shape(op, "points", points, batch, -1, 3);
        var count = points.Size(1);
        return (batch, count, channels, height, width);
    }

    /// <summary>(batch, points, channels, height, width) of TriplaneSampleSum (as <see cref="TriplaneSizes"/>), after checking the output and bias.</summary>
    public static (long Batch, long Count, long Channels, long Height, long Width) TriplaneSampleSum(string op, Tensor output, Tensor planes,
        Tensor points, Tensor? bias, Activation activation)
    {
        var sizes = TriplaneSizes(op, planes, points);
        Expect.Shape(op, "output", output, sizes.Batch, sizes.Count, sizes.Channels);
        Expect.Shape(op, "bias", bias, sizes.Channels);
        if (!Enum.IsDefined(activation))
        {
            throw new LrmInvalidArgumentException($"{op}: activation must be None, Relu, Gelu or Silu, got {(int)activation}");
        }
        return sizes;
    }

    // ---- resampling ----------------------------------------------------------------------------------------

    /// <summary>
    /// The scale factors of ResizeScaled and ResizeScaledBackward: finite and &gt; 0, and not so small that an axis
    /// reads beyond 2^31 source pixels (out / factor): the tap tables hold integer source indices (as the native
    /// lrm_resize_scaled_* check).
    /// </summary>
    public static void ResizeScaleFactors(string op, double factorHeight, double factorWidth, long outHeight, long outWidth)
    {
        if (!(factorHeight > 0) || !(factorWidth > 0) || !double.IsFinite(factorHeight) || !double.IsFinite(factorWidth))
        {
            throw new LrmInvalidArgumentException($"{op}: scale factors must be finite and > 0, got {factorHeight} x {factorWidth}");
        }
        const double maxSourceExtent = 2147483648.0; // 2^31
        foreach (var (axis, factor, size) in new[] { ("height", factorHeight, outHeight), ("width", factorWidth, outWidth) })
        {
            var extent = size / factor;
            if (!(extent <= maxSourceExtent))
            {
                throw new LrmInvalidArgumentException(
                    $"{op}: scale factor {factor} along the {axis} is too small: the output's {size} pixels would read a source extent of {extent} pixels (out / factor), more than 2^31");
            }
        }
    }

    // ---- element-wise and layout ---------------------------------------------------------------------------

    /// <summary>Channels of LayerScale: output = input·gamma (+ residual), input (..., C), gamma (C).</summary>
    public static long LayerScale(string op, Tensor output, Tensor input, Tensor gamma, Tensor? residual)
    {
        Expect.Rank(op, "input", input, 1, "(..., channels)");
        var channels = input.Size(-1);
        Expect.Shape(op, "gamma", gamma, channels);
        Expect.Shape(op, "output", output, input.Shape);
        Expect.Shape(op, "residual", residual, input.Shape);
        Expect.NotEmpty(op, "input", input);
        return channels;
    }

    /// <summary>(batch, rows, columns) of a transpose of the last two dimensions into a different tensor.</summary>
    public static (long Batch, long Rows, long Columns) Transpose(string op, Tensor output, Tensor input)
    {
        Expect.Rank(op, "input", input, 2, "(..., rows, columns)");
        Span<long> expected = stackalloc long[input.Rank];
        input.Shape.CopyTo(expected);
        (expected[^1], expected[^2]) = (expected[^2], expected[^1]);
        Expect.Shape(op, "output", output, expected);
        Expect.NotEmpty(op, "input", input);
        if (output == input)
        {
            throw new LrmInvalidArgumentException($"{op}: output must not be the input (the transpose is not in place)");
        }
        long rows = input.Size(-2), columns = input.Size(-1);
        return (input.ElementCount / (rows * columns), rows, columns);
    }

    /// <summary>Same data type and both element ranges inside their tensors (overlap is the backend's check).</summary>
    public static void CopyRange(string op, Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count)
    {
        if (destination.DataType != source.DataType)
        {
            throw new LrmShapeException($"{op}: cannot copy {source.DataType} into {destination.DataType}");
        }
        if (count < 0 || sourceOffset < 0 || destinationOffset < 0
            || sourceOffset > source.ElementCount - count || destinationOffset > destination.ElementCount - count)
        {
            throw new LrmShapeException($"{op}: {count} elements from offset {sourceOffset} of {source.ShapeText} to offset {destinationOffset} of {destination.ShapeText} are out of range");
        }
    }

    // ---- rendering -----------------------------------------------------------------------------------------

    /// <summary>Rows (samples) of NerfDecode: raw (..., 4) → sigma (..., 1), rgb (..., 3).</summary>
    public static long NerfDecode(string op, Tensor? sigma, Tensor? rgb, Tensor raw, string sigmaName = "sigma", string rgbName = "rgb")
    {
        Expect.Rank(op, "raw", raw, 1, "(..., 4)");
        if (raw.Size(-1) != 4)
        {
            throw new LrmShapeException($"{op}: tensor 'raw' must be (..., 4), got {raw.ShapeText}");
        }
        Span<long> shape = stackalloc long[raw.Rank];
        raw.Shape.CopyTo(shape);
        shape[^1] = 1;
        Expect.Shape(op, sigmaName, sigma, shape);
        shape[^1] = 3;
        Expect.Shape(op, rgbName, rgb, shape);
        Expect.NotEmpty(op, "raw", raw);
        return raw.ElementCount / 4;
    }

    /// <summary>(rows, channels) of LayerNormBackward: input (..., C); gradients like their tensors; mean/rstd (...).</summary>
    public static (long Rows, long Channels) LayerNormBackward(string op, Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradOutput,
        Tensor mean, Tensor rstd, Tensor input, Tensor? weight)
    {
        Expect.Rank(op, "input", input, 1, "(..., channels)");
        Expect.NotEmpty(op, "input", input);
        var channels = input.Size(-1);
        Expect.Shape(op, "gradInput", gradInput, input.Shape);
        Expect.Shape(op, "gradOutput", gradOutput, input.Shape);
        Expect.Shape(op, "mean", mean, input.Shape[..^1]);
        Expect.Shape(op, "rstd", rstd, input.Shape[..^1]);
        Expect.Shape(op, "weight", weight, channels);
        Expect.Shape(op, "gradWeight", gradWeight, channels);
        Expect.Shape(op, "gradBias", gradBias, channels);
        return (input.ElementCount / channels, channels);
    }

    /// <summary>(batch, tokens, channels) of ModLNBackward: input (B, T, C), scale/gradShift/gradScale (B, C), mean/rstd (B, T).</summary>
    public static (long Batch, long Tokens, long Channels) ModLNBackward(string op, Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradShift,
        Tensor gradScale, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor scale)
    {
        Expect.Shape(op, "input", input, -1, -1, -1);
        Expect.NotEmpty(op, "input", input);
        long batch = input.Size(0), tokens = input.Size(1), channels = input.Size(2);
        Expect.Shape(op, "gradInput", gradInput, batch, tokens, channels);
        Expect.Shape(op, "gradOutput", gradOutput, batch, tokens, channels);
        Expect.Shape(op, "mean", mean, batch, tokens);
        Expect.Shape(op, "rstd", rstd, batch, tokens);
        Expect.Shape(op, "weight", weight, channels);
        Expect.Shape(op, "bias", bias, channels);
        Expect.Shape(op, "scale", scale, batch, channels);
        Expect.Shape(op, "gradWeight", gradWeight, channels);
        Expect.Shape(op, "gradBias", gradBias, channels);
        Expect.Shape(op, "gradShift", gradShift, batch, channels);
        Expect.Shape(op, "gradScale", gradScale, batch, channels);
        return (batch, tokens, channels);
    }

    /// <summary>Sizes of PatchEmbedBackward (as <see cref="PatchEmbedSizes"/>), after checking the gradients' shapes.</summary>
    public static (long Batch, long InChannels, long Height, long Width, long OutChannels, long Patch) PatchEmbedBackward(string op, Tensor? gradImage,
        Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor image, Tensor weight)
    {
        var sizes = PatchEmbedSizes(op, image, weight);
        Expect.Shape(op, "gradOutput", gradOutput, sizes.Batch, sizes.Height / sizes.Patch * (sizes.Width / sizes.Patch), sizes.OutChannels);
        Expect.Shape(op, "gradImage", gradImage, image.Shape);
        Expect.Shape(op, "gradWeight", gradWeight, weight.Shape);
        Expect.Shape(op, "gradBias", gradBias, sizes.OutChannels);
        return sizes;
    }

    /// <summary>Sizes of DeconvolutionBackward (as <see cref="DeconvolutionSizes"/>), after checking the gradients' shapes.</summary>
    public static (long Batch, long InChannels, long Height, long Width, long OutChannels, long Kernel) DeconvolutionBackward(string op, Tensor? gradInput,
        Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight)
    {
        var sizes = DeconvolutionSizes(op, input, weight);
        Expect.Shape(op, "gradOutput", gradOutput, sizes.Batch, sizes.OutChannels, sizes.Height * sizes.Kernel, sizes.Width * sizes.Kernel);
        Expect.Shape(op, "gradInput", gradInput, input.Shape);
        Expect.Shape(op, "gradWeight", gradWeight, weight.Shape);
        Expect.Shape(op, "gradBias", gradBias, sizes.OutChannels);
        return sizes;
    }

    /// <summary>(batch, points, channels, height, width) of TriplaneSampleBackward (as <see cref="TriplaneSizes"/>), after checking the gradients.</summary>
    public static (long Batch, long Count, long Channels, long Height, long Width) TriplaneSampleBackward(string op, Tensor gradPlanes, Tensor? gradPoints,
        Tensor gradOutput, Tensor planes, Tensor points)
    {
        var sizes = TriplaneSizes(op, planes, points);
        Expect.Shape(op, "gradOutput", gradOutput, sizes.Batch, sizes.Count, 3 * sizes.Channels);
        Expect.Shape(op, "gradPlanes", gradPlanes, planes.Shape);
        Expect.Shape(op, "gradPoints", gradPoints, points.Shape);
        return sizes;
    }

    /// <summary>MlpBackward's lists: none null, at least one layer, one weight, bias, weight-gradient and bias-gradient slot per layer.</summary>
    public static void MlpBackwardSlots(string op, IReadOnlyList<Tensor> gradWeights, IReadOnlyList<Tensor?> gradBiases, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?> biases)
    {
        ArgumentNullException.ThrowIfNull(gradWeights);
        ArgumentNullException.ThrowIfNull(gradBiases);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        if (weights.Count == 0 || biases.Count != weights.Count || gradWeights.Count != weights.Count || gradBiases.Count != weights.Count)
        {
            throw new LrmInvalidArgumentException($"{op}: needs at least one layer and one weight, bias, weight-gradient and bias-gradient slot per layer (got {weights.Count} weights, {biases.Count} biases, {gradWeights.Count} weight gradients, {gradBiases.Count} bias gradients)");
        }
    }

    /// <summary>(rows, columns) of SoftmaxBackward: output (..., columns), not empty; both gradients like it.</summary>
    public static (long Rows, long Columns) SoftmaxBackward(string op, Tensor gradInput, Tensor gradOutput, Tensor output)
    {
        Expect.Rank(op, "output", output, 1, "(..., columns)");
        Expect.NotEmpty(op, "output", output);
        Expect.Shape(op, "gradOutput", gradOutput, output.Shape);
        Expect.Shape(op, "gradInput", gradInput, output.Shape);
        var columns = output.Size(-1);
        return (output.ElementCount / columns, columns);
    }

    /// <summary>Rows of MlpBackward after checking gradOutput (input's shape with the last layer's width) and gradInput (input's shape).</summary>
    public static long MlpBackwardRows(string op, Tensor? gradInput, Tensor gradOutput, Tensor input, long outputWidth)
    {
        Span<long> outShape = stackalloc long[input.Rank];
        input.Shape.CopyTo(outShape);
        outShape[^1] = outputWidth;
        Expect.Shape(op, "gradOutput", gradOutput, outShape);
        Expect.Shape(op, "gradInput", gradInput, input.Shape);
        Expect.NotEmpty(op, "input", input);
        return input.ElementCount / input.Size(-1);
    }

    /// <summary>(M, N, K) of GemmBackward: gradOutput like Gemm's output, gradA/gradB like a/b, gradBias (N); at least one requested.</summary>
    public static (long M, long N, long K) GemmBackward(string op, Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
        bool transposeA, bool transposeB)
    {
        var (m, n, k) = GemmSizes(op, a, b, transposeA, transposeB);
        Expect.Shape(op, "gradOutput", gradOutput, GemmOutputShape(a, n, transposeA, stackalloc long[transposeA ? 2 : a.Rank]));
        Expect.Shape(op, "gradA", gradA, a.Shape);
        Expect.Shape(op, "gradB", gradB, b.Shape);
        Expect.Shape(op, "gradBias", gradBias, n);
        if (gradA is null && gradB is null && gradBias is null)
        {
            throw new LrmInvalidArgumentException($"{op}: no gradient requested (gradA, gradB and gradBias are all null)");
        }
        return (m, n, k);
    }

    /// <summary>(batch, rays, samples of A, samples of B) of RenderMarchBackward, after every check of its arguments.</summary>
    public static (long Batch, long Rays, long SamplesA, long SamplesB) RenderMarchBackward(string op, Tensor gradDecodedA, Tensor? gradDecodedB,
        Tensor? gradRgb, Tensor? gradDepth, Tensor? gradOpacity, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB,
        ReadOnlySpan<float> background, Tensor? depthRange)
    {
        if ((depthsB is null) != (decodedB is null) || (decodedB is null) != (gradDecodedB is null))
        {
            throw new LrmInvalidArgumentException($"{op}: depthsB, decodedB and gradDecodedB must be given together");
        }
        if (gradRgb is null && gradDepth is null && gradOpacity is null)
        {
            throw new LrmInvalidArgumentException($"{op}: at least one of gradRgb, gradDepth and gradOpacity must be given");
        }
        if (gradDepth is not null && depthRange is null)
        {
            throw new LrmInvalidArgumentException($"{op}: depthRange is required with gradDepth (the forward clamps depth to it)");
        }
        // The forward's inputs as the forward checks them, then the gradients shaped like its inputs and outputs.
        var (batch, rays, samplesA, samplesB) = RenderMarch(op, null, null, null, null, depthsA, decodedA, depthsB, decodedB, background, depthRange);
        Expect.Shape(op, "gradDecodedA", gradDecodedA, batch, rays * samplesA, 4);
        Expect.Shape(op, "gradDecodedB", gradDecodedB, batch, rays * samplesB, 4);
        Expect.Shape(op, "gradRgb", gradRgb, batch, rays, 3);
        Expect.Shape(op, "gradDepth", gradDepth, batch, rays);
        Expect.Shape(op, "gradOpacity", gradOpacity, batch, rays);
        return (batch, rays, samplesA, samplesB);
    }

    /// <summary>Rows of NerfDecodeBackward: raw (..., 4), gradRaw like raw, gradSigma (..., 1) and gradRgb (..., 3), one of them given.</summary>
    public static long NerfDecodeBackward(string op, Tensor gradRaw, Tensor? gradSigma, Tensor? gradRgb, Tensor raw)
    {
        Expect.Rank(op, "raw", raw, 1, "(..., 4)");
        if (raw.Size(-1) != 4)
        {
            throw new LrmShapeException($"{op}: tensor 'raw' must be (..., 4), got {raw.ShapeText}");
        }
        if (gradSigma is null && gradRgb is null)
        {
            throw new LrmInvalidArgumentException($"{op}: at least one of gradSigma and gradRgb must be given");
        }
        Expect.Shape(op, "gradRaw", gradRaw, raw.Shape);
        return NerfDecode(op, gradSigma, gradRgb, raw, "gradSigma", "gradRgb");
    }

    /// <summary>Samples of RenderDecode (decoded like raw) and its backward (gradients like raw): raw (..., 4), points (..., 3), as many of each.</summary>
    public static long RenderDecode(string op, Tensor decoded, Tensor raw, Tensor points, string decodedName = "decoded")
    {
        Expect.Rank(op, "raw", raw, 1, "(..., 4)");
        if (raw.Size(-1) != 4 || points.Size(-1) != 3 || raw.ElementCount / 4 != points.ElementCount / 3)
        {
            throw new LrmShapeException($"{op}: raw {raw.ShapeText} must be (..., 4) and points {points.ShapeText} (..., 3) with the same number of samples");
        }
        Expect.Shape(op, decodedName, decoded, raw.Shape);
        Expect.NotEmpty(op, "raw", raw);
        return raw.ElementCount / 4;
    }

    /// <summary>(rows, channels) of LayerScaleBackward: input (..., C), gamma (C), gradients like their tensors, at least one requested.</summary>
    public static (long Rows, long Channels) LayerScaleBackward(string op, Tensor? gradInput, Tensor? gradGamma, Tensor? gradResidual, Tensor gradOutput,
        Tensor input, Tensor gamma)
    {
        Expect.Rank(op, "input", input, 1, "(..., channels)");
        Expect.NotEmpty(op, "input", input);
        var channels = input.Size(-1);
        Expect.Shape(op, "gamma", gamma, channels);
        Expect.Shape(op, "gradOutput", gradOutput, input.Shape);
        Expect.Shape(op, "gradInput", gradInput, input.Shape);
        Expect.Shape(op, "gradResidual", gradResidual, input.Shape);
        Expect.Shape(op, "gradGamma", gradGamma, channels);
        if (gradInput is null && gradGamma is null && gradResidual is null)
        {
            throw new LrmInvalidArgumentException($"{op}: no gradient requested (gradInput, gradGamma and gradResidual are all null)");
        }
        if (gradInput is not null && gradInput == gradResidual)
        {
            throw new LrmInvalidArgumentException($"{op}: gradInput and gradResidual must be different tensors");
        }
        return (input.ElementCount / channels, channels);
    }

    /// <summary>(batch, rays, samples) of RenderRays for cameras (B, 25) and a height × width image.</summary>
    public static (long Batch, long Rays, long Samples) RenderRays(string op, Tensor origins, Tensor directions, Tensor depths, Tensor? depthRange,
        Tensor cameras, int height, int width)
    {
        Expect.Positive(op, "height", height);
        Expect.Positive(op, "width", width);
        Expect.Shape(op, "cameras", cameras, -1, 25);
        var batch = cameras.Size(0);
        var rays = (long)height * width;
        Expect.Shape(op, "origins", origins, batch, rays, 3);
        Expect.Shape(op, "directions", directions, batch, rays, 3);
        Expect.Shape(op, "depths", depths, batch, rays, -1);
        Expect.Shape(op, "depthRange", depthRange, batch, 2);
        return (batch, rays, depths.Size(2));
    }

    /// <summary>(batch, rays, samples) of RenderPoints: points (B, R·S, 3) along rays (B, R, 3) at depths (B, R, S).</summary>
    public static (long Batch, long Rays, long Samples) RenderPoints(string op, Tensor points, Tensor origins, Tensor directions, Tensor depths)
    {
        Expect.Shape(op, "depths", depths, -1, -1, -1);
        long batch = depths.Size(0), rays = depths.Size(1), samples = depths.Size(2);
        Expect.Shape(op, "origins", origins, batch, rays, 3);
        Expect.Shape(op, "directions", directions, batch, rays, 3);
        Expect.Shape(op, "points", points, batch, rays * samples, 3);
        return (batch, rays, samples);
    }

    /// <summary>The point count n of GridPoints: points (1, n, 3), resolution ≥ 2, first ≥ 0 and first + n ≤ resolution³.</summary>
    public static long GridPoints(string op, Tensor points, int resolution, long first)
    {
        Expect.Shape(op, "points", points, 1, -1, 3);
        if (resolution < 2)
        {
            throw new LrmInvalidArgumentException($"{op}: resolution must be >= 2, got {resolution}");
        }
        var count = points.Size(1);
        var total = (long)resolution * resolution * resolution;
        if (first < 0 || first > total - count)
        {
            throw new LrmInvalidArgumentException($"{op}: points {first}..{first + count - 1} are outside the {resolution}³ grid ({total} points)");
        }
        return count;
    }

    /// <summary>(batch, rays, coarse, fine) of RenderImportance: coarse depths (B, R, Sc), weights (B, R, Sc - 1), fine depths (B, R, Sf).</summary>
    public static (long Batch, long Rays, long Coarse, long Fine) RenderImportance(string op, Tensor fineDepths, Tensor coarseDepths, Tensor coarseWeights)
    {
        Expect.Shape(op, "coarseDepths", coarseDepths, -1, -1, -1);
        long batch = coarseDepths.Size(0), rays = coarseDepths.Size(1), coarse = coarseDepths.Size(2);
        Expect.Shape(op, "coarseWeights", coarseWeights, batch, rays, coarse - 1);
        Expect.Shape(op, "fineDepths", fineDepths, batch, rays, -1);
        return (batch, rays, coarse, fineDepths.Size(2));
    }

    /// <summary>
    /// (batch, rays, samples of A, samples of B) of RenderMarch: the argument rules (3 background values, depthsB
    /// with decodedB, depthRange with depth) and every shape.
    /// </summary>
    public static (long Batch, long Rays, long SamplesA, long SamplesB) RenderMarch(string op, Tensor? rgb, Tensor? depth, Tensor? opacity, Tensor? weights,
        Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        if (background.Length != 3)
        {
            throw new LrmInvalidArgumentException($"{op}: background must have 3 values, got {background.Length}");
        }
        if ((depthsB is null) != (decodedB is null))
        {
            throw new LrmInvalidArgumentException($"{op}: depthsB and decodedB must be given together");
        }
        if (depth is not null && depthRange is null)
        {
            throw new LrmInvalidArgumentException($"{op}: depthRange is required to clamp depth");
        }
        Expect.Shape(op, "depthsA", depthsA, -1, -1, -1);
        long batch = depthsA.Size(0), rays = depthsA.Size(1), samplesA = depthsA.Size(2);
        Expect.Shape(op, "decodedA", decodedA, batch, rays * samplesA, 4);
        Expect.Shape(op, "depthsB", depthsB, batch, rays, -1);
        var samplesB = depthsB?.Size(2) ?? 0;
        Expect.Shape(op, "decodedB", decodedB, batch, rays * samplesB, 4);
        Expect.Shape(op, "rgb", rgb, batch, rays, 3);
        Expect.Shape(op, "depth", depth, batch, rays);
        Expect.Shape(op, "opacity", opacity, batch, rays);
        Expect.Shape(op, "weights", weights, batch, rays, samplesA + samplesB - 1);
        Expect.Shape(op, "depthRange", depthRange, batch, 2);
        return (batch, rays, samplesA, samplesB);
    }

    // ---- iso-surfaces ---------------------------------------------------------------------------------------

    /// <summary>(depth, height, width) of a scalar field (D, H, W) for marching cubes: at least one cell, a finite level, and bounds empty or 6 values.</summary>
    public static (long Depth, long Height, long Width) MarchingCubes(string op, Tensor field, float level, ReadOnlySpan<float> bounds)
    {
        Expect.Shape(op, "field", field, -1, -1, -1);
        long depth = field.Size(0), height = field.Size(1), width = field.Size(2);
        if (depth < 2 || height < 2 || width < 2)
        {
            throw new LrmShapeException($"{op}: tensor 'field' must be at least (2, 2, 2) (one cell), got {field.ShapeText}");
        }
        if (!float.IsFinite(level))
        {
            throw new LrmInvalidArgumentException($"{op}: level must be finite, got {level}");
        }
        if (bounds.Length is not (0 or 6))
        {
            throw new LrmInvalidArgumentException($"{op}: bounds must be empty (grid coordinates) or hold 6 values [minX, minY, minZ, maxX, maxY, maxZ], got {bounds.Length}");
        }
        return (depth, height, width);
    }
}
