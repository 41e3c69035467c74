using System.Xml.Linq;
using LrmNative.Benchmarks;
using LrmNative.Benchmarks.Results;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The benchmark harness without running a benchmark: FLOP and byte counts of known shapes against hand-computed values,
/// the shapes derived from the configs, the results JSON round trip, the join with the peer, the roofline, and the
/// generated Markdown and SVG.
/// </summary>
[TestFixture]
public sealed class BenchmarkReportTests
{
    private static ModelConfig Preset(string name) => ModelConfig.Load(Path.Combine(AppContext.BaseDirectory, "configs", name + ".json"));

    // ---- FLOPs and bytes, by hand ------------------------------------------------------------------------------------

    [Test]
    public void GemmCountsTwoFlopsPerMultiplyAddAndEachOperandOnce()
    {
        var shape = new GemmShape("decoder MLP fc1", M: 3072, N: 2048, K: 512);
        Assert.Multiple(() =>
        {
            Assert.That(shape.Flops, Is.EqualTo(6_442_450_944d)); // 2·3072·2048·512
            // 4 bytes × (input 3072·512 + weight 2048·512 + bias 2048 + output 3072·2048) = 4 × 8,914,944
            Assert.That(shape.Bytes, Is.EqualTo(35_659_776d));
            Assert.That(shape.Unit, Is.EqualTo(RateUnit.GigaFlops));
            Assert.That(shape.Rate(0.1), Is.EqualTo(64.42450944).Within(1e-9));
        });
    }

    [Test]
    public void AttentionCountsBothProductsAndQkvOutOnce()
    {
        var shape = new AttentionShape("decoder", Self: true, QueryTokens: 3072, KeyTokens: 3072, Heads: 16, HeadDim: 64);
        Assert.Multiple(() =>
        {
            Assert.That(shape.Flops, Is.EqualTo(38_654_705_664d)); // 4·16·3072·3072·64
            Assert.That(shape.Bytes, Is.EqualTo(50_331_648d));     // 4 × 1024 × (q + out 2·3072 + k, v 2·3072)
        });
        var cross = new AttentionShape("decoder", Self: false, QueryTokens: 3072, KeyTokens: 1025, Heads: 16, HeadDim: 64);
        Assert.That(cross.Bytes, Is.EqualTo(4d * 1024 * (2 * 3072 + 2 * 1025)));
    }

    [Test]
    public void NormalisationCountsEightOrTenFlopsPerElement()
    {
        var layerNorm = new LayerNormShape("decoder final norm", 3072, 1024);
        var modLn = new ModLNShape("decoder", 3072, 1024);
        Assert.Multiple(() =>
        {
            Assert.That(layerNorm.Flops, Is.EqualTo(25_165_824d));     // 8·3072·1024
            Assert.That(layerNorm.Bytes, Is.EqualTo(25_174_016d));     // 4 × (2·3072·1024 + weight, bias 2·1024)
            Assert.That(modLn.Flops, Is.EqualTo(31_457_280d));         // 10·3072·1024
            Assert.That(modLn.Bytes, Is.EqualTo(25_182_208d));         // + shift, scale 2·1024 floats
            Assert.That(layerNorm.Unit, Is.EqualTo(RateUnit.GigabytesPerSecond));
            Assert.That(layerNorm.Rate(0.01), Is.EqualTo(2.5174016).Within(1e-12));
        });
    }

    [Test]
    public void MlpDeconvolutionPatchEmbedMarchingCubesByHand()
    {
        var mlp = new NerfMlpShape(65536, 240, 64, 4); // 240→64→64→64→4
        var deconvolution = new DeconvolutionShape(3, 1024, 80, 32, 2);
        var patch = new PatchEmbedShape(512, 16, 768);
        var cubes = new MarchingCubesShape(384);
        Assert.Multiple(() =>
        {
            // weights 240·64 + 64·64 + 64·64 + 64·4 = 23,808
            Assert.That(mlp.Flops, Is.EqualTo(2d * 65536 * 23_808));
            Assert.That(mlp.Bytes, Is.EqualTo(4d * (65536 * (240 + 4) + 23_808 + 196)));
            Assert.That(deconvolution.Flops, Is.EqualTo(2_013_265_920d)); // 2·3·32·32·1024·80·2·2
            Assert.That(deconvolution.Bytes, Is.EqualTo(17_826_112d));    // 4 × (3,145,728 + 327,680 + 80 + 983,040)
            Assert.That(patch.Tokens, Is.EqualTo(1024));
            Assert.That(patch.Flops, Is.EqualTo(1_207_959_552d));         // 2·1024·768·3·16·16
            Assert.That(cubes.Items, Is.EqualTo(56_181_887d));            // 383³ cells
            Assert.That(cubes.Bytes, Is.EqualTo(226_492_416d));           // 4·384³
            Assert.That(cubes.Rate(1), Is.EqualTo(56.181887).Within(1e-9));
        });
    }

