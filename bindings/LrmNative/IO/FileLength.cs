namespace LrmNative.IO;

/// <summary>File sizes that follow symbolic links (FileInfo.Length of a link is the link's own size).</summary>
internal static class FileLength
{
    /// <summary>The size in bytes of the file at <paramref name="path"/>, or of the file a symbolic link there leads to.</summary>
    public static long Of(string path) => Resolve(new FileInfo(path)).Length;

    /// <summary><paramref name="info"/>, or the final target when it is a symbolic link (unchanged when the link is broken).</summary>
    public static FileInfo Resolve(FileInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target ? target : info;
    }
}
