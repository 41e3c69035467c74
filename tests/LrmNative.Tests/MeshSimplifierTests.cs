using LrmNative.Backends;
using LrmNative.Cli;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// <see cref="Mesh.Simplified"/> (quadric edge collapse) against analytic shapes: marching-cubes spheres and tori come
/// down to the budget and stay closed, manifold, consistently wound and of the same genus, with vertices and triangle
/// centres on the analytic surface and the enclosed volume kept; a flat sheet keeps its border, area and plane; colours
/// that are a linear function of position stay that function; bad budgets and meshes that cannot shrink further.
/// </summary>
[TestFixture]
public sealed class MeshSimplifierTests : TemporaryFolderFixture
{
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    private const double SphereRadius = 0.7;
    private const double TorusMajor = 0.55, TorusMinor = 0.25;

    private static double SphereDistance(double x, double y, double z) => Math.Sqrt(x * x + y * y + z * z) - SphereRadius;

    private static double TorusDistance(double x, double y, double z)
    {
        var ring = Math.Sqrt(x * x + y * y) - TorusMajor;
        return Math.Sqrt(ring * ring + z * z) - TorusMinor;
    }

    // A linear colour field, inside [0, 1] over the box.
    private static (double R, double G, double B) ColorAt(double x, double y, double z) =>
        (0.5 + 0.4 * x, 0.5 - 0.3 * y, 0.5 + 0.2 * x + 0.2 * z);

    /// <summary>Marching cubes of the level set distance = 0 on an n³ grid over [−1, 1]³, with optional linear colours.</summary>
    private Mesh Extract(Func<double, double, double, double> distance, int n, bool colors = false)
    {
        using var field = Field(distance, n);
        var (vertices, triangles) = _backend.MarchingCubes(field, 0f, [-1, -1, -1, 1, 1, 1]);
        using (vertices)
        using (triangles)
        {
            var positions = vertices.AsSpan<float>().ToArray();
            return new Mesh(positions, triangles.AsSpan<int>(), colors ? Colors(positions) : []);
        }
    }

    /// <summary>−distance on an n³ grid over [−1, 1]³ indexed [z][y][x] (inside positive, as the density is).</summary>
    private static Tensor Field(Func<double, double, double, double> distance, int n)
    {
        var field = Tensor.Empty([n, n, n]);
        var span = field.AsSpan<float>();
        for (var z = 0; z < n; z++)
        {
            for (var y = 0; y < n; y++)
            {
                for (var x = 0; x < n; x++)
                {
                    // Inside positive, as the density is.
                    span[(z * n + y) * n + x] = (float)-distance(-1 + 2.0 * x / (n - 1), -1 + 2.0 * y / (n - 1), -1 + 2.0 * z / (n - 1));
                }
            }
        }
        return field;
    }

    private static float[] Colors(float[] positions)
    {
        var colors = new float[positions.Length];
        for (var v = 0; v < positions.Length / 3; v++)
        {
            var (r, g, b) = ColorAt(positions[3 * v], positions[3 * v + 1], positions[3 * v + 2]);
            (colors[3 * v], colors[3 * v + 1], colors[3 * v + 2]) = ((float)r, (float)g, (float)b);
        }
        return colors;
    }

    private static (double X, double Y, double Z) Vertex(Mesh mesh, int v) =>
        (mesh.Positions[3 * v], mesh.Positions[3 * v + 1], mesh.Positions[3 * v + 2]);

    private static ((double X, double Y, double Z) A, (double X, double Y, double Z) B, (double X, double Y, double Z) C) Corners(Mesh mesh, int t) =>
        (Vertex(mesh, mesh.Triangles[3 * t]), Vertex(mesh, mesh.Triangles[3 * t + 1]), Vertex(mesh, mesh.Triangles[3 * t + 2]));

    private static int AssertClosedManifold(Mesh mesh) => MeshTopology.AssertClosedManifold(mesh.Triangles, mesh.VertexCount);

    private static double SignedVolume(Mesh mesh) => MeshTopology.SignedVolume(mesh.Positions, mesh.Triangles);

    private static double Area(Mesh mesh)
    {
        var area = 0.0;
        for (var t = 0; t < mesh.TriangleCount; t++)
        {
            var ((ax, ay, az), (bx, by, bz), (cx, cy, cz)) = Corners(mesh, t);
            double ux = bx - ax, uy = by - ay, uz = bz - az, wx = cx - ax, wy = cy - ay, wz = cz - az;
            double nx = uy * wz - uz * wy, ny = uz * wx - ux * wz, nz = ux * wy - uy * wx;
            area += Math.Sqrt(nx * nx + ny * ny + nz * nz) / 2;
        }
        return area;
    }

