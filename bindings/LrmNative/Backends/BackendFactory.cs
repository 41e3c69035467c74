namespace LrmNative.Backends;

/// <summary>
/// Turns a requested <see cref="Device"/> into a backend: the one place that knows which backends this build has.
/// <see cref="Device.Auto"/> takes the CUDA backend when one can run here (a driver, a device and NVRTC) and falls back
/// to the CPU otherwise, saying why; an explicit CUDA request that cannot be served fails with one error giving the reason.
/// </summary>
internal static class BackendFactory
{
    /// <summary>The prefix of every "CUDA requested but not possible" message.</summary>
    public const string CudaUnavailable = "CUDA backend not available";

    /// <summary>Why a CUDA backend cannot run on cuda:<paramref name="ordinal"/> in this process, or null when it can.</summary>
    public static string? CudaUnavailableReason(int ordinal = 0) => CudaBackend.IsAvailable(out var reason, ordinal) ? null : reason;

    /// <summary>
    /// A backend for <paramref name="requested"/> with <paramref name="threads"/> CPU threads (0: the library default):
    /// the backend, the device it runs on, and for <see cref="Device.Auto"/> that fell back to the CPU, why.
    /// </summary>
    /// <exception cref="LrmUnsupportedException">CUDA was asked for explicitly and cannot be used here.</exception>
    public static (IBackend Backend, Device Device, string? Note) Create(Device requested, int threads)
    {
        if (requested.IsAuto)
        {
            var reason = CudaUnavailableReason();
            if (reason is null)
            {
                try
                {
                    var cuda = new CudaBackend();
                    return (cuda, cuda.Device, null);
                }
                catch (LrmException error)
                {
                    reason = error.Message;
                }
            }
            return (new CpuBackend(threads), Device.Cpu, $"{CudaUnavailable}: {reason}; running on the CPU");
        }
        if (requested.Kind == DeviceKind.Cuda)
        {
            try
            {
                var cuda = new CudaBackend(requested.Ordinal);
                return (cuda, cuda.Device, null);
            }
            catch (LrmCudaUnavailableException error)
            {
                throw new LrmUnsupportedException($"{CudaUnavailable}: {error.Message}");
            }
        }
        return (new CpuBackend(threads), Device.Cpu, null);
    }
}
