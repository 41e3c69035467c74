using System.Numerics;
using LrmNative.IO;

namespace LrmNative;

/// <summary>The axis-aligned box around a mesh's vertices, in the mesh's own (z-up) coordinates.</summary>
/// <param name="Min">Smallest x, y and z over all vertices.</param>
/// <param name="Max">Largest x, y and z over all vertices.</param>
public readonly record struct MeshBounds(Vector3 Min, Vector3 Max)
{
    /// <summary>Extent along each axis (<see cref="Max"/> − <see cref="Min"/>).</summary>
    public Vector3 Size => Max - Min;

    /// <summary>Middle of the box.</summary>
    public Vector3 Center => (Min + Max) * 0.5f;
}

/// <summary>
/// A triangle mesh: vertex positions (V, 3) fp32, triangles (T, 3) int32 vertex indices wound counter-clockwise
/// seen from outside, optional per-vertex RGB colours (V, 3) in [0, 1] and optional unit normals (V, 3); all arrays
/// flattened row-major. Coordinates are the engine's world: <b>z up</b>, as in OpenLRM and Blender; a reconstruction's
/// mesh lies in the object box [−1, 1]³, the input camera looking from −y (so the photo's left is −x). Units are the
/// model's normalised ones, with no real-world scale: glTF reads them as metres (an object up to 2 m across), so scale
/// the asset to its real size in your engine. Colours are <b>sRGB-encoded</b>, like image pixels (what the NeRF
/// outputs): PLY and OBJ store them so, GLB converts them to glTF's linear vertex colours.
/// Saves binary PLY, OBJ (both keep z-up as is) and GLB (glTF 2.0, converted to glTF's y-up, see
/// <see cref="SaveGlb"/>); every file is written atomically, so a reader sees the old file or the complete new one.
/// The same mesh always gives the same bytes.
/// </summary>
/// <example>
/// <code>
/// var mesh = new Mesh(positions, triangles, colors);
/// mesh.ComputeVertexNormals();
/// mesh.Save("chair.glb"); // or .ply / .obj
/// </code>
/// </example>
public sealed class Mesh
{
    private readonly float[] _positions;
    private readonly int[] _triangles;
    private readonly float[]? _colors;
    private float[]? _normals;

    /// <summary>
    /// A mesh from flattened arrays (copied). <paramref name="colors"/> and <paramref name="normals"/> may be empty for
    /// "none"; otherwise they need one RGB / xyz triple per vertex. Normals are normalised to unit length.
    /// </summary>
    /// <param name="positions">(V, 3) vertex positions x, y, z; finite.</param>
    /// <param name="triangles">(T, 3) vertex indices in [0, V), counter-clockwise seen from outside.</param>
    /// <param name="colors">(V, 3) RGB in [0, 1], or empty.</param>
    /// <param name="normals">(V, 3) finite, non-zero normals, or empty.</param>
    /// <exception cref="LrmShapeException">An array length is not a multiple of 3, or colours/normals do not match the vertex count.</exception>
    /// <exception cref="LrmInvalidArgumentException">A non-finite position, an index out of range, a colour outside [0, 1], or a zero or non-finite normal.</exception>
    public Mesh(ReadOnlySpan<float> positions, ReadOnlySpan<int> triangles, ReadOnlySpan<float> colors = default,
        ReadOnlySpan<float> normals = default)
    {
        if (positions.Length % 3 != 0)
        {
            throw new LrmShapeException($"mesh: positions must be (V, 3) floats, got {positions.Length} values (not a multiple of 3)");
        }
        if (triangles.Length % 3 != 0)
        {
            throw new LrmShapeException($"mesh: triangles must be (T, 3) indices, got {triangles.Length} values (not a multiple of 3)");
        }
        var vertexCount = positions.Length / 3;
        if (!colors.IsEmpty && colors.Length != positions.Length)
        {
            throw new LrmShapeException($"mesh: colours must be (V, 3) = {positions.Length} values for {vertexCount} vertices, got {colors.Length}");
        }
        if (!normals.IsEmpty && normals.Length != positions.Length)
        {
            throw new LrmShapeException($"mesh: normals must be (V, 3) = {positions.Length} values for {vertexCount} vertices, got {normals.Length}");
        }
        for (var i = 0; i < positions.Length; i++)
        {
            if (!float.IsFinite(positions[i]))
            {
                var v = i / 3;
                throw new LrmInvalidArgumentException(
                    $"mesh: vertex {v} has a non-finite position ({positions[3 * v]}, {positions[3 * v + 1]}, {positions[3 * v + 2]})");
            }
        }
        for (var i = 0; i < triangles.Length; i++)
        {
            if ((uint)triangles[i] >= (uint)vertexCount)
            {
                throw new LrmInvalidArgumentException(
                    $"mesh: triangle {i / 3} refers to vertex {triangles[i]}, outside [0, {vertexCount}) for {vertexCount} vertices");
            }
        }
        for (var i = 0; i < colors.Length; i++)
        {
            if (!(colors[i] >= 0f && colors[i] <= 1f))
            {
                throw new LrmInvalidArgumentException($"mesh: vertex {i / 3} has colour component {colors[i]}, outside [0, 1]");
            }
        }
        _positions = positions.ToArray();
        _triangles = triangles.ToArray();
        _colors = colors.IsEmpty ? null : colors.ToArray();
        if (!normals.IsEmpty)
        {
            var unit = normals.ToArray();
            for (var v = 0; v < vertexCount; v++)
            {
                var n = new Vector3(unit[3 * v], unit[3 * v + 1], unit[3 * v + 2]);
                var length = n.Length();
                if (!float.IsFinite(length) || length == 0f)
                {
                    throw new LrmInvalidArgumentException($"mesh: vertex {v} has normal ({n.X}, {n.Y}, {n.Z}), which cannot be normalised");
                }
                Store(unit, v, n / length);
            }
            _normals = unit;
        }
        Bounds = ComputeBounds(_positions);
    }

