using LrmNative.Interop;

namespace LrmNative.Backends;

/// <summary>
/// The CPU engine: every op calls the C reference kernels in liblrm_native.so
/// (OpenMP + OpenBLAS). Shapes are checked here, so a mismatch is reported with the
/// op and tensor names before native code sees a pointer.
/// </summary>
public sealed unsafe class CpuBackend : IBackend
{
    /// <summary>Creates the backend; <paramref name="threads"/> &gt; 0 fixes the OpenMP/BLAS thread count.</summary>
    public CpuBackend(int threads = 0)
    {
        if (threads > 0)
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(threads));
        }
    }

    /// <inheritdoc />
    public string Name => "cpu";

    /// <summary>
    /// Scatter-add backward ops (triplane sampling into the planes) give results that do not depend on the
    /// thread count (default). False uses per-thread partial sums instead: deterministic for a given thread
    /// count only, and more scratch memory.
    /// </summary>
    public bool Deterministic { get; set; } = true;

    /// <inheritdoc />
    public Device Device => Device.Cpu;

    private static float* F(Tensor? tensor) => tensor is null ? null : (float*)tensor.Pointer;

    // ---- tensors and transfers -------------------------------------------------

    /// <inheritdoc />
    public Tensor Empty(ReadOnlySpan<long> shape, DataType dataType = DataType.Float32) => Tensor.Empty(shape, dataType);

    /// <inheritdoc />
    public void Fill(Tensor output, float value)
    {
        ArgumentNullException.ThrowIfNull(output);
        Expect.Host("Fill", "output", output);
        switch (output.DataType)
        {
            case DataType.Float32:
                output.AsSpan<float>().Fill(value);
                break;
            case DataType.BFloat16:
                output.AsSpan<ushort>().Fill(BackendMemory.BFloat16Bits(value));
                break;
            case DataType.Int32:
                output.AsSpan<int>().Fill((int)value);
                break;
            default:
                throw new LrmInternalException($"Fill: unhandled data type {output.DataType}");
        }
    }

    /// <inheritdoc />
    public void Upload(Tensor destination, Tensor host) => HostCopy("Upload", destination, host);

    /// <inheritdoc />
    public void Download(Tensor host, Tensor source) => HostCopy("Download", host, source);

    private static void HostCopy(string op, Tensor destination, Tensor source)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(source);
        Expect.Host(op, "destination", destination);
        Expect.Host(op, "source", source);
        BackendMemory.SameLayout(op, destination, source);
        Buffer.MemoryCopy(source.Pointer, destination.Pointer, destination.ByteCount, source.ByteCount);
    }

    // ---- GEMM ---------------------------------------------------------------

    /// <inheritdoc />
    public void Gemm(Tensor output, Tensor a, Tensor b, Tensor? bias = null, Tensor? residual = null, bool transposeA = false, bool transposeB = false)
    {
        const string op = "Gemm";
        Expect.HostFloat32(op, ("output", output), ("a", a), ("b", b), ("bias", bias), ("residual", residual));
        var (m, n, k) = OpShapes.GemmSizes(op, a, b, transposeA, transposeB);
        var outShape = OpShapes.GemmOutputShape(a, n, transposeA, stackalloc long[transposeA ? 2 : a.Rank]);
        Expect.Shape(op, "output", output, outShape);
        Expect.Shape(op, "bias", bias, n);
        Expect.Shape(op, "residual", residual, outShape);
        NativeCheck.Check(NativeMethods.lrm_gemm_forward(F(output), F(a), F(b), F(bias), F(residual),
            m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0), $"a {a.ShapeText}, b {b.ShapeText}");
    }

    /// <inheritdoc />
    public void GemmBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA = false, bool transposeB = false)
    {
        const string op = "GemmBackward";
        Expect.HostFloat32(op, ("gradA", gradA), ("gradB", gradB), ("gradBias", gradBias), ("gradOutput", gradOutput), ("a", a), ("b", b));
        var (m, n, k) = OpShapes.GemmBackward(op, gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB);
        NativeCheck.Check(NativeMethods.lrm_gemm_backward(F(gradA), F(gradB), F(gradBias), F(gradOutput), F(a), F(b),
            m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0), $"a {a.ShapeText}, b {b.ShapeText}");
    }

    // ---- normalisation ---------------------------------------------------------

    /// <inheritdoc />
    public void LayerNorm(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, float epsilon)
    {
        const string op = "LayerNorm";
        Expect.HostFloat32(op, ("output", output), ("mean", mean), ("rstd", rstd), ("input", input), ("weight", weight), ("bias", bias));
        var (rows, channels) = OpShapes.LayerNorm(op, output, mean, rstd, input, weight, bias);
        NativeCheck.Check(NativeMethods.lrm_layernorm_forward(F(output), F(mean), F(rstd), F(input), F(weight), F(bias),
            rows, channels, epsilon), $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight)
    {
        const string op = "LayerNormBackward";
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradWeight", gradWeight), ("gradBias", gradBias), ("gradOutput", gradOutput),
            ("mean", mean), ("rstd", rstd), ("input", input), ("weight", weight));
        var (rows, channels) = OpShapes.LayerNormBackward(op, gradInput, gradWeight, gradBias, gradOutput, mean, rstd, input, weight);
        NativeCheck.Check(NativeMethods.lrm_layernorm_backward(F(gradInput), F(gradWeight), F(gradBias), F(gradOutput),
            F(mean), F(rstd), F(input), F(weight), rows, channels), $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void ModLN(Tensor output, Tensor? mean, Tensor? rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor shift, Tensor scale, float epsilon)
    {
        const string op = "ModLN";
        Expect.HostFloat32(op, ("output", output), ("mean", mean), ("rstd", rstd), ("input", input), ("weight", weight), ("bias", bias), ("shift", shift), ("scale", scale));
        Expect.Shape(op, "input", input, -1, -1, -1);
        long batch = input.Size(0), tokens = input.Size(1), channels = input.Size(2);
        Expect.Shape(op, "output", output, batch, tokens, channels);
        Expect.Shape(op, "mean", mean, batch, tokens);
        Expect.Shape(op, "rstd", rstd, batch, tokens);
        Expect.Shape(op, "weight", weight, channels);
        Expect.Shape(op, "bias", bias, channels);
        Expect.Shape(op, "shift", shift, batch, channels);
        Expect.Shape(op, "scale", scale, batch, channels);
        NativeCheck.Check(NativeMethods.lrm_modln_forward(F(output), F(mean), F(rstd), F(input), F(weight), F(bias),
            F(shift), F(scale), batch, tokens, channels, epsilon), $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void ModLNBackward(Tensor gradInput, Tensor? gradWeight, Tensor? gradBias, Tensor gradShift, Tensor gradScale, Tensor gradOutput, Tensor mean, Tensor rstd, Tensor input, Tensor? weight, Tensor? bias, Tensor scale)
    {
        const string op = "ModLNBackward";
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradWeight", gradWeight), ("gradBias", gradBias), ("gradShift", gradShift),
            ("gradScale", gradScale), ("gradOutput", gradOutput), ("mean", mean), ("rstd", rstd), ("input", input), ("weight", weight),
            ("bias", bias), ("scale", scale));
        var (batch, tokens, channels) = OpShapes.ModLNBackward(op, gradInput, gradWeight, gradBias, gradShift, gradScale, gradOutput, mean, rstd,
            input, weight, bias, scale);
        NativeCheck.Check(NativeMethods.lrm_modln_backward(F(gradInput), F(gradWeight), F(gradBias), F(gradShift), F(gradScale),
            F(gradOutput), F(mean), F(rstd), F(input), F(weight), F(bias), F(scale), batch, tokens, channels),
            $"input {input.ShapeText}");
    }

    // ---- attention -------------------------------------------------------------

    /// <inheritdoc />
    public void Attention(Tensor output, Tensor? logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale)
    {
        const string op = "Attention";
        Expect.HostFloat32(op, ("output", output), ("lse", logSumExp), ("query", query.Source), ("key", key.Source), ("value", value.Source));
        var (batch, queryLength, keyLength, width) = OpShapes.AttentionSizes(op, output, logSumExp, query, key, value, heads);
        NativeCheck.Check(NativeMethods.lrm_attention_forward(F(output), F(logSumExp),
            F(query.Source) + query.ColumnOffset, F(key.Source) + key.ColumnOffset, F(value.Source) + value.ColumnOffset,
            batch, heads, queryLength, keyLength, width / heads, query.Source.Size(2), key.Source.Size(2), scale),
            $"q {query.Source.ShapeText}, k {key.Source.ShapeText}, heads {heads}");
    }

    /// <inheritdoc />
    public void AttentionBackward(ColumnSlice gradQuery, ColumnSlice gradKey, ColumnSlice gradValue, Tensor gradOutput, Tensor output, Tensor logSumExp, ColumnSlice query, ColumnSlice key, ColumnSlice value, int heads, float scale)
    {
        const string op = "AttentionBackward";
        OpShapes.AttentionBackwardArguments(op, gradQuery, gradKey, gradValue, gradOutput, output, logSumExp, query, key, value);
        Expect.HostFloat32(op, ("gradQuery", gradQuery.Source), ("gradKey", gradKey.Source), ("gradValue", gradValue.Source),
            ("gradOutput", gradOutput), ("output", output), ("lse", logSumExp), ("query", query.Source), ("key", key.Source), ("value", value.Source));
        var (batch, queryLength, keyLength, width) = OpShapes.AttentionBackwardSizes(op, gradQuery, gradKey, gradValue, gradOutput, output, logSumExp,
            query, key, value, heads);
        NativeCheck.Check(NativeMethods.lrm_attention_backward(
            F(gradQuery.Source) + gradQuery.ColumnOffset, F(gradKey.Source) + gradKey.ColumnOffset, F(gradValue.Source) + gradValue.ColumnOffset,
            F(gradOutput), F(output), F(logSumExp),
            F(query.Source) + query.ColumnOffset, F(key.Source) + key.ColumnOffset, F(value.Source) + value.ColumnOffset,
            batch, heads, queryLength, keyLength, width / heads, query.Source.Size(2), key.Source.Size(2),
            gradQuery.Source.Size(2), gradKey.Source.Size(2), scale),
            $"q {query.Source.ShapeText}, k {key.Source.ShapeText}, heads {heads}");
    }

    // ---- element-wise ----------------------------------------------------------

    /// <inheritdoc />
    public void Activate(Tensor output, Tensor input, Activation activation)
    {
        const string op = "Activate";
        Expect.HostFloat32(op, ("output", output), ("input", input));
        Expect.Shape(op, "output", output, input.Shape);
        Expect.NotEmpty(op, "input", input);
        var n = input.ElementCount;
        NativeCheck.Check(activation switch
        {
            Activation.Gelu => NativeMethods.lrm_gelu_forward(F(output), F(input), n),
            Activation.Silu => NativeMethods.lrm_silu_forward(F(output), F(input), n),
            Activation.Relu => NativeMethods.lrm_relu_forward(F(output), F(input), n),
            Activation.None => Copy(output, input),
            _ => throw new LrmInvalidArgumentException($"{op}: unknown activation {(int)activation}"),
        }, $"{activation} on {input.ShapeText}");
    }

    private static LrmStatus Copy(Tensor output, Tensor input)
    {
        if (output != input)
        {
            Buffer.MemoryCopy(input.Pointer, output.Pointer, output.ByteCount, input.ByteCount);
        }
        return LrmStatus.Ok;
    }

    /// <inheritdoc />
    public void ActivateBackward(Tensor gradInput, Tensor gradOutput, Tensor input, Activation activation)
    {
        const string op = "ActivateBackward";
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradOutput", gradOutput), ("input", input));
        Expect.Shape(op, "gradOutput", gradOutput, input.Shape);
        Expect.Shape(op, "gradInput", gradInput, input.Shape);
        Expect.NotEmpty(op, "input", input);
        var n = input.ElementCount;
        NativeCheck.Check(activation switch
        {
            Activation.Gelu => NativeMethods.lrm_gelu_backward(F(gradInput), F(gradOutput), F(input), n),
            Activation.Silu => NativeMethods.lrm_silu_backward(F(gradInput), F(gradOutput), F(input), n),
            Activation.Relu => NativeMethods.lrm_relu_backward(F(gradInput), F(gradOutput), F(input), n),
            Activation.None => Copy(gradInput, gradOutput),
            _ => throw new LrmInvalidArgumentException($"{op}: unknown activation {(int)activation}"),
        }, $"{activation} on {input.ShapeText}");
    }

    /// <inheritdoc />
    public void Softmax(Tensor output, Tensor input)
    {
        const string op = "Softmax";
        Expect.HostFloat32(op, ("output", output), ("input", input));
        Expect.Rank(op, "input", input, 1, "(..., columns)");
        Expect.Shape(op, "output", output, input.Shape);
        var cols = input.Size(-1);
        NativeCheck.Check(NativeMethods.lrm_softmax_forward(F(output), F(input), input.ElementCount / Math.Max(cols, 1), cols),
            $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void SoftmaxBackward(Tensor gradInput, Tensor gradOutput, Tensor output)
    {
        const string op = "SoftmaxBackward";
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradOutput", gradOutput), ("output", output));
        var (rows, cols) = OpShapes.SoftmaxBackward(op, gradInput, gradOutput, output);
        NativeCheck.Check(NativeMethods.lrm_softmax_backward(F(gradInput), F(gradOutput), F(output), rows, cols),
            $"output {output.ShapeText}");
    }

    // ---- convolutions ----------------------------------------------------------

    /// <inheritdoc />
    public void PatchEmbed(Tensor output, Tensor image, Tensor weight, Tensor? bias)
    {
        const string op = "PatchEmbed";
        Expect.HostFloat32(op, ("output", output), ("image", image), ("weight", weight), ("bias", bias));
        var (batch, inChannels, height, width, outChannels, patch) = OpShapes.PatchEmbedSizes(op, image, weight);
        Expect.Shape(op, "bias", bias, outChannels);
        Expect.Shape(op, "output", output, batch, height / patch * (width / patch), outChannels);
        NativeCheck.Check(NativeMethods.lrm_patch_embed_forward(F(output), F(image), F(weight), F(bias),
            batch, inChannels, height, width, outChannels, patch), $"image {image.ShapeText}, weight {weight.ShapeText}");
    }

    /// <inheritdoc />
    public void PatchEmbedBackward(Tensor? gradImage, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor image, Tensor weight)
    {
        const string op = "PatchEmbedBackward";
        Expect.HostFloat32(op, ("gradImage", gradImage), ("gradWeight", gradWeight), ("gradBias", gradBias),
            ("gradOutput", gradOutput), ("image", image), ("weight", weight));
        var (batch, inChannels, height, width, outChannels, patch) = OpShapes.PatchEmbedBackward(op, gradImage, gradWeight, gradBias, gradOutput, image, weight);
        NativeCheck.Check(NativeMethods.lrm_patch_embed_backward(F(gradImage), F(gradWeight), F(gradBias), F(gradOutput),
            F(image), F(weight), batch, inChannels, height, width, outChannels, patch),
            $"image {image.ShapeText}, weight {weight.ShapeText}");
    }

    /// <inheritdoc />
    public void Deconvolution(Tensor output, Tensor input, Tensor weight, Tensor? bias)
    {
        const string op = "Deconvolution";
        Expect.HostFloat32(op, ("output", output), ("input", input), ("weight", weight), ("bias", bias));
        var (batch, inChannels, height, width, outChannels, kernel) = OpShapes.DeconvolutionSizes(op, input, weight);
        Expect.Shape(op, "bias", bias, outChannels);
        Expect.Shape(op, "output", output, batch, outChannels, height * kernel, width * kernel);
        NativeCheck.Check(NativeMethods.lrm_deconv_forward(F(output), F(input), F(weight), F(bias),
            batch, inChannels, height, width, outChannels, kernel), $"input {input.ShapeText}, weight {weight.ShapeText}");
    }

    /// <inheritdoc />
    public void DeconvolutionBackward(Tensor? gradInput, Tensor gradWeight, Tensor? gradBias, Tensor gradOutput, Tensor input, Tensor weight)
    {
        const string op = "DeconvolutionBackward";
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradWeight", gradWeight), ("gradBias", gradBias),
            ("gradOutput", gradOutput), ("input", input), ("weight", weight));
        var (batch, inChannels, height, width, outChannels, kernel) = OpShapes.DeconvolutionBackward(op, gradInput, gradWeight, gradBias, gradOutput, input, weight);
        NativeCheck.Check(NativeMethods.lrm_deconv_backward(F(gradInput), F(gradWeight), F(gradBias), F(gradOutput),
            F(input), F(weight), batch, inChannels, height, width, outChannels, kernel),
            $"input {input.ShapeText}, weight {weight.ShapeText}");
    }

    // ---- resampling ------------------------------------------------------------

    /// <inheritdoc />
    public void Resize(Tensor output, Tensor input, ResizeMode mode, float cubicA = -0.75f, bool antialias = false)
    {
        const string op = "Resize";
        var (planes, inHeight, inWidth, outHeight, outWidth) = CheckResize(op, output, input);
        NativeCheck.Check(NativeMethods.lrm_resize_forward(F(output), F(input), planes, inHeight, inWidth, outHeight, outWidth,
            (int)mode, cubicA, antialias ? 1 : 0), $"{mode} {input.ShapeText} -> {output.ShapeText}");
    }

    // Shared by Resize and ResizeScaled: (..., H, W) → (..., H', W') with the same leading dims.
    // Backward passes the gradients' names.
    private static (long Planes, long InHeight, long InWidth, long OutHeight, long OutWidth) CheckResize(string op, Tensor output, Tensor input,
        string outputName = "output", string inputName = "input")
    {
        Expect.HostFloat32(op, (outputName, output), (inputName, input));
        Expect.Rank(op, inputName, input, 2, "(..., height, width)");
        Expect.Rank(op, outputName, output, 2, "(..., height, width)");
        Span<long> expected = stackalloc long[input.Rank];
        input.Shape.CopyTo(expected);
        expected[^2] = -1;
        expected[^1] = -1;
        Expect.Shape(op, outputName, output, expected);
        long inHeight = input.Size(-2), inWidth = input.Size(-1);
        return (input.ElementCount / Math.Max(inHeight * inWidth, 1), inHeight, inWidth, output.Size(-2), output.Size(-1));
    }

    /// <inheritdoc />
    public void ResizeBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, float cubicA = -0.75f, bool antialias = false)
    {
        const string op = "ResizeBackward";
        var (planes, inHeight, inWidth, outHeight, outWidth) = CheckResize(op, gradOutput, gradInput, "gradOutput", "gradInput");
        NativeCheck.Check(NativeMethods.lrm_resize_backward(F(gradInput), F(gradOutput), planes, inHeight, inWidth, outHeight, outWidth,
            (int)mode, cubicA, antialias ? 1 : 0), $"{mode} {gradInput.ShapeText} <- {gradOutput.ShapeText}");
    }

    /// <inheritdoc />
    public void TriplaneSample(Tensor output, Tensor planes, Tensor points)
    {
        const string op = "TriplaneSample";
        Expect.HostFloat32(op, ("output", output), ("planes", planes), ("points", points));
        var (batch, count, channels, height, width) = OpShapes.TriplaneSizes(op, planes, points);
        Expect.Shape(op, "output", output, batch, count, 3 * channels);
        NativeCheck.Check(NativeMethods.lrm_triplane_sample_forward(F(output), F(planes), F(points), batch, count, channels, height, width),
            $"planes {planes.ShapeText}, points {points.ShapeText}");
    }

    /// <inheritdoc />
    public void TriplaneSampleSum(Tensor output, Tensor planes, Tensor points, Tensor? bias, Activation activation)
    {
        const string op = "TriplaneSampleSum";
        Expect.HostFloat32(op, ("output", output), ("planes", planes), ("points", points), ("bias", bias));
        var (batch, count, channels, height, width) = OpShapes.TriplaneSampleSum(op, output, planes, points, bias, activation);
        NativeCheck.Check(NativeMethods.lrm_triplane_sample_sum_forward(F(output), F(planes), F(points), bias is null ? null : F(bias),
            batch, count, channels, height, width, (int)activation), $"planes {planes.ShapeText}, points {points.ShapeText}");
    }

    /// <inheritdoc />
    public void TriplaneSampleBackward(Tensor gradPlanes, Tensor? gradPoints, Tensor gradOutput, Tensor planes, Tensor points)
    {
        const string op = "TriplaneSampleBackward";
        Expect.HostFloat32(op, ("gradPlanes", gradPlanes), ("gradPoints", gradPoints), ("gradOutput", gradOutput),
            ("planes", planes), ("points", points));
        var (batch, count, channels, height, width) = OpShapes.TriplaneSampleBackward(op, gradPlanes, gradPoints, gradOutput, planes, points);
        NativeCheck.Check(NativeMethods.lrm_triplane_sample_backward(F(gradPlanes), F(gradPoints), F(gradOutput), F(planes), F(points),
            batch, count, channels, height, width, Deterministic ? 1 : 0), $"planes {planes.ShapeText}, points {points.ShapeText}");
    }

    // ---- small MLP -------------------------------------------------------------

    /// <inheritdoc />
    public void Mlp(Tensor output, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation)
    {
        const string op = "Mlp";
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(biases);
        Expect.HostFloat32(op, ("output", output), ("input", input));
        if (weights.Count == 0 || biases.Count != weights.Count)
        {
            throw new LrmInvalidArgumentException($"{op}: needs at least one layer and one bias slot per weight (got {weights.Count} weights, {biases.Count} biases)");
        }
        var layers = weights.Count;
        var dims = stackalloc long[layers + 1];
        var weightPointers = stackalloc float*[layers];
        var biasPointers = stackalloc float*[layers];
        MlpLayers(op, input, weights, biases, dims, weightPointers, biasPointers);
        Span<long> outShape = stackalloc long[input.Rank];
        input.Shape.CopyTo(outShape);
        outShape[^1] = dims[layers];
        Expect.Shape(op, "output", output, outShape);
        var rows = input.ElementCount / Math.Max(dims[0], 1);
        NativeCheck.Check(NativeMethods.lrm_mlp_forward(F(output), F(input), weightPointers, biasPointers, dims, layers, rows,
            (int)hiddenActivation, (int)outputActivation), $"input {input.ShapeText}, {layers} layers");
    }

    // The checks on input (..., dims[0]), weights[l] (dims[l+1], dims[l]) and biases[l] (dims[l+1]) that Mlp
    // and MlpBackward share; fills dims[0..layers] and the layers' pointers.
    private static void MlpLayers(string op, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, long* dims,
        float** weightPointers, float** biasPointers)
    {
        Expect.Rank(op, "input", input, 1, "(..., features)");
        dims[0] = input.Size(-1);
        for (var l = 0; l < weights.Count; l++)
        {
            var name = $"weights[{l}]";
            Expect.HostFloat32(op, (name, weights[l]), ($"biases[{l}]", biases[l]));
            Expect.Shape(op, name, weights[l], -1, dims[l]);
            dims[l + 1] = weights[l].Size(0);
            Expect.Shape(op, $"biases[{l}]", biases[l], dims[l + 1]);
            weightPointers[l] = F(weights[l]);
            biasPointers[l] = F(biases[l]);
        }
    }

    /// <inheritdoc />
    public void MlpBackward(Tensor? gradInput, IReadOnlyList<Tensor> gradWeights, IReadOnlyList<Tensor?> gradBiases, Tensor gradOutput, Tensor input, IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?> biases, Activation hiddenActivation, Activation outputActivation)
    {
        const string op = "MlpBackward";
        OpShapes.MlpBackwardSlots(op, gradWeights, gradBiases, weights, biases);
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradOutput", gradOutput), ("input", input));
        var layers = weights.Count;
        var dims = stackalloc long[layers + 1];
        var weightPointers = stackalloc float*[layers];
        var biasPointers = stackalloc float*[layers];
        MlpLayers(op, input, weights, biases, dims, weightPointers, biasPointers);
        var gradWeightPointers = stackalloc float*[layers];
        var gradBiasPointers = stackalloc float*[layers];
        for (var l = 0; l < layers; l++)
        {
            Expect.HostFloat32(op, ($"gradWeights[{l}]", gradWeights[l]), ($"gradBiases[{l}]", gradBiases[l]));
            Expect.Shape(op, $"gradWeights[{l}]", gradWeights[l], weights[l].Shape);
            Expect.Shape(op, $"gradBiases[{l}]", gradBiases[l], dims[l + 1]);
            gradWeightPointers[l] = F(gradWeights[l]);
            gradBiasPointers[l] = F(gradBiases[l]);
        }
        var rows = OpShapes.MlpBackwardRows(op, gradInput, gradOutput, input, dims[layers]);
        NativeCheck.Check(NativeMethods.lrm_mlp_backward(F(gradInput), gradWeightPointers, gradBiasPointers, F(gradOutput), F(input),
            weightPointers, biasPointers, dims, layers, rows, (int)hiddenActivation, (int)outputActivation), $"input {input.ShapeText}, {layers} layers");
    }

    // ---- conversion ------------------------------------------------------------

    /// <inheritdoc />
    public void Convert(Tensor output, Tensor input)
    {
        const string op = "Convert";
        Expect.Host(op, "output", output);
        Expect.Host(op, "input", input);
        Expect.Shape(op, "output", output, input.Shape);
        Expect.NotEmpty(op, "input", input);
        var n = input.ElementCount;
        NativeCheck.Check((input.DataType, output.DataType) switch
        {
            (DataType.Float32, DataType.BFloat16) => NativeMethods.lrm_convert_f32_to_bf16((ushort*)output.Pointer, F(input), n),
            (DataType.BFloat16, DataType.Float32) => NativeMethods.lrm_convert_bf16_to_f32(F(output), (ushort*)input.Pointer, n),
            (var from, var to) when from == to => Copy(output, input),
            (var from, var to) => throw new LrmUnsupportedException($"{op}: no conversion from {from} to {to}"),
        }, $"{input.DataType} -> {output.DataType} {input.ShapeText}");
    }

    // ---- element-wise arithmetic and layout -------------------------------------

    /// <inheritdoc />
    public void Add(Tensor output, Tensor a, Tensor b)
    {
        const string op = "Add";
        Expect.HostFloat32(op, ("output", output), ("a", a), ("b", b));
        Expect.Shape(op, "b", b, a.Shape);
        Expect.Shape(op, "output", output, a.Shape);
        Expect.NotEmpty(op, "a", a);
        NativeCheck.Check(NativeMethods.lrm_add_forward(F(output), F(a), F(b), a.ElementCount), $"a {a.ShapeText}");
    }

    /// <inheritdoc />
    public void LayerScale(Tensor output, Tensor input, Tensor gamma, Tensor? residual)
    {
        const string op = "LayerScale";
        Expect.HostFloat32(op, ("output", output), ("input", input), ("gamma", gamma), ("residual", residual));
        var channels = OpShapes.LayerScale(op, output, input, gamma, residual);
        NativeCheck.Check(NativeMethods.lrm_layerscale_forward(F(output), F(input), F(gamma), F(residual),
            input.ElementCount / channels, channels), $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void LayerScaleBackward(Tensor? gradInput, Tensor? gradGamma, Tensor? gradResidual, Tensor gradOutput, Tensor input, Tensor gamma)
    {
        const string op = "LayerScaleBackward";
        Expect.HostFloat32(op, ("gradInput", gradInput), ("gradGamma", gradGamma), ("gradResidual", gradResidual),
            ("gradOutput", gradOutput), ("input", input), ("gamma", gamma));
        var (rows, channels) = OpShapes.LayerScaleBackward(op, gradInput, gradGamma, gradResidual, gradOutput, input, gamma);
        NativeCheck.Check(NativeMethods.lrm_layerscale_backward(F(gradInput), F(gradGamma), F(gradResidual), F(gradOutput),
            F(input), F(gamma), rows, channels), $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void Transpose(Tensor output, Tensor input)
    {
        const string op = "Transpose";
        Expect.HostFloat32(op, ("output", output), ("input", input));
        var (batch, rows, columns) = OpShapes.Transpose(op, output, input);
        NativeCheck.Check(NativeMethods.lrm_transpose_forward(F(output), F(input), batch, rows, columns),
            $"input {input.ShapeText}");
    }

    /// <inheritdoc />
    public void Copy(Tensor destination, long destinationOffset, Tensor source, long sourceOffset, long count)
    {
        const string op = "Copy";
        Expect.Host(op, "destination", destination);
        Expect.Host(op, "source", source);
        OpShapes.CopyRange(op, destination, destinationOffset, source, sourceOffset, count);
        var size = destination.DataType.ElementSize();
        var from = (byte*)source.Pointer + sourceOffset * size;
        var to = (byte*)destination.Pointer + destinationOffset * size;
        var bytes = count * size;
        if (from < to + bytes && to < from + bytes && count > 0)
        {
            throw new LrmInvalidArgumentException($"{op}: source and destination ranges overlap");
        }
        Buffer.MemoryCopy(from, to, bytes, bytes);
    }

    /// <inheritdoc />
    public void ResizeScaled(Tensor output, Tensor input, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias)
    {
        const string op = "ResizeScaled";
        var (planes, inHeight, inWidth, outHeight, outWidth) = CheckResize(op, output, input);
        OpShapes.ResizeScaleFactors(op, scaleFactorHeight, scaleFactorWidth, outHeight, outWidth);
        NativeCheck.Check(NativeMethods.lrm_resize_scaled_forward(F(output), F(input), planes, inHeight, inWidth, outHeight, outWidth,
            (int)mode, cubicA, antialias ? 1 : 0, scaleFactorHeight, scaleFactorWidth),
            $"{mode} {input.ShapeText} -> {output.ShapeText}, scale factors {scaleFactorHeight} x {scaleFactorWidth}");
    }

    /// <inheritdoc />
    public void ResizeScaledBackward(Tensor gradInput, Tensor gradOutput, ResizeMode mode, double scaleFactorHeight, double scaleFactorWidth, float cubicA, bool antialias)
    {
        const string op = "ResizeScaledBackward";
        var (planes, inHeight, inWidth, outHeight, outWidth) = CheckResize(op, gradOutput, gradInput, "gradOutput", "gradInput");
        OpShapes.ResizeScaleFactors(op, scaleFactorHeight, scaleFactorWidth, outHeight, outWidth);
        NativeCheck.Check(NativeMethods.lrm_resize_scaled_backward(F(gradInput), F(gradOutput), planes, inHeight, inWidth, outHeight, outWidth,
            (int)mode, cubicA, antialias ? 1 : 0, scaleFactorHeight, scaleFactorWidth),
            $"{mode} {gradInput.ShapeText} <- {gradOutput.ShapeText}, scale factors {scaleFactorHeight} x {scaleFactorWidth}");
    }

    // ---- triplane NeRF and volume rendering -----------------------------------

    /// <inheritdoc />
    public void NerfDecode(Tensor? sigma, Tensor? rgb, Tensor raw)
    {
        const string op = "NerfDecode";
        Expect.HostFloat32(op, ("sigma", sigma), ("rgb", rgb), ("raw", raw));
        var rows = OpShapes.NerfDecode(op, sigma, rgb, raw);
        NativeCheck.Check(NativeMethods.lrm_nerf_decode_forward(F(sigma), F(rgb), F(raw), rows), $"raw {raw.ShapeText}");
    }

    /// <inheritdoc />
    public void NerfDecodeBackward(Tensor gradRaw, Tensor? gradSigma, Tensor? gradRgb, Tensor raw)
    {
        const string op = "NerfDecodeBackward";
        Expect.HostFloat32(op, ("gradRaw", gradRaw), ("gradSigma", gradSigma), ("gradRgb", gradRgb), ("raw", raw));
        var rows = OpShapes.NerfDecodeBackward(op, gradRaw, gradSigma, gradRgb, raw);
        NativeCheck.Check(NativeMethods.lrm_nerf_decode_backward(F(gradRaw), F(gradSigma), F(gradRgb), F(raw), rows),
            $"raw {raw.ShapeText}");
    }

    /// <inheritdoc />
    public void RenderRays(Tensor origins, Tensor directions, Tensor depths, Tensor? depthRange, Tensor cameras, int height, int width)
    {
        const string op = "RenderRays";
        Expect.HostFloat32(op, ("origins", origins), ("directions", directions), ("depths", depths), ("depthRange", depthRange), ("cameras", cameras));
        var (batch, _, samples) = OpShapes.RenderRays(op, origins, directions, depths, depthRange, cameras, height, width);
        NativeCheck.Check(NativeMethods.lrm_render_rays_forward(F(origins), F(directions), F(depths), F(depthRange), F(cameras),
            batch, height, width, samples), $"cameras {cameras.ShapeText}, {height}x{width}, depths {depths.ShapeText}");
    }

    /// <inheritdoc />
    public void RenderPoints(Tensor points, Tensor origins, Tensor directions, Tensor depths)
    {
        const string op = "RenderPoints";
        Expect.HostFloat32(op, ("points", points), ("origins", origins), ("directions", directions), ("depths", depths));
        var (batch, rays, samples) = OpShapes.RenderPoints(op, points, origins, directions, depths);
        NativeCheck.Check(NativeMethods.lrm_render_points_forward(F(points), F(origins), F(directions), F(depths),
            batch, rays, samples), $"depths {depths.ShapeText}");
    }

    /// <inheritdoc />
    public void GridPoints(Tensor points, int resolution, long first)
    {
        const string op = "GridPoints";
        Expect.HostFloat32(op, ("points", points));
        var count = OpShapes.GridPoints(op, points, resolution, first);
        GridPointsCpu.Write(points.AsSpan<float>()[..checked((int)(3 * count))], resolution, first,
            NativeMethods.lrm_get_num_threads(), GridPointsCpu.HardwareVectorFloats);
    }

    /// <inheritdoc />
    public void RenderDecode(Tensor decoded, Tensor raw, Tensor points)
    {
        const string op = "RenderDecode";
        Expect.HostFloat32(op, ("decoded", decoded), ("raw", raw), ("points", points));
        var rows = OpShapes.RenderDecode(op, decoded, raw, points);
        NativeCheck.Check(NativeMethods.lrm_render_decode_forward(F(decoded), F(raw), F(points), rows),
            $"raw {raw.ShapeText}");
    }

    /// <inheritdoc />
    public void RenderDecodeBackward(Tensor gradRaw, Tensor gradDecoded, Tensor raw, Tensor points)
    {
        const string op = "RenderDecodeBackward";
        Expect.HostFloat32(op, ("gradRaw", gradRaw), ("gradDecoded", gradDecoded), ("raw", raw), ("points", points));
        var rows = OpShapes.RenderDecode(op, gradRaw, raw, points, "gradRaw");
        Expect.Shape(op, "gradDecoded", gradDecoded, raw.Shape);
        NativeCheck.Check(NativeMethods.lrm_render_decode_backward(F(gradRaw), F(gradDecoded), F(raw), F(points), rows),
            $"raw {raw.ShapeText}");
    }

    /// <inheritdoc />
    public void RenderImportance(Tensor fineDepths, Tensor coarseDepths, Tensor coarseWeights)
    {
        const string op = "RenderImportance";
        Expect.HostFloat32(op, ("fineDepths", fineDepths), ("coarseDepths", coarseDepths), ("coarseWeights", coarseWeights));
        var (batch, rays, coarse, fine) = OpShapes.RenderImportance(op, fineDepths, coarseDepths, coarseWeights);
        NativeCheck.Check(NativeMethods.lrm_render_importance_forward(F(fineDepths), F(coarseDepths), F(coarseWeights),
            batch, rays, coarse, fine), $"coarse {coarseDepths.ShapeText}, fine {fineDepths.ShapeText}");
    }

    /// <inheritdoc />
    public void RenderMarch(Tensor? rgb, Tensor? depth, Tensor? opacity, Tensor? weights, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        const string op = "RenderMarch";
        Expect.HostFloat32(op, ("rgb", rgb), ("depth", depth), ("opacity", opacity), ("weights", weights),
            ("depthsA", depthsA), ("decodedA", decodedA), ("depthsB", depthsB), ("decodedB", decodedB), ("depthRange", depthRange));
        var (batch, rays, samplesA, samplesB) = OpShapes.RenderMarch(op, rgb, depth, opacity, weights, depthsA, decodedA, depthsB, decodedB,
            background, depthRange);
        fixed (float* backgroundPointer = background)
        {
            NativeCheck.Check(NativeMethods.lrm_render_march_forward(F(rgb), F(depth), F(opacity), F(weights),
                F(depthsA), F(decodedA), samplesA, F(depthsB), F(decodedB), samplesB, backgroundPointer, F(depthRange), batch, rays),
                $"depthsA {depthsA.ShapeText}, depthsB {depthsB?.ShapeText ?? "none"}");
        }
    }

    /// <inheritdoc />
    public void RenderMarchBackward(Tensor gradDecodedA, Tensor? gradDecodedB, Tensor? gradRgb, Tensor? gradDepth, Tensor? gradOpacity, Tensor depthsA, Tensor decodedA, Tensor? depthsB, Tensor? decodedB, ReadOnlySpan<float> background, Tensor? depthRange)
    {
        const string op = "RenderMarchBackward";
        Expect.HostFloat32(op, ("gradDecodedA", gradDecodedA), ("gradDecodedB", gradDecodedB), ("gradRgb", gradRgb), ("gradDepth", gradDepth),
            ("gradOpacity", gradOpacity), ("depthsA", depthsA), ("decodedA", decodedA), ("depthsB", depthsB), ("decodedB", decodedB), ("depthRange", depthRange));
        var (batch, rays, samplesA, samplesB) = OpShapes.RenderMarchBackward(op, gradDecodedA, gradDecodedB, gradRgb, gradDepth, gradOpacity,
            depthsA, decodedA, depthsB, decodedB, background, depthRange);
        fixed (float* backgroundPointer = background)
        {
            NativeCheck.Check(NativeMethods.lrm_render_march_backward(F(gradDecodedA), F(gradDecodedB), F(gradRgb), F(gradDepth), F(gradOpacity),
                F(depthsA), F(decodedA), samplesA, F(depthsB), F(decodedB), samplesB, backgroundPointer, F(depthRange), batch, rays),
                $"depthsA {depthsA.ShapeText}, depthsB {depthsB?.ShapeText ?? "none"}");
        }
    }

    // ---- iso-surfaces ------------------------------------------------------------

    /// <inheritdoc />
    public (Tensor Vertices, Tensor Triangles) MarchingCubes(Tensor field, float level, ReadOnlySpan<float> bounds = default)
    {
        const string op = "MarchingCubes";
        if (field is null)
        {
            throw new LrmInvalidArgumentException($"{op}: tensor 'field' is null");
        }
        Expect.HostFloat32(op, ("field", field));
        var (depth, height, width) = OpShapes.MarchingCubes(op, field, level, bounds);
        nint mesh = 0;
        try
        {
            fixed (float* boundsPointer = bounds)
            {
                NativeCheck.Check(NativeMethods.lrm_marching_cubes_forward(&mesh, F(field), bounds.IsEmpty ? null : boundsPointer,
                    depth, height, width, level), $"field {field.ShapeText}, level {level}");
            }
            long vertexCount, triangleCount;
            NativeCheck.Check(NativeMethods.lrm_mesh_size(&vertexCount, &triangleCount, mesh));
            var vertices = Tensor.Empty([vertexCount, 3]);
            var triangles = Tensor.Empty([triangleCount, 3], DataType.Int32);
            try
            {
                NativeCheck.Check(NativeMethods.lrm_mesh_copy(F(vertices), (int*)triangles.Pointer, mesh, vertexCount, triangleCount));
            }
            catch
            {
                vertices.Dispose();
                triangles.Dispose();
                throw;
            }
            return (vertices, triangles);
        }
        finally
        {
            NativeMethods.lrm_mesh_free(mesh);
        }
    }

    // ---- optimizer (training) ------------------------------------------------------

    /// <inheritdoc />
    public void AdamWStep(Tensor parameter, Tensor expAvg, Tensor expAvgSq, Tensor gradient, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, float gradientScale, long stepNumber)
    {
        const string op = "AdamWStep";
        Expect.HostFloat32(op, ("parameter", parameter), ("expAvg", expAvg), ("expAvgSq", expAvgSq), ("gradient", gradient));
        Expect.NotEmpty(op, "parameter", parameter);
        Expect.Shape(op, "expAvg", expAvg, parameter.Shape);
        Expect.Shape(op, "expAvgSq", expAvgSq, parameter.Shape);
        Expect.Shape(op, "gradient", gradient, parameter.Shape);
        NativeCheck.Check(NativeMethods.lrm_adamw_step(F(parameter), F(expAvg), F(expAvgSq), F(gradient), learningRate, beta1, beta2,
            epsilon, weightDecay, gradientScale, stepNumber, parameter.ElementCount), $"parameter {parameter.ShapeText}, step {stepNumber}");
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor input, out long nonFinite)
    {
        const string op = "SumOfSquares";
        Expect.HostFloat32(op, ("input", input));
        Expect.NotEmpty(op, "input", input);
        double sum;
        long bad;
        NativeCheck.Check(NativeMethods.lrm_sum_squares(&sum, &bad, F(input), input.ElementCount), $"input {input.ShapeText}");
        nonFinite = bad;
        return sum;
    }

    /// <summary>Nothing to free: the CPU backend holds no resources of its own (tensors are disposed by their owners).</summary>
    public void Dispose()
    {
        // The CPU backend holds no resources of its own.
    }
}