    /// <summary>Largest |distance| of the vertices and of the triangle centres from the analytic surface.</summary>
    private static (double Vertices, double Centres) SurfaceError(Mesh mesh, Func<double, double, double, double> distance)
    {
        var vertices = 0.0;
        for (var v = 0; v < mesh.VertexCount; v++)
        {
            var (x, y, z) = Vertex(mesh, v);
            vertices = Math.Max(vertices, Math.Abs(distance(x, y, z)));
        }
        var centres = 0.0;
        for (var t = 0; t < mesh.TriangleCount; t++)
        {
            var ((ax, ay, az), (bx, by, bz), (cx, cy, cz)) = Corners(mesh, t);
            centres = Math.Max(centres, Math.Abs(distance((ax + bx + cx) / 3, (ay + by + cy) / 3, (az + bz + cz) / 3)));
        }
        return (vertices, centres);
    }

    [Test]
    public void ASphereComesDownToTheBudgetClosedAndOnTheSurface()
    {
        var sphere = Extract(SphereDistance, 64);
        Assert.That(sphere.TriangleCount, Is.GreaterThan(15_000), "the test needs a finely tessellated sphere");
        Assert.That(AssertClosedManifold(sphere), Is.EqualTo(2));

        var simple = sphere.Simplified(1000);

        // Each collapse of an inner edge removes two triangles, so the budget is met exactly or one under.
        Assert.That(simple.TriangleCount, Is.InRange(999, 1000));
        Assert.That(AssertClosedManifold(simple), Is.EqualTo(2), "still a sphere (genus 0)");
        // Chords of ~0.12 on a radius of 0.7 sag by ~0.003; the quadric puts vertices a little outside, centres inside
        // (the 64³ marching-cubes input is within 0.0005 of the sphere).
        var (vertexError, centreError) = SurfaceError(simple, SphereDistance);
        Assert.That(vertexError, Is.LessThan(0.006), "vertices on the analytic sphere");
        Assert.That(centreError, Is.LessThan(0.008), "triangle centres on the analytic sphere");
        var exact = 4.0 / 3 * Math.PI * Math.Pow(SphereRadius, 3);
        Assert.That(SignedVolume(simple), Is.EqualTo(exact).Within(1).Percent, "outward winding and the enclosed volume kept");
        Assert.That(simple.Bounds.Size.X, Is.EqualTo(2 * SphereRadius).Within(0.02));
    }

    [Test]
    public void ATorusKeepsItsHole()
    {
        var torus = Extract(TorusDistance, 72);
        Assert.That(AssertClosedManifold(torus), Is.EqualTo(0), "the marching-cubes torus has genus 1");

        var simple = torus.Simplified(600);

        Assert.That(simple.TriangleCount, Is.InRange(599, 600));
        Assert.That(AssertClosedManifold(simple), Is.EqualTo(0), "still genus 1: the hole is not closed");
        var (vertexError, centreError) = SurfaceError(simple, TorusDistance);
        Assert.That(vertexError, Is.LessThan(0.01));
        Assert.That(centreError, Is.LessThan(0.015));
        var exact = 2 * Math.PI * Math.PI * TorusMajor * TorusMinor * TorusMinor;
        Assert.That(SignedVolume(simple), Is.EqualTo(exact).Within(2).Percent);
    }

    [Test]
    public void AClosedSurfaceStopsAtTheFewestTrianglesItsTopologyAllows()
    {
        var sphere = Extract(SphereDistance, 24);

        var smallest = sphere.Simplified(1);

        // A closed genus-0 piece cannot go below a tetrahedron without a collapse breaking the link condition.
        Assert.That(AssertClosedManifold(smallest), Is.EqualTo(2));
        Assert.That(smallest.TriangleCount, Is.EqualTo(4), "a tetrahedron");
        Assert.That(SignedVolume(smallest), Is.GreaterThan(0), "still wound outward");
    }

    /// <summary>An n × n grid of squares over [0, 1]² at height z, two triangles each, wound towards +z.</summary>
    private static Mesh Sheet(int n, double z, bool colors)
    {
        var positions = new List<float>();
        for (var j = 0; j <= n; j++)
        {
            for (var i = 0; i <= n; i++)
            {
                positions.AddRange([(float)i / n, (float)j / n, (float)z]);
            }
        }
        var triangles = new List<int>();
        for (var j = 0; j < n; j++)
        {
            for (var i = 0; i < n; i++)
            {
                int a = j * (n + 1) + i, b = a + 1, c = a + n + 1, d = c + 1;
                triangles.AddRange([a, b, d, a, d, c]);
            }
        }
        var array = positions.ToArray();
        return new Mesh(array, [.. triangles], colors ? Colors(array) : []);
    }

