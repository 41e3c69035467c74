using System.Text.Json;
using LrmNative.Cli;
using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Metrics;
using LrmNative.Model;
using LrmNative.Training;
using NUnit.Framework;

namespace LrmNative.Tests;

/// <summary>
/// <c>lrm eval model</c> on an "oracle" dataset made from the tiny model itself: its own reconstruction of an input
/// image, rendered from known cameras (with the renders' opacity as alpha) and stored in a rotated world
/// frame, with mesh.ply = its own extracted mesh in that frame. Only if the evaluation conditions the model as training
/// does, normalises the cameras as training does, composites on the same (white) background and moves the ground-truth
/// mesh into the normalised frame does it score the oracle as exact; perturbed poses must drop the scores.
/// </summary>
[TestFixture]
public sealed class EvalModelTests
{
    private const int Size = 32;
    private const int MeshResolution = 32;
    private const float Density = 0.5f;
    private const double SourceDistance = 2.4;
    private const int Samples = 4000;
    private string _folder = "";

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "lrm-evalmodel-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_folder, recursive: true);

    // The dataset's world frame, far from the normalised one: rotation by 40° about (1, 2, 3)/|…| (no shift: camera
    // normalisation, like every LRM dataset, takes the object to sit at the world origin).
    private static double[] World()
    {
        double x = 1, y = 2, z = 3;
        var n = Math.Sqrt(x * x + y * y + z * z);
        (x, y, z) = (x / n, y / n, z / n);
        var a = 40 * Math.PI / 180;
        double c = Math.Cos(a), s = Math.Sin(a), t = 1 - c;
        return
        [
            t * x * x + c, t * x * y - s * z, t * x * z + s * y, 0,
            t * x * y + s * z, t * y * y + c, t * y * z - s * x, 0,
            t * x * z - s * y, t * y * z + s * x, t * z * z + c, 0,
            0, 0, 0, 1,
        ];
    }

