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
    private static string ResultsFolder()
    {
        var repository = TestFiles.RepositoryFolder();
        if (repository is null)
        {
            Assert.Ignore("the tests run outside the repository (a test bundle): benchmarks/results is not here to compare");
        }
        return Path.Combine(repository!, "benchmarks", "results");
    }

    // The committed results files of the lrm-bench/1 schema (the summary's inputs).
    private static IReadOnlyList<string> CommittedResults(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*.json").Where(path => File.ReadAllText(path).Contains(BenchmarkResults.SchemaName, StringComparison.Ordinal)).Order(StringComparer.Ordinal)];

    [Test]
    public void CommittedSummaryAndChartsAreRegeneratedByteForByteFromTheCommittedJson()
    {
        var results = ResultsFolder();
        var inputs = CommittedResults(results);
        Assert.That(inputs, Is.Not.Empty, "benchmarks/results holds no lrm-bench/1 results");
        foreach (var path in Directory.EnumerateFiles(results, "*.json"))
        {
            File.Copy(path, PathOf(Path.GetFileName(path)));
        }
        var written = ReportWriter.WriteDirectory(Folder);
        Assert.That(written, Has.Count.EqualTo(2 * inputs.Count + 1), "two charts per results file and the summary");
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
        var repository = TestFiles.RepositoryFolder();
        if (repository is null)
        {
            Assert.Ignore("the tests run outside the repository (a test bundle): benchmarks/peers is not here to read");
        }
        var script = File.ReadAllText(Path.Combine(repository!, "benchmarks", "peers", "kernels_torch.py"));
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
}
