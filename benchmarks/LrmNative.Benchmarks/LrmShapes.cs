using LrmNative.Model;

namespace LrmNative.Benchmarks;

/// <summary>
/// The benchmarked shapes, derived from the model configs (configs/*.json: OpenLRM small, base, large and the paper's
/// lrm-base-paper) through <see cref="ModelConfig"/>, never typed in by hand: token counts, widths and heads are the
/// config's. A shape several configs share is measured once and names them all.
/// </summary>
public static class LrmShapes
{
    /// <summary>The configs benchmarked, smallest first (files under configs/ next to the benchmark).</summary>
    public static IReadOnlyList<string> ConfigNames { get; } = ["openlrm-small", "openlrm-base", "openlrm-large", "lrm-base-paper"];

    /// <summary>Points per triplane query: the engine's query chunk (<c>TriplaneNerf.ChunkPoints</c>).</summary>
    public const int QueryChunkPoints = 1 << 16;

    /// <summary>Side of the rendered image whose rays are composited: 128², OpenLRM's training render size.</summary>
    public const int RenderSide = 128;

    /// <summary>Side of the photo canvas resized to the encoder's input.</summary>
    public const int PhotoCanvasSide = 1024;

    /// <summary>Patches per loss evaluation in the loss families: a training batch of 4 rendered views.</summary>
    public const int LossBatch = 4;

    /// <summary>Sides of the rendered patches the training losses see: 64² and OpenLRM's 128² render size.</summary>
    public static IReadOnlyList<int> LossPatchSides { get; } = [64, RenderSide];

    /// <summary>Marching-cubes grids: 256³ and the paper's 384³ (config-independent).</summary>
    public static IReadOnlyList<int> MeshResolutions { get; } = [256, 384];

    private static readonly Lazy<IReadOnlyList<KernelShape>> Catalogue = new(() => Build(ConfigNames.Select(name => (name, LoadConfig(name)))));

    /// <summary>All shapes of all configs, deduplicated, in catalogue order (family by family, configs smallest first).</summary>
    public static IReadOnlyList<KernelShape> All => Catalogue.Value;