    /// <summary>Number of vertices V.</summary>
    public int VertexCount => _positions.Length / 3;

    /// <summary>Number of triangles T.</summary>
    public int TriangleCount => _triangles.Length / 3;

    /// <summary>True when there are no triangles (such a mesh saves as PLY/OBJ but not as GLB).</summary>
    public bool IsEmpty => _triangles.Length == 0;

    /// <summary>Vertex positions (V, 3), z up.</summary>
    public ReadOnlySpan<float> Positions => _positions;

    /// <summary>Triangle vertex indices (T, 3), counter-clockwise seen from outside.</summary>
    public ReadOnlySpan<int> Triangles => _triangles;

    /// <summary>Per-vertex RGB (V, 3) in [0, 1], sRGB-encoded; empty when <see cref="HasColors"/> is false.</summary>
    public ReadOnlySpan<float> Colors => _colors;

    /// <summary>Per-vertex unit normals (V, 3); empty when <see cref="HasNormals"/> is false.</summary>
    public ReadOnlySpan<float> Normals => _normals;

    /// <summary>True when the mesh has per-vertex colours.</summary>
    public bool HasColors => _colors is not null;

    /// <summary>True when the mesh has per-vertex normals (given, or from <see cref="ComputeVertexNormals"/>).</summary>
    public bool HasNormals => _normals is not null;

    /// <summary>The box around all vertices (both corners zero for a mesh without vertices).</summary>
    public MeshBounds Bounds { get; }

    /// <summary>
    /// Sets (or replaces) the normals with area-weighted vertex normals: each vertex gets the normalised sum of its
    /// triangles' face normals weighted by their areas (the sum of unnormalised cross products), so large faces
    /// dominate slivers. A vertex used by no triangle of non-zero area gets +Z. Returns this mesh.
    /// </summary>
    public Mesh ComputeVertexNormals()
    {
        _normals = AreaWeightedNormals(_positions, _triangles);
        return this;
    }

