using System.Runtime.CompilerServices;
using System.Text;
using LrmNative.Interop;

namespace LrmNative;

/// <summary>Base of every error LrmNative raises on purpose.</summary>
public class LrmException : Exception
{
    /// <summary>Creates the exception with a message a user can act on.</summary>
    public LrmException(string message) : base(message) { }
    /// <summary>Creates the exception wrapping a cause.</summary>
    public LrmException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A null, empty or out-of-range argument.</summary>
public sealed class LrmInvalidArgumentException(string message) : LrmException(message);

/// <summary>Tensors whose shapes or dtypes cannot go together; the message names the op, tensor and shapes.</summary>
public sealed class LrmShapeException(string message) : LrmException(message);

/// <summary>Host or device memory ran out.</summary>
public sealed class LrmOutOfMemoryException(string message) : LrmException(message);

/// <summary>A file is missing, unreadable or corrupt; the message names it.</summary>
public sealed class LrmFormatException(string message) : LrmException(message);

/// <summary>A valid request this build or device cannot serve.</summary>
public sealed class LrmUnsupportedException(string message) : LrmException(message);

/// <summary>An engine bug; please report it with the message.</summary>
public sealed class LrmInternalException(string message) : LrmException(message);

/// <summary>The one helper turning <c>lrm_status</c> codes into typed exceptions.</summary>
internal static class NativeCheck
{
    /// <summary>Throws the typed exception for a failed status, with the native message, the failing call and context.</summary>
    public static void Check(LrmStatus status, string? context = null,
        [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status == LrmStatus.Ok)
        {
            return;
        }
        var message = new StringBuilder(LastError());
        if (context is not null)
        {
            message.Append(" [").Append(context).Append(']');
        }
        message.Append(" (in ").Append(CallName(call)).Append(')');
        var text = message.ToString();
        throw status switch
        {
            LrmStatus.InvalidArgument => new LrmInvalidArgumentException(text),
            LrmStatus.ShapeMismatch => new LrmShapeException(text),
            LrmStatus.OutOfMemory => new LrmOutOfMemoryException(text),
            LrmStatus.IoError => new LrmFormatException(text),
            LrmStatus.Unsupported => new LrmUnsupportedException(text),
            _ => new LrmInternalException(text),
        };
    }

    /// <summary>The native thread-local error message.</summary>
    public static unsafe string LastError() => Utf8(NativeMethods.lrm_last_error()) is { Length: > 0 } text
        ? text
        : "native call failed without a message";

    /// <summary>Reads a NUL-terminated UTF-8 string owned by the native side.</summary>
    public static unsafe string Utf8(byte* text) =>
        text is null ? string.Empty : System.Runtime.InteropServices.Marshal.PtrToStringUTF8((IntPtr)text) ?? string.Empty;

    // "NativeMethods.lrm_gemm_forward(o, a, ...)" -> "lrm_gemm_forward"
    private static string CallName(string call)
    {
        var open = call.IndexOf('(', StringComparison.Ordinal);
        var head = open >= 0 ? call[..open] : call;
        var dot = head.LastIndexOf('.');
        return dot >= 0 ? head[(dot + 1)..] : head;
    }
}

/// <summary>
/// Training met a NaN or ±inf gradient or loss; the message names the step and the tensor. Training stops rather
/// than let one bad value spread into every weight through the optimiser.
/// </summary>
public sealed class LrmNonFiniteException(string message, long step, string tensorName) : LrmException(message)
{
    /// <summary>The optimiser step (1-based) whose gradient or loss was not finite.</summary>
    public long Step { get; } = step;

    /// <summary>The tensor (a parameter's gradient, or "loss") that held the value.</summary>
    public string TensorName { get; } = tensorName;
}

/// <summary>
/// A CUDA driver, NVRTC or cuBLASLt call failed. <see cref="Call"/> is the failing call's text,
/// <see cref="Code"/> the library's status code and <see cref="CodeName"/> its name.
/// </summary>
public class LrmCudaException : LrmException
{
    /// <summary>Creates the exception.</summary>
    public LrmCudaException(string message, string call, int code, string codeName) : base(message)
    {
        Call = call;
        Code = code;
        CodeName = codeName;
    }

    /// <summary>The failing call as written in the source, e.g. <c>cuMemAlloc_v2(&amp;pointer, bytes)</c>.</summary>
    public string Call { get; }

    /// <summary>The status code the library returned.</summary>
    public int Code { get; }

    /// <summary>The status code's name, e.g. CUDA_ERROR_ILLEGAL_ADDRESS.</summary>
    public string CodeName { get; }
}

/// <summary>No usable CUDA driver or device; the message says which and why.</summary>
public sealed class LrmCudaUnavailableException(string message) : LrmException(message);

/// <summary>NVRTC rejected a kernel source; <see cref="Log"/> holds NVRTC's full log.</summary>
public sealed class LrmKernelCompileException : LrmException
{
    /// <summary>Creates the exception.</summary>
    public LrmKernelCompileException(string message, string log) : base(message) => Log = log;

    /// <summary>NVRTC's complete compilation log.</summary>
    public string Log { get; }
}
