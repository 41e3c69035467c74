using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>
/// Page-locked host buffers for host ↔ device copies: the DMA engine reads and writes them
/// directly (pageable memory goes through a driver bounce buffer at a fraction of the speed).
/// Two buffers of up to 64 MiB alternate, so copying the next chunk into one overlaps the
/// transfer of the other; an event per buffer says when it may be overwritten.
/// </summary>
internal sealed unsafe class PinnedStaging : IDisposable
{
    private const long ChunkBytes = 64L << 20;
    private readonly CudaContext _context;
    private readonly void*[] _buffers = new void*[2];
    private readonly nint[] _events = new nint[2];
    private readonly long[] _capacity = new long[2];

    public PinnedStaging(CudaContext context)
    {
        _context = context;
        try
        {
            for (var i = 0; i < 2; i++)
            {
                nint @event;
                _context.Check(CudaDriver.cuEventCreate(&@event, CudaFlags.CU_EVENT_DISABLE_TIMING));
                _events[i] = @event;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void* Buffer(int index, long bytes)
    {
        if (_capacity[index] >= bytes)
        {
            return _buffers[index];
        }
        _context.Check(CudaDriver.cuEventSynchronize(_events[index]));
        if (_buffers[index] is not null)
        {
            _context.Check(CudaDriver.cuMemFreeHost(_buffers[index]));
            _buffers[index] = null;
            _capacity[index] = 0;
        }
        var size = Math.Min(ChunkBytes, Math.Max(bytes, 1 << 20));
        void* pointer;
        _context.Check(CudaDriver.cuMemAllocHost_v2(&pointer, (nuint)size), $"asked for {DeviceAllocator.Format(size)} of pinned host memory for copies");
        _buffers[index] = pointer;
        _capacity[index] = size;
        return pointer;
    }

    /// <summary>Queues host → device; the host memory may be reused when this returns.</summary>
    public void ToDevice(ulong destination, void* source, long bytes)
    {
        _context.MakeCurrent();
        var chunk = 0;
        for (long offset = 0; offset < bytes; offset += ChunkBytes, chunk++)
        {
            var index = chunk & 1;
            var length = Math.Min(ChunkBytes, bytes - offset);
            var buffer = Buffer(index, length);
            _context.Check(CudaDriver.cuEventSynchronize(_events[index])); // its previous transfer is done
            System.Buffer.MemoryCopy((byte*)source + offset, buffer, length, length);
            _context.Check(CudaDriver.cuMemcpyHtoDAsync_v2(destination + (ulong)offset, buffer, (nuint)length, _context.Stream));
            _context.Check(CudaDriver.cuEventRecord(_events[index], _context.Stream));
        }
    }

    /// <summary>Device → host, after everything queued before it; returns when the data is in <paramref name="destination"/>.</summary>
    public void ToHost(void* destination, ulong source, long bytes)
    {
        _context.MakeCurrent();
        for (long offset = 0; offset < bytes; offset += ChunkBytes)
        {
            var length = Math.Min(ChunkBytes, bytes - offset);
            var buffer = Buffer(0, length);
            _context.Check(CudaDriver.cuEventSynchronize(_events[0]));
            _context.Check(CudaDriver.cuMemcpyDtoHAsync_v2(buffer, source + (ulong)offset, (nuint)length, _context.Stream));
            // A kernel fault queued earlier surfaces here at the latest (_context names the kernels).
            _context.Synchronize("copying to the host");
            System.Buffer.MemoryCopy(buffer, (byte*)destination + offset, length, length);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        for (var i = 0; i < 2; i++)
        {
            if (_events[i] != 0)
            {
                CudaDriver.cuEventSynchronize(_events[i]);
                CudaDriver.cuEventDestroy_v2(_events[i]);
                _events[i] = 0;
            }
            if (_buffers[i] is not null)
            {
                CudaDriver.cuMemFreeHost(_buffers[i]);
                _buffers[i] = null;
            }
        }
    }
}
