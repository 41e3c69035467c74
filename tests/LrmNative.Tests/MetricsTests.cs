using LrmNative.Data;
using LrmNative.IO;
using LrmNative.Metrics;

namespace LrmNative.Tests;

/// <summary>
/// Image and shape metrics: PSNR by hand and +∞ for identical images; SSIM and its gradient against PyTorch
/// (tests/golden/make_metrics_golden.py) and the gradient against finite differences; Chamfer distance and F-score
/// against values computed by hand; area-weighted surface sampling; the k-d tree against brute force; `lrm eval`.
/// </summary>
[TestFixture]
public sealed class MetricsTests : TemporaryFolderFixture
{
    // ---- PSNR ----

    [Test]
    public void PsnrOfIdenticalImagesIsInfiniteAndPrintsAsInf()
    {
        float[] image = [0.1f, 0.5f, 0.9f, 0.3f];
        var psnr = ImageMetrics.Psnr(image, image);
        Assert.That(double.IsPositiveInfinity(psnr), Is.True);
        Assert.That(ImageMetrics.Format(psnr), Is.EqualTo("inf"));
    }

    [Test]
    public void PsnrEqualsTheHandComputedValue()
    {
        // MSE = (0.1² + 0 + 0.2² + 0) / 4 = 0.0125 → PSNR = 10·log10(1 / 0.0125) = 19.0309 dB; with L = 2: +6.0206 dB.
        float[] a = [0f, 0.5f, 1f, 0.25f];
        float[] b = [0.1f, 0.5f, 0.8f, 0.25f];
        var mse = ((double)0.1f * 0.1f + (1.0 - 0.8f) * (1.0 - 0.8f)) / 4;
        Assert.That(ImageMetrics.MeanSquaredError(a, b), Is.EqualTo(mse).Within(1e-15));
        Assert.That(ImageMetrics.Psnr(a, b), Is.EqualTo(19.0309).Within(1e-4));
        Assert.That(ImageMetrics.Psnr(a, b, 2), Is.EqualTo(19.0309 + 20 * Math.Log10(2)).Within(1e-4));
        Assert.Throws<LrmShapeException>(() => ImageMetrics.Psnr(a, b.AsSpan(0, 3)));
    }

    // ---- SSIM ----

    public static IEnumerable<TestCaseData> SsimGolden()
    {
        var files = Directory.GetFiles(Path.Combine(Golden.DataDirectory, "metrics"), "ssim_*.safetensors").Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
        {
            throw new InvalidOperationException($"no ssim_*.safetensors golden files under {Path.Combine(Golden.DataDirectory, "metrics")} (tests/golden/make_metrics_golden.py writes them)");
        }
        return files.Select(path => new TestCaseData(Path.GetFileNameWithoutExtension(path)).SetName($"{{m}}({Path.GetFileNameWithoutExtension(path)})"));
    }

