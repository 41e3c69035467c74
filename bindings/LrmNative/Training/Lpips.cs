using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using LrmNative.Backends;
using LrmNative.IO;

namespace LrmNative.Training;

/// <summary>
/// LPIPS v0.1 with AlexNet features (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
/// Perceptual Metric"; the lpips package's default <c>net='alex'</c>), forward and hand-derived backward on the CPU.
/// <para>
/// Forward, images (B, H, W, 3) in [0, 1]: x' = ((2x − 1) − shift)/scale with lpips' ScalingLayer shift
/// (−.030, −.088, −.188) and scale (.458, .448, .450); then torchvision's <c>alexnet().features</c>:
/// conv1 11×11 stride 4 pad 2 → ReLU [tap 1] → max pool 3/2 → conv2 5×5 pad 2 → ReLU [tap 2] → max pool 3/2 →
/// conv3 3×3 pad 1 → ReLU [tap 3] → conv4 3×3 pad 1 → ReLU [tap 4] → conv5 3×3 pad 1 → ReLU [tap 5].
/// At tap k, per position, the features f of the prediction and t of the target are unit-normalised over channels,
/// u = f/(‖f‖ + 1e-10), v = t/(‖t‖ + 1e-10), and d_k = mean over the h_k×w_k positions of Σ_c w_kc (u_c − v_c)² with
/// the non-negative 'lin' weights w_k. LPIPS = Σ_k d_k per image; the loss of a batch is the mean over its B images.
/// </para>
/// <para>
/// Backward (w.r.t. the prediction; the target is constant): with g_c = ∂L/∂u_c = 2 w_c (u_c − v_c)/(B·h·w) and
/// n = ‖f‖, ∂u_c/∂f_j = δ_cj/(n + ε) − f_c f_j/(n (n + ε)²), so ∂L/∂f = g/(n + ε) − f·(g·f)/(n (n + ε)²).
/// At n = 0 every channel of the position was cut by its ReLU, whose backward passes nothing there, so the
/// position contributes no gradient (PyTorch's autograd gives NaN there: sqrt′(0) = ∞). Then, tap by tap down to the
/// image: ReLU (the gradient passes where the output is &gt; 0), the next layer's gradient added, max pool (to the
/// first maximum of each window, PyTorch's choice), convolution (∂columns = ∂out·W, scattered back: col2im), and
/// finally ∂x = ∂x'·2/scale.
/// </para>
/// Convolutions are im2col + the backend's GEMM on channels-last activations (rows = positions): out (rows, C_out) =
/// columns (rows, k·k·C_in) · Wᵀ + bias, W reordered at load from PyTorch's (C_out, C_in, k, k) to (C_out, k, k, C_in).
/// Channel counts come from the weights file (AlexNet's are 64, 192, 384, 256, 256; smaller consistent networks load
/// too, as the tests' does). Deterministic for a given BLAS thread count.
/// </summary>
internal sealed class Lpips : IPerceptualLoss
{
    /// <summary>
    /// Smallest image side: conv1 (11×11, stride 4, pad 2) turns 31 into 7, the first max pool 7 into 3 and the
    /// second 3 into 1; a side of 30 leaves the second pool a 2×2 input, smaller than its 3×3 window.
    /// </summary>
    public const int MinimumSize = 31;

    /// <summary>The normalisation's ε (lpips' <c>normalize_tensor</c>).</summary>
    public const double NormEpsilon = 1e-10;

    /// <summary>lpips' ScalingLayer shift, as the float32 buffer it holds.</summary>
    public static ReadOnlySpan<float> Shift => [-0.030f, -0.088f, -0.188f];

    /// <summary>lpips' ScalingLayer scale, as the float32 buffer it holds.</summary>
    public static ReadOnlySpan<float> Scale => [0.458f, 0.448f, 0.450f];

    /// <summary>Number of taps (convolutions) of AlexNet's features.</summary>
    public const int TapCount = 5;

    // The five convolutions: index in torchvision's alexnet().features, kernel, stride, padding.
    private static readonly (int Index, int Kernel, int Stride, int Padding)[] Layers =
        [(0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1)];

    // The 3×3 stride-2 max pools follow taps 1 and 2 (indices 0 and 1).
    private const int PoolKernel = 3, PoolStride = 2, PooledTaps = 2;

    private readonly Convolution[] _convolutions;
    private readonly float[][] _linear;
    private readonly CpuBackend _backend = new();

