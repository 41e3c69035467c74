using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>
/// Grid or block dimensions. Counted in long, so a grid too large for the device is never wrapped around by a cast:
/// the launch checks it against the limits (<see cref="CheckGrid"/>) and names the kernel.
/// </summary>
internal readonly record struct Dim3(long X, long Y = 1, long Z = 1)
{
    /// <summary>Most blocks of a grid in x (2³¹ − 1).</summary>
    public const long MaxGridX = int.MaxValue;

    /// <summary>Most blocks of a grid in y and in z.</summary>
    public const long MaxGridYZ = 65535;

    /// <summary>⌈count / per⌉ blocks (at least one).</summary>
    public static long CeilDiv(long count, long per) => Math.Max(1, count / per + (count % per > 0 ? 1 : 0));

    /// <summary>A 1-D grid for a grid-stride loop over <paramref name="count"/> elements: enough blocks to fill the device, no more.</summary>
    public static Dim3 Stride(long count, int threads, int multiprocessors) =>
        new(Math.Clamp(CeilDiv(count, threads), 1, (long)multiprocessors * 32));

    /// <summary>Throws unless this grid fits the device's limits (2³¹ − 1 blocks in x, 65535 in y and z).</summary>
    public void CheckGrid(string kernel)
    {
        if (X < 0 || Y < 0 || Z < 0 || X > MaxGridX || Y > MaxGridYZ || Z > MaxGridYZ)
        {
            throw new LrmUnsupportedException(
                $"kernel '{kernel}': grid ({X}, {Y}, {Z}) exceeds the device's limits (2³¹ − 1 blocks in x, 65535 in y and z); the input is too large for it");
        }
    }

    public static implicit operator Dim3(long x) => new(x);

    public override string ToString() => $"({X}, {Y}, {Z})";
}

/// <summary>A kernel entry point of a loaded module.</summary>
internal readonly record struct CudaKernel(nint Function, string Name);

/// <summary>
/// A loaded module: NVRTC output (CUBIN or PTX) on the backend's context, with its kernels
/// looked up by name once.
/// </summary>
internal sealed unsafe class CudaModule : IDisposable
{
    private readonly Dictionary<string, CudaKernel> _kernels = new(StringComparer.Ordinal);
    private nint _module;

    private readonly CudaContext _context;

    public CudaModule(CudaContext context, string name, CompiledModule compiled)
    {
        _context = context;
        Name = name;
        Compiled = compiled;
        nint module;
        CUresult result;
        fixed (byte* image = compiled.Image)
        {
            result = CudaDriver.cuModuleLoadData(&module, image);
        }
        if (result != CUresult.CUDA_SUCCESS)
        {
            context.Check(result, LoadFailure(context, name, compiled, result), "cuModuleLoadData");
        }
        _module = module;
    }

    /// <summary>
    /// Compiles (or takes from the cache) and loads kernels/<paramref name="name"/>. A cached image the driver refuses
    /// (damaged, or another compiler's under a colliding name) is deleted and compiled once more.
    /// </summary>
    public static CudaModule Load(CudaContext context, KernelCompiler compiler, string name, string source,
        IReadOnlyDictionary<string, string> headers)
    {
        var compiled = compiler.Compile(name, source, headers);
        try
        {
            return new CudaModule(context, name, compiled);
        }
        catch (LrmCudaException) when (compiled.CacheHit && !context.IsLost)
        {
            KernelCompiler.Evict(compiled);
            return new CudaModule(context, name, compiler.Compile(name, source, headers, refresh: true));
        }
    }

    // What was being loaded; for the errors of an image the driver cannot use, which NVRTC made it for which driver.
    private static string LoadFailure(CudaContext context, string name, CompiledModule compiled, CUresult result)
    {
        var what = $"loading kernels/{name}, {DeviceAllocator.Format(compiled.Image.Length)} of {(compiled.IsCubin ? "CUBIN" : "PTX")} ({compiled.CachePath})";
        return (int)result is 200 or 209 or 218 or 222 // invalid image, no binary for the GPU, invalid or unsupported PTX
            ? $"{what}; made by {compiled.Compiler} for a driver of CUDA {context.DriverVersion / 1000}.{context.DriverVersion % 1000 / 10}: "
                + "a driver older than the NVRTC cannot load its code (use the NVRTC of a CUDA no newer than the driver, LRM_NVRTC_LIBRARY, or update the driver)"
            : what;
    }

    /// <summary>The .cu file.</summary>
    public string Name { get; }

    /// <summary>How it was compiled.</summary>
    public CompiledModule Compiled { get; }

