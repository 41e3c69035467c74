using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// The triplane NeRF (LRM §3.3; OpenLRM's OSGDecoder): a point p ∈ [−1, 1]³ reads plane 0 at (x, y),
/// plane 1 at (x, z), plane 2 at (z, y) (bilinear, zero padding, align_corners=False), the three features
/// are concatenated (3·C_tri) and decoded by Linear(3C, 64) → ReLU → 64 → ReLU → 64 → ReLU → Linear(64, 4)
/// (OpenLRM's 4 layers; the paper's MLP has 10 layers: nerf_layers / nerf_hidden_dim in the config).
/// Channel 0 is the raw density (σ = softplus(raw − 1)), channels 1–3 the colour (sigmoid·1.002 − 0.001).
/// Planes are converted once to channels-last (B, 3, H, W, C) so each bilinear tap reads one contiguous vector.
/// <para>
/// Inference queries take the first layer "linear first": with W = [W₀ | W₁ | W₂] split by plane, W·[s₀ | s₁ | s₂] =
/// Σ_p W_p·s_p, and since bilinear sampling (zero padding included) is linear, W_p·sample(plane_p) = sample(W_p·plane_p).
/// <see cref="Project"/> multiplies each plane by its block once (H·W texels instead of every point), and a point then
/// samples and sums the three projected planes (<see cref="IBackend.TriplaneSampleSum"/>, bias and ReLU fused) and
/// runs the remaining layers: the 3·C features are never formed and the widest layer's product disappears (OpenLRM
/// large: 240 → 64 channels, ~2.7× fewer operations per point). Exact up to float rounding; training
/// (<see cref="QueryRawTraining"/>) keeps the concatenated features, whose gradients it needs.
/// </para>
/// </summary>
internal sealed class TriplaneNerf
{
    /// <summary>Points per query chunk (default 65536): bounds the features buffer (chunk · 3·C_tri floats).</summary>
    public int ChunkPoints { get; init; } = 1 << 16;

    private readonly Tensor[] _weights;
    private readonly Tensor?[] _biases;
    private readonly string[] _weightNames, _biasNames;

