using System.Numerics;
using LrmNative.Backends;
using LrmNative.Imaging;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The public facade (<see cref="Reconstructor"/>, <see cref="Reconstruction"/>, <see cref="Camera"/>) against the
/// internal pipeline run directly on the tiny checkpoint: the same triplane, renders, NeRF queries and mesh, bit for
/// bit; OpenLRM's turntable geometry; device selection (Auto falls back to the CPU with the reason, an explicit CUDA
/// request fails with one clear error); the threshold default chain; progress and timings; bad input.
/// </summary>
[TestFixture]
public sealed class ReconstructorTests : TemporaryFolderFixture
{
    [Test]
    public void FacadeEqualsThePipelineRunDirectly()
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var image = Image.Load(Golden.ExampleImagePath);
        using var result = lrm.Reconstruct(image);

        using var backend = new CpuBackend();
        using var model = LrmModel.Load(Golden.TinyModelDirectory);
        using var input = new ImagePreprocessor(new ImagePreprocessOptions { OutputSize = model.Config.EncoderImageSize }).Process(backend, image);
        using var camera = Tensor.FromArray(Cameras.CanonicalSource(), 1, ModelConfig.CameraRawDim);
        using var planes = model.ForwardPlanes(backend, input.Image, camera);
        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);

        Assert.That(result.GetTriplane(), Is.EqualTo(planes.AsSpan<float>().ToArray()), "triplane");
        Assert.That((result.TriplaneChannels, result.TriplaneResolution), Is.EqualTo((model.Config.TriplaneDim, model.Config.TriplaneHighRes)));
        Assert.That(result.InputImage.Width, Is.EqualTo(lrm.InputResolution));
        Assert.That(result.Warnings, Is.Empty, "an RGBA input needs no background estimate");

        // Renders from the canonical camera, and from the same camera given explicitly.
        using var cameras = Tensor.FromArray(Cameras.Render(Cameras.LookAtOrigin(0, -2, 0)), 1, 25);
        using var render = model.Renderer.Render(backend, channelsLast, cameras, 12, 10);
        using var view = result.Render(Camera.Input, 10, 12);
        Assert.That((view.Width, view.Height), Is.EqualTo((10, 12)));
        var rgb = view.Color.Pixels.AsSpan<float>();
        var expectedRgb = render.Rgb.AsSpan<float>();
        for (var i = 0; i < 10 * 12; i++)
        {
            Assert.That(new[] { rgb[4 * i], rgb[4 * i + 1], rgb[4 * i + 2], rgb[4 * i + 3] },
                Is.EqualTo(new[] { expectedRgb[3 * i], expectedRgb[3 * i + 1], expectedRgb[3 * i + 2], 1f }), $"pixel {i}");
        }
        Assert.That(view.Depth.ToArray(), Is.EqualTo(render.Depth.AsSpan<float>().ToArray()));
        Assert.That(view.Opacity.ToArray(), Is.EqualTo(render.Opacity.AsSpan<float>().ToArray()));
        using (var lookAt = result.Render(Camera.LookAt(new Vector3(0, -2, 0)), 10, 12))
        {
            Assert.That(lookAt.Color.Pixels.AsSpan<float>().SequenceEqual(rgb), Is.True);
        }
        using (var square = result.RenderInputView(9))
        {
            Assert.That((square.Width, square.Height), Is.EqualTo((9, 9)));
        }

        // NeRF queries.
        float[] points = [0.1f, -0.2f, 0.3f, 0.9f, 0.9f, -0.9f, 1.5f, 0f, 0f];
        var values = result.Query(points);
        using var batched = Tensor.FromArray(points, 1, 3, 3);
        var (sigma, colour) = model.Nerf.Query(backend, channelsLast, batched);
        using (sigma)
        using (colour)
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.That(values[4 * i], Is.EqualTo(sigma.AsSpan<float>()[i]));
                Assert.That(values.AsSpan(4 * i + 1, 3).ToArray(), Is.EqualTo(colour.AsSpan<float>().Slice(3 * i, 3).ToArray()));
            }
        }

        // The mesh: the dense grid's marching cubes, vertices coloured by the NeRF (clamped), with normals.
        var mesh = result.ExtractMesh(40, 0.6f, coarseToFine: false);
        using var grid = DensityGrid.Query(backend, model.Nerf, channelsLast, 40);
        var (vertices, triangles) = backend.MarchingCubes(grid, 0.6f, [-1f, -1f, -1f, 1f, 1f, 1f]);
        using (vertices)
        using (triangles)
        {
            Assert.That(mesh.TriangleCount, Is.GreaterThan(0));
            Assert.That(mesh.Positions.ToArray(), Is.EqualTo(vertices.AsSpan<float>().ToArray()));
            Assert.That(mesh.Triangles.ToArray(), Is.EqualTo(triangles.AsSpan<int>().ToArray()));
        }
        Assert.That(mesh.HasNormals && mesh.HasColors, Is.True);
        var atVertices = result.Query(mesh.Positions);
        for (var v = 0; v < mesh.VertexCount; v++)
        {
            for (var c = 0; c < 3; c++)
            {
                Assert.That(mesh.Colors[3 * v + c], Is.EqualTo(Math.Clamp(atVertices[4 * v + 1 + c], 0f, 1f)), $"vertex {v} colour {c}");
            }
        }
        Assert.That(result.LastGridQuery, Is.EqualTo(new GridQueryStatistics(40, false, 40L * 40 * 40, 0, 0)));
        var glb = Path.Combine(Folder, "tiny.glb");
        mesh.SaveGlb(glb);
        GltfValidator.AssertValid(glb);

        // Every stage that ran has a time.
        foreach (var stage in new[] { ReconstructionStage.Preprocess, ReconstructionStage.ImageToTriplane, ReconstructionStage.Render,
            ReconstructionStage.GridQuery, ReconstructionStage.MarchingCubes, ReconstructionStage.VertexColors })
        {
            Assert.That(result.Timings[stage], Is.GreaterThan(TimeSpan.Zero), stage.ToString());
        }
        Assert.That(result.Timings.Load, Is.EqualTo(lrm.LoadTime));
    }

    [Test]
    public void TriplaneSavesWithItsConfig()
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        var path = Path.Combine(Folder, "planes.safetensors");
        result.SaveTriplane(path);
        using var file = SafeTensorsFile.Open(path);
        using var planes = file.ReadTensor("planes");
        Assert.That(planes.Shape.ToArray(), Is.EqualTo(new long[] { 3, result.TriplaneChannels, result.TriplaneResolution, result.TriplaneResolution }));
        Assert.That(planes.AsSpan<float>().ToArray(), Is.EqualTo(result.GetTriplane()));
        Assert.That(file.Metadata["image"], Is.EqualTo(Golden.ExampleImagePath));
    }

    [Test]
    public void TurntableIsOpenLrmsOrbit()
    {
        var cameras = Camera.Turntable(5);
        Assert.That(cameras, Has.Count.EqualTo(5));
        var circle = Math.Sqrt(4 - 0.64);
        // theta = linspace(−π/2, 3π/2, 5): −90°, 0°, 90°, 180°, 270°.
        var expected = new (double X, double Y)[] { (0, -circle), (circle, 0), (0, circle), (-circle, 0), (0, -circle) };
        for (var i = 0; i < 5; i++)
        {
            var p = cameras[i].Position;
            Assert.That(p.X, Is.EqualTo(expected[i].X).Within(1e-5), $"frame {i} x");
            Assert.That(p.Y, Is.EqualTo(expected[i].Y).Within(1e-5), $"frame {i} y");
            Assert.That(p.Z, Is.EqualTo(0.8f), $"frame {i} height");
            Assert.That(p.Length(), Is.EqualTo(2f).Within(1e-5), $"frame {i} distance");
            // The camera looks at the origin: its +Z axis (third column) points from the origin to the camera.
            var m = cameras[i].CameraToWorld;
            var back = new Vector3(m[2], m[6], m[10]);
            Assert.That(Vector3.Distance(back, p / p.Length()), Is.LessThan(1e-5f), $"frame {i} looks at the origin");
            // +Y of the image is world up (positive z component), +X horizontal.
            Assert.That(m[9], Is.GreaterThan(0f), $"frame {i} up");
            Assert.That(m[8], Is.EqualTo(0f).Within(1e-6), $"frame {i} right is horizontal");
        }
        Assert.That(Camera.Turntable(1)[0].Position.Y, Is.LessThan(0f), "one frame: in front, where the input camera is");
        Assert.Throws<LrmInvalidArgumentException>(() => Camera.Turntable(0));
        Assert.Throws<LrmInvalidArgumentException>(() => Camera.Turntable(4, radius: 0.5f, height: 0.8f));
    }

    [Test]
    public void TurntableFramesAreRendersFromTheOrbit()
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        var frames = result.RenderTurntable(4, 8).ToList();
        try
        {
            Assert.That(frames, Has.Count.EqualTo(4));
            var orbit = Camera.Turntable(4);
            for (var i = 0; i < 4; i++)
            {
                using var direct = result.Render(orbit[i], 8, 8);
                Assert.That(frames[i].Color.Pixels.AsSpan<float>().SequenceEqual(direct.Color.Pixels.AsSpan<float>()), Is.True, $"frame {i}");
            }
            Assert.That(frames[1].Color.Pixels.AsSpan<float>().SequenceEqual(frames[0].Color.Pixels.AsSpan<float>()), Is.False, "views differ around the orbit");
            Assert.That(frames[3].Color.Pixels.AsSpan<float>().SequenceEqual(frames[0].Color.Pixels.AsSpan<float>()), Is.True, "OpenLRM's orbit ends where it starts");
        }
        finally
        {
            frames.ForEach(frame => frame.Dispose());
        }
    }

    [Test]
    public void AutoFallsBackToTheCpuAndSaysWhy()
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory);
        if (CudaBackend.IsAvailable(out _))
        {
            Assert.That(lrm.Device, Is.EqualTo(Device.Cuda(0)), "a usable GPU: Auto takes it");
            Assert.That(lrm.DeviceNote, Is.Null);
        }
        else
        {
            Assert.That(lrm.Device, Is.EqualTo(Device.Cpu));
            Assert.That(lrm.DeviceNote, Does.StartWith("CUDA backend not available: ").And.EndWith("running on the CPU"));
        }
        using var cpu = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        Assert.That(cpu.DeviceNote, Is.Null);
    }

    [Test]
    public void ExplicitCudaFailsWithOneClearError()
    {
        if (CudaBackend.IsAvailable(out _))
        {
            Assert.Ignore("this machine has a usable CUDA device, so an explicit request succeeds");
        }
        var error = Assert.Throws<LrmUnsupportedException>(() => Reconstructor.Load(Golden.TinyModelDirectory, Device.Cuda()).Dispose());
        Assert.That(error!.Message, Does.StartWith("CUDA backend not available: "));
        Assert.That(error.Message.Length, Is.GreaterThan("CUDA backend not available: ".Length + 5), "a reason follows");
    }

    [Test]
    public void ThresholdComesFromTheOptionsThenTheConfigThenOpenLrm()
    {
        using (var plain = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu))
        {
            Assert.That(plain.Threshold, Is.EqualTo(3.0f));
        }
        using (var given = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { Threshold = 0.25f }))
        {
            Assert.That(given.Threshold, Is.EqualTo(0.25f));
        }
        // A copy of the tiny model whose config names its own threshold.
        var folder = Path.Combine(Folder, "model");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(Golden.TinyModelDirectory, LrmModel.WeightsFileName), Path.Combine(folder, LrmModel.WeightsFileName));
        var json = File.ReadAllText(Path.Combine(Golden.TinyModelDirectory, LrmModel.ConfigFileName)).TrimEnd().TrimEnd('}') + ", \"mesh_threshold\": 1.5}";
        File.WriteAllText(Path.Combine(folder, LrmModel.ConfigFileName), json);
        using (var configured = Reconstructor.Load(folder, Device.Cpu))
        {
            Assert.That(configured.Threshold, Is.EqualTo(1.5f));
            Assert.That(ModelConfig.Parse(configured.Model.Config.ToJson(), "round trip").MeshThreshold, Is.EqualTo(1.5f));
        }
        using (var overridden = Reconstructor.Load(folder, Device.Cpu, new ReconstructorOptions { Threshold = 2f }))
        {
            Assert.That(overridden.Threshold, Is.EqualTo(2f));
        }
        // The config's foreground_ratio frames the photo unless the options give one: same triplanes as the explicit option.
        File.WriteAllText(Path.Combine(folder, LrmModel.ConfigFileName), json.Replace("}", ", \"foreground_ratio\": 0.6}", StringComparison.Ordinal));
        using (var framed = Reconstructor.Load(folder, Device.Cpu))
        using (var explicitRatio = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { ForegroundRatio = 0.6 }))
        using (var plainRatio = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu))
        using (var overriddenRatio = Reconstructor.Load(folder, Device.Cpu, new ReconstructorOptions { ForegroundRatio = 0.85 }))
        {
            Assert.That(ModelConfig.Parse(framed.Model.Config.ToJson(), "round trip").ForegroundRatio, Is.EqualTo(0.6).Within(1e-6));
            using var a = framed.Reconstruct(Golden.ExampleImagePath);
            using var b = explicitRatio.Reconstruct(Golden.ExampleImagePath);
            using var c = plainRatio.Reconstruct(Golden.ExampleImagePath);
            using var d = overriddenRatio.Reconstruct(Golden.ExampleImagePath);
            Assert.That(a.GetTriplane(), Is.EqualTo(b.GetTriplane()), "config 0.6 = option 0.6");
            Assert.That(a.GetTriplane(), Is.Not.EqualTo(c.GetTriplane()), "0.6 differs from the default 0.85");
            Assert.That(d.GetTriplane(), Is.EqualTo(c.GetTriplane()), "the option wins over the config");
        }
        File.WriteAllText(Path.Combine(folder, LrmModel.ConfigFileName), json.Replace("}", ", \"foreground_ratio\": 1.5}", StringComparison.Ordinal));
        Assert.That(Assert.Throws<LrmFormatException>(() => Reconstructor.Load(folder, Device.Cpu).Dispose())!.Message, Does.Contain("foreground_ratio"));
        File.WriteAllText(Path.Combine(folder, LrmModel.ConfigFileName), json.Replace("1.5", "\"high\"", StringComparison.Ordinal));
        var error = Assert.Throws<LrmFormatException>(() => Reconstructor.Load(folder, Device.Cpu).Dispose());
        Assert.That(error!.Message, Does.Contain("mesh_threshold"));
    }

    [Test]
    public void ProgressReportsEveryStageFromZeroToOne()
    {
        var reports = new List<ReconstructionProgress>();
        var progress = new SynchronousProgress(reports.Add);
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { Progress = progress, CoarseToFine = true });
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        using (result.RenderInputView(4))
        {
        }
        result.ExtractMesh(64, 0.5f);
        Assert.That(result.LastGridQuery!.CoarseToFine, Is.True, "the option's default");
        var stages = reports.Select(r => r.Stage).Distinct().ToArray();
        Assert.That(stages, Is.EqualTo(new[] { ReconstructionStage.Load, ReconstructionStage.Preprocess, ReconstructionStage.ImageToTriplane,
            ReconstructionStage.Render, ReconstructionStage.GridQuery, ReconstructionStage.MarchingCubes, ReconstructionStage.VertexColors }));
        foreach (var stage in stages)
        {
            var fractions = reports.Where(r => r.Stage == stage).Select(r => r.Fraction).ToArray();
            Assert.That(fractions[0], Is.Zero, stage.ToString());
            Assert.That(fractions[^1], Is.EqualTo(1.0), stage.ToString());
            Assert.That(fractions, Is.Ordered, stage.ToString());
        }
        Assert.That(reports.Count(r => r.Stage == ReconstructionStage.GridQuery), Is.GreaterThan(3), "the grid query reports as it goes");
    }

    [Test]
    public void BadInputGivesOneClearError()
    {
        Assert.That(Assert.Throws<LrmFormatException>(() => Reconstructor.Load(Path.Combine(Folder, "none")).Dispose())!.Message, Does.Contain("model not found"));
        Assert.Throws<LrmInvalidArgumentException>(() => Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { ForegroundRatio = 0 }).Dispose());
        Assert.Throws<LrmInvalidArgumentException>(() => Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { Threshold = float.NaN }).Dispose());
        Assert.Throws<LrmInvalidArgumentException>(() => Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { Threads = -1 }).Dispose());
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using (var dot = Image.FromRgba([1f, 0f, 0f, 1f], 1, 1))
        {
            Assert.That(Assert.Throws<LrmInvalidArgumentException>(() => lrm.Reconstruct(dot).Dispose())!.Message, Does.Contain("1×1"));
        }
        Assert.Throws<LrmFormatException>(() => lrm.Reconstruct(Path.Combine(Folder, "missing.png")).Dispose());
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        Assert.Throws<LrmInvalidArgumentException>(() => result.ExtractMesh(1));
        Assert.Throws<LrmInvalidArgumentException>(() => result.ExtractMesh(16, float.PositiveInfinity));
        Assert.Throws<LrmInvalidArgumentException>(() => result.Render(Camera.Input, 0, 8).Dispose());
        Assert.Throws<LrmShapeException>(() => result.Query([1f, 2f]));
        Assert.That(result.ExtractMesh(16, 1000f).IsEmpty, Is.True, "no surface: an empty mesh, not an error");
    }

    [Test]
    public void ReadmeSampleRuns()
    {
        // README.md "Using LrmNative from C#", with the tests' paths and smaller renders.
        var output = Path.Combine(Folder, "out");
        var options = new ReconstructorOptions { Threshold = 0.7f, CoarseToFine = true };
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Auto, options);
        using var image = Image.Load(Golden.ExampleImagePath);
        using var result = lrm.Reconstruct(image);
        result.ExtractMesh(128).SaveGlb(Path.Combine(output, "mesh.glb"));
        result.ExtractMesh(128).Simplified(2_000).SaveGlb(Path.Combine(output, "mesh-2k.glb"));
        using (var view = result.RenderInputView(32)) view.Color.SavePng(Path.Combine(output, "view.png"));
        var frame = 0;
        foreach (var view in result.RenderTurntable(3, 16))
            using (view) view.Color.SavePng(Path.Combine(output, "turntable", $"{frame++:D3}.png"));
        Assert.That(result.Timings.ToString(), Does.Contain("ImageToTriplane").And.Contain("GridQuery"));
        Assert.That(Directory.GetFiles(Path.Combine(output, "turntable")), Has.Length.EqualTo(3));
        GltfValidator.AssertValid(Path.Combine(output, "mesh.glb"), Path.Combine(output, "mesh-2k.glb"));
        Assert.That(Mesh.Load(Path.Combine(output, "mesh-2k.glb")).TriangleCount, Is.InRange(1, 2_000));
    }
}

/// <summary>Progress&lt;T&gt; posts to the thread pool; the facade reports synchronously, and so does this.</summary>
internal sealed class SynchronousProgress(Action<ReconstructionProgress> report) : IProgress<ReconstructionProgress>
{
    public void Report(ReconstructionProgress value) => report(value);
}
