using LrmNative.Backends;
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
}
