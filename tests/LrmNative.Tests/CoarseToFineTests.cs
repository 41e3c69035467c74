using LrmNative.Backends;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The coarse-to-fine grid query against the dense one: on analytic densities (sphere, torus, rippled sphere, evaluated
/// in closed form) and on an analytic triplane NeRF run through the model's own NeRF code, marching cubes gives the
/// very same mesh from a fraction of the points; on the tiny random-weight checkpoint the mesh matches the dense one
/// too (that field is texel-scale noise whose surface touches nearly every block, so the saving there is small —
/// measured, not assumed). Arguments out of range are refused.
/// </summary>
[TestFixture]
public sealed class CoarseToFineTests
{
    private static readonly float[] Box = [-1f, -1f, -1f, 1f, 1f, 1f];

    // A closed-form density as a DensityFunction (positive inside, level 0 on the surface).
    private static DensityFunction Analytic(Func<double, double, double, double> field) => (points, density) =>
    {
        var p = points.AsSpan<float>();
        for (var i = 0; i < density.Length; i++)
        {
            density[i] = (float)field(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
        }
    };

    private static Func<double, double, double, double> Shape(string name) => name switch
    {
        "sphere" => (x, y, z) => 0.6 - Math.Sqrt(x * x + y * y + z * z),
        "torus" => (x, y, z) => 0.2 - Math.Sqrt(Math.Pow(Math.Sqrt(x * x + y * y) - 0.55, 2) + z * z),
        "rippled" => (x, y, z) => 0.6 + 0.08 * Math.Sin(9 * x) * Math.Sin(9 * y) * Math.Sin(9 * z) - Math.Sqrt(x * x + y * y + z * z),
        _ => throw new ArgumentException(name),
    };

    // Marching cubes of a grid: (positions, triangles).
    private static (float[] Positions, int[] Triangles) Surface(CpuBackend backend, Tensor grid, float level)
    {
        var (vertices, triangles) = backend.MarchingCubes(grid, level, Box);
        using (vertices)
        using (triangles)
        {
            return (vertices.AsSpan<float>().ToArray(), triangles.AsSpan<int>().ToArray());
        }
    }

    // The refined shell is a few blocks thick whatever the resolution, so the fraction evaluated falls as R grows.
    [TestCase("sphere", 192, 0.25)]
    [TestCase("torus", 160, 0.25)]
    [TestCase("rippled", 193, 0.35)] // 192 cells: every coarse block 4 cells wide
    [TestCase("rippled", 97, 0.6)]   // 96 cells
    [TestCase("sphere", 50, 1.0)]    // 49 cells: a last block of one cell (exactness only)
    public void AnalyticDensityGivesTheDenseMeshFromFarFewerPoints(string shape, int resolution, double maxFraction)
    {
        using var backend = new CpuBackend();
        var density = Analytic(Shape(shape));
        using var dense = DensityGrid.QueryDense(density, resolution);
        using var fine = DensityGrid.QueryCoarseToFine(density, resolution, 0f);
        Assert.That(dense.PointsEvaluated, Is.EqualTo((long)resolution * resolution * resolution));
        TestContext.Out.WriteLine($"{shape} {resolution}³: {fine.PointsEvaluated:N0} of {fine.DensePoints:N0} points ({(double)fine.PointsEvaluated / fine.DensePoints:P1}), {fine.BlocksRefined} of {fine.Blocks} blocks refined");

        var expected = Surface(backend, dense.Grid, 0f);
        var actual = Surface(backend, fine.Grid, 0f);
        Assert.That(expected.Triangles, Is.Not.Empty);
        Assert.That(actual.Positions, Is.EqualTo(expected.Positions), "vertex positions, bit for bit");
        Assert.That(actual.Triangles, Is.EqualTo(expected.Triangles));
        Assert.That((double)fine.PointsEvaluated / dense.PointsEvaluated, Is.LessThanOrEqualTo(maxFraction), "coarse-to-fine evaluates far fewer points");
        Assert.That(fine.BlocksRefined, Is.GreaterThan(0).And.LessThan(fine.Blocks));

        // Points inside refined blocks and at coarse points are exact; everywhere else the grid stays on the dense
        // grid's side of the level, so inside/outside agree at every grid point.
        var a = dense.Grid.AsSpan<float>();
        var b = fine.Grid.AsSpan<float>();
        var disagreements = 0;
        for (var i = 0; i < a.Length; i++)
        {
            disagreements += a[i] > 0 != b[i] > 0 ? 1 : 0;
        }
        Assert.That(disagreements, Is.Zero, "inside/outside differs at some grid points");
    }

    [Test]
    public void AnalyticNerfThroughTheFacadeGivesTheDenseMesh()
    {
        // The tiny checkpoint's sizes, with NeRF weights and a triplane whose density is a sphere of radius 0.6 at σ = 3.
        var config = ModelConfig.Load(Path.Combine(Golden.TinyModelDirectory, LrmModel.ConfigFileName));
        const float level = 3f;
        using var lrm = Reconstructor.FromModel(backend => LrmModel.CreateRandom(config, seed: 7, AnalyticTriplane.NerfWeights(config, level), backend),
            Device.Cpu, new ReconstructorOptions(), "analytic");
        using var result = lrm.FromPlanes(AnalyticTriplane.Planes(config), "analytic sphere");
        Assert.That(result.Threshold, Is.EqualTo(ModelConfig.DefaultMeshThreshold), "the tiny config names no threshold: OpenLRM's 3.0");

        var dense = result.ExtractMesh(128, level, coarseToFine: false);
        var denseQuery = result.LastGridQuery!;
        var fine = result.ExtractMesh(128, level, coarseToFine: true);
        var fineQuery = result.LastGridQuery!;
        TestContext.Out.WriteLine($"analytic NeRF 128³: {fineQuery.PointsEvaluated:N0} of {fineQuery.DensePoints:N0} points ({fineQuery.Fraction:P1}), {dense.VertexCount} vertices");
        Assert.That((denseQuery.CoarseToFine, denseQuery.PointsEvaluated), Is.EqualTo((false, 128L * 128 * 128)));
        Assert.That(fineQuery.CoarseToFine, Is.True);
        Assert.That(fineQuery.Fraction, Is.LessThan(0.45), "far fewer NeRF queries (measured 35 %)");
        Assert.That(dense.VertexCount, Is.GreaterThan(1000));
        Assert.That(fine.Positions.SequenceEqual(dense.Positions) && fine.Triangles.SequenceEqual(dense.Triangles), Is.True, "identical meshes");
        Assert.That(MeshDistance.Compare(dense, fine), Is.EqualTo(new MeshDifference(0, 0, true)));

        // The surface is where the construction puts it: |p| = 0.6 up to the triplane's bilinear interpolation of x²
        // (texels of 2/16: an overestimate of at most (1/16)² = 0.004 in |p|²).
        var positions = dense.Positions;
        for (var v = 0; v < dense.VertexCount; v++)
        {
            var r = Math.Sqrt(positions[3 * v] * positions[3 * v] + positions[3 * v + 1] * positions[3 * v + 1] + positions[3 * v + 2] * positions[3 * v + 2]);
            Assert.That(r, Is.EqualTo(0.6).Within(0.02), $"vertex {v}");
        }
        Assert.That(dense.Colors.ToArray(), Is.All.InRange(0f, 1f));
    }

    /// <summary>
    /// The face case (DensityGrid's remarks): on the tiny checkpoint's rough field, the settings below once left unrefined
    /// blocks whose faces held a refined neighbour's exact values across the level, and a vertex of such a cell moved
    /// (−0.17942 instead of −0.17926). With those blocks refined as well, the meshes are identical, bit for bit. (At 64³
    /// the same field has features the 16³ coarse grid misses entirely — the case no rule on the coarse grid can catch,
    /// and why the CPU's default grid is coarse-to-fine only from 256³.)
    /// </summary>
    [TestCase(40, 0.6f)]
    public void BlocksWhoseFacesCrossTheLevelAreRefinedSoTheMeshIsTheDenseOne(int resolution, float level)
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        var dense = result.ExtractMesh(resolution, level, coarseToFine: false);
        var fine = result.ExtractMesh(resolution, level, coarseToFine: true);
        Assert.That(result.LastGridQuery!.PointsEvaluated, Is.LessThan(result.LastGridQuery.DensePoints));
        Assert.That(dense.TriangleCount, Is.GreaterThan(100));
        Assert.That(fine.Positions.ToArray(), Is.EqualTo(dense.Positions.ToArray()).AsCollection);
        Assert.That(fine.Triangles.ToArray(), Is.EqualTo(dense.Triangles.ToArray()).AsCollection);
    }

    [Test]
    public void TinyCheckpointMeshMatchesTheDenseOne()
    {
        // The README command's setting: the tiny random-weight checkpoint, the bundled example, level 0.7.
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        var dense = result.ExtractMesh(128, 0.7f, coarseToFine: false);
        var fine = result.ExtractMesh(128, 0.7f, coarseToFine: true);
        var query = result.LastGridQuery!;
        var difference = MeshDistance.Compare(dense, fine);
        TestContext.Out.WriteLine($"tiny 128³ at 0.7: dense {dense.VertexCount} vertices / {dense.TriangleCount} triangles, coarse-to-fine {fine.VertexCount} / {fine.TriangleCount}; " +
            $"{query.PointsEvaluated:N0} of {query.DensePoints:N0} points ({query.Fraction:P1}); Chamfer {difference.Chamfer:G3}, Hausdorff {difference.Hausdorff:G3}");
        Assert.That(dense.VertexCount, Is.GreaterThan(100));
        Assert.That(query.PointsEvaluated, Is.LessThan(query.DensePoints));
        // Measured: identical. Allowed: a fraction of one fine cell (2/127 ≈ 0.016) on average, in case another CPU's
        // rounding moves one of the field's needle-thin peaks across the level.
        Assert.That(difference.Chamfer, Is.LessThan(0.002));
        Assert.That(fine.VertexCount, Is.EqualTo(dense.VertexCount).Within(2).Percent);
    }

    [Test]
    public void ArgumentsOutOfRangeAreRefused()
    {
        var density = Analytic(Shape("sphere"));
        Assert.Throws<LrmInvalidArgumentException>(() => DensityGrid.QueryCoarseToFine(density, 32, 0f, stride: 1).Dispose());
        Assert.Throws<LrmInvalidArgumentException>(() => DensityGrid.QueryCoarseToFine(density, 32, float.NaN).Dispose());
        Assert.Throws<LrmInvalidArgumentException>(() => DensityGrid.QueryCoarseToFine(density, 1, 0f).Dispose());
    }

    [Test]
    public void AGridOfOneCoarseBlockFallsBackToDense()
    {
        var density = Analytic(Shape("sphere"));
        using var grid = DensityGrid.QueryCoarseToFine(density, 5, 0f); // 4 cells: one block of stride 4
        Assert.That(grid.PointsEvaluated, Is.EqualTo(5 * 5 * 5));
        Assert.That(grid.CoarseStride, Is.Zero);
    }
}
