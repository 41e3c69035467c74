using System.Globalization;
using System.Text;
using System.Text.Json;
using LrmNative.IO;

namespace LrmNative.Training;

/// <summary>
/// A JSON-lines log of a training run (<c>train.jsonl</c>: one object per update; <c>lrm train</c>'s <c>val.jsonl</c>:
/// one per validation), each line one JSON object with an integer <c>"step"</c>. Every line is flushed as it is written,
/// so a killed run leaves at most its last line cut off; a resumed run keeps the lines up to its checkpoint
/// (<see cref="KeepThrough"/>). A file-system failure (a full disk, no permission) is one <see cref="LrmFormatException"/>
/// naming the file.
/// </summary>
internal sealed class TrainingLog : IDisposable
{
    private readonly StreamWriter _writer;

    private TrainingLog(string path, StreamWriter writer)
    {
        Path = path;
        _writer = writer;
    }

    /// <summary>The log file.</summary>
    public string Path { get; }

    /// <summary>Opens <paramref name="path"/> to add lines after the ones there (<paramref name="append"/>) or as a new, empty log.</summary>
    public static TrainingLog Open(string path, bool append)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return new TrainingLog(path, new StreamWriter(path, append));
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw CannotWrite(path, error);
        }
    }

    /// <summary>Adds one line, the JSON object <paramref name="body"/> writes the members of, and flushes it to the file.</summary>
    public void Write(Action<Utf8JsonWriter> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        try
        {
            _writer.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
            _writer.Flush();
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw CannotWrite(Path, error);
        }
    }

    /// <summary>
    /// Writes a number member; a non-finite value (a PSNR of an exact render is +∞) as the string "inf", "-inf" or "nan",
    /// since JSON has no such numbers.
    /// </summary>
    public static void WriteNumber(Utf8JsonWriter json, string name, double value)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (double.IsFinite(value))
        {
            json.WriteNumber(name, value);
        }
        else
        {
            json.WriteString(name, double.IsNaN(value) ? "nan" : value > 0 ? "inf" : "-inf");
        }
    }

    /// <summary>
    /// Keeps the lines of <paramref name="path"/> up to update <paramref name="step"/> (a resumed run continues the log
    /// after its checkpoint; the lines of updates the checkpoint does not have go). A last line that is not JSON was cut
    /// off by a killed write: it is dropped and <paramref name="warning"/> says so. Any other line that is not a JSON
    /// object with an integer "step" is an error naming the file and the line. No file: nothing to do.
    /// </summary>
    public static void KeepThrough(string path, long step, Action<string>? warning)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            return;
        }
        var lines = FileErrors.Reading(path, "the training log", () => File.ReadAllLines(path));
        var kept = new List<string>(lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(lines[i]);
            }
            catch (JsonException) when (i == lines.Length - 1)
            {
                warning?.Invoke($"{path}: dropped its last line, cut off by an interrupted write: {Excerpt(lines[i])}");
                break;
            }
            catch (JsonException error)
            {
                throw new LrmFormatException(string.Create(CultureInfo.InvariantCulture,
                    $"{path}: line {i + 1} is not JSON ({error.Message}); only the last line of a log can be cut off by a killed run, so the file was changed by hand: repair or remove that line"));
            }
            using (document)
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("step", out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var lineStep))
                {
                    throw new LrmFormatException(string.Create(CultureInfo.InvariantCulture,
                        $"{path}: line {i + 1} is not a JSON object with an integer \"step\": {Excerpt(lines[i])}"));
                }
                if (lineStep <= step)
                {
                    kept.Add(lines[i]);
                }
            }
        }
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            foreach (var line in kept)
            {
                writer.WriteLine(line);
            }
        }, "training log");
    }

    // A line for a message: at most 80 characters of it.
    private static string Excerpt(string line) => line.Length <= 80 ? $"'{line}'" : $"'{line[..80]}…'";

    private static LrmFormatException CannotWrite(string path, Exception error) => new($"{path}: cannot write the training log: {error.Message}");

    /// <summary>Closes the file. Every line was flushed when written; a write that failed has already been reported.</summary>
    public void Dispose()
    {
        try
        {
            _writer.Dispose();
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            // Only a line whose Write already threw can be left in the buffer; its error is the one that counts.
        }
    }
}
