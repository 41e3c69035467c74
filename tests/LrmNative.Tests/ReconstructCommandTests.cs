using System.CommandLine;
using LrmNative.Backends;
using LrmNative.Cli;
using LrmNative.Imaging;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// `lrm reconstruct` end to end on the tiny golden checkpoint with a synthetic image: the saved triplane equals
/// <see cref="LrmModel.ForwardPlanes"/> on the same preprocessed tensor, query.npy equals the NeRF query run
/// directly, the renders have the asked size; bad inputs give one error line, exit code 1 and no output files.
/// </summary>
[TestFixture]
public sealed class ReconstructCommandTests : TemporaryFolderFixture
{
    // Runs `lrm reconstruct ARGS` in process; returns the exit code and what went to stderr.
    private static (int ExitCode, string Error) Lrm(params string[] args)
    {
        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(ReconstructCommand.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        // The mesh stage (default 384³) is exercised by its own tests; elsewhere it is switched off to keep the suite fast.
        string[] mesh = args.Contains("--resolution") ? [] : ["--resolution", "0"];
        var code = root.Parse(["reconstruct", .. args, .. mesh]).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, error.ToString());
    }

    // An RGBA image with an opaque, colour-graded ellipse on a transparent background, saved as PNG.
    private string SyntheticImage(string name = "object.png")
    {
        var path = Path.Combine(Folder, name);
        using var image = BenchCommand.EllipseImage(90, 70, 50, 33, 25, 20);
        image.SavePng(path);
        return path;
    }

    private string Points(int count)
    {
        var random = new Random(3);
        var values = Enumerable.Range(0, count * 3).Select(_ => (float)(random.NextDouble() * 2.2 - 1.1)).ToArray();
        var path = Path.Combine(Folder, "points.npy");
        using var points = Tensor.FromArray(values, count, 3);
        Npy.Write(path, points);
        return path;
    }

    [Test]
    public void ExportsEqualTheModelRunDirectly()
    {
        var imagePath = SyntheticImage();
        var pointsPath = Points(77);
        var output = Path.Combine(Folder, "out");
        var planesPath = Path.Combine(Folder, "planes", "planes.safetensors");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, imagePath, "--out", output, "--save-triplane", planesPath,
            "--query", pointsPath, "--render-size", "24");
        Assert.That(code, Is.EqualTo(0), log);
        foreach (var stage in new[] { "model", "image", "points", "preprocess", "triplane", "write", "query", "render", "done in" })
        {
            Assert.That(log, Does.Contain("lrm: " + stage), $"progress line for {stage}");
        }
        Assert.That(log, Does.Not.Contain("warning"), "an RGBA input needs no background estimate");

        // The same pipeline, run directly.
        using var backend = new CpuBackend();
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        using var image = Image.Load(imagePath);
        using var input = new ImagePreprocessor(new ImagePreprocessOptions { OutputSize = model.Config.EncoderImageSize }).Process(backend, image);
        using var camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
        using var planes = model.ForwardPlanes(backend, input.Image, camera);

