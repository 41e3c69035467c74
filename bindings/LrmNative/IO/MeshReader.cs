namespace LrmNative.IO;

/// <summary>
/// What a mesh reader produces before it becomes a <see cref="Mesh"/>: positions, triangles and optional colours,
/// collected with checks that name the file.
/// </summary>
internal sealed class MeshBuilder(string path)
{
    /// <summary>
    /// Most vertices, and separately most triangles, a loaded mesh may have (2^27, about what a 1 GiB file holds). It
    /// also bounds what a small file can make a reader build: a glTF node tree may place one mesh many times.
    /// </summary>
    public const int MaxVertices = 1 << 27;

    /// <inheritdoc cref="MaxVertices"/>
    public const int MaxTriangles = 1 << 27;

    public List<float> Positions { get; } = [];
    public List<int> Triangles { get; } = [];
    public List<float>? Colors { get; set; }

    public int VertexCount => Positions.Count / 3;

    /// <summary>Refuses a mesh that would have more than <see cref="MaxVertices"/> vertices once <paramref name="more"/> are added.</summary>
    public void CheckVertexBudget(long more, string where)
    {
        if (more > MaxVertices - VertexCount)
        {
            throw new LrmFormatException($"{path}: {where}: {more} more vertices would take the mesh past the {MaxVertices} vertex limit");
        }
    }

    /// <summary>Adds a polygon (3 or more vertex indices) as a triangle fan.</summary>
    public void AddPolygon(ReadOnlySpan<int> corners, string where)
    {
        if (corners.Length < 3)
        {
            throw new LrmFormatException($"{path}: {where}: a face needs at least 3 vertices, got {corners.Length}");
        }
        if (corners.Length - 2 > MaxTriangles - Triangles.Count / 3)
        {
            throw new LrmFormatException($"{path}: {where}: the mesh would have more than {MaxTriangles} triangles");
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

    /// <summary>
    /// The bytes of the file at <paramref name="path"/> (<paramref name="what"/> names it in errors), at most
    /// <see cref="MaxFileBytes"/>. A file that reports no size is refused before it is opened: that is an empty file or
    /// something that is not a regular file (a FIFO would block the open, /dev/zero would never end).
    /// </summary>
    internal static byte[] ReadAll(string path, string what = "mesh file") => FileErrors.Reading(path, $"the {what}", () =>
    {
        var info = FileLength.Resolve(new FileInfo(path));
        if (!info.Exists)
        {
            throw new LrmFormatException($"{path}: {what} not found");
        }
        if (info.Length > MaxFileBytes)
        {
            throw new LrmFormatException($"{path}: the {what} has {info.Length} bytes, over the {MaxFileBytes} byte limit");
        }
        if (info.Length == 0)
        {
            throw new LrmFormatException($"{path}: the {what} is empty (or not a regular file)");
        }
        return File.ReadAllBytes(path);
    });
}
