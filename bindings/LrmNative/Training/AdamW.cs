using System.Globalization;
using LrmNative.Backends;

namespace LrmNative.Training;

/// <summary>AdamW settings; defaults are the paper's (LRM appendix B).</summary>
internal sealed record AdamWOptions
{
    /// <summary>Peak learning rate (4e-4); the schedule scales it per step.</summary>
    public double LearningRate { get; init; } = 4e-4;

    /// <summary>First-moment decay β1 (0.9).</summary>
    public float Beta1 { get; init; } = 0.9f;

    /// <summary>Second-moment decay β2 (0.95, lower than Adam's 0.999 for stability of large transformers).</summary>
    public float Beta2 { get; init; } = 0.95f;

    /// <summary>Denominator epsilon (1e-8, PyTorch's default).</summary>
    public float Epsilon { get; init; } = 1e-8f;

    /// <summary>Decoupled weight decay (0.05) for the tensors <see cref="AdamW.UsesWeightDecay"/> selects.</summary>
    public float WeightDecay { get; init; } = 0.05f;

    /// <summary>Global gradient-norm clipping threshold (1.0); 0 or less disables clipping.</summary>
    public double MaxGradientNorm { get; init; } = 1.0;

    /// <summary>Checks every value; the message names the setting.</summary>
    public void Validate()
    {
        static void Require(bool condition, string message)
        {
            if (!condition)
            {
                throw new LrmInvalidArgumentException("AdamW: " + message);
            }
        }
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be positive and finite, got {LearningRate}");
        Require(Beta1 is >= 0 and < 1, $"beta1 must be in [0, 1), got {Beta1}");
        Require(Beta2 is >= 0 and < 1, $"beta2 must be in [0, 1), got {Beta2}");
        Require(Epsilon > 0 && float.IsFinite(Epsilon), $"epsilon must be positive, got {Epsilon}");
        Require(WeightDecay >= 0 && float.IsFinite(WeightDecay), $"weight decay must be >= 0, got {WeightDecay}");
        Require(!double.IsNaN(MaxGradientNorm), "max gradient norm must be a number");
    }
}

/// <summary>What one optimiser step did.</summary>
/// <param name="Step">The update number (1-based) just applied.</param>
/// <param name="GradientNorm">Global L2 norm of all gradients before clipping.</param>
/// <param name="ClipScale">Factor the gradients were multiplied by (1 when not clipped).</param>
/// <param name="LearningRate">The learning rate used.</param>
internal readonly record struct OptimizerStep(long Step, double GradientNorm, float ClipScale, double LearningRate);

/// <summary>
/// AdamW (Loshchilov &amp; Hutter; decoupled weight decay) over fp32 master weights, as torch.optim.AdamW with
/// amsgrad off, fused with global gradient-norm clipping (torch.nn.utils.clip_grad_norm_): one pass measures
/// Σg² per tensor (which also finds NaN/±inf and names the tensor), one fused pass per tensor scales the gradient
/// and updates the weights and both moments (<see cref="IBackend.AdamWStep"/>, kernels/optimizer.cuh). Owns the
/// moment tensors, created as zeros at the first step.
/// </summary>
internal sealed class AdamW : IDisposable
{
    /// <summary>Checkpoint key prefix of the first moments.</summary>
    public const string ExpAvgPrefix = "optimizer.exp_avg.";

    /// <summary>Checkpoint key prefix of the second moments.</summary>
    public const string ExpAvgSqPrefix = "optimizer.exp_avg_sq.";

    private readonly Dictionary<string, (Tensor ExpAvg, Tensor ExpAvgSq)> _state = new(StringComparer.Ordinal);

    /// <summary>An optimiser with <paramref name="options"/> (the paper's defaults when null).</summary>
    public AdamW(AdamWOptions? options = null)
    {
        Options = options ?? new AdamWOptions();
        Options.Validate();
    }

    /// <summary>The settings.</summary>
    public AdamWOptions Options { get; }

    /// <summary>Updates applied so far (AdamW's t after the last step; 0 before the first).</summary>
    public long StepCount { get; private set; }

