using LrmNative.Backends;

namespace LrmNative.Model;

/// <summary>
/// The camera embedder (LRM §3.2): raw camera features (B, K) → Linear(K, E) → SiLU → Linear(E, E) → (B, E),
/// K = 16 (OpenLRM: 3×4 camera-to-world + fx, fy, cx, cy) or 20 (the paper: 4×4 + fx, fy, cx, cy), from the weights.
/// The embedding modulates every decoder norm (ModLN).
/// </summary>
internal sealed class CameraEmbedder
{
    private readonly Tensor[] _weights;
    private readonly Tensor?[] _biases;

    /// <summary>Binds camera_embedder.mlp.{0,2}.{weight,bias}.</summary>
    public CameraEmbedder(WeightSet weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        const string prefix = LrmWeightNames.CameraEmbedder;
        _weights = [weights[prefix + "mlp.0.weight"], weights[prefix + "mlp.2.weight"]];
        _biases = [weights[prefix + "mlp.0.bias"], weights[prefix + "mlp.2.bias"]];
    }

    /// <summary>Embedding width E.</summary>
    public long Width => _weights[1].Size(0);

    /// <summary>Raw camera feature width K the first layer expects.</summary>
    public long InputWidth => _weights[0].Size(1);

    /// <summary>Embeds cameras (B, K) into (B, E); the caller owns the result.</summary>
    public Tensor Forward(IBackend backend, Tensor camera)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(camera);
        if (camera.Rank != 2 || camera.Size(1) != InputWidth)
        {
            var layout = InputWidth == ModelConfig.CameraRawDimFull ? "4×4" : "3×4";
            throw new LrmShapeException($"camera embedder: camera must be (batch, {InputWidth}) = {layout} camera-to-world + fx, fy, cx, cy; got {camera.ShapeText}");
        }
        var embedding = backend.Empty([camera.Size(0), Width]);
        try
        {
            backend.Mlp(embedding, camera, _weights, _biases, Activation.Silu, Activation.None);
            return embedding;
        }
        catch
        {
            embedding.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Backward from ∂L/∂embedding (B, E): the two Linear layers' gradients accumulate into <paramref name="gradients"/>
    /// (the camera is data; the MLP backward recomputes the SiLU input, nothing is kept but the camera).
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, Tensor gradEmbedding, Tensor camera)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        const string prefix = LrmWeightNames.CameraEmbedder;
        backend.MlpBackward(null, [gradients[prefix + "mlp.0.weight"], gradients[prefix + "mlp.2.weight"]],
            [gradients[prefix + "mlp.0.bias"], gradients[prefix + "mlp.2.bias"]], gradEmbedding, camera, _weights, _biases, Activation.Silu, Activation.None);
    }
}
