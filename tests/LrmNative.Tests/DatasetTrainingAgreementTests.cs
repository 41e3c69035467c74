using LrmNative.Backends;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The dataset generator, <c>lrm dataset check</c> and the training loader on one synthesised dataset: the loader
/// reads back the generator's cameras and intrinsics, its normalised patch cameras cast rays that hit the object
/// exactly where the images have alpha (a reprojection check through the training path), and the checker and the
/// training dataset — both on the one layout reader — accept and refuse the same files.
/// </summary>
[TestFixture]
public sealed class DatasetTrainingAgreementTests
{
    private const int Objects = 2, Views = 4, Size = 32, MeshResolution = 24;
    private const ulong Seed = 11;
    private static string _root = "";
    private static string _valid = "";

    private static readonly DataOptions Options = new()
    {
        ViewsPerSample = Views,
        SourceImageSize = 16,
        RenderMinResolution = Size,
        RenderMaxResolution = Size,
        PatchSize = 20,
    };

    [OneTimeSetUp]
    public static void Synthesize()
    {
        _root = ImageFixtures.TemporaryFolder();
        _valid = Path.Combine(_root, "valid");
        DatasetGeneration.Synthesize(_valid, Objects, new DatasetOptions { Views = Views, Resolution = Size, Seed = Seed, MeshResolution = MeshResolution });
    }

    [OneTimeTearDown]
    public static void Remove() => Directory.Delete(_root, recursive: true);

    // The generator's object k again from the seed: its scene and the cameras it drew (RenderViews draws them first).
    private static (SdfScene Scene, List<DatasetCamera> Cameras) Generated(CpuBackend backend, int index)
    {
        var (scene, _, _, random) = DatasetGeneration.CreateSynthObject(backend, Seed, index, MeshResolution);
        return (scene, [.. Enumerable.Range(0, Views).Select(_ => DatasetCamera.SampleOrbit(random, Size, Size))]);
    }

    private static double[] Slice(Tensor tensor, int index, int count) => [.. tensor.AsSpan<float>().Slice(index * count, count).ToArray().Select(v => (double)v)];

    private static Vec3 Apply(double[] m, Vec3 p, double w) =>
        new(m[0] * p.X + m[1] * p.Y + m[2] * p.Z + m[3] * w, m[4] * p.X + m[5] * p.Y + m[6] * p.Z + m[7] * w, m[8] * p.X + m[9] * p.Y + m[10] * p.Z + m[11] * w);

