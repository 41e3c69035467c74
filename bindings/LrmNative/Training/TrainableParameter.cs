namespace LrmNative.Training;

/// <summary>
/// A parameter being trained: its checkpoint name (OpenLRM's key, <see cref="Model.LrmWeightNames"/>), its fp32
/// master value and the gradient buffer of the same shape the backward accumulates into. Does not own the tensors.
/// </summary>
/// <param name="Name">Checkpoint key, e.g. "transformer.layers.0.self_attn.in_proj_weight".</param>
/// <param name="Value">The weights, updated in place by the optimiser.</param>
/// <param name="Gradient">∂loss/∂weights of the current step.</param>
internal sealed record TrainableParameter(string Name, Tensor Value, Tensor Gradient)
{
    /// <summary>Whether AdamW applies weight decay to this tensor (<see cref="AdamW.UsesWeightDecay"/>).</summary>
    public bool WeightDecay => AdamW.UsesWeightDecay(Name, Value.Shape);
}
