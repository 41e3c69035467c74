using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

[assembly: DisableRuntimeMarshalling]

namespace LrmNative.Interop;

/// <summary>
/// The one place that maps logical library names to files. Versioned sonames are tried
/// newest first — for NVRTC and cuBLASLt, newest first among those the CUDA driver is new enough
/// for (<see cref="ForDriver"/>); an environment variable overrides each library with an exact path.
/// The CUDA libraries are looked for next to the assemblies, on the loader path, and then in
/// the usual install folders (CUDA_HOME, CUDA_PATH, /usr/local/cuda*, the driver mount
/// /usr/local/nvidia, and the lib folders of pip's nvidia-* wheels in known Python environments).
/// </summary>
internal static unsafe class LibraryResolver
{
    /// <summary>Logical name of our CPU engine, <c>liblrm_native.so</c>.</summary>
    public const string LrmNative = "lrm_native";
    /// <summary>Logical name of the CUDA driver API, <c>libcuda.so.1</c>.</summary>
    public const string Cuda = "cuda";
    /// <summary>Logical name of NVRTC.</summary>
    public const string Nvrtc = "nvrtc";
    /// <summary>Logical name of cuBLASLt.</summary>
    public const string CublasLt = "cublasLt";

    private static readonly Dictionary<string, (string EnvironmentVariable, string[] Candidates)> Table = new()
    {
        [LrmNative] = ("LRM_NATIVE_LIBRARY", ["liblrm_native.so"]),
        [Cuda] = ("LRM_CUDA_LIBRARY", ["libcuda.so.1", "libcuda.so"]),
        [Nvrtc] = ("LRM_NVRTC_LIBRARY", ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]),
        [CublasLt] = ("LRM_CUBLASLT_LIBRARY", ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"]),
    };

    private static readonly Dictionary<string, string> Resolved = new();
    private static readonly Lock Gate = new();

    // A library must install its resolver before its first P/Invoke; a module initializer is the one hook that guarantees that.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Install() =>
        NativeLibrary.SetDllImportResolver(typeof(LibraryResolver).Assembly, Resolve);

    /// <summary>The file a logical library was loaded from, or null if it has not been loaded.</summary>
    public static string? LoadedPath(string logicalName)
    {
        lock (Gate)
        {
            return Resolved.TryGetValue(logicalName, out var path) ? path : null;
        }
    }

