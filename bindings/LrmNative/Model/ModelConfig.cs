using System.Globalization;
using System.Text.Json;
using LrmNative.Imaging;
using LrmNative.IO;

namespace LrmNative.Model;

/// <summary>
/// The architecture of an LRM, read from OpenLRM v1.1's flat <c>config.json</c> (camera_embed_dim,
/// rendering_samples_per_ray, transformer_dim/layers/heads, triplane_low_res/high_res/dim, encoder_type,
/// encoder_model_name, encoder_feat_dim, encoder_freeze) plus LrmNative's optional extension keys
/// (encoder_depth, encoder_heads, encoder_image_size, encoder_patch_size, encoder_registers,
/// encoder_layer_scale, encoder_pos_grid, encoder_pos_interpolation, encoder_image_mean/std,
/// camera_input_dim, nerf_layers, nerf_hidden_dim), which OpenLRM ignores. The encoder's depth and heads
/// default from encoder_model_name, the input image size from transformer_dim (512 → 224, 768 → 336,
/// 1024 → 448, as OpenLRM's small/base/large checkpoints were trained; 512 for DINO v1, the paper's size).
/// Two encoder types share one module: "dinov2" (OpenLRM v1.1: patch 14, 4 registers, LayerScale, 37×37
/// position table resized with antialiased bicubic) and "dino" (DINO v1 ViT, the paper and OpenLRM v1.0:
/// patch 16, no registers, no LayerScale, 14×14 position table resized bilinearly); each extension key
/// defaults by type.
/// </summary>
internal sealed record ModelConfig
{
    /// <summary>DINOv2 patch size (the default of encoder_patch_size for "dinov2"; see <see cref="EncoderPatchSize"/>).</summary>
    public const int PatchSize = 14;

    /// <summary>DINO v1 patch size (the default of encoder_patch_size for "dino").</summary>
    public const int DinoPatchSize = 16;

    /// <summary>Side of DINOv2's trained position table (518 / 14): 37×37 patch positions plus [CLS].</summary>
    public const int PositionGridSize = 37;

    /// <summary>Side of DINO v1's trained position table (224 / 16): 14×14 patch positions plus [CLS].</summary>
    public const int DinoPositionGridSize = 14;

    /// <summary>encoder_pos_interpolation: antialiased bicubic (a = −0.5), scale_factor g/grid (DINOv2 *_reg).</summary>
    public const string InterpolationBicubicAntialias = "bicubic-antialias";

    /// <summary>encoder_pos_interpolation: plain bicubic (a = −0.75), scale_factor (g + 0.1)/grid (DINOv2 without registers, DINO v1's own code).</summary>
    public const string InterpolationBicubic = "bicubic";

    /// <summary>encoder_pos_interpolation: bilinear, align_corners=False, no antialias, by explicit output size (the paper).</summary>
    public const string InterpolationBilinear = "bilinear";

    /// <summary>LayerNorm epsilon of every norm in the model (DINOv2 and the decoder).</summary>
    public const float LayerNormEpsilon = 1e-6f;

    /// <summary>OpenLRM's raw camera feature width: the 3×4 camera-to-world matrix plus fx, fy, cx, cy (default of camera_input_dim).</summary>
    public const int CameraRawDim = 16;

    /// <summary>The paper's raw camera feature width: the 4×4 camera-to-world matrix plus fx, fy, cx, cy.</summary>
    public const int CameraRawDimFull = 20;

    /// <summary>Hidden width of the triplane NeRF MLP (OpenLRM's OSGDecoder; default of nerf_hidden_dim).</summary>
    public const int NerfHiddenDim = 64;

    /// <summary>Linear layers of OpenLRM's triplane NeRF MLP (default of nerf_layers; the paper has 10).</summary>
    public const int NerfLayers = 4;

    /// <summary>De-convolution kernel and stride of the upsampler.</summary>
    public const int UpsampleFactor = 2;