    [Test]
    public void BackwardGemmAndAttentionCountTheirProductsByHand()
    {
        var gemm = new GemmBackwardShape("decoder MLP fc1", M: 3072, N: 2048, K: 512);
        var self = new AttentionBackwardShape("decoder", Self: true, QueryTokens: 3072, KeyTokens: 3072, Heads: 16, HeadDim: 64);
        var cross = new AttentionBackwardShape("decoder", Self: false, QueryTokens: 3072, KeyTokens: 1025, Heads: 16, HeadDim: 64);
        Assert.Multiple(() =>
        {
            Assert.That(gemm.Family, Is.EqualTo("gemm-backward"));
            Assert.That(gemm.Flops, Is.EqualTo(12_884_901_888d)); // 2 products × 2·3072·2048·512
            // 4 × (dY 3072·2048 + X, dX 2·3072·512 + W, dW 2·2048·512 + db read and written 2·2048) = 4 × 11,538,432
            Assert.That(gemm.Bytes, Is.EqualTo(46_153_728d));
            Assert.That(self.Family, Is.EqualTo("attention-backward"));
            Assert.That(self.Flops, Is.EqualTo(96_636_764_160d)); // 5 products × 2·3072·3072·64 × 16 heads
            // 4 × (1024 × (q, o, dO, dq 4·3072 + k, v, dk, dv 4·3072) + lse 16·3072)
            Assert.That(self.Bytes, Is.EqualTo(100_859_904d));
            Assert.That(cross.Flops, Is.EqualTo(32_243_712_000d)); // 10·16·3072·1025·64
            Assert.That(cross.Unit, Is.EqualTo(RateUnit.GigaFlops));
        });
    }

    [Test]
    public void BackwardNormalisationCountsThirteenOrTwentyFlopsPerElement()
    {
        var layerNorm = new LayerNormBackwardShape("decoder final norm", 3072, 1024);
        var modLn = new ModLNBackwardShape("decoder", 3072, 1024);
        Assert.Multiple(() =>
        {
            Assert.That(layerNorm.Family, Is.EqualTo("layernorm-backward"));
            Assert.That(layerNorm.Flops, Is.EqualTo(40_894_464d));    // 13·3072·1024
            Assert.That(layerNorm.Bytes, Is.EqualTo(37_793_792d));    // 4 × (3·3072·1024 + mean, rstd 2·3072 + 5·1024)
            Assert.That(modLn.Family, Is.EqualTo("modln-backward"));
            Assert.That(modLn.Flops, Is.EqualTo(62_914_560d));        // 20·3072·1024
            Assert.That(modLn.Bytes, Is.EqualTo(37_810_176d));        // 4 × (3·3072·1024 + 2·3072 + 9·1024)
            Assert.That(modLn.Unit, Is.EqualTo(RateUnit.GigabytesPerSecond));
        });
    }

    [Test]
    public void BackwardTriplaneMlpAndMarchByHand()
    {
        var triplane = new TriplaneBackwardShape(65536, 64, 80);
        var mlp = new NerfMlpBackwardShape(65536, 240, 64, 4); // 240→64→64→64→4
        var march = new RenderMarchBackwardShape(16384, 64, 64);
        Assert.Multiple(() =>
        {
            Assert.That(triplane.Family, Is.EqualTo("triplane-backward"));
            Assert.That(triplane.Flops, Is.EqualTo(125_829_120d));    // 24·65536·80: 4 taps × 2 FLOPs × 3 planes per channel
            Assert.That(triplane.Bytes, Is.EqualTo(67_633_152d));     // 4 × (points 3·65536 + dPlanes 3·64²·80 + dFeatures 3·65536·80)
            Assert.That(mlp.Family, Is.EqualTo("nerf-mlp-backward"));
            Assert.That(mlp.Flops, Is.EqualTo(6_241_124_352d));       // 4·65536·23,808: 2× the forward
            // rows × (input, dInput 2·240 + dOutput 4) + 3 × (weights 23,808 + biases 196)
            Assert.That(mlp.Bytes, Is.EqualTo(4d * (65536 * 484 + 3 * 24_004)));
            Assert.That(march.Family, Is.EqualTo("render-march-backward"));
            Assert.That(march.Flops, Is.EqualTo(104_038_400d));       // 50 per interval × 16384 rays × 127 intervals
            Assert.That(march.Bytes, Is.EqualTo(75_759_624d));        // 4 × (16384·128·9 + 16384·4 + 2)
        });
    }