    /// <summary>
    /// Connected pieces (triangles joined through shared vertices) and their triangle counts, largest first: for each
    /// triangle the index of its piece in that order.
    /// </summary>
    public (int[] PieceOfTriangle, int[] TrianglesPerPiece) ConnectedPieces()
    {
        var parent = new int[VertexCount];
        for (var v = 0; v < parent.Length; v++)
        {
            parent[v] = v;
        }
        int Find(int v)
        {
            while (parent[v] != v)
            {
                parent[v] = parent[parent[v]];
                v = parent[v];
            }
            return v;
        }
        for (var t = 0; t < TriangleCount; t++)
        {
            int a = Find(_triangles[3 * t]), b = Find(_triangles[3 * t + 1]), c = Find(_triangles[3 * t + 2]);
            parent[b] = a;
            parent[Find(c)] = a;
        }
        // Pieces numbered by first appearance, then renumbered largest first (ties: first appearance).
        var pieceOfRoot = new Dictionary<int, int>();
        var pieceOfTriangle = new int[TriangleCount];
        var counts = new List<int>();
        for (var t = 0; t < TriangleCount; t++)
        {
            var root = Find(_triangles[3 * t]);
            if (!pieceOfRoot.TryGetValue(root, out var piece))
            {
                piece = counts.Count;
                pieceOfRoot[root] = piece;
                counts.Add(0);
            }
            counts[piece]++;
            pieceOfTriangle[t] = piece;
        }
        var order = Enumerable.Range(0, counts.Count).OrderByDescending(p => counts[p]).ThenBy(p => p).ToArray();
        var rank = new int[order.Length];
        for (var r = 0; r < order.Length; r++)
        {
            rank[order[r]] = r;
        }
        for (var t = 0; t < pieceOfTriangle.Length; t++)
        {
            pieceOfTriangle[t] = rank[pieceOfTriangle[t]];
        }
        return (pieceOfTriangle, [.. order.Select(p => counts[p])]);
    }

    /// <summary>
    /// This mesh without its small disconnected pieces ("floaters"): a piece (triangles joined through shared vertices)
    /// stays when it has at least <paramref name="minShare"/> of the largest piece's triangles; vertices no kept triangle
    /// uses go, the rest keep their order, colours and normals. Returns this mesh when nothing is dropped.
    /// </summary>
    /// <param name="minShare">In [0, 1]; 0 keeps every piece, 1 only pieces as large as the largest.</param>
    public Mesh WithoutSmallPieces(double minShare)
    {
        if (!(minShare >= 0 && minShare <= 1))
        {
            throw new LrmInvalidArgumentException($"mesh: the smallest piece to keep must be a share of the largest in [0, 1], got {minShare}");
        }
        if (IsEmpty || minShare == 0)
        {
            return this;
        }
        var (pieceOfTriangle, sizes) = ConnectedPieces();
        var keepPieces = sizes.Count(size => size >= minShare * sizes[0]);
        if (keepPieces == sizes.Length)
        {
            return this;
        }
        return Compacted(_positions, _triangles, _colors, _normals, t => pieceOfTriangle[t] < keepPieces);
    }

    /// <summary>
    /// The triangles (T, 3) for which <paramref name="keep"/> holds, in their order, over the vertices they use, in
    /// theirs; positions, colours and normals (each (V, 3) or null) of those vertices are copied as they are (the
    /// constructor would normalise unit normals again, changing last bits).
    /// </summary>
    internal static Mesh Compacted(float[] positions, int[] triangles, float[]? colors, float[]? normals, Func<int, bool> keep)
    {
        var newIndex = new int[positions.Length / 3];
        Array.Fill(newIndex, -1);
        var kept = new List<int>(triangles.Length);
        for (var t = 0; t < triangles.Length / 3; t++)
        {
            if (keep(t))
            {
                kept.AddRange(triangles.AsSpan(3 * t, 3));
                foreach (var v in triangles.AsSpan(3 * t, 3))
                {
                    newIndex[v] = 0;
                }
            }
        }
        var vertices = 0;
        for (var v = 0; v < newIndex.Length; v++)
        {
            if (newIndex[v] == 0)
            {
                newIndex[v] = vertices++;
            }
        }
        for (var i = 0; i < kept.Count; i++)
        {
            kept[i] = newIndex[kept[i]];
        }
        float[] Compact(float[]? values)
        {
            if (values is null)
            {
                return [];
            }
            var result = new float[3 * vertices];
            for (var v = 0; v < newIndex.Length; v++)
            {
                if (newIndex[v] >= 0)
                {
                    Array.Copy(values, 3 * v, result, 3 * newIndex[v], 3);
                }
            }
            return result;
        }
        var mesh = new Mesh(Compact(positions), [.. kept], Compact(colors));
        mesh._normals = normals is null ? null : Compact(normals);
        return mesh;
    }

