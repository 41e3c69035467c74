using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using LrmNative.Interop;
using LrmNative.IO;

namespace LrmNative.Backends.Cuda;

/// <summary>The kernel sources embedded in this assembly (kernels/*.cu and kernels/*.cuh).</summary>
internal static class KernelSources
{
    private const string Prefix = "kernels/";
    private static readonly Lazy<IReadOnlyDictionary<string, string>> All = new(Load);

    /// <summary>Every embedded file by name ("attention.cu", "lrm_common.cuh", …).</summary>
    public static IReadOnlyDictionary<string, string> Files => All.Value;

    /// <summary>The headers (.cuh) every program is given, by include name.</summary>
    public static IReadOnlyDictionary<string, string> Headers =>
        Files.Where(pair => pair.Key.EndsWith(".cuh", StringComparison.Ordinal)).ToDictionary(pair => pair.Key, pair => pair.Value);

    /// <summary>The source of one .cu file.</summary>
    public static string Source(string name) => Files.TryGetValue(name, out var text)
        ? text
        : throw new LrmInternalException($"kernel source '{name}' is not embedded in {typeof(KernelSources).Assembly.GetName().Name}");

    private static Dictionary<string, string> Load()
    {
        var assembly = typeof(KernelSources).Assembly;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(name => name.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            files[resource[Prefix.Length..]] = reader.ReadToEnd();
        }
        return files;
    }
}

/// <summary>A compiled kernel module: CUBIN for the device's architecture, or PTX when NVRTC is older than the device.</summary>
/// <param name="Image">NUL-terminated for PTX; as NVRTC wrote it for CUBIN.</param>
/// <param name="IsCubin">True for CUBIN.</param>
/// <param name="CacheHit">True when it came from the disk cache.</param>
/// <param name="CachePath">Where it is cached.</param>
/// <param name="Compiler">Which NVRTC made it, for which target, e.g. "NVRTC 12.4 at /usr/local/cuda/lib64/libnvrtc.so.12.4.127 (…), sm_90".</param>
internal sealed record CompiledModule(byte[] Image, bool IsCubin, bool CacheHit, string CachePath, string Compiler);

/// <summary>
/// Compiles kernels with NVRTC at first use and caches the result on disk, keyed by a SHA-256 of
/// the source, every header, the options, the target architecture and the compiler itself (NVRTC's
/// version and the file it was loaded from, with its size and time: the CPU CUDA emulator's NVRTC says
/// 12.4 too), so a change to any of them compiles afresh and nothing stale is ever loaded. A cached
/// image that cannot be NVRTC's output (<see cref="LooksLoadable"/>) is compiled afresh, and one the
/// driver refuses is deleted by <see cref="CudaModule.Load"/> and compiled once more. Compile errors throw
/// <see cref="LrmKernelCompileException"/> with NVRTC's full log. The cache folder is
/// LRM_KERNEL_CACHE, else $XDG_CACHE_HOME/lrm/kernels, else ~/.cache/lrm/kernels.
/// </summary>
internal sealed unsafe class KernelCompiler
{
    private const string FormatVersion = "lrm-kernel-cache-2";
    private const ushort ElfMachineCuda = 190; // EM_CUDA
    private static readonly Lazy<string> Identity = new(DescribeNvrtc);
    private int _hits, _misses;

    /// <param name="cacheDirectory">Cache folder.</param>
    /// <param name="major">Compute capability major of the target.</param>
    /// <param name="minor">Compute capability minor of the target.</param>
    public KernelCompiler(string cacheDirectory, int major, int minor)
    {
        CacheDirectory = cacheDirectory;
        Major = major;
        Minor = minor;
    }

    /// <summary>Cache folder.</summary>
    public string CacheDirectory { get; }

    /// <summary>Target compute capability major.</summary>
    public int Major { get; }

    /// <summary>Target compute capability minor.</summary>
    public int Minor { get; }

    /// <summary>Modules loaded from the cache.</summary>
    public int CacheHits => _hits;

    /// <summary>Modules NVRTC compiled.</summary>
    public int CacheMisses => _misses;

