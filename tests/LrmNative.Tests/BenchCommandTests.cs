using System.CommandLine;
using System.Text.Json;
using LrmNative.Backends;
using LrmNative.Cli;

namespace LrmNative.Tests;

/// <summary>
/// `lrm bench` on the tiny config (random weights made in memory, analytic surface) and on the tiny checkpoint folder:
/// the report has every stage of the breakdown, the dense and coarse-to-fine grid queries with the points the
/// grid really has, the mesh difference, peak memory and the machine, in the JSON schema docs/benchmarks.md documents.
/// No timing is asserted, only that times were measured.
/// </summary>
[TestFixture]
public sealed class BenchCommandTests : TemporaryFolderFixture
{
    private static (int ExitCode, string Output, string Error) Lrm(params string[] args)
    {
        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(BenchCommand.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = root.Parse(["bench", .. args]).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public void ConfigOnlyRunReportsEveryStageInTheDocumentedSchema()
    {
        var json = Path.Combine(Folder, "report", "bench.json");
        var config = Path.Combine(Golden.TinyModelDirectory, "config.json");
        var (code, output, log) = Lrm("--model", config, "--resolution", "48", "--render-size", "8", "--device", "cpu", "--json", json);
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("lrm: timings").And.Contain("image→triplane").And.Contain("paper A100"));
        Assert.That(output, Does.StartWith("peak memory:"));

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.That(root.GetProperty("schema").GetString(), Is.EqualTo("lrm-bench-e2e/1"));
        Assert.That(root.GetProperty("machine").GetProperty("logical_cores").GetInt32(), Is.EqualTo(Environment.ProcessorCount));
        Assert.That(root.GetProperty("machine").GetProperty("cpu_model").GetString(), Is.Not.Empty);
        Assert.That(DateTime.Parse(root.GetProperty("date").GetString()!, System.Globalization.CultureInfo.InvariantCulture), Is.Not.EqualTo(default(DateTime)));
        Assert.That(root.GetProperty("device").GetProperty("used").GetString(), Is.EqualTo("cpu"));
        var model = root.GetProperty("model");
        Assert.That(model.GetProperty("random_weights").GetBoolean(), Is.True);
        Assert.That(model.GetProperty("seed").GetInt32(), Is.EqualTo(BenchCommand.DefaultSeed));
        Assert.That(model.GetProperty("config").GetProperty("transformer_dim").GetInt32(), Is.EqualTo(64));
        var seconds = root.GetProperty("seconds");
        foreach (var stage in new[] { "load", "preprocess", "image_to_triplane", "render", "grid_query", "marching_cubes", "vertex_colors", "export", "total" })
        {
            Assert.That(seconds.GetProperty(stage).GetDouble(), Is.GreaterThanOrEqualTo(0), stage);
        }
        Assert.That(seconds.GetProperty("image_to_triplane").GetDouble(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("paper_a100_seconds").GetProperty("marching_cubes").GetDouble(), Is.EqualTo(1.91));
        var grid = root.GetProperty("grid_query");
        Assert.That(grid.GetProperty("dense_points").GetInt64(), Is.EqualTo(48L * 48 * 48));
        var dense = grid.GetProperty("dense");
        var fine = grid.GetProperty("coarse_to_fine");
        Assert.That(dense.GetProperty("points_evaluated").GetInt64(), Is.EqualTo(48L * 48 * 48));
        Assert.That(dense.GetProperty("triangles").GetInt32(), Is.GreaterThan(100), "the analytic surface is there");
        Assert.That(fine.GetProperty("points_evaluated").GetInt64(), Is.LessThan(48L * 48 * 48));
        Assert.That(fine.GetProperty("mesh_identical_to_dense").GetBoolean(), Is.True);
        Assert.That(fine.GetProperty("chamfer_to_dense").GetDouble(), Is.Zero);
        var memory = root.GetProperty("memory");
        Assert.That(memory.GetProperty("peak_rss_bytes").GetInt64(), Is.GreaterThan(memory.GetProperty("peak_tensor_bytes").GetInt64()));
        Assert.That(memory.GetProperty("peak_tensor_bytes").GetInt64(), Is.GreaterThan(48L * 48 * 48 * 4), "at least the density grid");
    }

    [Test]
    public void AModelFolderRunsAsItIs()
    {
        var (code, _, log) = Lrm("--model", Golden.TinyModelDirectory, "--resolution", "32", "--render-size", "4", "--threshold", "0.45", "--device", "cpu");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("grid query").And.Contain("coarse-to-fine"));
        Assert.That(log, Does.Not.Contain("random weights"));
    }

    [TestCase("--resolution", "8", "--resolution")]
    [TestCase("--device", "cuda", "CUDA backend not available: ")]
    [TestCase("--model", "no-such-model", "model not found")]
    public void BadOptionsFailWithOneLine(string option, string value, string expected)
    {
        if (value == "cuda" && CudaBackend.IsAvailable(out _))
        {
            Assert.Ignore("this machine has a usable CUDA device, so --device cuda is not a bad option here");
        }
        string[] model = option == "--model" ? [] : ["--model", Path.Combine(Golden.TinyModelDirectory, "config.json")];
        var (code, _, log) = Lrm([.. model, option, value]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(), Does.StartWith("lrm: error:").And.Contain(expected));
    }
}
