using LrmNative.Backends;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The dataset ray casters against analytic results, with rays built here from the camera-to-world matrix and the
/// documented convention (not from <see cref="DatasetCamera"/>): a unit sphere's silhouette (fully covered pixels
/// opaque, untouched pixels transparent, partial pixels near their coverage, total alpha near the ellipse's area) and
/// depth; the camera rays equal the model renderer's; a mesh sphere through `lrm dataset render` matches the analytic
/// sphere; the BVH finds what brute force finds.
/// </summary>
[TestFixture]
public sealed class DatasetRendererTests : TemporaryFolderFixture
{
    /// <summary>World ray through image point (x, y) in pixels: camera (x_n − cx)/fx, −(y_n − cy)/fy, −1 rotated by the pose.</summary>
    private static (double[] Origin, double[] Direction) Ray(float[] pose, int width, int height, double x, double y, double focal = 0.75)
    {
        var cam = new[] { (x / width - 0.5) / focal, -(y / height - 0.5) / focal, -1.0 };
        var d = new double[3];
        for (var r = 0; r < 3; r++)
        {
            d[r] = pose[4 * r] * cam[0] + pose[4 * r + 1] * cam[1] + pose[4 * r + 2] * cam[2];
        }
        var n = Math.Sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        return (new double[] { pose[3], pose[7], pose[11] }, new[] { d[0] / n, d[1] / n, d[2] / n });
    }

