using LrmNative.Backends;
using LrmNative.IO;

namespace LrmNative.Model;

/// <summary>Intermediate and final outputs of <see cref="LrmModel.Forward"/>. Owns its tensors.</summary>
/// <param name="Features">Image features (B, 1 + P, C): [CLS, patches] after the encoder's final norm.</param>
/// <param name="CameraEmbedding">Camera embedding (B, E).</param>
/// <param name="Tokens">Triplane tokens (B, 3·l·l, D) after the decoder's final norm.</param>
/// <param name="Planes">Triplane (B, 3, C_tri, H, W), as OpenLRM's forward_planes returns it.</param>
internal sealed record LrmOutputs(Tensor Features, Tensor CameraEmbedding, Tensor Tokens, Tensor Planes) : IDisposable
{
    /// <summary>Frees all four tensors.</summary>
    public void Dispose()
    {
        Features.Dispose();
        CameraEmbedding.Dispose();
        Tokens.Dispose();
        Planes.Dispose();
    }
}

/// <summary>The training forward's outputs and saved activations (<see cref="LrmModel.ForwardTraining"/>); owns them all.</summary>
/// <param name="Saved">The scope owning every tensor below (the camera excepted).</param>
/// <param name="Camera">The source camera (B, K) (not owned).</param>
/// <param name="Encoder">Encoder activations (features included).</param>
/// <param name="CameraEmbedding">Camera embedding (B, E).</param>
/// <param name="Decoder">Decoder activations (tokens included).</param>
/// <param name="Planes">Triplane (B, 3, C_tri, 2l, 2l).</param>
internal sealed record LrmActivations(ScratchTensors Saved, Tensor Camera, EncoderActivations Encoder, Tensor CameraEmbedding, DecoderActivations Decoder, Tensor Planes) : IDisposable
{
    /// <summary>Image features (B, 1 + P, C).</summary>
    public Tensor Features => Encoder.Features;

    /// <summary>Triplane tokens (B, 3l², D).</summary>
    public Tensor Tokens => Decoder.Tokens;

    /// <summary>Frees every saved tensor.</summary>
    public void Dispose() => Saved.Dispose();
}

/// <summary>
/// The Large Reconstruction Model (arXiv 2311.04400) as OpenLRM v1.1 builds it (forward; training forward and backward
/// in <see cref="ForwardTraining"/> / <see cref="Backward"/>): DINOv2 (or the
/// paper's DINO v1) encoder,
/// camera embedder, ModLN transformer decoder, de-convolution upsampler, triplane NeRF and volume renderer.
/// Loaded from an OpenLRM-style folder (config.json + model.safetensors) through the weight-name table of
/// <see cref="LrmWeightNames"/>; every size comes from the config, so the paper's and OpenLRM's small, base
/// and large models are one code path.
/// </summary>
internal sealed class LrmModel : IDisposable
{
    /// <summary>The config file of a model folder.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The weights file of a model folder.</summary>
    public const string WeightsFileName = "model.safetensors";

    private readonly WeightSet _weights;

