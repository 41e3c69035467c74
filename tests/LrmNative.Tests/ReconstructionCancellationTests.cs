namespace LrmNative.Tests;

/// <summary>
/// Cancellation of the facade's long calls (what an editor's Cancel button needs): a cancelled token stops
/// Reconstruct before any stage runs, stops ExtractMesh inside the grid query (dense and coarse-to-fine), frees what
/// the call had made (host tensor bytes back where they were), and leaves the reconstructor and the reconstruction usable,
/// giving the same mesh afterwards.
/// </summary>
[NonParallelizable] // compares the process-wide count of host tensor bytes
public sealed class ReconstructionCancellationTests
{
    [Test]
    public void ACancelledTokenStopsReconstructBeforeAnyStage()
    {
        var stages = new List<ReconstructionStage>();
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu,
            new ReconstructorOptions { Progress = new SynchronousProgress(p => stages.Add(p.Stage)) });
        using var image = Image.Load(Golden.ExampleImagePath);
        stages.Clear(); // Load's own progress
        var before = LiveHostBytes();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => lrm.Reconstruct(image, cancelled.Token));
        Assert.Throws<OperationCanceledException>(() => lrm.Reconstruct(Golden.ExampleImagePath, cancelled.Token));
        Assert.That(stages, Is.Empty, "no stage started");
        Assert.That(LiveHostBytes(), Is.EqualTo(before), "nothing left allocated");
        using var result = lrm.Reconstruct(image);
        Assert.That(result.TriplaneResolution, Is.GreaterThan(0), "the reconstructor still works");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void CancellingDuringTheGridQueryStopsExtractMeshAndLeavesTheReconstructionUsable(bool coarseToFine)
    {
        using var cancel = new CancellationTokenSource();
        var fractions = new List<double>();
        var cancelAt = coarseToFine ? 0.3 : 0.25;
        var options = new ReconstructorOptions
        {
            Progress = new SynchronousProgress(p =>
            {
                if (p.Stage != ReconstructionStage.GridQuery)
                {
                    return;
                }
                fractions.Add(p.Fraction);
                if (p.Fraction >= cancelAt)
                {
                    cancel.Cancel();
                }
            }),
        };
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, options);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        const int resolution = 128;
        result.Query([0f, 0f, 0f]); // makes the projected planes the reconstruction keeps for every query
        var before = LiveHostBytes();
        Assert.Throws<OperationCanceledException>(() => result.ExtractMesh(resolution, 0.7f, coarseToFine, cancel.Token));
        Assert.That(fractions.Max(), Is.LessThan(1.0), "stopped inside the grid query");
        Assert.That(fractions.Count(f => f >= cancelAt), Is.EqualTo(1), "no further slab ran after the cancel");
        Assert.That(LiveHostBytes(), Is.EqualTo(before), "the partial grid was freed");

        fractions.Clear();
        var mesh = result.ExtractMesh(resolution, 0.7f, coarseToFine, CancellationToken.None);
        Assert.That(fractions.Max(), Is.EqualTo(1.0));
        using var reference = lrm.Reconstruct(Golden.ExampleImagePath);
        var expected = reference.ExtractMesh(resolution, 0.7f, coarseToFine);
        Assert.That(mesh.TriangleCount, Is.GreaterThan(0));
        Assert.That(mesh.Positions.ToArray(), Is.EqualTo(expected.Positions.ToArray()), "the same mesh as an uncancelled run");
        Assert.That(mesh.Triangles.ToArray(), Is.EqualTo(expected.Triangles.ToArray()));
    }

    [Test]
    public void TheTurntableStopsAtTheNextFrame()
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        using var cancel = new CancellationTokenSource();
        var rendered = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (var view in result.RenderTurntable(6, 16, cancel.Token))
            {
                view.Dispose();
                if (++rendered == 2)
                {
                    cancel.Cancel();
                }
            }
        });
        Assert.That(rendered, Is.EqualTo(2));
    }

    /// <summary>Host tensor bytes now, after any finalizer of an earlier test's garbage has run.</summary>
    private static long LiveHostBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return HostMemory.LiveBytes;
    }
}
