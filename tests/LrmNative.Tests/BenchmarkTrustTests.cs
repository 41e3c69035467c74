using LrmNative.Benchmarks;
using LrmNative.Benchmarks.Results;

namespace LrmNative.Tests;

/// <summary>
/// What makes the published benchmark numbers rerunnable: the committed summary and charts are exactly what the generator
/// makes of the committed results JSON, and the committed JSON records where, when and how it was measured.
/// </summary>
[TestFixture]
public sealed class BenchmarkTrustTests : TemporaryFolderFixture
{
    private static string ResultsFolder() => TestFiles.InRepository("benchmarks/results", "compare");

    // The committed results files of the lrm-bench/1 schema (the summary's inputs); never none (a test looping over
    // none would check nothing).
    private static string[] CommittedResults(string folder)
    {
        string[] paths = [.. Directory.EnumerateFiles(folder, "*.json").Where(path => File.ReadAllText(path).Contains(BenchmarkResults.SchemaName, StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
        Assert.That(paths, Is.Not.Empty, $"{folder} holds no {BenchmarkResults.SchemaName} results");
        return paths;
    }

    [Test]
    public void CommittedSummaryAndChartsAreRegeneratedByteForByteFromTheCommittedJson()
    {
        var results = ResultsFolder();
        var inputs = CommittedResults(results);
        foreach (var path in Directory.EnumerateFiles(results, "*.json"))
        {
            File.Copy(path, PathOf(Path.GetFileName(path)));
        }
        var written = ReportWriter.WriteDirectory(Folder);
        Assert.That(written, Has.Count.EqualTo(2 * inputs.Length + 1), "two charts per results file and the summary");
        foreach (var path in written)
        {
            var name = Path.GetFileName(path);
            var committed = Path.Combine(results, name);
            Assert.That(File.Exists(committed), Is.True, $"benchmarks/results/{name} is generated but not committed");
            Assert.That(File.ReadAllBytes(path), Is.EqualTo(File.ReadAllBytes(committed)),
                $"benchmarks/results/{name} differs from what `LrmNative.Benchmarks --report benchmarks/results` makes of the committed JSON; rerun it");
        }
    }

    [Test]
    public void CommittedResultsRecordMachineThreadsCommitAndDate()
    {
        foreach (var path in CommittedResults(ResultsFolder()))
        {
            var results = BenchmarkResults.Load(path);
            var machine = results.Machine;
            var name = Path.GetFileName(path);
            Assert.Multiple(() =>
            {
                Assert.That(Path.GetFileNameWithoutExtension(path), Is.EqualTo(machine.Id), $"{name}: the file is named after the machine id");
                Assert.That(machine.Cpu, Is.Not.Empty.And.Not.EqualTo("unknown"), $"{name}: CPU model");
                Assert.That(machine.Cores, Is.Positive, $"{name}: cores");
                Assert.That(machine.Threads, Is.Positive, $"{name}: compute threads");
                Assert.That(machine.Commit, Does.Match("^[0-9a-f]{7,40}(-dirty)?$"), $"{name}: commit");
                Assert.That(DateTimeOffset.TryParse(machine.Date, System.Globalization.CultureInfo.InvariantCulture,
                    System.Globalization.DateTimeStyles.AssumeUniversal, out _), Is.True, $"{name}: date '{machine.Date}'");
                Assert.That(machine.Native, Is.Not.Null.And.Not.Empty, $"{name}: native build");
                Assert.That(machine.Peak, Is.Not.Null, $"{name}: roofline peaks");
                Assert.That(results.Run.Command, Is.Not.Null.And.Not.Empty, $"{name}: the command that regenerates it");
                if (results.Entries.Any(entry => entry.Peer is not null))
                {
                    // The peer's thread count is part of its description ("PyTorch 1.13.0 cpu, 2 threads") and must be ours.
                    Assert.That(results.Run.Peer, Does.Contain($", {machine.Threads} threads"), $"{name}: the peer ran on the same threads");
                }
            });
        }
    }

    // ---- both sides measured alike ------------------------------------------------------------------------------------

    [TestCase(false)]
    [TestCase(true)]
    public void JobsKeepEveryIterationAsThePeerDoes(bool longJob)
    {
        // The peer (benchmarks/peers/kernels_torch.py, Timer.measure) averages every iteration; BenchmarkDotNet's default
        // would drop our slow ones (upper outliers) and so flatter the ratio on a busy machine.
        var job = BenchmarkConfig.Create(longJob).GetJobs().Single();
        Assert.That(job.Accuracy.OutlierMode, Is.EqualTo(Perfolizer.Mathematics.OutlierDetection.OutlierMode.DontRemove));
    }

    private static BenchmarkResults Run(string id, int threads, string backend, double seconds) => new()
    {
        Machine = new MachineInfo { Id = id, Cpu = "test CPU", Date = "2026-11-21T08:00:00Z", Threads = threads },
        Run = new RunInfo { Tool = "test", Job = "short", Peer = backend == "cpu" ? null : $"PyTorch test cpu, {threads} threads" },
        Entries =
        [
            new ResultEntry
            {
                Family = "gemm", Shape = "decoder MLP fc1 3072x512 * 512x2048", Backend = backend, TimeMeanS = seconds, Samples = 5,
                Flops = 6_442_450_944, Bytes = 35_659_776, RateUnit = "GFLOP/s",
            },
        ],
    };

    [Test]
    public void PeersMeasuredOnAnotherThreadCountAreRefused()
    {
        var ours = Run("amd-epyc-2c", threads: 2, "cpu", 0.02);
        Assert.That(() => ours.WithPeers(Run("peer", threads: 1, "pytorch-cpu", 0.04)),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.Contains("1 threads").And.Message.Contains("ours on 2"));
        // Same count: joined, ratio the right way round (peer time / our time: the peer took twice as long, we are 2× faster).
        var joined = ours.WithPeers(Run("peer", threads: 2, "pytorch-cpu", 0.04)).Entries.Single();
        Assert.That(joined.Ratio, Is.EqualTo(2.0).Within(1e-12));
    }

    // ---- the peer runs our shapes ------------------------------------------------------------------------------------

    // benchmarks/peers/kernels_torch.py: family name → the builder function that FAMILIES maps it to (for a backward
    // family, the forward builder backward_of wraps).
    private static Dictionary<string, string> PeerFamilies(string script)
    {
        var start = script.IndexOf("\nFAMILIES = {", StringComparison.Ordinal);
        Assert.That(start, Is.Not.Negative, "kernels_torch.py has no FAMILIES table");
        var table = script[start..script.IndexOf("\n}", start, StringComparison.Ordinal)];
        return System.Text.RegularExpressions.Regex.Matches(table, "\"([a-z-]+)\":\\s*(?:backward_of\\()?(\\w+)")
            .ToDictionary(match => match.Groups[1].Value, match => match.Groups[2].Value, StringComparer.Ordinal);
    }

    // The dims keys a peer builder reads (d["key"]), following the builders it calls with the same d.
    private static HashSet<string> DimsRead(string script, string function, HashSet<string>? visited = null)
    {
        visited ??= [];
        var keys = new HashSet<string>(StringComparer.Ordinal);
        if (!visited.Add(function))
        {
            return keys;
        }
        var start = script.IndexOf($"\ndef {function}(", StringComparison.Ordinal);
        Assert.That(start, Is.Not.Negative, $"kernels_torch.py has no builder {function}");
        var end = script.IndexOf("\ndef ", start + 1, StringComparison.Ordinal);
        var body = script[start..(end < 0 ? script.Length : end)];
        foreach (System.Text.RegularExpressions.Match match in System.Text.RegularExpressions.Regex.Matches(body, "\\bd\\[\"(\\w+)\"\\]"))
        {
            keys.Add(match.Groups[1].Value);
        }
        foreach (System.Text.RegularExpressions.Match match in System.Text.RegularExpressions.Regex.Matches(body, "\\b(\\w+)\\(d, device\\)"))
        {
            keys.UnionWith(DimsRead(script, match.Groups[1].Value, visited));
        }
        return keys;
    }

    [Test]
    public void PeerScriptHasABuilderForEveryFamilyReadingOnlyTheDimensionsWeGive()
    {
        var script = File.ReadAllText(Path.Combine(TestFiles.InRepository("benchmarks/peers", "read"), "kernels_torch.py"));
        var peer = PeerFamilies(script);
        var families = LrmShapes.All.GroupBy(shape => shape.Family).ToDictionary(group => group.Key, group => group.ToList(), StringComparer.Ordinal);
        Assert.That(peer.Keys, Is.EquivalentTo(families.Keys), "FAMILIES in kernels_torch.py against the families of LrmShapes");
        Assert.Multiple(() =>
        {
            foreach (var (family, shapes) in families)
            {
                if (!peer.TryGetValue(family, out var builder))
                {
                    continue;
                }
                var read = DimsRead(script, builder);
                Assert.That(read, Is.Not.Empty, $"{family}: the peer builder {builder} reads no dimension");
                foreach (var shape in shapes)
                {
                    Assert.That(read, Is.SubsetOf(shape.Dimensions.Keys), $"{family}/{shape.Name}: dimensions the peer reads against the manifest's");
                }
            }
        });
    }

    // ---- FLOPs and bytes of the families the older tests do not count by hand ---------------------------------------------

    [Test]
    public void AccumulatedParameterGradientsAreReadAndWritten()
    {
        // lrm_patch_embed_backward and lrm_deconv_backward accumulate dweight and dbias (+=): each counts twice.
        var patch = new PatchEmbedBackwardShape(512, 16, 768);
        var deconvolution = new DeconvolutionBackwardShape(3, 1024, 80, 32, 2);
        Assert.Multiple(() =>
        {
            // image 3·512² + dY 1024·768 + dW 2·768·3·16² + db 2·768 = 2,754,048 floats
            Assert.That(patch.Bytes, Is.EqualTo(11_016_192d));
            Assert.That(patch.Flops, Is.EqualTo(1_207_959_552d)); // 2·1024·768·3·16²
            // input and dInput 2·3·1024·32² + weight, dW 3·1024·80·2² + db 2·80 + dY 3·80·64² = 8,257,696 floats
            Assert.That(deconvolution.Bytes, Is.EqualTo(33_030_784d));
            Assert.That(deconvolution.Flops, Is.EqualTo(4_026_531_840d)); // 2 products × 2·3·32²·1024·80·2²
        });
    }

    [Test]
    public void SamplingCompositingResizeAndElementwiseFamiliesByHand()
    {
        Assert.Multiple(() =>
        {
            var triplane = new TriplaneShape(65536, 64, 80);
            Assert.That(triplane.Flops, Is.EqualTo(125_829_120d));                // 3 planes × 4 taps × 2 per channel and point
            Assert.That(triplane.Bytes, Is.EqualTo(67_633_152d));                 // 4 × (points 196,608 + planes 983,040 + features 15,728,640)
            var sum = new TriplaneSumShape(65536, 64, 64);
            Assert.That(sum.Flops, Is.EqualTo(100_663_296d));                     // 24·65536·64
            Assert.That(sum.Bytes, Is.EqualTo(20_709_632d));                      // 4 × (196,608 + 786,432 + bias 64 + out 4,194,304)
            var query = new NerfQueryShape(64, 80, 64, 4);                        // 3·80 → [64 by linear-first sampling] → 64 → 64 → 4
            Assert.That(query.Flops, Is.EqualTo(1_207_959_552d));                 // 65536 × (24·64 + 2·(64·64 + 64·64 + 64·4))
            Assert.That(query.Bytes, Is.EqualTo(5_015_312d));                     // 4 × (7·65536 + 3·64²·64 + 8,448 weights + 196 biases)
            var march = new RenderMarchShape(16384, 64, 64);
            Assert.That(march.Flops, Is.EqualTo(52_019_200d));                    // 25 × 16384 rays × 127 intervals
            Assert.That(march.Bytes, Is.EqualTo(42_270_728d));                    // 4 × (16384·128·5 + 16384·5 + 2)
            var resize = new ResizeShape(3, 1024, 224);
            Assert.That(resize.Flops, Is.EqualTo(30_670_848d));                   // 2 × 4·1024/224 taps × 3 × (1024·224 + 224²)
            Assert.That(resize.Bytes, Is.EqualTo(13_185_024d));                   // 4 × 3 × (1024² + 224²)
            var table = new ResizeBackwardShape(384, 37, 16, Bicubic: true);
            Assert.That(table.Flops, Is.EqualTo(6_024_192d));                     // 2 × 4·37/16 × 384 × (37·16 + 16²)
            Assert.That(table.Bytes, Is.EqualTo(2_496_000d));                     // 4 × 384 × (37² + 16²)
            var gelu = new ActivationBackwardShape("decoder MLP", 3072, 2048);
            Assert.That(gelu.Flops, Is.EqualTo(44_040_192d));                     // 7 × 6,291,456
            Assert.That(gelu.Bytes, Is.EqualTo(75_497_472d));                     // 12 × 6,291,456
            var layerScale = new LayerScaleBackwardShape("encoder", 261, 384);
            Assert.That(layerScale.Bytes, Is.EqualTo(1_207_296d));                // 4 × (3·100,224 + 3·384)
            var decode = new RenderDecodeBackwardShape(16384, 96);
            Assert.That(decode.Flops, Is.EqualTo(18_874_368d));                   // 12 × 1,572,864 samples
            Assert.That(decode.Bytes, Is.EqualTo(94_371_840d));                   // 60 × 1,572,864
            var adamw = new AdamWShape("decoder MLP fc1 weight", 2048, 512);
            Assert.That(adamw.Bytes, Is.EqualTo(29_360_128d));                    // 28 × 1,048,576
            Assert.That(new GridPointsShape(256).Points, Is.EqualTo(262_144));    // 4 planes of 256²
            Assert.That(new GridPointsShape(384).Bytes, Is.EqualTo(1_769_472d));  // 1 plane of 384², 12 bytes per point
        });
    }

    [Test]
    public void CommittedResultsWereCountedWithTheCurrentFormulas()
    {
        // A published rate or roofline fraction must follow from the documented counts: every committed case is still in the
        // catalogue and carries its current FLOPs and bytes (a formula fixed later means re-deriving the committed files).
        var catalogue = LrmShapes.All.ToDictionary(shape => shape.Key, StringComparer.Ordinal);
        foreach (var path in CommittedResults(ResultsFolder()))
        {
            var results = BenchmarkResults.Load(path);
            Assert.Multiple(() =>
            {
                foreach (var entry in results.Entries)
                {
                    var where = $"{Path.GetFileName(path)}: {entry.Key}";
                    if (!catalogue.TryGetValue(entry.Key, out var shape))
                    {
                        Assert.Fail($"{where} is not a shape of the catalogue any more");
                        continue;
                    }
                    Assert.That(entry.Flops, Is.EqualTo(shape.Flops), $"{where}: FLOPs");
                    Assert.That(entry.Bytes, Is.EqualTo(shape.Bytes), $"{where}: bytes");
                    Assert.That(entry.RateUnit, Is.EqualTo(shape.UnitText), $"{where}: rate unit");
                    Assert.That(entry.Config, Is.EqualTo(shape.Configs), $"{where}: configs");
                    if (entry.Seconds is > 0 && entry.Rate is { } rate)
                    {
                        Assert.That(rate, Is.EqualTo(shape.Rate(entry.Seconds.Value)).Within(1e-9 * rate), $"{where}: rate");
                    }
                    if (entry.Seconds is > 0 && entry.RooflineFraction is { } fraction)
                    {
                        var floor = Roofline.Floor(shape.Flops, shape.Bytes, results.Machine.Peak)!.Value;
                        Assert.That(fraction, Is.EqualTo(floor.Seconds / entry.Seconds.Value).Within(1e-9 * fraction), $"{where}: roofline fraction");
                        Assert.That(entry.Bound, Is.EqualTo(floor.Bound), $"{where}: bound");
                    }
                    if (entry.PeerTimeMeanS is > 0 && entry.Ratio is { } ratio)
                    {
                        Assert.That(ratio, Is.EqualTo(entry.PeerTimeMeanS.Value / entry.Seconds!.Value).Within(1e-9 * ratio), $"{where}: ratio = peer time / our time");
                    }
                }
            });
        }
    }

    [Test]
    public void SummaryGeneratorKnowsEveryFamily()
    {
        var families = LrmShapes.All.Select(shape => shape.Family).Distinct().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(families, Is.SubsetOf(ReportWriter.NotedFamilies), "a family without a roofline note prints 'no note for this family'");
            Assert.That(ReportWriter.FamilyColours, Is.Unique);
            Assert.That(ReportWriter.FamilyColours, Has.Count.GreaterThanOrEqualTo(families.Count), "families beyond the palette share a colour on the roofline chart");
        });
    }

    // ---- the training-loss families ------------------------------------------------------------------------------------------

    [Test]
    public void LossFamiliesCountTheirFiltersAndConvolutionsByHand()
    {
        var ssim = new SsimLossShape(4, 64);
        var lpips = LpipsLossShape.AlexNet(4, 64);
        Assert.Multiple(() =>
        {
            // Per image and channel, 54² valid windows: 9·64² + 29·54² + 8 passes × 2 FLOPs × 11 taps × (64·54 + 54·54)
            // = 36,864 + 84,564 + 1,121,472 = 1,242,900; × 3 channels × 4 images.
            Assert.That(ssim.Flops, Is.EqualTo(14_914_800d));
            Assert.That(ssim.Bytes, Is.EqualTo(589_824d));                        // 4 × (prediction, target, gradient) 3 × 4·64²·3
            Assert.That(new SsimLossShape(4, 128).Flops, Is.EqualTo(12d * (9 * 16384 + 29 * 13924 + 176 * (128 * 118 + 13924))));
            // 64² → conv1 (11/4, pad 2) 15² → pool 7² → conv2 7² → pool 3² → conv3..5 3².
            Assert.That(lpips.Sides, Is.EqualTo(new[] { 15, 7, 3, 3, 3 }));
            Assert.That(LpipsLossShape.AlexNet(4, 128).Sides, Is.EqualTo(new[] { 31, 15, 7, 7, 7 }));
            // One forward of one image: 2 × (15²·64·11²·3 + 7²·192·5²·64 + 3²·384·3²·192 + 3²·256·3²·384 + 3²·256·3²·256)
            // = 10,454,400 + 30,105,600 + 11,943,936 + 15,925,248 + 10,616,832 = 79,046,016;
            // × 3 (prediction and target forwards, the prediction's input gradient) × 4 images.
            Assert.That(lpips.ForwardFlopsPerImage, Is.EqualTo(79_046_016d));
            Assert.That(lpips.Flops, Is.EqualTo(948_552_192d));
            // weights 23,232 + 307,200 + 663,552 + 884,736 + 589,824, biases and heads 2 × 1,152: 2,470,848 parameters
            Assert.That(lpips.Parameters, Is.EqualTo(2_470_848d));
            Assert.That(lpips.Bytes, Is.EqualTo(4d * (3 * 4 * 64 * 64 * 3 + 2_470_848)));
        });
    }

    [Test]
    public void LossFamiliesRunOnTheCpuOnlyOnTrainingPatches()
    {
        Assert.Multiple(() =>
        {
            Assert.That(KernelBenchmarks<SsimLossShape>.Targets.All(target => target == "cpu"), Is.True, "no device kernel: the CPU only");
            Assert.That(KernelBenchmarks<LpipsLossShape>.Targets.All(target => target == "cpu"), Is.True);
            Assert.That(KernelBenchmarks<GemmShape>.Targets, Is.EqualTo(BenchmarkTargets.Available), "device families keep every target");
            Assert.That(LrmShapes.All.OfType<SsimLossShape>(), Is.EqualTo(new[] { new SsimLossShape(4, 64), new SsimLossShape(4, 128) }).Using<SsimLossShape>(
                (a, b) => a.Key == b.Key));
            Assert.That(LrmShapes.All.OfType<LpipsLossShape>().Select(shape => shape.Name), Is.EqualTo(new[]
            {
                "4x64x64x3, AlexNet 64-192-384-256-256, value + gradient", "4x128x128x3, AlexNet 64-192-384-256-256, value + gradient",
            }));
            Assert.That(LrmShapes.All.OfType<LpipsLossShape>().All(shape => shape.Configs == string.Join(",", LrmShapes.ConfigNames)), Is.True,
                "the losses do not depend on the model config");
        });
    }

    [Test]
    public void LpipsSuiteBuildsAnAlexNetSizedNetworkInTheUserWeightsFormat()
    {
        using var network = LpipsLossBenchmarks.RandomNetwork(LpipsLossShape.AlexNetChannels, seed: 7);
        Assert.That(network.Channels, Is.EqualTo(LpipsLossShape.AlexNetChannels));
        // Uniform random patches: a finite, positive distance and a non-zero gradient (nothing optimised to a constant).
        using var prediction = Tensor.FromArray([.. Enumerable.Range(0, 2 * 40 * 40 * 3).Select(i => (float)((i * 7919 % 1000) / 1000.0))], 2, 40, 40, 3);
        using var target = Tensor.FromArray([.. Enumerable.Range(0, 2 * 40 * 40 * 3).Select(i => (float)((i * 104_729 % 1000) / 1000.0))], 2, 40, 40, 3);
        using var gradient = Tensor.Empty([2, 40, 40, 3]);
        var loss = network.Evaluate(gradient, prediction, target, 1f, accumulate: false);
        Assert.That(loss, Is.Positive.And.LessThan(double.PositiveInfinity));
        Assert.That(gradient.ToFloatArray().Any(value => value != 0), Is.True);
    }
}
