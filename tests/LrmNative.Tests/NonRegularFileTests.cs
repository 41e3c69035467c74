using System.Diagnostics;
using System.IO.Pipes;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// Inputs that are not regular files — a process substitution's pipe (<c>&lt;(cat x)</c> is a /dev/fd link to a pipe),
/// a named pipe, an endless device — get one clear error naming the path from every reader that needs a file's size
/// (safetensors, .npy, images), never a stack trace, a hang on a pipe without a writer, or a read until memory runs out.
/// </summary>
[TestFixture]
public sealed class NonRegularFileTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("lrm-nonregular-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    private static readonly (string Name, Action<string> Read)[] Readers =
    [
        ("safetensors", path => SafeTensorsFile.Open(path).Dispose()),
        ("npy", path => Npy.ReadFloat32(path).Dispose()),
        ("image", path => Image.Load(path).Dispose()),
    ];

    // The reader's error for `path`, within 20 s (a reader that opened a pipe without a writer would wait for ever).
    private static string ErrorOf(Action<string> read, string path)
    {
        var task = Task.Run(() => read(path));
        Assert.That(((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(20)), Is.True, $"{path}: the reader is still waiting");
        var error = task.Exception?.InnerException;
        Assert.That(error, Is.InstanceOf<LrmFormatException>(), $"{path}: {error}");
        return error!.Message;
    }

    [Test]
    public void AnonymousPipeBehindAProcFdLinkIsNamedNotAStackTrace()
    {
        using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
        using var client = new AnonymousPipeClientStream(PipeDirection.In, pipe.ClientSafePipeHandle);
        var path = $"/proc/self/fd/{client.SafePipeHandle.DangerousGetHandle()}";
        Assert.That(new FileInfo(path).LinkTarget, Does.StartWith("pipe:"), "the shape of <(cat x)");
        foreach (var (name, read) in Readers)
        {
            Assert.That(ErrorOf(read, path), Does.Contain(path).And.Contain("not a regular file"), name);
        }
    }

    [Test]
    public void NamedPipeWithoutAWriterIsRefusedBeforeItIsOpened()
    {
        var fifo = Path.Combine(_folder, "fifo");
        using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]))!)
        {
            mkfifo.WaitForExit();
            Assert.That(mkfifo.ExitCode, Is.Zero, "mkfifo");
        }
        foreach (var (name, read) in Readers)
        {
            Assert.That(ErrorOf(read, fifo), Does.Contain(fifo).And.Contain("0 bytes"), name);
        }
    }

    [Test]
    public void EndlessDeviceIsRefusedNotReadUntilMemoryRunsOut()
    {
        foreach (var (name, read) in Readers)
        {
            Assert.That(ErrorOf(read, "/dev/zero"), Does.Contain("/dev/zero").And.Contain("0 bytes"), name);
        }
    }

    [Test]
    public void MissingFileIsStillNotFound()
    {
        var missing = Path.Combine(_folder, "missing");
        foreach (var (name, read) in Readers)
        {
            Assert.That(ErrorOf(read, missing), Does.Contain(missing).And.Contain("not found"), name);
        }
    }

    [Test]
    public void TurntableFrameCountIsBounded()
    {
        Assert.That(Camera.Turntable(Camera.MaxTurntableFrames), Has.Count.EqualTo(Camera.MaxTurntableFrames));
        var error = Assert.Throws<LrmInvalidArgumentException>(() => Camera.Turntable(int.MaxValue))!;
        Assert.That(error.Message, Does.Contain("1..100000").And.Contain($"{int.MaxValue}"));
    }
}
