using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>
/// Counters of a <see cref="CudaBackend"/>'s caching allocator (<see cref="CudaBackend.MemoryStatistics"/>): device memory
/// freed by a tensor goes to a free list of its size class and is reused before the driver is asked again.
/// </summary>
/// <param name="InUseBytes">Bytes (rounded to size classes) held by live tensors and scratch buffers.</param>
/// <param name="PeakInUseBytes">Largest <paramref name="InUseBytes"/> seen.</param>
/// <param name="CachedBytes">Bytes in the free lists, ready for reuse.</param>
/// <param name="DriverAllocations">Allocations that reached the driver (cuMemAllocAsync / cuMemAlloc_v2).</param>
/// <param name="Reuses">Allocations served from a free list.</param>
public readonly record struct DeviceMemoryStatistics(long InUseBytes, long PeakInUseBytes, long CachedBytes, long DriverAllocations, long Reuses);

/// <summary>
/// A caching device allocator: requests are rounded up to a size class (powers of two up to
/// 1 MiB, then whole MiB), and released blocks go to a free list per class instead of back to
/// the driver, so steady-state inference makes no driver allocation per op. All work runs on
/// one stream, so a block released after its last use is safe to hand out again at once: the
/// next user's work is queued behind the last user's. Out of memory: the cache is returned to
/// the driver and the request retried once; then a typed exception says how much was asked
/// and how much is free. Dispose waits for the stream and gives every block back to the driver,
/// cached or still held by a tensor (which then releases nothing).
/// </summary>
internal sealed unsafe class DeviceAllocator : IDisposable
{
    private const long MinimumBytes = 512;
    private const long SmallLimit = 1 << 20;
    private readonly CudaContext _context;
    private readonly Dictionary<long, Stack<ulong>> _free = new();
    private readonly HashSet<ulong> _live = [];
    private readonly Lock _gate = new();
    private long _inUse, _peak, _cached, _driverAllocations, _reuses;
    private bool _disposed;

    public DeviceAllocator(CudaContext context) => _context = context;

    /// <summary>Current counters.</summary>
    public DeviceMemoryStatistics Statistics
    {
        get
        {
            lock (_gate)
            {
                return new DeviceMemoryStatistics(_inUse, _peak, _cached, _driverAllocations, _reuses);
            }
        }
    }

    /// <summary>The size class a request of <paramref name="bytes"/> is served from.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= MinimumBytes)
        {
            return MinimumBytes;
        }
        if (bytes <= SmallLimit)
        {
            return (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes);
        }
        return (bytes + SmallLimit - 1) / SmallLimit * SmallLimit;
    }

    /// <summary>A block of at least <paramref name="bytes"/> bytes, 256-byte aligned; dispose (or Release) it to return it.</summary>
    public DeviceBlock Allocate(long bytes, string what)
    {
        var size = SizeClass(Math.Max(bytes, 1));
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryGetValue(size, out var list) && list.Count > 0)
            {
                _cached -= size;
                _reuses++;
                return Track(list.Pop(), size);
            }
        }
        var address = AllocateFromDriver(size, bytes, what);
        lock (_gate)
        {
            _driverAllocations++;
            return Track(address, size);
        }
    }

    private DeviceBlock Track(ulong address, long size)
    {
        _live.Add(address);
        _inUse += size;
        _peak = Math.Max(_peak, _inUse);
        return new DeviceBlock(this, address, size);
    }

    private ulong AllocateFromDriver(long size, long requested, string what)
    {
        _context.MakeCurrent();
        for (var attempt = 0; ; attempt++)
        {
            ulong address;
            var result = _context.MemoryPoolsSupported
                ? CudaDriver.cuMemAllocAsync(&address, (nuint)size, _context.Stream)
                : CudaDriver.cuMemAlloc_v2(&address, (nuint)size);
            if (result == CUresult.CUDA_SUCCESS)
            {
                return address;
            }
            if (result != CUresult.CUDA_ERROR_OUT_OF_MEMORY)
            {
                _context.Check(result, $"allocating {requested} bytes for {what}", _context.MemoryPoolsSupported ? "cuMemAllocAsync" : "cuMemAlloc_v2");
            }
            if (attempt == 0)
            {
                TrimCache();
                continue;
            }
            var (free, total) = _context.MemoryInfo();
            DeviceMemoryStatistics stats = Statistics;
            throw new LrmOutOfMemoryException(
                $"CUDA out of memory on cuda:{_context.Ordinal} ({_context.Name}): {what} asked for {Format(requested)}, "
                + $"{Format(free)} of {Format(total)} free; this backend holds {Format(stats.InUseBytes)} in live tensors");
        }
    }

    /// <summary>Gives every cached block back to the driver and waits until the driver has them.</summary>
    public void TrimCache()
    {
        List<ulong> blocks;
        lock (_gate)
        {
            blocks = _free.Values.SelectMany(list => list).ToList();
            _free.Clear();
            _cached = 0;
        }
        _context.MakeCurrent();
        foreach (var address in blocks)
        {
            _context.Check(FreeToDriver(address), null, _context.MemoryPoolsSupported ? "cuMemFreeAsync" : "cuMemFree_v2");
        }
        _context.Synchronize("returning cached device memory");
    }

    private CUresult FreeToDriver(ulong address) => _context.MemoryPoolsSupported
        ? CudaDriver.cuMemFreeAsync(address, _context.Stream)
        : CudaDriver.cuMemFree_v2(address);

    /// <summary>Back to the free list (no CUDA call: safe from finalizers).</summary>
    internal void Return(ulong address, long size)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return; // the context and its memory are gone
            }
            _live.Remove(address);
            _inUse -= size;
            if (!_free.TryGetValue(size, out var list))
            {
                _free[size] = list = new Stack<ulong>();
            }
            list.Push(address);
            _cached += size;
        }
    }

    /// <summary>
    /// Waits for the stream, then gives every block back to the driver: the cached ones and those still live (a tensor
    /// not disposed before its backend; its later Release does nothing). Best effort on a context lost to a fault.
    /// </summary>
    public void Dispose()
    {
        List<ulong> blocks;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            blocks = [.. _free.Values.SelectMany(list => list), .. _live];
            _free.Clear();
            _live.Clear();
            _cached = _inUse = 0;
        }
        if (!_context.TryMakeCurrent())
        {
            return;
        }
        // Results ignored: a context lost to a fault refuses these, and releasing it frees everything with it.
        CudaDriver.cuStreamSynchronize(_context.Stream); // the last kernels may still use live blocks
        foreach (var address in blocks)
        {
            FreeToDriver(address);
        }
        CudaDriver.cuStreamSynchronize(_context.Stream);
    }

    internal static string Format(long bytes) => HostMemory.FormatBytes(bytes);
}

/// <summary>One allocation of a <see cref="DeviceAllocator"/>; releasing twice is harmless.</summary>
internal sealed class DeviceBlock : IDeviceBuffer, IDisposable
{
    private DeviceAllocator? _owner;

    internal DeviceBlock(DeviceAllocator owner, ulong address, long size)
    {
        _owner = owner;
        Allocator = owner;
        Address = address;
        Size = size;
    }

    /// <summary>The allocator (so the backend) the block came from.</summary>
    public DeviceAllocator Allocator { get; }

    /// <inheritdoc />
    public ulong Address { get; }

    /// <summary>Size class in bytes.</summary>
    public long Size { get; }

    /// <inheritdoc />
    public void Release() => Interlocked.Exchange(ref _owner, null)?.Return(Address, Size);

    /// <inheritdoc />
    public void Dispose() => Release();
}