    [Test]
    public void AFlatSheetKeepsItsBorderPlaneAreaAndLinearColours()
    {
        var sheet = Sheet(16, 0.25, colors: true);

        var simple = sheet.Simplified(2);

        Assert.That(simple.TriangleCount, Is.EqualTo(2), "a flat square needs two triangles");
        Assert.That(simple.VertexCount, Is.EqualTo(4));
        Assert.That(Area(simple), Is.EqualTo(1).Within(1e-6), "the border stays: the area is the square's");
        Assert.That(simple.Bounds.Min.X, Is.EqualTo(0f).Within(1e-6));
        Assert.That(simple.Bounds.Max.Y, Is.EqualTo(1f).Within(1e-6));
        for (var v = 0; v < simple.VertexCount; v++)
        {
            var (x, y, z) = Vertex(simple, v);
            Assert.That(z, Is.EqualTo(0.25).Within(1e-6), $"vertex {v} stays in the plane");
            Assert.That(Math.Min(x, 1 - x) < 1e-6 && Math.Min(y, 1 - y) < 1e-6, Is.True, $"vertex {v} at ({x}, {y}) is a corner");
            var (r, g, b) = ColorAt(x, y, z);
            Assert.That(new[] { simple.Colors[3 * v], simple.Colors[3 * v + 1], simple.Colors[3 * v + 2] },
                Is.EqualTo(new[] { (float)r, (float)g, (float)b }).Within(1e-5), $"vertex {v}: colours interpolated along edges stay linear");
        }
        for (var t = 0; t < simple.TriangleCount; t++)
        {
            var ((ax, ay, _), (bx, by, _), (cx, cy, _)) = Corners(simple, t);
            Assert.That((bx - ax) * (cy - ay) - (by - ay) * (cx - ax), Is.GreaterThan(0), $"triangle {t} still faces +z");
        }
    }

    [Test]
    public void ColoursFollowTheSurfaceAndNormalsAreRecomputed()
    {
        var sphere = Extract(SphereDistance, 48, colors: true).ComputeVertexNormals();

        var simple = sphere.Simplified(800);

        Assert.That(simple.HasColors && simple.HasNormals, Is.True);
        var worstColour = 0.0;
        for (var v = 0; v < simple.VertexCount; v++)
        {
            var (x, y, z) = Vertex(simple, v);
            var (r, g, b) = ColorAt(x, y, z);
            worstColour = Math.Max(worstColour, Math.Max(Math.Abs(simple.Colors[3 * v] - r),
                Math.Max(Math.Abs(simple.Colors[3 * v + 1] - g), Math.Abs(simple.Colors[3 * v + 2] - b))));
            var normal = new System.Numerics.Vector3(simple.Normals[3 * v], simple.Normals[3 * v + 1], simple.Normals[3 * v + 2]);
            var radial = System.Numerics.Vector3.Normalize(new System.Numerics.Vector3((float)x, (float)y, (float)z));
            Assert.That(normal.Length(), Is.EqualTo(1f).Within(1e-5));
            Assert.That(System.Numerics.Vector3.Dot(normal, radial), Is.GreaterThan(0.95f), $"vertex {v}: the normal points out of the sphere");
        }
        // The merged vertex moves a little off the edge it came from (the quadric's best point), so the colour
        // interpolated on the edge is off the linear field by at most the gradient (0.4) times that offset.
        Assert.That(worstColour, Is.LessThan(0.01));
    }

    [Test]
    public void TheSameMeshGivesTheSameResult()
    {
        var sphere = Extract(SphereDistance, 32, colors: true);

        var first = sphere.Simplified(500);
        var second = sphere.Simplified(500);

        Assert.That(second.Positions.ToArray(), Is.EqualTo(first.Positions.ToArray()));
        Assert.That(second.Triangles.ToArray(), Is.EqualTo(first.Triangles.ToArray()));
        Assert.That(second.Colors.ToArray(), Is.EqualTo(first.Colors.ToArray()));
    }

