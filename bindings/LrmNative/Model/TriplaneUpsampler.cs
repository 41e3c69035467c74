using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// The upsampler (LRM §3.2): tokens (B, 3·l·l, D) → (3B, D, l, l) → ConvTranspose2d(D, C_tri, 2, stride 2)
/// + bias → planes (B, 3, C_tri, 2l, 2l), as OpenLRM's reshape_upsample.
/// </summary>
internal sealed class TriplaneUpsampler
{
    private readonly Tensor _weight, _bias;
    private readonly int _lowRes;

    /// <summary>Binds upsampler.weight (D, C_tri, 2, 2) and upsampler.bias.</summary>
    public TriplaneUpsampler(ModelConfig config, WeightSet weights)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        _weight = weights[LrmWeightNames.Upsampler + "weight"];
        _bias = weights[LrmWeightNames.Upsampler + "bias"];
        _lowRes = config.TriplaneLowRes;
    }

    /// <summary>Planes (B, 3, C_tri, 2l, 2l) from tokens (B, 3·l·l, D); the caller owns the result.</summary>
    public Tensor Forward(IBackend backend, Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tokens);
        long low = _lowRes, width = _weight.Size(0), channels = _weight.Size(1), kernel = _weight.Size(2);
        if (tokens.Rank != 3 || tokens.Size(1) != 3 * low * low || tokens.Size(2) != width)
        {
            throw new LrmShapeException($"upsampler: tokens must be (batch, {3 * low * low}, {width}), got {tokens.ShapeText}");
        }
        var batch = tokens.Size(0);
        using var scratch = new ScratchTensors(backend);
        // 'nihwd -> indhw' per plane: (3B, l·l, D) → (3B, D, l·l).
        var channelsFirst = scratch.Empty(3 * batch, width, low * low);
        backend.Transpose(channelsFirst, scratch.Reshaped(backend, tokens, 3 * batch, low * low, width));
        var high = low * kernel;
        var planes = scratch.Empty(3 * batch, channels, high, high);
        backend.Deconvolution(planes, scratch.Reshaped(backend, channelsFirst, 3 * batch, width, low, low), _weight, _bias);
        var output = backend.Empty([batch, 3, channels, high, high]);
        backend.Copy(output, 0, planes, 0, planes.ElementCount);
        return output;
    }

    /// <summary>
    /// Backward from ∂L/∂planes (B, 3, C_tri, 2l, 2l) to ∂L/∂tokens (B, 3l², D) (overwritten); the de-convolution's
    /// weight and bias gradients accumulate. Keeps nothing from the forward but the tokens.
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradTokens, Tensor gradPlanes, Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(gradTokens);
        ArgumentNullException.ThrowIfNull(gradPlanes);
        ArgumentNullException.ThrowIfNull(tokens);
        long low = _lowRes, width = _weight.Size(0), channels = _weight.Size(1), kernel = _weight.Size(2);
        long batch = tokens.Size(0), high = low * kernel;
        using var scratch = new ScratchTensors(backend);
        var channelsFirst = scratch.Empty(3 * batch, width, low * low);
        backend.Transpose(channelsFirst, scratch.Reshaped(backend, tokens, 3 * batch, low * low, width));
        var input = scratch.Reshaped(backend, channelsFirst, 3 * batch, width, low, low);
        var gradInput = scratch.Empty(3 * batch, width, low, low);
        backend.DeconvolutionBackward(gradInput, gradients[LrmWeightNames.Upsampler + "weight"], gradients[LrmWeightNames.Upsampler + "bias"],
            scratch.Reshaped(backend, gradPlanes, 3 * batch, channels, high, high), input, _weight);
        var tokenMajor = scratch.Empty(3 * batch, low * low, width);
        backend.Transpose(tokenMajor, scratch.Reshaped(backend, gradInput, 3 * batch, width, low * low));
        backend.Copy(gradTokens, 0, tokenMajor, 0, tokenMajor.ElementCount);
    }
}