    /// <summary>The kernel <paramref name="name"/> (extern "C", so the source name is the symbol).</summary>
    public CudaKernel Kernel(string name)
    {
        if (_kernels.TryGetValue(name, out var kernel))
        {
            return kernel;
        }
        var bytes = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        nint function;
        fixed (byte* pointer = bytes)
        {
            _context.Check(CudaDriver.cuModuleGetFunction(&function, _module, pointer), $"kernel '{name}' in kernels/{Name}");
        }
        kernel = new CudaKernel(function, name);
        _kernels[name] = kernel;
        return kernel;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_module != 0)
        {
            CudaDriver.cuModuleUnload(_module);
            _module = 0;
        }
    }
}

/// <summary>
/// Typed, allocation-free kernel launches: the generic overloads (KernelLauncher.Generated.cs, written by
/// tools/generate-kernel-launcher.py for 1–20 arguments) put each argument's address in a stackalloc'ed array and
/// queue the kernel on the backend's stream. Argument types must match the kernel's parameters
/// exactly (ulong for pointers, int, long for long long, float, double). In synchronous mode
/// (debugging and tests) every launch waits for the kernel and a fault names it; otherwise a
/// fault surfaces at whatever driver call comes next and <see cref="CudaContext.Check"/> reports it
/// as a fault of the kernels queued since the last synchronisation, naming the last one.
/// </summary>
internal sealed unsafe partial class KernelLauncher
{
    private readonly CudaContext _context;

    public KernelLauncher(CudaContext context, bool synchronous)
    {
        _context = context;
        Synchronous = synchronous;
    }

    /// <summary>
    /// Compares the C# argument sizes with the kernel's parameters (cuFuncGetParamInfo, CUDA 12.4+):
    /// a long passed for an int, or a missing argument, would otherwise read garbage silently.
    /// </summary>
    private static void CheckSignature(CudaKernel kernel, ReadOnlySpan<int> sizes)
    {
        try
        {
            for (var i = 0; i <= sizes.Length; i++)
            {
                nuint offset, size;
                var result = CudaDriver.cuFuncGetParamInfo(kernel.Function, (nuint)i, &offset, &size);
                if (i == sizes.Length)
                {
                    if (result == CUresult.CUDA_SUCCESS)
                    {
                        throw new LrmInternalException($"kernel '{kernel.Name}' takes more than the {sizes.Length} arguments passed");
                    }
                    return;
                }
                if (result == CUresult.CUDA_ERROR_NOT_SUPPORTED)
                {
                    return; // driver without parameter reflection
                }
                if (result != CUresult.CUDA_SUCCESS)
                {
                    throw new LrmInternalException($"kernel '{kernel.Name}' takes {i} arguments, {sizes.Length} were passed ({CudaCheck.Describe(result)})");
                }
                if ((int)size != sizes[i])
                {
                    throw new LrmInternalException($"kernel '{kernel.Name}' parameter {i} is {size} bytes, the argument passed is {sizes[i]} bytes");
                }
            }
        }
        catch (EntryPointNotFoundException)
        {
            // Drivers before CUDA 12.4 cannot reflect parameters.
        }
    }

    /// <summary>Wait for every kernel and check it (LRM_CUDA_SYNC=1 or the backend option).</summary>
    public bool Synchronous { get; set; }

    /// <summary>Kernels launched so far.</summary>
    public long LaunchCount { get; private set; }

    private readonly HashSet<nint> _checkedSignatures = [];

    private void LaunchRaw(CudaKernel kernel, Dim3 grid, Dim3 block, uint sharedBytes, void** arguments, ReadOnlySpan<int> sizes)
    {
        if (Synchronous && _checkedSignatures.Add(kernel.Function))
        {
            CheckSignature(kernel, sizes);
        }
        grid.CheckGrid(kernel.Name);
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0)
        {
            return;
        }
        if (block.X is < 1 or > 1024 || block.Y is < 1 or > 1024 || block.Z is < 1 or > 64)
        {
            throw new LrmInternalException($"kernel '{kernel.Name}': block {block} is not a CUDA block shape");
        }
        _context.Check(CudaDriver.cuLaunchKernel(kernel.Function, (uint)grid.X, (uint)grid.Y, (uint)grid.Z, (uint)block.X, (uint)block.Y, (uint)block.Z,
            sharedBytes, _context.Stream, arguments, null), $"launching kernel '{kernel.Name}' grid {grid} block {block}");
        _context.Queued(kernel.Name);
        LaunchCount++;
        if (Synchronous)
        {
            var result = CudaDriver.cuStreamSynchronize(_context.Stream);
            if (result != CUresult.CUDA_SUCCESS)
            {
                throw _context.KernelFailed(kernel.Name, result);
            }
            _context.Synchronized();
        }
    }
}