    [TestCaseSource(nameof(SsimGolden))]
    public void SsimAndItsGradientEqualPyTorch(string name)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Golden.DataDirectory, "metrics", name + ".safetensors"));
        using var x = file.ReadTensor("x");
        using var y = file.ReadTensor("y");
        using var expectedGradient = file.ReadTensor("grad");
        var (h, w, c) = ((int)file.Long("height"), (int)file.Long("width"), (int)file.Long("channels"));
        var range = double.Parse(file.Metadata["data_range"], System.Globalization.CultureInfo.InvariantCulture);
        var expected = double.Parse(file.Metadata["ssim"], System.Globalization.CultureInfo.InvariantCulture);

        Assert.That(ImageMetrics.Ssim(x.AsSpan<float>(), y.AsSpan<float>(), h, w, c, range), Is.EqualTo(expected).Within(1e-12));
        var gradient = new float[x.ElementCount];
        var value = ImageMetrics.SsimBackward(gradient, x.AsSpan<float>(), y.AsSpan<float>(), h, w, c, range);
        Assert.That(value, Is.EqualTo(expected).Within(1e-12));
        var reference = expectedGradient.AsSpan<float>();
        var scale = Math.Max(reference.ToArray().Max(v => Math.Abs(v)), 1e-30f);
        for (var i = 0; i < gradient.Length; i++)
        {
            Assert.That(gradient[i], Is.EqualTo(reference[i]).Within(1e-6 * scale + 1e-12), $"d SSIM / d x[{i}]");
        }
    }

    [Test]
    public void SsimGradientMatchesFiniteDifferences()
    {
        const int h = 14, w = 15, c = 2;
        var random = new DeterministicRandom(11);
        var x = new float[h * w * c];
        var y = new float[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = (float)random.NextDouble();
            x[i] = Math.Clamp(y[i] + (float)(0.2 * random.NextGaussian()), 0f, 1f);
        }
        var gradient = new float[x.Length];
        ImageMetrics.SsimBackward(gradient, x, y, h, w, c);
        var checkedCount = 0;
        for (var i = 0; i < x.Length; i += 7)
        {
            const float step = 1e-3f;
            var saved = x[i];
            x[i] = saved + step;
            var plus = ImageMetrics.Ssim(x, y, h, w, c);
            x[i] = saved - step;
            var minus = ImageMetrics.Ssim(x, y, h, w, c);
            x[i] = saved;
            var numeric = (plus - minus) / ((double)(saved + step) - (saved - step));
            Assert.That(gradient[i], Is.EqualTo(numeric).Within(2e-3 * Math.Abs(numeric) + 1e-7), $"element {i}");
            checkedCount++;
        }
        Assert.That(checkedCount, Is.GreaterThan(50));
    }

    [Test]
    public void SsimIsOneForIdenticalImagesSymmetricAndBelowOneOtherwise()
    {
        var random = new DeterministicRandom(3);
        var x = Enumerable.Range(0, 20 * 17 * 3).Select(_ => (float)random.NextDouble()).ToArray();
        var y = x.Select(v => Math.Clamp(v + 0.05f, 0f, 1f)).ToArray();
        Assert.That(ImageMetrics.Ssim(x, x, 20, 17, 3), Is.EqualTo(1).Within(1e-12));
        Assert.That(ImageMetrics.Ssim(x, y, 20, 17, 3), Is.EqualTo(ImageMetrics.Ssim(y, x, 20, 17, 3)).Within(1e-12));
        Assert.That(ImageMetrics.Ssim(x, y, 20, 17, 3), Is.LessThan(1));
        var window = ImageMetrics.GaussianWindow();
        Assert.That(window.Sum(), Is.EqualTo(1).Within(1e-15));
        Assert.That(window[5] / window[4], Is.EqualTo(Math.Exp(1 / (2 * 1.5 * 1.5))).Within(1e-12), "σ = 1.5");
    }

    [Test]
    public void SsimRejectsImagesSmallerThanTheWindow()
    {
        var image = new float[10 * 30 * 3];
        Assert.That(Assert.Throws<LrmShapeException>(() => ImageMetrics.Ssim(image, image, 10, 30, 3))!.Message, Does.Contain("11×11"));
        Assert.Throws<LrmShapeException>(() => ImageMetrics.Ssim(image, image, 30, 30, 3));
    }

    // ---- Chamfer and F-score ----

    [Test]
    public void ChamferAndFScoreEqualHandComputedValues()
    {
        Vec3[] prediction = [new(0, 0, 0), new(1, 0, 0)];
        Vec3[] target = [new(0, 0, 0.05), new(1, 0, 0.3), new(5, 0, 0)];
        // prediction → target: 0.05, 0.3 (mean 0.175, 1 of 2 within 0.1); target → prediction: 0.05, 0.3, 4 (mean 1.45, 1 of 3).
        var s = PointCloudMetrics.Compare(prediction, target, 0.1);
        Assert.That(s.Accuracy, Is.EqualTo(0.175).Within(1e-12));
        Assert.That(s.Completeness, Is.EqualTo(1.45).Within(1e-12));
        Assert.That(s.Chamfer, Is.EqualTo(0.8125).Within(1e-12));
        Assert.That(s.Precision, Is.EqualTo(0.5));
        Assert.That(s.Recall, Is.EqualTo(1 / 3.0).Within(1e-15));
        Assert.That(s.FScore, Is.EqualTo(0.4).Within(1e-12));
        // A larger threshold takes the 0.3 pair in: P = 1, R = 2/3, F = 0.8.
        var loose = PointCloudMetrics.Compare(prediction, target, 0.5);
        Assert.That((loose.Precision, loose.FScore), Is.EqualTo((1.0, 0.8)).Within(1e-12));
        var same = PointCloudMetrics.Compare(target, target);
        Assert.That((same.Chamfer, same.FScore), Is.EqualTo((0.0, 1.0)));
        Assert.Throws<LrmInvalidArgumentException>(() => PointCloudMetrics.Compare([], target));
        Assert.Throws<LrmInvalidArgumentException>(() => PointCloudMetrics.Compare(prediction, target, 0));
    }

    [Test]
    public void KdTreeFindsTheSameNearestDistanceAsBruteForce()
    {
        var random = new DeterministicRandom(5);
        var points = Enumerable.Range(0, 3000).Select(_ => new Vec3(random.NextGaussian(), random.NextGaussian(), random.NextDouble())).ToArray();
        var tree = new KdTree(points);
        for (var q = 0; q < 300; q++)
        {
            var query = new Vec3(random.Uniform(-3, 3), random.Uniform(-3, 3), random.Uniform(-1, 2));
            var brute = points.Min(p => (p - query).LengthSquared);
            Assert.That(tree.NearestSquaredDistance(query), Is.EqualTo(brute), $"query {q}");
        }
    }

    // ---- surface sampling and the mesh protocol ----

    [Test]
    public void SurfaceSamplesAreAreaWeightedUniformAndSeeded()
    {
        // Two triangles in z = 0: area 0.5 (x ∈ [0, 1]) and 1.5 (x ∈ [2, 5]): 1 : 3.
        var mesh = new Mesh([0, 0, 0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 5, 0, 0, 2, 1, 0], [0, 1, 2, 3, 4, 5]);
        const int count = 40_000;
        var points = SurfaceSampler.Sample(mesh, count, 9);
        var inLarge = points.Count(p => p.X >= 2);
        Assert.That(inLarge / (double)count, Is.EqualTo(0.75).Within(0.011), "5 standard deviations of a binomial");
        Assert.That(points.All(p => p.Z == 0 && p.Y >= 0), Is.True);
        var small = points.Where(p => p.X < 2).ToArray();
        Assert.That(small.All(p => p.X + p.Y <= 1 + 1e-12), Is.True, "inside the small triangle");
        Assert.That(small.Average(p => p.X), Is.EqualTo(1 / 3.0).Within(0.01), "uniform: the mean is the centroid");
        Assert.That(small.Average(p => p.Y), Is.EqualTo(1 / 3.0).Within(0.01));
        Assert.That(SurfaceSampler.Sample(mesh, 100, 9), Is.EqualTo(points.Take(100).ToArray()), "same seed, same points");
        Assert.That(SurfaceSampler.Sample(mesh, 100, 10), Is.Not.EqualTo(points.Take(100).ToArray()));
    }

    [Test]
    public void ConcentricSpheresHaveTheirRadialGapAsChamferDistance()
    {
        var inner = DatasetTestSupport.Icosphere(4, 1.0);
        var outer = DatasetTestSupport.Icosphere(4, 1.2);
        // Every point of one sphere is at least 0.2 from the other (less the chord sag of a 5120-face sphere, ~0.0015).
        var s = MeshMetrics.Compare(inner, outer);
        Assert.That(s.Chamfer, Is.InRange(0.195, 0.23));
        Assert.That(s.FScore, Is.Zero, "no point is within 0.1");
        var self = MeshMetrics.Compare(inner, inner);
        Assert.That(self.Chamfer, Is.LessThan(0.02), "independent samples of one surface are close");
        Assert.That(self.FScore, Is.EqualTo(1));
        // unit-box normalisation maps both spheres to the same size.
        var normalized = MeshMetrics.Compare(inner, outer, normalization: MeshNormalization.UnitBox);
        Assert.That(normalized.Chamfer, Is.LessThan(0.01));
    }

    // ---- lrm eval ----

    private string WriteImage(string relative, Func<int, int, float[]> pixel, int width = 24, int height = 20)
    {
        var rgba = new float[width * height * 4];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                pixel(x, y).CopyTo(rgba, 4 * (y * width + x));
            }
        }
        var path = Path.Combine(Folder, relative);
        using var image = Image.FromRgba(rgba, width, height);
        image.SavePng(path);
        return path;
    }

    [Test]
    public void EvalImagesPrintsInfForIdenticalImagesAndScoresOthers()
    {
        WriteImage("gt/a.png", (x, y) => [x / 24f, y / 20f, 0.5f, 1f]);
        WriteImage("gt/b.png", (x, y) => [0.2f, 0.4f, 0.6f, x < 12 ? 1f : 0f]);
        WriteImage("pred/a.png", (x, y) => [x / 24f, y / 20f, 0.5f, 1f]);
        WriteImage("pred/b.png", (x, y) => [0.2f, 0.4f, 0.6f, x < 10 ? 1f : 0f]);
        var json = Path.Combine(Folder, "scores.json");
        var (code, output, error) = DatasetTestSupport.Lrm("eval", "images", Path.Combine(Folder, "pred"), Path.Combine(Folder, "gt"), "--json", json);
        Assert.That(code, Is.EqualTo(0), error);
        var lines = output.Split('\n');
        Assert.That(lines.Single(l => l.StartsWith("a.png", StringComparison.Ordinal)), Does.Contain(" inf ").And.EndWith("1.0000"));
        Assert.That(lines.Single(l => l.StartsWith("b.png", StringComparison.Ordinal)), Does.Not.Contain("inf"));
        Assert.That(lines.Single(l => l.StartsWith("mean of 2", StringComparison.Ordinal)), Does.Contain("inf"));
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var images = document.RootElement.GetProperty("images");
        Assert.That(images[0].GetProperty("psnr").GetString(), Is.EqualTo("inf"));
        // b: on white, columns 10, 11 differ by (1 − 0.2, 1 − 0.4, 1 − 0.6) in 2 of 24 columns.
        var mse = (0.8 * 0.8 + 0.6 * 0.6 + 0.4 * 0.4) / 3 * (2 / 24.0);
        Assert.That(images[1].GetProperty("psnr").GetDouble(), Is.EqualTo(10 * Math.Log10(1 / mse)).Within(1e-4));
    }

    [Test]
    public void EvalImagesComparesSingleFilesAndRefusesMismatches()
    {
        var a = WriteImage("a.png", (x, y) => [0.5f, 0.5f, 0.5f, 1f]);
        var small = WriteImage("small.png", (x, y) => [0.5f, 0.5f, 0.5f, 1f], 12, 12);
        WriteImage("p/x.png", (x, y) => [0, 0, 0, 1]);
        WriteImage("g/y.png", (x, y) => [0, 0, 0, 1]);
        var (code, output, _) = DatasetTestSupport.Lrm("eval", "images", a, a);
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output, Does.Contain("inf"));
        var mismatch = DatasetTestSupport.Lrm("eval", "images", a, small);
        Assert.That(mismatch.ExitCode, Is.EqualTo(1));
        Assert.That(mismatch.Error, Does.Contain("same size"));
        var names = DatasetTestSupport.Lrm("eval", "images", Path.Combine(Folder, "p"), Path.Combine(Folder, "g"));
        Assert.That(names.ExitCode, Is.EqualTo(1));
        Assert.That(names.Error, Does.Contain("missing predictions y.png").And.Contain("no ground truth for x.png"));
        var missing = DatasetTestSupport.Lrm("eval", "images", Path.Combine(Folder, "nothing"), a);
        Assert.That(missing.Error, Does.Contain("nothing").And.Contain("not found"));
        Assert.That(DatasetTestSupport.Lrm("eval", "images", a, a, "--background", "pink").Error, Does.Contain("--background"));
    }

    [Test]
    public void EvalMeshReportsChamferAndFScore()
    {
        var inner = Path.Combine(Folder, "inner.ply");
        var outer = Path.Combine(Folder, "outer.obj");
        DatasetTestSupport.Icosphere(3, 1.0).SavePly(inner);
        DatasetTestSupport.Icosphere(3, 1.05).SaveObj(outer);
        var json = Path.Combine(Folder, "mesh.json");
        var (code, output, error) = DatasetTestSupport.Lrm("eval", "mesh", inner, outer, "--samples", "4000", "--json", json);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("chamfer").And.Contain("f-score@0.1"));
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var expected = MeshMetrics.Compare(Mesh.Load(inner), Mesh.Load(outer), 4000);
        Assert.That(document.RootElement.GetProperty("chamfer").GetDouble(), Is.EqualTo(expected.Chamfer));
        Assert.That(document.RootElement.GetProperty("fscore").GetDouble(), Is.GreaterThan(0.99), "a 0.05 gap is within 0.1 but for sampling gaps");
        Assert.That(document.RootElement.GetProperty("chamfer").GetDouble(), Is.InRange(0.05, 0.08));
        Assert.That(DatasetTestSupport.Lrm("eval", "mesh", inner, Path.Combine(Folder, "none.glb")).Error, Does.Contain("none.glb").And.Contain("not found"));
        Assert.That(DatasetTestSupport.Lrm("eval", "mesh", inner, outer, "--normalize", "sphere").Error, Does.Contain("--normalize"));
    }
}
