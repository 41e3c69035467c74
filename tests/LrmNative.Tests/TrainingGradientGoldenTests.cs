using System.Buffers.Binary;
using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The whole-model gradient golden case (tests/golden/make_model_grad_golden.py, tests/golden/model/tiny-train/README.md):
/// the C# forward and losses reproduce its forward outputs and loss terms, and it holds one gradient for every
/// trainable tensor — so the model backward, when it lands, is checked against exactly this file.
/// </summary>
public sealed class TrainingGradientGoldenTests
{
    private static string Directory => Path.Combine(Golden.DataDirectory, "model", "tiny-train");

    private static double Scalar(SafeTensorsFile file, string name) => BinaryPrimitives.ReadDoubleLittleEndian(file.Bytes(name));

    [Test]
    public void GoldenHoldsAGradientForEveryTrainableTensor()
    {
        var config = ModelConfig.Load(Path.Combine(Directory, "config.json"));
        using var file = SafeTensorsFile.Open(Path.Combine(Directory, "gradients.safetensors"));
        var specs = LrmWeightNames.Expected(config);
        var gradients = file.Tensors.Where(t => t.Name.StartsWith("grad.", StringComparison.Ordinal)).ToDictionary(t => t.Name[5..], t => t);
        Assert.That(gradients.Keys.Order(StringComparer.Ordinal), Is.EqualTo(specs.Select(s => s.Name).Order(StringComparer.Ordinal)));
        foreach (var spec in specs)
        {
            Assert.That(gradients[spec.Name].Shape, Is.EqualTo(spec.Shape), spec.Name);
            using var gradient = file.ReadTensor("grad." + spec.Name);
            Assert.That(gradient.AsSpan<float>().IndexOfAnyExcept(0f), Is.GreaterThanOrEqualTo(0), $"{spec.Name}: a non-zero gradient");
        }
    }

    [Test]
    public void CSharpForwardAndLossesReproduceTheGoldenLoss()
    {
        using var model = LrmModel.Load(Directory);
        using var file = SafeTensorsFile.Open(Path.Combine(Directory, "gradients.safetensors"));
        using var backend = new CpuBackend();
        using var image = file.ReadTensor("in.image");
        using var sourceCamera = file.ReadTensor("in.source_camera");
        using var outputs = model.Forward(backend, image, sourceCamera);
        using (var expectedPlanes = file.ReadTensor("out.planes"))
        {
            Compare.Close(outputs.Planes, expectedPlanes, 1e-4, "planes");
        }
        using var planes = TriplaneNerf.ToChannelsLast(backend, outputs.Planes);
        var views = (int)file.Long("views");
        var backgrounds = file.Metadata["backgrounds"].Split(',').Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        double mse = 0, mask = 0;
        for (var v = 0; v < views; v++)
        {
            using var camera = file.ReadTensor($"in.camera.{v}");
            using var targetRgb = file.ReadTensor($"in.target_rgb.{v}");
            using var targetAlpha = file.ReadTensor($"in.target_alpha.{v}");
            var size = (int)targetRgb.Size(1);
            var background = backgrounds[v];
            using var render = model.Renderer.Render(backend, planes, camera, size, size, [background, background, background]);
            using var expectedRgb = file.ReadTensor($"out.rgb.{v}");
            using var expectedOpacity = file.ReadTensor($"out.opacity.{v}");
            Compare.Close(render.Rgb, expectedRgb, 1e-4, $"view {v} rgb");
            Compare.Close(render.Opacity, expectedOpacity, 1e-4, $"view {v} opacity");
            mse += Losses.MeanSquaredError(null, render.Rgb, targetRgb) / views;
            mask += Losses.MaskMeanSquaredError(null, render.Opacity, targetAlpha) / views;
        }
        var tv = Losses.TotalVariation(null, outputs.Planes);
        Assert.That(mse, Is.EqualTo(Scalar(file, "out.loss_mse")).Within(1e-4 * Scalar(file, "out.loss_mse")), "MSE term");
        Assert.That(mask, Is.EqualTo(Scalar(file, "out.loss_mask")).Within(1e-4 * Scalar(file, "out.loss_mask")), "mask term");
        Assert.That(tv, Is.EqualTo(Scalar(file, "out.loss_tv")).Within(1e-4 * Scalar(file, "out.loss_tv")), "TV term");
        var total = mse + file.Float("mask_weight") * mask + file.Float("tv_weight") * tv;
        Assert.That(total, Is.EqualTo(Scalar(file, "out.loss")).Within(1e-4 * Scalar(file, "out.loss")), "total loss");
    }
}
