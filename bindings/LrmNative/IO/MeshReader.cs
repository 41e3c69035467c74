namespace LrmNative.IO;

/// <summary>
/// What a mesh reader produces before it becomes a <see cref="Mesh"/>: positions, triangles and optional colours,
/// collected with checks that name the file.
/// </summary>
internal sealed class MeshBuilder(string path)
{
    public List<float> Positions { get; } = [];
    public List<int> Triangles { get; } = [];
    public List<float>? Colors { get; set; }

    public int VertexCount => Positions.Count / 3;

    /// <summary>Adds a polygon (3 or more vertex indices) as a triangle fan.</summary>
    public void AddPolygon(ReadOnlySpan<int> corners, string where)
    {
        if (corners.Length < 3)
        {
            throw new LrmFormatException($"{path}: {where}: a face needs at least 3 vertices, got {corners.Length}");
        }
        foreach (var corner in corners)
        {
            if ((uint)corner >= (uint)VertexCount)
            {
                throw new LrmFormatException($"{path}: {where}: vertex index {corner} is outside [0, {VertexCount})");
            }
        }
        for (var k = 1; k + 1 < corners.Length; k++)
        {
            Triangles.Add(corners[0]);
            Triangles.Add(corners[k]);
            Triangles.Add(corners[k + 1]);
        }
    }

    public Mesh Build()
    {
        for (var i = 0; i < Positions.Count; i++)
        {
            if (!float.IsFinite(Positions[i]))
            {
                throw new LrmFormatException($"{path}: vertex {i / 3} has a non-finite coordinate");
            }
        }
        if (Colors is { } colors)
        {
            for (var i = 0; i < colors.Count; i++)
            {
                // Readers deliver [0, 1]; clamp what a file may hold slightly outside (HDR colours, rounding).
                colors[i] = float.IsFinite(colors[i]) ? Math.Clamp(colors[i], 0f, 1f) : 0f;
            }
        }
        if (Triangles.Count == 0)
        {
            throw new LrmFormatException($"{path}: the mesh has no triangles");
        }
        return new Mesh(Positions.ToArray(), Triangles.ToArray(), Colors is null ? default : Colors.ToArray());
    }
}

/// <summary>Reads meshes by extension: binary/ASCII PLY, Wavefront OBJ (+MTL base colours), binary glTF (GLB).</summary>
internal static class MeshReader
{
    /// <summary>Largest mesh file accepted (1 GiB): a bigger one is refused before it is read.</summary>
    public const long MaxFileBytes = 1L << 30;

    public static Mesh Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var extension = Path.GetExtension(path).ToUpperInvariant();
        if (extension is not (".PLY" or ".OBJ" or ".GLB"))
        {
            throw new LrmInvalidArgumentException($"{path}: unknown mesh format '{Path.GetExtension(path)}' (readable: .ply, .obj, .glb)");
        }
        var bytes = ReadAll(path);
        return extension switch
        {
            ".PLY" => PlyReader.Read(bytes, path),
            ".OBJ" => ObjReader.Read(bytes, path),
            _ => GlbReader.Read(bytes, path),
        };
    }

    internal static byte[] ReadAll(string path)
    {
        try
        {
            var info = FileLength.Resolve(new FileInfo(path));
            if (!info.Exists)
            {
                throw new LrmFormatException($"{path}: mesh file not found");
            }
            if (info.Length > MaxFileBytes)
            {
                throw new LrmFormatException($"{path}: the mesh file has {info.Length} bytes, over the {MaxFileBytes} byte limit");
            }
            return File.ReadAllBytes(path);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new LrmFormatException($"{path}: cannot read the mesh file: {error.Message}");
        }
    }
}