        using (var file = SafeTensorsFile.Open(planesPath))
        {
            using var saved = file.ReadTensor("planes");
            var c = model.Config.TriplaneDim;
            var r = model.Config.TriplaneHighRes;
            Assert.That(saved.ShapeText, Is.EqualTo($"(3, {c}, {r}, {r})"));
            Assert.That(saved.AsSpan<float>().SequenceEqual(planes.AsSpan<float>()), Is.True, "saved planes are the forward's, bit for bit");
            Assert.That(ModelConfig.Parse(file.Metadata["config"], planesPath).ToJson(), Is.EqualTo(model.Config.ToJson()));
            Assert.That(file.Metadata["source_camera"], Does.StartWith("[1, "));
        }

        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);
        using var points = Npy.ReadFloat32(pointsPath);
        using var batched = Tensor.FromArray(points.AsSpan<float>(), 1, 77, 3);
        var (sigma, rgb) = model.Nerf.Query(backend, channelsLast, batched);
        using (sigma)
        using (rgb)
        using (var query = Npy.ReadFloat32(Path.Combine(output, "query.npy")))
        {
            Assert.That(query.ShapeText, Is.EqualTo("(77, 4)"));
            var values = query.AsSpan<float>();
            for (var i = 0; i < 77; i++)
            {
                Assert.That(values[4 * i], Is.EqualTo(sigma.AsSpan<float>()[i]), $"density {i}");
                for (var k = 0; k < 3; k++)
                {
                    Assert.That(values[4 * i + 1 + k], Is.EqualTo(rgb.AsSpan<float>()[3 * i + k]), $"colour {i}.{k}");
                }
            }
            Assert.That(values.ToArray().Where((_, i) => i % 4 == 0), Is.All.GreaterThanOrEqualTo(0f), "softplus densities");
        }

        using (var view = Image.Load(Path.Combine(output, "input_view.png")))
        {
            Assert.That((view.Width, view.Height, view.HasAlpha), Is.EqualTo((24, 24, false)));
        }
        using (var preprocessed = Image.Load(Path.Combine(output, "preprocessed.png")))
        {
            Assert.That((preprocessed.Width, preprocessed.Height), Is.EqualTo((model.Config.EncoderImageSize, model.Config.EncoderImageSize)));
        }
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal),
            Is.EqualTo(new[] { "depth.png", "input_view.png", "opacity.png", "preprocessed.png", "query.npy" }));
    }

    [Test]
    public void MeshIsExtractedColouredAndWrittenInEveryFormat()
    {
        var output = Path.Combine(Folder, "mesh");
        var image = SyntheticImage();
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--render-size", "8",
            "--resolution", "40", "--threshold", "0.7", "--formats", "glb,ply,obj", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("grid query").And.Contain("marching cubes").And.Contain("export"));
        foreach (var format in new[] { "glb", "ply", "obj" })
        {
            Assert.That(File.Exists(Path.Combine(output, $"mesh.{format}")), Is.True, format);
        }
        // The OBJ carries positions inside the box and the NeRF's colours clamped to [0, 1].
        var vertices = File.ReadLines(Path.Combine(output, "mesh.obj")).Where(l => l.StartsWith("v ", StringComparison.Ordinal))
            .Select(l => l[2..].Split(' ').Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToList();
        Assert.That(vertices, Is.Not.Empty);
        Assert.That(vertices.All(v => v.Length == 6 && v.Take(3).All(c => c is >= -1f and <= 1f) && v.Skip(3).All(c => c is >= 0f and <= 1f)), Is.True);
        GltfValidator.AssertValid(Path.Combine(output, "mesh.glb"));

        // Each file holds the library's mesh of the same image and settings: the same triangles, the same positions (the
        // OBJ's up to its decimal text).
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(image);
        var expected = result.ExtractMesh(40, 0.7f);
        Assert.That(expected.TriangleCount, Is.Positive);
        foreach (var format in new[] { "glb", "ply", "obj" })
        {
            var written = Mesh.Load(Path.Combine(output, $"mesh.{format}"));
            Assert.That(written.Triangles.ToArray(), Is.EqualTo(expected.Triangles.ToArray()), $"{format}: triangles");
            Assert.That(written.Positions.ToArray(), Is.EqualTo(expected.Positions.ToArray()).Within(1e-5f), $"{format}: positions");
        }
    }

    [Test]
    public void MaxTrianglesWritesTheLibrarysSimplifiedMesh()
    {
        var output = Path.Combine(Folder, "simplified");
        var image = SyntheticImage();
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--render-size", "8",
            "--resolution", "40", "--threshold", "0.7", "--formats", "glb,ply", "--max-triangles", "120", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);

        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(image);
        var full = result.ExtractMesh(40, 0.7f);
        Assert.That(full.TriangleCount, Is.GreaterThan(240), "the test needs a mesh well above the budget");
        var expected = full.Simplified(120);
        Assert.That(expected.TriangleCount, Is.InRange(119, 120));
        Assert.That(log, Does.Contain($"simplify").And.Contain($"{full.TriangleCount:N0} → {expected.TriangleCount:N0} triangles"));
        foreach (var format in new[] { "glb", "ply" })
        {
            var written = Mesh.Load(Path.Combine(output, $"mesh.{format}"));
            Assert.That(written.Triangles.ToArray(), Is.EqualTo(expected.Triangles.ToArray()), $"{format}: triangles");
            Assert.That(written.Positions.ToArray(), Is.EqualTo(expected.Positions.ToArray()).Within(1e-6f), $"{format}: positions");
            Assert.That(written.HasColors, Is.True, $"{format}: colours");
        }
        // Normals recomputed on the simplified surface are written (our readers take positions and colours only).
        Assert.That(expected.HasNormals, Is.True);
        Assert.That(File.ReadAllText(Path.Combine(output, "mesh.ply"), System.Text.Encoding.Latin1), Does.Contain("property float nx"));
        GltfValidator.AssertValid(Path.Combine(output, "mesh.glb"));
    }

    [Test]
    public void NoSurfaceAboveTheThresholdWarnsAndWritesNoMesh()
    {
        var output = Path.Combine(Folder, "nomesh");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, SyntheticImage(), "--out", output, "--render-size", "8", "--resolution", "16", "--threshold", "1000");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("lrm: warning: no surface at density 1000"));
        Assert.That(File.Exists(Path.Combine(output, "mesh.glb")), Is.False);
    }

    [Test]
    public void NoSurfaceRemovesTheMeshOfAnEarlierRunIntoTheSameFolder()
    {
        // A pipeline re-running into one folder must not pick up the old mesh as this run's.
        var output = Path.Combine(Folder, "rerun");
        var image = SyntheticImage();
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--render-size", "8", "--resolution", "24", "--threshold", "0.45", "--formats", "glb,obj");
        Assert.That(code, Is.EqualTo(0), log);
        File.WriteAllText(Path.Combine(output, "mesh.ply"), "not this run's format: left alone");
        Assert.That(File.Exists(Path.Combine(output, "mesh.glb")) && File.Exists(Path.Combine(output, "mesh.obj")), Is.True);

        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--render-size", "8", "--resolution", "24", "--threshold", "1000", "--formats", "glb,obj");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("no surface at density 1000").And.Contain("removed").And.Contain("mesh.glb"));
        Assert.That(File.Exists(Path.Combine(output, "mesh.glb")), Is.False, "the earlier run's GLB is gone");
        Assert.That(File.Exists(Path.Combine(output, "mesh.obj")), Is.False, "the earlier run's OBJ is gone");
        Assert.That(File.Exists(Path.Combine(output, "mesh.ply")), Is.True, "a format this run did not write stays");
    }

    [TestCase("--formats", "fbx", "--formats")]
    [TestCase("--resolution", "1", "--resolution")]
    [TestCase("--min-piece", "1.5", "--min-piece")]
    [TestCase("--min-piece", "-0.1", "--min-piece")]
    [TestCase("--max-triangles", "-1", "--max-triangles must be >= 0")]
    [TestCase("--threshold", "0", "--threshold must be a finite density > 0")]
    [TestCase("--threshold", "-0.5", "--threshold must be a finite density > 0")]
    public void BadMeshOptionsFailBeforeAnythingIsWritten(string option, string value, string expected)
    {
        var output = Path.Combine(Folder, "badmesh");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, SyntheticImage(), "--out", output, option, value);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain("lrm: error:").And.Contain(expected));
        Assert.That(Directory.Exists(output), Is.False);
    }

    [Test]
    [NonParallelizable]
    public void WithoutModelTheDefaultModelVariableIsUsedOrTheErrorSaysHowToGiveOne()
    {
        var saved = Environment.GetEnvironmentVariable(ReconstructCommand.DefaultModelVariable);
        try
        {
            Environment.SetEnvironmentVariable(ReconstructCommand.DefaultModelVariable, null);
            var (code, log) = Lrm(SyntheticImage(), "--out", Path.Combine(Folder, "nomodel"));
            Assert.That(code, Is.EqualTo(1));
            Assert.That(log, Does.Contain("--model").And.Contain(ReconstructCommand.DefaultModelVariable));
            Assert.That(Directory.Exists(Path.Combine(Folder, "nomodel")), Is.False);

            Environment.SetEnvironmentVariable(ReconstructCommand.DefaultModelVariable, Path.Combine(Folder, "missing-model"));
            (code, log) = Lrm(SyntheticImage(), "--out", Path.Combine(Folder, "nomodel"));
            Assert.That(code, Is.EqualTo(1));
            Assert.That(log, Does.Contain("missing-model").And.Contain("not found"));

            Environment.SetEnvironmentVariable(ReconstructCommand.DefaultModelVariable, Golden.TinyModelDirectory);
            var output = Path.Combine(Folder, "defaultmodel");
            (code, log) = Lrm(SyntheticImage(), "--out", output, "--render-size", "8");
            Assert.That(code, Is.EqualTo(0), log);
            Assert.That(log, Does.Contain(Golden.TinyModelDirectory));
            Assert.That(File.Exists(Path.Combine(output, "input_view.png")) || Directory.EnumerateFiles(output, "*.png").Any(), Is.True);
        }
        finally
        {
            Environment.SetEnvironmentVariable(ReconstructCommand.DefaultModelVariable, saved);
        }
    }

    [Test]
    public void WithoutOptionalExportsOnlyTheRendersAreWritten()
    {
        var output = Path.Combine(Folder, "plain");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, SyntheticImage(), "--out", output, "--render-size", "16");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal),
            Is.EqualTo(new[] { "depth.png", "input_view.png", "opacity.png", "preprocessed.png" }));
    }

    [Test]
    public void AnImageWithoutAlphaWarnsAboutTheBackgroundEstimate()
    {
        var rgb = new float[40 * 30 * 3];
        for (var i = 0; i < 40 * 30; i++)
        {
            int x = i % 40, y = i / 40;
            var inside = Math.Abs(x - 20) < 8 && Math.Abs(y - 15) < 6;
            rgb[3 * i] = inside ? 0.9f : 0.95f;
            rgb[3 * i + 1] = inside ? 0.2f : 0.95f;
            rgb[3 * i + 2] = inside ? 0.1f : 0.95f;
        }
        var path = Path.Combine(Folder, "photo.png");
        using (var image = Image.FromRgb(rgb, 40, 30))
        {
            image.SavePng(path);
        }
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, path, "--out", Path.Combine(Folder, "o"), "--render-size", "8");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("lrm: warning:").And.Contain("no alpha channel").And.Contain("plain backgrounds"));
    }

    [Test]
    public void ABatchWritesOneFolderPerImageAndABadImageDoesNotStopTheOthers()
    {
        var first = SyntheticImage("chair.png");
        var second = SyntheticImage("table.png");
        var bad = Path.Combine(Folder, "broken.png");
        File.WriteAllBytes(bad, File.ReadAllBytes(first)[..60]);
        var output = Path.Combine(Folder, "batch");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, first, bad, second, "--out", output, "--render-size", "8",
            "--resolution", "24", "--threshold", "0.45");
        Assert.That(code, Is.EqualTo(1), "a failed image makes the exit code non-zero");
        var errors = log.Split('\n').Where(line => line.StartsWith("lrm: error:", StringComparison.Ordinal)).ToArray();
        Assert.That(errors, Has.Length.EqualTo(1), log);
        Assert.That(errors[0], Does.Contain(bad).And.Contain("corrupt or truncated PNG"));
        Assert.That(log, Does.Contain("2 of 3 images reconstructed").And.Contain($"failed: {bad}"));
        Assert.That(Directory.GetDirectories(output).Select(Path.GetFileName).Order(StringComparer.Ordinal), Is.EqualTo(new[] { "chair", "table" }),
            "the bad image leaves no folder");
        foreach (var name in new[] { "chair", "table" })
        {
            Assert.That(Directory.GetFiles(Path.Combine(output, name)).Select(Path.GetFileName).Order(StringComparer.Ordinal),
                Is.EqualTo(new[] { "depth.png", "input_view.png", "mesh.glb", "opacity.png", "preprocessed.png" }), name);
            Assert.That(log, Does.Contain($"lrm: timings {name}:").And.Contain("image→triplane").And.Contain("grid query").And.Contain("marching cubes").And.Contain("export"));
        }
        GltfValidator.AssertValid(Path.Combine(output, "chair", "mesh.glb"), Path.Combine(output, "table", "mesh.glb"));
    }

    [Test]
    public void BatchOptionsThatCannotWorkFailBeforeAnyImage()
    {
        var image = SyntheticImage();
        var copy = Path.Combine(Folder, "other");
        Directory.CreateDirectory(copy);
        File.Copy(image, Path.Combine(copy, "object.png"));
        var output = Path.Combine(Folder, "clash");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, Path.Combine(copy, "object.png"), "--out", output);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain("lrm: error:").And.Contain("would both write to"));
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, SyntheticImage("b.png"), "--out", output, "--save-triplane", Path.Combine(Folder, "p.safetensors"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain("--save-triplane names one file"));
        Assert.That(Directory.Exists(output), Is.False);
    }

    [Test]
    public void TurntableWritesFramesAndAVideo()
    {
        var output = Path.Combine(Folder, "turn");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, SyntheticImage(), "--out", output, "--render-size", "10", "--turntable", "6");
        Assert.That(code, Is.EqualTo(0), log);
        var frames = Directory.GetFiles(Path.Combine(output, "turntable")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        Assert.That(frames, Is.EqualTo(new[] { "000.png", "001.png", "002.png", "003.png", "004.png", "005.png" }));
        using (var frame = Image.Load(Path.Combine(output, "turntable", "002.png")))
        {
            Assert.That((frame.Width, frame.Height), Is.EqualTo((10, 10)));
        }
        Assert.That(log, Does.Contain("lrm: turntable"));
        if (Turntable.FindFfmpeg() is null)
        {
            Assert.That(log, Does.Contain("ffmpeg is not on PATH"));
            Assert.That(File.Exists(Path.Combine(output, "turntable.mp4")), Is.False);
            Assert.Ignore("ffmpeg is not on PATH: the frames were checked, the MP4 cannot be");
        }
        var video = Path.Combine(output, "turntable.mp4");
        Assert.That(File.Exists(video), Is.True, log);
        var bytes = File.ReadAllBytes(video);
        Assert.That(System.Text.Encoding.ASCII.GetString(bytes, 4, 4), Is.EqualTo("ftyp"), "an MP4 (ISO base media) file");
        Assert.That(Directory.GetFiles(output).Where(f => Path.GetFileName(f).StartsWith('.')), Is.Empty, "no temporary file left");
        var ffprobe = Path.Combine(Path.GetDirectoryName(Turntable.FindFfmpeg())!, "ffprobe");
        if (File.Exists(ffprobe))
        {
            var start = new System.Diagnostics.ProcessStartInfo(ffprobe, ["-v", "error", "-count_frames", "-select_streams", "v:0",
                "-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", video]) { RedirectStandardOutput = true };
            using var probe = System.Diagnostics.Process.Start(start)!;
            var text = probe.StandardOutput.ReadToEnd().Trim();
            probe.WaitForExit();
            Assert.That(text, Is.EqualTo("10,10,6"), "width, height, frames");
        }
        else
        {
            Assert.Ignore($"ffprobe is not next to ffmpeg ({ffprobe}): the MP4 was written, its size and frame count not checked");
        }
    }

    [Test]
    public void DeviceChoiceIsReportedOrRefused()
    {
        if (CudaBackend.IsAvailable(out _))
        {
            Assert.Ignore("this machine has a usable CUDA device: Auto and --device cuda take it");
        }
        var image = SyntheticImage();
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", Path.Combine(Folder, "auto"), "--render-size", "4");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("lrm: note: CUDA backend not available:"));
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", Path.Combine(Folder, "cpu"), "--render-size", "4", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Not.Contain("CUDA"));
        var output = Path.Combine(Folder, "cuda");
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--device", "cuda");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(), Does.StartWith("lrm: error: CUDA backend not available: "));
        Assert.That(Directory.Exists(output), Is.False);
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--device", "tpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain("--device takes cpu, cuda, cuda:N or auto"));
    }

    [Test]
    public void CoarseToFineReportsItsPointsAndWritesTheSameMesh()
    {
        var image = SyntheticImage();
        var dense = Path.Combine(Folder, "dense");
        var fine = Path.Combine(Folder, "fine");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", dense, "--render-size", "4", "--resolution", "48", "--threshold", "0.45", "--formats", "ply", "--dense");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("48³ = 110,592 points"));
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", fine, "--render-size", "4", "--resolution", "48", "--threshold", "0.45", "--formats", "ply", "--coarse-to-fine");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("48³ coarse-to-fine:").And.Contain("of 110,592 points"));
        Assert.That(File.ReadAllBytes(Path.Combine(fine, "mesh.ply")), Is.EqualTo(File.ReadAllBytes(Path.Combine(dense, "mesh.ply"))));
    }

    [Test]
    public void TheGridIsCoarseToFineByDefaultOnTheCpuFrom256AndTheTwoChoicesExcludeEachOther()
    {
        var image = SyntheticImage();
        var output = Path.Combine(Folder, "default-grid");
        var (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", output, "--render-size", "4", "--resolution", "256", "--threshold", "0.45", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("256³ coarse-to-fine:"));
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", Path.Combine(Folder, "small-grid"), "--render-size", "4", "--resolution", "48", "--threshold", "0.45", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("48³ = 110,592 points"), "below 256³ the default is dense");
        var both = Path.Combine(Folder, "both");
        (code, log) = Lrm("--model", Golden.TinyModelDirectory, image, "--out", both, "--coarse-to-fine", "--dense");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log, Does.Contain("lrm: error:").And.Contain("--coarse-to-fine and --dense"));
        Assert.That(Directory.Exists(both), Is.False);
    }

    private static IEnumerable<TestCaseData> BadInputs()
    {
        yield return new TestCaseData("missing-model", "model not found").SetArgDisplayNames("missing model folder");
        yield return new TestCaseData("missing-image", "image file not found").SetArgDisplayNames("missing image");
        yield return new TestCaseData("corrupt-image", "corrupt or truncated PNG").SetArgDisplayNames("corrupt image");
        yield return new TestCaseData("tiny-image", "1×1 pixels").SetArgDisplayNames("1x1 image");
        yield return new TestCaseData("bomb", "limit").SetArgDisplayNames("decompression bomb");
        yield return new TestCaseData("bad-points", "(N, 3)").SetArgDisplayNames("points of the wrong shape");
        yield return new TestCaseData("unwritable-out", "not writable").SetArgDisplayNames("unwritable output folder");
        yield return new TestCaseData("render-size", "--render-size").SetArgDisplayNames("bad render size");
    }

    [TestCaseSource(nameof(BadInputs))]
    public void BadInputsFailWithOneLineAndNoOutput(string kind, string expected)
    {
        var model = Golden.TinyModelDirectory;
        var image = SyntheticImage();
        var output = Path.Combine(Folder, "out");
        var extra = new List<string>();
        switch (kind)
        {
            case "missing-model":
                model = Path.Combine(Folder, "no-such-model");
                break;
            case "missing-image":
                image = Path.Combine(Folder, "no-such.png");
                break;
            case "corrupt-image":
                var bytes = File.ReadAllBytes(image);
                File.WriteAllBytes(image, bytes[..(bytes.Length / 2)]);
                break;
            case "tiny-image":
                using (var one = Image.FromRgba([1f, 0f, 0f, 1f], 1, 1))
                {
                    one.SavePng(image);
                }
                break;
            case "bomb":
                // Rewrite the IHDR's size (its CRC too, so only the size is wrong).
                var png = File.ReadAllBytes(image);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(16), 100000);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(20), 100000);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), ImageFixtures.Crc32(png.AsSpan(12, 17)));
                File.WriteAllBytes(image, png);
                break;
            case "bad-points":
                using (var flat = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2))
                {
                    var path = Path.Combine(Folder, "flat.npy");
                    Npy.Write(path, flat);
                    extra.AddRange(["--query", path]);
                }
                break;
            case "unwritable-out":
                var file = Path.Combine(Folder, "a-file");
                File.WriteAllText(file, "not a folder");
                output = Path.Combine(file, "out");
                break;
            case "render-size":
                extra.AddRange(["--render-size", "0"]);
                break;
        }
        var (code, log) = Lrm(["--model", model, image, "--out", output, .. extra]);
        Assert.That(code, Is.EqualTo(1), log);
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var errors = lines.Where(line => line.StartsWith("lrm: error:", StringComparison.Ordinal)).ToArray();
        Assert.That(errors, Has.Length.EqualTo(1), log);
        Assert.That(errors[0], Does.Contain(expected));
        Assert.That(Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any(), Is.False, "no output written");
    }
}
