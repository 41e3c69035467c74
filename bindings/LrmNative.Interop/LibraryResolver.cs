using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

[assembly: DisableRuntimeMarshalling]

namespace LrmNative.Interop;

/// <summary>
/// The one place that maps logical library names to files. Versioned sonames are tried
/// newest first; an environment variable overrides each library with an exact path.
/// </summary>
internal static class LibraryResolver
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

    /// <summary>Tries to load a logical library; returns false (and why) instead of throwing.</summary>
    public static bool TryLoad(string logicalName, out IntPtr handle, out string detail)
    {
        try
        {
            handle = Resolve(logicalName, typeof(LibraryResolver).Assembly, null);
        }
        catch (Exception error) when (error is DllNotFoundException or BadImageFormatException)
        {
            handle = IntPtr.Zero;
            detail = $"{Table[logicalName].EnvironmentVariable} names a library that cannot be loaded: {error.Message}";
            return false;
        }
        if (handle != IntPtr.Zero)
        {
            detail = LoadedPath(logicalName) ?? logicalName;
            return true;
        }
        var (variable, candidates) = Table[logicalName];
        detail = $"none of {string.Join(", ", candidates)} could be loaded (set {variable} to a full path to override)";
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
            var handle = NativeLibrary.Load(overridePath);
            Remember(libraryName, overridePath);
            return handle;
        }
        var baseDirectory = AppContext.BaseDirectory;
        foreach (var candidate in entry.Candidates)
        {
            // Our own library ships next to the assemblies; system libraries come from the loader path.
            var local = Path.Combine(baseDirectory, candidate);
            if (File.Exists(local) && NativeLibrary.TryLoad(local, out var localHandle))
            {
                Remember(libraryName, local);
                return localHandle;
            }
            if (NativeLibrary.TryLoad(candidate, out var systemHandle))
            {
                Remember(libraryName, candidate);
                return systemHandle;
            }
        }
        return IntPtr.Zero;
    }

    private static void Remember(string logicalName, string path)
    {
        lock (Gate)
        {
            Resolved[logicalName] = path;
        }
    }
}
