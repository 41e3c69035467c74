using System.Runtime.InteropServices;

namespace LrmNative.Interop;

/// <summary><c>nvrtcResult</c>.</summary>
internal enum nvrtcResult
{
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7,
    NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION = 8,
    NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION = 9,
    NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID = 10,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
}

/// <summary>
/// NVRTC, the run-time CUDA C++ compiler (exact C names). A program handle is <see cref="nint"/>
/// (<c>nvrtcProgram</c>); strings are NUL-terminated UTF-8.
/// </summary>
internal static unsafe partial class Nvrtc
{
    private const string Lib = LibraryResolver.Nvrtc;

    [LibraryImport(Lib)] internal static partial byte* nvrtcGetErrorString(nvrtcResult result);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcVersion(int* major, int* minor);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetNumSupportedArchs(int* count);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetSupportedArchs(int* architectures);

    [LibraryImport(Lib)]
    internal static partial nvrtcResult nvrtcCreateProgram(nint* program, byte* source, byte* name, int headerCount,
        byte** headers, byte** includeNames);

    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcDestroyProgram(nint* program);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcCompileProgram(nint program, int optionCount, byte** options);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetProgramLogSize(nint program, nuint* size);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetPTXSize(nint program, nuint* size);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetCUBINSize(nint program, nuint* size);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcAddNameExpression(nint program, byte* nameExpression);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetLoweredName(nint program, byte* nameExpression, byte** loweredName);
}