    // Rotation by `degrees` about the world z axis through the origin (an orbit step).
    private static double[] RotationZ(double degrees)
    {
        var a = degrees * Math.PI / 180;
        return [Math.Cos(a), -Math.Sin(a), 0, 0, Math.Sin(a), Math.Cos(a), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    }

    // The source image: a 32² RGBA picture (two coloured discs on transparency), stored as 8-bit PNG.
    private static float[] SourcePixels()
    {
        var rgba = new float[Size * Size * 4];
        for (var i = 0; i < Size; i++)
        {
            for (var j = 0; j < Size; j++)
            {
                var p = 4 * (i * Size + j);
                double u = (j + 0.5) / Size - 0.5, v = (i + 0.5) / Size - 0.5;
                if (u * u + v * v < 0.12)
                {
                    rgba[p] = 0.9f;
                    rgba[p + 1] = (float)(0.3 + v);
                    rgba[p + 2] = 0.2f;
                    rgba[p + 3] = 1;
                }
                if ((u - 0.15) * (u - 0.15) + (v + 0.1) * (v + 0.1) < 0.02)
                {
                    rgba[p] = 0.1f;
                    rgba[p + 1] = 0.4f;
                    rgba[p + 2] = 0.8f;
                    rgba[p + 3] = 1;
                }
            }
        }
        return rgba;
    }

    // Target cameras in the normalised frame: look-at cameras around the object at varied distances and heights.
    private static double[][] TargetCameras()
    {
        var cameras = new List<double[]>();
        for (var i = 0; i < 9; i++)
        {
            var azimuth = (-90 + 40 * (i + 1)) * Math.PI / 180;
            var distance = 2.0 + 0.1 * (i % 4);
            var height = -0.4 + 0.2 * (i % 5);
            var horizontal = Math.Sqrt(distance * distance - height * height);
            var pose = Cameras.LookAtOrigin((float)(horizontal * Math.Cos(azimuth)), (float)(horizontal * Math.Sin(azimuth)), (float)height);
            cameras.Add([.. pose.Select(v => (double)v)]);
        }
        return [.. cameras];
    }

    /// <summary>
    /// Writes the oracle object under <paramref name="root"/>/<paramref name="name"/>; <paramref name="perturb"/> changes
    /// stored poses afterwards (view number → left-multiplied rotation) without changing the images or the mesh.
    /// Returns the mesh in the normalised frame (null without one).
    /// </summary>
    private static Mesh? WriteOracle(string root, string name, Dictionary<int, double[]>? perturb = null, bool withMesh = true)
    {
        var folder = Path.Combine(root, name);
        Directory.CreateDirectory(Path.Combine(folder, DatasetLayout.ImagesFolder));
        Directory.CreateDirectory(Path.Combine(folder, DatasetLayout.PosesFolder));
        using (var source = Tensor.FromArray(SourcePixels(), Size, Size, 4))
        {
            Image.WritePng(DatasetLayout.ImagePath(folder, 0), source);
        }
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);

        // The model's input exactly as a training sample's source: the PNG as read back, on white, resized; the
        // canonical camera at the source's distance with the focal 0.75 and centred principal point.
        using var image = Image.Load(DatasetLayout.ImagePath(folder, 0));
        var pixels = image.Pixels.AsSpan<float>();
        var plane = Size * Size;
        using var planar = Tensor.Empty([3, Size, Size]);
        var rgb = planar.AsSpan<float>();
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                rgb[c * plane + p] = pixels[4 * p + c] * pixels[4 * p + 3] + (1 - pixels[4 * p + 3]);
            }
        }
        var s = lrm.InputResolution;
        using var input = Tensor.Empty([1, 3, s, s]);
        MultiViewDataset.ResizeSourceRgb(lrm.Backend, planar, s, input.AsSpan<float>());
        var canonical = CameraNormalization.Canonical(SourceDistance);
        float[] feature = [.. canonical.Take(12).Select(v => (float)v), 0.75f, 0.75f, 0.5f, 0.5f];
        using var reconstruction = lrm.ReconstructPrepared(input, feature, "oracle");

        var world = World();
        var poses = new List<double[]> { canonical };
        var targets = TargetCameras();
        for (var v = 0; v < targets.Length; v++)
        {
            using var view = reconstruction.Render(Camera.FromCameraToWorld([.. targets[v].Select(x => (float)x)]), Size, Size);
            // Straight RGB and alpha such that compositing on white gives the render back.
            var color = view.Color.Pixels.AsSpan<float>();
            var rgba = new float[plane * 4];
            for (var p = 0; p < plane; p++)
            {
                var alpha = view.Opacity[p];
                rgba[4 * p + 3] = alpha;
                for (var c = 0; c < 3; c++)
                {
                    rgba[4 * p + c] = alpha > 1e-6f ? Math.Clamp((color[4 * p + c] - (1 - alpha)) / alpha, 0f, 1f) : 0f;
                }
            }
            using var pixelsOut = Tensor.FromArray(rgba, Size, Size, 4);
            Image.WritePng(DatasetLayout.ImagePath(folder, v + 1), pixelsOut);
            poses.Add(targets[v]);
        }
        for (var v = 0; v < poses.Count; v++)
        {
            var stored = CameraNormalization.Multiply(world, poses[v]);
            if (perturb is not null && perturb.TryGetValue(v, out var rotation))
            {
                stored = CameraNormalization.Multiply(rotation, stored);
            }
            using var pose = Tensor.FromArray(stored.Select(x => (float)x).ToArray(), 4, 4);
            Npy.Write(DatasetLayout.PosePath(folder, v), pose);
        }
        using (var intrinsics = Tensor.FromArray([0.75f * Size, 0.75f * Size, Size / 2f, Size / 2f, Size, Size], 3, 2))
        {
            Npy.Write(Path.Combine(folder, DatasetLayout.IntrinsicsFile), intrinsics);
        }
        if (withMesh)
        {
            var mesh = reconstruction.ExtractMesh(MeshResolution, Density, coarseToFine: false); // as the evaluation extracts it
            Assert.That(mesh.IsEmpty, Is.False, "the tiny model has a surface at the test density");
            ModelEvaluation.Transformed(mesh, world).SavePly(Path.Combine(folder, DatasetLayout.MeshFile));
            return mesh;
        }
        return null;
    }

    // What the protocol gives a mesh against itself: surface sampling (two independent point sets) sets a floor on
    // Chamfer distance and a ceiling on F-score that even a perfect prediction cannot pass.
    private static ShapeScores SamplingFloor(Mesh mesh) => MeshMetrics.Compare(mesh, mesh, Samples, SurfaceSampler.DefaultSeed, PointCloudMetrics.DefaultThreshold);

    private static IReadOnlyList<ObjectEvaluation> Evaluate(string data, string? json = null, int views = 8, string? output = null)
    {
        using var text = new StringWriter();
        var results = EvalCommand.RunModel(Golden.TinyModelDirectory, data, new ModelEvaluationOptions
        {
            Views = views,
            MeshResolution = MeshResolution,
            Density = Density,
            Samples = Samples,
            OutputDirectory = output,
        }, Device.Cpu, json, text);
        TestContext.Out.WriteLine(text.ToString());
        Assert.That(results.Interrupted, Is.False);
        return results.Objects;
    }

    [Test]
    public void OracleDatasetScoresAsExact()
    {
        var data = Path.Combine(_folder, "data");
        var mesh = WriteOracle(data, "oracle")!;
        var floor = SamplingFloor(mesh);
        Assert.That(floor.FScore, Is.GreaterThan(0.95), "the tiny model's surface is sampled densely enough for the test");
        var json = Path.Combine(_folder, "scores.json");
        var results = Evaluate(data, json, output: Path.Combine(_folder, "out"));
        Assert.That(results, Has.Count.EqualTo(1));
        var r = results[0];
        Assert.That(r.Views.Select(v => v.View), Is.EqualTo(new[] { 1, 2, 3, 4, 5, 6, 7, 8 }), "8 of the 9 other views, evenly chosen");
        foreach (var v in r.Views)
        {
            Assert.That(v.Psnr, Is.GreaterThanOrEqualTo(40), $"view {v.View}: the oracle's render must match its ground truth");
            Assert.That(v.Ssim, Is.GreaterThan(0.99), $"view {v.View}");
        }
        Assert.That(r.Shape, Is.Not.Null);
        // The extracted mesh is the ground-truth mesh moved back into the normalised frame: the scores are the sampling floor's.
        Assert.That(r.Shape!.Value.Chamfer, Is.EqualTo(floor.Chamfer).Within(1e-5));
        Assert.That(r.Shape.Value.FScore, Is.EqualTo(floor.FScore).Within(1e-3));

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.That(root.GetProperty("objects").GetArrayLength(), Is.EqualTo(1));
        Assert.That(root.GetProperty("objects")[0].GetProperty("views").GetArrayLength(), Is.EqualTo(8));
        Assert.That(root.GetProperty("mean_fscore").GetDouble(), Is.EqualTo(r.Shape.Value.FScore));
        Assert.That(root.GetProperty("mean_psnr").GetDouble(), Is.EqualTo(r.Psnr));
        Assert.That(root.GetProperty("background").GetString(), Is.EqualTo("white"));
        Assert.That(File.Exists(Path.Combine(_folder, "out", "oracle", "001_render.png")), Is.True);
        Assert.That(File.Exists(Path.Combine(_folder, "out", "oracle", "001_gt.png")), Is.True);
    }

    [Test]
    public void RotatedTargetPoseDropsThatViewsPsnr()
    {
        var data = Path.Combine(_folder, "data");
        // View 3 orbits 6° about the world z axis: its image no longer matches its stored pose.
        var floor = SamplingFloor(WriteOracle(data, "perturbed", new Dictionary<int, double[]> { [3] = RotationZ(6) })!);
        var r = Evaluate(data).Single();
        var perturbed = r.Views.Single(v => v.View == 3);
        Assert.That(perturbed.Psnr, Is.LessThan(35), "a pose off by 6° must not score as exact");
        foreach (var v in r.Views.Where(v => v.View != 3))
        {
            Assert.That(v.Psnr, Is.GreaterThanOrEqualTo(40), $"view {v.View} is untouched");
        }
        Assert.That(r.Shape!.Value.Chamfer, Is.EqualTo(floor.Chamfer).Within(1e-5), "the mesh frame depends only on the source pose");
    }

    [Test]
    public void RotatedSourcePoseMovesEveryViewAndTheMesh()
    {
        var data = Path.Combine(_folder, "data");
        // The source pose orbits 8° about the world's vertical through its origin: the normalisation moves every
        // other view and the ground-truth mesh against the reconstruction.
        var world = World();
        var tilt = CameraNormalization.Multiply(CameraNormalization.Multiply(world, RotationZ(8)), CameraNormalization.InverseRigid(world));
        var floor = SamplingFloor(WriteOracle(data, "source", new Dictionary<int, double[]> { [0] = tilt })!);
        var r = Evaluate(data).Single();
        Assert.That(r.Psnr, Is.LessThan(35));
        Assert.That(r.Shape!.Value.Chamfer, Is.GreaterThan(floor.Chamfer + 5e-3), "the ground-truth mesh is moved by the (now wrong) source normalisation");
    }

    [Test]
    public void ObjectWithoutMeshSkipsMeshMetricsWithANote()
    {
        var data = Path.Combine(_folder, "data");
        WriteOracle(data, "nomesh", withMesh: false);
        var r = Evaluate(data, views: 3).Single();
        Assert.That(r.Views.Select(v => v.View), Is.EqualTo(new[] { 1, 4, 7 }), "3 of 9 others, evenly spaced");
        Assert.That(r.Shape, Is.Null);
        Assert.That(r.Note, Does.Contain("mesh.ply"));
        Assert.That(r.Psnr, Is.GreaterThanOrEqualTo(40));
    }

    [Test]
    public void CancellationStopsAfterTheCurrentObjectAndScoresThoseFinished()
    {
        var data = Path.Combine(_folder, "data");
        WriteOracle(data, "a", withMesh: false);
        WriteOracle(data, "b", new Dictionary<int, double[]> { [3] = RotationZ(6) }, withMesh: false);
        var options = new ModelEvaluationOptions { Views = 3, MeshResolution = MeshResolution, Density = Density, Samples = Samples };
        var json = Path.Combine(_folder, "scores.json");

        // Ctrl+C while object "a" is being scored: its row is the moment the command learns of it.
        using var cancellation = new CancellationTokenSource();
        using var table = new CancellingWriter("a ", cancellation);
        var run = EvalCommand.RunModel(Golden.TinyModelDirectory, data, options, Device.Cpu, json, table, cancellation.Token);
        TestContext.Out.WriteLine(table.ToString());
        Assert.That(run.Interrupted, Is.True);
        Assert.That(run.Requested, Is.EqualTo(2));
        var results = run.Objects;
        Assert.That(results.Select(r => r.Name), Is.EqualTo(new[] { "a" }), "stops before the next object");
        Assert.That(table.ToString(), Does.Contain("(interrupted: 1 of 2 objects)"));
        using (var document = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var root = document.RootElement;
            Assert.That(root.GetProperty("interrupted").GetBoolean(), Is.True);
            Assert.That(root.GetProperty("objects_requested").GetInt32(), Is.EqualTo(2));
            Assert.That(root.GetProperty("object_count").GetInt32(), Is.EqualTo(1));
            Assert.That(root.GetProperty("mean_psnr").GetDouble(), Is.EqualTo(results[0].Psnr), "the mean covers the finished object only");
        }

        // Both objects when nobody cancels, and no "interrupted" mark.
        var complete = EvalCommand.RunModel(Golden.TinyModelDirectory, data, options, Device.Cpu, json, TextWriter.Null).Objects;
        Assert.That(complete.Select(r => r.Name), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(complete[0].Psnr, Is.EqualTo(results[0].Psnr), "the stopped run's object scores as in a full run");
        using (var document = JsonDocument.Parse(File.ReadAllText(json)))
        {
            Assert.That(document.RootElement.TryGetProperty("interrupted", out _), Is.False);
        }

        // Cancelled before the first object: nothing scored, the earlier JSON left as it was.
        var before = File.ReadAllBytes(json);
        using var early = new CancellationTokenSource();
        early.Cancel();
        var none = EvalCommand.RunModel(Golden.TinyModelDirectory, data, options, Device.Cpu, json, TextWriter.Null, early.Token);
        Assert.That(none.Objects, Is.Empty);
        Assert.That(none.Interrupted, Is.True);
        Assert.That(File.ReadAllBytes(json), Is.EqualTo(before));
    }

    // A table writer that cancels its token when a line starting with the given text is written.
    private sealed class CancellingWriter(string lineStart, CancellationTokenSource source) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null && value.StartsWith(lineStart, StringComparison.Ordinal))
            {
                source.Cancel();
            }
        }
    }

    [Test]
    public void MissingModelDataOrSourceViewAreNamed()
    {
        var data = Path.Combine(_folder, "data");
        var options = new ModelEvaluationOptions { MeshResolution = MeshResolution };
        var missingModel = Assert.Throws<LrmFormatException>(() =>
            EvalCommand.RunModel(Path.Combine(_folder, "nomodel"), _folder, options, Device.Cpu, null, TextWriter.Null));
        Assert.That(missingModel!.Message, Does.Contain("nomodel").And.Contain("model not found"));
        var missingData = Assert.Throws<LrmFormatException>(() =>
            EvalCommand.RunModel(Golden.TinyModelDirectory, Path.Combine(_folder, "nodata"), options, Device.Cpu, null, TextWriter.Null));
        Assert.That(missingData!.Message, Does.Contain("nodata"));
        WriteOracle(data, "oracle", withMesh: false);
        var missingView = Assert.Throws<LrmFormatException>(() =>
            EvalCommand.RunModel(Golden.TinyModelDirectory, data, options with { SourceView = 42 }, Device.Cpu, null, TextWriter.Null));
        Assert.That(missingView!.Message, Does.Contain("042.png").And.Contain("source view 42"));
        Assert.Throws<LrmInvalidArgumentException>(() =>
            EvalCommand.RunModel(Golden.TinyModelDirectory, data, options with { Views = 0 }, Device.Cpu, null, TextWriter.Null));
    }

    // Objects the dataset reader refuses are skipped and listed by file, as training's skip policy does: a source
    // camera at the origin (normalisation has no distance) and an image of another size than the object's.
    [Test]
    public void ObjectsWithACameraAtTheOriginOrAnOddImageSizeAreSkippedNamingTheFile()
    {
        var data = Path.Combine(_folder, "data");
        WriteOracle(data, "good", withMesh: false);
        var origin = DatasetTestSupport.CopyFolder(Path.Combine(data, "good"), Path.Combine(data, "origin"));
        var originPose = DatasetLayout.PosePath(origin, 0);
        using (var identity = Tensor.FromArray([1f, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 4, 4))
        {
            Npy.Write(originPose, identity);
        }
        var odd = DatasetTestSupport.CopyFolder(Path.Combine(data, "good"), Path.Combine(data, "odd"));
        var oddImage = DatasetLayout.ImagePath(odd, 4);
        using (var image = Image.FromRgba(new float[Size * (Size + 4) * 4], Size, Size + 4))
        {
            image.SavePng(oddImage);
        }

        using var text = new StringWriter();
        var run = EvalCommand.RunModel(Golden.TinyModelDirectory, data, new ModelEvaluationOptions { Views = 3, MeshResolution = MeshResolution, Density = Density },
            Device.Cpu, null, text);
        var output = text.ToString();
        TestContext.Out.WriteLine(output);
        Assert.That(run.Objects.Select(r => r.Name), Is.EqualTo(new[] { "good" }));
        Assert.That(output, Does.Contain($"skipped: {originPose}: the camera centre (0, 0, 0) is at the origin"));
        Assert.That(output, Does.Contain($"skipped: {oddImage}: image of the wrong size: 32×36, but {Path.Combine(odd, DatasetLayout.IntrinsicsFile)} says 32×32"));
    }

    [Test]
    public void SynthMeshInTheNormalisedFrameMatchesTheNormalisedViews()
    {
        // The frame the evaluation compares meshes in, checked on real `lrm dataset synth` data without a model: the
        // ground-truth mesh moved by the source normalisation, ray traced from the normalised target cameras, has the
        // silhouettes of the dataset's images; the mesh left in the dataset's frame does not.
        var data = Path.Combine(_folder, "synth");
        DatasetGeneration.Synthesize(data, 1, new DatasetOptions { Views = 4, Resolution = 32, Seed = 11, MeshResolution = 48 });
        var folder = ObjectFolder.Read(Path.Combine(data, DatasetGeneration.SynthName(0)));
        Assert.That(folder.Problems, Is.Empty);
        var poses = folder.Poses.Select(p => p!).ToList();
        var normalized = CameraNormalization.Normalize(poses);
        var stored = Mesh.Load(folder.MeshPath);
        var moved = ModelEvaluation.Transformed(stored, CameraNormalization.Transform(poses[0]));
        double Error(Mesh mesh, int view)
        {
            var camera = new DatasetCamera([.. normalized[view].Select(v => (float)v)], 32, 32);
            var render = MultiViewRenderer.Render(new MeshScene(mesh), camera, Lighting.Default);
            using var truth = Image.Load(folder.ImagePath(folder.Views[view]));
            var alpha = truth.Pixels.AsSpan<float>();
            double sum = 0;
            for (var p = 0; p < 32 * 32; p++)
            {
                sum += Math.Abs(render.Rgba[4 * p + 3] - alpha[4 * p + 3]);
            }
            return sum / (32 * 32);
        }
        for (var view = 1; view < 4; view++)
        {
            var right = Error(moved, view);
            var wrong = Error(stored, view);
            TestContext.Out.WriteLine($"view {view}: silhouette error {right:F4} in the normalised frame, {wrong:F4} in the dataset's");
            Assert.That(right, Is.LessThan(0.03), $"view {view}");
            Assert.That(wrong, Is.GreaterThan(3 * right + 0.01), $"view {view}: the test must tell the frames apart");
        }
    }

    [Test]
    public void ChooseViewsIsEvenAndExcludesTheSource()
    {
        Assert.That(ModelEvaluation.ChooseViews([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 0, 8),
            Is.EqualTo(new[] { 1, 3, 5, 7, 9, 11, 13, 15 }));
        Assert.That(ModelEvaluation.ChooseViews([0, 1, 2, 3], 2, 8), Is.EqualTo(new[] { 0, 1, 3 }));
    }
}