    // Upper bounds of the size keys: far above every published LRM (the paper's largest: 16 decoder layers of 1024,
    // triplane 32 → 64 × 80, 512-pixel input, 128 samples per ray, a 10-layer NeRF MLP), low enough that the weight
    // table, the token counts and every tensor size stay well inside their integer types.
    private const int MaxLayers = 1024;
    private const int MaxWidth = 65536;
    private const int MaxTriplaneLowRes = 4096;
    private const int MaxImageSize = 16384;
    private const int MaxPositionGrid = 4096;
    private const int MaxRegisters = 1024;
    private const int MaxSamplesPerRay = 4096;
    private const int MaxNerfLayers = 64;

    /// <summary>
    /// Most parameters a config may describe: 2³² (16 GiB of fp32 weights), eight times the paper's largest LRM; the
    /// weights are made, loaded and saved as fp32 on the host.
    /// </summary>
    public const long MaxParameterCount = 1L << 32;

    /// <summary>Width of the camera embedding and of the ModLN modulation input.</summary>
    public required int CameraEmbedDim { get; init; }

    /// <summary>Samples per rendered ray: half coarse, half importance.</summary>
    public required int RenderingSamplesPerRay { get; init; }

    /// <summary>Decoder width D.</summary>
    public required int TransformerDim { get; init; }

    /// <summary>Decoder blocks.</summary>
    public required int TransformerLayers { get; init; }

    /// <summary>Decoder attention heads.</summary>
    public required int TransformerHeads { get; init; }

    /// <summary>Side of the decoder's token planes (3 planes of low×low tokens).</summary>
    public required int TriplaneLowRes { get; init; }

    /// <summary>Side of the triplane after the upsampler.</summary>
    public required int TriplaneHighRes { get; init; }

    /// <summary>Triplane channels.</summary>
    public required int TriplaneDim { get; init; }

    /// <summary>"dinov2" (OpenLRM v1.1) or "dino" (DINO v1 ViT: the paper, OpenLRM v1.0).</summary>
    public required string EncoderType { get; init; }

    /// <summary>Hub name, e.g. dinov2_vits14_reg or dino_vitb16.</summary>
    public required string EncoderModelName { get; init; }

    /// <summary>Encoder width (the image features' width, the cross-attention key/value width).</summary>
    public required int EncoderFeatDim { get; init; }

    /// <summary>Whether OpenLRM froze the encoder in training (recorded, no effect on inference).</summary>
    public required bool EncoderFreeze { get; init; }

    /// <summary>Encoder blocks.</summary>
    public required int EncoderDepth { get; init; }

    /// <summary>Encoder attention heads.</summary>
    public required int EncoderHeads { get; init; }

    /// <summary>Side of the square input image the model expects.</summary>
    public required int EncoderImageSize { get; init; }

    /// <summary>Encoder patch size (encoder_patch_size; 14 for dinov2, 16 for dino).</summary>
    public int EncoderPatchSize { get; init; } = PatchSize;

    /// <summary>Register tokens of the encoder (encoder_registers; 4 for the DINOv2 *_reg models, 0 for dino).</summary>
    public int EncoderRegisters { get; init; } = 4;

    /// <summary>Whether the encoder blocks have LayerScale gammas ls1/ls2 (encoder_layer_scale; DINOv2 yes, DINO v1 no).</summary>
    public bool EncoderLayerScale { get; init; } = true;

    /// <summary>Side of the trained position table (encoder_pos_grid; 37 for dinov2, 14 for dino).</summary>
    public int EncoderPositionGrid { get; init; } = PositionGridSize;

    /// <summary>
    /// How the position table is resized to the patch grid (encoder_pos_interpolation): "bicubic-antialias"
    /// (DINOv2 *_reg), "bicubic" (DINOv2 without registers) or "bilinear" (dino, the paper).
    /// </summary>
    public string EncoderPositionInterpolation { get; init; } = InterpolationBicubicAntialias;

    /// <summary>Per-channel RGB mean subtracted from the [0, 1] image before the encoder (encoder_image_mean; none by default).</summary>
    public float[]? EncoderImageMean { get; init; }

    /// <summary>Per-channel RGB std dividing the image after the mean (encoder_image_std; none by default).</summary>
    public float[]? EncoderImageStd { get; init; }

    /// <summary>Raw camera feature width (camera_input_dim): 16 (OpenLRM: 3×4 + 4) or 20 (the paper: 4×4 + 4).</summary>
    public int CameraInputDim { get; init; } = CameraRawDim;

