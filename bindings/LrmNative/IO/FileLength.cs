namespace LrmNative.IO;

/// <summary>File sizes that follow symbolic links (FileInfo.Length of a link is the link's own size).</summary>
internal static class FileLength
{
    /// <summary>The size in bytes of the file at <paramref name="path"/>, or of the file a symbolic link there leads to.</summary>
    public static long Of(string path) => Resolve(new FileInfo(path)).Length;

    /// <summary>
    /// The size of the file at <paramref name="path"/> (through symbolic links), for readers that need its size before
    /// they open it. A process substitution such as <c>&lt;(cat x)</c> is a link to a pipe that no path reaches, which
    /// is one clear error naming <paramref name="path"/> and the <paramref name="what"/> it should hold; a named pipe or
    /// a device reports 0 bytes, which the callers refuse before opening it (opening a pipe would wait for a writer).
    /// </summary>
    /// <exception cref="LrmFormatException">Missing, a pipe or directory, or it cannot be inspected.</exception>
    public static long OfFile(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            var info = Resolve(new FileInfo(path));
            if (!info.Exists)
            {
                throw new LrmFormatException(File.Exists(path) || info.FullName != Path.GetFullPath(path)
                    ? $"{path}: not a regular file (a pipe?); the {what} must be a file on disk"
                    : $"{path}: {what} not found");
            }
            return info.Length;
        }
        catch (Exception error) when (FileErrors.IsFileSystemError(error))
        {
            throw new LrmFormatException($"{path}: cannot inspect the {what}: {error.Message}");
        }
    }

    /// <summary><paramref name="info"/>, or the final target when it is a symbolic link (unchanged when the link is broken).</summary>
    public static FileInfo Resolve(FileInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target ? target : info;
    }
}
