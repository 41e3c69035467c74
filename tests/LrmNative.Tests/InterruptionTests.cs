using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using LrmNative.Data;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// Ctrl+C on the long `lrm` commands, with a real SIGINT sent to a real `lrm` process: it stops at its next check, exits
/// with 130, says what it kept, and leaves no temporary or half-written file. `dataset synth --resume` then continues
/// the interrupted run to exactly the bytes of a straight run; `reconstruct` keeps the files of the stages that
/// finished and writes no mesh; `train` writes a checkpoint at the step it stopped and `--resume` goes on from it;
/// `eval model` stops after the current object and scores the finished ones.
/// Also the manifest checks of `--resume` (other options, fewer objects, no manifest, with --overwrite).
/// </summary>
[TestFixture]
public sealed partial class InterruptionTests : TemporaryFolderFixture
{
    private static readonly string[] SmallSynth =
        ["dataset", "synth", "--style", "simple", "--views", "2", "--resolution", "24", "--mesh-resolution", "16", "--seed", "11", "--threads", "1"];

    [Test]
    public void CtrlCStopsSynthBetweenObjectsAndResumeGivesTheStraightRunsBytes()
    {
        var interrupted = Path.Combine(Folder, "interrupted");
        const int objects = 120;
        var run = LrmProcess.Start([.. SmallSynth, "--objects", $"{objects}", "--out", interrupted]);
        run.WaitFor(text => text.Contains("synth 3/", StringComparison.Ordinal), "the third object");
        run.Interrupt();
        var (code, error) = run.Finish();
        Assert.That(code, Is.EqualTo(130), error);
        Assert.That(error, Does.Contain("lrm: interrupted (Ctrl+C)").And.Contain("continue with the same command plus --resume"));
        var kept = Directory.GetDirectories(interrupted).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.That(kept.Count, Is.InRange(3, objects - 1), error);
        Assert.That(error, Does.Contain($"holds {kept.Count} complete objects"));
        Assert.That(Directory.GetFileSystemEntries(interrupted, ".*"), Is.Empty, "no staging folder or temporary file left");
        Assert.That(DatasetLayout.ReadUids(interrupted), Is.EqualTo(kept), "uids.json lists the complete objects");
        Assert.That(DatasetChecker.Check(interrupted).Problems, Is.Empty);

        // A resume continues or grows the run; asking for fewer objects than the interrupted run would leave extra folders: refused.
        var (fewer, _, fewerError) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", $"{kept.Count + 1}", "--out", interrupted, "--resume"]);
        Assert.That(fewer, Is.EqualTo(1), fewerError);
        Assert.That(fewerError, Does.Contain($"was started for {objects} objects, --objects {kept.Count + 1} is fewer"));

        var (code2, _, log2) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", $"{objects}", "--out", interrupted, "--resume"]);
        Assert.That(code2, Is.EqualTo(0), log2);
        Assert.That(log2, Does.Contain($"resumed: {kept.Count} objects were already there and kept"));
        var straight = Path.Combine(Folder, "straight");
        var (code3, _, log3) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", $"{objects}", "--out", straight]);
        Assert.That(code3, Is.EqualTo(0), log3);
        Assert.That(DatasetTestSupport.Hashes(interrupted), Is.EqualTo(DatasetTestSupport.Hashes(straight)), "interrupted + resumed = straight, byte for byte");
    }

