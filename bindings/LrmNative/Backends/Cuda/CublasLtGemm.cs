using LrmNative.Interop;

namespace LrmNative.Backends.Cuda;

/// <summary>
/// Row-major GEMMs through cuBLASLt: bf16 operands, fp32 accumulation (CUBLAS_COMPUTE_32F),
/// fp32 or bf16 output, optional bias (fp32, per output column) and GELU epilogues, optional
/// C (the residual, may alias D).
///
/// cuBLASLt is column-major; a row-major (M, N) = A·B is the column-major (N, M) = Bᵀ·Aᵀ, so
/// cuBLASLt's "A" is our b and its "B" is our a, and the per-column bias of our output is the
/// per-row bias cuBLASLt expects. Plans (descriptors, layouts, the heuristic's algorithm) are
/// cached per shape, transposes, types, epilogue and pointer alignment, and so is the heuristic's
/// answer that it has no algorithm for a problem: <see cref="TryMatmul"/> then returns false at once
/// and the backend uses its fp32 kernel. Note cuBLASLt's GELU epilogue is the tanh approximation;
/// the backend applies the exact GELU itself.
/// </summary>
internal sealed unsafe class CublasLtGemm : IDisposable
{
    private const long WorkspaceBytes = 32L << 20;
    private readonly CudaContext _context;
    private readonly Dictionary<PlanKey, Plan> _plans = new();
    private readonly DeviceBlock _workspace;
    private nint _handle;

    private readonly record struct PlanKey(int M, int N, int K, bool TransposeA, bool TransposeB, cudaDataType_t OutputType,
        cublasLtEpilogue_t Epilogue, bool HasC, int AlignA, int AlignB, int AlignC, int AlignD);

    private sealed class Plan
    {
        public nint Description, LayoutA, LayoutB, LayoutC;
        public cublasLtMatmulAlgo_t Algorithm;
        public bool HasAlgorithm;
    }

    public CublasLtGemm(CudaContext context, DeviceAllocator allocator)
    {
        _context = context;
        context.MakeCurrent();
        nint handle;
        CublasCheck.Check(CublasLt.cublasLtCreate(&handle));
        try
        {
            _workspace = allocator.Allocate(WorkspaceBytes, "cuBLASLt workspace");
        }
        catch
        {
            CublasLt.cublasLtDestroy(handle);
            throw;
        }
        _handle = handle;
    }

    /// <summary>True when cuBLASLt can be loaded; otherwise <paramref name="reason"/> says why.</summary>
    public static bool IsAvailable(out string reason)
    {
        if (!LibraryResolver.TryLoad(LibraryResolver.CublasLt, out _, out var detail))
        {
            reason = $"no cuBLASLt library ({detail})";
            return false;
        }
        reason = $"{detail} (version {(ulong)CublasLt.cublasLtGetVersion()})";
        return true;
    }

