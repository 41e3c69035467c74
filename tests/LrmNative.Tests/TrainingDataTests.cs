using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The multi-view loader on small datasets the tests write in OpenLRM's layout: camera normalisation, targets,
/// patch cameras, deterministic order and resume, and every kind of bad data.
/// </summary>
public sealed class TrainingDataTests
{
    private string _root = "";

    [SetUp]
    public void CreateRoot() => _root = Directory.CreateTempSubdirectory("lrm-data-").FullName;

    [TearDown]
    public void DeleteRoot() => Directory.Delete(_root, recursive: true);

    private const int ImageSide = 32;

    private static readonly DataOptions SmallOptions = new()
    {
        ViewsPerSample = 3,
        SourceImageSize = 16,
        RenderMinResolution = 8,
        RenderMaxResolution = 24,
        PatchSize = 8,
    };

    // A camera at distance d, azimuth/elevation in degrees, looking at the origin (4×4 row-major).
    private static double[] LookAt(double azimuth, double elevation, double distance)
    {
        var (a, e) = (azimuth * Math.PI / 180, elevation * Math.PI / 180);
        var m = Cameras.LookAtOrigin((float)(distance * Math.Cos(e) * Math.Cos(a)), (float)(distance * Math.Cos(e) * Math.Sin(a)), (float)(distance * Math.Sin(e)));
        return [.. m.Select(v => (double)v)];
    }

