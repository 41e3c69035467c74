using System.Globalization;
using System.Text.Json;
using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Training;

/// <summary>Everything besides tensors that a resumed run needs to continue exactly.</summary>
/// <param name="Step">Optimiser updates done (the next update is Step + 1).</param>
/// <param name="Seed">The run's seed (data order, sample draws).</param>
/// <param name="Data">Where the data stream continues (<see cref="MultiViewLoader.Position"/>).</param>
/// <param name="RandomState">State of the trainer's own <see cref="TrainingRandom"/> (e.g. ray jitter).</param>
/// <param name="Extra">Trainer-defined JSON (settings, schedule) carried along verbatim; may be empty.</param>
internal sealed record TrainingState(long Step, ulong Seed, DataPosition Data, ulong RandomState, string Extra = "");

/// <summary>
/// Training checkpoints: one safetensors file holding the fp32 weights under their OpenLRM names, AdamW's moments
/// (<see cref="AdamW.ExpAvgPrefix"/>, <see cref="AdamW.ExpAvgSqPrefix"/>) and, in the metadata, the
/// <see cref="TrainingState"/> and the optimiser settings (key <see cref="StateMetadataKey"/>) plus — when a model
/// config is given — LrmNative's single-file model keys, so the checkpoint is also a model file
/// (<see cref="LrmModel.Load(string)"/> reads it and ignores the optimiser tensors). Written atomically (temporary
/// file, flush, rename): an interrupted write leaves the previous checkpoint as it was. With a per-file size limit
/// (<see cref="SaveIn"/>) a large checkpoint is written as shards plus an index (<see cref="SafeTensorsSet"/>); every
/// reader here takes either form.
/// </summary>
internal static class TrainingCheckpoint
{
    /// <summary>Metadata key of the training state JSON.</summary>
    public const string StateMetadataKey = "lrmnative.training";

    /// <summary>Version of the training state layout.</summary>
    public const int Version = 1;

    /// <summary>
    /// Writes a checkpoint of <paramref name="parameters"/> and <paramref name="optimizer"/> at <paramref name="state"/>
    /// to <paramref name="path"/>. <paramref name="configJson"/> (the model config, OpenLRM keys) makes it a model file too.
    /// </summary>
    public static void Save(string path, IReadOnlyList<TrainableParameter> parameters, AdamW optimizer, TrainingState state, string? configJson = null,
        IBackend? backend = null)
    {
        using var contents = Contents(parameters, optimizer, state, configJson, backend);
        SafeTensorsFile.Write(path, contents.Tensors, contents.Metadata);
    }

    /// <summary>File name of the single-file checkpoint inside an output folder.</summary>
    public const string FileName = "checkpoint.safetensors";

    /// <summary>File name of the sharded checkpoint's index inside an output folder.</summary>
    public const string IndexFileName = "checkpoint.index.json";

    /// <summary>
    /// Writes a checkpoint into <paramref name="directory"/>: <see cref="FileName"/> when it stays within
    /// <paramref name="maxFileBytes"/> (or the limit is 0), else shards <c>checkpoint-STEP-0000i-of-0000K.safetensors</c>
    /// of at most that size plus <see cref="IndexFileName"/> (weight map, state metadata, each shard's size and
    /// SHA-256). Crash-safe at every point: new shards under new names, flushed, then the index swapped atomically,
    /// then the old shards (and the other form, if any) deleted. Returns the path written.
    /// <paramref name="beforeCommit"/> runs between the new shards and the index swap (tests simulate a crash there).
    /// </summary>
    public static string SaveIn(string directory, IReadOnlyList<TrainableParameter> parameters, AdamW optimizer, TrainingState state, string? configJson,
        long maxFileBytes, Action? beforeCommit = null, IBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        using var contents = Contents(parameters, optimizer, state, configJson, backend);
        var (tensors, metadata) = (contents.Tensors, contents.Metadata);
        var single = Path.Combine(directory, FileName);
        var index = Path.Combine(directory, IndexFileName);
        if (maxFileBytes <= 0 || SafeTensorsFile.FileSize(tensors, metadata) <= maxFileBytes)
        {
            beforeCommit?.Invoke();
            SafeTensorsFile.Write(single, tensors, metadata);
            SafeTensorsSet.DeleteIndexAndShards(index, "checkpoint");
            return single;
        }
        metadata.Remove("format");
        SafeTensorsSet.WriteSharded(index, "checkpoint", string.Create(CultureInfo.InvariantCulture, $"checkpoint-{state.Step:D8}"), tensors, metadata, maxFileBytes, beforeCommit);
        FileErrors.Delete(single, $"the single-file checkpoint just replaced by {index}");
        return index;
    }