    /// <summary>
    /// d (M, N) = op(a)·op(b) [+ bias (N)] [+ c (M, N)], then the epilogue's activation.
    /// a (M, K) or (K, M) bf16, b (K, N) or (N, K) bf16; c has d's type and may be d.
    /// False (nothing queued) when cuBLASLt has no algorithm for the problem.
    /// </summary>
    public bool TryMatmul(ulong d, cudaDataType_t outputType, ulong a, ulong b, ulong bias, ulong c, int m, int n, int k,
        bool transposeA, bool transposeB, bool gelu = false)
    {
        var epilogue = (bias != 0, gelu) switch
        {
            (true, true) => cublasLtEpilogue_t.CUBLASLT_EPILOGUE_GELU_BIAS,
            (true, false) => cublasLtEpilogue_t.CUBLASLT_EPILOGUE_BIAS,
            (false, true) => cublasLtEpilogue_t.CUBLASLT_EPILOGUE_GELU,
            _ => cublasLtEpilogue_t.CUBLASLT_EPILOGUE_DEFAULT,
        };
        var key = new PlanKey(m, n, k, transposeA, transposeB, outputType, epilogue, c != 0,
            Alignment(a), Alignment(b), Alignment(c != 0 ? c : d), Alignment(d)); // without c, d is passed as C
        _context.MakeCurrent();
        if (!_plans.TryGetValue(key, out var plan))
        {
            plan = CreatePlan(key);
            _plans[key] = plan;
        }
        if (!plan.HasAlgorithm)
        {
            return false;
        }
        if (bias != 0)
        {
            CublasCheck.Check(CublasLt.cublasLtMatmulDescSetAttribute(plan.Description,
                cublasLtMatmulDescAttributes_t.CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, (nuint)sizeof(ulong)));
        }
        float alpha = 1.0f, beta = c != 0 ? 1.0f : 0.0f;
        var algorithm = plan.Algorithm;
        var what = $"M {m}, N {n}, K {k}, transposeA {transposeA}, transposeB {transposeB}";
        var status = CublasLt.cublasLtMatmul(_handle, plan.Description, &alpha, b, plan.LayoutA, a, plan.LayoutB, &beta,
            c != 0 ? c : d, plan.LayoutC, d, plan.LayoutC, &algorithm, _workspace.Address, (nuint)WorkspaceBytes, _context.Stream);
        if (status == cublasStatus_t.CUBLAS_STATUS_EXECUTION_FAILED)
        {
            // What a kernel fault queued earlier looks like from here: the synchronisation reports it as that kernel's.
            _context.Synchronize($"after cublasLtMatmul failed ({what})");
        }
        if (status == cublasStatus_t.CUBLAS_STATUS_ALLOC_FAILED)
        {
            throw _context.OutOfMemory($"cublasLtMatmul failed: CUBLAS_STATUS_ALLOC_FAILED [{what}, workspace {DeviceAllocator.Format(WorkspaceBytes)}]");
        }
        CublasCheck.Check(status, what, "CublasLt.cublasLtMatmul");
        _context.Queued($"cublasLtMatmul ({what})");
        return true;
    }

    private Plan CreatePlan(PlanKey key)
    {
        var plan = new Plan();
        try
        {
            Describe(plan, key);
            if (!plan.HasAlgorithm)
            {
                Destroy(plan); // only the answer is kept
            }
            return plan;
        }
        catch
        {
            Destroy(plan);
            throw;
        }
    }

