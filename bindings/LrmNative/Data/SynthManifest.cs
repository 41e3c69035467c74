using System.Globalization;
using System.Text.Json;
using LrmNative.IO;

namespace LrmNative.Data;

/// <summary>
/// <c>synth.json</c> at the root of a dataset made by <c>lrm dataset synth</c>: the options that decide its bytes
/// (style, seed, views, resolution, mesh resolution, source distance) and the object count asked for. <c>--resume</c>
/// reads it to continue an interrupted run, or to grow the dataset to more objects, only with the same options: object
/// k depends only on (options, k), so the objects already there are exactly those a straight run would have written.
/// Dataset readers ignore the file (they read object folders and <c>uids.json</c>). A resume refuses a folder holding
/// object folders the run would not write, and <c>--overwrite</c> removes the manifest with the earlier dataset.
/// </summary>
internal static class SynthManifest
{
    /// <summary>The manifest's file name in the dataset root.</summary>
    public const string FileName = "synth.json";

    private const string Generator = "lrm dataset synth";

    /// <summary>Writes the manifest for a run of <paramref name="objects"/> objects (temp file + rename).</summary>
    public static void Write(string root, DatasetOptions options, int objects)
    {
        ArgumentNullException.ThrowIfNull(options);
        AtomicFile.Write(Path.Combine(root, FileName), stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteString("generator", Generator);
            foreach (var (name, value) in Fields(options))
            {
                json.WriteString(name, value);
            }
            json.WriteNumber("objects", objects);
            json.WriteEndObject();
        });
    }

    /// <summary>
    /// Checks that <paramref name="root"/> holds a synth dataset made with the same options as <paramref name="options"/>;
    /// throws <see cref="LrmInvalidArgumentException"/> naming the file and the first option that differs.
    /// </summary>
    public static void CheckResume(string root, DatasetOptions options, int objects)
    {
        ArgumentNullException.ThrowIfNull(options);
        var path = Path.Combine(root, FileName);
        if (!Directory.Exists(root))
        {
            throw new LrmInvalidArgumentException($"--resume: {root} does not exist (nothing to continue; leave out --resume to start)");
        }
        if (!File.Exists(path))
        {
            throw new LrmInvalidArgumentException($"--resume: {path} not found: {root} was not made by `{Generator}` (or by a version without the manifest); use --overwrite to start again");
        }
        Dictionary<string, string> stored;
        int? asked;
        try
        {
            using var document = JsonDocument.Parse(FileErrors.ReadSideFile(path, "dataset manifest"));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new LrmFormatException($"{path}: expected a JSON object");
            }
            stored = document.RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == JsonValueKind.String)
                .ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
            asked = document.RootElement.TryGetProperty("objects", out var count) && count.TryGetInt32(out var n) ? n : null;
        }
        catch (JsonException error)
        {
            throw new LrmFormatException($"{path}: not valid JSON: {error.Message}");
        }
        if (!stored.TryGetValue("generator", out var generator) || generator != Generator)
        {
            throw new LrmFormatException($"{path}: \"generator\" should be \"{Generator}\"");
        }
        foreach (var (name, value) in Fields(options))
        {
            if (!stored.TryGetValue(name, out var was))
            {
                throw new LrmFormatException($"{path}: \"{name}\" is missing");
            }
            if (was != value)
            {
                throw new LrmInvalidArgumentException(
                    $"--resume: {root} was made with --{name.Replace('_', '-')} {was}, this run asks for {value}; resume with the same options (or use --overwrite to start again)");
            }
        }
        if (asked is null)
        {
            throw new LrmFormatException($"{path}: \"objects\" should be a whole number");
        }
        if (objects < asked)
        {
            throw new LrmInvalidArgumentException(
                $"--resume: {root} was started for {asked} objects, --objects {objects} is fewer (a resume continues or grows a dataset, it does not shrink one)");
        }
        // A resume keeps every object folder it finds; one this run would not write (another command's, a copied-in
        // object) would be read as part of the dataset, so it is refused rather than kept.
        var foreign = FileErrors.Reading(root, "the dataset folder", () => Directory.GetDirectories(root)
            .Where(d => !Path.GetFileName(d).StartsWith('.') && !IsSynthObject(Path.GetFileName(d), objects)
                && (DatasetWriter.IsObjectFolder(d) || Path.GetFileName(d) is DatasetLayout.ImagesFolder or DatasetLayout.PosesFolder))
            .Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList());
        if (foreign.Count > 0)
        {
            throw new LrmInvalidArgumentException(
                $"--resume: {root} holds {foreign.Count} object folder(s) this run would not write ({string.Join(", ", foreign.Take(3))}{(foreign.Count > 3 ? ", …" : "")}): "
                + "a resume would keep them in the dataset; remove them, or use --overwrite to start again");
        }
    }

    // True for obj_NNNNN with N below the object count: a folder this synth run writes (or kept from its earlier part).
    private static bool IsSynthObject(string? name, int objects) =>
        name is not null && name.StartsWith("obj_", StringComparison.Ordinal) && name.Length > 4 && name.Skip(4).All(char.IsAsciiDigit)
        && int.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < objects
        && DatasetGeneration.SynthName(index) == name;

    /// <summary>
    /// Removes the staging folders a killed run left behind (<c>.obj_NNNNN.PID.GUID.tmp</c>, see
    /// <see cref="DatasetWriter.WriteObject"/>); returns how many.
    /// </summary>
    public static int RemoveStaging(string root)
    {
        var removed = 0;
        foreach (var folder in Directory.GetDirectories(root, ".obj_*.tmp"))
        {
            try
            {
                Directory.Delete(folder, recursive: true);
                removed++;
            }
            catch (IOException)
            {
                // Another process's staging folder still in use, or gone already: hidden folders are ignored by readers.
            }
        }
        return removed;
    }

    // The options that decide a synth dataset's bytes, as the command line spells their values ("none": not given).
    private static IEnumerable<(string Name, string Value)> Fields(DatasetOptions options)
    {
        yield return ("style", options.Style == ObjectStyle.Simple ? "simple" : "zeroverse");
        yield return ("seed", options.Seed.ToString(CultureInfo.InvariantCulture));
        yield return ("views", options.Views.ToString(CultureInfo.InvariantCulture));
        yield return ("resolution", options.Resolution.ToString(CultureInfo.InvariantCulture));
        yield return ("mesh_resolution", options.MeshResolution.ToString(CultureInfo.InvariantCulture));
        yield return ("source_distance", options.SourceDistance is { } d ? d.ToString("R", CultureInfo.InvariantCulture) : "none");
    }
}
