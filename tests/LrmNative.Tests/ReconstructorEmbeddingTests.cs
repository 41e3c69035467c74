namespace LrmNative.Tests;

/// <summary>
/// The facade as a game studio's tools embed it: calls from several threads (one at a time, same results), Dispose from
/// another thread while a call runs (the call finishes, then the memory is freed), use after Dispose (an
/// ObjectDisposedException naming the object), a progress callback that throws (the exception comes through as it is and
/// every tensor the call made is freed, stage by stage), out-of-range thresholds, repeated reconstructions that give
/// back all they take, and the GLB's orientation (the photo's left at −x seen from the front, normals outward).
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

    [Test]
    public void CallsAfterDisposeThrowObjectDisposedNamingTheObject()
    {
        using var image = Image.Load(Golden.ExampleImagePath);
        var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { Threshold = 0.6f });
        var result = lrm.Reconstruct(image);
        var orphan = lrm.Reconstruct(image);
        result.Dispose();
        result.Dispose();
        var calls = new (string Name, Action Call)[]
        {
            ("Render", () => result.RenderInputView(8).Dispose()),
            ("RenderTurntable", () => result.RenderTurntable(2, 8).First().Dispose()),
            ("ExtractMesh", () => result.ExtractMesh(16)),
            ("Query", () => result.Query([0f, 0f, 0f])),
            ("InputImage", () => _ = result.InputImage),
            ("GetTriplane", () => result.GetTriplane()),
        };
        foreach (var (name, call) in calls)
        {
            var error = Assert.Throws<ObjectDisposedException>(() => call(), name);
            Assert.That(error!.ObjectName, Is.EqualTo(typeof(Reconstruction).FullName), name);
        }

        lrm.Dispose();
        lrm.Dispose();
        Assert.That(Assert.Throws<ObjectDisposedException>(() => lrm.Reconstruct(image))!.ObjectName, Is.EqualTo(typeof(Reconstructor).FullName));
        Assert.That(Assert.Throws<ObjectDisposedException>(() => lrm.Reconstruct(Golden.ExampleImagePath))!.ObjectName, Is.EqualTo(typeof(Reconstructor).FullName));
        // A reconstruction that outlives its reconstructor says so, instead of failing inside on a freed weight.
        var orphaned = Assert.Throws<ObjectDisposedException>(() => orphan.ExtractMesh(16));
        Assert.That(orphaned!.ObjectName, Is.EqualTo(nameof(Reconstructor)));
        Assert.That(orphaned.Message, Does.Contain("the Reconstructor that made it was disposed"));
        Assert.Throws<ObjectDisposedException>(() => orphan.RenderInputView(8).Dispose());
        orphan.Dispose();
    }

    [Test]
    public void DisposeFromAnotherThreadDuringACallLetsTheCallFinishThenFrees()
    {
        using var image = Image.Load(Golden.ExampleImagePath);
        const int resolution = 80; // two slabs of the dense grid: progress at 0, 0.5 and 1
        Mesh expected;
        using (var reference = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu))
        using (var referenceResult = reference.Reconstruct(image))
        {
            expected = referenceResult.ExtractMesh(resolution, 0.6f, coarseToFine: false);
        }
        var before = LiveHostBytes();
        Reconstructor? lrm = null;
        Reconstruction? result = null;
        var disposedInFlight = false;
        var options = new ReconstructorOptions
        {
            Progress = new SynchronousProgress(p =>
            {
                if (p.Stage == ReconstructionStage.GridQuery && p.Fraction is > 0 and < 1 && !disposedInFlight)
                {
                    // An editor closing: another thread disposes both while this call is half-way through its grid.
                    disposedInFlight = true;
                    var disposer = Task.Run(() =>
                    {
                        result!.Dispose();
                        lrm!.Dispose();
                    });
                    Assert.That(disposer.Wait(TimeSpan.FromMinutes(2)), Is.True, "Dispose returns without waiting for the call in flight");
                }
            }),
        };
        lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, options);
        result = lrm.Reconstruct(image);
        var mesh = result.ExtractMesh(resolution, 0.6f, coarseToFine: false);

        Assert.That(disposedInFlight, Is.True);
        Assert.That(mesh.TriangleCount, Is.GreaterThan(0));
        Assert.That(mesh.Positions.ToArray(), Is.EqualTo(expected.Positions.ToArray()), "the call in flight finished on valid memory");
        Assert.That(mesh.Colors.ToArray(), Is.EqualTo(expected.Colors.ToArray()));
        Assert.That(LiveHostBytes(), Is.EqualTo(before), "freed as the call returned");
        Assert.Throws<ObjectDisposedException>(() => result.ExtractMesh(16));
        Assert.Throws<ObjectDisposedException>(() => lrm.Reconstruct(image));
    }

    [Test]
    public void CallsFromSeveralThreadsRunOneAtATimeWithTheResultsOfOneThread()
    {
        using var image = Image.Load(Golden.ExampleImagePath);
        const int threads = 4;
        // The reports of one call (Reconstruct, ExtractMesh or Render) must not interleave with another thread's.
        var gate = new Lock();
        var inCall = -1;
        var interleaved = new List<string>();
        var options = new ReconstructorOptions
        {
            Threshold = 0.6f,
            Progress = new SynchronousProgress(p =>
            {
                var thread = Environment.CurrentManagedThreadId;
                lock (gate)
                {
                    var opens = (p.Stage, p.Fraction) is (ReconstructionStage.Preprocess, 0) or (ReconstructionStage.GridQuery, 0) or (ReconstructionStage.Render, 0);
                    if (inCall != thread && !(opens && inCall == -1))
                    {
                        interleaved.Add($"{p.Stage} {p.Fraction} on thread {thread} inside a call of thread {inCall}");
                    }
                    var closes = (p.Stage, p.Fraction) is (ReconstructionStage.ImageToTriplane, 1) or (ReconstructionStage.VertexColors, 1) or (ReconstructionStage.Render, 1);
                    inCall = closes ? -1 : thread;
                }
            }),
        };
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, options);
        (float[] Triplane, float[] Positions, float[] Colors, float[] Pixels) Work()
        {
            using var result = lrm.Reconstruct(image);
            var mesh = result.ExtractMesh(32);
            using var view = result.RenderInputView(16);
            return (result.GetTriplane(), mesh.Positions.ToArray(), mesh.Colors.ToArray(), view.Color.Pixels.ToFloatArray());
        }
        var serial = Work();
        interleaved.Clear();
        using var start = new Barrier(threads);
        var results = Enumerable.Range(0, threads).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            return Work();
        }, TaskCreationOptions.LongRunning)).ToArray();
        Task.WaitAll(results);

        Assert.That(interleaved, Is.Empty, "calls from different threads overlapped");
        foreach (var task in results)
        {
            var (triplane, positions, colors, pixels) = task.Result;
            Assert.That(triplane, Is.EqualTo(serial.Triplane));
            Assert.That(positions, Is.EqualTo(serial.Positions));
            Assert.That(colors, Is.EqualTo(serial.Colors));
            Assert.That(pixels, Is.EqualTo(serial.Pixels));
        }
    }

    [Test]
    public void TheGlbSeenFromTheFrontShowsThePhotosLeftOnTheLeftWithOutwardNormals()
    {
        // The shipped model on a square whose left half is red and right half blue: in the GLB (y-up, seen from +z, the
        // input camera's side) the red vertices must lie at −x, the blue at +x, and the normals point away from the centre.
        var repository = TestFiles.RepositoryFolder();
        if (repository is null)
        {
            Assert.Ignore("models/default is not in a test bundle");
        }
        using var lrm = Reconstructor.Load(Path.Combine(repository, "models", "default"), Device.Cpu);
        const int size = 128;
        var pixels = new float[4 * size * size];
        for (var y = 32; y < 96; y++)
        {
            for (var x = 32; x < 96; x++)
            {
                var left = x < size / 2;
                var at = 4 * (y * size + x);
                pixels[at] = left ? 0.9f : 0.1f;
                pixels[at + 1] = 0.1f;
                pixels[at + 2] = left ? 0.1f : 0.9f;
                pixels[at + 3] = 1f;
            }
        }
        using var image = Image.FromRgba(pixels, size, size, hasAlpha: true, "red left, blue right");
        using var result = lrm.Reconstruct(image);
        var path = Path.Combine(Path.GetTempPath(), $"lrm-orientation-{Guid.NewGuid():N}.glb");
        try
        {
            result.ExtractMesh(48).SaveGlb(path);
            GltfValidator.AssertValid(path);
            var glb = Mesh.Load(path); // back to z-up: x is glTF's x
            var gltfX = new List<(float X, bool Red)>();
            double outward = 0;
            glb.ComputeVertexNormals();
            var centre = glb.Bounds.Center;
            for (var v = 0; v < glb.VertexCount; v++)
            {
                var c = glb.Colors.Slice(3 * v, 3);
                if (Math.Abs(c[0] - c[2]) > 0.2f)
                {
                    gltfX.Add((glb.Positions[3 * v], c[0] > c[2]));
                }
                for (var k = 0; k < 3; k++)
                {
                    outward += glb.Normals[3 * v + k] * (glb.Positions[3 * v + k] - centre[k]);
                }
            }
            var red = gltfX.Where(p => p.Red).Select(p => (double)p.X).ToArray();
            var blue = gltfX.Where(p => !p.Red).Select(p => (double)p.X).ToArray();
            Assert.That(red, Has.Length.GreaterThan(100));
            Assert.That(blue, Has.Length.GreaterThan(100));
            Assert.That(red.Average(), Is.LessThan(-0.2), "red (the photo's left) at −x");
            Assert.That(blue.Average(), Is.GreaterThan(0.2), "blue (the photo's right) at +x");
            Assert.That(outward, Is.Positive, "normals point outward");
        }
        finally
        {
            File.Delete(path);
        }
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