    [Test]
    public void TrainingLoaderReadsTheGeneratorsCamerasAndItsRaysHitTheAlphaMask()
    {
        Assert.That(DatasetTestSupport.Lrm("dataset", "check", _valid).ExitCode, Is.EqualTo(0), "lrm dataset check: clean");
        using var backend = new CpuBackend();
        var dataset = MultiViewDataset.Open(_valid, Options);
        Assert.That(dataset.Problems, Is.Empty);
        Assert.That(dataset.Objects.Select(o => o.Name), Is.EqualTo(new[] { "obj_00000", "obj_00001" }));
        var generated = Enumerable.Range(0, Objects).Select(k => Generated(backend, k)).ToList();
        for (var k = 0; k < Objects; k++)
        {
            var item = dataset.Objects[k];
            Assert.That(item.ViewIndices, Is.EqualTo(Enumerable.Range(0, Views)));
            for (var v = 0; v < Views; v++)
            {
                Assert.That(item.Poses[v], Is.EqualTo(generated[k].Cameras[v].CameraToWorld.Select(x => (double)x)), $"{item.Name} view {v}: the generator's camera-to-world");
            }
            Assert.That(item.Intrinsics, Is.EqualTo(new PixelIntrinsics(0.75 * Size, 0.75 * Size, Size / 2.0, Size / 2.0, Size, Size)));
        }

        using var loader = new MultiViewLoader(dataset, batchSize: Objects, seed: 3, prefetch: false);
        using var batch = loader.Next();
        Assert.That(batch.Objects.Order(), Is.EqualTo(new[] { "obj_00000", "obj_00001" }), "one epoch of two objects");
        var p = Options.PatchSize;
        int hits = 0, misses = 0;
        for (var row = 0; row < Objects; row++)
        {
            var k = int.Parse(batch.Objects[row].AsSpan(4), System.Globalization.CultureInfo.InvariantCulture);
            var (scene, cameras) = generated[k];
            Assert.That(Slice(batch.SourceCameras, row, 16)[12..], Is.EqualTo(new[] { 0.75, 0.75, 0.5, 0.5 }).Within(1e-7), "normalised intrinsics");
            // Normalisation moves the world by M = canonical · source⁻¹; its inverse takes the loader's rays back to the generator's world.
            var source = cameras[batch.ViewNumbers[row * Views]];
            var raw = source.CameraToWorld.Select(x => (double)x).ToArray();
            var distance = Math.Sqrt(raw[3] * raw[3] + raw[7] * raw[7] + raw[11] * raw[11]);
            Assert.That(Slice(batch.FullCameras, row * Views, 25)[..16], Is.EqualTo(CameraNormalization.Canonical(distance)).Within(1e-6), "the source sits at the canonical pose");
            var back = CameraNormalization.Multiply(raw, CameraNormalization.InverseRigid(CameraNormalization.Canonical(distance)));
            for (var v = 0; v < Views; v++)
            {
                var index = row * Views + v;
                var camera = cameras[batch.ViewNumbers[index]];
                var window = batch.Windows[index];
                Assert.That(window.Resolution, Is.EqualTo(Size));
                using var image = Image.Load(DatasetLayout.ImagePath(Path.Combine(_valid, batch.Objects[row]), batch.ViewNumbers[index]));
                var pixels = image.Pixels.AsSpan<float>().ToArray();
                float Alpha(int i, int j) => pixels[4 * ((window.Y + i) * Size + window.X + j) + 3];
                var targetAlpha = batch.TargetAlpha.AsSpan<float>().Slice(index * p * p, p * p).ToArray();

                using var patchCamera = Tensor.FromArray(batch.RenderCameras.AsSpan<float>().Slice(index * 25, 25), 1, 25);
                using var origins = Tensor.Empty([1, p * p, 3]);
                using var directions = Tensor.Empty([1, p * p, 3]);
                using var depths = Tensor.Empty([1, p * p, 4]);
                backend.RenderRays(origins, directions, depths, null, patchCamera, p, p);
                var o = origins.AsSpan<float>().ToArray();
                var d = directions.AsSpan<float>().ToArray();
                for (var i = 0; i < p; i++)
                {
                    for (var j = 0; j < p; j++)
                    {
                        var at = i * p + j;
                        var where = $"{batch.Objects[row]} view {batch.ViewNumbers[index]} pixel ({window.Y + i}, {window.X + j})";
                        Assert.That(targetAlpha[at], Is.EqualTo(Alpha(i, j)).Within(1e-5f), $"{where}: target alpha is the image's");
                        var origin = Apply(back, new Vec3(o[3 * at], o[3 * at + 1], o[3 * at + 2]), 1);
                        var direction = Apply(back, new Vec3(d[3 * at], d[3 * at + 1], d[3 * at + 2]), 0).Normalized();
                        // The generator's own ray for this pixel: the loader's ray taken back to the generator's world.
                        var expected = camera.RayDirection(window.X + j + 0.5, window.Y + i + 0.5);
                        Assert.That(new[] { direction.X, direction.Y, direction.Z }, Is.EqualTo(new[] { expected.X, expected.Y, expected.Z }).Within(2e-5), where);
                        Assert.That(new[] { origin.X, origin.Y, origin.Z }, Is.EqualTo(new[] { camera.Origin.X, camera.Origin.Y, camera.Origin.Z }).Within(2e-5), where);
                        var hit = scene.Intersect(origin, direction, out _);
                        var alpha = targetAlpha[at];
                        // Full or empty pixels are decided by their rays (partial ones are the supersampled silhouette).
                        if (alpha >= 0.999f)
                        {
                            Assert.That(hit, Is.True, $"{where}: opaque in the image, the ray hits the object");
                            hits++;
                        }
                        else if (alpha <= 0.001f)
                        {
                            Assert.That(hit, Is.False, $"{where}: transparent in the image, the ray misses the object");
                            misses++;
                        }
                    }
                }
            }
        }
        Assert.That(hits, Is.GreaterThan(200), "the patches show the object");
        Assert.That(misses, Is.GreaterThan(200), "and background");
    }

    private static string Copy(string name) => DatasetTestSupport.CopyFolder(_valid, Path.Combine(_root, name));

    private static void Write(string path, double[] values, params long[] shape)
    {
        using var tensor = Tensor.FromArray([.. values.Select(v => (float)v)], shape);
        Npy.Write(path, tensor);
    }

    private static readonly double[] Identity = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

    // A (3, 3) pixel K with focal f and principal point (c, c).
    private static double[] MatrixK(double focal, double center) => [focal, 0, center, 0, focal, center, 0, 0, 1];

    // An RGBA image of width × height (transparent black): an image of the wrong size for the 32² dataset.
    private static void WriteImage(string path, int width, int height)
    {
        using var image = Image.FromRgba(new float[width * height * 4], width, height);
        image.SavePng(path);
    }