    /// <summary>Linear layers of the triplane NeRF MLP (nerf_layers; 4 for OpenLRM, 10 for the paper).</summary>
    public int NerfLayerCount { get; init; } = NerfLayers;

    /// <summary>Hidden width of the triplane NeRF MLP (nerf_hidden_dim; 64).</summary>
    public int NerfHiddenWidth { get; init; } = NerfHiddenDim;

    /// <summary>Whether the position table is resized with antialiasing (bicubic-antialias only).</summary>
    public bool EncoderInterpolateAntialias => EncoderPositionInterpolation == InterpolationBicubicAntialias;

    /// <summary>Offset added to the patch grid in the scale_factor of the bicubic resizes (0.1 for plain bicubic, else 0).</summary>
    public double EncoderInterpolateOffset => EncoderPositionInterpolation == InterpolationBicubic ? 0.1 : 0.0;

    /// <summary>Patches per side of the input image.</summary>
    public int PatchGridSize => EncoderImageSize / EncoderPatchSize;

    /// <summary>Decoder head width.</summary>
    public int TransformerHeadDim => TransformerDim / TransformerHeads;

    /// <summary>Encoder head width.</summary>
    public int EncoderHeadDim => EncoderFeatDim / EncoderHeads;

    /// <summary>True when the decoder's cross-attention stores one packed in_proj_weight (cond width = D).</summary>
    public bool CrossAttentionPacked => EncoderFeatDim == TransformerDim;

    /// <summary>Decoder tokens: 3 planes of low×low (at most 3·4096², see <see cref="Validate"/>).</summary>
    public int TriplaneTokens => checked(3 * TriplaneLowRes * TriplaneLowRes);

    /// <summary>Encoder output tokens: [CLS] plus patches (registers dropped; at most 1 + 16384², see <see cref="Validate"/>).</summary>
    public int EncoderTokens => checked(1 + PatchGridSize * PatchGridSize);

    /// <summary>Parameters of the model, counted from the weight table (no allocation).</summary>
    public long ParameterCount => LrmWeightNames.Expected(this).Sum(spec => spec.ElementCount);

    /// <summary>OpenLRM's default mesh threshold: the density of the extracted surface when the config names none.</summary>
    public const float DefaultMeshThreshold = 3.0f;

    /// <summary>
    /// Density of the extracted surface (extension key "mesh_threshold"), or null for OpenLRM's
    /// <see cref="DefaultMeshThreshold"/>: a model trained with another density scale can carry its own.
    /// </summary>
    public float? MeshThreshold { get; init; }

    /// <summary>OpenLRM's framing of an input photo: the object's longest side fills 0.85 of the square.</summary>
    public const double DefaultForegroundRatio = 0.85;

    /// <summary>
    /// How much of the square input the object's longest side fills when a photo is re-centred (extension key
    /// "foreground_ratio"), or null for OpenLRM's <see cref="DefaultForegroundRatio"/>: a model trained on views
    /// framed differently (e.g. LrmNative's default model, source view at distance 2) carries its own.
    /// </summary>
    public double? ForegroundRatio { get; init; }

    /// <summary>Where the config was read from (for error messages); "" if built in code.</summary>
    public string Source { get; init; } = "";

    // The hub models LrmNative knows: type, width, depth, heads, patch (registers from the _reg suffix).
    private static readonly Dictionary<string, (string Type, int Width, int Depth, int Heads, int Patch)> KnownEncoders = new(StringComparer.Ordinal)
    {
        ["dinov2_vits14"] = ("dinov2", 384, 12, 6, 14),
        ["dinov2_vits14_reg"] = ("dinov2", 384, 12, 6, 14),
        ["dinov2_vitb14"] = ("dinov2", 768, 12, 12, 14),
        ["dinov2_vitb14_reg"] = ("dinov2", 768, 12, 12, 14),
        ["dinov2_vitl14"] = ("dinov2", 1024, 24, 16, 14),
        ["dinov2_vitl14_reg"] = ("dinov2", 1024, 24, 16, 14),
        ["dino_vits16"] = ("dino", 384, 12, 6, 16),
        ["dino_vitb16"] = ("dino", 768, 12, 12, 16),
        ["dino_vits8"] = ("dino", 384, 12, 6, 8),
        ["dino_vitb8"] = ("dino", 768, 12, 12, 8),
    };