    // ---- shapes from the configs ---------------------------------------------------------------------------------------

    [Test]
    public void ShapesComeFromTheConfigs()
    {
        var paper = LrmShapes.For(Preset("lrm-base-paper")).ToList();
        var small = LrmShapes.For(Preset("openlrm-small")).ToList();
        Assert.Multiple(() =>
        {
            // The paper: 3×32×32 tokens, 16 heads of 64, DINO ViT-B/16 at 512² → 1 + 32² tokens, no registers.
            Assert.That(paper.OfType<AttentionShape>(), Is.EquivalentTo(new[]
            {
                new AttentionShape("decoder", true, 3072, 3072, 16, 64),
                new AttentionShape("decoder", false, 3072, 1025, 16, 64),
                new AttentionShape("encoder", true, 1025, 1025, 12, 64),
            }));
            Assert.That(paper.OfType<PatchEmbedShape>().Single(), Is.EqualTo(new PatchEmbedShape(512, 16, 768)));
            // The backward suites run the forward suites' decoder shapes.
            Assert.That(paper.OfType<AttentionBackwardShape>(), Is.EquivalentTo(new[]
            {
                new AttentionBackwardShape("decoder", true, 3072, 3072, 16, 64),
                new AttentionBackwardShape("decoder", false, 3072, 1025, 16, 64),
            }));
            Assert.That(paper.OfType<GemmBackwardShape>().Single(), Is.EqualTo(new GemmBackwardShape("decoder MLP fc1", 3072, 4096, 1024)));
            Assert.That(paper.OfType<NerfMlpBackwardShape>().Single(), Is.EqualTo(new NerfMlpBackwardShape(LrmShapes.QueryChunkPoints, 240, 64, 10)));
            Assert.That(paper.OfType<NerfMlpShape>().Single(), Is.EqualTo(new NerfMlpShape(LrmShapes.QueryChunkPoints, 240, 64, 10)));
            Assert.That(paper.OfType<RenderMarchShape>().Single(), Is.EqualTo(new RenderMarchShape(128 * 128, 64, 64)));
            // OpenLRM small: DINOv2 ViT-S/14 with 4 registers at 224² → encoder attends over 1 + 4 + 16² tokens.
            Assert.That(small.OfType<AttentionShape>().Single(s => s.Where == "encoder"), Is.EqualTo(new AttentionShape("encoder", true, 261, 261, 6, 64)));
            Assert.That(small.OfType<GemmShape>().First(), Is.EqualTo(new GemmShape("decoder MLP fc1", 3072, 2048, 512)));
            Assert.That(small.OfType<DeconvolutionShape>().Single(), Is.EqualTo(new DeconvolutionShape(3, 512, 32, 32, 2)));
        });
    }

    [Test]
    public void CatalogueMeasuresSharedShapesOnceAndNamesEveryConfig()
    {
        var all = LrmShapes.All;
        Assert.Multiple(() =>
        {
            Assert.That(all.Select(shape => shape.Key), Is.Unique);
            Assert.That(all.Select(shape => shape.Order), Is.Ordered);
            var selfAttention = all.OfType<AttentionShape>().Single(s => s.Self && s.Heads == 16);
            Assert.That(selfAttention.Configs, Is.EqualTo("openlrm-large,lrm-base-paper"));
            Assert.That(all.OfType<MarchingCubesShape>().All(s => s.Configs == string.Join(",", LrmShapes.ConfigNames)), Is.True);
            Assert.That(all.Select(shape => shape.Family).Distinct(), Is.EquivalentTo(new[]
            {
                "gemm", "layernorm", "modln", "attention", "triplane", "nerf-mlp", "render-march", "marching-cubes", "resize", "patch-embed", "deconvolution",
                "gemm-backward", "layernorm-backward", "modln-backward", "attention-backward", "triplane-backward", "nerf-mlp-backward", "render-march-backward",
                "patch-embed-backward", "deconvolution-backward", "resize-backward", "activation-backward", "layerscale-backward", "render-decode-backward", "adamw",
                "grid-points", "nerf-query", "triplane-sum", "ssim-loss", "lpips-loss",
            }));
            foreach (var config in LrmShapes.ConfigNames)
            {
                Assert.That(all.Count(shape => shape.Configs.Split(',').Contains(config)), Is.EqualTo(LrmShapes.For(Preset(config)).Count()), config);
            }
        });
    }