    [Test]
    public void AMeshWithinTheBudgetIsReturnedAsItIsAndABadBudgetIsRefused()
    {
        var sphere = Extract(SphereDistance, 16);

        Assert.That(sphere.Simplified(sphere.TriangleCount), Is.SameAs(sphere));
        var empty = new Mesh([], []);
        Assert.That(empty.Simplified(10), Is.SameAs(empty));
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => sphere.Simplified(0))!.Message, Does.Contain("at least 1"));
        Assert.Throws<LrmInvalidArgumentException>(() => sphere.Simplified(-5));
    }

    [Test]
    public void NonManifoldEdgesStayAndTheRestSimplifies()
    {
        // Three sheets sharing the edge x = 0.5 of the middle one: a fin of three triangles on one edge.
        var sheet = Sheet(8, 0, colors: false);
        var positions = sheet.Positions.ToArray().ToList();
        var triangles = sheet.Triangles.ToArray().ToList();
        // A fan standing up from the middle row's edge (0.5, 0.5)–(0.5, 0.625): a third triangle on an inner edge.
        int p = 4 * 9 + 4, q = 5 * 9 + 4;
        positions.AddRange([0.5f, 0.56f, 0.3f]);
        triangles.AddRange([p, q, positions.Count / 3 - 1]);
        var mesh = new Mesh(positions.ToArray(), triangles.ToArray());

        var simple = mesh.Simplified(20);

        // The fin's three vertices are locked: all three stay at their places.
        foreach (var (x, y, z) in new[] { (0.5, 0.5, 0.0), (0.5, 0.625, 0.0), (0.5, 0.56, 0.3) })
        {
            var found = Enumerable.Range(0, simple.VertexCount).Any(v =>
                Math.Abs(Vertex(simple, v).X - x) < 1e-6 && Math.Abs(Vertex(simple, v).Y - y) < 1e-6 && Math.Abs(Vertex(simple, v).Z - z) < 1e-6);
            Assert.That(found, Is.True, $"the vertex at ({x}, {y}, {z}) on the non-manifold edge stays");
        }
        Assert.That(mesh.TriangleCount, Is.EqualTo(129));
        Assert.That(simple.TriangleCount, Is.InRange(19, 20));
        Assert.That(Area(simple), Is.EqualTo(Area(mesh)).Within(1e-5), "the flat sheet's border and the fin stay in place");
    }

    [Test]
    public void TrianglesThatRepeatAVertexAndUnusedVerticesAreDropped()
    {
        var sheet = Sheet(4, 0, colors: false);
        var positions = sheet.Positions.ToArray().Concat(new[] { 5f, 5f, 5f }).ToArray(); // a vertex no triangle uses
        var triangles = sheet.Triangles.ToArray().Concat(new[] { 0, 0, 1, 3, 7, 7 }).ToArray();
        var mesh = new Mesh(positions, triangles);

        var simple = mesh.Simplified(mesh.TriangleCount - 1);

        Assert.That(simple.Bounds.Max.X, Is.EqualTo(1f), "the unused vertex at (5, 5, 5) is gone");
        for (var t = 0; t < simple.TriangleCount; t++)
        {
            var corners = simple.Triangles.Slice(3 * t, 3).ToArray();
            Assert.That(corners.Distinct().Count(), Is.EqualTo(3), $"triangle {t} repeats a vertex");
        }
        Assert.That(Area(simple), Is.EqualTo(1).Within(1e-6));
        Assert.That(simple.TriangleCount, Is.LessThanOrEqualTo(mesh.TriangleCount - 2));
    }

    [Test]
    public void CancellationStopsTheWork()
    {
        var sphere = Extract(SphereDistance, 48);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.Throws<OperationCanceledException>(() => sphere.Simplified(100, cancelled.Token));
    }

    [Test]
    public void TheMeshCommandWritesTheSimplifiedSurface()
    {
        var volume = PathOf("sphere.npy");
        using (var field = Field(SphereDistance, 40))
        {
            Npy.Write(volume, field);
        }
        var full = Extract(SphereDistance, 40).ComputeVertexNormals();
        var expected = full.Simplified(400);
        using var log = new StringWriter();

        MeshCommand.Run(volume, 0f, PathOf("sphere.ply"), [-1, -1, -1, 1, 1, 1], log, maxTriangles: 400);

        var written = Mesh.Load(PathOf("sphere.ply"));
        Assert.That(written.Triangles.ToArray(), Is.EqualTo(expected.Triangles.ToArray()));
        Assert.That(written.Positions.ToArray(), Is.EqualTo(expected.Positions.ToArray()));
        Assert.That(written.TriangleCount, Is.InRange(399, 400));
        Assert.That(AssertClosedManifold(written), Is.EqualTo(2));
        Assert.That(log.ToString(), Does.Contain($"simplified from {full.TriangleCount} triangles"));
        Assert.That(Assert.Throws<LrmInvalidArgumentException>(() =>
            MeshCommand.Run(volume, 0f, PathOf("bad.ply"), [-1, -1, -1, 1, 1, 1], log, maxTriangles: -3))!.Message, Does.Contain("--max-triangles"));
        Assert.That(File.Exists(PathOf("bad.ply")), Is.False);
    }
}
