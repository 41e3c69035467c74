using System.Runtime.InteropServices;

namespace LrmNative.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM as a <see cref="CancellationToken"/> for the long commands (reconstruct, dataset synth and
/// render, eval, train). The first signal cancels <see cref="Token"/>: the command stops at its next check, finishes
/// the file it is writing (every output goes through a temporary file and a rename, so none is left half-written),
/// says what it kept and exits with 128 + the signal's number (130 for Ctrl+C, 143 for SIGTERM). A second signal ends
/// the process at once, as if nothing were listening.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource source;
    private readonly PosixSignalRegistration[] registrations;
    private readonly TextWriter log;
    private readonly string stopping;
    private int signals;

    private Interruption(TextWriter log, string stopping, bool listen, CancellationToken linked)
    {
        this.log = log;
        this.stopping = stopping;
        source = CancellationTokenSource.CreateLinkedTokenSource(linked);
        registrations = listen
            ? [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)]
            : [];
    }

    /// <summary>Cancelled by the first signal (or by the linked token).</summary>
    public CancellationToken Token => source.Token;

    /// <summary>The signal that cancelled <see cref="Token"/>, or null when none did.</summary>
    public PosixSignal? Signal { get; private set; }

    /// <summary>The exit code for a command that stopped because of <see cref="Signal"/>: 128 + its number (130, 143).</summary>
    public int ExitCode => Signal == PosixSignal.SIGTERM ? 143 : 130;

    /// <summary>
    /// Listens for SIGINT and SIGTERM while the command writes to the process's own standard error
    /// (<paramref name="log"/> is <see cref="Console.Error"/>); a command run in process by a host (a test) only follows
    /// <paramref name="linked"/>. <paramref name="stopping"/> completes "lrm: interrupted: …", e.g. "stopping after the
    /// current object".
    /// </summary>
    public static Interruption Listen(TextWriter log, string stopping, CancellationToken linked = default)
    {
        ArgumentNullException.ThrowIfNull(log);
        return new Interruption(log, stopping, listen: ReferenceEquals(log, Console.Error), linked);
    }

    /// <summary>True when <paramref name="error"/> is this command's own cancellation (by a signal or the linked token).</summary>
    public bool Caused(Exception error) => error is OperationCanceledException && source.IsCancellationRequested;

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref signals) > 1)
        {
            // The second signal: the default action, i.e. the process ends now.
            context.Cancel = false;
            return;
        }
        context.Cancel = true;
        Signal = context.Signal;
        log.WriteLine($"lrm: interrupted ({(context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "Ctrl+C")}): {stopping} (again to quit at once)");
        source.Cancel();
    }

    public void Dispose()
    {
        foreach (var registration in registrations)
        {
            registration.Dispose();
        }
        source.Dispose();
    }
}