    /// <summary>Nearest t of o + t·d (unit d) on the sphere |p| = r, or +∞.</summary>
    private static double SphereHit(double[] o, double[] d, double r)
    {
        var b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2];
        var c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - r * r;
        var disc = b * b - c;
        return disc < 0 ? double.PositiveInfinity : -b - Math.Sqrt(disc);
    }

    private static SdfScene Sphere(double radius, Vec3 color) =>
        new([new SdfPart { Primitive = SdfPrimitive.Sphere, A = radius, Texture = SdfTexture.Solid(color) }]);

    [Test]
    public void UnitSphereSilhouetteIsWhereTheProjectionSaysAndDepthIsAnalytic()
    {
        // A non-square image catches width/height mix-ups.
        const int width = 72, height = 56;
        var pose = Cameras.LookAtOrigin(2.2f, -1.3f, 0.9f);
        var camera = new DatasetCamera(pose, width, height);
        var view = MultiViewRenderer.Render(Sphere(1, new Vec3(0.6, 0.5, 0.4)), camera, Lighting.Default);
        const int grid = 32; // sub-pixel positions k/32 include the renderer's 4×4 sample positions and the corners
        double alphaSum = 0, coverageSum = 0;
        int inside = 0, outside = 0, partial = 0;
        for (var i = 0; i < height; i++)
        {
            for (var j = 0; j < width; j++)
            {
                var hits = 0;
                for (var a = 0; a <= grid; a++)
                {
                    for (var b = 0; b <= grid; b++)
                    {
                        var (o, d) = Ray(pose, width, height, j + b / (double)grid, i + a / (double)grid);
                        hits += double.IsFinite(SphereHit(o, d, 1)) ? 1 : 0;
                    }
                }
                var coverage = hits / (double)((grid + 1) * (grid + 1));
                var p = i * width + j;
                var alpha = view.Rgba[4 * p + 3];
                if (coverage == 1)
                {
                    inside++;
                    Assert.That(alpha, Is.EqualTo(1f), $"pixel ({i}, {j}) is fully covered");
                    var (o, d) = Ray(pose, width, height, j + 0.5, i + 0.5);
                    Assert.That(view.Depth[p], Is.EqualTo(SphereHit(o, d, 1)).Within(1e-6), $"depth at ({i}, {j})");
                }
                else if (coverage == 0)
                {
                    outside++;
                    Assert.That(alpha, Is.Zero, $"pixel ({i}, {j}) is untouched");
                    Assert.That(double.IsPositiveInfinity(view.Depth[p]) || view.Depth[p] > 0, Is.True);
                }
                else
                {
                    partial++;
                    // 16 samples estimate the coverage: a 4×4 grid errs by at most ~2 of 16 rows/columns on a smooth edge.
                    Assert.That(alpha, Is.EqualTo(coverage).Within(0.2), $"edge pixel ({i}, {j})");
                }
                alphaSum += alpha;
                coverageSum += coverage;
            }
        }
        Assert.That(inside, Is.GreaterThan(500));
        Assert.That(outside, Is.GreaterThan(500));
        Assert.That(partial, Is.GreaterThan(50));
        Assert.That(alphaSum, Is.EqualTo(coverageSum).Within(0.01 * coverageSum), "total opacity = silhouette area");
    }

    [Test]
    public void CameraRaysEqualTheModelRenderersRays()
    {
        const int width = 13, height = 9;
        var pose = Cameras.LookAtOrigin(-1.1f, 2.4f, 0.7f);
        var camera = new DatasetCamera(pose, width, height);
        using var backend = new CpuBackend();
        using var cameras = Tensor.FromArray(Cameras.Render(pose), 1, 25);
        using var origins = Tensor.Empty([1, width * height, 3]);
        using var directions = Tensor.Empty([1, width * height, 3]);
        using var depths = Tensor.Empty([1, width * height, 8]);
        backend.RenderRays(origins, directions, depths, null, cameras, height, width);
        var o = origins.AsSpan<float>();
        var d = directions.AsSpan<float>();
        for (var i = 0; i < height; i++)
        {
            for (var j = 0; j < width; j++)
            {
                var p = i * width + j;
                var ours = camera.RayDirection(j + 0.5, i + 0.5);
                Assert.That(new[] { ours.X, ours.Y, ours.Z }, Is.EqualTo(new double[] { d[3 * p], d[3 * p + 1], d[3 * p + 2] }).Within(1e-6),
                    $"pixel ({i}, {j})");
                Assert.That(new[] { camera.Origin.X, camera.Origin.Y, camera.Origin.Z }, Is.EqualTo(new double[] { o[3 * p], o[3 * p + 1], o[3 * p + 2] }));
            }
        }
        // Project is the inverse of RayDirection.
        var (x, y, depth) = camera.Project(camera.Origin + camera.RayDirection(3.25, 7.5) * 2.0);
        Assert.That((x, y), Is.EqualTo((3.25, 7.5)).Within(1e-5), "up to the float pose's rounding");
        Assert.That(depth, Is.GreaterThan(0));
    }

    [Test]
    public void MeshSphereThroughDatasetRenderMatchesTheAnalyticSphere()
    {
        // Colours k/255 survive the PLY's bytes exactly.
        float[] color = [0.6f, 0.4f, 0.2f];
        Directory.CreateDirectory(Path.Combine(Folder, "meshes"));
        DatasetTestSupport.Icosphere(5, 1.0, color).SavePly(Path.Combine(Folder, "meshes", "ball.ply"));
        var output = Path.Combine(Folder, "out");
        var (code, _, error) = DatasetTestSupport.Lrm("dataset", "render", "--meshes", Path.Combine(Folder, "meshes"), "--views", "3",
            "--resolution", "64", "--seed", "5", "--out", output);
        Assert.That(code, Is.EqualTo(0), error);
        // The analytic sphere after the render's normalisation (longest side spans ±0.96), lit as the render lit object 0.
        var lighting = Lighting.Sample(new DeterministicRandom(5, 0));
        var analytic = Sphere(DatasetGeneration.ObjectHalfExtent, new Vec3(color[0], color[1], color[2]));
        for (var v = 0; v < 3; v++)
        {
            var pose = DatasetLayout.ReadPose(Path.Combine(output, "ball", "pose", $"{v:000}.npy"));
            var reference = MultiViewRenderer.Render(analytic, new DatasetCamera([.. pose.Select(x => (float)x)], 64, 64), lighting);
            using var image = Image.Load(Path.Combine(output, "ball", "rgba", $"{v:000}.png"));
            var pixels = image.Pixels.AsSpan<float>();
            double sum = 0;
            var large = 0;
            for (var k = 0; k < pixels.Length; k++)
            {
                var difference = Math.Abs(pixels[k] - reference.Rgba[k]);
                sum += difference;
                large += difference > 0.04 ? 1 : 0;
            }
            Assert.That(sum / pixels.Length, Is.LessThan(0.004), $"view {v}: mean absolute RGBA difference");
            Assert.That(large, Is.LessThan(pixels.Length / 100), $"view {v}: values off by more than 0.04");
        }
        var mesh = Mesh.Load(Path.Combine(output, "ball", "mesh.ply"));
        Assert.That(mesh.Bounds.Size.X, Is.EqualTo(1.92f).Within(1e-5), "the saved mesh is the normalised one");
    }

    [Test]
    public void BvhFindsTheSameNearestHitsAsBruteForce()
    {
        var sphere = DatasetTestSupport.Icosphere(3, 0.8);
        var scene = new MeshScene(sphere);
        Assert.That(scene.NodeCount, Is.GreaterThan(100));
        var random = new DeterministicRandom(21);
        var hits = 0;
        // The closest any face comes to the centre: the smallest distance from the origin to a face's plane.
        var p = sphere.Positions.ToArray();
        var t = sphere.Triangles.ToArray();
        Vec3 Vertex(int i) => new(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
        var inner = Enumerable.Range(0, t.Length / 3).Min(f =>
        {
            Vec3 a = Vertex(t[3 * f]), b = Vertex(t[3 * f + 1]), c = Vertex(t[3 * f + 2]);
            var normal = Vec3.Cross(b - a, c - a).Normalized();
            return Math.Abs(Vec3.Dot(normal, a));
        });
        Assert.That(inner, Is.InRange(0.79, 0.8), "flat faces sag a little inside the sphere");
        for (var k = 0; k < 2000; k++)
        {
            var origin = random.NextDirection() * random.Uniform(1.2, 3);
            var direction = (random.NextDirection() * 0.6 - origin.Normalized()).Normalized();
            var found = scene.Intersect(origin, direction, out var hit);
            var brute = scene.IntersectBruteForce(origin, direction, out var distance, out _);
            Assert.That(found, Is.EqualTo(brute), $"ray {k}");
            if (found)
            {
                hits++;
                Assert.That(hit.Distance, Is.EqualTo(distance).Within(1e-12), $"ray {k}");
                Assert.That(Vec3.Dot(hit.Normal, direction), Is.LessThanOrEqualTo(0), "the shading normal faces the ray");
                // Independent of the shared triangle routine: the hit lies on the icosphere, between the radius-0.8
                // sphere its vertices sit on (float positions) and the closest face plane, and the ray meets the sphere
                // no later than it meets the inscribed mesh.
                var point = origin + direction * hit.Distance;
                Assert.That(point.Length, Is.InRange(inner - 1e-9, 0.8 + 1e-6), $"ray {k}: hit radius");
                var b = Vec3.Dot(origin, direction);
                var sphereHit = -b - Math.Sqrt(b * b - (Vec3.Dot(origin, origin) - 0.8 * 0.8));
                Assert.That(hit.Distance, Is.GreaterThanOrEqualTo(sphereHit - 1e-6), $"ray {k}: not in front of the sphere");
            }
        }
        Assert.That(hits, Is.InRange(300, 1900));
    }
}
