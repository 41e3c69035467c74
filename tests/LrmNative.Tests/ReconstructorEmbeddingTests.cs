namespace LrmNative.Tests;

/// <summary>
/// The facade as a game studio's tools embed it: a progress callback that throws (the exception comes through as it is
/// and every tensor the call made is freed, stage by stage), and repeated reconstructions that give back all they take.
/// Host tensor bytes are counted by the engine itself (<see cref="HostMemory"/>), not read from the process.
/// </summary>
[NonParallelizable] // compares the process-wide count of host tensor bytes
public sealed class ReconstructorEmbeddingTests
{
    private static readonly ReconstructionStage[] Stages =
    [
        ReconstructionStage.Load, ReconstructionStage.Preprocess, ReconstructionStage.ImageToTriplane, ReconstructionStage.Render,
        ReconstructionStage.GridQuery, ReconstructionStage.MarchingCubes, ReconstructionStage.VertexColors,
    ];

    [TestCaseSource(nameof(Stages))]
    public void AProgressCallbackThrowingAtTheEndOfAStageLeaksNothing(ReconstructionStage failAt)
    {
        using var image = Image.Load(Golden.ExampleImagePath);
        var armed = true;
        var options = new ReconstructorOptions
        {
            Threshold = 0.6f,
            Progress = new SynchronousProgress(p =>
            {
                if (armed && p.Stage == failAt && p.Fraction == 1)
                {
                    armed = false;
                    throw new CallbackFailedException();
                }
            }),
        };
        var before = LiveHostBytes();
        // No collection may run while the call fails: a finalizer would free a leaked tensor and hide the leak.
        Assert.That(GC.TryStartNoGCRegion(64L << 20), Is.True);
        try
        {
            Assert.Throws<CallbackFailedException>(() =>
            {
                using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, options);
                using var result = lrm.Reconstruct(image);
                using (result.RenderInputView(8))
                {
                }
                result.ExtractMesh(24, 0.6f, coarseToFine: false);
            });
            Assert.That(armed, Is.False, $"the callback threw at the end of {failAt}");
            Assert.That(HostMemory.LiveBytes, Is.EqualTo(before), $"every tensor freed when the callback threw at the end of {failAt}");
        }
        finally
        {
            GC.EndNoGCRegion();
        }
    }

    [Test]
    public void TwentyReconstructionsGiveBackEveryByte()
    {
        using var image = Image.Load(Golden.ExampleImagePath);
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { Threshold = 0.6f });
        Run(); // the first call caches the encoder's position table, which the model keeps
        var before = LiveHostBytes();
        for (var i = 0; i < 20; i++)
        {
            Run();
            Assert.That(HostMemory.LiveBytes, Is.EqualTo(before), $"host tensor bytes after reconstruction {i + 1}");
        }

        void Run()
        {
            using var result = lrm.Reconstruct(image);
            _ = result.InputImage;
            result.Query([0f, 0f, 0f]);
            using (result.RenderInputView(16))
            {
            }
            Assert.That(result.ExtractMesh(32).TriangleCount, Is.GreaterThan(0));
        }
    }

    [TestCase(0f)]
    [TestCase(-1f)]
    [TestCase(-0f)]
    public void AThresholdOfZeroOrBelowIsRefusedBeforeAnyWork(float threshold)
    {
        // σ = softplus(·) > 0 everywhere: such a level has no surface, and used to give an empty mesh without a word.
        var stages = new List<ReconstructionStage>();
        var error = Assert.Throws<LrmInvalidArgumentException>(() => Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu,
            new ReconstructorOptions { Threshold = threshold, Progress = new SynchronousProgress(p => stages.Add(p.Stage)) }).Dispose());
        Assert.That(error!.Message, Does.StartWith("threshold must be a finite density > 0"));
        Assert.That(stages, Is.Empty, "refused before the model was loaded");

        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        error = Assert.Throws<LrmInvalidArgumentException>(() => result.ExtractMesh(16, threshold));
        Assert.That(error!.Message, Does.StartWith("mesh threshold must be a finite density > 0"));

        var json = File.ReadAllText(Path.Combine(Golden.TinyModelDirectory, LrmNative.Model.LrmModel.ConfigFileName)).TrimEnd().TrimEnd('}')
            + $", \"mesh_threshold\": {threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)}}}";
        var configError = Assert.Throws<LrmFormatException>(() => LrmNative.Model.ModelConfig.Parse(json, "tiny/config.json"));
        Assert.That(configError!.Message, Does.StartWith("tiny/config.json: mesh_threshold: must be a density > 0"));
    }

    /// <summary>Host tensor bytes now, after any finalizer of an earlier test's garbage has run.</summary>
    private static long LiveHostBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return HostMemory.LiveBytes;
    }

    private sealed class CallbackFailedException() : Exception("the progress callback failed");
}