    /// <summary>
    /// This mesh simplified to at most <paramref name="maxTriangles"/> triangles by quadric edge collapse (Garland and
    /// Heckbert 1997), e.g. a 384³ reconstruction's few hundred thousand triangles down to a game asset's few thousand.
    /// Topology is kept (a closed surface stays closed with the same genus; open borders stay in place), so the result
    /// has more triangles than <paramref name="maxTriangles"/> when no further collapse keeps the topology and every
    /// triangle's facing (a closed genus-0 piece goes down to a tetrahedron). Colours are interpolated along collapsed
    /// edges; normals, when this mesh has them, are recomputed area-weighted. Triangles that repeat a vertex and
    /// vertices no triangle uses are dropped. Deterministic. Returns this mesh when it has no more than
    /// <paramref name="maxTriangles"/> triangles already.
    /// </summary>
    /// <param name="maxTriangles">The triangle budget, at least 1.</param>
    /// <param name="cancellation">Checked every 1,024 collapses.</param>
    /// <exception cref="LrmInvalidArgumentException"><paramref name="maxTriangles"/> is below 1.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled.</exception>
    public Mesh Simplified(int maxTriangles, CancellationToken cancellation = default)
    {
        if (maxTriangles < 1)
        {
            throw new LrmInvalidArgumentException($"mesh: the triangle budget must be at least 1, got {maxTriangles}");
        }
        return TriangleCount <= maxTriangles ? this : MeshSimplifier.Simplify(this, maxTriangles, cancellation);
    }

    /// <summary>
    /// Writes a binary little-endian PLY (1.0) atomically: x, y, z float; nx, ny, nz float when the mesh has normals;
    /// red, green, blue uchar (colour × 255, rounded) when it has colours; faces as a uchar count and int indices.
    /// Coordinates stay z-up as in the engine. The folder is created if needed.
    /// </summary>
    /// <exception cref="LrmFormatException">The file cannot be written (the message names it and says why).</exception>
    public void SavePly(string path) => Write(path, "PLY", stream => PlyWriter.Write(stream, this));

    /// <summary>
    /// Writes a Wavefront OBJ atomically: <c>v x y z r g b</c> lines (the vertex-colour extension MeshLab and Blender
    /// read; plain <c>v x y z</c> without colours), <c>vn</c> lines when the mesh has normals, and 1-based
    /// <c>f a//a b//b c//c</c> faces (<c>f a b c</c> without normals). Numbers use the invariant culture and the
    /// shortest text that reads back to the same float. Coordinates stay z-up as in the engine. The folder is
    /// created if needed.
    /// </summary>
    /// <exception cref="LrmFormatException">The file cannot be written (the message names it and says why).</exception>
    public void SaveObj(string path) => Write(path, "OBJ", stream => ObjWriter.Write(stream, this));

    /// <summary>
    /// Writes a binary glTF 2.0 (GLB) atomically: one mesh with one triangle primitive holding POSITION (with exact
    /// min/max), NORMAL (the mesh's normals, or area-weighted ones computed for the file when it has none), COLOR_0
    /// (VEC3 float, when the mesh has colours: the sRGB colours converted to linear, as glTF's vertex colours are, so
    /// viewers show the colours of the PLY/OBJ and not washed-out ones) and UNSIGNED_INT indices, one node, one scene
    /// and a plain non-metallic, fully rough material so viewers show the vertex colours. Units: see <see cref="Mesh"/>.
    /// <para>
    /// glTF is y-up while the engine is z-up, so positions and normals are rotated by −90° about x:
    /// (x, y, z) → (x, z, −y). A rotation keeps the triangle winding, so faces still point outward and
    /// "up" in the engine is "up" in any glTF viewer or game engine. PLY and OBJ are not converted.
    /// </para>
    /// </summary>
    /// <exception cref="LrmInvalidArgumentException">The mesh has no triangles (glTF forbids empty accessors).</exception>
    /// <exception cref="LrmUnsupportedException">The binary data would exceed GLB's 4 GiB limit (or 2 GiB in memory).</exception>
    /// <exception cref="LrmFormatException">The file cannot be written (the message names it and says why).</exception>
    public void SaveGlb(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var glb = GlbWriter.Build(this, path);
        Write(path, "GLB", stream => stream.Write(glb));
    }

    /// <summary>
    /// Reads a mesh by the file's extension (any case): <c>.ply</c> (ASCII or binary, vertex colours), <c>.obj</c>
    /// (vertex colours, or material diffuse colours from .mtl files in the OBJ's folder) or <c>.glb</c> (glTF 2.0: node
    /// transforms, COLOR_0 × baseColorFactor, linear in glTF, converted to sRGB; converted from glTF's y-up to the engine's z-up). Polygons become triangle
    /// fans. Normals in the file are not kept (<see cref="ComputeVertexNormals"/> makes them). Files over 1 GiB and
    /// meshes over 2^27 vertices or triangles are refused.
    /// </summary>
    /// <exception cref="LrmFormatException">
    /// The file is missing, empty, unreadable, too large, malformed or has no triangles (the message names it).
    /// </exception>
    /// <exception cref="LrmInvalidArgumentException">Another extension.</exception>
    public static Mesh Load(string path) => MeshReader.Load(path);

