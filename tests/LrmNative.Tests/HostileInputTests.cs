using System.Buffers.Binary;
using System.CommandLine;
using System.Text;
using LrmNative.Backends;
using LrmNative.Cli;
using LrmNative.Data;
using LrmNative.Imaging;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// Hostile and unlucky input, each case a tiny file written here: configs claiming billions of layers or weights, a
/// safetensors header claiming a tensor over 2 GiB, shapes past 64 bits, foreground ratios that would blow the canvas up,
/// outputs aimed at a folder or below a file, JSON side files of 65 MB (or endless), .npy poses claiming a huge shape,
/// alternating sharded saves and a save stopped between its two forms. Every one ends in one typed LrmException naming
/// the file, tensor or option — never a raw OverflowException, OutOfMemoryException or IOException, a hang or a leak.
/// </summary>
[TestFixture]
public sealed class HostileInputTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("lrm-hostile-").FullName;

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_folder, recursive: true);

    private static string TinyTrainModel => Path.Combine(Golden.DataDirectory, "model", "tiny-train");

    // A valid small config (ModelConfigTests' tiny one) with one text replaced.
    private static string ConfigJson(string? replace = null, string? with = null) => ModelConfigTests.TinyJson(replace, with);

    // A model folder: config.json (what `lrm info --model` and `lrm train --config` read first) and a stand-in
    // model.safetensors that must never be reached.
    private string ConfigFolder(string json)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_folder, $"model-{Guid.NewGuid():N}")).FullName;
        File.WriteAllText(Path.Combine(folder, LrmModel.ConfigFileName), json);
        File.WriteAllText(Path.Combine(folder, LrmModel.WeightsFileName), "not reached");
        return folder;
    }

    // A file of `bytes` zero bytes without writing them (sparse where the file system allows).
    private static void SparseFile(string path, long bytes)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.SetLength(bytes);
    }

    [TestCase("\"transformer_layers\": 2", "\"transformer_layers\": 2147483647", "transformer_layers")]
    [TestCase("\"encoder_depth\": 2", "\"encoder_depth\": 2147483647", "encoder_depth")]
    [TestCase("\"encoder_image_size\": 56", "\"encoder_image_size\": 56, \"nerf_layers\": 2147483647", "nerf_layers")]
    [TestCase("\"triplane_low_res\": 8, \"triplane_high_res\": 16", "\"triplane_low_res\": 1073741824, \"triplane_high_res\": 2147483647", "triplane_low_res")]
    [TestCase("\"encoder_image_size\": 56", "\"encoder_image_size\": 2147483646", "encoder_image_size")]
    [TestCase("\"transformer_dim\": 64", "\"transformer_dim\": 2147483644", "transformer_dim")]
    public void ConfigSizesOutOfRangeNameTheFileAndKeyBeforeAnyWeightTable(string replace, string with, string key)
    {
        var folder = ConfigFolder(ConfigJson(replace, with));
        var path = Path.Combine(folder, LrmModel.ConfigFileName);
        var error = Assert.Throws<LrmFormatException>(() => ModelConfig.Load(path))!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain(key).And.Contain("must be in"));
        // `lrm info --model FOLDER` and the model loader stop at the same line, weights unread.
        Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.Inspect(folder))!.Message, Is.EqualTo(error.Message));
        Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.Load(folder).Dispose())!.Message, Is.EqualTo(error.Message));
    }

    [Test]
    public void ConfigsDescribingTensorsOrModelsTooLargeToHoldAreUnsupported()
    {
        // Every size in range, but one decoder MLP weight (4·65536 × 65536) is 17 billion values.
        var wide = Path.Combine(ConfigFolder(ConfigJson("\"transformer_dim\": 64", "\"transformer_dim\": 65536")), LrmModel.ConfigFileName);
        var error = Assert.Throws<LrmUnsupportedException>(() => ModelConfig.Load(wide))!;
        Assert.That(error.Message, Does.StartWith(wide).And.Contain("transformer.layers.0.").And.Contain("2 GiB"));

        // 4096² triplane tokens: the decoder's learned tokens (1, 3·4096², 64) alone are 3.2 billion values.
        var tokens = Path.Combine(ConfigFolder(ConfigJson("\"triplane_low_res\": 8, \"triplane_high_res\": 16", "\"triplane_low_res\": 4096, \"triplane_high_res\": 8192")), LrmModel.ConfigFileName);
        Assert.That(Assert.Throws<LrmUnsupportedException>(() => ModelConfig.Load(tokens))!.Message, Does.StartWith(tokens).And.Contain("'pos_embed'"));

        // Each tensor fits, but 1024 decoder layers of width 8192 are about 800 billion parameters.
        var deep = Path.Combine(ConfigFolder(ConfigJson("\"transformer_dim\": 64,", "\"transformer_dim\": 8192,")
            .Replace("\"transformer_layers\": 2", "\"transformer_layers\": 1024", StringComparison.Ordinal)), LrmModel.ConfigFileName);
        Assert.That(Assert.Throws<LrmUnsupportedException>(() => ModelConfig.Load(deep))!.Message, Does.StartWith(deep).And.Contain("billion parameters"));

        // The paper's largest configuration stays well inside every limit.
        var paper = ModelConfig.Load(Path.Combine(AppContext.BaseDirectory, "configs", "lrm-base-paper.json"));
        Assert.That(paper.ParameterCount, Is.LessThan(ModelConfig.MaxParameterCount / 8));
    }

    [Test]
    public void TinyForegroundRatiosAreRefusedByNameEverywhere()
    {
        var options = Assert.Throws<LrmInvalidArgumentException>(() =>
            Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu, new ReconstructorOptions { ForegroundRatio = 5e-7 }).Dispose())!;
        Assert.That(options.Message, Does.Contain("foreground ratio").And.Contain("5E-07").And.Contain("[0.05, 1]"));

        var preprocess = Assert.Throws<LrmInvalidArgumentException>(() => _ = new ImagePreprocessor(new ImagePreprocessOptions { OutputSize = 64, ForegroundRatio = 5e-7 }))!;
        Assert.That(preprocess.Message, Does.Contain("foreground ratio").And.Contain("0.05"));

        var config = Assert.Throws<LrmFormatException>(() => ModelConfig.Parse(ConfigJson("\"encoder_freeze\": false", "\"encoder_freeze\": false, \"foreground_ratio\": 5e-7"), "tiny.json"))!;
        Assert.That(config.Message, Does.StartWith("tiny.json").And.Contain("foreground_ratio").And.Contain("0.05"));

        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(ReconstructCommand.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = root.Parse(["reconstruct", "--model", Golden.TinyModelDirectory, Golden.ExampleImagePath, "--out", Path.Combine(_folder, "out"),
            "--foreground-ratio", "5e-7", "--resolution", "0"]).Invoke(new InvocationConfiguration { Output = output, Error = error });
        Assert.That(code, Is.Not.Zero);
        Assert.That(error.ToString(), Does.Contain("--foreground-ratio").And.Contain("0.05"));
        Assert.That(Directory.Exists(Path.Combine(_folder, "out")), Is.False);
    }

    [Test]
    public void CanvasTooLargeToResampleNamesTheImageAndRatio()
    {
        // A 2300 × 8 image whose object spans its width: at ratio 0.05 the canvas is 46,000 pixels, and against a 16384
        // output the resize buffers would pass 2³¹ values. Refused before any of them is allocated.
        const int width = 2300, height = 8;
        var rgba = new float[width * height * 4];
        rgba[3] = 1f;
        rgba[4 * (width - 1) + 3] = 1f;
        using var image = Image.FromRgba(rgba, width, height, name: "wide-object.png");
        using var backend = new CpuBackend();
        var preprocessor = new ImagePreprocessor(new ImagePreprocessOptions { OutputSize = 16384, ForegroundRatio = 0.05 });
        var error = Assert.Throws<LrmInvalidArgumentException>(() => preprocessor.Process(backend, image).Dispose())!;
        Assert.That(error.Message, Does.StartWith("wide-object.png").And.Contain("foreground ratio of 0.05").And.Contain("46000-pixel"));
    }

    [Test]
    public void WritesToAFolderOrBelowAFileNameTheTargetAndLeaveNothingBehind()
    {
        var blocker = Path.Combine(_folder, "blocker.txt");
        File.WriteAllText(blocker, "a file, not a folder");
        var folderTarget = Directory.CreateDirectory(Path.Combine(_folder, "existing.safetensors")).FullName;
        var belowFile = Path.Combine(blocker, "sub", "model.safetensors");
        using var tensor = Tensor.FromArray([1f, 2f], 2);
        foreach (var target in new[] { folderTarget, belowFile })
        {
            // lrm convert --out TARGET
            var convert = Assert.Throws<LrmFormatException>(() => LrmModel.SaveSingleFile(Golden.TinyModelDirectory, target))!;
            Assert.That(convert.Message, Does.StartWith(target).And.Contain("cannot write"));
            Assert.That(Assert.Throws<LrmFormatException>(() => SafeTensorsFile.Write(target, [new("x", tensor)]))!.Message, Does.StartWith(target));
            Assert.That(Assert.Throws<LrmFormatException>(() => Npy.Write(target, tensor))!.Message, Does.StartWith(target));
        }
        if (OperatingSystem.IsLinux())
        {
            const string proc = "/proc/lrm-hostile-input-test.safetensors";
            Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.SaveSingleFile(Golden.TinyModelDirectory, proc))!.Message, Does.StartWith(proc));
        }

        // lrm train --out below a file: the sharded and the single-file model saves.
        using (var model = LrmModel.Load(TinyTrainModel, trainable: true))
        {
            var outBelowFile = Path.Combine(blocker, "run");
            Assert.That(Assert.Throws<LrmFormatException>(() => model.SaveWeights(outBelowFile, 60_000))!.Message, Does.Contain(blocker));
            Assert.That(Assert.Throws<LrmFormatException>(() => model.SaveWeights(outBelowFile, 0))!.Message, Does.Contain(blocker));
        }
        Assert.That(Directory.GetFileSystemEntries(_folder).Select(Path.GetFileName), Is.EquivalentTo(new[] { "blocker.txt", "existing.safetensors" }));
        Assert.That(Directory.GetFileSystemEntries(folderTarget), Is.Empty, "no temporary file left next to the target");
    }

    [Test]
    public void AlternatingShardedSavesKeepOnlyTheLiveShards()
    {
        var folder = Path.Combine(_folder, "run");
        using var model = LrmModel.Load(TinyTrainModel, trainable: true);
        var stems = new List<string>();
        string[]? firstSave = null;
        for (var save = 1; save <= 3; save++)
        {
            Assert.That(model.SaveWeights(folder, 60_000), Is.EqualTo(Path.Combine(folder, LrmModel.IndexFileName)));
            var shards = Directory.GetFiles(folder, "*.safetensors").Select(path => Path.GetFileName(path)).Order(StringComparer.Ordinal).ToArray();
            firstSave ??= shards;
            Assert.That(shards, Has.Length.EqualTo(firstSave.Length).And.Length.GreaterThanOrEqualTo(3), $"save {save}: one set of shards: {string.Join(", ", shards)}");
            Assert.That(SafeTensorsSet.ShardNames(Path.Combine(folder, LrmModel.IndexFileName)), Is.EquivalentTo(shards), $"save {save}: only the live index's shards");
            stems.AddRange(shards.Select(name => name[..name.IndexOf('-', StringComparison.Ordinal)]).Distinct());
        }
        // Each save takes a stem the live index does not use: "model", "model.1", "model" — and removes the other.
        Assert.That(stems, Is.EqualTo(new[] { "model", "model.1", "model" }));

        model.SaveWeights(folder, 0);
        Assert.That(Directory.GetFiles(folder).Select(Path.GetFileName), Is.EqualTo(new[] { LrmModel.WeightsFileName }));
    }

    [Test]
    public void BothWeightFormsAfterAnInterruptedSaveLoadTheNewerOne()
    {
        var folder = Path.Combine(_folder, "run");
        var single = Path.Combine(folder, LrmModel.WeightsFileName);
        var index = Path.Combine(folder, LrmModel.IndexFileName);
        using var model = LrmModel.Load(TinyTrainModel, trainable: true);
        var tokens = model.Weight(LrmWeightNames.DecoderTokens).AsSpan<float>();
        float Loaded()
        {
            using var loaded = LrmModel.Load(folder, trainable: true);
            return loaded.Weight(LrmWeightNames.DecoderTokens).AsSpan<float>()[0];
        }

        // Single file, then a sharded save of changed weights stopped before it removed the single file.
        model.SaveWeights(folder, 0);
        var oldSingle = File.ReadAllBytes(single);
        tokens[0] += 1f;
        var sharded = tokens[0];
        model.SaveWeights(folder, 60_000);
        File.WriteAllBytes(single, oldSingle);
        Assert.That(Loaded(), Is.EqualTo(sharded), "the index records the single file it replaced, so it is the newer form");

        // Sharded set, then a single-file save of changed weights stopped before it removed the index and shards.
        File.Delete(single);
        var shardedFiles = Directory.GetFiles(folder).ToDictionary(path => path, File.ReadAllBytes);
        tokens[0] += 1f;
        var newest = tokens[0];
        model.SaveWeights(folder, 0);
        foreach (var (path, bytes) in shardedFiles)
        {
            File.WriteAllBytes(path, bytes);
        }
        Assert.That(File.Exists(index) && File.Exists(single), Is.True);
        Assert.That(Loaded(), Is.EqualTo(newest), "the index replaced an older single file, not this one");
    }

    [Test]
    public void SizesPastTheLimitsAreRefusedFromTheHeaderByName()
    {
        // One F32 tensor of 600,000,000 values (2.4 GB): the header alone is refused, no data needed.
        var path = Path.Combine(_folder, "huge.safetensors");
        var header = Encoding.UTF8.GetBytes("""{"giant.weight":{"dtype":"F32","shape":[600000000],"data_offsets":[0,2400000000]}}""");
        var bytes = new byte[8 + header.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<LrmUnsupportedException>(() => SafeTensorsFile.Open(path).Dispose())!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain("'giant.weight'").And.Contain("2400000000 bytes"));
        Assert.That(Assert.Throws<LrmUnsupportedException>(() => LrmModel.Load(path).Dispose())!.Message, Does.StartWith(path).And.Contain("'giant.weight'"));

        var shape = Assert.Throws<LrmInvalidArgumentException>(() => Tensor.Empty([1L << 32, 1L << 32]).Dispose())!;
        Assert.That(shape.Message, Does.Contain("(4294967296, 4294967296)"));
        var host = Assert.Throws<LrmUnsupportedException>(() => Tensor.Empty([1L << 31]).Dispose())!;
        Assert.That(host.Message, Does.Contain("(2147483648,)"));
        using var empty = Tensor.Empty([1L << 40, 1L << 40, 0]);
        Assert.That(empty.ElementCount, Is.Zero, "a zero size makes any shape empty");
    }

    // A .npy file that is only a version 1.0 header declaring float32 data of `shape` (no data).
    private static void NpyHeaderOnly(string path, string shape)
    {
        var dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        var text = dict.PadRight(64 - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)text.Length, 0 };
        bytes.AddRange(Encoding.ASCII.GetBytes(text));
        File.WriteAllBytes(path, [.. bytes]);
    }

    [Test]
    public void PoseAndIntrinsicsShapesAreCheckedFromTheHeader()
    {
        var pose = Path.Combine(_folder, "000.npy");
        NpyHeaderOnly(pose, "(100000, 100000)");
        var error = Assert.Throws<LrmFormatException>(() => DatasetLayout.ReadPose(pose))!;
        Assert.That(error.Message, Does.StartWith(pose).And.Contain("(4, 4) or (3, 4)").And.Contain("(100000, 100000)"));

        var intrinsics = Path.Combine(_folder, "intrinsics.npy");
        NpyHeaderOnly(intrinsics, "(3, 100000000)");
        error = Assert.Throws<LrmFormatException>(() => DatasetLayout.ReadIntrinsics(intrinsics))!;
        Assert.That(error.Message, Does.StartWith(intrinsics).And.Contain("(3, 2)").And.Contain("(3, 100000000)"));
    }

    [Test]
    public void OversizedOrEndlessJsonSideFilesAreRefusedByName()
    {
        const long oversized = FileErrors.MaxSideFileBytes + 1;
        var config = Path.Combine(_folder, LrmModel.ConfigFileName);
        SparseFile(config, oversized);
        Assert.That(Assert.Throws<LrmFormatException>(() => ModelConfig.Load(config))!.Message, Does.StartWith(config).And.Contain("64 MB"));

        var index = Path.Combine(_folder, "sharded", LrmModel.IndexFileName);
        Directory.CreateDirectory(Path.GetDirectoryName(index)!);
        SparseFile(index, oversized);
        Assert.That(Assert.Throws<LrmFormatException>(() => SafeTensorsSet.Open(index).Dispose())!.Message, Does.StartWith(index).And.Contain("64 MB"));
        Assert.That(Assert.Throws<LrmFormatException>(() => LrmModel.Load(Path.GetDirectoryName(index)!).Dispose())!.Message, Does.StartWith(index));

        var dataset = Directory.CreateDirectory(Path.Combine(_folder, "dataset")).FullName;
        var uids = Path.Combine(dataset, DatasetLayout.UidsFile);
        SparseFile(uids, oversized);
        Assert.That(Assert.Throws<LrmFormatException>(() => DatasetLayout.ReadUids(dataset))!.Message, Does.StartWith(uids).And.Contain("64 MB"));

        if (OperatingSystem.IsLinux())
        {
            // A device that never ends is cut off at the cap, not read forever.
            Assert.That(Assert.Throws<LrmFormatException>(() => ModelConfig.Load("/dev/zero"))!.Message, Does.StartWith("/dev/zero").And.Contain("64 MB"));
        }
    }
}