    /// <summary>LRM_KERNEL_CACHE, else $XDG_CACHE_HOME/lrm/kernels, else ~/.cache/lrm/kernels.</summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            if (Environment.GetEnvironmentVariable("LRM_KERNEL_CACHE") is { Length: > 0 } explicitDirectory)
            {
                return explicitDirectory;
            }
            var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "lrm", "kernels");
        }
    }

    /// <summary>True when NVRTC can be loaded; otherwise <paramref name="reason"/> says why.</summary>
    public static bool IsAvailable(out string reason)
    {
        if (!LibraryResolver.TryLoad(LibraryResolver.Nvrtc, out _, out var detail))
        {
            reason = $"no NVRTC library ({detail})";
            return false;
        }
        reason = detail;
        return true;
    }

    /// <summary>NVRTC's version as (major, minor).</summary>
    public static (int Major, int Minor) NvrtcVersion()
    {
        int major, minor;
        NvrtcCheck.Check(Nvrtc.nvrtcVersion(&major, &minor));
        return (major, minor);
    }

    /// <summary>The architectures NVRTC can generate CUBIN for, e.g. [75, 80, 86, 89, 90, …].</summary>
    public static int[] SupportedArchitectures()
    {
        int count;
        NvrtcCheck.Check(Nvrtc.nvrtcGetNumSupportedArchs(&count));
        var architectures = new int[count];
        fixed (int* pointer = architectures)
        {
            NvrtcCheck.Check(Nvrtc.nvrtcGetSupportedArchs(pointer));
        }
        return architectures;
    }

    /// <summary>
    /// The NVRTC in use: version, the file it was loaded from (a full path, links resolved), its size and modification
    /// time. Two compilers that report the same version (a CUDA 12.4 NVRTC and the CPU CUDA emulator's) differ here.
    /// </summary>
    public static string CompilerIdentity => Identity.Value;

    private static string DescribeNvrtc()
    {
        var (major, minor) = NvrtcVersion();
        var file = LibraryResolver.LoadedFile(LibraryResolver.Nvrtc, "nvrtcVersion");
        if (file is null || !File.Exists(file))
        {
            return $"NVRTC {major}.{minor} at {LibraryResolver.LoadedPath(LibraryResolver.Nvrtc) ?? "an unknown file"}";
        }
        var info = new FileInfo(file);
        return $"NVRTC {major}.{minor} at {file} ({info.Length} bytes, {info.LastWriteTimeUtc.ToString("O", CultureInfo.InvariantCulture)})";
    }

    /// <summary>
    /// Whether a cached image can be NVRTC's output: a CUBIN is a 64-bit ELF file for EM_CUDA (190), whatever the GPU
    /// (the CPU CUDA emulator's is one too, holding its host code inside); PTX is text ending in NUL. Anything else — a
    /// truncated or overwritten file, a host library of an older emulator — is compiled afresh, never handed to the driver.
    /// </summary>
    internal static bool LooksLoadable(ReadOnlySpan<byte> image, bool cubin) => cubin
        ? image.Length >= 64 && image[..4].SequenceEqual((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F']) && image[4] == 2
            && BinaryPrimitives.ReadUInt16LittleEndian(image[18..]) == ElfMachineCuda
        : image.Length > 1 && image[^1] == 0 && image[0] != 0x7F;

    /// <summary>The cache key: hex SHA-256 over everything that changes the compiled code.</summary>
    public static string CacheKey(string name, string source, IReadOnlyDictionary<string, string> headers,
        IReadOnlyList<string> options, string architecture, string compilerIdentity)
    {
        var text = new StringBuilder();
        text.Append(FormatVersion).Append('\0').Append(name).Append('\0').Append(source).Append('\0');
        foreach (var (headerName, headerText) in headers.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            text.Append(headerName).Append('\0').Append(headerText).Append('\0');
        }
        foreach (var option in options)
        {
            text.Append(option).Append('\0');
        }
        text.Append(architecture).Append('\0').Append(compilerIdentity);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Compiles (or loads from the cache, unless <paramref name="refresh"/>) one .cu program with the embedded headers.</summary>
    public CompiledModule Compile(string name, string source, IReadOnlyDictionary<string, string> headers,
        IReadOnlyList<string>? extraOptions = null, bool refresh = false)
    {
        // CUBIN for the device when NVRTC knows it; else PTX of the newest architecture it knows,
        // which the driver compiles for the device at load.
        var wanted = Major * 10 + Minor;
        var supported = SupportedArchitectures();
        var cubin = supported.Contains(wanted);
        var target = cubin ? wanted : supported.Where(a => a <= wanted).DefaultIfEmpty(supported.Min()).Max();
        var architecture = cubin ? $"sm_{target}" : $"compute_{target}";
        var options = new List<string>
        {
            $"--gpu-architecture={architecture}",
            "-std=c++17",
            "--fmad=true",
            "-DLRM_NVRTC=1",
        };
        if (extraOptions is not null)
        {
            options.AddRange(extraOptions);
        }
        var compiler = $"{CompilerIdentity}, {architecture}";
        var key = CacheKey(name, source, headers, options, architecture, CompilerIdentity);
        var path = Path.Combine(CacheDirectory, $"{Path.GetFileNameWithoutExtension(name)}-{architecture}-{key[..32]}.{(cubin ? "cubin" : "ptx")}");
        if (!refresh && File.Exists(path))
        {
            try
            {
                var cached = File.ReadAllBytes(path);
                if (LooksLoadable(cached, cubin))
                {
                    Interlocked.Increment(ref _hits);
                    return new CompiledModule(cached, cubin, true, path, compiler);
                }
                // Not NVRTC's output: compile afresh and overwrite it.
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                // Unreadable cache entry (e.g. another user's in a shared LRM_KERNEL_CACHE): compile afresh and overwrite it.
            }
        }
        var image = CompileWithNvrtc(name, source, headers, options, cubin, architecture);
        Interlocked.Increment(ref _misses);
        try
        {
            AtomicFile.Write(path, stream => stream.Write(image));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            // A read-only cache costs a recompile next time, not a failure now.
        }
        return new CompiledModule(image, cubin, false, path, compiler);
    }

    /// <summary>Deletes a cache entry the driver refused (best effort: a read-only cache stays as it is).</summary>
    public static void Evict(CompiledModule module)
    {
        try
        {
            File.Delete(module.CachePath);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            // Compile afresh anyway; writing the new image replaces it if it can.
        }
    }

    private static byte[] CompileWithNvrtc(string name, string source, IReadOnlyDictionary<string, string> headers,
        List<string> options, bool cubin, string architecture)
    {
        var strings = new List<nint>();
        nint program = 0;
        try
        {
            var headerList = headers.OrderBy(pair => pair.Key, StringComparer.Ordinal).ToList();
            var headerTexts = stackalloc byte*[Math.Max(headerList.Count, 1)];
            var headerNames = stackalloc byte*[Math.Max(headerList.Count, 1)];
            for (var i = 0; i < headerList.Count; i++)
            {
                headerTexts[i] = Utf8(headerList[i].Value, strings);
                headerNames[i] = Utf8(headerList[i].Key, strings);
            }
            NvrtcCheck.Check(Nvrtc.nvrtcCreateProgram(&program, Utf8(source, strings), Utf8(name, strings), headerList.Count,
                headerTexts, headerNames), name);
            var optionPointers = stackalloc byte*[options.Count];
            for (var i = 0; i < options.Count; i++)
            {
                optionPointers[i] = Utf8(options[i], strings);
            }
            var compiled = Nvrtc.nvrtcCompileProgram(program, options.Count, optionPointers);
            if (compiled != nvrtcResult.NVRTC_SUCCESS)
            {
                var log = ProgramLog(program);
                if (compiled == nvrtcResult.NVRTC_ERROR_COMPILATION)
                {
                    throw new LrmKernelCompileException(
                        $"NVRTC could not compile kernels/{name} for {architecture} ({string.Join(' ', options)}):\n{log}", log);
                }
                NvrtcCheck.Check(compiled, $"kernels/{name}: {log}");
            }
            nuint size;
            if (cubin)
            {
                NvrtcCheck.Check(Nvrtc.nvrtcGetCUBINSize(program, &size));
                var image = new byte[(int)size];
                fixed (byte* pointer = image)
                {
                    NvrtcCheck.Check(Nvrtc.nvrtcGetCUBIN(program, pointer));
                }
                return image;
            }
            NvrtcCheck.Check(Nvrtc.nvrtcGetPTXSize(program, &size)); // includes the terminating NUL
            var ptx = new byte[(int)size];
            fixed (byte* pointer = ptx)
            {
                NvrtcCheck.Check(Nvrtc.nvrtcGetPTX(program, pointer));
            }
            return ptx;
        }
        finally
        {
            if (program != 0)
            {
                Nvrtc.nvrtcDestroyProgram(&program);
            }
            foreach (var pointer in strings)
            {
                System.Runtime.InteropServices.Marshal.FreeHGlobal(pointer);
            }
        }
    }

    /// <summary>NVRTC's log of a program (warnings and errors).</summary>
    private static string ProgramLog(nint program)
    {
        nuint size;
        if (Nvrtc.nvrtcGetProgramLogSize(program, &size) != nvrtcResult.NVRTC_SUCCESS || size <= 1)
        {
            return "(NVRTC wrote no log)";
        }
        var log = new byte[(int)size];
        fixed (byte* pointer = log)
        {
            Nvrtc.nvrtcGetProgramLog(program, pointer);
        }
        return Encoding.UTF8.GetString(log, 0, log.Length - 1);
    }

    private static byte* Utf8(string text, List<nint> owned)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var pointer = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes.Length + 1);
        owned.Add(pointer);
        var span = new Span<byte>((void*)pointer, bytes.Length + 1);
        bytes.CopyTo(span);
        span[^1] = 0;
        return (byte*)pointer;
    }
}
