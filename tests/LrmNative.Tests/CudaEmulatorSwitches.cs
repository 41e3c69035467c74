using System.Runtime.InteropServices;
using System.Text;
using LrmNative.Backends;

namespace LrmNative.Tests;

/// <summary>
/// The CPU CUDA emulator's switches for tests (tests/cuda-emulator/driver.cpp and cublaslt.cpp, described at the top of
/// each): asynchronous faults as a GPU reports them, one injected failure of a named call, a cuBLASLt heuristic without
/// results, and cuBLASLt's live-object counters. They exist only where the CUDA tests run on the emulator (the
/// libraries LRM_CUDA_LIBRARY and LRM_CUBLASLT_LIBRARY name); <see cref="Require"/> skips a test elsewhere, saying why.
/// </summary>
internal static unsafe class EmulatorSwitches
{
    private static readonly Lazy<Library?> DriverLibrary = new(() => Library.Open("LRM_CUDA_LIBRARY", "lrm_emu_driver"));
    private static readonly Lazy<Library?> CublasLtLibrary = new(() => Library.Open("LRM_CUBLASLT_LIBRARY", "lrm_emu_cublaslt"));

    /// <summary>True when the CUDA driver in use is the emulator's, with its switches.</summary>
    public static bool Available => DriverLibrary.Value is not null && CublasLtLibrary.Value is not null;

    /// <summary>Skips the calling test unless the emulator's switches are available.</summary>
    public static void Require(string what)
    {
        if (!Available)
        {
            Assert.Ignore($"{what} needs the CPU CUDA emulator's switches (tests/cuda-emulator); a GPU cannot be made to do it on demand");
        }
    }

    /// <summary>Sets a switch of the emulated driver until the result is disposed.</summary>
    public static Setting Driver(string name, long value) => Set(DriverLibrary.Value, name, value);

    /// <summary>Sets a switch of the emulated cuBLASLt until the result is disposed.</summary>
    public static Setting CublasLt(string name, long value) => Set(CublasLtLibrary.Value, name, value);

    /// <summary>A switch or counter of the emulated cuBLASLt (live_handles, live_objects, no_algorithm).</summary>
    public static long CublasLtValue(string name) => Get(CublasLtLibrary.Value, name);

    private static Setting Set(Library? library, string name, long value)
    {
        if (library is null)
        {
            throw new InvalidOperationException("the emulator's switches are not available; call Require first");
        }
        var previous = Math.Max(Get(library, name), 0); // fail_next:… reads back -1: restoring clears it
        Call(library.Set, name, value);
        return new Setting(() => Call(library.Set, name, previous));
    }

    private static long Get(Library? library, string name)
    {
        if (library is null)
        {
            throw new InvalidOperationException("the emulator's switches are not available; call Require first");
        }
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* pointer = bytes)
        {
            return ((delegate* unmanaged<byte*, long>)library.Get)(pointer);
        }
    }

    private static void Call(nint set, string name, long value)
    {
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* pointer = bytes)
        {
            if (((delegate* unmanaged<byte*, long, int>)set)(pointer, value) != 0)
            {
                throw new InvalidOperationException($"the CUDA emulator has no switch '{name}'");
            }
        }
    }

    private sealed record Library(nint Set, nint Get)
    {
        // The same file the backend loaded (an exact path in the variable), so the handle is the loaded library's.
        public static Library? Open(string variable, string prefix) =>
            Environment.GetEnvironmentVariable(variable) is { Length: > 0 } path
            && NativeLibrary.TryLoad(path, out var handle)
            && NativeLibrary.TryGetExport(handle, prefix + "_set", out var set)
            && NativeLibrary.TryGetExport(handle, prefix + "_get", out var get)
                ? new Library(set, get)
                : null;
    }

    /// <summary>A switch set until disposed, when it gets its previous value back.</summary>
    internal sealed class Setting(Action restore) : IDisposable
    {
        private Action? _restore = restore;

        public void Dispose() => Interlocked.Exchange(ref _restore, null)?.Invoke();
    }
}

/// <summary>CUDA backends for tests that need one of their own (one a fault will break, one with other options).</summary>
internal static class CudaTestBackends
{
    /// <summary>A new CUDA backend with the shared test kernel cache, or Assert.Ignore("no CUDA device: …").</summary>
    public static CudaBackend Open(MatmulPrecision precision = MatmulPrecision.Float32, bool synchronous = true, string? kernelCache = null)
    {
        if (!CudaBackend.IsAvailable(out var reason))
        {
            Assert.Ignore($"no CUDA device: {reason}");
        }
        return new CudaBackend(new CudaBackendOptions
        {
            Precision = precision,
            SynchronizeEachLaunch = synchronous,
            KernelCacheDirectory = kernelCache ?? CudaTestDevice.KernelCacheDirectory,
        });
    }

    /// <summary>Skips the calling test unless <paramref name="cuda"/> runs its GEMMs through cuBLASLt.</summary>
    public static void RequireCublasLt(CudaBackend cuda)
    {
        if (cuda.CublasLtStatus.Contains("fp32 kernel", StringComparison.Ordinal))
        {
            Assert.Ignore($"no cuBLASLt here: {cuda.CublasLtStatus}");
        }
    }
}