    /// <summary>Saves by the file's extension: <c>.glb</c>, <c>.ply</c> or <c>.obj</c> (any case).</summary>
    /// <exception cref="LrmInvalidArgumentException">Another extension, or see the chosen writer.</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        switch (Path.GetExtension(path).ToUpperInvariant())
        {
            case ".GLB":
                SaveGlb(path);
                break;
            case ".PLY":
                SavePly(path);
                break;
            case ".OBJ":
                SaveObj(path);
                break;
            default:
                throw new LrmInvalidArgumentException($"{path}: unknown mesh format '{Path.GetExtension(path)}' (expected .glb, .ply or .obj)");
        }
    }

    /// <summary>The counts, e.g. "Mesh: 1200 vertices, 2396 triangles, colours, normals".</summary>
    public override string ToString() =>
        $"Mesh: {VertexCount} vertices, {TriangleCount} triangles{(HasColors ? ", colours" : "")}{(HasNormals ? ", normals" : "")}";

    /// <summary>Area-weighted unit vertex normals (V, 3); +Z where a vertex touches no triangle of non-zero area.</summary>
    internal static float[] AreaWeightedNormals(ReadOnlySpan<float> positions, ReadOnlySpan<int> triangles)
    {
        // Summed in double so the result does not depend on how many small faces meet at a vertex.
        var sums = new double[positions.Length];
        for (var t = 0; t < triangles.Length; t += 3)
        {
            int a = triangles[t], b = triangles[t + 1], c = triangles[t + 2];
            var pa = Load(positions, a);
            var ab = Load(positions, b) - pa;
            var ac = Load(positions, c) - pa;
            // |ab × ac| is twice the triangle's area: the weight comes for free.
            var nx = ab.Y * ac.Z - ab.Z * ac.Y;
            var ny = ab.Z * ac.X - ab.X * ac.Z;
            var nz = ab.X * ac.Y - ab.Y * ac.X;
            foreach (var v in (ReadOnlySpan<int>)[a, b, c])
            {
                sums[3 * v] += nx;
                sums[3 * v + 1] += ny;
                sums[3 * v + 2] += nz;
            }
        }
        var normals = new float[positions.Length];
        for (var v = 0; v < normals.Length / 3; v++)
        {
            double x = sums[3 * v], y = sums[3 * v + 1], z = sums[3 * v + 2];
            var length = Math.Sqrt(x * x + y * y + z * z);
            if (length > 0 && double.IsFinite(length))
            {
                normals[3 * v] = (float)(x / length);
                normals[3 * v + 1] = (float)(y / length);
                normals[3 * v + 2] = (float)(z / length);
            }
            else
            {
                normals[3 * v + 2] = 1f;
            }
        }
        return normals;
    }

    private static Vector3D Load(ReadOnlySpan<float> values, int vertex) =>
        new(values[3 * vertex], values[3 * vertex + 1], values[3 * vertex + 2]);

    private static void Store(float[] values, int vertex, Vector3 value)
    {
        values[3 * vertex] = value.X;
        values[3 * vertex + 1] = value.Y;
        values[3 * vertex + 2] = value.Z;
    }

    private static MeshBounds ComputeBounds(float[] positions)
    {
        if (positions.Length == 0)
        {
            return default;
        }
        var min = new Vector3(float.PositiveInfinity);
        var max = new Vector3(float.NegativeInfinity);
        for (var i = 0; i < positions.Length; i += 3)
        {
            var p = new Vector3(positions[i], positions[i + 1], positions[i + 2]);
            min = Vector3.Min(min, p);
            max = Vector3.Max(max, p);
        }
        return new MeshBounds(min, max);
    }

    // File-system failures come back from AtomicFile as one LrmFormatException naming the path and the format.
    private static void Write(string path, string format, Action<Stream> write) => AtomicFile.Write(path, write, $"{format} mesh");

    // Double-precision 3-vector for the normal sums (System.Numerics has only float vectors).
    private readonly record struct Vector3D(double X, double Y, double Z)
    {
        public static Vector3D operator -(Vector3D p, Vector3D q) => new(p.X - q.X, p.Y - q.Y, p.Z - q.Z);
    }
}