    [Test]
    public void ManifestListsEveryShapeWithItsDimensions()
    {
        using var document = System.Text.Json.JsonDocument.Parse(Manifest.ToJson(LrmShapes.All));
        var shapes = document.RootElement.GetProperty("shapes");
        Assert.Multiple(() =>
        {
            Assert.That(document.RootElement.GetProperty("schema").GetString(), Is.EqualTo(Manifest.SchemaName));
            Assert.That(shapes.GetArrayLength(), Is.EqualTo(LrmShapes.All.Count));
            var gemm = shapes.EnumerateArray().First();
            Assert.That(gemm.GetProperty("family").GetString(), Is.EqualTo("gemm"));
            Assert.That(gemm.GetProperty("dims").GetProperty("k").GetInt64(), Is.EqualTo(512));
            Assert.That(gemm.GetProperty("flops").GetDouble(), Is.EqualTo(LrmShapes.All[0].Flops));
        });
    }

    [Test]
    public void RotationCoversTheCacheWithoutCopyingHugeSets()
    {
        Assert.Multiple(() =>
        {
            Assert.That(TensorRing.CountFor(1 << 20), Is.EqualTo(TensorRing.MaxSets)); // 1 MiB sets: capped at 16
            Assert.That(TensorRing.CountFor(50e6), Is.EqualTo(3));                     // 3 × 50 MB > 128 MiB
            Assert.That(TensorRing.CountFor(200e6), Is.EqualTo(1));
        });
    }

    // ---- results, peers, roofline ----------------------------------------------------------------------------------------

    private static BenchmarkResults Sample(bool preliminary = true) => new()
    {
        Machine = new MachineInfo
        {
            Id = MachineProbe.MachineId("AMD EPYC", 2, null),
            Cpu = "AMD EPYC (family 26, model 2)",
            Cores = 2,
            LogicalProcessors = 2,
            MemoryGib = 23.5,
            Os = "Debian GNU/Linux 12 (bookworm)",
            Dotnet = ".NET 10.0.12",
            Date = "2026-11-21T08:00:00Z",
            Commit = "abc1234",
            Threads = 2,
            Peak = new PeakInfo { Gflops = 400, GflopsSource = "test", Gbps = 20, GbpsSource = "test" },
        },
        Run = new RunInfo { Tool = "test", Job = "short", Preliminary = preliminary, Note = preliminary ? "six other jobs shared the cores" : null },
        Entries =
        [
            Entry("gemm", "decoder MLP fc1 3072x512 * 512x2048", 6.44e9, 35.7e6, 0.02, "GFLOP/s"),
            Entry("layernorm", "decoder final norm 3072x512", 1.26e7, 1.26e7, 0.004, "GB/s"),
            Entry("marching-cubes", "384^3 rippled sphere", 0, 2.26e8, 0.3, "Mvoxels/s") with { Backend = "cpu" },
            Entry("attention", "decoder self 3072x3072, 8x64 <&>", 1.93e10, 2.5e7, 0.1, "GFLOP/s"),
        ],
    };

    private static ResultEntry Entry(string family, string shape, double flops, double bytes, double seconds, string unit) => new()
    {
        Family = family,
        Shape = shape,
        Config = "openlrm-small",
        Backend = "cpu",
        TimeMeanS = seconds,
        TimeStddevS = seconds / 10,
        Samples = 5,
        Flops = flops,
        Bytes = bytes,
        Rate = unit == "GFLOP/s" ? flops / seconds / 1e9 : bytes / seconds / 1e9,
        RateUnit = unit,
    };

    private static BenchmarkResults Peers() => new()
    {
        Machine = new MachineInfo { Id = "peer", Cpu = "AMD EPYC", Date = "2026-11-21T07:50:00Z", Runtime = "Python 3.11, PyTorch 1.13" },
        Run = new RunInfo { Tool = "kernels_torch.py", Job = "short", Peer = "PyTorch 1.13 cpu, 2 threads", PeerNotes = ["attention: explicit softmax"] },
        Entries =
        [
            Entry("gemm", "decoder MLP fc1 3072x512 * 512x2048", 6.44e9, 35.7e6, 0.03, "GFLOP/s") with { Backend = "pytorch-cpu", Note = "F.linear" },
            Entry("layernorm", "decoder final norm 3072x512", 1.26e7, 1.26e7, 0.002, "GB/s") with { Backend = "pytorch-cuda" },
            Entry("marching-cubes", "384^3 rippled sphere", 0, 2.26e8, 0, "Mvoxels/s") with
            {
                Backend = "scikit-image", TimeMeanS = null, Skipped = "scikit-image is not importable",
            },
        ],
    };