    private static void EditPose(string path, Action<double[]> edit)
    {
        var pose = DatasetLayout.ReadPose(path);
        edit(pose);
        Write(path, pose, 4, 4);
    }

    public static IEnumerable<TestCaseData> BadFiles()
    {
        TestCaseData Case(string name, string file, string expect, Action<string> inject) =>
            new TestCaseData(name, file, expect, inject).SetName($"{{m}}({name})");
        yield return Case("missing pose", "pose/002.npy", "has an image but no pose", f => File.Delete(Path.Combine(f, "pose/002.npy")));
        yield return Case("missing image", "rgba/001.png", "has a pose but no image", f => File.Delete(Path.Combine(f, "rgba/001.png")));
        yield return Case("view not numbered NNN", "rgba/7.png", "named by number", f => File.Copy(Path.Combine(f, "rgba/000.png"), Path.Combine(f, "rgba/7.png")));
        yield return Case("scaled pose", "pose/000.npy", "not a rigid transform", f => EditPose(Path.Combine(f, "pose/000.npy"), m =>
        {
            m[1] *= 1.01;
            m[5] *= 1.01;
            m[9] *= 1.01;
        }));
        yield return Case("mirrored pose", "pose/001.npy", "reflection", f => EditPose(Path.Combine(f, "pose/001.npy"), m =>
        {
            m[0] = -m[0];
            m[4] = -m[4];
            m[8] = -m[8];
        }));
        yield return Case("bottom row", "pose/003.npy", "bottom row", f => EditPose(Path.Combine(f, "pose/003.npy"), m => m[13] = 0.01));
        yield return Case("NaN pose", "pose/002.npy", "non-finite", f => EditPose(Path.Combine(f, "pose/002.npy"), m => m[7] = double.NaN));
        yield return Case("pose shape", "pose/001.npy", "(4, 4) or (3, 4)", f => Write(Path.Combine(f, "pose/001.npy"), new double[8], 2, 4));
        yield return Case("missing intrinsics", "intrinsics.npy", "missing", f => File.Delete(Path.Combine(f, "intrinsics.npy")));
        yield return Case("NaN intrinsics", "intrinsics.npy", "not finite", f => Write(Path.Combine(f, "intrinsics.npy"), [24, double.NaN, 16, 16, 32, 32], 3, 2));
        yield return Case("fractional size", "intrinsics.npy", "positive integers", f => Write(Path.Combine(f, "intrinsics.npy"), [24, 24, 16, 16, 32.5, 32], 3, 2));
        yield return Case("negative focal", "intrinsics.npy", "focal lengths must be positive", f => Write(Path.Combine(f, "intrinsics.npy"), [-24, 24, 16, 16, 32, 32], 3, 2));
        yield return Case("skewed K", "intrinsics.npy", "(3, 3) K", f => Write(Path.Combine(f, "intrinsics.npy"), [24, 0.5, 16, 0, 24, 16, 0, 0, 1], 3, 3));
        yield return Case("intrinsics shape", "intrinsics.npy", "(3, 2)", f => Write(Path.Combine(f, "intrinsics.npy"), [24, 24, 16, 16], 2, 2));
        // Any view can be a sample's source, and normalisation needs the source's distance from the origin.
        yield return Case("camera at the origin", "pose/002.npy", "is at the origin", f => Write(Path.Combine(f, "pose/002.npy"), Identity, 4, 4));
        yield return Case("absurd focal", "intrinsics.npy", "fx/width = 3.13E+28", f => Write(Path.Combine(f, "intrinsics.npy"), [1e30, 1e30, 16, 16, 32, 32], 3, 2));
        yield return Case("absurd focal in K", "intrinsics.npy", "fx/width = 3.13E+28", f => Write(Path.Combine(f, "intrinsics.npy"), MatrixK(1e30, 16), 3, 3));
        yield return Case("tiny focal", "intrinsics.npy", "must lie in (0.001, 1000)", f => Write(Path.Combine(f, "intrinsics.npy"), [0.01, 0.01, 16, 16, 32, 32], 3, 2));
        yield return Case("absurd principal point", "intrinsics.npy", "cx/width = -3.13E+28", f => Write(Path.Combine(f, "intrinsics.npy"), MatrixK(24, -1e30), 3, 3));
        yield return Case("image size against intrinsics", "rgba/002.png", "image of the wrong size: 36×32, but", f => WriteImage(Path.Combine(f, "rgba/002.png"), 36, 32));
        // Without a size in the intrinsics the object's size is most of its images', so the odd one is blamed, source or not.
        yield return Case("image size with K", "rgba/002.png", "image of the wrong size: 32×36, but 3 of the object's 4 images are 32×32", f =>
        {
            Write(Path.Combine(f, "intrinsics.npy"), MatrixK(24, 16), 3, 3);
            WriteImage(Path.Combine(f, "rgba/002.png"), 32, 36);
        });
        yield return Case("first image size with K", "rgba/000.png", "image of the wrong size: 32×36, but 3 of the object's 4 images are 32×32", f =>
        {
            Write(Path.Combine(f, "intrinsics.npy"), MatrixK(24, 16), 3, 3);
            WriteImage(Path.Combine(f, "rgba/000.png"), 32, 36);
        });
    }

