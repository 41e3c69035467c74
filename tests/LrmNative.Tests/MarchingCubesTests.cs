using LrmNative.Backends;
using LrmNative.Interop;

namespace LrmNative.Tests;

/// <summary>
/// Marching cubes against analytic shapes: watertight and manifold (every edge in exactly two
/// triangles, once in each direction), Euler characteristic, outward winding (positive signed
/// volume), vertices on the true surface, enclosed volume, thread-count independence, bad input.
/// </summary>
[TestFixture]
public sealed class MarchingCubesTests
{
    private readonly CpuBackend _backend = new();

    [OneTimeTearDown]
    public void Dispose() => _backend.Dispose();

    /// <summary>A mesh copied out of the backend's tensors.</summary>
    private sealed record Mesh(float[] Vertices, int[] Triangles)
    {
        public int VertexCount => Vertices.Length / 3;
        public int TriangleCount => Triangles.Length / 3;

        public (double X, double Y, double Z) Vertex(int i) => (Vertices[3 * i], Vertices[3 * i + 1], Vertices[3 * i + 2]);
    }

    /// <summary>Samples f(x, y, z) on a (depth, height, width) grid spanning [-1, 1]³ at the grid corners.</summary>
    private static Tensor Field(long depth, long height, long width, Func<double, double, double, double> function)
    {
        var tensor = Tensor.Empty([depth, height, width]);
        var span = tensor.AsSpan<float>();
        for (var z = 0; z < depth; z++)
        {
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    span[(int)((z * height + y) * width + x)] = (float)function(
                        -1 + 2.0 * x / (width - 1), -1 + 2.0 * y / (height - 1), -1 + 2.0 * z / (depth - 1));
                }
            }
        }
        return tensor;
    }

    private static readonly float[] UnitBox = [-1, -1, -1, 1, 1, 1];

    private Mesh Extract(Tensor field, float level = 0f, float[]? bounds = null, IBackend? backend = null)
    {
        var (vertices, triangles) = (backend ?? _backend).MarchingCubes(field, level, bounds ?? UnitBox);
        using (vertices)
        using (triangles)
        {
            Assert.That(vertices.DataType, Is.EqualTo(DataType.Float32));
            Assert.That(triangles.DataType, Is.EqualTo(DataType.Int32));
            Assert.That(vertices.Size(1), Is.EqualTo(3));
            Assert.That(triangles.Size(1), Is.EqualTo(3));
            return new Mesh(vertices.AsSpan<float>().ToArray(), triangles.AsSpan<int>().ToArray());
        }
    }

    private static double Sphere(double x, double y, double z, double radius) => radius - Math.Sqrt(x * x + y * y + z * z);

    private static int EulerCharacteristic(Mesh mesh) => MeshTopology.AssertClosedManifold(mesh.Triangles, mesh.VertexCount);

    private static double SignedVolume(Mesh mesh) => MeshTopology.SignedVolume(mesh.Vertices, mesh.Triangles);

    private static int Components(Mesh mesh)
    {
        var parent = Enumerable.Range(0, mesh.VertexCount).ToArray();
        int Find(int i)
        {
            while (parent[i] != i)
            {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            return i;
        }
        for (var t = 0; t < mesh.TriangleCount; t++)
        {
            parent[Find(mesh.Triangles[3 * t])] = Find(mesh.Triangles[3 * t + 1]);
            parent[Find(mesh.Triangles[3 * t + 1])] = Find(mesh.Triangles[3 * t + 2]);
        }
        return Enumerable.Range(0, mesh.VertexCount).Select(Find).Distinct().Count();
    }

    [TestCase(33, 0.02)]
    [TestCase(64, 0.02)]
    [TestCase(128, 0.01)]
    public void SphereIsClosedOutwardAndOnTheSurface(int size, double volumeTolerance)
    {
        const double radius = 0.6;
        using var field = Field(size, size, size, (x, y, z) => Sphere(x, y, z, radius));
        var mesh = Extract(field);

        Assert.That(mesh.TriangleCount, Is.GreaterThan(0));
        Assert.That(EulerCharacteristic(mesh), Is.EqualTo(2));
        Assert.That(Components(mesh), Is.EqualTo(1));
        // Linear interpolation of radius − |p| along a grid edge: the error is second order in
        // the spacing h (curvature 1/r), well under 0.05·h at these sizes.
        var spacing = 2.0 / (size - 1);
        for (var i = 0; i < mesh.VertexCount; i++)
        {
            var (x, y, z) = mesh.Vertex(i);
            Assert.That(Math.Sqrt(x * x + y * y + z * z), Is.EqualTo(radius).Within(0.05 * spacing), $"vertex {i}");
        }
        var volume = SignedVolume(mesh);
        var analytic = 4.0 / 3.0 * Math.PI * radius * radius * radius;
        Assert.That(volume, Is.Positive, "outward winding gives a positive signed volume");
        Assert.That(volume, Is.EqualTo(analytic).Within(volumeTolerance * analytic));
    }

    [TestCase(48)]
    [TestCase(96)]
    public void TorusHasEulerCharacteristicZero(int size)
    {
        const double major = 0.55, minor = 0.2;
        using var field = Field(size, size, size, (x, y, z) =>
        {
            var ring = Math.Sqrt(x * x + y * y) - major;
            return minor - Math.Sqrt(ring * ring + z * z);
        });
        var mesh = Extract(field);
        Assert.That(EulerCharacteristic(mesh), Is.EqualTo(0));
        Assert.That(Components(mesh), Is.EqualTo(1));
        var analytic = 2 * Math.PI * Math.PI * major * minor * minor;
        Assert.That(SignedVolume(mesh), Is.EqualTo(analytic).Within(0.03 * analytic));
    }

    [TestCase(32)]
    [TestCase(65)]
    public void BoxIsClosedWithEulerCharacteristicTwo(int size)
    {
        const double half = 0.55;
        using var field = Field(size, size, size, (x, y, z) =>
            half - Math.Max(Math.Abs(x), Math.Max(Math.Abs(y), Math.Abs(z))));
        var mesh = Extract(field);
        Assert.That(EulerCharacteristic(mesh), Is.EqualTo(2));
        var analytic = 8 * half * half * half;
        Assert.That(SignedVolume(mesh), Is.EqualTo(analytic).Within(0.02 * analytic));
    }

    [Test]
    public void TwoSeparateSpheresGiveTwoComponents()
    {
        using var field = Field(40, 40, 40, (x, y, z) =>
            Math.Max(Sphere(x - 0.45, y, z, 0.3), Sphere(x + 0.45, y, z, 0.3)));
        var mesh = Extract(field);
        Assert.That(Components(mesh), Is.EqualTo(2));
        Assert.That(EulerCharacteristic(mesh), Is.EqualTo(4));
        var analytic = 2 * 4.0 / 3.0 * Math.PI * 0.3 * 0.3 * 0.3;
        Assert.That(SignedVolume(mesh), Is.EqualTo(analytic).Within(0.03 * analytic));
    }

    [TestCase(-1f)]
    [TestCase(1f)]
    public void UniformFieldsGiveNoTriangles(float value)
    {
        using var field = Field(9, 10, 11, (_, _, _) => value);
        var mesh = Extract(field);
        Assert.That(mesh.TriangleCount, Is.Zero);
        Assert.That(mesh.VertexCount, Is.Zero);
    }

    [Test]
    public void OddSizesAndGridCoordinates()
    {
        // (depth, height, width) = (17, 23, 29): z, y, x spacings all differ.
        const double radius = 0.7;
        using var field = Field(17, 23, 29, (x, y, z) => Sphere(x, y, z, radius));
        var world = Extract(field);
        Assert.That(EulerCharacteristic(world), Is.EqualTo(2));
        Assert.That(SignedVolume(world), Is.Positive);
        for (var i = 0; i < world.VertexCount; i++)
        {
            var (x, y, z) = world.Vertex(i);
            Assert.That(Math.Sqrt(x * x + y * y + z * z), Is.EqualTo(radius).Within(0.01), $"vertex {i}");
        }

        // Without bounds: grid coordinates (column, row, plane), the same mesh under the affine map.
        var (vertices, triangles) = _backend.MarchingCubes(field, 0f);
        using (vertices)
        using (triangles)
        {
            Assert.That(triangles.AsSpan<int>().ToArray(), Is.EqualTo(world.Triangles));
            var grid = vertices.AsSpan<float>();
            long[] sizes = [29, 23, 17];
            for (var i = 0; i < grid.Length; i++)
            {
                var expected = -1 + 2.0 * grid[i] / (sizes[i % 3] - 1);
                Assert.That(world.Vertices[i], Is.EqualTo(expected).Within(1e-5));
            }
        }
    }

    [Test]
    public void ThresholdPicksTheLevelSet()
    {
        // Density-like field: 1 at the centre falling off; level 0.5 is the sphere of radius 0.5.
        using var field = Field(41, 41, 41, (x, y, z) => 1 - Math.Sqrt(x * x + y * y + z * z));
        var mesh = Extract(field, level: 0.5f);
        Assert.That(EulerCharacteristic(mesh), Is.EqualTo(2));
        var analytic = 4.0 / 3.0 * Math.PI * 0.125;
        Assert.That(SignedVolume(mesh), Is.EqualTo(analytic).Within(0.02 * analytic));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void RandomFieldsGiveClosedManifolds(int seed)
    {
        // Noise (and every third seed ±1 only, which makes many ambiguous faces) with an outside
        // border: the level set closes inside the grid, whatever its topology.
        var random = new Random(seed);
        const int size = 14;
        using var field = Tensor.Empty([size, size + 1, size + 2]);
        var span = field.AsSpan<float>();
        for (var z = 0; z < size; z++)
        {
            for (var y = 0; y < size + 1; y++)
            {
                for (var x = 0; x < size + 2; x++)
                {
                    var border = z == 0 || y == 0 || x == 0 || z == size - 1 || y == size || x == size + 1;
                    var value = seed == 2 ? (random.Next(2) == 0 ? -1f : 1f) : (float)(random.NextDouble() * 2 - 1);
                    span[(z * (size + 1) + y) * (size + 2) + x] = border ? -1f : value;
                }
            }
        }
        var mesh = Extract(field);
        Assert.That(mesh.TriangleCount, Is.GreaterThan(100));
        EulerCharacteristic(mesh); // asserts a closed, consistently wound manifold
        Assert.That(SignedVolume(mesh), Is.Positive);
    }

    [Test]
    public void OutputDoesNotDependOnTheThreadCount()
    {
        using var field = Field(37, 41, 45, (x, y, z) =>
            Math.Max(Sphere(x - 0.3, y, z, 0.45), Sphere(x + 0.35, y + 0.1, z, 0.4)) + 0.05 * Math.Sin(9 * x * y));
        Mesh? reference = null;
        try
        {
            foreach (var threads in new[] { 1, 2, 3, 8 })
            {
                using var backend = new CpuBackend(threads);
                var mesh = Extract(field, backend: backend);
                if (reference is null)
                {
                    reference = mesh;
                    continue;
                }
                Assert.That(mesh.Triangles, Is.EqualTo(reference.Triangles), $"{threads} threads");
                Assert.That(mesh.Vertices.Select(BitConverter.SingleToInt32Bits),
                    Is.EqualTo(reference.Vertices.Select(BitConverter.SingleToInt32Bits)), $"{threads} threads");
            }
        }
        finally
        {
            NativeCheck.Check(NativeMethods.lrm_set_num_threads(0));
        }
    }

    [Test]
    public void BadInputGivesTypedErrorsNamingTheOp()
    {
        using var good = Field(4, 4, 4, (x, y, z) => Sphere(x, y, z, 0.5));
        using var flat = Tensor.Zeros([1, 4, 4]);
        using var matrix = Tensor.Zeros([4, 4]);
        using var integers = Tensor.Zeros([4, 4, 4], DataType.Int32);

        Assert.That(() => _backend.MarchingCubes(null!, 0f),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.StartsWith("MarchingCubes: tensor 'field'"));
        Assert.That(() => _backend.MarchingCubes(flat, 0f),
            Throws.TypeOf<LrmShapeException>().With.Message.StartsWith("MarchingCubes:").And.Message.Contains("(2, 2, 2)"));
        Assert.That(() => _backend.MarchingCubes(matrix, 0f),
            Throws.TypeOf<LrmShapeException>().With.Message.StartsWith("MarchingCubes: tensor 'field'"));
        Assert.That(() => _backend.MarchingCubes(integers, 0f),
            Throws.TypeOf<LrmShapeException>().With.Message.Contains("Float32"));
        Assert.That(() => _backend.MarchingCubes(good, float.NaN),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.StartsWith("MarchingCubes: level must be finite"));
        Assert.That(() => _backend.MarchingCubes(good, 0f, [0f, 1f, 2f]),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.StartsWith("MarchingCubes: bounds"));
        Assert.That(() => _backend.MarchingCubes(good, 0f, [0f, 0f, 0f, 1f, float.NaN, 1f]),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.Contains("lrm_marching_cubes_forward: bounds"));
        Assert.That(() => _backend.MarchingCubes(good, 0f, [0f, 0f, 0f, 1f, -1f, 1f]),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.Contains("axis y"));
    }

    [Test]
    public unsafe void NativeEntryPointsValidateBeforeTouchingMemory()
    {
        var values = stackalloc float[8];
        nint mesh = 1;
        Assert.That(NativeMethods.lrm_marching_cubes_forward(&mesh, null, null, 2, 2, 2, 0f), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.StartWith("lrm_marching_cubes_forward: argument 'field' is NULL"));
        Assert.That(mesh, Is.EqualTo((nint)0), "the handle is cleared on failure");
        Assert.That(NativeMethods.lrm_marching_cubes_forward(null, values, null, 2, 2, 2, 0f), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeMethods.lrm_marching_cubes_forward(&mesh, values, null, 2, 1, 2, 0f), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeCheck.LastError(), Does.Contain("height must be >= 2"));
        Assert.That(NativeMethods.lrm_marching_cubes_forward(&mesh, values, null, 2, 2, 2, float.PositiveInfinity), Is.EqualTo(LrmStatus.InvalidArgument));
        Assert.That(NativeMethods.lrm_marching_cubes_forward(&mesh, values, null, long.MaxValue / 2, 4, 4, 0f), Is.EqualTo(LrmStatus.InvalidArgument));

        // One inside corner: one triangle; the copy refuses wrongly sized buffers.
        for (var i = 0; i < 8; i++)
        {
            values[i] = i == 0 ? 1f : -1f;
        }
        Assert.That(NativeMethods.lrm_marching_cubes_forward(&mesh, values, null, 2, 2, 2, 0f), Is.EqualTo(LrmStatus.Ok));
        try
        {
            long vertexCount, triangleCount;
            Assert.That(NativeMethods.lrm_mesh_size(&vertexCount, &triangleCount, mesh), Is.EqualTo(LrmStatus.Ok));
            Assert.That((vertexCount, triangleCount), Is.EqualTo((3L, 1L)));
            var vertices = stackalloc float[9];
            var triangles = stackalloc int[3];
            Assert.That(NativeMethods.lrm_mesh_copy(vertices, triangles, mesh, 2, 1), Is.EqualTo(LrmStatus.ShapeMismatch));
            Assert.That(NativeMethods.lrm_mesh_copy(vertices, null, mesh, 3, 1), Is.EqualTo(LrmStatus.InvalidArgument));
            Assert.That(NativeMethods.lrm_mesh_copy(vertices, triangles, mesh, 3, 1), Is.EqualTo(LrmStatus.Ok));
            // Vertices at the edge midpoints (t = 0.5) of the x, y and z edges from corner 0, in that order;
            // the triangle is wound so its normal points away from the inside corner.
            Assert.That(new ReadOnlySpan<float>(vertices, 9).ToArray(), Is.EqualTo(new[] { 0.5f, 0, 0, 0, 0.5f, 0, 0, 0, 0.5f }));
            var (a, b, c) = (triangles[0], triangles[1], triangles[2]);
            float[] p = new ReadOnlySpan<float>(vertices, 9).ToArray();
            double Component(int i, int k) => p[3 * i + k];
            var normal = (
                (Component(b, 1) - Component(a, 1)) * (Component(c, 2) - Component(a, 2)) - (Component(b, 2) - Component(a, 2)) * (Component(c, 1) - Component(a, 1)),
                (Component(b, 2) - Component(a, 2)) * (Component(c, 0) - Component(a, 0)) - (Component(b, 0) - Component(a, 0)) * (Component(c, 2) - Component(a, 2)),
                (Component(b, 0) - Component(a, 0)) * (Component(c, 1) - Component(a, 1)) - (Component(b, 1) - Component(a, 1)) * (Component(c, 0) - Component(a, 0)));
            Assert.That(normal.Item1 + normal.Item2 + normal.Item3, Is.Positive);
        }
        finally
        {
            NativeMethods.lrm_mesh_free(mesh);
        }
        NativeMethods.lrm_mesh_free(0);
    }
}