    [Test]
    public void ResumeRefusesOtherOptionsAMissingManifestAndOverwrite()
    {
        var data = Path.Combine(Folder, "data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--objects", "2", "--out", data]).ExitCode, Is.EqualTo(0));
        var manifest = File.ReadAllText(Path.Combine(data, SynthManifest.FileName));
        Assert.That(manifest, Does.Contain("\"seed\": \"11\"").And.Contain("\"objects\": 2").And.Contain("\"style\": \"simple\""));

        (string[] Change, string Message)[] cases =
        [
            (["--seed", "12"], "was made with --seed 11, this run asks for 12"),
            (["--views", "3"], "was made with --views 2, this run asks for 3"),
            (["--resolution", "32"], "was made with --resolution 24, this run asks for 32"),
            (["--mesh-resolution", "20"], "was made with --mesh-resolution 16, this run asks for 20"),
            (["--style", "zeroverse"], "was made with --style simple, this run asks for zeroverse"),
            (["--source-distance", "2"], "was made with --source-distance none, this run asks for 2"),
            (["--overwrite"], "--resume and --overwrite exclude each other"),
        ];
        foreach (var (change, message) in cases)
        {
            var args = SmallSynth.ToList();
            for (var i = 0; i + 1 < change.Length; i += 2)
            {
                var at = args.IndexOf(change[i]);
                if (at >= 0)
                {
                    args.RemoveRange(at, 2);
                }
            }
            var (code, _, error) = DatasetTestSupport.Lrm([.. args, .. change, "--objects", "3", "--out", data, "--resume"]);
            Assert.That(code, Is.EqualTo(1), string.Join(' ', change));
            Assert.That(error, Does.Contain(message), string.Join(' ', change));
        }
        Assert.That(Directory.GetDirectories(data), Has.Length.EqualTo(2), "a refused resume writes nothing");

        File.Delete(Path.Combine(data, SynthManifest.FileName));
        var (missing, _, missingError) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", "3", "--out", data, "--resume"]);
        Assert.That(missing, Is.EqualTo(1));
        Assert.That(missingError, Does.Contain($"{Path.Combine(data, SynthManifest.FileName)} not found"));

        File.WriteAllText(Path.Combine(data, SynthManifest.FileName), "{ not json");
        var (broken, _, brokenError) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", "3", "--out", data, "--resume"]);
        Assert.That(broken, Is.EqualTo(1));
        Assert.That(brokenError, Does.Contain(SynthManifest.FileName).And.Contain("not valid JSON"));

        var (nothing, _, nothingError) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", "3", "--out", Path.Combine(Folder, "absent"), "--resume"]);
        Assert.That(nothing, Is.EqualTo(1));
        Assert.That(nothingError, Does.Contain("does not exist (nothing to continue"));
    }

    [Test]
    public void ResumeRemovesAKilledRunsStagingFolder()
    {
        var data = Path.Combine(Folder, "data");
        Assert.That(DatasetTestSupport.Lrm([.. SmallSynth, "--objects", "2", "--out", data]).ExitCode, Is.EqualTo(0));
        // What a SIGKILL in the middle of writing object 2 leaves: its hidden staging folder, half full.
        var staging = Path.Combine(data, ".obj_00002.4242.0123456789abcdef0123456789abcdef.tmp");
        Directory.CreateDirectory(Path.Combine(staging, "rgba"));
        File.WriteAllBytes(Path.Combine(staging, "rgba", "000.png"), [0x89, 0x50]);
        var (code, _, error) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", "3", "--out", data, "--resume"]);
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(Directory.Exists(staging), Is.False);
        Assert.That(DatasetLayout.ReadUids(data), Is.EqualTo(new[] { "obj_00000", "obj_00001", "obj_00002" }));
        Assert.That(DatasetChecker.Check(data).Problems, Is.Empty);
    }

    [Test]
    public void CtrlCStopsReconstructInsideTheGridQueryWithoutAMesh()
    {
        var output = Path.Combine(Folder, "out");
        // 1024³ dense on the tiny model takes far longer than the wait for the render line below.
        var run = LrmProcess.Start(["reconstruct", Golden.ExampleImagePath, "--model", Golden.TinyModelDirectory, "--out", output,
            "--device", "cpu", "--resolution", "1024", "--dense", "--render-size", "16", "--threads", "1"]);
        run.WaitFor(text => text.Contains("lrm: render", StringComparison.Ordinal), "the render stage");
        run.Interrupt();
        var (code, error) = run.Finish();
        Assert.That(code, Is.EqualTo(130), error);
        Assert.That(error, Does.Contain("lrm: interrupted (Ctrl+C)").And.Contain("cancelled"));
        Assert.That(error, Does.Not.Contain("marching cubes"), "stopped before the mesh");
        var files = Directory.GetFileSystemEntries(output).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.That(files, Is.EqualTo(new[] { "depth.png", "input_view.png", "opacity.png", "preprocessed.png" }), "the finished stages' files, no mesh, no temporary file");
        using var view = Image.Load(Path.Combine(output, "input_view.png"));
        Assert.That(view.Width, Is.EqualTo(16), "a complete PNG");
    }

    [Test]
    public void CtrlCStopsTrainingWithACheckpointThatResumes()
    {
        var config = Path.Combine(Folder, "config.json");
        File.WriteAllText(config, TrainingSceneData.TinyConfigJson);
        var data = Path.Combine(Folder, "data");
        TrainingSceneData.Write(data, 2, 3, 24);
        var output = Path.Combine(Folder, "run");
        string[] args = ["train", "--config", config, "--data", data, "--out", output, "--steps", "100000", "--views", "2", "--batch", "1",
            "--render-min", "16", "--render-max", "16", "--patch", "8", "--checkpoint-every", "0", "--threads", "1", "--device", "cpu", "--seed", "3"];
        var run = LrmProcess.Start(args);
        run.WaitFor(text => text.Contains("step 2/100000", StringComparison.Ordinal), "the second update");
        run.Interrupt();
        var (code, error) = run.Finish();
        Assert.That(code, Is.EqualTo(130), error);
        var stopped = System.Text.RegularExpressions.Regex.Match(error, @"stopped after step (\d+) of 100000");
        Assert.That(stopped.Success, Is.True, error);
        var step = long.Parse(stopped.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var checkpoint = Path.Combine(output, TrainingLoop.CheckpointFileName);
        Assert.That(TrainingCheckpoint.ReadState(checkpoint).Step, Is.EqualTo(step), "the checkpoint is at the step it stopped");
        Assert.That(Directory.GetFileSystemEntries(output, ".*"), Is.Empty, "no temporary file");

        var resume = LrmProcess.Start([.. args, "--resume", "--stop-at", $"{step + 1}"]);
        var (resumed, resumeLog) = resume.Finish();
        Assert.That(resumed, Is.EqualTo(0), resumeLog);
        Assert.That(resumeLog, Does.Contain($"step {step + 1}/100000").And.Contain($"stopped after step {step + 1}"));
    }

    [Test]
    public void CtrlCStopsEvalModelAfterTheCurrentObjectWithItsScores()
    {
        var data = Path.Combine(Folder, "data");
        // More objects than the run can finish while the signal travels, even on a loaded machine.
        const int objects = 8;
        var (made, _, madeLog) = DatasetTestSupport.Lrm([.. SmallSynth, "--objects", $"{objects}", "--out", data]);
        Assert.That(made, Is.EqualTo(0), madeLog);
        var json = Path.Combine(Folder, "scores.json");
        // A 384³ mesh per object on one thread keeps each object long enough to be interrupted within.
        var run = LrmProcess.Start(["eval", "model", "--model", Golden.TinyModelDirectory, "--data", data, "--views", "1", "--resolution", "384",
            "--samples", "1000", "--device", "cpu", "--json", json], ["OMP_NUM_THREADS=1"]);
        run.WaitFor(text => text.Contains("obj_00000 ", StringComparison.Ordinal), "the first object's scores");
        run.Interrupt();
        var (code, error) = run.Finish();
        Assert.That(code, Is.EqualTo(130), error);
        var finished = System.Text.RegularExpressions.Regex.Match(error, $@"cover the (\d+) of {objects} object\(s\) finished");
        Assert.That(finished.Success, Is.True, error);
        var count = int.Parse(finished.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(count, Is.InRange(1, objects - 1), "at least the object it printed, and not the whole set");
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        Assert.That(document.RootElement.GetProperty("interrupted").GetBoolean(), Is.True);
        Assert.That(document.RootElement.GetProperty("object_count").GetInt32(), Is.EqualTo(count));
        Assert.That(Directory.GetFileSystemEntries(Folder, ".*"), Is.Empty, "no temporary file");
    }

    /// <summary>An `lrm` process (the apphost next to the tests) whose standard output and error are collected as they come.</summary>
    private sealed class LrmProcess
    {
        private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);
        private readonly Process _process;
        private readonly StringBuilder _error = new();
        private readonly StringBuilder _output = new();

        private LrmProcess(Process process) => _process = process;

        public static LrmProcess Start(IEnumerable<string> arguments, IEnumerable<string>? environment = null)
        {
            var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "lrm"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var setting in environment ?? [])
            {
                var equals = setting.IndexOf('=', StringComparison.Ordinal);
                start.Environment[setting[..equals]] = setting[(equals + 1)..];
            }
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }
            var run = new LrmProcess(new Process { StartInfo = start });
            run._process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (run._error)
                    {
                        run._error.Append(e.Data).Append('\n');
                    }
                }
            };
            run._process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (run._output)
                    {
                        run._output.Append(e.Data).Append('\n');
                    }
                }
            };
            run._process.Start();
            run._process.BeginErrorReadLine();
            run._process.BeginOutputReadLine();
            return run;
        }

        private string Error
        {
            get
            {
                lock (_error)
                {
                    return _error.ToString();
                }
            }
        }

        private string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>
        /// Waits until standard error or standard output satisfies <paramref name="seen"/>; fails (and kills the process) if
        /// it exits or takes too long first.
        /// </summary>
        public void WaitFor(Func<string, bool> seen, string what)
        {
            var clock = Stopwatch.StartNew();
            while (!seen(Error) && !seen(Output))
            {
                if (_process.HasExited || clock.Elapsed > Limit)
                {
                    var exited = _process.HasExited;
                    Kill();
                    Assert.Fail($"lrm {(exited ? "exited" : "took too long")} before {what}:\n{Error}");
                }
                Thread.Sleep(20);
            }
        }

        /// <summary>
        /// Sends SIGINT, as Ctrl+C in a terminal does: straight from this process (kill(2)), not through a `kill` program
        /// whose start-up on a loaded machine let the run go on for seconds.
        /// </summary>
        public void Interrupt()
        {
            const int sigint = 2;
            Assert.That(Signals.Kill(_process.Id, sigint), Is.EqualTo(0), $"kill({_process.Id}, SIGINT): errno {Marshal.GetLastPInvokeError()}");
        }

        /// <summary>Waits for the exit; returns the exit code and everything on standard error.</summary>
        public (int ExitCode, string Error) Finish()
        {
            if (!_process.WaitForExit(Limit))
            {
                Kill();
                Assert.Fail($"lrm did not exit within {Limit.TotalMinutes} minutes:\n{Error}");
            }
            _process.WaitForExit(); // drains the redirected streams
            var code = _process.ExitCode;
            _process.Dispose();
            return (code, Error);
        }

        private void Kill()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
        }
    }

    private static partial class Signals
    {
        [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        public static partial int Kill(int pid, int signal);
    }
}