    private Lpips(Convolution[] convolutions, float[][] linear)
    {
        _convolutions = convolutions;
        _linear = linear;
    }

    /// <inheritdoc />
    public string Name => "lpips-alex";

    /// <inheritdoc />
    public int MinimumImageSize => MinimumSize;

    /// <summary>Output channels of the five convolutions (AlexNet: 64, 192, 384, 256, 256).</summary>
    public IReadOnlyList<int> Channels => [.. _convolutions.Select(c => c.OutChannels)];

    /// <summary>torchvision's name of convolution <paramref name="layer"/>'s weight (0..4): features.{0,3,6,8,10}.weight.</summary>
    public static string WeightName(int layer) => $"features.{Layers[layer].Index}.weight";

    /// <summary>torchvision's name of convolution <paramref name="layer"/>'s bias.</summary>
    public static string BiasName(int layer) => $"features.{Layers[layer].Index}.bias";

    /// <summary>lpips' name of tap <paramref name="tap"/>'s linear weights (0..4), shape (1, C, 1, 1).</summary>
    public static string LinearName(int tap) => $"lin{tap}.model.1.weight";

    /// <summary>
    /// Reads the network from a safetensors file holding <see cref="WeightName"/>, <see cref="BiasName"/> and
    /// <see cref="LinearName"/> for the five layers (other tensors are ignored): conv k's weight (C_k, C_{k−1}, K_k, K_k)
    /// with C_{−1} = 3 and K = 11, 5, 3, 3, 3, its bias (C_k), lin k (1, C_k, 1, 1); floating point (F32; F16, BF16
    /// and F64 are converted); finite; lin weights ≥ 0 (lpips clamps them so in training; a negative one would reward
    /// differences, and means a wrong file). Every failure is an <see cref="LrmFormatException"/> naming the file and tensor.
    /// </summary>
    public static Lpips Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new LrmFormatException($"{path}: LPIPS weights file not found");
        }
        using var file = SafeTensorsFile.Open(path);
        var convolutions = new List<Convolution>();
        try
        {
            var linear = new float[TapCount][];
            var inChannels = 3;
            for (var k = 0; k < TapCount; k++)
            {
                var (_, kernel, stride, padding) = Layers[k];
                var weightName = WeightName(k);
                var outChannels = (int)Require(file, weightName, $"conv{k + 1} weight (C, {inChannels}, {kernel}, {kernel})").Shape[0];
                var weight = ReadChecked(file, weightName, [outChannels, inChannels, kernel, kernel]);
                var bias = ReadChecked(file, BiasName(k), [outChannels]);
                linear[k] = ReadChecked(file, LinearName(k), [1, outChannels, 1, 1]);
                var negative = Array.FindIndex(linear[k], w => w < 0);
                if (negative >= 0)
                {
                    var value = linear[k][negative].ToString(CultureInfo.InvariantCulture);
                    throw new LrmFormatException($"{path}: LPIPS tensor '{LinearName(k)}' has a negative weight ({value} at channel {negative}); "
                        + "LPIPS' linear heads are non-negative (lpips clamps them at 0 in training), so this is not an LPIPS weights file");
                }
                convolutions.Add(new Convolution(inChannels, outChannels, kernel, stride, padding, weight, bias));
                inChannels = outChannels;
            }
            return new Lpips([.. convolutions], linear);
        }
        catch
        {
            foreach (var convolution in convolutions)
            {
                convolution.Dispose();
            }
            throw;
        }
    }

    private static SafeTensorInfo Require(SafeTensorsFile file, string name, string what)
    {
        if (!file.Contains(name))
        {
            throw new LrmFormatException($"{file.Path}: LPIPS weights lack tensor '{name}', the {what}; the file needs torchvision AlexNet's "
                + "'features.{0,3,6,8,10}.{weight,bias}' and lpips' 'lin{0..4}.model.1.weight' (docs/training.md, \"LPIPS\", converts them)");
        }
        var info = file.Info(name);
        if (info.Shape.Length == 0 || info.Shape[0] < 1 || info.Shape[0] > int.MaxValue)
        {
            throw new LrmFormatException($"{file.Path}: LPIPS tensor '{name}' has shape {Tensor.FormatShape(info.Shape)}, expected the {what}");
        }
        return info;
    }

    // The tensor's values as fp32 after checking shape, dtype and finiteness.
    private static float[] ReadChecked(SafeTensorsFile file, string name, long[] shape)
    {
        var info = Require(file, name, $"tensor of shape {Tensor.FormatShape(shape)}");
        if (!info.Shape.AsSpan().SequenceEqual(shape))
        {
            throw new LrmFormatException($"{file.Path}: LPIPS tensor '{name}' has shape {Tensor.FormatShape(info.Shape)}, expected {Tensor.FormatShape(shape)} "
                + "(each layer's input channels are the previous layer's outputs, the first's are RGB)");
        }
        if (info.DType is not ("F32" or "F16" or "BF16" or "F64"))
        {
            throw new LrmFormatException($"{file.Path}: LPIPS tensor '{name}' has dtype {info.DType}, expected F32 (F16, BF16 and F64 are converted)");
        }
        using var tensor = file.ReadTensor(name);
        var values = tensor.ToFloatArray();
        var bad = Array.FindIndex(values, v => !float.IsFinite(v));
        if (bad >= 0)
        {
            throw new LrmFormatException($"{file.Path}: LPIPS tensor '{name}' holds a non-finite value ({values[bad].ToString(CultureInfo.InvariantCulture)} at element {bad})");
        }
        return values;
    }

    /// <summary>
    /// Mean LPIPS of the B image pairs (B, H, W, 3), host fp32, H, W ≥ <see cref="MinimumSize"/>; writes (or with
    /// <paramref name="accumulate"/> adds) weight·∂loss/∂prediction into <paramref name="gradient"/> when given.
    /// </summary>
    public double Evaluate(Tensor? gradient, Tensor prediction, Tensor target, float weight, bool accumulate) =>
        Evaluate(gradient, prediction, target, weight, accumulate, default);

    /// <summary>As <see cref="Evaluate(Tensor?, Tensor, Tensor, float, bool)"/>; <paramref name="perImage"/> (B) receives each image's LPIPS.</summary>
    public double Evaluate(Tensor? gradient, Tensor prediction, Tensor target, float weight, bool accumulate, Span<double> perImage)
    {
        const string op = "LPIPS";
        ObjectDisposedException.ThrowIf(_convolutions[0].IsDisposed, this);
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        Expect.HostFloat32(op, ("prediction", prediction), ("target", target), ("gradient", gradient));
        Expect.Shape(op, "prediction", prediction, -1, -1, -1, 3);
        Expect.Shape(op, "target", target, prediction.Shape);
        Expect.Shape(op, "gradient", gradient, prediction.Shape);
        int images = (int)prediction.Size(0), height = (int)prediction.Size(1), width = (int)prediction.Size(2);
        if (images < 1 || height < MinimumSize || width < MinimumSize)
        {
            throw new LrmShapeException($"{op}: images must be at least {MinimumSize}×{MinimumSize} (AlexNet's stride-4 conv1 and two 3×3/2 max pools), got {prediction.ShapeText}");
        }
        if (!perImage.IsEmpty && perImage.Length != images)
        {
            throw new LrmShapeException($"{op}: per-image values need {images} entries, got {perImage.Length}");
        }
        using var predicted = Forward(prediction);
        using var reference = Forward(target);
        var distances = new double[images];
        var tapGradients = new Tensor?[TapCount];
        try
        {
            for (var k = 0; k < TapCount; k++)
            {
                if (gradient is not null)
                {
                    tapGradients[k] = Tensor.Zeros(predicted.Taps[k].Shape);
                }
                Distance(distances, tapGradients[k], predicted.Taps[k], reference.Taps[k], _linear[k], images, weight);
            }
            if (gradient is not null)
            {
                Backward(gradient, accumulate, predicted, tapGradients!);
            }
        }
        finally
        {
            foreach (var tensor in tapGradients)
            {
                tensor?.Dispose();
            }
        }
        if (!perImage.IsEmpty)
        {
            distances.CopyTo(perImage);
        }
        return distances.Average();
    }

    // The five taps of one batch, channels-last rows (B·h·w, C), with their sizes and the pools' choices.
    private sealed class Features(int images) : IDisposable
    {
        public int Images { get; } = images;

        public Tensor[] Taps { get; } = new Tensor[TapCount];

        // Tap sizes; entry TapCount is the input image's.
        public (int Height, int Width)[] Sizes { get; } = new (int, int)[TapCount + 1];

        // For pool p, each output element's flat index into tap p (the first maximum of its window).
        public int[][] PoolChoices { get; } = new int[PooledTaps][];

        // The pools' outputs (the inputs of conv2 and conv3).
        public Tensor[] Pooled { get; } = new Tensor[PooledTaps];

        public void Dispose()
        {
            foreach (var tensor in Taps.Concat(Pooled))
            {
                tensor?.Dispose();
            }
        }
    }

    private Features Forward(Tensor images)
    {
        int count = (int)images.Size(0), height = (int)images.Size(1), width = (int)images.Size(2);
        var features = new Features(count);
        try
        {
            features.Sizes[TapCount] = (height, width);
            using var scaled = Tensor.Empty([(long)count * height * width, 3]);
            var x = images.AsSpan<float>();
            var s = scaled.AsSpan<float>();
            for (var i = 0; i < s.Length; i++)
            {
                var c = i % 3;
                s[i] = (2f * x[i] - 1f - Shift[c]) / Scale[c];
            }
            var input = scaled;
            (int Height, int Width) size = (height, width);
            for (var k = 0; k < TapCount; k++)
            {
                var convolution = _convolutions[k];
                var output = (Height: convolution.OutputSize(size.Height), Width: convolution.OutputSize(size.Width));
                features.Taps[k] = Tensor.Empty([(long)count * output.Height * output.Width, convolution.OutChannels]);
                convolution.Forward(_backend, features.Taps[k], input, count, size.Height, size.Width);
                features.Sizes[k] = output;
                input = features.Taps[k];
                size = output;
                if (k < PooledTaps)
                {
                    var pooled = (Height: PoolOutputSize(size.Height), Width: PoolOutputSize(size.Width));
                    features.Pooled[k] = Tensor.Empty([(long)count * pooled.Height * pooled.Width, convolution.OutChannels]);
                    features.PoolChoices[k] = new int[features.Pooled[k].ElementCount];
                    MaxPoolForward(features.Pooled[k], features.PoolChoices[k], input, count, size.Height, size.Width);
                    input = features.Pooled[k];
                    size = pooled;
                }
            }
            return features;
        }
        catch
        {
            features.Dispose();
            throw;
        }
    }

    private static int PoolOutputSize(int size) => size < PoolKernel
        ? throw new LrmShapeException($"LPIPS: a {PoolKernel}×{PoolKernel} max pool needs inputs of at least {PoolKernel}, got {size} (images smaller than {MinimumSize})")
        : (size - PoolKernel) / PoolStride + 1;

    // Adds each image's d_k (mean over positions of Σ_c w_c (u_c − v_c)²) to distances and, when gradient is given,
    // weight·∂(mean over images)/∂f into it (see the class remarks).
    internal static void Distance(double[] distances, Tensor? gradient, Tensor predicted, Tensor reference, float[] linear, int images, float weight)
    {
        var channels = linear.Length;
        var rows = (int)predicted.Size(0);
        var positions = rows / images;
        var f = predicted.AsSpan<float>();
        var t = reference.AsSpan<float>();
        var g = gradient is null ? Span<float>.Empty : gradient.AsSpan<float>();
        var scale = 2.0 * weight / ((double)images * positions);
        var upstream = new double[channels]; // g = ∂L/∂u of one position
        // Whole vectors of channels in double lanes (floats widened), the rest one by one; sums in double as before.
        var lanes = Vector.IsHardwareAccelerated ? Vector<float>.Count : channels + 1;
        var vectorChannels = channels / lanes * lanes;
        var half = lanes / 2;
        for (var row = 0; row < rows; row++)
        {
            var fr = f.Slice(row * channels, channels);
            var tr = t.Slice(row * channels, channels);
            Vector<double> squaresFv = Vector<double>.Zero, squaresTv = Vector<double>.Zero;
            for (var c = 0; c < vectorChannels; c += lanes)
            {
                Vector.Widen(new Vector<float>(fr[c..]), out var f0, out var f1);
                Vector.Widen(new Vector<float>(tr[c..]), out var t0, out var t1);
                squaresFv += f0 * f0 + f1 * f1;
                squaresTv += t0 * t0 + t1 * t1;
            }
            double squaresF = Vector.Sum(squaresFv), squaresT = Vector.Sum(squaresTv);
            for (var c = vectorChannels; c < channels; c++)
            {
                squaresF += (double)fr[c] * fr[c];
                squaresT += (double)tr[c] * tr[c];
            }
            double normF = Math.Sqrt(squaresF), normT = Math.Sqrt(squaresT);
            double inverseF = 1 / (normF + NormEpsilon), inverseT = 1 / (normT + NormEpsilon);
            Vector<double> sumV = Vector<double>.Zero, dotV = Vector<double>.Zero;
            Vector<double> inverseFv = new(inverseF), inverseTv = new(inverseT), scaleV = new(scale);
            for (var c = 0; c < vectorChannels; c += lanes)
            {
                Vector.Widen(new Vector<float>(fr[c..]), out var f0, out var f1);
                Vector.Widen(new Vector<float>(tr[c..]), out var t0, out var t1);
                Vector.Widen(new Vector<float>(linear.AsSpan(c)), out var w0, out var w1);
                var d0 = f0 * inverseFv - t0 * inverseTv;
                var d1 = f1 * inverseFv - t1 * inverseTv;
                sumV += w0 * d0 * d0 + w1 * d1 * d1;
                var u0 = scaleV * w0 * d0;
                var u1 = scaleV * w1 * d1;
                u0.CopyTo(upstream, c);
                u1.CopyTo(upstream, c + half);
                dotV += u0 * f0 + u1 * f1;
            }
            double sum = Vector.Sum(sumV), dot = Vector.Sum(dotV);
            for (var c = vectorChannels; c < channels; c++)
            {
                var difference = fr[c] * inverseF - tr[c] * inverseT;
                sum += linear[c] * difference * difference;
                upstream[c] = scale * linear[c] * difference;
                dot += upstream[c] * fr[c];
            }
            distances[row / positions] += sum / positions;
            if (gradient is null || normF == 0)
            {
                continue;
            }
            var gr = g.Slice(row * channels, channels);
            var along = dot * inverseF * inverseF / normF;
            var alongV = new Vector<double>(along);
            for (var c = 0; c < vectorChannels; c += lanes)
            {
                Vector.Widen(new Vector<float>(fr[c..]), out var f0, out var f1);
                var step0 = new Vector<double>(upstream, c) * inverseFv - f0 * alongV;
                var step1 = new Vector<double>(upstream, c + half) * inverseFv - f1 * alongV;
                (new Vector<float>(gr[c..]) + Vector.Narrow(step0, step1)).CopyTo(gr[c..]);
            }
            for (var c = vectorChannels; c < channels; c++)
            {
                gr[c] += (float)(upstream[c] * inverseF - fr[c] * along);
            }
        }
    }

    // From the taps' distance gradients down to the image (see the class remarks); tapGradients are consumed.
    private void Backward(Tensor gradient, bool accumulate, Features features, Tensor[] tapGradients)
    {
        var images = features.Images;
        for (var k = TapCount - 1; k >= 0; k--)
        {
            ReluBackward(tapGradients[k], features.Taps[k]);
            var (height, width) = k == 0 ? features.Sizes[TapCount] : features.Sizes[k - 1];
            var convolution = _convolutions[k];
            if (k == 0)
            {
                using var scaled = Tensor.Zeros([(long)images * height * width, 3]);
                convolution.Backward(_backend, scaled, tapGradients[k], images, height, width);
                var d = scaled.AsSpan<float>();
                var g = gradient.AsSpan<float>();
                for (var i = 0; i < d.Length; i++)
                {
                    var value = d[i] * 2f / Scale[i % 3];
                    g[i] = accumulate ? g[i] + value : value;
                }
            }
            else if (k - 1 < PooledTaps)
            {
                var pooled = features.Pooled[k - 1];
                using var pooledGradient = Tensor.Zeros(pooled.Shape);
                convolution.Backward(_backend, pooledGradient, tapGradients[k], images, PoolOutputSize(height), PoolOutputSize(width));
                MaxPoolBackward(tapGradients[k - 1], pooledGradient, features.PoolChoices[k - 1]);
            }
            else
            {
                convolution.Backward(_backend, tapGradients[k - 1], tapGradients[k], images, height, width);
            }
        }
    }

    // The gradient passes where the output is > 0 (a select, not a branch: half the positions are cut, unpredictably).
    internal static void ReluBackward(Tensor gradient, Tensor output)
    {
        var g = gradient.AsSpan<float>();
        var y = output.AsSpan<float>();
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var gv = MemoryMarshal.Cast<float, Vector<float>>(g);
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (var v = 0; v < gv.Length; v++)
            {
                gv[v] = Vector.ConditionalSelect(Vector.GreaterThan(yv[v], Vector<float>.Zero), gv[v], Vector<float>.Zero);
            }
            i = gv.Length * Vector<float>.Count;
        }
        for (; i < g.Length; i++)
        {
            if (!(y[i] > 0))
            {
                g[i] = 0;
            }
        }
    }

    // output (B·ho·wo, C) = 3×3/2 max pool of input (B·h·w, C); choices = flat input index of each output's first maximum.
    internal static void MaxPoolForward(Tensor output, int[] choices, Tensor input, int images, int height, int width)
    {
        var channels = (int)input.Size(1);
        int outH = PoolOutputSize(height), outW = PoolOutputSize(width);
        var x = input.AsSpan<float>();
        var y = output.AsSpan<float>();
        // Whole vectors of channels at once (the same strict "greater than" keeps the first maximum), the rest one by one.
        var lanes = Vector.IsHardwareAccelerated ? Vector<float>.Count : channels + 1;
        var vectorChannels = channels / lanes * lanes;
        var laneIndices = Vector<int>.Indices;
        for (var n = 0; n < images; n++)
        {
            for (var oy = 0; oy < outH; oy++)
            {
                for (var ox = 0; ox < outW; ox++)
                {
                    var outBase = ((n * outH + oy) * outW + ox) * channels;
                    var windowBase = ((n * height + oy * PoolStride) * width + ox * PoolStride) * channels;
                    for (var c = 0; c < vectorChannels; c += lanes)
                    {
                        var best = new Vector<float>(x.Slice(windowBase + c));
                        var choice = new Vector<int>(windowBase + c) + laneIndices;
                        for (var ky = 0; ky < PoolKernel; ky++)
                        {
                            for (var kx = ky == 0 ? 1 : 0; kx < PoolKernel; kx++)
                            {
                                var at = windowBase + (ky * width + kx) * channels + c;
                                var value = new Vector<float>(x.Slice(at));
                                var greater = Vector.GreaterThan(value, best);
                                best = Vector.ConditionalSelect(greater, value, best);
                                choice = Vector.ConditionalSelect(greater, new Vector<int>(at) + laneIndices, choice);
                            }
                        }
                        best.CopyTo(y.Slice(outBase + c));
                        choice.CopyTo(choices.AsSpan(outBase + c));
                    }
                    for (var ky = 0; ky < PoolKernel; ky++)
                    {
                        for (var kx = 0; kx < PoolKernel; kx++)
                        {
                            var inBase = windowBase + (ky * width + kx) * channels;
                            var first = ky == 0 && kx == 0;
                            for (var c = vectorChannels; c < channels; c++)
                            {
                                var value = x[inBase + c];
                                if (first || value > y[outBase + c])
                                {
                                    y[outBase + c] = value;
                                    choices[outBase + c] = inBase + c;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // gradInput[choice] += gradOutput (windows overlap, so several outputs may pick one input).
    private static void MaxPoolBackward(Tensor gradInput, Tensor gradOutput, int[] choices)
    {
        var gi = gradInput.AsSpan<float>();
        var go = gradOutput.AsSpan<float>();
        for (var i = 0; i < go.Length; i++)
        {
            gi[choices[i]] += go[i];
        }
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose()
    {
        foreach (var convolution in _convolutions)
        {
            convolution.Dispose();
        }
    }

    // One convolution + ReLU over channels-last activations (rows = B·h·w positions, C channels per row).
    private sealed class Convolution : IDisposable
    {
        private readonly Tensor _weight; // (C_out, k·k·C_in), columns in (ky, kx, c) order
        private readonly Tensor _bias;   // (C_out)

        public Convolution(int inChannels, int outChannels, int kernel, int stride, int padding, float[] torchWeight, float[] bias)
        {
            (InChannels, OutChannels, Kernel, Stride, Padding) = (inChannels, outChannels, kernel, stride, padding);
            var reordered = new float[torchWeight.Length];
            for (var o = 0; o < outChannels; o++)
            {
                for (var c = 0; c < inChannels; c++)
                {
                    for (var tap = 0; tap < kernel * kernel; tap++)
                    {
                        reordered[(o * kernel * kernel + tap) * inChannels + c] = torchWeight[(o * inChannels + c) * kernel * kernel + tap];
                    }
                }
            }
            _weight = Tensor.FromArray(reordered, outChannels, (long)kernel * kernel * inChannels);
            _bias = Tensor.FromArray(bias, outChannels);
        }

        public int InChannels { get; }

        public int OutChannels { get; }

        public int Kernel { get; }

        public int Stride { get; }

        public int Padding { get; }

        public bool IsDisposed => _weight.IsDisposed;

        private int ColumnCount => Kernel * Kernel * InChannels;

        public int OutputSize(int size) => size + 2 * Padding < Kernel
            ? throw new LrmShapeException($"LPIPS: a {Kernel}×{Kernel} convolution with padding {Padding} needs inputs of at least {Kernel - 2 * Padding}, got {size}")
            : (size + 2 * Padding - Kernel) / Stride + 1;

        // output (B·ho·wo, C_out) = ReLU(conv(input (B·h·w, C_in))).
        public void Forward(CpuBackend backend, Tensor output, Tensor input, int images, int height, int width)
        {
            using var columns = Tensor.Empty([output.Size(0), ColumnCount]);
            Columns(columns.AsSpan<float>(), input.AsSpan<float>(), images, height, width, scatter: false);
            backend.Gemm(output, columns, _weight, _bias, transposeB: true);
            var y = output.AsSpan<float>();
            var i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
                for (var v = 0; v < yv.Length; v++)
                {
                    yv[v] = Vector.Max(yv[v], Vector<float>.Zero);
                }
                i = yv.Length * Vector<float>.Count;
            }
            for (; i < y.Length; i++)
            {
                y[i] = Math.Max(y[i], 0f);
            }
        }

        // gradInput (B·h·w, C_in) += conv backward of gradOutput (B·ho·wo, C_out), which has been through the ReLU already.
        public void Backward(CpuBackend backend, Tensor gradInput, Tensor gradOutput, int images, int height, int width)
        {
            using var columns = Tensor.Empty([gradOutput.Size(0), ColumnCount]);
            backend.Gemm(columns, gradOutput, _weight);
            Columns(columns.AsSpan<float>(), gradInput.AsSpan<float>(), images, height, width, scatter: true);
        }

        // im2col (scatter false: columns ← the input's windows, zeros outside) or its adjoint col2im (scatter true:
        // the image += each window's column entries). A window row's in-bounds taps are contiguous in channels-last memory.
        private void Columns(Span<float> columns, Span<float> image, int images, int height, int width, bool scatter)
        {
            int outH = OutputSize(height), outW = OutputSize(width), count = ColumnCount, rowLength = Kernel * InChannels;
            for (var n = 0; n < images; n++)
            {
                for (var oy = 0; oy < outH; oy++)
                {
                    for (var ox = 0; ox < outW; ox++)
                    {
                        var column = columns.Slice(((n * outH + oy) * outW + ox) * count, count);
                        var x0 = ox * Stride - Padding;
                        int first = Math.Max(0, -x0), last = Math.Min(Kernel, width - x0);
                        for (var ky = 0; ky < Kernel; ky++)
                        {
                            var y = oy * Stride - Padding + ky;
                            var segment = column.Slice(ky * rowLength, rowLength);
                            if (y < 0 || y >= height || first >= last)
                            {
                                if (!scatter)
                                {
                                    segment.Clear();
                                }
                                continue;
                            }
                            var inside = segment.Slice(first * InChannels, (last - first) * InChannels);
                            var source = image.Slice(((n * height + y) * width + x0 + first) * InChannels, inside.Length);
                            if (scatter)
                            {
                                Add(source, inside);
                                continue;
                            }
                            segment[..(first * InChannels)].Clear();
                            segment[(last * InChannels)..].Clear();
                            source.CopyTo(inside);
                        }
                    }
                }
            }
        }

        // target += values, elementwise.
        private static void Add(Span<float> target, ReadOnlySpan<float> values)
        {
            var i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                for (; i <= target.Length - Vector<float>.Count; i += Vector<float>.Count)
                {
                    (new Vector<float>(target[i..]) + new Vector<float>(values[i..])).CopyTo(target[i..]);
                }
            }
            for (; i < target.Length; i++)
            {
                target[i] += values[i];
            }
        }

        public void Dispose()
        {
            _weight.Dispose();
            _bias.Dispose();
        }
    }
}
