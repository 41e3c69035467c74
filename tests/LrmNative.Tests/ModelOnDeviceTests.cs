using LrmNative.Backends;
using LrmNative.Imaging;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The model on a device backend without a GPU: <see cref="SimulatedDeviceBackend"/> hands out CUDA-kind tensors the
/// host cannot read (filled with NaN when allocated) and rejects host tensors in every op, while the CPU kernels do the
/// work on staged copies. So a forward that uses only backend memory and backend ops gives the CPU backend's result
/// bit for bit, and any leftover host allocation or host read in the model fails here rather than in a GPU session.
/// </summary>
[TestFixture]
public sealed class ModelOnDeviceTests
{
    private static ModelConfig Config(string? extra = null)
    {
        var json = TrainingSceneData.TinyConfigJson;
        if (extra is not null)
        {
            json = json.TrimEnd().TrimEnd('}') + "," + extra + "}";
        }
        return ModelConfig.Parse(json, "tiny device-test config");
    }

    private static Tensor RandomHost(Random random, params long[] shape)
    {
        var count = shape.Aggregate(1L, (a, b) => a * b);
        return Tensor.FromArray(Enumerable.Range(0, (int)count).Select(_ => random.NextSingle()).ToArray(), shape);
    }

    private static void AssertBitwise(float[] actual, Tensor expected, string what)
    {
        var reference = expected.ToFloatArray();
        Assert.That(actual, Has.Length.EqualTo(reference.Length), what);
        var mismatches = Enumerable.Range(0, reference.Length).Count(i => BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(reference[i]));
        Assert.That(mismatches, Is.Zero, $"{what}: {mismatches} of {reference.Length} elements differ from the CPU backend's");
    }

    [TestCase(null, TestName = "ImageToTriplaneOnADeviceBackendEqualsTheCpu")]
    [TestCase("\"encoder_image_mean\": [0.485, 0.456, 0.406], \"encoder_image_std\": [0.229, 0.224, 0.225]", TestName = "ImageToTriplaneOnADeviceBackendEqualsTheCpuWithImageNormalisation")]
    public void ImageToTriplane(string? extra)
    {
        var config = Config(extra);
        using var cpu = new CpuBackend();
        using var device = new SimulatedDeviceBackend();
        var random = new Random(7);
        using var image = RandomHost(random, 2, 3, config.EncoderImageSize, config.EncoderImageSize);
        using var camera = RandomHost(random, 2, config.CameraInputDim);
        using var hostModel = LrmModel.Create(config, ModelInitializer.Create(config, 11), trainable: false);
        using var expected = hostModel.Forward(cpu, image, camera);

        using (var model = LrmModel.Create(config, ModelInitializer.Create(config, 11), trainable: false, device))
        using (var deviceImage = device.ToBackend(image))
        using (var deviceCamera = device.ToBackend(camera))
        {
            Assert.That(model.Placement.Device, Is.EqualTo(Device.Cuda(0)));
            using var outputs = model.Forward(device, deviceImage, deviceCamera);
            Assert.That(outputs.Planes.Device, Is.EqualTo(Device.Cuda(0)), "the triplane stays on the device");
            AssertBitwise(device.ToFloatArray(outputs.Features), expected.Features, "features");
            AssertBitwise(device.ToFloatArray(outputs.CameraEmbedding), expected.CameraEmbedding, "camera embedding");
            AssertBitwise(device.ToFloatArray(outputs.Tokens), expected.Tokens, "tokens");
            AssertBitwise(device.ToFloatArray(outputs.Planes), expected.Planes, "planes");
            // A second forward reuses the cached position table (made on the device the first time).
            using var planes = model.ForwardPlanes(device, deviceImage, deviceCamera);
            AssertBitwise(device.ToFloatArray(planes), expected.Planes, "planes (second forward)");
        }
        Assert.That(device.LiveTensors, Is.Zero, "every device tensor is freed with the model and the outputs");
    }

