using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace LrmNative.IO;

/// <summary>
/// Tensors read from one safetensors file or from a sharded set: an index JSON in Hugging Face's
/// <c>model.safetensors.index.json</c> format (<c>{"metadata": {...}, "weight_map": {tensor: shard file}}</c>) plus,
/// when LrmNative wrote it, <c>"shards": {file: {"bytes": n, "sha256": hex}}</c>, which is checked before any tensor is
/// handed out. Shards lie next to the index. Errors name the index and the missing or corrupt shard.
/// </summary>
internal sealed class SafeTensorsSet : IDisposable
{
    /// <summary>Index key holding the size and SHA-256 of every shard (LrmNative's addition to the HF format).</summary>
    public const string ShardsKey = "shards";

    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _owner;

    private SafeTensorsSet(string path, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> owner, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _files = files;
        _owner = owner;
        Metadata = metadata;
    }

    /// <summary>The file or index this was opened from.</summary>
    public string Path { get; }

    /// <summary>Metadata: the single file's <c>__metadata__</c>, or the index's <c>metadata</c> (values as text).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor entry.</summary>
    public IEnumerable<SafeTensorInfo> Tensors => _owner.Select(e => e.Value.Info(e.Key));

    /// <summary>True when <paramref name="path"/> names an index (a <c>.json</c> file) rather than a safetensors file.</summary>
    public static bool IsIndex(string path) => path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);

    /// <summary>True if a tensor of this name is there.</summary>
    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>Header entry of a tensor; throws naming the file when absent.</summary>
    public SafeTensorInfo Info(string name) => File(name).Info(name);

    /// <summary>Raw bytes of a tensor, valid until Dispose.</summary>
    public ReadOnlySpan<byte> Bytes(string name) => File(name).Bytes(name);

    /// <summary>See <see cref="SafeTensorsFile.ReadTensor"/>.</summary>
    public Tensor ReadTensor(string name, ReadOnlySpan<long> expectedShape = default) => File(name).ReadTensor(name, expectedShape);

    private SafeTensorsFile File(string name) => _owner.TryGetValue(name, out var file)
        ? file
        : throw new LrmFormatException($"{Path}: no tensor named '{name}' (has: {string.Join(", ", _owner.Keys.Order(StringComparer.Ordinal).Take(20))}{(_owner.Count > 20 ? ", ..." : "")})");

    /// <summary>Opens a safetensors file, or an index and every shard it names (checking sizes and hashes when listed).</summary>
    public static SafeTensorsSet Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!IsIndex(path))
        {
            var single = SafeTensorsFile.Open(path);
            return new SafeTensorsSet(path, [single], single.Tensors.ToDictionary(t => t.Name, _ => single, StringComparer.Ordinal), single.Metadata);
        }
        var index = ReadIndex(path);
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        var files = new List<SafeTensorsFile>();
        try
        {
            var byName = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var shard in index.WeightMap.Values.Concat(index.Shards.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                var shardPath = System.IO.Path.Combine(directory, shard);
                if (!System.IO.File.Exists(shardPath))
                {
                    throw new LrmFormatException($"{path}: shard {shardPath} is missing");
                }
                if (index.Shards.TryGetValue(shard, out var expected))
                {
                    var actual = FileLength.Of(shardPath);
                    if (actual != expected.Bytes)
                    {
                        throw new LrmFormatException($"{shardPath}: corrupt shard: {actual} bytes, the index {path} says {expected.Bytes}");
                    }
                    var hash = Sha256(shardPath);
                    if (!string.Equals(hash, expected.Sha256, StringComparison.OrdinalIgnoreCase))
                    {
                        throw new LrmFormatException($"{shardPath}: corrupt shard: SHA-256 {hash}, the index {path} says {expected.Sha256}");
                    }
                }
                var file = SafeTensorsFile.Open(shardPath);
                files.Add(file);
                byName[shard] = file;
            }
            var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, shard) in index.WeightMap)
            {
                var file = byName[shard];
                if (!file.Contains(tensor))
                {
                    throw new LrmFormatException($"{path}: tensor '{tensor}' is mapped to {file.Path}, which does not hold it");
                }
                owner[tensor] = file;
            }
            return new SafeTensorsSet(path, files, owner, index.Metadata);
        }
        catch
        {
            foreach (var file in files)
            {
                file.Dispose();
            }
            throw;
        }
    }

    /// <summary>The shard file names an index refers to (weight map and shard list), or none when it is absent or unreadable.</summary>
    public static IReadOnlySet<string> ShardNames(string indexPath)
    {
        try
        {
            var index = ReadIndex(indexPath);
            return index.WeightMap.Values.Concat(index.Shards.Keys).ToHashSet(StringComparer.Ordinal);
        }
        catch (LrmFormatException)
        {
            return new HashSet<string>(StringComparer.Ordinal);
        }
    }

    /// <summary>Reads only the metadata of an index.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string indexPath) => ReadIndex(indexPath).Metadata;

    private sealed record ShardEntry(long Bytes, string Sha256);

    private sealed record Index(Dictionary<string, string> Metadata, Dictionary<string, string> WeightMap, Dictionary<string, ShardEntry> Shards);

    private static Index ReadIndex(string path)
    {
        if (!System.IO.File.Exists(path))
        {
            throw new LrmFormatException($"{path}: index not found");
        }
        var bytes = FileErrors.ReadSideFile(path, "safetensors index");
        try
        {
            using var document = JsonDocument.Parse(bytes);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            {
                throw new LrmFormatException($"{path}: not a safetensors index (expected a JSON object with a 'weight_map' object)");
            }
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in meta.EnumerateObject())
                {
                    metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : entry.Value.GetRawText();
                }
            }
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                weightMap[entry.Name] = CheckShardName(path, entry.Value.GetString());
            }
            var shards = new Dictionary<string, ShardEntry>(StringComparer.Ordinal);
            if (root.TryGetProperty(ShardsKey, out var list) && list.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in list.EnumerateObject())
                {
                    shards[CheckShardName(path, entry.Name)] = new ShardEntry(entry.Value.GetProperty("bytes").GetInt64(), entry.Value.GetProperty("sha256").GetString()!);
                }
            }
            return new Index(metadata, weightMap, shards);
        }
        catch (Exception error) when (error is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new LrmFormatException($"{path}: not a valid safetensors index ({error.Message})");
        }
    }

    // Shards are plain file names next to the index: no folders, no way out of it.
    private static string CheckShardName(string path, string? name) =>
        string.IsNullOrEmpty(name) || name != System.IO.Path.GetFileName(name) || name is "." or ".."
            ? throw new LrmFormatException($"{path}: shard name '{name}' must be a plain file name next to the index")
            : name;

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static string Sha256(string path) => FileErrors.Reading(path, "the shard", () =>
    {
        using var stream = System.IO.File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    });

    /// <summary>
    /// Writes <paramref name="tensors"/> as shards of at most <paramref name="maxFileBytes"/> bytes each (whole tensors,
    /// name order; a tensor too large for the limit alone is a shard of its own, over it) named <c>{prefix}-0000i-of-0000K.safetensors</c> next to <paramref name="indexPath"/>, then the index
    /// (with <paramref name="metadata"/>, the weight map and each shard's size and SHA-256). Crash-safe: the shards get
    /// names the current index does not use, each is flushed to disk, then the index is replaced atomically, and only
    /// then are the shards the old index used (and leftovers of interrupted writes of this <paramref name="family"/>)
    /// deleted. <paramref name="beforeCommit"/> runs between the shards and the index swap (tests simulate a crash there).
    /// Returns the shard file names.
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(string indexPath, string family, string prefix, IReadOnlyList<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string> metadata, long maxFileBytes, Action? beforeCommit = null)
    {
        ArgumentNullException.ThrowIfNull(indexPath);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        var groups = Partition(tensors, maxFileBytes);
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw new LrmFormatException($"{directory}: cannot create the folder for {indexPath}: {error.Message}");
        }
        var old = ShardNames(indexPath);
        var names = ShardFileNames(prefix, groups.Count, old);
        var entries = new Dictionary<string, ShardEntry>(StringComparer.Ordinal);
        for (var i = 0; i < groups.Count; i++)
        {
            var shardPath = System.IO.Path.Combine(directory, names[i]);
            SafeTensorsFile.Write(shardPath, groups[i], ShardMetadata);
            entries[names[i]] = new ShardEntry(FileLength.Of(shardPath), Sha256(shardPath));
        }
        beforeCommit?.Invoke();
        AtomicFile.Write(indexPath, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", tensors.Sum(t => t.Value.ByteCount));
            foreach (var (key, value) in metadata.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                json.WriteString(key, value);
            }
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            for (var i = 0; i < groups.Count; i++)
            {
                foreach (var (name, _) in groups[i])
                {
                    json.WriteString(name, names[i]);
                }
            }
            json.WriteEndObject();
            json.WriteStartObject(ShardsKey);
            foreach (var (name, entry) in entries)
            {
                json.WriteStartObject(name);
                json.WriteNumber("bytes", entry.Bytes);
                json.WriteString("sha256", entry.Sha256);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteEndObject();
        });
        DeleteShards(directory, family, keep: names);
        return names;
    }

    /// <summary>
    /// Deletes <paramref name="indexPath"/> (if there) and every shard of <paramref name="family"/> next to it
    /// (<see cref="IsShardOf"/>) — after a single file has replaced a sharded set.
    /// </summary>
    public static void DeleteIndexAndShards(string indexPath, string family)
    {
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        FileErrors.Delete(indexPath, "the index of a sharded set just replaced by a single file");
        if (Directory.Exists(directory))
        {
            DeleteShards(directory, family, keep: []);
        }
    }

    /// <summary>
    /// True when <paramref name="fileName"/> is a shard <see cref="WriteSharded"/> may have written for
    /// <paramref name="family"/>: <c>{family}-*-of-*.safetensors</c>, or <c>{family}.N-*-of-*.safetensors</c> (the name
    /// a save takes when the live index already uses the plain one, e.g. every other save of <c>model</c>).
    /// </summary>
    internal static bool IsShardOf(string fileName, string family)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(family);
        if (!fileName.StartsWith(family, StringComparison.Ordinal) || !fileName.EndsWith(".safetensors", StringComparison.Ordinal)
            || !fileName.Contains("-of-", StringComparison.Ordinal))
        {
            return false;
        }
        var rest = fileName.AsSpan(family.Length);
        if (rest.StartsWith("-"))
        {
            return true;
        }
        // "{family}.N-…": a retry stem of the family itself.
        if (!rest.StartsWith("."))
        {
            return false;
        }
        var digits = rest[1..];
        var dash = digits.IndexOf('-');
        return dash > 0 && !digits[..dash].ContainsAnyExceptInRange('0', '9');
    }

    private static readonly Dictionary<string, string> ShardMetadata = new(StringComparer.Ordinal) { ["format"] = "pt" };

    private static void DeleteShards(string directory, string family, IReadOnlyCollection<string> keep)
    {
        var shards = FileErrors.Reading(directory, "the folder's list of shards", () =>
            Directory.EnumerateFiles(directory, $"{family}*-of-*.safetensors").Where(path => IsShardOf(System.IO.Path.GetFileName(path), family)).ToList());
        foreach (var path in shards)
        {
            if (!keep.Contains(System.IO.Path.GetFileName(path)))
            {
                FileErrors.Delete(path, $"a shard of a replaced '{family}' set");
            }
        }
    }

    private static List<string> ShardFileNames(string prefix, int count, IReadOnlySet<string> taken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var stem = attempt == 0 ? prefix : string.Create(CultureInfo.InvariantCulture, $"{prefix}.{attempt}");
            var names = Enumerable.Range(1, count).Select(i => string.Create(CultureInfo.InvariantCulture, $"{stem}-{i:D5}-of-{count:D5}.safetensors")).ToList();
            if (!names.Any(taken.Contains))
            {
                return names;
            }
        }
    }

    // Greedy in name order: a shard takes tensors while its whole file (header included) stays within the limit. A tensor
    // whose file alone exceeds the limit gets a shard of its own (the only files over the limit; tensors are never
    // split), as Hugging Face's sharding does, so a limit chosen for most of a model still saves all of it.
    private static List<List<KeyValuePair<string, Tensor>>> Partition(IReadOnlyList<KeyValuePair<string, Tensor>> tensors, long maxFileBytes)
    {
        if (maxFileBytes < 1)
        {
            throw new LrmInvalidArgumentException($"shards: the file size limit must be positive, got {maxFileBytes} bytes");
        }
        var groups = new List<List<KeyValuePair<string, Tensor>>>();
        var current = new List<KeyValuePair<string, Tensor>>();
        foreach (var tensor in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            if (SafeTensorsFile.FileSize([tensor], ShardMetadata) > maxFileBytes)
            {
                if (current.Count > 0)
                {
                    groups.Add(current);
                }
                groups.Add([tensor]);
                current = [];
                continue;
            }
            current.Add(tensor);
            if (current.Count > 1 && SafeTensorsFile.FileSize(current, ShardMetadata) > maxFileBytes)
            {
                current.RemoveAt(current.Count - 1);
                groups.Add(current);
                current = [tensor];
            }
        }
        if (current.Count > 0)
        {
            groups.Add(current);
        }
        return groups;
    }

    /// <summary>
    /// The tensors among <paramref name="tensors"/> whose shard file alone would exceed <paramref name="maxFileBytes"/>
    /// (each gets a shard of its own, over the limit), with that file's size; largest first.
    /// </summary>
    public static IReadOnlyList<(string Name, long FileBytes)> OverLimit(IEnumerable<KeyValuePair<string, Tensor>> tensors, long maxFileBytes) =>
        [.. tensors.Select(t => (t.Key, SafeTensorsFile.FileSize([t], ShardMetadata))).Where(t => t.Item2 > maxFileBytes).OrderByDescending(t => t.Item2)];

    /// <summary>Unmaps every shard.</summary>
    public void Dispose()
    {
        foreach (var file in _files)
        {
            file.Dispose();
        }
        _files.Clear();
    }
}