    [Test]
    public void ResultsRoundTripThroughJsonInTheDocumentedSchema()
    {
        var results = Sample().WithRoofline();
        var json = results.ToJson();
        var again = BenchmarkResults.Parse(json, "round trip");
        Assert.Multiple(() =>
        {
            Assert.That(json, Does.Contain("\"schema\": \"lrm-bench/1\""));
            Assert.That(json, Does.Contain("\"time_mean_s\""));
            Assert.That(json, Does.Contain("\"roofline_fraction\""));
            Assert.That(again.Machine, Is.EqualTo(results.Machine));
            Assert.That(again.Entries, Is.EqualTo(results.Entries));
            Assert.That(again.Machine.Id, Is.EqualTo("amd-epyc-2c"));
        });
        Assert.That(() => BenchmarkResults.Parse("{\"schema\": \"other\"}", "x.json"), Throws.TypeOf<LrmFormatException>().With.Message.Contains("x.json"));
    }

    [Test]
    public void PeersJoinByShapeOnTheSameKindOfDevice()
    {
        var joined = Sample().WithPeers(Peers()).Entries;
        Assert.Multiple(() =>
        {
            Assert.That(joined[0].Peer, Is.EqualTo("pytorch-cpu"));
            Assert.That(joined[0].PeerTimeMeanS, Is.EqualTo(0.03));
            Assert.That(joined[0].Ratio, Is.EqualTo(1.5).Within(1e-12)); // 0.03 / 0.02: we are 1.5× faster
            Assert.That(joined[0].PeerNote, Is.EqualTo("F.linear"));
            Assert.That(joined[1].Peer, Is.Null, "a CUDA peer is no ratio for a CPU case");
            Assert.That(joined[2].Ratio, Is.Null);
            Assert.That(joined[2].PeerNote, Is.EqualTo("scikit-image is not importable"));
            Assert.That(joined[3].Peer, Is.Null);
        });
        Assert.That(BenchmarkResults.SameDevice("cuda", "pytorch-cuda") && !BenchmarkResults.SameDevice("cuda", "scikit-image"), Is.True);
    }

    [Test]
    public void RooflineFloorIsTheSlowerOfComputeAndMemory()
    {
        var peak = new PeakInfo { Gflops = 400, Gbps = 20 };
        var compute = Roofline.Floor(8e9, 1e6, peak)!.Value;   // 20 ms of FLOPs vs 50 µs of bytes
        var memory = Roofline.Floor(1e6, 2e8, peak)!.Value;    // 2.5 µs of FLOPs vs 10 ms of bytes
        var entry = Roofline.Apply(Entry("gemm", "x", 8e9, 1e6, 0.04, "GFLOP/s"), peak);
        Assert.Multiple(() =>
        {
            Assert.That(compute.Seconds, Is.EqualTo(0.02).Within(1e-15));
            Assert.That(compute.Bound, Is.EqualTo("compute"));
            Assert.That(memory.Seconds, Is.EqualTo(0.01).Within(1e-15));
            Assert.That(memory.Bound, Is.EqualTo("memory"));
            Assert.That(entry.RooflineFraction, Is.EqualTo(0.5).Within(1e-12));
            Assert.That(Roofline.Floor(1, 1, null), Is.Null);
        });
    }

    // ---- the generated summary -------------------------------------------------------------------------------------------