    [Test]
    public void TheSimulatedDeviceRejectsHostTensorsAndPoisonsNewOnes()
    {
        using var device = new SimulatedDeviceBackend();
        using var host = Tensor.FromArray([1f, 2f, 3f], 3);
        using var onDevice = device.Empty([3]);
        Assert.That(device.ToFloatArray(onDevice), Has.All.NaN, "new device tensors hold NaN");
        Assert.Throws<LrmUnsupportedException>(() => onDevice.AsSpan<float>(), "the host cannot read device memory");
        Assert.Throws<LrmShapeException>(() => device.Add(onDevice, host, host), "a host tensor in a device op");
        device.Upload(onDevice, host);
        device.Add(onDevice, onDevice, onDevice);
        Assert.That(device.ToFloatArray(onDevice), Is.EqualTo(new[] { 2f, 4f, 6f }));
    }

    [Test]
    public void ForwardOnAnotherDeviceThanTheWeightsNamesBoth()
    {
        var config = Config();
        using var device = new SimulatedDeviceBackend();
        using var cpu = new CpuBackend();
        using var model = LrmModel.Create(config, ModelInitializer.Create(config, 11), trainable: false, device);
        using var image = Tensor.Zeros([1, 3, config.EncoderImageSize, config.EncoderImageSize]);
        using var camera = Tensor.Zeros([1, config.CameraInputDim]);
        var error = Assert.Throws<LrmInvalidArgumentException>(() => model.Forward(cpu, image, camera).Dispose());
        Assert.That(error!.Message, Does.Contain("cuda:0").And.Contain("cpu").And.Contain("placement"));
    }