    // Writes object <name> with <views> views: view v is a constant colour with constant alpha, its pose a camera
    // on a sphere; intrinsics (3, 2) OpenLRM style, or (3, 3) K when asked.
    private string WriteObject(string name, int views = 5, double distance = 2.0, bool matrixK = false, int side = ImageSide)
    {
        var directory = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.Combine(directory, "rgba"));
        Directory.CreateDirectory(Path.Combine(directory, "pose"));
        for (var v = 0; v < views; v++)
        {
            WriteView(directory, v, LookAt(40 * v - 30, 10 + 7 * v, distance + 0.1 * v), side);
        }
        var f = 0.8 * side;
        using var intrinsics = matrixK
            ? Tensor.FromArray([(float)f, 0, side / 2f, 0, (float)f, side / 2f, 0, 0, 1], 3, 3)
            : Tensor.FromArray([(float)f, (float)f, side / 2f, side / 2f, side, side], 3, 2);
        Npy.Write(Path.Combine(directory, "intrinsics.npy"), intrinsics);
        return directory;
    }

    private static (float R, float G, float B, float A) ViewColor(int v) => ((10 + 40 * v) / 255f, (200 - 30 * v) / 255f, (90 + 11 * v) / 255f, (60 + 30 * v) / 255f);

    private static void WriteView(string directory, int v, double[] pose, int side = ImageSide, int? height = null)
    {
        var h = height ?? side;
        var (r, g, b, a) = ViewColor(v);
        var pixels = new float[side * h * 4];
        for (var i = 0; i < side * h; i++)
        {
            (pixels[4 * i], pixels[4 * i + 1], pixels[4 * i + 2], pixels[4 * i + 3]) = (r, g, b, a);
        }
        using var image = Image.FromRgba(pixels, side, h);
        image.SavePng(Path.Combine(directory, "rgba", $"{v:D3}.png"));
        using var tensor = Tensor.FromArray([.. pose.Select(x => (float)x)], 4, 4);
        Npy.Write(Path.Combine(directory, "pose", $"{v:D3}.npy"), tensor);
    }

    private static double[] Pose(Tensor cameras, int index) => [.. cameras.AsSpan<float>().Slice(index * 25, 16).ToArray().Select(v => (double)v)];

    private static double[] RawPose(string directory, int view)
    {
        using var tensor = Npy.ReadFloat32(Path.Combine(directory, "pose", $"{view:D3}.npy"));
        return [.. tensor.ToFloatArray().Select(v => (double)v)];
    }

    [Test]
    public void NormalizationPutsTheSourceAtTheCanonicalPoseAndKeepsRelativePoses()
    {
        var random = new Random(1);
        var poses = Enumerable.Range(0, 5).Select(_ => LookAt(random.NextDouble() * 360, random.NextDouble() * 120 - 60, 1.2 + 2 * random.NextDouble())).ToList();
        // One pose not looking at the origin: normalisation must not assume it.
        poses.Add(CameraNormalization.Multiply(poses[2], [0.6, -0.8, 0, 0.1, 0.8, 0.6, 0, -0.2, 0, 0, 1, 0.3, 0, 0, 0, 1]));
        var normalized = CameraNormalization.Normalize(poses);
        var distance = Math.Sqrt(poses[0][3] * poses[0][3] + poses[0][7] * poses[0][7] + poses[0][11] * poses[0][11]);
        Assert.That(normalized[0], Is.EqualTo(CameraNormalization.Canonical(distance)).Within(1e-12));
        var canonicalFloat = Cameras.LookAtOrigin(0, (float)-distance, 0);
        Assert.That(normalized[0].Select(v => (float)v), Is.EqualTo(canonicalFloat).Within(1e-6f), "the canonical pose is Cameras.LookAtOrigin(0, −d, 0)");
        for (var a = 0; a < poses.Count; a++)
        {
            // The inputs are fp32-rounded rotations (orthonormal to ~1e-7), so "exact" means to that level.
            Assert.That(CameraNormalization.RigidError(normalized[a]), Is.LessThan(1e-6), $"pose {a} stays rigid");
            for (var b = 0; b < poses.Count; b++)
            {
                var before = CameraNormalization.Multiply(CameraNormalization.InverseRigid(poses[a]), poses[b]);
                var after = CameraNormalization.Multiply(CameraNormalization.InverseRigid(normalized[a]), normalized[b]);
                Assert.That(after, Is.EqualTo(before).Within(1e-6), $"relative pose {a} → {b}");
            }
        }
    }

    [Test]
    public void SampleHoldsNormalizedCamerasCompositedTargetsAndConsistentPatchCameras()
    {
        var directory = WriteObject("chair", views: 5, distance: 1.7);
        var dataset = MultiViewDataset.Open(_root, SmallOptions);
        Assert.That(dataset.Objects.Select(o => o.Name), Is.EqualTo(new[] { "chair" }));
        using var loader = new MultiViewLoader(dataset, batchSize: 2, seed: 42);
        using var batch = loader.Next();
        using var backend = new CpuBackend();
        const int views = 3, patch = 8;
        for (var row = 0; row < 2; row++)
        {
            var background = batch.Backgrounds[row];
            Assert.That(new[] { 0f, 0.5f, 1f }, Does.Contain(background));
            var numbers = batch.ViewNumbers.AsSpan(row * views, views).ToArray();
            Assert.That(numbers.Distinct().Count(), Is.EqualTo(views), "distinct views");
            var sourceRaw = RawPose(directory, numbers[0]);
            var distance = Math.Sqrt(sourceRaw[3] * sourceRaw[3] + sourceRaw[7] * sourceRaw[7] + sourceRaw[11] * sourceRaw[11]);
            Assert.That(Pose(batch.FullCameras, row * views), Is.EqualTo(CameraNormalization.Canonical(distance)).Within(1e-6), "source at the canonical pose");
            var expectedSource = Cameras.CanonicalSource((float)distance, 0.8f, 0.5f);
            Assert.That(batch.SourceCameras.AsSpan<float>().Slice(row * 16, 16).ToArray(), Is.EqualTo(expectedSource).Within(1e-6f), "source camera feature");
            for (var v = 0; v < views; v++)
            {
                var index = row * views + v;
                // Relative pose to the source survives normalisation.
                var before = CameraNormalization.Multiply(CameraNormalization.InverseRigid(sourceRaw), RawPose(directory, numbers[v]));
                var after = CameraNormalization.Multiply(CameraNormalization.InverseRigid(Pose(batch.FullCameras, row * views)), Pose(batch.FullCameras, index));
                Assert.That(after, Is.EqualTo(before).Within(1e-5), $"view {v} relative pose");
                // Targets: constant colour composited over the background.
                var (r, g, b, a) = ViewColor(numbers[v]);
                var rgb = batch.TargetRgb.AsSpan<float>().Slice(index * patch * patch * 3, patch * patch * 3);
                var alpha = batch.TargetAlpha.AsSpan<float>().Slice(index * patch * patch, patch * patch);
                for (var p = 0; p < patch * patch; p++)
                {
                    Assert.That(rgb[3 * p], Is.EqualTo(r * a + background * (1 - a)).Within(1e-5f));
                    Assert.That(rgb[3 * p + 1], Is.EqualTo(g * a + background * (1 - a)).Within(1e-5f));
                    Assert.That(rgb[3 * p + 2], Is.EqualTo(b * a + background * (1 - a)).Within(1e-5f));
                    Assert.That(alpha[p], Is.EqualTo(a).Within(1e-5f));
                }
                // The window, and the patch camera: its rays are the full render's rays of the window's pixels.
                var window = batch.Windows[index];
                Assert.That(window.Resolution, Is.InRange(8, 24));
                Assert.That(window.X, Is.InRange(0, window.Resolution - patch));
                Assert.That(window.Y, Is.InRange(0, window.Resolution - patch));
                AssertPatchRaysMatch(backend, batch, index, window);
            }
            var (sr, sg, sb, sa) = ViewColor(numbers[0]);
            var source = batch.SourceImages.AsSpan<float>().Slice(row * 3 * 16 * 16, 3 * 16 * 16);
            Assert.That(source[0], Is.EqualTo(sr * sa + background * (1 - sa)).Within(1e-5f));
            Assert.That(source[2 * 256 + 255], Is.EqualTo(sb * sa + background * (1 - sa)).Within(1e-5f));
        }
    }

    [Test]
    public void SourceBackgroundCompositesOnlyTheEncodersInputOnThatColour()
    {
        WriteObject("chair", views: 5, distance: 1.7);
        var dataset = MultiViewDataset.Open(_root, SmallOptions with { SourceBackground = 1f });
        using var loader = new MultiViewLoader(dataset, batchSize: 6, seed: 42);
        using var batch = loader.Next();
        const int views = 3, patch = 8;
        var backgrounds = new HashSet<float>();
        for (var row = 0; row < 6; row++)
        {
            var background = batch.Backgrounds[row];
            backgrounds.Add(background);
            var numbers = batch.ViewNumbers.AsSpan(row * views, views).ToArray();
            var (sr, sg, sb, sa) = ViewColor(numbers[0]);
            var source = batch.SourceImages.AsSpan<float>().Slice(row * 3 * 16 * 16, 3 * 16 * 16);
            Assert.That(source[0], Is.EqualTo(sr * sa + (1 - sa)).Within(1e-5f), "the source on white whatever the sample's background");
            Assert.That(source[256 + 17], Is.EqualTo(sg * sa + (1 - sa)).Within(1e-5f));
            Assert.That(source[2 * 256 + 255], Is.EqualTo(sb * sa + (1 - sa)).Within(1e-5f));
            // The source view is still a supervised target, on the sample's background.
            var rgb = batch.TargetRgb.AsSpan<float>().Slice(row * views * patch * patch * 3, patch * patch * 3);
            Assert.That(rgb[0], Is.EqualTo(sr * sa + background * (1 - sa)).Within(1e-5f), "the source target on the drawn background");
        }
        Assert.That(backgrounds.Count, Is.GreaterThan(1), "the targets' backgrounds still vary");
        Assert.Throws<LrmInvalidArgumentException>(() => MultiViewDataset.Open(_root, SmallOptions with { SourceBackground = 2f }));
    }

    [Test]
    public void SourceViewFixesTheConditioningViewAndStillDrawsTheOthers()
    {
        WriteObject("chair", views: 5, distance: 1.7);
        var dataset = MultiViewDataset.Open(_root, SmallOptions with { SourceView = 2 });
        using var loader = new MultiViewLoader(dataset, batchSize: 8, seed: 7);
        using var batch = loader.Next();
        const int views = 3;
        var others = new HashSet<int>();
        for (var row = 0; row < 8; row++)
        {
            var numbers = batch.ViewNumbers.AsSpan(row * views, views).ToArray();
            Assert.That(numbers[0], Is.EqualTo(2), "every sample is conditioned on view 2");
            Assert.That(numbers.Distinct().Count(), Is.EqualTo(views), "the views of a sample are distinct");
            others.UnionWith(numbers[1..]);
            var (sr, _, sb, sa) = ViewColor(2);
            var background = batch.Backgrounds[row];
            var source = batch.SourceImages.AsSpan<float>().Slice(row * 3 * 16 * 16, 3 * 16 * 16);
            Assert.That(source[0], Is.EqualTo(sr * sa + background * (1 - sa)).Within(1e-5f), "the encoder reads view 2");
            Assert.That(source[2 * 256 + 255], Is.EqualTo(sb * sa + background * (1 - sa)).Within(1e-5f));
        }
        Assert.That(others, Is.EquivalentTo(new[] { 0, 1, 3, 4 }), "the other views are still drawn from all the rest");

        // Without the option the source varies (LRM's default).
        using var randomLoader = new MultiViewLoader(MultiViewDataset.Open(_root, SmallOptions), batchSize: 8, seed: 7);
        using var randomBatch = randomLoader.Next();
        Assert.That(Enumerable.Range(0, 8).Select(row => randomBatch.ViewNumbers[row * views]).Distinct().Count(), Is.GreaterThan(1));
    }

    [Test]
    public void SourceViewMissingFromAnObjectIsBadDataNamingTheFile()
    {
        WriteObject("chair", views: 5);
        WriteObject("table", views: 3);
        var error = Assert.Throws<LrmFormatException>(() => MultiViewDataset.Open(_root, SmallOptions with { SourceView = 4 }));
        Assert.That(error!.Message, Does.Contain(Path.Combine("table", "rgba", "004.png")).And.Contain("source view 4"));
        var skipping = MultiViewDataset.Open(_root, SmallOptions with { SourceView = 4, BadData = BadDataPolicy.Skip });
        Assert.That(skipping.Objects.Select(o => o.Name), Is.EqualTo(new[] { "chair" }));
        Assert.That(skipping.Problems.Single().Object, Is.EqualTo("table"));
        Assert.Throws<LrmInvalidArgumentException>(() => MultiViewDataset.Open(_root, SmallOptions with { SourceView = -1 }));
    }

    private static void AssertPatchRaysMatch(CpuBackend backend, TrainingBatch batch, int index, RenderWindow window)
    {
        int r = window.Resolution, p = window.Size;
        using var fullCamera = Tensor.FromArray(batch.FullCameras.AsSpan<float>().Slice(index * 25, 25), 1, 25);
        using var patchCamera = Tensor.FromArray(batch.RenderCameras.AsSpan<float>().Slice(index * 25, 25), 1, 25);
        using var fullOrigins = Tensor.Empty([1, r * r, 3]);
        using var fullDirections = Tensor.Empty([1, r * r, 3]);
        using var fullDepths = Tensor.Empty([1, r * r, 4]);
        using var patchOrigins = Tensor.Empty([1, p * p, 3]);
        using var patchDirections = Tensor.Empty([1, p * p, 3]);
        using var patchDepths = Tensor.Empty([1, p * p, 4]);
        backend.RenderRays(fullOrigins, fullDirections, fullDepths, null, fullCamera, r, r);
        backend.RenderRays(patchOrigins, patchDirections, patchDepths, null, patchCamera, p, p);
        var full = fullDirections.AsSpan<float>();
        var part = patchDirections.AsSpan<float>();
        for (var i = 0; i < p; i++)
        {
            for (var j = 0; j < p; j++)
            {
                var at = (window.Y + i) * r + window.X + j;
                for (var c = 0; c < 3; c++)
                {
                    Assert.That(part[3 * (i * p + j) + c], Is.EqualTo(full[3 * at + c]).Within(2e-6f), $"ray ({i}, {j}) component {c}");
                }
            }
        }
    }

    [Test]
    public void MatrixIntrinsicsAreNormalizedByTheImageSize()
    {
        WriteObject("k", views: 3, matrixK: true);
        var dataset = MultiViewDataset.Open(_root, SmallOptions);
        using var loader = new MultiViewLoader(dataset, 1, seed: 3, prefetch: false);
        using var batch = loader.Next();
        Assert.That(batch.SourceCameras.AsSpan<float>()[12..].ToArray(), Is.EqualTo(new[] { 0.8f, 0.8f, 0.5f, 0.5f }).Within(1e-6f));
        Assert.That(batch.FullCameras.AsSpan<float>().Slice(16, 9).ToArray(), Is.EqualTo(new[] { 0.8f, 0, 0.5f, 0, 0.8f, 0.5f, 0, 0, 1 }).Within(1e-6f));
    }

    [Test]
    public void OrderIsSeededPerEpochAndResumingReproducesTheSameBatches()
    {
        foreach (var name in new[] { "a", "b", "c", "d", "e" })
        {
            WriteObject(name, views: 4);
        }
        var dataset = MultiViewDataset.Open(_root, SmallOptions);
        List<(DataPosition Start, string[] Objects, float[] Rgb, float[] Cameras)> Run(ulong seed, DataPosition start, int batches, bool prefetch)
        {
            using var loader = new MultiViewLoader(dataset, 2, seed, start, prefetch);
            var list = new List<(DataPosition, string[], float[], float[])>();
            for (var i = 0; i < batches; i++)
            {
                using var batch = loader.Next();
                list.Add((batch.Start, [.. batch.Objects], batch.TargetRgb.ToFloatArray(), batch.RenderCameras.ToFloatArray()));
            }
            return list;
        }
        var straight = Run(7, default, 6, prefetch: true);
        var again = Run(7, default, 6, prefetch: false);
        for (var i = 0; i < straight.Count; i++)
        {
            Assert.That(again[i].Objects, Is.EqualTo(straight[i].Objects), $"batch {i} objects");
            Assert.That(again[i].Rgb, Is.EqualTo(straight[i].Rgb), $"batch {i} targets");
            Assert.That(again[i].Cameras, Is.EqualTo(straight[i].Cameras), $"batch {i} cameras");
        }
        // Batches 0..2 cover epoch 0 (5 objects) and spill into epoch 1: each epoch is a permutation.
        var firstEpoch = straight.Take(2).SelectMany(b => b.Objects).Append(straight[2].Objects[0]).ToArray();
        Assert.That(firstEpoch.Order(), Is.EqualTo(new[] { "a", "b", "c", "d", "e" }), "epoch 0 visits every object once");
        Assert.That(straight[2].Start, Is.EqualTo(new DataPosition(0, 4)));
        Assert.That(straight[3].Start, Is.EqualTo(new DataPosition(1, 1)));

        // Resume from the position batch 3 started at: the same batches 3..5.
        var resumed = Run(7, straight[3].Start, 3, prefetch: true);
        for (var i = 0; i < 3; i++)
        {
            Assert.That(resumed[i].Objects, Is.EqualTo(straight[3 + i].Objects));
            Assert.That(resumed[i].Rgb, Is.EqualTo(straight[3 + i].Rgb));
            Assert.That(resumed[i].Cameras, Is.EqualTo(straight[3 + i].Cameras));
        }

        using var loader = new MultiViewLoader(dataset, 1, seed: 7, prefetch: false);
        var orders = Enumerable.Range(0, 6).Select(e => loader.EpochOrder(e)).ToList();
        Assert.That(orders.All(o => o.Order().SequenceEqual(Enumerable.Range(0, 5))), "permutations");
        Assert.That(orders.Select(o => string.Join(",", o)).Distinct().Count(), Is.GreaterThan(1), "epochs reshuffle");
        var other = Run(8, default, 6, prefetch: false);
        Assert.That(other.Select(b => string.Join(",", b.Objects)), Is.Not.EqualTo(straight.Select(b => string.Join(",", b.Objects))), "another seed, another order");
    }

    [Test]
    public void BackgroundsAndResolutionsCoverTheirRanges()
    {
        foreach (var name in new[] { "a", "b", "c" })
        {
            WriteObject(name, views: 3, side: 16);
        }
        var dataset = MultiViewDataset.Open(_root, SmallOptions);
        using var loader = new MultiViewLoader(dataset, 3, seed: 1);
        var backgrounds = new HashSet<float>();
        var resolutions = new HashSet<int>();
        for (var i = 0; i < 25; i++)
        {
            using var batch = loader.Next();
            backgrounds.UnionWith(batch.Backgrounds);
            resolutions.UnionWith(batch.Windows.Select(w => w.Resolution));
        }
        Assert.That(backgrounds.Order(), Is.EqualTo(new[] { 0f, 0.5f, 1f }));
        Assert.That(resolutions.Min(), Is.EqualTo(8));
        Assert.That(resolutions.Max(), Is.EqualTo(24));
    }

    // Each kind of bad data: fatal names the object and the file; skip reports it and trains on the rest.
    [TestCase("missing-view")]
    [TestCase("not-rigid")]
    [TestCase("nan-intrinsics")]
    [TestCase("wrong-size")]
    [TestCase("too-few-views")]
    [TestCase("corrupt-png")]
    [TestCase("camera-at-origin")]
    [TestCase("absurd-focal")]
    [TestCase("wrong-size-with-k")]
    public void BadDataIsReportedWithObjectAndFileAndSkippedOnlyWhenAsked(string kind)
    {
        WriteObject("good1", views: 4);
        var bad = WriteObject("bad", views: 4);
        WriteObject("good2", views: 4);
        string file;
        switch (kind)
        {
            case "missing-view":
                file = Path.Combine(bad, "pose", "002.npy");
                File.Delete(file);
                break;
            case "not-rigid":
                file = Path.Combine(bad, "pose", "001.npy");
                using (var pose = Tensor.FromArray([.. LookAt(10, 20, 2).Select((v, i) => (float)(i % 4 < 3 && i < 12 ? v * 1.1 : v))], 4, 4))
                {
                    Npy.Write(file, pose);
                }
                break;
            case "nan-intrinsics":
                file = Path.Combine(bad, "intrinsics.npy");
                using (var k = Tensor.FromArray([25.6f, float.NaN, 16, 16, 32, 32], 3, 2))
                {
                    Npy.Write(file, k);
                }
                break;
            case "wrong-size":
                file = Path.Combine(bad, "rgba", "003.png");
                WriteView(bad, 3, LookAt(0, 0, 2), side: ImageSide, height: ImageSide + 4);
                break;
            case "camera-at-origin":
                // The identity: a camera at the world origin, where the object is; as a sample's source it has no distance.
                file = Path.Combine(bad, "pose", "002.npy");
                using (var pose = Tensor.FromArray([1f, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 4, 4))
                {
                    Npy.Write(file, pose);
                }
                break;
            case "absurd-focal":
                file = Path.Combine(bad, "intrinsics.npy");
                using (var k = Tensor.FromArray([1e30f, 1e30f, 16, 16, 32, 32], 3, 2))
                {
                    Npy.Write(file, k);
                }
                break;
            case "wrong-size-with-k":
                // A K gives no size: the odd image is found against the others, whichever view is the source.
                bad = WriteObject("bad", views: 4, matrixK: true);
                file = Path.Combine(bad, "rgba", "001.png");
                WriteView(bad, 1, LookAt(0, 0, 2), side: ImageSide, height: ImageSide + 4);
                break;
            case "too-few-views":
                file = Path.Combine(bad, "rgba");
                foreach (var v in new[] { 1, 2, 3 })
                {
                    File.Delete(Path.Combine(bad, "rgba", $"{v:D3}.png"));
                    File.Delete(Path.Combine(bad, "pose", $"{v:D3}.npy"));
                }
                break;
            default:
                file = Path.Combine(bad, "rgba", "000.png");
                var bytes = File.ReadAllBytes(file);
                File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);
                break;
        }
        var options = SmallOptions with { ViewsPerSample = 4 };
        // Views are drawn at random, so a broken image surfaces when a sample uses it: every view is used here (V = 4 of 4).
        var fatal = Assert.Throws<LrmFormatException>(() =>
        {
            var dataset = MultiViewDataset.Open(_root, options);
            using var loader = new MultiViewLoader(dataset, 3, seed: 5, prefetch: false);
            using var batch = loader.Next();
        })!;
        Assert.That(fatal.Message, Does.Contain("'bad'").And.Contain(file), kind);

        var skipping = MultiViewDataset.Open(_root, options with { BadData = BadDataPolicy.Skip });
        using var skipLoader = new MultiViewLoader(skipping, 2, seed: 5);
        var seen = new HashSet<string>();
        var reportedByBatches = new List<DataProblem>();
        for (var i = 0; i < 4; i++)
        {
            using var batch = skipLoader.Next();
            seen.UnionWith(batch.Objects);
            reportedByBatches.AddRange(batch.Skipped);
            Assert.That(batch.TargetRgb.ToFloatArray().All(float.IsFinite), Is.True);
        }
        Assert.That(seen.Order(), Is.EqualTo(new[] { "good1", "good2" }), "only good objects are trained on");
        var problems = skipping.Problems.Concat(skipLoader.Problems).ToList();
        Assert.That(problems, Has.Count.EqualTo(1), "reported once");
        Assert.That(problems[0].Object, Is.EqualTo("bad"));
        Assert.That(problems[0].File, Is.EqualTo(file));
        // A problem found while loading (not when the folder was opened) comes with the one batch that found it, for the trainer to report.
        Assert.That(reportedByBatches, Is.EqualTo(skipLoader.Problems), "each loader problem reported by one batch");
        // Sizes come from the headers when the dataset opens; only an image that does not decode is found by the loader.
        Assert.That(reportedByBatches, Has.Count.EqualTo(kind == "corrupt-png" ? 1 : 0), "an undecodable image is found by the loader");
        Assert.That(fatal.Message, Does.Contain("--skip-bad-data"), "the fatal message names the flag that skips");
    }

    [Test]
    public void DisposingALoaderWhosePendingBatchFailedKeepsTheExceptionInFlight()
    {
        WriteObject("one", views: 3);
        var dataset = MultiViewDataset.Open(_root, SmallOptions);
        // A batch too large to allocate fails on the background task with an OutOfMemoryException, not an LrmException:
        // disposing the loader must neither throw it nor let it replace the exception being unwound.
        var error = Assert.Throws<InvalidOperationException>(() =>
        {
            using var loader = new MultiViewLoader(dataset, int.MaxValue, seed: 1);
            throw new InvalidOperationException("the step's own failure");
        })!;
        Assert.That(error.Message, Is.EqualTo("the step's own failure"));
        var loader = new MultiViewLoader(dataset, int.MaxValue, seed: 1);
        Assert.DoesNotThrow(loader.Dispose);
    }

    // An odd-sized image is found when the dataset opens, even when a sample reads one view (with a K, whose
    // normalisation needs the object's one size); one changed after opening is found when it is loaded. Both errors
    // name the file and both sizes.
    [Test]
    public void AnImageOfTheWrongSizeIsNamedWithBothSizesWhateverTheViewsPerSample()
    {
        var folder = WriteObject("k", views: 3, matrixK: true);
        var odd = Path.Combine(folder, "rgba", "002.png");
        WriteView(folder, 2, LookAt(0, 0, 2), side: ImageSide, height: ImageSide + 4);
        var single = SmallOptions with { ViewsPerSample = 1 };
        var error = Assert.Throws<LrmFormatException>(() => MultiViewDataset.Open(_root, single))!;
        Assert.That(error.Message, Does.Contain(odd).And.Contain("'k'").And.Contain("32×36, but 2 of the object's 3 images are 32×32"));
        var skipped = Assert.Throws<LrmFormatException>(() => MultiViewDataset.Open(_root, single with { BadData = BadDataPolicy.Skip }))!;
        Assert.That(skipped.Message, Does.Contain("no usable objects").And.Contain(odd));

        WriteView(folder, 2, LookAt(0, 0, 2));
        var dataset = MultiViewDataset.Open(_root, SmallOptions);
        WriteView(folder, 0, LookAt(0, 0, 2), side: ImageSide + 8);
        using var loader = new MultiViewLoader(dataset, 1, seed: 3, prefetch: false);
        var changed = Assert.Throws<LrmFormatException>(() => loader.Next().Dispose())!;
        Assert.That(changed.Message, Does.Contain(Path.Combine(folder, "rgba", "000.png")).And.Contain("40×40, but 3 of the object's 3 images are 32×32"));
    }

    [Test]
    public void EmptyOrMissingDatasetsAndBadSettingsAreClearErrors()
    {
        Assert.That(Assert.Throws<LrmFormatException>(() => MultiViewDataset.Open(Path.Combine(_root, "nope")))!.Message, Does.Contain("not found"));
        Assert.That(Assert.Throws<LrmFormatException>(() => MultiViewDataset.Open(_root))!.Message, Does.Contain("no object folders"));
        Assert.Throws<LrmInvalidArgumentException>(() => MultiViewDataset.Open(_root, SmallOptions with { RenderMinResolution = 4 }));
        Assert.Throws<LrmInvalidArgumentException>(() => MultiViewDataset.Open(_root, SmallOptions with { Backgrounds = [] }));
    }
}
