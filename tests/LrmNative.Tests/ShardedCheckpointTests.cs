using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;
using static LrmNative.Tests.TrainingCheckpointTests;

namespace LrmNative.Tests;

/// <summary>
/// Sharded checkpoints and models (files under a size limit plus an index): exact resume, crash safety between the
/// new shards and the index swap, clear errors for missing/corrupt shards, oversized tensors in shards of their own, and sharded models
/// that load and compute exactly like the single file.
/// </summary>
public sealed class ShardedCheckpointTests
{
    // The tiny model's checkpoint (weights + two moments) is ~4 MB; its largest tensor 263,040 bytes.
    private const long Limit = 500_000;

    private string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("lrm-shards-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, recursive: true);

    private static string[] Shards(string directory, string family) =>
        [.. Directory.GetFiles(directory, $"{family}-*-of-*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    // One optimiser step on random gradients.
    private static void Step(IReadOnlyList<TrainableParameter> parameters, AdamW optimizer, TrainingRandom random, IBackend backend)
    {
        RandomGradients(parameters, random);
        optimizer.Step(backend, parameters, 1e-3);
    }

    [Test]
    public void TwentyStepsEqualTenThenResumeTenFromShardsBitwise()
    {
        var dataset = ResumeDataset(_directory);
        const ulong seed = ResumeSeed;

        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var straightDirectory = Path.Combine(_directory, "straight");
        var straight = TinyParameters(scope);
        using (var optimizer = new AdamW())
        using (var loader = new MultiViewLoader(dataset, 2, seed))
        {
            var random = new TrainingRandom(seed);
            Train(straight, optimizer, loader, random, 20, backend);
            TrainingCheckpoint.SaveIn(straightDirectory, straight, optimizer, new TrainingState(20, seed, loader.Position, random.State), null, Limit);
        }

        var resumedDirectory = Path.Combine(_directory, "resumed");
        var first = TinyParameters(scope);
        string written;
        using (var optimizer = new AdamW())
        using (var loader = new MultiViewLoader(dataset, 2, seed))
        {
            var random = new TrainingRandom(seed);
            Train(first, optimizer, loader, random, 10, backend);
            written = TrainingCheckpoint.SaveIn(resumedDirectory, first, optimizer, new TrainingState(10, seed, loader.Position, random.State), null, Limit);
        }
        Assert.That(written, Is.EqualTo(Path.Combine(resumedDirectory, TrainingCheckpoint.IndexFileName)));
        Assert.That(TrainingCheckpoint.Find(resumedDirectory), Is.EqualTo(written));
        Assert.That(File.Exists(Path.Combine(resumedDirectory, TrainingCheckpoint.FileName)), Is.False);
        var shards = Shards(resumedDirectory, "checkpoint");
        Assert.That(shards, Has.Length.GreaterThanOrEqualTo(6), "several shards");
        Assert.That(shards, Has.All.StartWith("checkpoint-00000010-"));
        Assert.That(shards.Select(s => new FileInfo(Path.Combine(resumedDirectory, s)).Length), Has.All.LessThanOrEqualTo(Limit));

        var resumed = TinyParameters(scope, zeros: true);
        using (var optimizer = new AdamW())
        {
            var state = TrainingCheckpoint.Load(written, resumed, optimizer);
            Assert.That(state.Step, Is.EqualTo(10));
            using var loader = new MultiViewLoader(dataset, 2, state.Seed, state.Data);
            var random = new TrainingRandom(state.RandomState);
            Train(resumed, optimizer, loader, random, 10, backend);
            TrainingCheckpoint.SaveIn(resumedDirectory, resumed, optimizer, new TrainingState(20, seed, loader.Position, random.State), null, Limit);
        }
        for (var i = 0; i < straight.Count; i++)
        {
            Assert.That(Bits(resumed[i].Value), Is.EqualTo(Bits(straight[i].Value)), straight[i].Name);
        }
        // The step-10 shards are gone; the step-20 files (weights, moments, state) equal the straight run's byte for byte.
        var final = Shards(resumedDirectory, "checkpoint");
        Assert.That(final, Is.EqualTo(Shards(straightDirectory, "checkpoint")));
        Assert.That(final, Has.All.StartWith("checkpoint-00000020-"));
        foreach (var name in final.Append(TrainingCheckpoint.IndexFileName))
        {
            Assert.That(File.ReadAllBytes(Path.Combine(resumedDirectory, name)), Is.EqualTo(File.ReadAllBytes(Path.Combine(straightDirectory, name))), name);
        }
    }

    [Test]
    public void CrashAfterNewShardsBeforeTheIndexSwapLeavesThePreviousCheckpoint()
    {
        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        var random = new TrainingRandom(3);
        Step(parameters, optimizer, random, backend);
        var index = TrainingCheckpoint.SaveIn(_directory, parameters, optimizer, new TrainingState(1, 3, default, random.State), null, Limit);
        var savedWeights = parameters.ToDictionary(p => p.Name, p => Bits(p.Value));
        var savedIndex = File.ReadAllBytes(index);
        var stepOne = Shards(_directory, "checkpoint");

        Step(parameters, optimizer, random, backend);
        var crash = Assert.Throws<IOException>(() => TrainingCheckpoint.SaveIn(_directory, parameters, optimizer, new TrainingState(2, 3, default, random.State), null, Limit,
            beforeCommit: () => throw new IOException("simulated crash")))!;
        Assert.That(crash.Message, Is.EqualTo("simulated crash"));
        Assert.That(File.ReadAllBytes(index), Is.EqualTo(savedIndex), "index untouched");
        var afterCrash = Shards(_directory, "checkpoint");
        Assert.That(afterCrash, Is.SupersetOf(stepOne), "the old shards are still there");
        Assert.That(afterCrash.Length, Is.GreaterThan(stepOne.Length), "the new shards were written (orphans)");

        // Resume from the previous checkpoint, train on, save: the orphans are cleaned up.
        var restored = TinyParameters(scope, zeros: true);
        using var restoredOptimizer = new AdamW();
        var state = TrainingCheckpoint.Load(TrainingCheckpoint.Find(_directory)!, restored, restoredOptimizer);
        Assert.That(state.Step, Is.EqualTo(1));
        foreach (var parameter in restored)
        {
            Assert.That(Bits(parameter.Value), Is.EqualTo(savedWeights[parameter.Name]), parameter.Name);
        }
        var resumedRandom = new TrainingRandom(state.RandomState);
        Step(restored, restoredOptimizer, resumedRandom, backend);
        for (var i = 0; i < restored.Count; i++)
        {
            Assert.That(Bits(restored[i].Value), Is.EqualTo(Bits(parameters[i].Value)), parameters[i].Name);
        }
        TrainingCheckpoint.SaveIn(_directory, restored, restoredOptimizer, new TrainingState(2, 3, default, resumedRandom.State), null, Limit);
        var stepTwo = Shards(_directory, "checkpoint");
        Assert.That(stepTwo, Has.All.StartWith("checkpoint-00000002-"), "step-1 shards and orphans deleted");
        // Saving the same step again must not overwrite the shards the live index uses: new names, old ones removed.
        TrainingCheckpoint.SaveIn(_directory, restored, restoredOptimizer, new TrainingState(2, 3, default, resumedRandom.State), null, Limit);
        var again = Shards(_directory, "checkpoint");
        Assert.That(again, Has.All.StartWith("checkpoint-00000002.1-"));
        Assert.That(again, Has.Length.EqualTo(stepTwo.Length));
        using var check = new AdamW();
        Assert.That(TrainingCheckpoint.Load(index, TinyParameters(scope, zeros: true), check).Step, Is.EqualTo(2));
    }

    [Test]
    public void MissingOrCorruptShardIsNamed()
    {
        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        Step(parameters, optimizer, new TrainingRandom(4), backend);
        var index = TrainingCheckpoint.SaveIn(_directory, parameters, optimizer, new TrainingState(1, 4, default, 0), null, Limit);
        var shard = Path.Combine(_directory, Shards(_directory, "checkpoint")[2]);
        var bytes = File.ReadAllBytes(shard);

        File.Delete(shard);
        var target = TinyParameters(scope, zeros: true);
        using (var fresh = new AdamW())
        {
            var missing = Assert.Throws<LrmFormatException>(() => TrainingCheckpoint.Load(index, target, fresh))!;
            Assert.That(missing.Message, Does.Contain(shard).And.Contain("missing"));
            Assert.That(fresh.StepCount, Is.Zero);
        }

        // Same size, one byte flipped in the data: the hash catches it.
        var flipped = (byte[])bytes.Clone();
        flipped[^5] ^= 0x40;
        File.WriteAllBytes(shard, flipped);
        using (var fresh = new AdamW())
        {
            var corrupt = Assert.Throws<LrmFormatException>(() => TrainingCheckpoint.Load(index, target, fresh))!;
            Assert.That(corrupt.Message, Does.Contain(shard).And.Contain("corrupt").And.Contain("SHA-256"));
        }
        File.WriteAllBytes(shard, bytes[..^100]);
        using (var fresh = new AdamW())
        {
            var cut = Assert.Throws<LrmFormatException>(() => TrainingCheckpoint.Load(index, target, fresh))!;
            Assert.That(cut.Message, Does.Contain(shard).And.Contain($"{bytes.Length - 100} bytes"));
        }
        Assert.That(target.All(p => p.Value.AsSpan<float>().IndexOfAnyExcept(0f) < 0), Is.True, "nothing was copied");

        File.WriteAllBytes(shard, bytes);
        using (var fresh = new AdamW())
        {
            Assert.That(TrainingCheckpoint.Load(index, target, fresh).Step, Is.EqualTo(1));
        }
    }

    [Test]
    public void TensorOverTheLimitGetsAShardOfItsOwnAndLoadsBackExactly()
    {
        // A limit below the largest tensor (pos_embed, 263,040 bytes) still saves everything: that tensor and its two
        // AdamW moments each alone in a shard over the limit, every other shard within it (as OpenLRM large's 16.8 MB
        // MLP weights against the default 16 MB).
        const long limit = 200_000;
        using var scope = new TensorScope();
        using var backend = new CpuBackend();
        var parameters = TinyParameters(scope);
        using var optimizer = new AdamW();
        Step(parameters, optimizer, new TrainingRandom(5), backend);
        var over = SafeTensorsSet.OverLimit(parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)), limit);
        Assert.That(over.Select(o => o.Name), Is.EqualTo(new[] { "encoder.model.pos_embed" }));
        Assert.That(over[0].FileBytes, Is.GreaterThan(263_040));
        var index = TrainingCheckpoint.SaveIn(_directory, parameters, optimizer, new TrainingState(1, 5, default, 0), null, limit);
        Assert.That(index, Is.EqualTo(Path.Combine(_directory, TrainingCheckpoint.IndexFileName)));
        var sizes = Shards(_directory, "checkpoint").Select(s => new FileInfo(Path.Combine(_directory, s)).Length).ToList();
        Assert.That(sizes.Count(size => size > limit), Is.EqualTo(3), "pos_embed and its two moments");
        foreach (var shard in Shards(_directory, "checkpoint").Where(s => new FileInfo(Path.Combine(_directory, s)).Length > limit))
        {
            using var file = SafeTensorsFile.Open(Path.Combine(_directory, shard));
            Assert.That(file.Tensors.Count(), Is.EqualTo(1), $"{shard}: over the limit, so alone");
        }

        var target = TinyParameters(scope, zeros: true);
        using var fresh = new AdamW();
        Assert.That(TrainingCheckpoint.Load(index, target, fresh).Step, Is.EqualTo(1));
        for (var i = 0; i < parameters.Count; i++)
        {
            Assert.That(target[i].Value.ToFloatArray(), Is.EqualTo(parameters[i].Value.ToFloatArray()), parameters[i].Name);
        }
    }

    [Test]
    public void ShardedModelLoadsAndComputesExactlyLikeTheSingleFile()
    {
        var source = Path.Combine(Golden.DataDirectory, "model", "tiny-train");
        var single = Path.Combine(_directory, "single");
        var sharded = Path.Combine(_directory, "sharded");
        using (var model = LrmModel.Load(source, trainable: true))
        {
            Assert.That(model.SaveWeights(single, 0), Is.EqualTo(Path.Combine(single, LrmModel.WeightsFileName)));
            Assert.That(model.SaveWeights(sharded, 60_000), Is.EqualTo(Path.Combine(sharded, LrmModel.IndexFileName)));
        }
        var shards = Shards(sharded, "model");
        Assert.That(shards, Has.Length.GreaterThanOrEqualTo(3));
        Assert.That(shards.Select(s => new FileInfo(Path.Combine(sharded, s)).Length), Has.All.LessThanOrEqualTo(60_000));
        Assert.That(File.Exists(Path.Combine(sharded, LrmModel.WeightsFileName)), Is.False);

        using var file = SafeTensorsFile.Open(Path.Combine(source, "gradients.safetensors"));
        using var backend = new CpuBackend();
        using var image = file.ReadTensor("in.image");
        using var camera = file.ReadTensor("in.source_camera");
        float[] Planes(string path)
        {
            using var model = LrmModel.Load(path);
            using var outputs = model.Forward(backend, image, camera);
            return outputs.Planes.ToFloatArray();
        }
        var expected = Planes(Path.Combine(single, LrmModel.WeightsFileName));
        Assert.That(Planes(Path.Combine(sharded, LrmModel.IndexFileName)), Is.EqualTo(expected), "index file");
        Assert.That(Planes(sharded), Is.EqualTo(expected), "folder holding the index (config from its metadata)");

        // Hugging Face / OpenLRM style: an index without LrmNative metadata next to config.json.
        var hf = Path.Combine(_directory, "hf");
        Directory.CreateDirectory(hf);
        File.Copy(Path.Combine(source, LrmModel.ConfigFileName), Path.Combine(hf, LrmModel.ConfigFileName));
        using (var weights = SafeTensorsFile.Open(Path.Combine(source, LrmModel.WeightsFileName)))
        using (var scope = new TensorScope())
        {
            var tensors = weights.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, scope.Add(weights.ReadTensor(t.Name)))).ToList();
            SafeTensorsSet.WriteSharded(Path.Combine(hf, LrmModel.IndexFileName), "model", "model", tensors, new Dictionary<string, string>(), 60_000);
        }
        Assert.That(Planes(hf), Is.EqualTo(Planes(source)), "HF-style sharded folder equals the source folder");

        // Writing a single file over a sharded model removes the index and its shards.
        using (var model = LrmModel.Load(sharded, trainable: true))
        {
            model.SaveWeights(sharded, 0);
        }
        Assert.That(Directory.GetFiles(sharded).Select(Path.GetFileName), Is.EqualTo(new[] { LrmModel.WeightsFileName }));
        Assert.That(Planes(sharded), Is.EqualTo(expected));
    }
}