    [Test]
    public void ReconstructOnADeviceBackendEqualsTheCpu()
    {
        var options = new ReconstructorOptions();
        using var cpu = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, options);
        var device = new SimulatedDeviceBackend();
        using (var lrm = Reconstructor.WithBackend(device, backend => LrmModel.Load(Golden.TinyModelDirectory, trainable: false, backend), options, "tiny"))
        {
            Assert.That(lrm.Device, Is.EqualTo(Device.Cuda(0)));
            using var image = Image.Load(Golden.ExampleImagePath);
            using var expected = cpu.Reconstruct(image);
            using var actual = lrm.Reconstruct(image);
            Assert.That(actual.GetTriplane(), Is.EqualTo(expected.GetTriplane()).AsCollection, "triplane");

            using var expectedView = expected.Render(Camera.Input, 24, 20);
            using var actualView = actual.Render(Camera.Input, 24, 20);
            Assert.That(actualView.Color.Pixels.ToFloatArray(), Is.EqualTo(expectedView.Color.Pixels.ToFloatArray()).AsCollection, "rendered colour");
            Assert.That(actualView.Depth.ToArray(), Is.EqualTo(expectedView.Depth.ToArray()).AsCollection, "rendered depth");
            Assert.That(actualView.Opacity.ToArray(), Is.EqualTo(expectedView.Opacity.ToArray()).AsCollection, "rendered opacity");

            float[] points = [0f, 0f, 0f, 0.3f, -0.2f, 0.5f, 0.9f, 0.9f, -0.9f];
            Assert.That(actual.Query(points), Is.EqualTo(expected.Query(points)).AsCollection, "NeRF query");

            // Meshes need a surface: the tiny model's NeRF MLP with analytic weights over an analytic sphere triplane.
            var config = cpu.Model.Config;
            using var sphereCpu = Reconstructor.FromModel(backend => LrmModel.CreateRandom(config, 7, AnalyticTriplane.NerfWeights(config, 3f), backend), Device.Cpu, options, "sphere");
            using var sphereDevice = Reconstructor.WithBackend(new SimulatedDeviceBackend(),
                backend => LrmModel.CreateRandom(config, 7, AnalyticTriplane.NerfWeights(config, 3f), backend), options, "sphere");
            using var onCpu = sphereCpu.FromPlanes(AnalyticTriplane.Planes(config), "sphere");
            using var onDevice = sphereDevice.FromPlanes(AnalyticTriplane.Planes(config), "sphere");
            foreach (var coarseToFine in new[] { false, true })
            {
                var want = onCpu.ExtractMesh(40, 3f, coarseToFine);
                var got = onDevice.ExtractMesh(40, 3f, coarseToFine);
                Assert.That(want.TriangleCount, Is.GreaterThan(100), "the sphere has a surface");
                Assert.That(got.Positions.ToArray(), Is.EqualTo(want.Positions.ToArray()).AsCollection, $"mesh vertices (coarse-to-fine {coarseToFine})");
                Assert.That(got.Triangles.ToArray(), Is.EqualTo(want.Triangles.ToArray()).AsCollection, $"mesh triangles (coarse-to-fine {coarseToFine})");
                Assert.That(got.Colors.ToArray(), Is.EqualTo(want.Colors.ToArray()).AsCollection, $"vertex colours (coarse-to-fine {coarseToFine})");
            }
        }
        Assert.That(device.LiveTensors, Is.Zero, "every device tensor is freed with the reconstructor and its reconstructions");
    }

    // Trains the tiny model for `steps` updates on `backend` (weights placed there), optionally resuming; returns the
    // final weights (host copies, by name) and the log's losses.
    private static (Dictionary<string, float[]> Weights, double[] Losses) Train(IBackend backend, string data, string output, long steps, bool deferred,
        long stopAt = 0, bool resume = false)
    {
        var config = Config();
        var dataset = MultiViewDataset.Open(data, new DataOptions
        {
            ViewsPerSample = 2,
            SourceImageSize = 28,
            RenderMinResolution = 12,
            RenderMaxResolution = 16,
            PatchSize = 8,
        });
        using var model = LrmModel.Create(config, ModelInitializer.Create(config, 5), trainable: true, backend);
        using var task = new LrmTrainingTask(model, new LrmLossOptions { Deferred = deferred, MaskWeight = 0.5f }, chunkRays: 50);
        var loop = new TrainingLoop(task, dataset, new TrainingOptions
        {
            Steps = steps,
            BatchSize = 2,
            Seed = 3,
            WarmupSteps = 1,
            Optimizer = new AdamWOptions { LearningRate = 1e-3 },
            CheckpointEvery = 1,
            OutputDirectory = output,
        });
        using var cancel = new CancellationTokenSource();
        loop.Run(backend, resume ? loop.CheckpointPath : null, progress: p =>
        {
            if (p.Step == stopAt)
            {
                cancel.Cancel();
            }
        }, cancel.Token);
        var weights = task.Parameters.ToDictionary(p => p.Name, p => backend.ToFloatArray(p.Value));
        return (weights, TrainingLoop.ReadLog(output).Select(row => row["loss"]).ToArray());
    }

    [TestCase(false, TestName = "TrainingStepsOnADeviceBackendEqualTheCpu")]
    [TestCase(true, TestName = "DeferredTrainingStepsOnADeviceBackendEqualTheCpu")]
    public void TrainingSteps(bool deferred)
    {
        var folder = Path.Combine(Path.GetTempPath(), "lrm-device-train-" + Guid.NewGuid().ToString("N"));
        try
        {
            var data = Path.Combine(folder, "data");
            TrainingSceneData.Write(data, objects: 3, views: 3, size: 16, seed: 4);
            using var cpu = new CpuBackend();
            var (expected, expectedLosses) = Train(cpu, data, Path.Combine(folder, "cpu"), steps: 3, deferred);
            using var device = new SimulatedDeviceBackend();
            // Two updates, stop (checkpoint written from the device), resume on the device for the third.
            var deviceRun = Path.Combine(folder, "device");
            Train(device, data, deviceRun, steps: 3, deferred, stopAt: 2);
            var (actual, actualLosses) = Train(device, data, deviceRun, steps: 3, deferred, resume: true);
            Assert.That(actualLosses, Is.EqualTo(expectedLosses).AsCollection, "losses of the three updates");
            Assert.That(actual.Keys, Is.EquivalentTo(expected.Keys));
            foreach (var (name, values) in expected)
            {
                Assert.That(actual[name], Is.EqualTo(values).AsCollection, $"weight '{name}' after three updates");
            }
            Assert.That(device.LiveTensors, Is.Zero, "every device tensor is freed after training");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
