using LrmNative.Data;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// `lrm dataset synth`: the layout and its values; every view's pose re-projects the object's surface (mesh.ply) onto
/// its alpha mask, with the projection written here from the documented convention (camera-to-world, OpenGL axes,
/// intrinsics in pixels), so a flipped axis or a world-to-camera matrix would fail; cameras in the documented ranges;
/// same seed → identical bytes for any thread count, another seed → different objects.
/// </summary>
[TestFixture]
public sealed class DatasetSynthTests
{
    private static string _dataset = "";
    private const int Objects = 3, Views = 6, Size = 64;

    [OneTimeSetUp]
    public static void Synthesize()
    {
        _dataset = Path.Combine(ImageFixtures.TemporaryFolder(), "synth");
        var (code, _, error) = DatasetTestSupport.Lrm("dataset", "synth", "--objects", $"{Objects}", "--views", $"{Views}", "--resolution", $"{Size}",
            "--seed", "42", "--mesh-resolution", "64", "--out", _dataset);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain($"synth {Objects}/{Objects}").And.Contain("objects/min"), "plain progress lines when not a terminal");
    }

    [OneTimeTearDown]
    public static void Remove() => Directory.Delete(Path.GetDirectoryName(_dataset)!, recursive: true);

    [Test]
    public void LayoutIsOpenLrms()
    {
        var names = Enumerable.Range(0, Objects).Select(k => $"obj_{k:D5}").ToArray();
        Assert.That(Directory.GetDirectories(_dataset).Select(Path.GetFileName).Order(), Is.EqualTo(names));
        Assert.That(File.ReadAllText(Path.Combine(_dataset, "uids.json")), Is.EqualTo("[\n  \"obj_00000\",\n  \"obj_00001\",\n  \"obj_00002\"\n]\n"));
        foreach (var name in names)
        {
            var folder = Path.Combine(_dataset, name);
            Assert.That(Directory.GetFiles(Path.Combine(folder, "rgba")).Select(Path.GetFileName).Order(),
                Is.EqualTo(Enumerable.Range(0, Views).Select(v => $"{v:000}.png")));
            Assert.That(Directory.GetFiles(Path.Combine(folder, "pose")).Select(Path.GetFileName).Order(),
                Is.EqualTo(Enumerable.Range(0, Views).Select(v => $"{v:000}.npy")));
            using var intrinsics = Npy.ReadFloat32(Path.Combine(folder, "intrinsics.npy"));
            Assert.That(Npy.ReadHeader(Path.Combine(folder, "intrinsics.npy")).Descr, Is.EqualTo("<f4"));
            Assert.That(intrinsics.ShapeText, Is.EqualTo("(3, 2)"));
            Assert.That(intrinsics.AsSpan<float>().ToArray(), Is.EqualTo(new float[] { 0.75f * Size, 0.75f * Size, Size / 2f, Size / 2f, Size, Size }));
            Assert.That(Npy.ReadHeader(Path.Combine(folder, "pose", "000.npy")).Shape, Is.EqualTo(new long[] { 4, 4 }));
            using var image = Image.Load(Path.Combine(folder, "rgba", "000.png"));
            Assert.That((image.Width, image.Height, image.HasAlpha), Is.EqualTo((Size, Size, true)));
            var mesh = Mesh.Load(Path.Combine(folder, "mesh.ply"));
            Assert.That(mesh.HasColors, Is.True);
            var box = mesh.Bounds;
            Assert.That(Math.Max(box.Size.X, Math.Max(box.Size.Y, box.Size.Z)), Is.EqualTo(1.92f).Within(0.03), "longest side spans ±0.96");
            Assert.That(new[] { box.Min.X, box.Min.Y, box.Min.Z }, Has.All.GreaterThan(-1f));
            Assert.That(new[] { box.Max.X, box.Max.Y, box.Max.Z }, Has.All.LessThan(1f));
        }
        Assert.That(Directory.GetFileSystemEntries(_dataset).Where(e => Path.GetFileName(e).StartsWith('.')), Is.Empty, "no staging folders left");
        Assert.That(DatasetTestSupport.Lrm("dataset", "check", _dataset).ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void CamerasAreInTheDocumentedRangesAndLookAtTheOrigin()
    {
        var objects = DatasetLayout.ReadObjects(_dataset).ToList();
        Assert.That(objects, Has.Count.EqualTo(Objects), "objects read back");
        foreach (var item in objects)
        {
            Assert.That(item.Views, Has.Count.EqualTo(Views), $"{item.Name}: views");
            foreach (var view in item.Views)
            {
                var m = DatasetLayout.ReadPose(item.PosePath(view));
                double x = m[3], y = m[7], z = m[11];
                var distance = Math.Sqrt(x * x + y * y + z * z);
                Assert.That(distance, Is.InRange(1.5 - 1e-5, 3.0 + 1e-5));
                Assert.That(z, Is.InRange(-0.75 - 1e-5, 1.6 + 1e-5));
                // The camera looks down its −Z: the third column points from the origin to the camera.
                Assert.That(new double[] { m[2], m[6], m[10] }, Is.EqualTo(new[] { x / distance, y / distance, z / distance }).Within(1e-5));
                Assert.That(m[9], Is.GreaterThan(0), "camera +Y has a positive world z (z up)");
                Assert.That(m[8], Is.EqualTo(0).Within(1e-6), "camera +X is horizontal (no roll)");
            }
        }
    }

    [Test]
    public void SurfacePointsReprojectOntoTheAlphaMaskInEveryView()
    {
        var extentsChecked = 0;
        var objects = DatasetLayout.ReadObjects(_dataset).ToList();
        Assert.That(objects, Has.Count.EqualTo(Objects), "objects read back");
        foreach (var item in objects)
        {
            Assert.That(item.Views, Has.Count.EqualTo(Views), $"{item.Name}: views");
            var mesh = Mesh.Load(item.MeshPath);
            var k = DatasetLayout.ReadIntrinsics(item.IntrinsicsPath);
            var positions = mesh.Positions.ToArray();
            foreach (var view in item.Views)
            {
                var m = DatasetLayout.ReadPose(item.PosePath(view));
                using var image = Image.Load(item.ImagePath(view));
                var pixels = image.Pixels.ToFloatArray();
                int width = image.Width, height = image.Height;
                float Alpha(int i, int j) => i >= 0 && i < height && j >= 0 && j < width ? pixels[4 * (i * width + j) + 3] : 0f;
                int projected = 0, exact = 0, near = 0;
                double minU = double.MaxValue, maxU = double.MinValue, minV = double.MaxValue, maxV = double.MinValue;
                for (var v = 0; v < positions.Length / 3; v++)
                {
                    // Camera coordinates: Rᵀ (p − t); in front means z < 0 (OpenGL).
                    double px = positions[3 * v] - m[3], py = positions[3 * v + 1] - m[7], pz = positions[3 * v + 2] - m[11];
                    var cx = m[0] * px + m[4] * py + m[8] * pz;
                    var cy = m[1] * px + m[5] * py + m[9] * pz;
                    var cz = m[2] * px + m[6] * py + m[10] * pz;
                    Assert.That(cz, Is.LessThan(0), "every surface point is in front of the camera");
                    var u = k.Fx * (cx / -cz) + k.Cx;
                    var w = -k.Fy * (cy / -cz) + k.Cy;
                    if (u < 1 || w < 1 || u >= width - 1 || w >= height - 1)
                    {
                        continue;
                    }
                    projected++;
                    minU = Math.Min(minU, u);
                    maxU = Math.Max(maxU, u);
                    minV = Math.Min(minV, w);
                    maxV = Math.Max(maxV, w);
                    int i = (int)w, j = (int)u;
                    exact += Alpha(i, j) > 0 ? 1 : 0;
                    var any = false;
                    for (var di = -1; di <= 1 && !any; di++)
                    {
                        for (var dj = -1; dj <= 1 && !any; dj++)
                        {
                            any = Alpha(i + di, j + dj) > 0;
                        }
                    }
                    near += any ? 1 : 0;
                }
                var where = $"{item.Name} view {view}";
                Assert.That(projected, Is.GreaterThan(100), where);
                Assert.That(near, Is.EqualTo(projected), $"{where}: every projected surface point lands on the mask (±1 pixel)");
                Assert.That(exact, Is.GreaterThan(0.98 * projected), $"{where}: on the exact pixel");
                // Conversely the mask's extent is the projected surface's (a wrong focal length would shrink or grow one).
                var rows = Enumerable.Range(0, height).Where(i => Enumerable.Range(0, width).Any(j => Alpha(i, j) >= 0.5)).ToList();
                var columns = Enumerable.Range(0, width).Where(j => Enumerable.Range(0, height).Any(i => Alpha(i, j) >= 0.5)).ToList();
                if (rows[0] > 1 && rows[^1] < height - 2 && columns[0] > 1 && columns[^1] < width - 2)
                {
                    Assert.That(columns[0], Is.EqualTo(minU).Within(1.5), where);
                    Assert.That(columns[^1] + 1, Is.EqualTo(maxU).Within(1.5), where);
                    Assert.That(rows[0], Is.EqualTo(minV).Within(1.5), where);
                    Assert.That(rows[^1] + 1, Is.EqualTo(maxV).Within(1.5), where);
                    extentsChecked++;
                }
            }
        }
        Assert.That(extentsChecked, Is.GreaterThan(0), "some view's mask clears the border, so the extent check ran");
    }

    [Test]
    public void SameSeedGivesIdenticalBytesForAnyThreadCountAndOtherSeedsDiffer()
    {
        var root = ImageFixtures.TemporaryFolder();
        try
        {
            string Run(string name, string seed, string threads)
            {
                var output = Path.Combine(root, name);
                var (code, _, error) = DatasetTestSupport.Lrm("dataset", "synth", "--objects", "2", "--views", "3", "--resolution", "40", "--seed", seed,
                    "--mesh-resolution", "32", "--threads", threads, "--out", output);
                Assert.That(code, Is.EqualTo(0), error);
                return output;
            }
            var first = DatasetTestSupport.Hashes(Run("a", "7", "1"));
            var second = DatasetTestSupport.Hashes(Run("b", "7", "0"));
            var other = DatasetTestSupport.Hashes(Run("c", "8", "0"));
            Assert.That(first, Has.Count.EqualTo(2 * (3 + 3 + 2) + 2), "per object 3 images, 3 poses, intrinsics and mesh; uids.json and synth.json");
            Assert.That(second, Is.EqualTo(first), "same seed: byte-identical files (1 thread and all cores)");
            var differing = first.Keys.Where(k => k.Contains("rgba", StringComparison.Ordinal) || k.EndsWith("mesh.ply", StringComparison.Ordinal))
                .Count(k => other[k] != first[k]);
            Assert.That(differing, Is.EqualTo(2 * 3 + 2), "another seed: every image and mesh differs");
            Assert.That(other["uids.json"], Is.EqualTo(first["uids.json"]));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void ObjectsDependOnlyOnSeedAndIndex()
    {
        // Object 2 made alone, without objects 0 and 1 before it, equals the run's obj_00002: per-object random streams.
        var root = ImageFixtures.TemporaryFolder();
        try
        {
            using var backend = new LrmNative.Backends.CpuBackend();
            var options = new DatasetOptions { Views = Views, Resolution = Size, Seed = 42, MeshResolution = 64 };
            var (scene, mesh, lighting, random) = DatasetGeneration.CreateSynthObject(backend, 42, 2, 64);
            DatasetWriter.WriteObject(root, "alone", DatasetGeneration.RenderViews(scene, lighting, random, options), mesh);
            Assert.That(DatasetTestSupport.Hashes(Path.Combine(root, "alone")), Is.EqualTo(DatasetTestSupport.Hashes(Path.Combine(_dataset, "obj_00002"))));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void GeneratorUsesEveryPrimitiveTextureAndAugmentation()
    {
        var primitives = new HashSet<SdfPrimitive>();
        var textures = new HashSet<TextureKind>();
        bool cuts = false, bumps = false, thin = false;
        for (var index = 0; index < 60; index++)
        {
            var parts = ProceduralObjects.Generate(new DeterministicRandom(1, (ulong)index));
            primitives.UnionWith(parts.Select(p => p.Primitive));
            textures.UnionWith(parts.Select(p => p.Texture.Kind));
            cuts |= parts.Any(p => p.Mode == CsgMode.Subtract);
            bumps |= parts.Any(p => p.BumpAmplitude > 0);
            thin |= parts.Any(p => p.Primitive is SdfPrimitive.Capsule or SdfPrimitive.Cylinder or SdfPrimitive.Torus && p.A + p.B < 0.04 + 0.6 && Math.Min(p.A, p.B) < 0.036);
        }
        Assert.That(primitives, Is.EquivalentTo(Enum.GetValues<SdfPrimitive>()));
        Assert.That(textures, Is.EquivalentTo(Enum.GetValues<TextureKind>()));
        Assert.That((cuts, bumps, thin), Is.EqualTo((true, true, true)));
    }

    [Test]
    public void SimpleStyleIsOneOrTwoSolidColouredPrimitivesWithoutCutsThinPartsOrBumps()
    {
        var primitives = new HashSet<SdfPrimitive>();
        var counts = new HashSet<int>();
        for (var index = 0; index < 80; index++)
        {
            var parts = ProceduralObjects.Generate(new DeterministicRandom(1, (ulong)index), ObjectStyle.Simple);
            counts.Add(parts.Count);
            primitives.UnionWith(parts.Select(p => p.Primitive));
            Assert.That(parts.All(p => p.Mode == CsgMode.Union && p.BumpAmplitude == 0 && p.Texture.Kind == TextureKind.Solid), Is.True, $"object {index}");
            Assert.That(parts.All(p => p.BoundingRadius > 0.08), Is.True, $"object {index}: no thin parts");
            var again = ProceduralObjects.Generate(new DeterministicRandom(1, (ulong)index), ObjectStyle.Simple);
            Assert.That(again.Select(p => (p.Primitive, p.A, p.B, p.Translation, p.Texture.ColorA)), Is.EqualTo(parts.Select(p => (p.Primitive, p.A, p.B, p.Translation, p.Texture.ColorA))));
        }
        Assert.That(counts, Is.EquivalentTo(new[] { 1, 2 }));
        Assert.That(primitives, Is.EquivalentTo(Enum.GetValues<SdfPrimitive>()));
        var zeroverse = ProceduralObjects.Generate(new DeterministicRandom(1, 0));
        Assert.That(zeroverse.Count, Is.GreaterThanOrEqualTo(2), "the default style is unchanged");
        var (code, _, error) = DatasetTestSupport.Lrm("dataset", "synth", "--objects", "1", "--style", "fancy", "--out", Path.Combine(ImageFixtures.TemporaryFolder(), "x"));
        Assert.That(code, Is.Not.EqualTo(0));
        Assert.That(error, Does.Contain("fancy"));
    }

    [Test]
    public void BadArgumentsGiveOneClearErrorAndWriteNothing()
    {
        var root = ImageFixtures.TemporaryFolder();
        try
        {
            var output = Path.Combine(root, "out");
            var cases = new (string[] Args, string Expect)[]
            {
                (["--objects", "0"], "--objects"),
                (["--objects", "1", "--views", "0"], "--views"),
                (["--objects", "1", "--resolution", "4"], "--resolution"),
                (["--objects", "1", "--mesh-resolution", "8"], "--mesh-resolution"),
                (["--objects", "1", "--threads", "-2"], "--threads"),
                (["--objects", "1", "--source-distance", "0.5"], "--source-distance"),
            };
            foreach (var (args, expect) in cases)
            {
                var (code, _, error) = DatasetTestSupport.Lrm(["dataset", "synth", .. args, "--out", output]);
                Assert.That(code, Is.EqualTo(1), string.Join(' ', args));
                Assert.That(error, Does.Contain(expect), string.Join(' ', args));
                Assert.That(Directory.Exists(output), Is.False, "nothing written");
            }
            File.WriteAllText(Path.Combine(root, "file"), "x");
            Assert.That(DatasetTestSupport.Lrm("dataset", "synth", "--objects", "1", "--out", Path.Combine(root, "file")).Error, Does.Contain("not a folder"));
            Directory.CreateDirectory(Path.Combine(root, "busy"));
            File.WriteAllText(Path.Combine(root, "busy", "keep.txt"), "x");
            Assert.That(DatasetTestSupport.Lrm("dataset", "synth", "--objects", "1", "--out", Path.Combine(root, "busy")).Error,
                Does.Contain("not empty").And.Contain("--overwrite"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void SourceDistancePutsViewZeroThereAndLeavesTheOtherViews()
    {
        var root = Path.Combine(ImageFixtures.TemporaryFolder(), "source-distance");
        try
        {
            var plain = Path.Combine(root, "plain");
            var fixedSource = Path.Combine(root, "fixed");
            string[] common = ["dataset", "synth", "--objects", "2", "--views", "3", "--resolution", "32", "--seed", "42", "--mesh-resolution", "32"];
            Assert.That(DatasetTestSupport.Lrm([.. common, "--out", plain]).ExitCode, Is.EqualTo(0));
            Assert.That(DatasetTestSupport.Lrm([.. common, "--source-distance", "2.5", "--out", fixedSource]).ExitCode, Is.EqualTo(0));
            foreach (var name in new[] { "obj_00000", "obj_00001" })
            {
                float[] Pose(string dataset, int view)
                {
                    using var pose = Npy.ReadFloat32(Path.Combine(dataset, name, "pose", $"{view:000}.npy"));
                    return pose.AsSpan<float>().ToArray();
                }
                var before = Pose(plain, 0);
                var after = Pose(fixedSource, 0);
                double Norm(float[] m) => Math.Sqrt(m[3] * (double)m[3] + m[7] * (double)m[7] + m[11] * (double)m[11]);
                Assert.That(Norm(after), Is.EqualTo(2.5).Within(1e-5), $"{name}: view 000 at the given distance");
                Assert.That(Norm(before), Is.InRange(DatasetCamera.MinDistance, DatasetCamera.MaxDistance));
                for (var k = 0; k < 3; k++)
                {
                    Assert.That(after[4 * k + 3] / Norm(after), Is.EqualTo(before[4 * k + 3] / Norm(before)).Within(1e-5), $"{name}: same direction");
                }
                for (var view = 1; view < 3; view++)
                {
                    Assert.That(Pose(fixedSource, view), Is.EqualTo(Pose(plain, view)), $"{name}: view {view} unchanged");
                    Assert.That(File.ReadAllBytes(Path.Combine(fixedSource, name, "rgba", $"{view:000}.png")),
                        Is.EqualTo(File.ReadAllBytes(Path.Combine(plain, name, "rgba", $"{view:000}.png"))), $"{name}: view {view} unchanged");
                }
            }
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
