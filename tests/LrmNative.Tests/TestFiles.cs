using System.Text;

namespace LrmNative.Tests;

/// <summary>Small helpers several fixtures share: the repository folder, and GLB containers built byte by byte.</summary>
internal static class TestFiles
{
    /// <summary>The repository checkout the tests were built in (the folder with LrmNative.sln), or null in a test bundle.</summary>
    public static string? RepositoryFolder()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "LrmNative.sln")))
            {
                return directory.FullName;
            }
        }
        return null;
    }

    /// <summary>
    /// The full path of <paramref name="relativePath"/> (e.g. "docs/cli.md") in the repository checkout; outside one (a test
    /// bundle) the test is skipped saying the file is not there to <paramref name="use"/>.
    /// </summary>
    public static string InRepository(string relativePath, string use)
    {
        var repository = RepositoryFolder();
        if (repository is null)
        {
            Assert.Ignore($"the tests run outside the repository (a test bundle): {relativePath} is not here to {use}");
        }
        return Path.Combine([repository!, .. relativePath.Split('/')]);
    }

    /// <summary>
    /// A binary glTF file: the 12-byte header, the JSON chunk (padded with spaces to 4 bytes) and the BIN chunk, all
    /// lengths as the container format says (glTF 2.0, "GLB File Format Specification").
    /// </summary>
    public static byte[] Glb(string json, IReadOnlyCollection<byte> bin)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(bin);
        var jsonBytes = Encoding.UTF8.GetBytes(json).ToList();
        while (jsonBytes.Count % 4 != 0)
        {
            jsonBytes.Add((byte)' ');
        }
        var file = new List<byte>();
        void U32(uint v) => file.AddRange(BitConverter.GetBytes(v));
        U32(0x46546C67); // "glTF"
        U32(2);
        U32((uint)(12 + 8 + jsonBytes.Count + 8 + bin.Count));
        U32((uint)jsonBytes.Count);
        U32(0x4E4F534A); // "JSON"
        file.AddRange(jsonBytes);
        U32((uint)bin.Count);
        U32(0x004E4942); // "BIN\0"
        file.AddRange(bin);
        return [.. file];
    }
}

/// <summary>A fixture whose every test gets a fresh temporary folder (<see cref="Folder"/>), deleted after the test.</summary>
public abstract class TemporaryFolderFixture
{
    /// <summary>This test's own folder.</summary>
    protected string Folder { get; private set; } = "";

    [SetUp]
    public void CreateFolder() => Folder = ImageFixtures.TemporaryFolder();

    [TearDown]
    public void RemoveFolder() => Directory.Delete(Folder, recursive: true);

    /// <summary>A path inside <see cref="Folder"/>.</summary>
    protected string PathOf(string name) => Path.Combine(Folder, name);
}