    /// <summary>
    /// The checkpoint in <paramref name="directory"/> to resume from: the sharded index or the single file, whichever
    /// exists (both only after a crash while switching forms: the one at the later step); null when there is none.
    /// </summary>
    public static string? Find(string directory)
    {
        var single = Path.Combine(directory, FileName);
        var index = Path.Combine(directory, IndexFileName);
        return (File.Exists(single), File.Exists(index)) switch
        {
            (false, false) => null,
            (true, false) => single,
            (false, true) => index,
            _ => ReadState(index).Step >= ReadState(single).Step ? index : single,
        };
    }

    // What a checkpoint holds; on a device backend the tensors are host copies, freed by Dispose.
    private sealed class CheckpointContents(HostTensorSet tensors, Dictionary<string, string> metadata) : IDisposable
    {
        public IReadOnlyList<KeyValuePair<string, Tensor>> Tensors => tensors.Tensors;

        public Dictionary<string, string> Metadata { get; } = metadata;

        public void Dispose() => tensors.Dispose();
    }

    private static CheckpointContents Contents(IReadOnlyList<TrainableParameter> parameters, AdamW optimizer, TrainingState state, string? configJson, IBackend? backend)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(state);
        if (state.Step != optimizer.StepCount)
        {
            throw new LrmInvalidArgumentException($"checkpoint: the state says step {state.Step} but the optimiser has done {optimizer.StepCount} updates");
        }
        var metadata = new Dictionary<string, string>
        {
            [StateMetadataKey] = StateJson(state, optimizer.Options),
            ["format"] = "pt",
        };
        if (configJson is not null)
        {
            metadata[LrmModel.FormatMetadataKey] = LrmModel.SingleFileVersion;
            metadata[LrmModel.ConfigMetadataKey] = configJson;
        }
        return new CheckpointContents(HostTensorSet.Of(backend, parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)).Concat(optimizer.StateTensors())), metadata);
    }

    /// <summary>
    /// Reads <paramref name="path"/>: copies the weights into <paramref name="parameters"/> (every one must be there
    /// with its shape), restores <paramref name="optimizer"/>'s moments and step, and returns the state. Errors name
    /// the file and the tensor; nothing is changed unless the whole checkpoint checks out.
    /// </summary>
    public static TrainingState Load(string path, IReadOnlyList<TrainableParameter> parameters, AdamW optimizer, IBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var file = SafeTensorsSet.Open(path);
        if (!file.Metadata.TryGetValue(StateMetadataKey, out var json))
        {
            throw new LrmFormatException($"{path}: not a training checkpoint (no '{StateMetadataKey}' metadata); a model file alone cannot resume training");
        }
        var state = ParseState(json, path);
        foreach (var parameter in parameters)
        {
            var info = file.Info(parameter.Name);
            if (info.DType != "F32" || !info.Shape.AsSpan().SequenceEqual(parameter.Value.Shape))
            {
                throw new LrmFormatException($"{path}: weight '{parameter.Name}' is {info.DType} {Tensor.FormatShape(info.Shape)}, the model needs F32 {parameter.Value.ShapeText}");
            }
        }
        optimizer.LoadState(name => file.Contains(name) ? file.ReadTensor(name) : null, parameters, state.Step, path, backend);
        foreach (var parameter in parameters)
        {
            if (parameter.Value.Device.Kind == DeviceKind.Cpu)
            {
                file.Bytes(parameter.Name).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(parameter.Value.AsSpan<float>()));
                continue;
            }
            if (backend is null)
            {
                throw new LrmInternalException($"checkpoint: weight '{parameter.Name}' lives on {parameter.Value.Device}; loading it needs that backend");
            }
            using var host = file.ReadTensor(parameter.Name);
            backend.Upload(parameter.Value, host);
        }
        return state;
    }

    /// <summary>Reads only the training state of a checkpoint (for `lrm info` and resume checks).</summary>
    public static TrainingState ReadState(string path) => ParseState(ReadStateJson(path), path);

    /// <summary>The optimiser settings a checkpoint was written with (for resume checks).</summary>
    public static AdamWOptions ReadOptimizerOptions(string path)
    {
        var text = ReadStateJson(path);
        try
        {
            using var document = JsonDocument.Parse(text);
            var optimizer = document.RootElement.GetProperty("optimizer");
            return new AdamWOptions
            {
                LearningRate = optimizer.GetProperty("lr").GetDouble(),
                Beta1 = optimizer.GetProperty("beta1").GetSingle(),
                Beta2 = optimizer.GetProperty("beta2").GetSingle(),
                Epsilon = optimizer.GetProperty("eps").GetSingle(),
                WeightDecay = optimizer.GetProperty("weight_decay").GetSingle(),
                MaxGradientNorm = optimizer.GetProperty("max_grad_norm").GetDouble(),
            };
        }
        catch (Exception error) when (error is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new LrmFormatException($"{path}: '{StateMetadataKey}' metadata has no valid optimiser settings ({error.Message})");
        }
    }

    // The training state JSON of a checkpoint, single file or sharded index.
    private static string ReadStateJson(string path)
    {
        IReadOnlyDictionary<string, string> metadata;
        if (SafeTensorsSet.IsIndex(path))
        {
            metadata = SafeTensorsSet.ReadMetadata(path);
        }
        else
        {
            using var file = SafeTensorsFile.Open(path);
            metadata = file.Metadata;
        }
        return metadata.TryGetValue(StateMetadataKey, out var json)
            ? json
            : throw new LrmFormatException($"{path}: not a training checkpoint (no '{StateMetadataKey}' metadata)");
    }

    private static string StateJson(TrainingState state, AdamWOptions options)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteNumber("version", Version);
            json.WriteNumber("step", state.Step);
            // 64-bit values as decimal strings: JSON numbers are doubles to most readers.
            json.WriteString("seed", state.Seed.ToString(CultureInfo.InvariantCulture));
            json.WriteString("random_state", state.RandomState.ToString(CultureInfo.InvariantCulture));
            json.WriteNumber("data_epoch", state.Data.Epoch);
            json.WriteNumber("data_index", state.Data.Index);
            json.WriteStartObject("optimizer");
            json.WriteString("name", "adamw");
            json.WriteNumber("lr", options.LearningRate);
            json.WriteNumber("beta1", options.Beta1);
            json.WriteNumber("beta2", options.Beta2);
            json.WriteNumber("eps", options.Epsilon);
            json.WriteNumber("weight_decay", options.WeightDecay);
            json.WriteNumber("max_grad_norm", options.MaxGradientNorm);
            json.WriteEndObject();
            json.WriteString("extra", state.Extra);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static TrainingState ParseState(string text, string path)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            var version = root.GetProperty("version").GetInt32();
            if (version != Version)
            {
                throw new LrmUnsupportedException($"{path}: training checkpoint version {version}; this build reads version {Version}");
            }
            var state = new TrainingState(
                root.GetProperty("step").GetInt64(),
                ulong.Parse(root.GetProperty("seed").GetString()!, CultureInfo.InvariantCulture),
                new DataPosition(root.GetProperty("data_epoch").GetInt64(), root.GetProperty("data_index").GetInt64()),
                ulong.Parse(root.GetProperty("random_state").GetString()!, CultureInfo.InvariantCulture),
                root.TryGetProperty("extra", out var extra) ? extra.GetString() ?? "" : "");
            if (state.Step < 0 || state.Data.Epoch < 0 || state.Data.Index < 0)
            {
                throw new LrmFormatException($"{path}: training state has negative counters (step {state.Step}, data {state.Data})");
            }
            return state;
        }
        catch (Exception error) when (error is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException or ArgumentNullException)
        {
            throw new LrmFormatException($"{path}: '{StateMetadataKey}' metadata is not a valid training state ({error.Message})");
        }
    }
}