    /// <summary>
    /// Whether a tensor gets weight decay. LRM (appendix B) decays every weight except biases and normalisation
    /// parameters; in this model those are exactly the rank-1 tensors (…bias, LayerNorm and ModLN affine
    /// …norm*.weight, and DINOv2's LayerScale …ls1/ls2.gamma, per-channel scales that DINOv2 itself trains without
    /// decay). Every matrix, convolution kernel, position table and token tensor (rank ≥ 2) decays, including the
    /// ModLN modulation Linear …norm1.mlp.1.weight.
    /// </summary>
    public static bool UsesWeightDecay(string name, ReadOnlySpan<long> shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        return shape.Length >= 2 && !name.EndsWith(".bias", StringComparison.Ordinal);
    }

    /// <summary>
    /// Clipping factor as clip_grad_norm_ computes it in fp32: min(1, maxNorm / (norm + 1e-6)); 1 when clipping is off.
    /// </summary>
    public static float ClipScale(double gradientNorm, double maxNorm)
    {
        if (maxNorm <= 0)
        {
            return 1f;
        }
        var coefficient = (float)maxNorm / ((float)gradientNorm + 1e-6f);
        return Math.Min(coefficient, 1f);
    }

    /// <summary>
    /// Global L2 norm of all gradients (the square root of Σ over tensors of Σg², in double). A NaN/±inf element
    /// raises <see cref="LrmNonFiniteException"/> naming <paramref name="step"/> and the first such tensor.
    /// </summary>
    public static double GlobalGradientNorm(IBackend backend, IReadOnlyList<TrainableParameter> parameters, long step)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(parameters);
        double total = 0;
        foreach (var parameter in parameters)
        {
            var sum = backend.SumOfSquares(parameter.Gradient, out var nonFinite);
            if (nonFinite > 0 || !double.IsFinite(sum))
            {
                throw new LrmNonFiniteException(string.Create(CultureInfo.InvariantCulture,
                    $"step {step}: the gradient of '{parameter.Name}' {parameter.Gradient.ShapeText} has {nonFinite} NaN/inf value(s); training stopped before the update (lower the learning rate, check the data, or resume from the last checkpoint)"),
                    step, parameter.Name);
            }
            total += sum;
        }
        return Math.Sqrt(total);
    }

    /// <summary>
    /// One update: measures the global gradient norm (stopping on NaN/±inf), clips to
    /// <see cref="AdamWOptions.MaxGradientNorm"/>, then applies AdamW with <paramref name="learningRate"/> to every
    /// parameter (weight decay per <see cref="TrainableParameter.WeightDecay"/>). Gradients are left unchanged.
    /// </summary>
    public OptimizerStep Step(IBackend backend, IReadOnlyList<TrainableParameter> parameters, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(learningRate >= 0) || !double.IsFinite(learningRate))
        {
            throw new LrmInvalidArgumentException($"AdamW: learning rate must be >= 0 and finite, got {learningRate}");
        }
        CheckParameters(parameters);
        var step = StepCount + 1;
        var norm = GlobalGradientNorm(backend, parameters, step);
        var scale = ClipScale(norm, Options.MaxGradientNorm);
        foreach (var parameter in parameters)
        {
            var (expAvg, expAvgSq) = StateOf(backend, parameter);
            backend.AdamWStep(parameter.Value, expAvg, expAvgSq, parameter.Gradient, (float)learningRate, Options.Beta1, Options.Beta2,
                Options.Epsilon, parameter.WeightDecay ? Options.WeightDecay : 0f, scale, step);
        }
        StepCount = step;
        return new OptimizerStep(step, norm, scale, learningRate);
    }

    /// <summary>The moments under their checkpoint keys (<see cref="ExpAvgPrefix"/>/<see cref="ExpAvgSqPrefix"/> + name); not copies.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors()
    {
        foreach (var (name, (expAvg, expAvgSq)) in _state.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            yield return new(ExpAvgPrefix + name, expAvg);
            yield return new(ExpAvgSqPrefix + name, expAvgSq);
        }
    }

    /// <summary>
    /// Restores the moments of <paramref name="parameters"/> and the step count from <paramref name="read"/>
    /// (a checkpoint's tensor by key, null when absent). With <paramref name="stepCount"/> 0 the state must be empty;
    /// otherwise every parameter must have both moments of its shape. Errors name <paramref name="source"/> and the tensor;
    /// on an error the optimiser keeps its previous state. With a device <paramref name="backend"/> the moments are uploaded to it.
    /// </summary>
    public void LoadState(Func<string, Tensor?> read, IReadOnlyList<TrainableParameter> parameters, long stepCount, string source, IBackend? backend = null)
    {
        if (backend is not null && backend.Device.Kind != DeviceKind.Cpu)
        {
            // The moments live where the parameters do: each host tensor read is uploaded and freed.
            var readHost = read;
            read = name =>
            {
                using var host = readHost(name);
                return host is null ? null : backend.ToBackend(host);
            };
        }
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(parameters);
        if (stepCount < 0)
        {
            throw new LrmFormatException($"{source}: optimiser step count {stepCount} is negative");
        }
        var loaded = new Dictionary<string, (Tensor ExpAvg, Tensor ExpAvgSq)>(StringComparer.Ordinal);
        try
        {
            if (stepCount > 0)
            {
                foreach (var parameter in parameters)
                {
                    var expAvg = read(ExpAvgPrefix + parameter.Name);
                    var expAvgSq = read(ExpAvgSqPrefix + parameter.Name);
                    if (expAvg is not null && expAvgSq is not null)
                    {
                        loaded[parameter.Name] = (expAvg, expAvgSq);
                    }
                    foreach (var (key, tensor) in new[] { (ExpAvgPrefix, expAvg), (ExpAvgSqPrefix, expAvgSq) })
                    {
                        if (tensor is null)
                        {
                            if (!loaded.ContainsKey(parameter.Name))
                            {
                                expAvg?.Dispose();
                                expAvgSq?.Dispose();
                            }
                            throw new LrmFormatException($"{source}: optimiser state '{key}{parameter.Name}' is missing (the checkpoint is at step {stepCount})");
                        }
                        if (!tensor.Shape.SequenceEqual(parameter.Value.Shape) || tensor.DataType != DataType.Float32)
                        {
                            throw new LrmFormatException($"{source}: optimiser state '{key}{parameter.Name}' is {tensor.DataType} {tensor.ShapeText}, expected Float32 {parameter.Value.ShapeText}");
                        }
                    }
                }
            }
        }
        catch
        {
            foreach (var (expAvg, expAvgSq) in loaded.Values)
            {
                expAvg.Dispose();
                expAvgSq.Dispose();
            }
            throw;
        }
        ClearState();
        foreach (var (name, state) in loaded)
        {
            _state[name] = state;
        }
        StepCount = stepCount;
    }

    /// <summary>Frees the moments.</summary>
    public void Dispose() => ClearState();

    private void ClearState()
    {
        foreach (var (expAvg, expAvgSq) in _state.Values)
        {
            expAvg.Dispose();
            expAvgSq.Dispose();
        }
        _state.Clear();
    }

    private (Tensor ExpAvg, Tensor ExpAvgSq) StateOf(IBackend backend, TrainableParameter parameter)
    {
        if (!_state.TryGetValue(parameter.Name, out var state))
        {
            if (StepCount > 0)
            {
                throw new LrmInvalidArgumentException($"AdamW: parameter '{parameter.Name}' joined after step {StepCount}; the parameter set must not change during training");
            }
            state = (backend.Zeros(parameter.Value.Shape), backend.Zeros(parameter.Value.Shape));
            _state[parameter.Name] = state;
        }
        return state;
    }

    private static void CheckParameters(IReadOnlyList<TrainableParameter> parameters)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var parameter in parameters)
        {
            if (!names.Add(parameter.Name))
            {
                throw new LrmInvalidArgumentException($"AdamW: parameter '{parameter.Name}' is listed twice");
            }
            if (!parameter.Gradient.Shape.SequenceEqual(parameter.Value.Shape))
            {
                throw new LrmShapeException($"AdamW: the gradient of '{parameter.Name}' is {parameter.Gradient.ShapeText}, the parameter {parameter.Value.ShapeText}");
            }
        }
    }
}
