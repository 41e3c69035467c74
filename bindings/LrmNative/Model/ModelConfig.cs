using System.Globalization;
using System.Text.Json;

namespace LrmNative.Model;

/// <summary>
/// The architecture of an LRM, read from OpenLRM v1.1's flat <c>config.json</c> (camera_embed_dim,
/// rendering_samples_per_ray, transformer_dim/layers/heads, triplane_low_res/high_res/dim, encoder_type,
/// encoder_model_name, encoder_feat_dim, encoder_freeze) plus LrmNative's optional extension keys
/// (encoder_depth, encoder_heads, encoder_image_size), which OpenLRM ignores. The encoder's depth and heads
/// default from encoder_model_name, the input image size from transformer_dim (512 → 224, 768 → 336,
/// 1024 → 448, as OpenLRM's small/base/large checkpoints were trained).
/// </summary>
internal sealed record ModelConfig
{
    /// <summary>DINOv2 patch size.</summary>
    public const int PatchSize = 14;

    /// <summary>Side of DINOv2's trained position table (518 / 14): 37×37 patch positions plus [CLS].</summary>
    public const int PositionGridSize = 37;

    /// <summary>LayerNorm epsilon of every norm in the model (DINOv2 and the decoder).</summary>
    public const float LayerNormEpsilon = 1e-6f;

    /// <summary>Raw camera feature width: the 3×4 camera-to-world matrix plus fx, fy, cx, cy.</summary>
    public const int CameraRawDim = 16;

    /// <summary>Hidden width of the triplane NeRF MLP (OpenLRM's OSGDecoder).</summary>
    public const int NerfHiddenDim = 64;

    /// <summary>Linear layers of the triplane NeRF MLP.</summary>
    public const int NerfLayers = 4;

    /// <summary>De-convolution kernel and stride of the upsampler.</summary>
    public const int UpsampleFactor = 2;

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

    /// <summary>"dinov2" (DINO v1, "dino", is not supported yet).</summary>
    public required string EncoderType { get; init; }

    /// <summary>DINOv2 hub name, e.g. dinov2_vits14_reg.</summary>
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

    /// <summary>Register tokens of the encoder (4 for the *_reg models).</summary>
    public int EncoderRegisters => EncoderModelName.EndsWith("_reg", StringComparison.Ordinal) ? 4 : 0;

    /// <summary>
    /// How DINOv2 resizes its position table: with registers, antialiased bicubic (a = −0.5) and no
    /// coordinate offset; the original models use plain bicubic (a = −0.75) and scale_factor offset 0.1.
    /// </summary>
    public bool EncoderInterpolateAntialias => EncoderRegisters > 0;

    /// <summary>Offset added to the patch grid in DINOv2's scale_factor (0 with registers, else 0.1).</summary>
    public double EncoderInterpolateOffset => EncoderRegisters > 0 ? 0.0 : 0.1;

    /// <summary>Patches per side of the input image.</summary>
    public int PatchGridSize => EncoderImageSize / PatchSize;

    /// <summary>Decoder head width.</summary>
    public int TransformerHeadDim => TransformerDim / TransformerHeads;

    /// <summary>Encoder head width.</summary>
    public int EncoderHeadDim => EncoderFeatDim / EncoderHeads;

    /// <summary>True when the decoder's cross-attention stores one packed in_proj_weight (cond width = D).</summary>
    public bool CrossAttentionPacked => EncoderFeatDim == TransformerDim;

    /// <summary>Decoder tokens: 3 planes of low×low.</summary>
    public int TriplaneTokens => 3 * TriplaneLowRes * TriplaneLowRes;

    /// <summary>Encoder output tokens: [CLS] plus patches (registers dropped).</summary>
    public int EncoderTokens => 1 + PatchGridSize * PatchGridSize;

    /// <summary>Parameters of the model, counted from the weight table (no allocation).</summary>
    public long ParameterCount => LrmWeightNames.Expected(this).Sum(spec => spec.ElementCount);

    /// <summary>Where the config was read from (for error messages); "" if built in code.</summary>
    public string Source { get; init; } = "";

    // The DINOv2 hub models LrmNative knows: width, depth, heads (registers from the _reg suffix).
    private static readonly Dictionary<string, (int Width, int Depth, int Heads)> KnownEncoders = new(StringComparer.Ordinal)
    {
        ["dinov2_vits14"] = (384, 12, 6),
        ["dinov2_vits14_reg"] = (384, 12, 6),
        ["dinov2_vitb14"] = (768, 12, 12),
        ["dinov2_vitb14_reg"] = (768, 12, 12),
        ["dinov2_vitl14"] = (1024, 24, 16),
        ["dinov2_vitl14_reg"] = (1024, 24, 16),
    };

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
        return Parse(File.ReadAllText(path), path);
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
            if (encoderType != "dinov2")
            {
                throw new LrmUnsupportedException($"{source}: encoder_type '{encoderType}' is not supported (LrmNative reads OpenLRM v1.1's 'dinov2' encoders)");
            }
            var modelName = reader.String("encoder_model_name");
            if (!KnownEncoders.TryGetValue(modelName, out var known))
            {
                throw new LrmUnsupportedException($"{source}: encoder_model_name '{modelName}' is not a DINOv2 model LrmNative knows (one of {string.Join(", ", KnownEncoders.Keys)})");
            }
            var featDim = reader.Positive("encoder_feat_dim");
            var depth = reader.OptionalPositive("encoder_depth") ?? known.Depth;
            var heads = reader.OptionalPositive("encoder_heads");
            if (heads is null && featDim != known.Width)
            {
                throw new LrmFormatException($"{source}: encoder_feat_dim {featDim} does not match {modelName} (width {known.Width}); give encoder_heads (and encoder_depth) for a non-standard encoder");
            }
            var transformerDim = reader.Positive("transformer_dim");
            var imageSize = reader.OptionalPositive("encoder_image_size");
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
            };
            config.Validate();
            return config;
        }
    }

    /// <summary>Checks that the sizes can go together; the error names the source and key.</summary>
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
        Require(TransformerDim % TransformerHeads == 0, "transformer_heads", $"{TransformerHeads} heads do not divide transformer_dim {TransformerDim}");
        Require(EncoderFeatDim % EncoderHeads == 0, "encoder_heads", $"{EncoderHeads} heads do not divide encoder_feat_dim {EncoderFeatDim}");
        Require(TriplaneHighRes == UpsampleFactor * TriplaneLowRes, "triplane_high_res", $"must be {UpsampleFactor} × triplane_low_res ({UpsampleFactor * TriplaneLowRes}), got {TriplaneHighRes}");
        Require(EncoderImageSize % PatchSize == 0, "encoder_image_size", $"must be a multiple of the patch size {PatchSize}, got {EncoderImageSize}");
        Require(RenderingSamplesPerRay % 2 == 0 && RenderingSamplesPerRay >= 8, "rendering_samples_per_ray", $"must be even and >= 8 (half coarse, half importance), got {RenderingSamplesPerRay}");
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

        public int? OptionalPositive(string key) => Find(key) is { } value ? ToPositive(key, value) : null;

        private int ToPositive(string key, JsonElement value) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number > 0
                ? number
                : throw new LrmFormatException($"{source}: key '{key}' must be a positive integer, got {value.GetRawText()}");
    }
}