    /// <summary>The shapes of one config, in family order.</summary>
    internal static IEnumerable<KernelShape> For(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        int tokens = config.TriplaneTokens, width = config.TransformerDim, heads = config.TransformerHeads, headDim = config.TransformerHeadDim;
        var patches = config.PatchGridSize * config.PatchGridSize;
        // The encoder attends over [CLS], registers and patches; the decoder's cross-attention sees [CLS] and patches.
        var encoderTokens = 1 + config.EncoderRegisters + patches;
        int encoderWidth = config.EncoderFeatDim, encoderHeads = config.EncoderHeads;
        yield return new GemmShape("decoder MLP fc1", tokens, 4 * width, width);
        yield return new GemmShape("encoder MLP fc1", encoderTokens, 4 * encoderWidth, encoderWidth);
        yield return new LayerNormShape("decoder final norm", tokens, width);
        yield return new ModLNShape("decoder", tokens, width);
        yield return new AttentionShape("decoder", true, tokens, tokens, heads, headDim);
        yield return new AttentionShape("decoder", false, tokens, config.EncoderTokens, heads, headDim);
        yield return new AttentionShape("encoder", true, encoderTokens, encoderTokens, encoderHeads, config.EncoderHeadDim);
        yield return new TriplaneShape(QueryChunkPoints, config.TriplaneHighRes, config.TriplaneDim);
        yield return new NerfMlpShape(QueryChunkPoints, 3 * config.TriplaneDim, config.NerfHiddenWidth, config.NerfLayerCount);
        var half = config.RenderingSamplesPerRay / 2;
        yield return new RenderMarchShape(RenderSide * RenderSide, half, half);
        foreach (var resolution in MeshResolutions)
        {
            yield return new MarchingCubesShape(resolution);
        }
        yield return new ResizeShape(3, PhotoCanvasSide, config.EncoderImageSize);
        yield return new PatchEmbedShape(config.EncoderImageSize, config.EncoderPatchSize, encoderWidth);
        yield return new DeconvolutionShape(3, width, config.TriplaneDim, config.TriplaneLowRes, ModelConfig.UpsampleFactor);
        // Training's backward passes, on the same shapes (after the forward families, so their order and seeds stay put).
        yield return new GemmBackwardShape("decoder MLP fc1", tokens, 4 * width, width);
        yield return new LayerNormBackwardShape("decoder final norm", tokens, width);
        yield return new ModLNBackwardShape("decoder", tokens, width);
        yield return new AttentionBackwardShape("decoder", true, tokens, tokens, heads, headDim);
        yield return new AttentionBackwardShape("decoder", false, tokens, config.EncoderTokens, heads, headDim);
        yield return new TriplaneBackwardShape(QueryChunkPoints, config.TriplaneHighRes, config.TriplaneDim);
        yield return new NerfMlpBackwardShape(QueryChunkPoints, 3 * config.TriplaneDim, config.NerfHiddenWidth, config.NerfLayerCount);
        yield return new RenderMarchBackwardShape(RenderSide * RenderSide, half, half);
        // The remaining backward passes of a training step (after the families above, so their order and seeds stay put).
        yield return new PatchEmbedBackwardShape(config.EncoderImageSize, config.EncoderPatchSize, encoderWidth);
        yield return new DeconvolutionBackwardShape(3, width, config.TriplaneDim, config.TriplaneLowRes, ModelConfig.UpsampleFactor);
        yield return new ResizeBackwardShape(encoderWidth, config.EncoderPositionGrid, config.PatchGridSize,
            config.EncoderPositionInterpolation != ModelConfig.InterpolationBilinear);
        yield return new ActivationBackwardShape("decoder MLP", tokens, 4 * width);
        if (config.EncoderLayerScale)
        {
            yield return new LayerScaleBackwardShape("encoder", encoderTokens, encoderWidth);
        }
        yield return new RenderDecodeBackwardShape(RenderSide * RenderSide, config.RenderingSamplesPerRay);
        yield return new AdamWShape("decoder MLP fc1 weight", 4 * width, width);
        // The dense mesh grid's points (after the families above, so their order and seeds stay put).
        foreach (var resolution in MeshResolutions)
        {
            yield return new GridPointsShape(resolution);
        }
        yield return new NerfQueryShape(config.TriplaneHighRes, config.TriplaneDim, config.NerfHiddenWidth, config.NerfLayerCount);
        yield return new TriplaneSumShape(QueryChunkPoints, config.TriplaneHighRes, config.NerfHiddenWidth);
        // The training losses on rendered patches (config-independent, after the families above so their order and seeds stay put).
        foreach (var side in LossPatchSides)
        {
            yield return new SsimLossShape(LossBatch, side);
        }
        foreach (var side in LossPatchSides)
        {
            yield return LpipsLossShape.AlexNet(LossBatch, side);
        }
    }

    /// <summary>Merges the shapes of several configs: one entry per key, listing every config that uses it.</summary>
    internal static IReadOnlyList<KernelShape> Build(IEnumerable<(string Name, ModelConfig Config)> configs)
    {
        var families = new List<string>();
        var byKey = new Dictionary<string, (KernelShape Shape, List<string> Configs, int Index)>(StringComparer.Ordinal);
        var index = 0;
        foreach (var (name, config) in configs)
        {
            foreach (var shape in For(config))
            {
                if (!families.Contains(shape.Family))
                {
                    families.Add(shape.Family);
                }
                if (byKey.TryGetValue(shape.Key, out var existing))
                {
                    existing.Configs.Add(name);
                }
                else
                {
                    byKey[shape.Key] = (shape, [name], index++);
                }
            }
        }
        return [.. byKey.Values
            .OrderBy(entry => families.IndexOf(entry.Shape.Family))
            .ThenBy(entry => entry.Index)
            .Select((entry, order) => entry.Shape with { Configs = string.Join(",", entry.Configs), Order = order })];
    }

    /// <summary>Reads configs/NAME.json next to the benchmark assembly.</summary>
    internal static ModelConfig LoadConfig(string name) =>
        ModelConfig.Load(Path.Combine(AppContext.BaseDirectory, "configs", name + ".json"));
}
