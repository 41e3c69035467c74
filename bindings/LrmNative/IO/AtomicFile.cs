namespace LrmNative.IO;

/// <summary>Writes files so that readers see either the old file or the complete new one, never half of it.</summary>
internal static class AtomicFile
{
    /// <summary>
    /// Writes through <paramref name="write"/> into a temporary file next to <paramref name="path"/>, flushes, then
    /// renames it over the target. A failure removes the temporary file and leaves the target as it was; a file-system
    /// failure (no permission, a missing or read-only location, a folder named like the file, a full disk) is an
    /// <see cref="LrmFormatException"/> naming <paramref name="path"/> (and <paramref name="what"/>, e.g. "OBJ mesh",
    /// when given), and an <see cref="LrmException"/> raised by <paramref name="write"/> passes unchanged.
    /// </summary>
    public static void Write(string path, Action<Stream> write, string what = "file")
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new LrmInvalidArgumentException("cannot write a file with an empty name");
        }
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception error) when (error is ArgumentException or NotSupportedException or IOException)
        {
            throw new LrmInvalidArgumentException($"{path}: not a usable file name: {error.Message}");
        }
        if (Directory.Exists(full))
        {
            throw new LrmFormatException($"{path}: cannot write the {what}: a folder of that name is there (give a file name)");
        }
        var directory = Path.GetDirectoryName(full) ?? ".";
        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(directory);
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception error)
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (FileErrors.IsFileSystemError(cleanup))
            {
                // Best effort: the original error matters more than a leftover temp file.
            }
            if (FileErrors.IsFileSystemError(error))
            {
                throw new LrmFormatException($"{path}: cannot write the {what}: {error.Message}");
            }
            throw;
        }
    }
}