    private LrmModel(ModelConfig config, WeightSet weights, bool trainable, IBackend? placement = null)
    {
        Placement = placement ?? HostPlacement;
        Trainable = trainable;
        Config = config;
        _weights = weights;
        ParameterCount = weights.ParameterCount;
        IgnoredTensors = weights.Ignored;
        try
        {
            Encoder = new DinoV2Encoder(config, weights);
            CameraEmbedder = new CameraEmbedder(weights);
            Decoder = new TriplaneDecoder(Placement, config, weights, trainable);
            Upsampler = new TriplaneUpsampler(config, weights);
            Nerf = new TriplaneNerf(weights, config.NerfLayerCount);
            Renderer = new VolumeRenderer(Nerf, config.RenderingSamplesPerRay);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The architecture.</summary>
    public ModelConfig Config { get; }

    /// <summary>The backend whose memory holds the weights: the host's, or the device backend given to Load/Create as placement.</summary>
    public IBackend Placement { get; }

    // Host-side weight preparation (repacking at load) on a model that was not placed on a device.
    private static readonly CpuBackend HostPlacement = new();

    /// <summary>Whether the model was loaded for training (every named weight kept, see <see cref="Weight"/>).</summary>
    public bool Trainable { get; }

    /// <summary>Parameters loaded (equals <see cref="ModelConfig.ParameterCount"/>).</summary>
    public long ParameterCount { get; }

    /// <summary>Tensors of the checkpoint the model does not use (e.g. encoder.model.mask_token), sorted.</summary>
    public IReadOnlyList<string> IgnoredTensors { get; }

    /// <summary>The DINOv2 image encoder.</summary>
    public DinoV2Encoder Encoder { get; }

    /// <summary>The camera embedder.</summary>
    public CameraEmbedder CameraEmbedder { get; }

    /// <summary>The image-to-triplane transformer decoder.</summary>
    public TriplaneDecoder Decoder { get; }

    /// <summary>Tokens → triplane.</summary>
    public TriplaneUpsampler Upsampler { get; }

    /// <summary>The triplane NeRF MLP.</summary>
    public TriplaneNerf Nerf { get; }

    /// <summary>The volume renderer (deterministic mode).</summary>
    public VolumeRenderer Renderer { get; }

    /// <summary>
    /// Loads a model from <paramref name="path"/>: an OpenLRM-style folder (<c>config.json</c> with flat OpenLRM
    /// keys + <c>model.safetensors</c>), or LrmNative's single-file format (one safetensors file whose
    /// metadata holds the config, see <see cref="SaveSingleFile"/>). Every expected tensor is checked for presence
    /// and shape before anything is read; extra tensors are ignored and listed in <see cref="IgnoredTensors"/>.
    /// </summary>
    public static LrmModel Load(string path) => Load(path, trainable: false);

    /// <summary>
    /// <see cref="Load(string)"/>; <paramref name="trainable"/> keeps every weight under its checkpoint name (the
    /// optimiser updates those; <see cref="Weight"/>), at the cost of a second copy of the cross-attention projections.
    /// </summary>
    public static LrmModel Load(string path, bool trainable, IBackend? placement = null)
    {
        var (config, weightsPath) = OpenModel(path);
        return Load(config, weightsPath, trainable, placement);
    }

    /// <summary>Metadata key marking LrmNative's single-file model format (value <see cref="SingleFileVersion"/>).</summary>
    public const string FormatMetadataKey = "lrmnative.format";

    /// <summary>Metadata key holding the model config (OpenLRM's flat JSON keys) in the single-file format.</summary>
    public const string ConfigMetadataKey = "lrmnative.config";

    /// <summary>Version of the single-file format.</summary>
    public const string SingleFileVersion = "1";

    /// <summary>
    /// Index metadata key naming the <see cref="WeightsFileName"/> a sharded save replaced ("bytes sha256:hex"): if the
    /// save stops after committing the index but before removing that file, <see cref="OpenFolder"/> still knows the
    /// index is the newer form.
    /// </summary>
    public const string ReplacesMetadataKey = "lrmnative.replaces";

    /// <summary>
    /// Converts a model (an OpenLRM folder, or a single file) into LrmNative's single-file format: the tensors the
    /// model uses, under OpenLRM's names, with the config JSON in the safetensors metadata. Written atomically.
    /// </summary>
    public static void SaveSingleFile(string source, string destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var (config, weightsPath) = OpenModel(source);
        var configJson = ConfigJson(source, weightsPath);
        using var weights = WeightSet.Load(weightsPath, LrmWeightNames.Expected(config));
        var tensors = LrmWeightNames.Expected(config).Select(spec => new KeyValuePair<string, Tensor>(spec.Name, weights[spec.Name]));
        SafeTensorsFile.Write(destination, tensors, new Dictionary<string, string>
        {
            [FormatMetadataKey] = SingleFileVersion,
            [ConfigMetadataKey] = configJson,
            ["format"] = "pt",
        });
    }

    // The config JSON text of a model: config.json of a folder, or the metadata of a single file or index.
    private static string ConfigJson(string source, string weightsPath) => Directory.Exists(source) && File.Exists(Path.Combine(source, ConfigFileName))
        ? ModelConfig.ReadText(Path.Combine(source, ConfigFileName))
        : ReadSingleFileConfig(weightsPath).Json;

    /// <summary>File name of a sharded model's index (Hugging Face's name and format), inside a model folder.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    // A model path: its parsed config and the path of its weights, or one clear error.
    private static (ModelConfig Config, string WeightsPath) OpenModel(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            // An index without LrmNative's config metadata (Hugging Face / OpenLRM style) takes config.json beside it.
            var beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, ConfigFileName);
            if (SafeTensorsSet.IsIndex(path) && !SafeTensorsSet.ReadMetadata(path).ContainsKey(ConfigMetadataKey) && File.Exists(beside))
            {
                return (ModelConfig.Load(beside), path);
            }
            return (ReadSingleFileConfig(path).Config, path);
        }
        return OpenFolder(path);
    }