    /// <summary>Binds synthesizer.decoder.net.{0,2,…,2(layers−1)}.{weight,bias} (OpenLRM: {0,2,4,6}).</summary>
    public TriplaneNerf(WeightSet weights, int layers = ModelConfig.NerfLayers)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var indices = LrmWeightNames.NerfLinearIndicesFor(layers);
        _weights = [.. indices.Select(i => weights[$"{LrmWeightNames.Nerf}{i}.weight"])];
        _biases = [.. indices.Select(i => (Tensor?)weights[$"{LrmWeightNames.Nerf}{i}.bias"])];
        _weightNames = [.. indices.Select(i => $"{LrmWeightNames.Nerf}{i}.weight")];
        _biasNames = [.. indices.Select(i => $"{LrmWeightNames.Nerf}{i}.bias")];
    }

    /// <summary>Triplane channels the MLP expects.</summary>
    public long Channels => _weights[0].Size(1) / 3;

    /// <summary>Width of the MLP's first layer: the channels of <see cref="Project"/>'s planes.</summary>
    public long FirstLayerWidth => _weights[0].Size(0);

    /// <summary>
    /// Channels-last planes (B, 3, H, W, C) multiplied by the first layer's weight block of each plane, P_p = plane_p·W_pᵀ
    /// (B, 3, H, W, <see cref="FirstLayerWidth"/>), for the linear-first queries; the caller owns the result.
    /// </summary>
    public ProjectedTriplane Project(IBackend backend, Tensor planes)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(planes);
        CheckPlanes(planes);
        long batch = planes.Size(0), height = planes.Size(2), width = planes.Size(3), channels = Channels, hidden = FirstLayerWidth;
        var texels = height * width;
        using var scratch = new ScratchTensors(backend);
        // Wᵀ (3C, hidden): rows [p·C, (p+1)·C) are plane p's block W_pᵀ, transposed back to W_p (hidden, C).
        var transposed = scratch.Empty(3 * channels, hidden);
        backend.Transpose(transposed, _weights[0]);
        var blockTransposed = scratch.Empty(channels, hidden);
        var block = scratch.Empty(hidden, channels);
        var plane = scratch.Empty(texels, channels);
        var product = scratch.Empty(texels, hidden);
        var projected = backend.Empty([batch, 3, height, width, hidden]);
        try
        {
            for (var p = 0; p < 3; p++)
            {
                backend.Copy(blockTransposed, 0, transposed, p * channels * hidden, channels * hidden);
                backend.Transpose(block, blockTransposed);
                for (long b = 0; b < batch; b++)
                {
                    backend.Copy(plane, 0, planes, (b * 3 + p) * texels * channels, texels * channels);
                    // A one-layer Mlp, not a Gemm: the NeRF's own fp32 path on every backend (CUDA's Gemm takes bf16
                    // operands by default), so the projection is as exact as the concatenated first layer was.
                    backend.Mlp(product, plane, [block], [null], Activation.None, Activation.None);
                    backend.Copy(projected, (b * 3 + p) * texels * hidden, product, 0, texels * hidden);
                }
            }
            return new ProjectedTriplane(projected);
        }
        catch
        {
            projected.Dispose();
            throw;
        }
    }

    /// <summary>Planes (B, 3, C, H, W), as the upsampler makes them → channels-last (B, 3, H, W, C); the caller owns the result.</summary>
    public static Tensor ToChannelsLast(IBackend backend, Tensor planes)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(planes);
        if (planes.Rank != 5 || planes.Size(1) != 3)
        {
            throw new LrmShapeException($"triplane: planes must be (batch, 3, channels, height, width), got {planes.ShapeText}");
        }
        long batch = planes.Size(0), channels = planes.Size(2), height = planes.Size(3), width = planes.Size(4);
        using var scratch = new ScratchTensors(backend);
        var transposed = scratch.Empty(3 * batch, height * width, channels);
        backend.Transpose(transposed, scratch.Reshaped(backend, planes, 3 * batch, channels, height * width));
        var output = backend.Empty([batch, 3, height, width, channels]);
        backend.Copy(output, 0, transposed, 0, transposed.ElementCount);
        return output;
    }

    /// <summary>
    /// Raw MLP output (B, N, 4) at points (B, N, 3) of channels-last planes (B, 3, H, W, C), computed in
    /// chunks of <see cref="ChunkPoints"/> points; the caller owns the result.
    /// </summary>
    public Tensor QueryRaw(IBackend backend, Tensor planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        using var projected = Project(backend, planes);
        return QueryRaw(backend, projected, points);
    }

    /// <summary><see cref="QueryRaw(IBackend, Tensor, Tensor)"/> of planes already <see cref="Project"/>ed (for many queries of one triplane).</summary>
    public Tensor QueryRaw(IBackend backend, ProjectedTriplane planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(planes);
        ArgumentNullException.ThrowIfNull(points);
        var raw = backend.Empty([points.Size(0), points.Size(1), 4]);
        try
        {
            QueryRawInto(backend, raw, planes, points);
            return raw;
        }
        catch
        {
            raw.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Density σ (B, N, 1) = softplus(raw₀ − 1) and colour (B, N, 3) at points (B, N, 3) of channels-last
    /// planes; the caller owns both.
    /// </summary>
    public (Tensor Sigma, Tensor Rgb) Query(IBackend backend, Tensor planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        using var projected = Project(backend, planes);
        return Query(backend, projected, points);
    }

    /// <summary><see cref="Query(IBackend, Tensor, Tensor)"/> of planes already <see cref="Project"/>ed.</summary>
    public (Tensor Sigma, Tensor Rgb) Query(IBackend backend, ProjectedTriplane planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        using var raw = QueryRaw(backend, planes, points);
        var sigma = backend.Empty([points.Size(0), points.Size(1), 1]);
        var rgb = backend.Empty([points.Size(0), points.Size(1), 3]);
        try
        {
            backend.NerfDecode(sigma, rgb, raw);
            return (sigma, rgb);
        }
        catch
        {
            sigma.Dispose();
            rgb.Dispose();
            throw;
        }
    }

    /// <summary>Writes the raw MLP output (B, N, 4) for points (B, N, 3) of channels-last planes into <paramref name="raw"/>.</summary>
    public void QueryRawInto(IBackend backend, Tensor raw, Tensor planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        using var projected = Project(backend, planes);
        QueryRawInto(backend, raw, projected, points);
    }

    /// <summary>
    /// Writes the raw MLP output (B, N, 4) for points (B, N, 3) of <see cref="Project"/>ed planes into <paramref name="raw"/>,
    /// in chunks of <see cref="ChunkPoints"/> points.
    /// </summary>
    public void QueryRawInto(IBackend backend, Tensor raw, ProjectedTriplane planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(raw);
        ArgumentNullException.ThrowIfNull(planes);
        ArgumentNullException.ThrowIfNull(points);
        var projected = planes.Planes;
        if (projected.Rank != 5 || projected.Size(1) != 3 || projected.Size(4) != FirstLayerWidth)
        {
            throw new LrmShapeException($"triplane: projected planes must be (batch, 3, height, width, {FirstLayerWidth}) for this MLP, got {projected.ShapeText}");
        }
        if (points.Rank != 3 || points.Size(2) != 3 || points.Size(0) != projected.Size(0))
        {
            throw new LrmShapeException($"triplane: points must be ({projected.Size(0)}, N, 3) for planes {projected.ShapeText}, got {points.ShapeText}");
        }
        long batch = points.Size(0), count = points.Size(1);
        using var scratch = new ScratchTensors(backend);
        if (batch * count <= ChunkPoints)
        {
            DecodeProjected(backend, scratch, raw, projected, points);
            return;
        }
        // One image at a time, in chunks of points, so the first layer's buffer stays bounded.
        var planeSize = projected.ElementCount / batch;
        var imagePlanes = batch == 1 ? projected : scratch.Empty([1, .. projected.Shape[1..]]);
        for (long b = 0; b < batch; b++)
        {
            if (batch > 1)
            {
                backend.Copy(imagePlanes, 0, projected, b * planeSize, planeSize);
            }
            for (long start = 0; start < count; start += ChunkPoints)
            {
                var n = Math.Min(ChunkPoints, count - start);
                using var chunk = new ScratchTensors(backend);
                var chunkPoints = chunk.Empty(1, n, 3);
                backend.Copy(chunkPoints, 0, points, (b * count + start) * 3, n * 3);
                var chunkRaw = chunk.Empty(1, n, 4);
                DecodeProjected(backend, chunk, chunkRaw, imagePlanes, chunkPoints);
                backend.Copy(raw, (b * count + start) * 4, chunkRaw, 0, n * 4);
            }
        }
    }

    // raw (B, N, 4) at points (B, N, 3) of projected planes: the first layer by sampling (bias and ReLU fused), then the rest.
    private void DecodeProjected(IBackend backend, ScratchTensors scratch, Tensor raw, Tensor projected, Tensor points)
    {
        if (_weights.Length == 1)
        {
            backend.TriplaneSampleSum(raw, projected, points, _biases[0], Activation.None);
            return;
        }
        var first = scratch.Empty(points.Size(0), points.Size(1), FirstLayerWidth);
        backend.TriplaneSampleSum(first, projected, points, _biases[0], Activation.Relu);
        backend.Mlp(raw, first, _weights[1..], _biases[1..], Activation.Relu, Activation.None);
    }

    /// <summary>The inverse of <see cref="ToChannelsLast"/> (hence also its backward): channels-last (B, 3, H, W, C) → (B, 3, C, H, W).</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="output">(B, 3, C, H, W), overwritten.</param>
    /// <param name="channelsLast">(B, 3, H, W, C).</param>
    public static void FromChannelsLast(IBackend backend, Tensor output, Tensor channelsLast)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(channelsLast);
        long batch = channelsLast.Size(0), height = channelsLast.Size(2), width = channelsLast.Size(3), channels = channelsLast.Size(4);
        using var scratch = new ScratchTensors(backend);
        var transposed = scratch.Empty(3 * batch, channels, height * width);
        backend.Transpose(transposed, scratch.Reshaped(backend, channelsLast, 3 * batch, height * width, channels));
        backend.Copy(output, 0, transposed, 0, transposed.ElementCount);
    }

    /// <summary>
    /// Training query of one chunk: features (B, N, 3C) and raw MLP output (B, N, 4) at points (B, N, 3), both kept
    /// for <see cref="BackwardRaw"/> (unchunked: the caller bounds N).
    /// </summary>
    public void QueryRawTraining(IBackend backend, Tensor features, Tensor raw, Tensor planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        CheckPlanes(planes);
        backend.TriplaneSample(features, planes, points);
        backend.Mlp(raw, features, _weights, _biases, Activation.Relu, Activation.None);
    }

    /// <summary>
    /// Backward of <see cref="QueryRawTraining"/> from ∂L/∂raw (B, N, 4): the MLP's weight and bias gradients accumulate
    /// into <paramref name="gradients"/>, ∂L/∂planes (channels-last) is added to <paramref name="gradPlanes"/>. The points
    /// get no gradient (they depend on the cameras only).
    /// </summary>
    public void BackwardRaw(IBackend backend, GradientSet gradients, Tensor gradPlanes, Tensor gradRaw, Tensor features, Tensor planes, Tensor points)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradPlanes);
        ArgumentNullException.ThrowIfNull(features);
        using var scratch = new ScratchTensors(backend);
        var gradFeatures = scratch.Empty(features.Shape);
        backend.MlpBackward(gradFeatures, [.. _weightNames.Select(n => gradients[n])], [.. _biasNames.Select(n => (Tensor?)gradients[n])],
            gradRaw, features, _weights, _biases, Activation.Relu, Activation.None);
        var gradPlanesPart = scratch.Empty(planes.Shape);
        backend.TriplaneSampleBackward(gradPlanesPart, null, gradFeatures, planes, points);
        backend.Add(gradPlanes, gradPlanes, gradPlanesPart);
    }

    private void CheckPlanes(Tensor planes)
    {
        if (planes.Rank != 5 || planes.Size(1) != 3 || planes.Size(4) != Channels)
        {
            throw new LrmShapeException($"triplane: planes must be channels-last (batch, 3, height, width, {Channels}), got {planes.ShapeText}");
        }
    }
}

/// <summary>
/// A triplane prepared for linear-first queries by <see cref="TriplaneNerf.Project"/>: each plane multiplied by the NeRF
/// MLP's first-layer weight block of its plane, (B, 3, H, W, first layer width) channels-last. Owns its tensor.
/// </summary>
internal sealed class ProjectedTriplane(Tensor planes) : IDisposable
{
    /// <summary>The projected planes (B, 3, H, W, first layer width).</summary>
    public Tensor Planes { get; } = planes;

    public void Dispose() => Planes.Dispose();
}