    /// <summary>
    /// The file a loaded logical library maps, as a full path with links resolved (the loader finds a bare soname on
    /// its own path): where the address of <paramref name="symbol"/>, one of its exports, lies in /proc/self/maps.
    /// Null when the library is not loaded or the file cannot be told.
    /// </summary>
    public static string? LoadedFile(string logicalName, string symbol)
    {
        if (!TryLoad(logicalName, out var handle, out _) || !NativeLibrary.TryGetExport(handle, symbol, out var export))
        {
            return null;
        }
        try
        {
            var address = (ulong)export;
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                // "7f2a1c000000-7f2a1c400000 r-xp 00000000 08:01 1234   /usr/lib/x86_64-linux-gnu/libnvrtc.so.12.4.127"
                var dash = line.IndexOf('-', StringComparison.Ordinal);
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (dash > 0 && space > dash && slash > space
                    && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
                    && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end)
                    && address >= start && address < end)
                {
                    var path = line[slash..];
                    return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
                }
            }
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            // No /proc (not Linux, or a sandbox): the caller goes without.
        }
        return null;
    }

    /// <summary>Tries to load a logical library; returns false (and why) instead of throwing.</summary>
    public static bool TryLoad(string logicalName, out IntPtr handle, out string detail)
    {
        try
        {
            handle = Resolve(logicalName, typeof(LibraryResolver).Assembly, null);
        }
        catch (Exception error) when (error is DllNotFoundException or BadImageFormatException or PlatformNotSupportedException)
        {
            handle = IntPtr.Zero;
            detail = error.Message;
            return false;
        }
        if (handle != IntPtr.Zero)
        {
            detail = LoadedPath(logicalName) ?? logicalName;
            return true;
        }
        var (variable, candidates) = Table[logicalName];
        detail = logicalName == LrmNative
            ? $"none of {string.Join(", ", candidates)} could be loaded (set {variable} to a full path to override)"
            : $"none of {string.Join(", ", candidates)} could be loaded from the loader path or the CUDA install folders (set {variable} to a full path to override)";
        return false;
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!Table.TryGetValue(libraryName, out var entry))
        {
            return IntPtr.Zero;
        }
        if (libraryName == LrmNative)
        {
            // Must happen before libopenblas (a dependency of liblrm_native) is loaded.
            OpenBlasCoreType.Apply();
        }
        var overridePath = Environment.GetEnvironmentVariable(entry.EnvironmentVariable);
        if (!string.IsNullOrEmpty(overridePath))
        {
            // An explicit override must work; falling back silently would hide a typo.
            IntPtr handle;
            try
            {
                handle = NativeLibrary.Load(overridePath);
            }
            catch (DllNotFoundException error)
            {
                throw new DllNotFoundException($"{entry.EnvironmentVariable}={overridePath} names a library that cannot be loaded: {LoaderMessage(error)}", error);
            }
            return Accept(libraryName, handle, overridePath);
        }
        var failures = new List<string>();
        var candidates = libraryName is Nvrtc or CublasLt ? ForDriver(entry.Candidates, DriverCudaMajor()) : entry.Candidates;
        foreach (var candidate in candidates)
        {
            // Our own library ships next to the assemblies (or, from the NuGet package, in the app's
            // runtimes/linux-x64/native folder); system libraries come from the loader path.
            foreach (var directory in ApplicationNativeDirectories())
            {
                var local = Path.Combine(directory, candidate);
                if (!File.Exists(local))
                {
                    continue;
                }
                try
                {
                    return Accept(libraryName, NativeLibrary.Load(local), local);
                }
                catch (DllNotFoundException error)
                {
                    // The file is there but does not load (a dependency missing): worth saying, unlike an absent file.
                    failures.Add($"{local}: {LoaderMessage(error)}");
                }
            }
            if (NativeLibrary.TryLoad(candidate, out var systemHandle))
            {
                return Accept(libraryName, systemHandle, candidate);
            }
        }
        if (libraryName == LrmNative)
        {
            // Returning nothing would let the runtime probe on its own and fail with a message that names neither
            // what was tried nor how to build the library.
            var tried = failures.Count > 0
                ? string.Join("; ", failures)
                : $"{entry.Candidates[0]} is not in {string.Join(", ", ApplicationNativeDirectories())} or on the loader path";
            throw new DllNotFoundException(
                $"the LrmNative engine library cannot be loaded: {tried}. From a source checkout, ./lrm and ./test.sh build it " +
                $"(native/ through CMake; tools/setup.sh names the packages it needs); {entry.EnvironmentVariable} may name it by full path.");
        }
        if (libraryName != LrmNative)
        {
            // Newest usable soname first across all folders, so a CUDA 13 NVRTC wins over a CUDA 12 one on a CUDA 13 driver.
            foreach (var candidate in candidates)
            {
                foreach (var directory in CudaSearchDirectories())
                {
                    var path = Path.Combine(directory, candidate);
                    if (!File.Exists(path))
                    {
                        continue;
                    }
                    PreloadCompanions(libraryName, directory);
                    if (NativeLibrary.TryLoad(path, out var handle))
                    {
                        return Accept(libraryName, handle, path);
                    }
                }
            }
        }
        return IntPtr.Zero;
    }

    /// <summary>Remembers where a library came from; liblrm_native.so only if this CPU can run it (<see cref="RequireCpu"/>).</summary>
    private static IntPtr Accept(string logicalName, IntPtr handle, string path)
    {
        if (logicalName == LrmNative)
        {
            RequireCpu(handle, path);
            LimitThreadsToQuota(handle);
        }
        Remember(logicalName, path);
        return handle;
    }

    /// <summary>
    /// Refuses a liblrm_native.so built for instruction-set extensions this CPU (or its OS) lacks — the default build
    /// targets x86-64-v3 (AVX2, FMA, BMI2, …) — with a <see cref="PlatformNotSupportedException"/> naming them, instead
    /// of the SIGILL that would end the process at the first call reaching such code. The check
    /// (lrm_cpu_missing_features) is compiled for plain x86-64, so calling it is safe on any x86-64 CPU.
    /// </summary>
    private static void RequireCpu(IntPtr handle, string path)
    {
        if (!NativeLibrary.TryGetExport(handle, "lrm_cpu_missing_features", out var check))
        {
            return; // a library older than the check
        }
        const int capacity = 256;
        var buffer = stackalloc byte[capacity];
        if (((delegate* unmanaged<byte*, int, int>)check)(buffer, capacity) == 0)
        {
            return;
        }
        var missing = Marshal.PtrToStringUTF8((IntPtr)buffer);
        var target = NativeLibrary.TryGetExport(handle, "lrm_cpu_build_target", out var targetExport)
            ? Marshal.PtrToStringUTF8((IntPtr)((delegate* unmanaged<byte*>)targetExport)())
            : null;
        NativeLibrary.Free(handle);
        throw new PlatformNotSupportedException(
            $"{path} was built for {(string.IsNullOrEmpty(target) ? "a newer CPU" : $"-march={target}")}, and this CPU (or its OS) lacks {missing}. " +
            "Build the library on this machine (delete artifacts/native in the source checkout and run ./lrm again: CMake then targets this CPU) " +
            "or configure it with -DLRM_CPU_ARCH=x86-64, and point LRM_NATIVE_LIBRARY at the result.");
    }

    /// <summary>
    /// OpenMP sizes its default team by the CPUs of the affinity mask and ignores a container's CPU quota (cgroup
    /// cpu.max / cfs_quota_us), so on a 64-core host a container limited to 2 CPUs would run 64 threads. .NET's
    /// <see cref="Environment.ProcessorCount"/> reads the quota (and DOTNET_PROCESSOR_COUNT); the library's default
    /// becomes the smaller of the two, unless OMP_NUM_THREADS says otherwise.
    /// </summary>
    private static void LimitThreadsToQuota(IntPtr handle)
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"))
            || !NativeLibrary.TryGetExport(handle, "lrm_limit_default_threads", out var limit))
        {
            return;
        }
        ((delegate* unmanaged<int, void>)limit)(Environment.ProcessorCount);
    }

    /// <summary>The loader's own reason (dlerror) from a failed NativeLibrary.Load, without .NET's advice on strace and LD_DEBUG.</summary>
    private static string LoaderMessage(DllNotFoundException error)
    {
        var lines = error.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 1 ? lines[^1] : error.Message;
    }

    /// <summary>
    /// The sonames of a CUDA library in the order to try them: those whose major version the driver supports (at most
    /// its CUDA major) newest first, then the unversioned name, then newer ones, which load but make what the driver
    /// cannot use (a CUDA 13 NVRTC's CUBIN does not load on a 12.x driver). Without a driver version, as listed.
    /// </summary>
    internal static IReadOnlyList<string> ForDriver(IReadOnlyList<string> candidates, int? driverMajor)
    {
        if (driverMajor is not { } major)
        {
            return candidates;
        }
        static int? Version(string soname) =>
            int.TryParse(soname.AsSpan(soname.LastIndexOf('.') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;
        return [.. candidates.Where(name => Version(name) <= major), .. candidates.Where(name => Version(name) is null),
            .. candidates.Where(name => Version(name) > major)];
    }

    /// <summary>The CUDA major version of the installed driver (cuDriverGetVersion / 1000; no cuInit needed), or null without one.</summary>
    private static int? DriverCudaMajor()
    {
        if (!TryLoad(Cuda, out var handle, out _) || !NativeLibrary.TryGetExport(handle, "cuDriverGetVersion", out var export))
        {
            return null;
        }
        int version;
        return ((delegate* unmanaged<int*, int>)export)(&version) == 0 && version > 0 ? version / 1000 : null;
    }

    /// <summary>
    /// The application's folder, then the native asset folders the host took from the app's deps.json
    /// (NATIVE_DLL_SEARCH_DIRECTORIES: for an app that references the LrmNative package without a runtime identifier,
    /// bin/…/runtimes/linux-x64/native/). NativeLibrary.TryLoad with a bare file name does not look there.
    /// </summary>
    internal static IEnumerable<string> ApplicationNativeDirectories()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var baseDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        seen.Add(baseDirectory);
        yield return baseDirectory;
        var searchDirectories = AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string ?? "";
        foreach (var directory in searchDirectories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var trimmed = Path.TrimEndingDirectorySeparator(directory);
            if (seen.Add(trimmed) && Directory.Exists(trimmed))
            {
                yield return trimmed;
            }
        }
    }

    /// <summary>Folders where CUDA libraries are commonly installed, most specific first; only existing ones.</summary>
    internal static IEnumerable<string> CudaSearchDirectories()
    {
        var roots = new List<string>();
        foreach (var variable in new[] { "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT" })
        {
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } root)
            {
                roots.Add(root);
            }
        }
        roots.Add("/usr/local/cuda");
        roots.AddRange(SafeGlob("/usr/local", "cuda-*").OrderDescending(StringComparer.Ordinal));
        var directories = new List<string>();
        foreach (var root in roots)
        {
            directories.Add(Path.Combine(root, "lib64"));
            directories.Add(Path.Combine(root, "targets", "x86_64-linux", "lib"));
            directories.Add(Path.Combine(root, "lib"));
        }
        // The NVIDIA driver as mounted into containers, and Debian's multiarch folder.
        directories.Add("/usr/local/nvidia/lib64");
        directories.Add("/usr/local/nvidia/lib");
        directories.Add("/usr/lib/x86_64-linux-gnu");
        // pip wheels: nvidia/cu13/lib (CUDA 13 wheels), nvidia/<component>/lib (CUDA 12 wheels).
        foreach (var sitePackages in PythonSitePackages())
        {
            var nvidia = Path.Combine(sitePackages, "nvidia");
            foreach (var component in SafeGlob(nvidia, "*").OrderDescending(StringComparer.Ordinal))
            {
                directories.Add(Path.Combine(component, "lib"));
            }
        }
        return directories.Distinct(StringComparer.Ordinal).Where(Directory.Exists);
    }

    private static IEnumerable<string> PythonSitePackages()
    {
        var prefixes = new List<string>();
        if (Environment.GetEnvironmentVariable("VIRTUAL_ENV") is { Length: > 0 } venv)
        {
            prefixes.Add(venv);
        }
        prefixes.AddRange(SafeGlob("/opt", "*").SelectMany(opt => new[] { opt, Path.Combine(opt, ".venv") }));
        prefixes.Add("/usr/local");
        prefixes.Add("/usr");
        if (Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home)
        {
            prefixes.Add(Path.Combine(home, ".local"));
        }
        foreach (var prefix in prefixes)
        {
            foreach (var lib in SafeGlob(Path.Combine(prefix, "lib"), "python3*"))
            {
                yield return Path.Combine(lib, "site-packages");
                yield return Path.Combine(lib, "dist-packages");
            }
        }
    }

    // NVRTC dlopens libnvrtc-builtins by soname; loaded from a folder the loader does not search,
    // it would not find it, unless the copy next to it is loaded first.
    private static void PreloadCompanions(string libraryName, string directory)
    {
        if (libraryName != Nvrtc)
        {
            return;
        }
        foreach (var builtins in SafeGlob(directory, "libnvrtc-builtins.so.*").OrderDescending(StringComparer.Ordinal))
        {
            if (NativeLibrary.TryLoad(builtins, out _))
            {
                return;
            }
        }
    }

    private static string[] SafeGlob(string directory, string pattern)
    {
        try
        {
            return Directory.Exists(directory) ? Directory.GetFileSystemEntries(directory, pattern) : [];
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static void Remember(string logicalName, string path)
    {
        lock (Gate)
        {
            Resolved[logicalName] = path;
        }
    }
}
