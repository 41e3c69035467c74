using System.Globalization;

namespace LrmNative.IO;

/// <summary>
/// File-system failures (no permission, a folder where a file should be, a full disk, a vanished mount) turned into one
/// <see cref="LrmFormatException"/> naming the file, so no raw <see cref="IOException"/> or
/// <see cref="UnauthorizedAccessException"/> reaches the user; and the one bounded reader of small JSON side files.
/// </summary>
internal static class FileErrors
{
    /// <summary>
    /// Largest JSON side file read whole (model config, shard index, uids.json): real ones are kilobytes (an index of
    /// a few thousand tensors well under a megabyte), so more is a wrong or hostile file, refused before it fills memory.
    /// </summary>
    public const long MaxSideFileBytes = 64L << 20;

    /// <summary>True for the exceptions the file system raises for a file that cannot be read, written or removed.</summary>
    public static bool IsFileSystemError(Exception error) => error is IOException or UnauthorizedAccessException;

    /// <summary>Runs <paramref name="read"/>; a file-system failure becomes "<paramref name="path"/>: cannot read <paramref name="what"/>: why".</summary>
    public static T Reading<T>(string path, string what, Func<T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        try
        {
            return read();
        }
        catch (Exception error) when (IsFileSystemError(error))
        {
            throw new LrmFormatException($"{path}: cannot read {what}: {error.Message}");
        }
    }

    /// <summary>Deletes <paramref name="path"/> if it is there; a failure names the file and <paramref name="why"/> it was being removed.</summary>
    public static void Delete(string path, string why)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception error) when (IsFileSystemError(error))
        {
            throw new LrmFormatException($"{path}: cannot remove it ({why}): {error.Message}");
        }
    }

    /// <summary>
    /// The bytes of a small side file (<paramref name="what"/>, e.g. "model config"), at most <paramref name="maxBytes"/>:
    /// a larger file — or a device such as /dev/zero that never ends — is refused after reading at most one byte more.
    /// Missing, unreadable or too large: an <see cref="LrmFormatException"/> naming the file.
    /// </summary>
    public static byte[] ReadSideFile(string path, string what, long maxBytes = MaxSideFileBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        string TooLarge() => string.Create(CultureInfo.InvariantCulture,
            $"{path}: the {what} is larger than {maxBytes / (1 << 20)} MB; a real one is a few kilobytes (is this the right file?)");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (stream.CanSeek && stream.Length > maxBytes)
            {
                throw new LrmFormatException(TooLarge());
            }
            using var bytes = new MemoryStream();
            var buffer = new byte[1 << 16];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                bytes.Write(buffer, 0, read);
                if (bytes.Length > maxBytes)
                {
                    throw new LrmFormatException(TooLarge());
                }
            }
            return bytes.ToArray();
        }
        catch (Exception error) when (error is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new LrmFormatException($"{path}: {what} not found");
        }
        catch (Exception error) when (IsFileSystemError(error))
        {
            throw new LrmFormatException($"{path}: cannot read the {what}: {error.Message}");
        }
    }
}