    [Test]
    public void ChartsAreWellFormedSvgWithOneMarkPerCase()
    {
        var results = Sample().WithPeers(Peers()).WithRoofline();
        var svg = XNamespace.Get("http://www.w3.org/2000/svg");
        var ratios = XDocument.Parse(ReportWriter.RatioChart(results));
        var roofline = XDocument.Parse(ReportWriter.RooflineChart(results));
        Assert.Multiple(() =>
        {
            Assert.That(ratios.Root!.Name, Is.EqualTo(svg + "svg"));
            Assert.That(ratios.Root.Attribute("viewBox"), Is.Not.Null);
            // One titled bar per case with a ratio (only the GEMM here), the escaped shape name survives.
            var bars = ratios.Descendants(svg + "rect").Where(rect => rect.Element(svg + "title") is not null).ToList();
            Assert.That(bars, Has.Count.EqualTo(1));
            Assert.That(bars[0].Element(svg + "title")!.Value, Does.StartWith("gemm/"));
            Assert.That(ratios.Descendants(svg + "text").Any(text => text.Value.Contains("<&>", StringComparison.Ordinal)), Is.True);
            Assert.That(roofline.Root!.Name, Is.EqualTo(svg + "svg"));
            // Cases with FLOPs are points (3 of 4: marching cubes counts none); the roof is one polyline.
            Assert.That(roofline.Descendants(svg + "circle").Count(c => c.Element(svg + "title")!.Value.Contains("FLOP/byte", StringComparison.Ordinal)), Is.EqualTo(3));
            Assert.That(roofline.Descendants(svg + "polyline").Count(), Is.EqualTo(1));
        });
    }

    [Test]
    public void SummaryIsMarkdownWithConsistentTablesAndItsCharts()
    {
        var results = Sample().WithPeers(Peers()).WithRoofline();
        var markdown = ReportWriter.Markdown([("amd-epyc-2c.json", results)]);
        var lines = markdown.Split('\n');
        Assert.Multiple(() =>
        {
            Assert.That(markdown, Does.StartWith("# "));
            Assert.That(markdown, Does.Contain("**Preliminary.** six other jobs shared the cores"));
            Assert.That(markdown, Does.Contain("](amd-epyc-2c-ratios.svg)"));
            Assert.That(markdown, Does.Contain("](amd-epyc-2c-roofline.svg)"));
            Assert.That(markdown, Does.Contain("**1.50×**"));
            Assert.That(markdown, Does.Contain("### Furthest from the roofline"));
            // Every table row has as many cells as its header.
            for (var i = 0; i < lines.Length; i++)
            {
                if (!lines[i].StartsWith('|') || (i > 0 && lines[i - 1].StartsWith('|')))
                {
                    continue;
                }
                var columns = Cells(lines[i]);
                for (var j = i + 1; j < lines.Length && lines[j].StartsWith('|'); j++)
                {
                    Assert.That(Cells(lines[j]), Is.EqualTo(columns), $"line {j + 1}: {lines[j]}");
                }
            }
            Assert.That(lines.Count(line => line.StartsWith("| 4 | attention", StringComparison.Ordinal)), Is.EqualTo(1));
        });
    }

    [Test]
    public void ReportDirectoryWritesSummaryAndChartsAndIgnoresOtherJson()
    {
        var directory = Directory.CreateTempSubdirectory("lrm-bench-report-").FullName;
        try
        {
            Sample().WithRoofline().Save(Path.Combine(directory, "amd-epyc-2c.json"));
            File.WriteAllText(Path.Combine(directory, "LrmNative.Benchmarks.GemmBenchmarks-report-brief.json"), "{\"Title\": \"not ours\"}");
            var written = ReportWriter.WriteDirectory(directory).Select(Path.GetFileName).ToList();
            Assert.Multiple(() =>
            {
                Assert.That(written, Is.EquivalentTo(new[] { "amd-epyc-2c-ratios.svg", "amd-epyc-2c-roofline.svg", "SUMMARY.md" }));
                Assert.That(File.ReadAllText(Path.Combine(directory, "SUMMARY.md")), Does.Contain("## amd-epyc-2c"));
                Assert.That(() => XDocument.Load(Path.Combine(directory, "amd-epyc-2c-roofline.svg")), Throws.Nothing);
                Assert.That(Directory.GetFiles(directory, "*.tmp"), Is.Empty);
            });
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void MachineIdsAreFileNameSlugs()
    {
        Assert.Multiple(() =>
        {
            Assert.That(MachineProbe.MachineId("AMD EPYC", 2, null), Is.EqualTo("amd-epyc-2c"));
            Assert.That(MachineProbe.MachineId("Intel(R) Xeon(R) Platinum 8480+", 56, "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"),
                Is.EqualTo("intel-r-xeon-r-platinum-8480-56c-nvidia-h100-80gb-hbm3"));
            Assert.That(MachineProbe.Slug("///"), Is.EqualTo("machine"));
        });
    }

    // Cells of a Markdown table row, counting escaped pipes as text.
    private static int Cells(string line) => line.Replace("\\|", "", StringComparison.Ordinal).Count(c => c == '|') - 1;
}
