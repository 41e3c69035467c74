using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>Checkpoints: bitwise round trip, exact resume, atomic writes, and the checkpoint as a model file.</summary>
public sealed class TrainingCheckpointTests
{
    private string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("lrm-ckpt-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, recursive: true);

    // The tiny model's weights as trainable parameters (values copied, zero gradients).
    internal static List<TrainableParameter> TinyParameters(TensorScope scope, bool zeros = false)
    {
        var config = ModelConfig.Load(Path.Combine(Golden.TinyModelDirectory, "config.json"));
        using var file = SafeTensorsFile.Open(Path.Combine(Golden.TinyModelDirectory, "model.safetensors"));
        return [.. LrmWeightNames.Expected(config).Select(spec =>
        {
            var value = scope.Add(zeros ? Tensor.Zeros(spec.Shape) : file.ReadTensor(spec.Name, spec.Shape));
            return new TrainableParameter(spec.Name, value, scope.Add(Tensor.Zeros(spec.Shape)));
        })];
    }

    internal static void RandomGradients(IReadOnlyList<TrainableParameter> parameters, TrainingRandom random, float scale = 1e-2f)
    {
        foreach (var parameter in parameters)
        {
            var gradient = parameter.Gradient.AsSpan<float>();
            var value = parameter.Value.AsSpan<float>();
            for (var i = 0; i < gradient.Length; i++)
            {
                // Depends on the weights (so a wrong restore shows) and on the random stream (so a wrong RNG shows).
                gradient[i] = scale * (value[i] + (float)(random.NextDouble() - 0.5));
            }
        }
    }

    internal static uint[] Bits(Tensor tensor) => [.. tensor.AsSpan<float>().ToArray().Select(BitConverter.SingleToUInt32Bits)];

    [Test]
    public void RoundTripIsBitwiseForWeightsMomentsAndState()
    {
        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        var random = new TrainingRandom(99);
        for (var s = 0; s < 3; s++)
        {
            RandomGradients(parameters, random);
            optimizer.Step(backend, parameters, 1e-3);
        }
        var path = Path.Combine(_directory, "checkpoint.safetensors");
        var state = new TrainingState(3, ulong.MaxValue - 5, new DataPosition(7, 11), random.State, "{\"note\":\"x\"}");
        TrainingCheckpoint.Save(path, parameters, optimizer, state);

        var restored = TinyParameters(scope, zeros: true);
        using var restoredOptimizer = new AdamW();
        var loaded = TrainingCheckpoint.Load(path, restored, restoredOptimizer);
        Assert.That(loaded, Is.EqualTo(state));
        Assert.That(restoredOptimizer.StepCount, Is.EqualTo(3));
        for (var i = 0; i < parameters.Count; i++)
        {
            Assert.That(Bits(restored[i].Value), Is.EqualTo(Bits(parameters[i].Value)), parameters[i].Name);
        }
        var before = optimizer.StateTensors().ToDictionary(s => s.Key, s => Bits(s.Value));
        var after = restoredOptimizer.StateTensors().ToDictionary(s => s.Key, s => Bits(s.Value));
        Assert.That(after.Keys, Is.EquivalentTo(before.Keys));
        Assert.That(after.Count, Is.EqualTo(2 * parameters.Count));
        foreach (var (key, bits) in before)
        {
            Assert.That(after[key], Is.EqualTo(bits), key);
        }
        Assert.That(TrainingCheckpoint.ReadState(path), Is.EqualTo(state));
    }

    /// <summary>Seed of the resume tests' stand-in training runs.</summary>
    internal const ulong ResumeSeed = 1234;

    /// <summary>The tiny two-view dataset the resume tests train on, written under <paramref name="directory"/>.</summary>
    internal static MultiViewDataset ResumeDataset(string directory)
    {
        var dataRoot = Path.Combine(directory, "data");
        TrainingTestData.WriteTinyDataset(dataRoot);
        return MultiViewDataset.Open(dataRoot, new DataOptions { ViewsPerSample = 2, SourceImageSize = 8, RenderMinResolution = 4, RenderMaxResolution = 8, PatchSize = 4 });
    }

    /// <summary>
    /// A stand-in training loop using every piece of state: weights, AdamW moments and step, the schedule, the
    /// trainer's random stream and the data position (the gradient mixes in the batch's targets).
    /// </summary>
    internal static void Train(List<TrainableParameter> parameters, AdamW optimizer, MultiViewLoader loader, TrainingRandom random, int steps, IBackend backend)
    {
        var schedule = new LearningRateSchedule(4e-3, 3, 20);
        for (var s = 0; s < steps; s++)
        {
            using var batch = loader.Next();
            RandomGradients(parameters, random);
            var dataSignal = batch.TargetRgb.AsSpan<float>()[0] + batch.RenderCameras.AsSpan<float>()[19];
            parameters[0].Gradient.AsSpan<float>()[0] += dataSignal;
            optimizer.Step(backend, parameters, schedule.At(optimizer.StepCount + 1));
        }
    }

    [Test]
    public void TwentyStepsEqualTenThenResumeTenBitwise()
    {
        var dataset = ResumeDataset(_directory);
        const ulong seed = ResumeSeed;

        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var straight = TinyParameters(scope);
        using (var optimizer = new AdamW())
        using (var loader = new MultiViewLoader(dataset, 2, seed))
        {
            Train(straight, optimizer, loader, new TrainingRandom(seed), 20, backend);
        }

        var path = Path.Combine(_directory, "resume.safetensors");
        var first = TinyParameters(scope);
        using (var optimizer = new AdamW())
        using (var loader = new MultiViewLoader(dataset, 2, seed))
        {
            var random = new TrainingRandom(seed);
            Train(first, optimizer, loader, random, 10, backend);
            TrainingCheckpoint.Save(path, first, optimizer, new TrainingState(optimizer.StepCount, seed, loader.Position, random.State));
        }

        var resumed = TinyParameters(scope, zeros: true);
        using (var optimizer = new AdamW())
        {
            var state = TrainingCheckpoint.Load(path, resumed, optimizer);
            Assert.That(state.Step, Is.EqualTo(10));
            using var loader = new MultiViewLoader(dataset, 2, state.Seed, state.Data);
            Train(resumed, optimizer, loader, new TrainingRandom(state.RandomState), 10, backend);
            Assert.That(optimizer.StepCount, Is.EqualTo(20));
        }
        var differs = 0;
        for (var i = 0; i < straight.Count; i++)
        {
            Assert.That(Bits(resumed[i].Value), Is.EqualTo(Bits(straight[i].Value)), straight[i].Name);
            using var original = SafeTensorsFile.Open(Path.Combine(Golden.TinyModelDirectory, "model.safetensors"));
            using var initial = original.ReadTensor(straight[i].Name);
            differs += Bits(initial).SequenceEqual(Bits(straight[i].Value)) ? 0 : 1;
        }
        Assert.That(differs, Is.EqualTo(straight.Count), "training moved every tensor");
    }

    [Test]
    public void InterruptedWriteLeavesThePreviousCheckpointLoadable()
    {
        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        var random = new TrainingRandom(5);
        RandomGradients(parameters, random);
        optimizer.Step(backend, parameters, 1e-3);
        var path = Path.Combine(_directory, "checkpoint.safetensors");
        TrainingCheckpoint.Save(path, parameters, optimizer, new TrainingState(1, 5, default, random.State));
        var savedBytes = File.ReadAllBytes(path);
        var savedWeights = parameters.ToDictionary(p => p.Name, p => Bits(p.Value));

        // Step 2, then a write that fails midway: a tensor late in the file is gone when its bytes are due.
        RandomGradients(parameters, random);
        optimizer.Step(backend, parameters, 1e-3);
        var victimName = parameters.Select(p => p.Name).Order(StringComparer.Ordinal).Last();
        var victim = parameters.Single(p => p.Name == victimName);
        var broken = parameters.Select(p => p == victim ? p with { Value = DisposedLike(p.Value) } : p).ToList();
        Assert.That(() => TrainingCheckpoint.Save(path, broken, optimizer, new TrainingState(2, 5, default, random.State)), Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(savedBytes), "the previous checkpoint is untouched");
        Assert.That(Directory.GetFiles(_directory), Is.EqualTo(new[] { path }), "no temporary file left behind");

        // A killed process leaves a half-written temporary file next to it: loading ignores it, saving again works.
        var leftover = Path.Combine(_directory, $".checkpoint.safetensors.{Environment.ProcessId + 1}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(leftover, savedBytes[..(savedBytes.Length / 2)]);
        var restored = TinyParameters(scope, zeros: true);
        using (var restoredOptimizer = new AdamW())
        {
            var state = TrainingCheckpoint.Load(path, restored, restoredOptimizer);
            Assert.That(state.Step, Is.EqualTo(1));
            foreach (var parameter in restored)
            {
                Assert.That(Bits(parameter.Value), Is.EqualTo(savedWeights[parameter.Name]), parameter.Name);
            }
        }
        TrainingCheckpoint.Save(path, parameters, optimizer, new TrainingState(2, 5, default, random.State));
        Assert.That(TrainingCheckpoint.ReadState(path).Step, Is.EqualTo(2));
        // A truncated checkpoint (not written by us, e.g. a copy cut short) is refused with the file named.
        File.WriteAllBytes(Path.Combine(_directory, "cut.safetensors"), savedBytes[..(savedBytes.Length - 100)]);
        using var anotherOptimizer = new AdamW();
        Assert.That(Assert.Throws<LrmFormatException>(() => TrainingCheckpoint.Load(Path.Combine(_directory, "cut.safetensors"), restored, anotherOptimizer))!.Message,
            Does.Contain("cut.safetensors"));
    }

    private static Tensor DisposedLike(Tensor tensor)
    {
        var copy = Tensor.Zeros(tensor.Shape);
        copy.Dispose();
        return copy;
    }

    [Test]
    public void CheckpointWithConfigIsAlsoAModelFile()
    {
        using var scope = new TensorScope();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        using var backend = new CpuBackend();
        RandomGradients(parameters, new TrainingRandom(1));
        optimizer.Step(backend, parameters, 1e-3);
        var path = Path.Combine(_directory, "model-and-state.safetensors");
        var configJson = File.ReadAllText(Path.Combine(Golden.TinyModelDirectory, "config.json"));
        TrainingCheckpoint.Save(path, parameters, optimizer, new TrainingState(1, 0, default, 0), configJson);
        using var model = LrmModel.Load(path);
        Assert.That(model.ParameterCount, Is.EqualTo(parameters.Sum(p => p.Value.ElementCount)));
        Assert.That(model.IgnoredTensors, Has.Count.EqualTo(2 * parameters.Count));
        Assert.That(model.IgnoredTensors.All(n => n.StartsWith("optimizer.", StringComparison.Ordinal)), Is.True);
    }

    [Test]
    public void MismatchedOrForeignFilesAreClearErrorsAndChangeNothing()
    {
        using var scope = new TensorScope();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        using var backend = new CpuBackend();
        RandomGradients(parameters, new TrainingRandom(2));
        optimizer.Step(backend, parameters, 1e-3);
        var path = Path.Combine(_directory, "c.safetensors");
        TrainingCheckpoint.Save(path, parameters[1..], optimizer, new TrainingState(1, 0, default, 0));

        var target = TinyParameters(scope, zeros: true);
        using var fresh = new AdamW();
        var missing = Assert.Throws<LrmFormatException>(() => TrainingCheckpoint.Load(path, target, fresh))!;
        Assert.That(missing.Message, Does.Contain(parameters[0].Name));
        Assert.That(target.All(p => p.Value.AsSpan<float>().IndexOfAnyExcept(0f) < 0), Is.True, "nothing was copied");
        Assert.That(fresh.StepCount, Is.Zero);

        // The tiny model file itself has no training state.
        var foreign = Assert.Throws<LrmFormatException>(() => TrainingCheckpoint.Load(Path.Combine(Golden.TinyModelDirectory, "model.safetensors"), target, fresh))!;
        Assert.That(foreign.Message, Does.Contain("not a training checkpoint"));

        // State and optimiser out of step is refused at save time.
        Assert.Throws<LrmInvalidArgumentException>(() => TrainingCheckpoint.Save(path, parameters, optimizer, new TrainingState(5, 0, default, 0)));
    }
}