    // The descriptors and layouts of one problem, and the heuristic's algorithm for it.
    private void Describe(Plan plan, PlanKey key)
    {
        var what = $"M {key.M}, N {key.N}, K {key.K}";
        nint description;
        CublasCheck.Check(CublasLt.cublasLtMatmulDescCreate(&description, cublasComputeType_t.CUBLAS_COMPUTE_32F, cudaDataType_t.CUDA_R_32F), what);
        plan.Description = description;
        // cuBLASLt's A is our b (transposed iff b is), its B is our a.
        var opA = key.TransposeB ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        var opB = key.TransposeA ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        SetDescription(description, cublasLtMatmulDescAttributes_t.CUBLASLT_MATMUL_DESC_TRANSA, (int)opA);
        SetDescription(description, cublasLtMatmulDescAttributes_t.CUBLASLT_MATMUL_DESC_TRANSB, (int)opB);
        SetDescription(description, cublasLtMatmulDescAttributes_t.CUBLASLT_MATMUL_DESC_EPILOGUE, (int)key.Epilogue);
        if (key.Epilogue is cublasLtEpilogue_t.CUBLASLT_EPILOGUE_BIAS or cublasLtEpilogue_t.CUBLASLT_EPILOGUE_GELU_BIAS)
        {
            SetDescription(description, cublasLtMatmulDescAttributes_t.CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, (int)cudaDataType_t.CUDA_R_32F);
        }
        nint layout;
        // Our b: (K, N) row-major = column-major N×K (ld N); transposed (N, K) = column-major K×N (ld K).
        CublasCheck.Check(key.TransposeB
            ? CublasLt.cublasLtMatrixLayoutCreate(&layout, cudaDataType_t.CUDA_R_16BF, (ulong)key.K, (ulong)key.N, key.K)
            : CublasLt.cublasLtMatrixLayoutCreate(&layout, cudaDataType_t.CUDA_R_16BF, (ulong)key.N, (ulong)key.K, key.N), what);
        plan.LayoutA = layout;
        // Our a: (M, K) row-major = column-major K×M (ld K); transposed (K, M) = column-major M×K (ld M).
        CublasCheck.Check(key.TransposeA
            ? CublasLt.cublasLtMatrixLayoutCreate(&layout, cudaDataType_t.CUDA_R_16BF, (ulong)key.M, (ulong)key.K, key.M)
            : CublasLt.cublasLtMatrixLayoutCreate(&layout, cudaDataType_t.CUDA_R_16BF, (ulong)key.K, (ulong)key.M, key.K), what);
        plan.LayoutB = layout;
        CublasCheck.Check(CublasLt.cublasLtMatrixLayoutCreate(&layout, key.OutputType, (ulong)key.N, (ulong)key.M, key.N), what);
        plan.LayoutC = layout;

        nint preference;
        CublasCheck.Check(CublasLt.cublasLtMatmulPreferenceCreate(&preference));
        try
        {
            var workspace = (ulong)WorkspaceBytes;
            CublasCheck.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(preference,
                cublasLtMatmulPreferenceAttributes_t.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(ulong)));
            // Minimum alignments (attributes 5–8: A, B, C, D in cuBLASLt's naming) so the heuristic
            // never picks a kernel that needs more alignment than the pointers have.
            SetPreference(preference, 5, (uint)key.AlignB);
            SetPreference(preference, 6, (uint)key.AlignA);
            SetPreference(preference, 7, (uint)key.AlignC);
            SetPreference(preference, 8, (uint)key.AlignD);
            cublasLtMatmulHeuristicResult_t result;
            int found;
            var status = CublasLt.cublasLtMatmulAlgoGetHeuristic(_handle, description, plan.LayoutA, plan.LayoutB,
                plan.LayoutC, plan.LayoutC, preference, 1, &result, &found);
            // No algorithm: NOT_SUPPORTED (what the real heuristic answers for an unsupported problem) or a zero count.
            if (status != cublasStatus_t.CUBLAS_STATUS_NOT_SUPPORTED)
            {
                CublasCheck.Check(status, what);
            }
            plan.HasAlgorithm = status == cublasStatus_t.CUBLAS_STATUS_SUCCESS && found > 0;
            plan.Algorithm = result.algo;
        }
        finally
        {
            CublasLt.cublasLtMatmulPreferenceDestroy(preference);
        }
    }

    // Destroys what was created of a plan, and forgets it.
    private static void Destroy(Plan plan)
    {
        foreach (var layout in (ReadOnlySpan<nint>)[plan.LayoutA, plan.LayoutB, plan.LayoutC])
        {
            if (layout != 0)
            {
                CublasLt.cublasLtMatrixLayoutDestroy(layout);
            }
        }
        if (plan.Description != 0)
        {
            CublasLt.cublasLtMatmulDescDestroy(plan.Description);
        }
        plan.Description = plan.LayoutA = plan.LayoutB = plan.LayoutC = 0;
    }

    private static void SetDescription(nint description, cublasLtMatmulDescAttributes_t attribute, int value) =>
        CublasCheck.Check(CublasLt.cublasLtMatmulDescSetAttribute(description, attribute, &value, sizeof(int)), attribute.ToString());

    private static void SetPreference(nint preference, int attribute, uint value) =>
        CublasCheck.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(preference,
            (cublasLtMatmulPreferenceAttributes_t)attribute, &value, sizeof(uint)), $"preference {attribute}");

    private static int Alignment(ulong address)
    {
        var alignment = 256;
        while (alignment > 1 && address % (ulong)alignment != 0)
        {
            alignment >>= 1;
        }
        return alignment;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var plan in _plans.Values)
        {
            Destroy(plan);
        }
        _plans.Clear();
        if (_handle != 0)
        {
            CublasLt.cublasLtDestroy(_handle);
            _handle = 0;
        }
        _workspace.Dispose();
    }
}