    // The same injected problem: the checker names the file; the training dataset stops naming object and file, or
    // (skip policy) reports it once and keeps the other object.
    [TestCaseSource(nameof(BadFiles))]
    public void CheckAndTrainingRefuseTheSameFiles(string name, string file, string expect, Action<string> inject)
    {
        ArgumentNullException.ThrowIfNull(inject);
        var root = Copy(name.Replace(' ', '_'));
        var folder = Path.Combine(root, "obj_00001");
        inject(folder);
        var path = Path.Combine(folder, file);

        var report = DatasetChecker.Check(root);
        Assert.That(report.Problems, Has.Some.StartsWith(path + ": ").And.Contain(expect), string.Join("\n", report.Problems));

        var fatal = Assert.Throws<LrmFormatException>(() => MultiViewDataset.Open(root, Options))!;
        Assert.That(fatal.Message, Does.Contain(path).And.Contain("'obj_00001'").And.Contain(expect));

        var skipping = MultiViewDataset.Open(root, Options with { BadData = BadDataPolicy.Skip });
        Assert.That(skipping.Objects.Select(o => o.Name), Is.EqualTo(new[] { "obj_00000" }));
        Assert.That(skipping.Problems, Has.Count.EqualTo(1));
        Assert.That((skipping.Problems[0].Object, skipping.Problems[0].File), Is.EqualTo(("obj_00001", path)));
    }

    // The sanity range is wide enough for every real camera: a 170° fisheye (f/W ≈ 0.04), a 1° telephoto (≈ 57), a
    // principal point off a crop; and refuses what no camera has. A K is judged with its images' size.
    [TestCase(0.044, 0.5, true)]
    [TestCase(0.75, 0.5, true)]
    [TestCase(57.3, 0.5, true)]
    [TestCase(1.2, -3.0, true)]
    [TestCase(1.2, 40.0, true)]
    [TestCase(0.0005, 0.5, false)]
    [TestCase(2000.0, 0.5, false)]
    [TestCase(1.2, 2000.0, false)]
    public void IntrinsicsSanityRangeKeepsEveryRealCamera(double focal, double center, bool accepted)
    {
        const int Width = 512, Height = 384;
        var intrinsics = new PixelIntrinsics(focal * Width, focal * Height, center * Width, center * Height, Width, Height);
        var problem = DatasetLayout.IntrinsicsRangeProblem(intrinsics, Width, Height);
        Assert.That(problem, accepted ? Is.Null : Does.Contain("must lie in"));
    }

    // Forms both accept: a (3, 3) K equal to the (3, 2) intrinsics, (3, 4) poses; the loader's cameras do not change.
    [Test]
    public void CheckAndTrainingAcceptTheSameAlternativeForms()
    {
        var root = Copy("alternative_forms");
        var folder = Path.Combine(root, "obj_00000");
        Write(Path.Combine(folder, "intrinsics.npy"), [24, 0, 16, 0, 24, 16, 0, 0, 1], 3, 3);
        foreach (var view in Enumerable.Range(0, Views))
        {
            var pose = DatasetLayout.ReadPose(DatasetLayout.PosePath(folder, view));
            Write(DatasetLayout.PosePath(folder, view), pose[..12], 3, 4);
        }
        var report = DatasetChecker.Check(root);
        Assert.That(report.Problems, Is.Empty);
        Assert.That(report.Views, Is.EqualTo(Objects * Views));

        float[] Cameras(string dataRoot)
        {
            using var loader = new MultiViewLoader(MultiViewDataset.Open(dataRoot, Options), Objects, seed: 9, prefetch: false);
            using var batch = loader.Next();
            return [.. batch.FullCameras.ToFloatArray(), .. batch.RenderCameras.ToFloatArray(), .. batch.SourceCameras.ToFloatArray()];
        }
        Assert.That(Cameras(root), Is.EqualTo(Cameras(_valid)));
        var item = MultiViewDataset.Open(root, Options).Objects[0];
        Assert.That(item.Intrinsics, Is.EqualTo(new PixelIntrinsics(24, 24, 16, 16, null, null)));
    }
}
