using System.Runtime.InteropServices;

namespace LrmNative.Benchmarks;

/// <summary>
/// Raw CBLAS entry points of Debian's libopenblas0 (32-bit blasint), called directly so the
/// GEMM suite can show what OpenBLAS alone reaches on this machine. Exact C names, no logic.
/// </summary>
internal static unsafe partial class OpenBlasMethods
{
    private const string Lib = "libopenblas.so.0";

    /// <summary><c>CBLAS_ORDER.CblasRowMajor</c>.</summary>
    public const int CblasRowMajor = 101;

    /// <summary><c>CBLAS_TRANSPOSE.CblasNoTrans</c>.</summary>
    public const int CblasNoTrans = 111;

    [LibraryImport(Lib)]
    internal static partial void cblas_sgemm(int order, int transa, int transb, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Lib)] internal static partial byte* openblas_get_config();
    [LibraryImport(Lib)] internal static partial byte* openblas_get_corename();
    [LibraryImport(Lib)] internal static partial int openblas_get_num_procs();
    [LibraryImport(Lib)] internal static partial int openblas_get_num_threads();
    [LibraryImport(Lib)] internal static partial void openblas_set_num_threads(int num_threads);
}
