namespace LrmNative.Tests;

/// <summary>
/// Connected pieces of a mesh and dropping the small ones (<c>lrm reconstruct --min-piece</c>): a mesh of three
/// disjoint pieces (an octahedron of 8 triangles, a tetrahedron of 4, one lone triangle) with its vertices interleaved,
/// so the kept vertices must be renumbered and their colours and normals follow them.
/// </summary>
[TestFixture]
public sealed class MeshPieceTests
{
    // Vertices: the lone triangle's first, then octahedron and tetrahedron vertices interleaved.
    private static Mesh ThreePieces()
    {
        float[] lone = [5, 5, 5, 5.1f, 5, 5, 5, 5.1f, 5];
        float[] octahedron = [1, 0, 0, -1, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 1, 0, 0, -1];
        float[] tetrahedron = [3, 0, 0, 4, 0, 0, 3, 1, 0, 3, 0, 1];
        // Vertex order: lone 0..2, then o0 t0 o1 t1 o2 t2 o3 t3 o4 o5 → indices 3..12.
        var positions = new List<float>(lone);
        int[] octahedronIndex = [3, 5, 7, 9, 11, 12], tetrahedronIndex = [4, 6, 8, 10];
        var slots = new float[13 * 3];
        lone.CopyTo(slots, 0);
        for (var i = 0; i < 6; i++)
        {
            Array.Copy(octahedron, 3 * i, slots, 3 * octahedronIndex[i], 3);
        }
        for (var i = 0; i < 4; i++)
        {
            Array.Copy(tetrahedron, 3 * i, slots, 3 * tetrahedronIndex[i], 3);
        }
        int O(int i) => octahedronIndex[i];
        int T(int i) => tetrahedronIndex[i];
        int[] triangles =
        [
            T(0), T(2), T(1), // the tetrahedron's first face comes before the octahedron's
            O(0), O(2), O(4), O(2), O(1), O(4), O(1), O(3), O(4), O(3), O(0), O(4),
            0, 1, 2,
            O(2), O(0), O(5), O(1), O(2), O(5), O(3), O(1), O(5), O(0), O(3), O(5),
            T(0), T(1), T(3), T(1), T(2), T(3), T(2), T(0), T(3),
        ];
        var colors = Enumerable.Range(0, 13 * 3).Select(i => i / 39f).ToArray();
        return new Mesh(slots, triangles, colors).ComputeVertexNormals();
    }

    [Test]
    public void PiecesAreFoundLargestFirst()
    {
        var mesh = ThreePieces();
        var (pieceOfTriangle, sizes) = mesh.ConnectedPieces();
        Assert.That(sizes, Is.EqualTo(new[] { 8, 4, 1 }));
        Assert.That(pieceOfTriangle, Is.EqualTo(new[] { 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 1, 1 }));
    }

    [TestCase(0.2, 12, 10)]   // the lone triangle (1 < 0.2 · 8) goes
    [TestCase(0.5, 12, 10)]   // the tetrahedron has exactly half the octahedron's triangles: it stays
    [TestCase(0.6, 8, 6)]     // only the octahedron
    public void SmallPiecesGoAndTheRestKeepTheirVertices(double share, int triangles, int vertices)
    {
        var mesh = ThreePieces();
        var kept = mesh.WithoutSmallPieces(share);
        Assert.That(kept.TriangleCount, Is.EqualTo(triangles));
        Assert.That(kept.VertexCount, Is.EqualTo(vertices));
        Assert.That(kept.HasColors && kept.HasNormals);
        // Every kept triangle is an original triangle: the same corners with the same positions, colours and normals.
        var original = Corners(mesh).ToList();
        foreach (var corner in Corners(kept))
        {
            Assert.That(original, Has.Some.EqualTo(corner));
        }
        // The vertices keep their relative order (positions of the kept mesh appear in the original order).
        var positions = Enumerable.Range(0, mesh.VertexCount).Select(v => mesh.Positions.Slice(3 * v, 3).ToArray()).ToList();
        var indices = Enumerable.Range(0, kept.VertexCount)
            .Select(v => positions.FindIndex(p => p.SequenceEqual(kept.Positions.Slice(3 * v, 3).ToArray()))).ToList();
        Assert.That(indices, Is.Ordered.And.All.GreaterThanOrEqualTo(0));
        Assert.That(kept.Bounds.Max.X, Is.LessThan(5f), "the lone triangle at x = 5 is gone");
    }

    // Each triangle as the tuple of its three corners' (position, colour, normal) values.
    private static IEnumerable<string> Corners(Mesh mesh)
    {
        for (var t = 0; t < mesh.TriangleCount; t++)
        {
            yield return string.Join(" | ", Enumerable.Range(0, 3).Select(k =>
            {
                var v = mesh.Triangles[3 * t + k];
                return string.Join(",", mesh.Positions.Slice(3 * v, 3).ToArray()) + ";" + string.Join(",", mesh.Colors.Slice(3 * v, 3).ToArray())
                    + ";" + string.Join(",", mesh.Normals.Slice(3 * v, 3).ToArray());
            }));
        }
    }

    [Test]
    public void NothingToDropReturnsTheSameMeshAndBadSharesAreRefused()
    {
        var mesh = ThreePieces();
        Assert.That(mesh.WithoutSmallPieces(0), Is.SameAs(mesh));
        Assert.That(mesh.WithoutSmallPieces(0.1), Is.SameAs(mesh), "every piece has at least 0.1 of the largest");
        var empty = new Mesh([], []);
        Assert.That(empty.WithoutSmallPieces(0.5), Is.SameAs(empty));
        Assert.That(empty.ConnectedPieces().TrianglesPerPiece, Is.Empty);
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => mesh.WithoutSmallPieces(1.5))!.Message, Does.Contain("[0, 1]"));
        Assert.Throws<LrmInvalidArgumentException>(() => mesh.WithoutSmallPieces(double.NaN));
    }
}