    // The paper's input resolution: the default image size of DINO v1 encoders.
    private const int DinoImageSize = 512;

    // OpenLRM v1.1's training resolution per decoder width (small, base, large).
    private static readonly Dictionary<int, int> ImageSizeByTransformerDim = new() { [512] = 224, [768] = 336, [1024] = 448 };

    /// <summary>Reads and validates a config.json; errors name the file and the key.</summary>
    public static ModelConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new LrmFormatException($"{path}: model config not found");
        }
        return Parse(ReadText(path), path);
    }

    /// <summary>The text of a config file (UTF-8, a byte-order mark skipped), read with the side-file size cap; errors name the file.</summary>
    public static string ReadText(string path)
    {
        var bytes = FileErrors.ReadSideFile(path, "model config");
        using var reader = new StreamReader(new MemoryStream(bytes), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    /// <summary>Parses config JSON text; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException error)
        {
            throw new LrmFormatException($"{source}: not valid JSON ({error.Message})");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new LrmFormatException($"{source}: must be a JSON object of OpenLRM config keys");
            }
            var reader = new KeyReader(root, source);
            var encoderType = reader.String("encoder_type");
            if (encoderType is not ("dinov2" or "dino"))
            {
                throw new LrmUnsupportedException($"{source}: encoder_type '{encoderType}' is not supported (LrmNative reads 'dinov2' (OpenLRM v1.1) and 'dino' (DINO v1, the paper) encoders)");
            }
            var dino = encoderType == "dino";
            var modelName = reader.String("encoder_model_name");
            if (!KnownEncoders.TryGetValue(modelName, out var known))
            {
                throw new LrmUnsupportedException($"{source}: encoder_model_name '{modelName}' is not a DINO/DINOv2 model LrmNative knows (one of {string.Join(", ", KnownEncoders.Keys)})");
            }
            if (known.Type != encoderType)
            {
                throw new LrmUnsupportedException($"{source}: encoder_type '{encoderType}' does not match encoder_model_name '{modelName}' (a '{known.Type}' model)");
            }
            var featDim = reader.Positive("encoder_feat_dim");
            var depth = reader.OptionalPositive("encoder_depth") ?? known.Depth;
            var heads = reader.OptionalPositive("encoder_heads");
            if (heads is null && featDim != known.Width)
            {
                throw new LrmFormatException($"{source}: encoder_feat_dim {featDim} does not match {modelName} (width {known.Width}); give encoder_heads (and encoder_depth) for a non-standard encoder");
            }
            var transformerDim = reader.Positive("transformer_dim");
            var imageSize = reader.OptionalPositive("encoder_image_size") ?? (dino ? DinoImageSize : null);
            if (imageSize is null)
            {
                imageSize = ImageSizeByTransformerDim.TryGetValue(transformerDim, out var size)
                    ? size
                    : throw new LrmFormatException($"{source}: encoder_image_size is missing and has no default for transformer_dim {transformerDim} (defaults: 512 → 224, 768 → 336, 1024 → 448)");
            }
            var config = new ModelConfig
            {
                Source = source,
                CameraEmbedDim = reader.Positive("camera_embed_dim"),
                RenderingSamplesPerRay = reader.Positive("rendering_samples_per_ray"),
                TransformerDim = transformerDim,
                TransformerLayers = reader.Positive("transformer_layers"),
                TransformerHeads = reader.Positive("transformer_heads"),
                TriplaneLowRes = reader.Positive("triplane_low_res"),
                TriplaneHighRes = reader.Positive("triplane_high_res"),
                TriplaneDim = reader.Positive("triplane_dim"),
                EncoderType = encoderType,
                EncoderModelName = modelName,
                EncoderFeatDim = featDim,
                EncoderFreeze = reader.Boolean("encoder_freeze"),
                EncoderDepth = depth,
                EncoderHeads = heads ?? known.Heads,
                EncoderImageSize = imageSize.Value,
                EncoderPatchSize = reader.OptionalPositive("encoder_patch_size") ?? known.Patch,
                EncoderRegisters = reader.OptionalCount("encoder_registers") ?? (modelName.EndsWith("_reg", StringComparison.Ordinal) ? 4 : 0),
                EncoderLayerScale = reader.OptionalBoolean("encoder_layer_scale") ?? !dino,
                EncoderPositionGrid = reader.OptionalPositive("encoder_pos_grid") ?? (dino ? DinoPositionGridSize : PositionGridSize),
                EncoderPositionInterpolation = reader.OptionalString("encoder_pos_interpolation")
                    ?? (dino ? InterpolationBilinear : modelName.EndsWith("_reg", StringComparison.Ordinal) ? InterpolationBicubicAntialias : InterpolationBicubic),
                EncoderImageMean = reader.OptionalTriple("encoder_image_mean"),
                EncoderImageStd = reader.OptionalTriple("encoder_image_std"),
                CameraInputDim = reader.OptionalPositive("camera_input_dim") ?? CameraRawDim,
                NerfLayerCount = reader.OptionalPositive("nerf_layers") ?? NerfLayers,
                NerfHiddenWidth = reader.OptionalPositive("nerf_hidden_dim") ?? NerfHiddenDim,
                MeshThreshold = reader.OptionalFinite("mesh_threshold"),
                ForegroundRatio = reader.OptionalFinite("foreground_ratio"),
            };
            config.Validate();
            return config;
        }
    }

    /// <summary>
    /// Checks that the sizes are in range and can go together (an <see cref="LrmFormatException"/> naming the source
    /// and key), and that the model they describe can be held: every tensor within what safetensors files here hold
    /// and at most <see cref="MaxParameterCount"/> parameters (an <see cref="LrmUnsupportedException"/> naming the
    /// source and the tensor).
    /// </summary>
    public void Validate()
    {
        var source = Source.Length > 0 ? Source : "model config";
        void Require(bool condition, string key, string why)
        {
            if (!condition)
            {
                throw new LrmFormatException($"{source}: {key}: {why}");
            }
        }
        void Range(long value, string key, long minimum, long maximum) =>
            Require(value >= minimum && value <= maximum, key, $"must be in {minimum}..{maximum}, got {value}");
        Range(CameraEmbedDim, "camera_embed_dim", 1, MaxWidth);
        Range(RenderingSamplesPerRay, "rendering_samples_per_ray", 1, MaxSamplesPerRay);
        Range(TransformerDim, "transformer_dim", 1, MaxWidth);
        Range(TransformerLayers, "transformer_layers", 1, MaxLayers);
        Range(TransformerHeads, "transformer_heads", 1, MaxWidth);
        Range(TriplaneLowRes, "triplane_low_res", 1, MaxTriplaneLowRes);
        Range(TriplaneHighRes, "triplane_high_res", 1, UpsampleFactor * MaxTriplaneLowRes);
        Range(TriplaneDim, "triplane_dim", 1, MaxWidth);
        Range(EncoderFeatDim, "encoder_feat_dim", 1, MaxWidth);
        Range(EncoderDepth, "encoder_depth", 1, MaxLayers);
        Range(EncoderHeads, "encoder_heads", 1, MaxWidth);
        Range(EncoderImageSize, "encoder_image_size", 1, MaxImageSize);
        Range(EncoderPatchSize, "encoder_patch_size", 1, MaxImageSize);
        Range(EncoderRegisters, "encoder_registers", 0, MaxRegisters);
        Range(EncoderPositionGrid, "encoder_pos_grid", 1, MaxPositionGrid);
        Range(NerfLayerCount, "nerf_layers", 2, MaxNerfLayers); // at least the input and output layers
        Range(NerfHiddenWidth, "nerf_hidden_dim", 1, MaxWidth);
        Require(TransformerDim % TransformerHeads == 0, "transformer_heads", $"{TransformerHeads} heads do not divide transformer_dim {TransformerDim}");
        Require(EncoderFeatDim % EncoderHeads == 0, "encoder_heads", $"{EncoderHeads} heads do not divide encoder_feat_dim {EncoderFeatDim}");
        Require(TriplaneHighRes == UpsampleFactor * TriplaneLowRes, "triplane_high_res", $"must be {UpsampleFactor} × triplane_low_res ({UpsampleFactor * TriplaneLowRes}), got {TriplaneHighRes}");
        Require(EncoderImageSize % EncoderPatchSize == 0, "encoder_image_size", $"must be a multiple of the patch size {EncoderPatchSize}, got {EncoderImageSize}");
        Require(MeshThreshold is null or > 0, "mesh_threshold",
            string.Create(CultureInfo.InvariantCulture, $"must be a density > 0 (the NeRF's density is positive everywhere, so there is no surface at 0 or below), got {MeshThreshold}"));
        Require(ForegroundRatio is null or (>= ImagePreprocessOptions.MinForegroundRatio and <= 1), "foreground_ratio",
            string.Create(CultureInfo.InvariantCulture, $"must be in [{ImagePreprocessOptions.MinForegroundRatio}, 1], got {ForegroundRatio}"));
        Require(EncoderPositionInterpolation is InterpolationBicubicAntialias or InterpolationBicubic or InterpolationBilinear, "encoder_pos_interpolation",
            $"must be '{InterpolationBicubicAntialias}', '{InterpolationBicubic}' or '{InterpolationBilinear}', got '{EncoderPositionInterpolation}'");
        Require(EncoderImageMean is null || EncoderImageMean.Length == 3, "encoder_image_mean", "must be 3 numbers (R, G, B)");
        Require(EncoderImageStd is null || (EncoderImageStd.Length == 3 && EncoderImageStd.All(v => v > 0 && float.IsFinite(v))), "encoder_image_std", "must be 3 positive numbers (R, G, B)");
        Require(CameraInputDim is CameraRawDim or CameraRawDimFull, "camera_input_dim",
            $"must be {CameraRawDim} (3×4 camera-to-world + fx, fy, cx, cy) or {CameraRawDimFull} (4×4 + fx, fy, cx, cy), got {CameraInputDim}");
        Require(RenderingSamplesPerRay % 2 == 0 && RenderingSamplesPerRay >= 8, "rendering_samples_per_ray", $"must be even and >= 8 (half coarse, half importance), got {RenderingSamplesPerRay}");
        CheckModelSize(source);
    }

    // Every weight within a safetensors tensor (fp32) and the total within MaxParameterCount; the sizes are in range,
    // so the table is at most a few tens of thousands of entries and no product overflows.
    private void CheckModelSize(string source)
    {
        const long maxElements = SafeTensorsFile.MaxTensorBytes / sizeof(float);
        long total = 0;
        foreach (var spec in LrmWeightNames.Expected(this))
        {
            var count = spec.ElementCount;
            if (count > maxElements)
            {
                throw new LrmUnsupportedException($"{source}: weight '{spec.Name}' would be {Tensor.FormatShape(spec.Shape)}, {count} values; LrmNative holds weights of at most {maxElements} fp32 values (2 GiB): reduce the sizes that make it");
            }
            total += count;
        }
        if (total > MaxParameterCount)
        {
            throw new LrmUnsupportedException(string.Create(CultureInfo.InvariantCulture,
                $"{source}: the config describes {total / 1e9:F2} billion parameters; LrmNative builds models of at most {MaxParameterCount / 1e9:F2} billion (the paper's largest LRM has about 0.5)"));
        }
    }

    /// <summary>The config as OpenLRM's flat JSON plus the extension keys, indented.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("camera_embed_dim", CameraEmbedDim);
            json.WriteNumber("rendering_samples_per_ray", RenderingSamplesPerRay);
            json.WriteNumber("transformer_dim", TransformerDim);
            json.WriteNumber("transformer_layers", TransformerLayers);
            json.WriteNumber("transformer_heads", TransformerHeads);
            json.WriteNumber("triplane_low_res", TriplaneLowRes);
            json.WriteNumber("triplane_high_res", TriplaneHighRes);
            json.WriteNumber("triplane_dim", TriplaneDim);
            json.WriteString("encoder_type", EncoderType);
            json.WriteString("encoder_model_name", EncoderModelName);
            json.WriteNumber("encoder_feat_dim", EncoderFeatDim);
            json.WriteBoolean("encoder_freeze", EncoderFreeze);
            json.WriteNumber("encoder_depth", EncoderDepth);
            json.WriteNumber("encoder_heads", EncoderHeads);
            json.WriteNumber("encoder_image_size", EncoderImageSize);
            json.WriteNumber("encoder_patch_size", EncoderPatchSize);
            json.WriteNumber("encoder_registers", EncoderRegisters);
            json.WriteBoolean("encoder_layer_scale", EncoderLayerScale);
            json.WriteNumber("encoder_pos_grid", EncoderPositionGrid);
            json.WriteString("encoder_pos_interpolation", EncoderPositionInterpolation);
            void Triple(string key, float[]? values)
            {
                if (values is not null)
                {
                    json.WriteStartArray(key);
                    foreach (var value in values)
                    {
                        json.WriteNumberValue(value);
                    }
                    json.WriteEndArray();
                }
            }
            Triple("encoder_image_mean", EncoderImageMean);
            Triple("encoder_image_std", EncoderImageStd);
            json.WriteNumber("camera_input_dim", CameraInputDim);
            json.WriteNumber("nerf_layers", NerfLayerCount);
            json.WriteNumber("nerf_hidden_dim", NerfHiddenWidth);
            if (MeshThreshold is { } threshold)
            {
                json.WriteNumber("mesh_threshold", threshold);
            }
            if (ForegroundRatio is { } ratio)
            {
                json.WriteNumber("foreground_ratio", ratio);
            }
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Parameters in millions with two decimals, e.g. "111.39 M".</summary>
    public string ParameterCountText => string.Create(CultureInfo.InvariantCulture, $"{ParameterCount / 1e6:F2} M");

    // Typed access to the config's keys with one clear error per bad key.
    private readonly struct KeyReader(JsonElement root, string source)
    {
        private JsonElement? Find(string key) => root.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

        private JsonElement Required(string key) => Find(key)
            ?? throw new LrmFormatException($"{source}: missing key '{key}'");

        public string String(string key)
        {
            var value = Required(key);
            return value.ValueKind == JsonValueKind.String
                ? value.GetString()!
                : throw new LrmFormatException($"{source}: key '{key}' must be a string, got {value.GetRawText()}");
        }

        public bool Boolean(string key)
        {
            var value = Required(key);
            return value.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? value.GetBoolean()
                : throw new LrmFormatException($"{source}: key '{key}' must be true or false, got {value.GetRawText()}");
        }

        public int Positive(string key) => ToPositive(key, Required(key));

        public string? OptionalString(string key) => Find(key) is { } value
            ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw new LrmFormatException($"{source}: key '{key}' must be a string, got {value.GetRawText()}")
            : null;

        public bool? OptionalBoolean(string key) => Find(key) is { } value
            ? value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw new LrmFormatException($"{source}: key '{key}' must be true or false, got {value.GetRawText()}")
            : null;

        public int? OptionalCount(string key) => Find(key) is { } value
            ? value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number >= 0
                ? number
                : throw new LrmFormatException($"{source}: key '{key}' must be a non-negative integer, got {value.GetRawText()}")
            : null;

        public float[]? OptionalTriple(string key)
        {
            if (Find(key) is not { } value)
            {
                return null;
            }
            if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 3
                || value.EnumerateArray().Any(item => item.ValueKind != JsonValueKind.Number || !float.IsFinite(item.GetSingle())))
            {
                throw new LrmFormatException($"{source}: key '{key}' must be an array of 3 numbers (R, G, B), got {value.GetRawText()}");
            }
            return [.. value.EnumerateArray().Select(item => item.GetSingle())];
        }

        public float? OptionalFinite(string key) => Find(key) is { } value
            ? value.ValueKind == JsonValueKind.Number && float.IsFinite(value.GetSingle())
                ? value.GetSingle()
                : throw new LrmFormatException($"{source}: key '{key}' must be a finite number, got {value.GetRawText()}")
            : null;

        public int? OptionalPositive(string key) => Find(key) is { } value ? ToPositive(key, value) : null;

        private int ToPositive(string key, JsonElement value) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number > 0
                ? number
                : throw new LrmFormatException($"{source}: key '{key}' must be a positive integer, got {value.GetRawText()}");
    }
}