    // A model folder: config.json (or, without it, the config in the weights' metadata) and model.safetensors or its
    // sharded index; or one clear error. Both forms are there only when a save stopped between writing one and removing
    // the other: the index wins when it records replacing that very model.safetensors, else model.safetensors (written
    // after the index).
    private static (ModelConfig Config, string WeightsPath) OpenFolder(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new LrmFormatException($"{directory}: model not found (expected a folder with {ConfigFileName} and {WeightsFileName} or {IndexFileName}, or an LrmNative model file)");
        }
        var configPath = Path.Combine(directory, ConfigFileName);
        var weightsPath = Path.Combine(directory, WeightsFileName);
        var index = Path.Combine(directory, IndexFileName);
        if (File.Exists(weightsPath) && File.Exists(index) && IndexReplaces(index, weightsPath))
        {
            weightsPath = index;
        }
        else if (!File.Exists(weightsPath))
        {
            if (!File.Exists(configPath) && !File.Exists(index))
            {
                return (ModelConfig.Load(configPath), weightsPath); // names the missing config.json
            }
            if (!File.Exists(index))
            {
                throw new LrmFormatException($"{weightsPath}: weights not found (a model folder holds {ConfigFileName} and {WeightsFileName}, or a sharded {IndexFileName})");
            }
            weightsPath = index;
        }
        var config = File.Exists(configPath) ? ModelConfig.Load(configPath) : ReadSingleFileConfig(weightsPath).Config;
        return (config, weightsPath);
    }

    // True when the index at indexPath was written over the single file at singlePath, as it is now.
    private static bool IndexReplaces(string indexPath, string singlePath)
    {
        try
        {
            return SafeTensorsSet.ReadMetadata(indexPath).TryGetValue(ReplacesMetadataKey, out var replaced) && replaced == Fingerprint(singlePath);
        }
        catch (LrmFormatException)
        {
            return false; // an unreadable index cannot be the newer form; the single file is complete by itself
        }
    }

    // "bytes sha256:hex" of a file, to recognise it later.
    private static string Fingerprint(string path) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{FileLength.Of(path)} sha256:{SafeTensorsSet.Sha256(path)}");

    private static (ModelConfig Config, string Json) ReadSingleFileConfig(string path)
    {
        using var file = SafeTensorsSet.Open(path);
        if (!file.Metadata.TryGetValue(FormatMetadataKey, out var version) || !file.Metadata.TryGetValue(ConfigMetadataKey, out var json))
        {
            throw new LrmFormatException($"{path}: not an LrmNative model file (its metadata lacks '{FormatMetadataKey}' and '{ConfigMetadataKey}'); "
                + $"an OpenLRM model is a folder with {ConfigFileName} and {WeightsFileName} (or {IndexFileName})");
        }
        if (version != SingleFileVersion)
        {
            throw new LrmUnsupportedException($"{path}: LrmNative model format version {version}; this build reads version {SingleFileVersion}");
        }
        return (ModelConfig.Parse(json, $"{path} (metadata '{ConfigMetadataKey}')"), json);
    }

    /// <summary>Loads the weights of <paramref name="config"/> from a safetensors file under OpenLRM's keys.</summary>
    public static LrmModel Load(ModelConfig config, string weightsPath, bool trainable = false, IBackend? placement = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Build(config, WeightSet.Load(weightsPath, LrmWeightNames.Expected(config)), trainable, placement);
    }

    // The model over host weights (owned; freed on failure), uploaded first when placement is a device backend: the
    // modules then prepare their weights (repacking) in that backend's memory and the host copy is freed.
    private static LrmModel Build(ModelConfig config, WeightSet weights, bool trainable, IBackend? placement)
    {
        try
        {
            if (placement is not null && placement.Device.Kind != DeviceKind.Cpu)
            {
                using var host = weights;
                weights = host.CopyTo(placement);
            }
            return new LrmModel(config, weights, trainable, placement);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>A model over in-memory weights (one per <see cref="LrmWeightNames.Expected"/> name; ownership passes to the model).</summary>
    public static LrmModel Create(ModelConfig config, IReadOnlyDictionary<string, Tensor> weights, bool trainable, IBackend? placement = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var set = WeightSet.FromTensors(config.Source.Length > 0 ? config.Source : "initial weights", weights, LrmWeightNames.Expected(config));
        return Build(config, set, trainable, placement);
    }

    /// <summary>
    /// Writes the weights of a <see cref="Trainable"/> model as LrmNative's single-file model (config in the metadata),
    /// atomically; <c>lrm reconstruct --model FILE</c> loads it.
    /// </summary>
    public void SaveWeights(string destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        using var tensors = WeightsToSave();
        SafeTensorsFile.Write(destination, tensors.Tensors, SaveMetadata());
    }

    /// <summary>
    /// Writes the weights into <paramref name="directory"/>: <see cref="WeightsFileName"/> when that file stays within
    /// <paramref name="maxFileBytes"/> (or the limit is 0), else shards <c>model-0000i-of-0000K.safetensors</c> plus
    /// <see cref="IndexFileName"/> (config in its metadata), written crash-safely; whichever form is not written is
    /// removed afterwards (a sharded save records the single file it replaces, <see cref="ReplacesMetadataKey"/>, so
    /// loading the folder after a crash between the two steps takes the new weights). Returns the path to load
    /// (<c>lrm reconstruct --model</c> takes it or the folder).
    /// </summary>
    internal string SaveWeights(string directory, long maxFileBytes)
    {
        ArgumentNullException.ThrowIfNull(directory);
        using var weights = WeightsToSave();
        var tensors = weights.Tensors;
        var metadata = SaveMetadata();
        var single = Path.Combine(directory, WeightsFileName);
        var index = Path.Combine(directory, IndexFileName);
        if (maxFileBytes <= 0 || SafeTensorsFile.FileSize(tensors, metadata) <= maxFileBytes)
        {
            SafeTensorsFile.Write(single, tensors, metadata);
            SafeTensorsSet.DeleteIndexAndShards(index, "model");
            return single;
        }
        metadata.Remove("format");
        if (File.Exists(single))
        {
            metadata[ReplacesMetadataKey] = Fingerprint(single);
        }
        SafeTensorsSet.WriteSharded(index, "model", "model", tensors, metadata, maxFileBytes);
        FileErrors.Delete(single, $"the single-file weights just replaced by {index}");
        return index;
    }

    // The named weights readable on the host (downloaded copies when they live on a device).
    private HostTensorSet WeightsToSave() =>
        HostTensorSet.Of(Placement, LrmWeightNames.Expected(Config).Select(spec => new KeyValuePair<string, Tensor>(spec.Name, Weight(spec.Name))));

    private Dictionary<string, string> SaveMetadata() => new()
    {
        [FormatMetadataKey] = SingleFileVersion,
        [ConfigMetadataKey] = Config.ToJson(),
        ["format"] = "pt",
    };

    /// <summary>
    /// A model of <paramref name="config"/> with weights uniform in [−0.02, 0.02) from <paramref name="seed"/>, made in
    /// memory (for `lrm bench` without a checkpoint: the timing of every op is independent of the values).
    /// <paramref name="overrides"/> replaces tensors by name; the model takes ownership of them. <paramref name="placement"/>: a device backend to hold the weights (default: the host).
    /// </summary>
    public static LrmModel CreateRandom(ModelConfig config, int seed, Dictionary<string, Tensor>? overrides = null, IBackend? placement = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var random = new Random(seed);
        var specs = LrmWeightNames.Expected(config).ToList();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var spec in specs)
            {
                if (overrides is not null && overrides.Remove(spec.Name, out var given))
                {
                    tensors[spec.Name] = given;
                    continue;
                }
                var tensor = Tensor.Empty(spec.Shape);
                tensors[spec.Name] = tensor;
                var values = tensor.AsSpan<float>();
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = 0.04f * random.NextSingle() - 0.02f;
                }
            }
            foreach (var unused in (IEnumerable<Tensor>?)overrides?.Values ?? [])
            {
                unused.Dispose(); // names the table does not have
            }
            overrides?.Clear();
            return Build(config, WeightSet.FromTensors($"random weights (seed {seed})", tensors, specs), trainable: false, placement);
        }
        catch
        {
            foreach (var tensor in tensors.Values.Concat((IEnumerable<Tensor>?)overrides?.Values ?? []))
            {
                tensor.Dispose();
            }
            throw;
        }
    }

    /// <summary>
    /// Reads a model folder's config and checks its weights file against it from the header alone (nothing is
    /// loaded): for <c>lrm info --model</c>. Returns the config and the checkpoint's unused tensor names.
    /// </summary>
    public static (ModelConfig Config, IReadOnlyList<string> IgnoredTensors) Inspect(string directory)
    {
        var (config, weightsPath) = OpenModel(directory);
        return (config, WeightSet.Inspect(weightsPath, LrmWeightNames.Expected(config)));
    }

    // The weights are in one backend's memory; a forward on another device would hand its kernels foreign pointers.
    private void CheckBackend(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend.Device != Placement.Device)
        {
            throw new LrmInvalidArgumentException($"model: its weights live on {Placement.Device}, but the backend runs on {backend.Device}; "
                + "load the model there (LrmModel.Load/Create with that backend as placement)");
        }
    }

    /// <summary>
    /// Image (B, 3, S, S) in [0, 1] and source camera (B, 16) → features, camera embedding, tokens and triplane
    /// (B, 3, C_tri, 2l, 2l); the caller owns the outputs.
    /// </summary>
    public LrmOutputs Forward(IBackend backend, Tensor image, Tensor camera)
    {
        CheckBackend(backend);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(camera);
        if (camera.Rank != 2 || camera.Size(0) != image.Size(0))
        {
            throw new LrmShapeException($"model: camera must be ({image.Size(0)}, {Config.CameraInputDim}) for image {image.ShapeText}, got {camera.ShapeText}");
        }
        Tensor? features = null, embedding = null, tokens = null;
        try
        {
            features = Encoder.Forward(backend, image);
            embedding = CameraEmbedder.Forward(backend, camera);
            tokens = Decoder.Forward(backend, features, embedding);
            var planes = Upsampler.Forward(backend, tokens);
            return new LrmOutputs(features, embedding, tokens, planes);
        }
        catch
        {
            features?.Dispose();
            embedding?.Dispose();
            tokens?.Dispose();
            throw;
        }
    }

    /// <summary>Image (B, 3, S, S) and source camera (B, 16) → triplane (B, 3, C_tri, 2l, 2l); the caller owns it.</summary>
    public Tensor ForwardPlanes(IBackend backend, Tensor image, Tensor camera)
    {
        CheckBackend(backend);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(camera);
        using var features = Encoder.Forward(backend, image);
        using var embedding = CameraEmbedder.Forward(backend, camera);
        using var tokens = Decoder.Forward(backend, features, embedding);
        return Upsampler.Forward(backend, tokens);
    }

    /// <summary>The weight named <paramref name="name"/> (OpenLRM's key) of a <see cref="Trainable"/> model, updated in place by training.</summary>
    public Tensor Weight(string name)
    {
        if (!Trainable)
        {
            throw new LrmInternalException($"model: weight '{name}' is only addressable by name in a model loaded trainable");
        }
        return _weights[name];
    }

    /// <summary>
    /// Tells the modules that the named weights changed (a training update, a checkpoint load): the cached position
    /// tables are dropped and the packed cross-attention copies refreshed, so <see cref="Forward"/> uses the new values.
    /// (<see cref="ForwardTraining"/> does this itself.)
    /// </summary>
    public void WeightsChanged()
    {
        Encoder.ClearPositionCache();
        Decoder.SyncCrossAttention();
    }

    /// <summary>
    /// The forward for training: <see cref="Forward"/>'s outputs plus every activation the backward needs, all owned by
    /// the returned record. The model must be <see cref="Trainable"/>.
    /// </summary>
    public LrmActivations ForwardTraining(IBackend backend, Tensor image, Tensor camera)
    {
        CheckBackend(backend);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(camera);
        if (!Trainable)
        {
            throw new LrmInternalException("model: training needs a model loaded trainable (LrmModel.Load(path, trainable: true))");
        }
        if (camera.Rank != 2 || camera.Size(0) != image.Size(0))
        {
            throw new LrmShapeException($"model: camera must be ({image.Size(0)}, {Config.CameraInputDim}) for image {image.ShapeText}, got {camera.ShapeText}");
        }
        var saved = new ScratchTensors(backend);
        try
        {
            var encoder = Encoder.ForwardTraining(backend, image, saved);
            var embedding = saved.Adopt(CameraEmbedder.Forward(backend, camera));
            var decoder = Decoder.ForwardTraining(backend, encoder.Features, embedding, saved);
            var planes = saved.Adopt(Upsampler.Forward(backend, decoder.Tokens));
            return new LrmActivations(saved, camera, encoder, embedding, decoder, planes);
        }
        catch
        {
            saved.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Back-propagates ∂L/∂planes (B, 3, C_tri, 2l, 2l) through the upsampler, decoder (ModLN → modulation MLP →
    /// camera embedder) and encoder; every parameter gradient accumulates into <paramref name="gradients"/>.
    /// <paramref name="intermediate"/>, when given, receives copies of ∂L/∂tokens, ∂L/∂features and ∂L/∂camera embedding.
    /// </summary>
    public void Backward(IBackend backend, GradientSet gradients, LrmActivations saved, Tensor gradPlanes, IDictionary<string, Tensor>? intermediate = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(gradients);
        ArgumentNullException.ThrowIfNull(saved);
        ArgumentNullException.ThrowIfNull(gradPlanes);
        using var scratch = new ScratchTensors(backend);
        var gradTokens = scratch.Empty(saved.Tokens.Shape);
        Upsampler.Backward(backend, gradients, gradTokens, gradPlanes, saved.Tokens);
        var gradFeatures = scratch.Empty(saved.Features.Shape);
        var gradEmbedding = scratch.Empty(saved.CameraEmbedding.Shape);
        Decoder.Backward(backend, gradients, gradTokens, saved.Features, saved.CameraEmbedding, saved.Decoder, gradFeatures, gradEmbedding);
        if (intermediate is not null)
        {
            intermediate["tokens"] = backend.ToHost(gradTokens);
            intermediate["features"] = backend.ToHost(gradFeatures);
            intermediate["camera_embedding"] = backend.ToHost(gradEmbedding);
        }
        CameraEmbedder.Backward(backend, gradients, gradEmbedding, saved.Camera);
        Encoder.Backward(backend, gradients, gradFeatures, saved.Encoder);
    }

    /// <summary>Frees the weights and the modules' caches.</summary>
    public void Dispose()
    {
        Encoder?.Dispose();
        Decoder?.Dispose();
        _weights.Dispose();
    }
}
