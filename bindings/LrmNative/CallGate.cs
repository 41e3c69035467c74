using System.Collections.Concurrent;

namespace LrmNative;

/// <summary>
/// One <see cref="Reconstructor"/>'s calls, and those of the <see cref="Reconstruction"/>s it made, one at a time: they
/// share the weights, the backend's stream, its staging buffers and scratch, which are not safe to use from two threads
/// at once (the CUDA backend's pinned staging buffer, the lazily made projected planes). Re-entrant on one thread (a
/// turntable renders frame by frame; a progress callback may call back in).
/// <para>
/// Disposal never waits: <see cref="Retire"/> frees at once when no call is in flight and otherwise leaves the freeing
/// to the call in flight, which does it as it leaves — so a UI thread can dispose while a worker still runs, the
/// worker's call finishes with valid memory, and nothing deadlocks on a callback that waits for the UI thread.
/// </para>
/// </summary>
internal sealed class CallGate
{
    private readonly Lock _lock = new();
    private readonly ConcurrentQueue<Action> _retired = new();
    private int _depth; // calls of the holding thread (re-entry); read and written only while holding _lock

    /// <summary>Waits for the calls of other threads to finish, then holds the gate until the scope is disposed.</summary>
    public Scope Enter()
    {
        _lock.Enter();
        _depth++;
        return new Scope(this);
    }

    /// <summary>
    /// Frees with <paramref name="free"/> once no call is in flight: now if the gate is free (or held by this thread's
    /// outermost call, which frees as it leaves), else when the call in flight leaves. Returns at once either way.
    /// </summary>
    public void Retire(Action free)
    {
        _retired.Enqueue(free);
        Interlocked.MemoryBarrier(); // the queue before the gate: pairs with the barrier in Leave
        Drain();
    }

    private void Leave()
    {
        try
        {
            if (--_depth == 0)
            {
                RunRetired();
            }
        }
        finally
        {
            _lock.Exit();
        }
        Interlocked.MemoryBarrier(); // the gate before the queue: a Retire that found the gate held is seen here
        Drain();
    }

    // Frees what was retired when the gate can be taken without waiting; the holder does it otherwise (also when the
    // holder is this thread, inside a call: its outermost Leave frees).
    private void Drain()
    {
        while (!_retired.IsEmpty && _lock.TryEnter())
        {
            bool inCall;
            try
            {
                inCall = _depth != 0;
                if (!inCall)
                {
                    RunRetired();
                }
            }
            finally
            {
                _lock.Exit();
            }
            if (inCall)
            {
                return;
            }
        }
    }

    private void RunRetired()
    {
        List<Exception>? errors = null;
        while (_retired.TryDequeue(out var free))
        {
            try
            {
                free();
            }
            catch (Exception error)
            {
                (errors ??= []).Add(error);
            }
        }
        if (errors is not null)
        {
            throw errors.Count == 1 ? errors[0] : new AggregateException(errors);
        }
    }

    /// <summary>Holds the gate from <see cref="Enter"/> until disposed.</summary>
    internal readonly struct Scope(CallGate gate) : IDisposable
    {
        /// <summary>Leaves the gate; the outermost call frees what was retired meanwhile.</summary>
        public void Dispose() => gate.Leave();
    }
}
