using LrmNative.Backends;
using LrmNative.Backends.Cuda;

namespace LrmNative.Tests;

/// <summary>Launch limits checked on the host, before any kernel: a grid too large is an error naming the kernel, never a wrapped cast.</summary>
[TestFixture]
[Category("Cuda")]
public sealed class CudaLaunchLimitTests
{
    [Test]
    public void GridSizesAreCountedWithoutWrappingAround()
    {
        Assert.That(Dim3.CeilDiv(1L << 40, 256), Is.EqualTo(1L << 32), "2³² blocks stay 2³², not 0");
        Assert.That(Dim3.CeilDiv(long.MaxValue, 1), Is.EqualTo(long.MaxValue));
        Assert.That(Dim3.CeilDiv(0, 256), Is.EqualTo(1));
        Assert.That(Dim3.CeilDiv(257, 256), Is.EqualTo(2));
        Assert.That(Dim3.Stride(1L << 40, 256, 132).X, Is.EqualTo(132 * 32), "a grid-stride grid fills the device, no more");
    }

    [Test]
    public void AGridPastTheDeviceLimitsNamesTheKernelAndTheGrid()
    {
        Assert.DoesNotThrow(() => new Dim3(Dim3.MaxGridX, Dim3.MaxGridYZ, Dim3.MaxGridYZ).CheckGrid("k"));
        foreach (var grid in new[] { new Dim3(Dim3.MaxGridX + 1), new Dim3(1, Dim3.MaxGridYZ + 1), new Dim3(1, 1, Dim3.MaxGridYZ + 1), new Dim3(-1) })
        {
            var error = Assert.Throws<LrmUnsupportedException>(() => grid.CheckGrid("some_kernel"), $"grid {grid}");
            Assert.That(error!.Message, Does.Contain("some_kernel").And.Contain(grid.ToString()));
        }
    }
}

/// <summary>The CUDA backend's robustness on the device (or the CPU CUDA emulator): launch limits, timers, leaks.</summary>
[TestFixture]
[Category("Cuda")]
[NonParallelizable]
public sealed class CudaRobustnessTests
{
    // A device tensor holding 0, step, 2·step, …
    private static Tensor Ramp(CudaBackend cuda, float step, params long[] shape)
    {
        using var host = Tensor.Empty(shape);
        var values = host.AsSpan<float>();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = i * step;
        }
        return cuda.Upload(host);
    }

    [Test]
    public void ALaunchWithTooManyBlocksFailsNamingTheKernelInsteadOfDoingNothing()
    {
        // 2⁴⁰ elements at 256 per block: 2³² blocks, which an unchecked cast made a grid of 0 (a launch silently skipped).
        using var cuda = CudaTestBackends.Open();
        var kernel = cuda.Kernel("elementwise.cu", "add_forward_kernel");
        var error = Assert.Throws<LrmUnsupportedException>(() =>
            cuda.Launcher.Launch(kernel, Dim3.CeilDiv(1L << 40, 256), new Dim3(256), 0, 0UL, 0UL, 0UL, 1L << 40));
        Assert.That(error!.Message, Does.Contain("add_forward_kernel").And.Contain("(4294967296, 1, 1)"));
    }

    [Test]
    public void ATimerRunsOnAThreadOtherThanTheOneThatMadeIt()
    {
        // BenchmarkDotNet may start and stop a timer on a thread the backend never ran on: no context is current there.
        using var cuda = CudaTestBackends.Open();
        using var timer = cuda.CreateTimer();
        var milliseconds = -1f;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                timer.Start();
                milliseconds = timer.StopMilliseconds();
            }
            catch (LrmException error)
            {
                failure = error;
            }
        });
        thread.Start();
        thread.Join();
        Assert.That(failure, Is.Null, "the timer binds the backend's context to the calling thread");
        Assert.That(milliseconds, Is.GreaterThanOrEqualTo(0f));
    }

    [Test]
    public void DisposingTheBackendGivesBackTheMemoryOfTensorsStillAlive()
    {
        using var observer = CudaTestBackends.Open();
        var before = observer.Context.MemoryInfo().Free;
        var cuda = CudaTestBackends.Open();
        var forgotten = cuda.Empty([16L << 20]); // 64 MiB its caller never disposes
        cuda.Fill(forgotten, 1f);
        cuda.Dispose();
        var after = observer.Context.MemoryInfo().Free;
        forgotten.Dispose(); // after its backend: gives nothing back twice, and does not throw
        Assert.That(after, Is.GreaterThanOrEqualTo(before - (8L << 20)), "the forgotten tensor's 64 MiB went back to the driver");
    }

    [TestCase("bf16 GEMM operand", "fail_next:cuLaunchKernel")]
    [TestCase("resize taps", "fail_next:cuLaunchKernel")]
    [TestCase("transposed resize taps", "fail_next:cuMemcpyHtoDAsync_v2")]
    public void AScratchBlockGoesBackWhenTheOpFailsRightAfterTakingIt(string scratch, string failure)
    {
        EmulatorSwitches.Require("a launch or copy failing on demand");
        using var cuda = CudaTestBackends.Open(MatmulPrecision.BFloat16);
        if (scratch == "bf16 GEMM operand")
        {
            CudaTestBackends.RequireCublasLt(cuda);
        }
        using var image = Ramp(cuda, 0.25f, 1, 2, 9, 7);
        using var small = cuda.Empty([1, 2, 4, 3]);
        using var a = Ramp(cuda, 0.5f, 3, 4);
        using var w = Ramp(cuda, 0.1f, 2, 4);
        using var product = cuda.Empty([3, 2]);
        Action op = scratch switch
        {
            "bf16 GEMM operand" => () => cuda.Gemm(product, a, w, null, null, false, true),   // a and w converted to bf16 first
            "resize taps" => () => cuda.Resize(small, image, ResizeMode.Bilinear),         // the tap tables, built by a kernel
            _ => () => cuda.ResizeBackward(image, small, ResizeMode.Bilinear),               // tap tables turned around on the host
        };
        var inUse = cuda.MemoryStatistics.InUseBytes;
        using (EmulatorSwitches.Driver(failure, 1)) // CUDA_ERROR_INVALID_VALUE, once
        {
            Assert.Throws<LrmCudaException>(() => op());
        }
        Assert.That(cuda.MemoryStatistics.InUseBytes, Is.EqualTo(inUse), $"the {scratch} scratch went back to the allocator");
        Assert.DoesNotThrow(() => op(), "the backend still works");
    }

    [Test]
    public void ACuBlasLtThatCannotGetItsWorkspaceLeavesNoHandleBehind()
    {
        EmulatorSwitches.Require("an allocation failing on demand");
        var handles = EmulatorSwitches.CublasLtValue("live_handles");
        using (EmulatorSwitches.Driver("fail_next:cuMemAllocAsync", 1)) // the backend's first device allocation: the workspace
        using (var cuda = CudaTestBackends.Open(MatmulPrecision.BFloat16))
        {
            Assert.That(cuda.CublasLtStatus, Does.Contain("failed to start").And.Contain("fp32 kernel"));
        }
        Assert.That(EmulatorSwitches.CublasLtValue("live_handles"), Is.EqualTo(handles), "the handle made before the failure was destroyed");
    }

    [Test]
    public void AGemmPlanThatFailsLeavesNoCuBlasLtObjectsBehind()
    {
        EmulatorSwitches.Require("a cuBLASLt heuristic failing on demand");
        using var cuda = CudaTestBackends.Open(MatmulPrecision.BFloat16);
        using var a = Ramp(cuda, 0.5f, 3, 4);
        using var w = Ramp(cuda, 0.1f, 2, 4);
        using var product = cuda.Empty([3, 2]);
        var objects = EmulatorSwitches.CublasLtValue("live_objects");
        using (EmulatorSwitches.CublasLt("fail_next:cublasLtMatmulAlgoGetHeuristic", 7)) // CUBLAS_STATUS_INVALID_VALUE
        {
            Assert.Throws<LrmCudaException>(() => cuda.Gemm(product, a, w, null, null, false, true));
        }
        Assert.That(EmulatorSwitches.CublasLtValue("live_objects"), Is.EqualTo(objects), "the plan's descriptor and layouts were destroyed");
    }

    [TestCase("cuMemAllocHost_v2", "of pinned host memory")]
    [TestCase("cuModuleLoadData", "loading kernels/elementwise.cu")]
    [TestCase("cuLaunchKernel", "launching kernel 'add_forward_kernel'")]
    [TestCase("cublasLtMatmul", "M 3, N 2, K 4")]
    public void OutOfMemorySaysWhatWasBeingDoneAndHowMuchIsFree(string call, string what)
    {
        EmulatorSwitches.Require("running out of memory on demand");
        using var cuda = CudaTestBackends.Open(MatmulPrecision.BFloat16);
        if (call == "cublasLtMatmul")
        {
            CudaTestBackends.RequireCublasLt(cuda);
        }
        using var host = Tensor.FromArray([1f, 2f, 3f, 4f], 4);
        using var sum = cuda.Empty([4]);
        using var product = cuda.Empty([3, 2]);
        Action op = call switch
        {
            "cuMemAllocHost_v2" => () => cuda.Upload(host).Dispose(), // the backend's first copy takes its pinned buffer
            "cublasLtMatmul" => () =>
            {
                using var a = Ramp(cuda, 0.5f, 3, 4);
                using var w = Ramp(cuda, 0.1f, 2, 4);
                cuda.Gemm(product, a, w, null, null, false, true);
            },
            _ => () =>
            {
                using var x = cuda.Upload(host);
                cuda.Add(sum, x, x); // the first kernel of elementwise.cu loads the module
            },
        };
        if (call == "cuLaunchKernel")
        {
            op(); // the module loaded, so the injected failure hits the launch
        }
        using (call == "cublasLtMatmul" ? EmulatorSwitches.CublasLt("fail_next:cublasLtMatmul", 3) : EmulatorSwitches.Driver($"fail_next:{call}", 2))
        {
            var error = Assert.Throws<LrmOutOfMemoryException>(() => op());
            Assert.That(error!.Message, Does.Contain(call).And.Contain(what).And.Contain("GiB free"));
        }
        Assert.DoesNotThrow(() => op(), "the backend still works");
    }

    [Test]
    public void AGemmCuBlasLtHasNoAlgorithmForRunsOnTheFp32KernelAndTheAnswerIsKept()
    {
        EmulatorSwitches.Require("a cuBLASLt heuristic without results");
        using var cuda = CudaTestBackends.Open(MatmulPrecision.BFloat16);
        CudaTestBackends.RequireCublasLt(cuda);
        using var cpu = new CpuBackend();
        using var a = Tensor.FromArray(Enumerable.Range(0, 37 * 29).Select(i => MathF.Sin(i * 0.37f)).ToArray(), 37, 29);
        using var w = Tensor.FromArray(Enumerable.Range(0, 23 * 29).Select(i => MathF.Cos(i * 0.11f)).ToArray(), 23, 29);
        using var bias = Tensor.FromArray(Enumerable.Range(0, 23).Select(i => i * 0.01f).ToArray(), 23);
        using var expected = Tensor.Empty([37, 23]);
        cpu.Gemm(expected, a, w, bias, null, false, true);
        using var deviceA = cuda.Upload(a);
        using var deviceW = cuda.Upload(w);
        using var deviceBias = cuda.Upload(bias);
        using var aHalf = cuda.Empty([37, 29], DataType.BFloat16);
        using var wHalf = cuda.Empty([23, 29], DataType.BFloat16);
        cuda.Convert(aHalf, deviceA);
        cuda.Convert(wHalf, deviceW);
        using var output = cuda.Empty([37, 23]);
        using var outputFromHalves = cuda.Empty([37, 23]);
        var calls = EmulatorSwitches.CublasLtValue("heuristic_calls");
        using (EmulatorSwitches.CublasLt("no_algorithm", 1))
        {
            for (var i = 0; i < 2; i++)
            {
                cuda.Gemm(output, deviceA, deviceW, deviceBias, null, false, true);
                cuda.Gemm(outputFromHalves, aHalf, wHalf, deviceBias, null, false, true);
            }
        }
        Assert.That(EmulatorSwitches.CublasLtValue("heuristic_calls") - calls, Is.EqualTo(1),
            "one question for the problem (the same one to cuBLASLt, whether the operands came as fp32 or bf16); the 'no' is kept");
        using var actual = cuda.Download(output);
        Compare.Close(actual, expected, 1e-5, "fp32 kernel instead of cuBLASLt (fp32 operands)");
        using var fromHalves = cuda.Download(outputFromHalves);
        Compare.Close(fromHalves, expected, 1e-2, "fp32 kernel instead of cuBLASLt (bf16 operands)");
    }

    [Test]
    public void ATensorOfAnotherBackendOnTheSameDeviceIsRefused()
    {
        using var first = CudaTestBackends.Open();
        using var second = CudaTestBackends.Open();
        using var host = Tensor.FromArray([1f, 2f, 3f], 3);
        using var theirs = first.Upload(host);
        using var ours = second.Upload(host);
        using var output = second.Empty([3]);
        Assert.That(theirs.Device, Is.EqualTo(ours.Device), "both on the same device");
        var refused = new (string Op, Action Call)[]
        {
            ("Add", () => second.Add(output, ours, theirs)),
            ("Download", () => second.Download(theirs).Dispose()),
            ("Upload", () => second.Upload(theirs, host)),
            ("Fill", () => second.Fill(theirs, 0f)),
        };
        foreach (var (op, call) in refused)
        {
            var error = Assert.Throws<LrmInvalidArgumentException>(() => call(), op);
            Assert.That(error!.Message, Does.Contain(op).And.Contain("another backend"));
        }
        second.Add(output, ours, ours);
        Assert.That(second.ToFloatArray(output), Is.EqualTo(new[] { 2f, 4f, 6f }), "its own tensors are used as before");
    }

    [TestCase("garbage")]
    [TestCase("refused by the driver")]
    public void ADamagedKernelCacheEntryIsCompiledAfreshAndTheOpRuns(string damage)
    {
        // garbage: no ELF file for CUDA, compiled afresh before the driver sees it; refused by the driver: a CUBIN's
        // header over zeros, which the driver does not load, so the entry is deleted and compiled once more.
        var cache = Path.Combine(Path.GetTempPath(), $"lrm-kernel-cache-test-{Guid.NewGuid():N}");
        try
        {
            using var host = Tensor.FromArray([1f, 2f, 3f], 3);
            using (var first = CudaTestBackends.Open(kernelCache: cache))
            {
                using var input = first.Upload(host);
                using var sum = first.Empty([3]);
                first.Add(sum, input, input);
            }
            var entry = Directory.GetFiles(cache, "elementwise-*").Single();
            var good = File.ReadAllBytes(entry);
            var bad = damage == "garbage" ? "not a kernel module"u8.ToArray() : [.. good.AsSpan(0, 64), .. new byte[good.Length - 64]];
            File.WriteAllBytes(entry, bad);

            using var cuda = CudaTestBackends.Open(kernelCache: cache);
            using var deviceInput = cuda.Upload(host);
            using var deviceSum = cuda.Empty([3]);
            cuda.Add(deviceSum, deviceInput, deviceInput);
            Assert.That(cuda.ToFloatArray(deviceSum), Is.EqualTo(new[] { 2f, 4f, 6f }));
            Assert.That(cuda.Compiler.CacheMisses, Is.EqualTo(1), "elementwise.cu compiled once more");
            var replaced = File.ReadAllBytes(entry);
            Assert.That(replaced, Is.Not.EqualTo(bad), "the damaged entry was replaced");
            Assert.That(KernelCompiler.LooksLoadable(replaced, cubin: true), Is.True);
        }
        finally
        {
            if (Directory.Exists(cache))
            {
                Directory.Delete(cache, recursive: true);
            }
        }
    }

    [Test]
    public void KernelsTheDriverCannotLoadMakeCudaUnavailableAtOnceAndAutoTakesTheCpu()
    {
        // As a CUDA 13 NVRTC's CUBIN on a 12.x driver: every module load fails with CUDA_ERROR_UNSUPPORTED_PTX_VERSION.
        EmulatorSwitches.Require("a driver that refuses every module");
        if (!CudaBackend.IsAvailable(out var reason))
        {
            Assert.Ignore($"no CUDA device: {reason}");
        }
        using (EmulatorSwitches.Driver("fail:cuModuleLoadData", 222))
        {
            var error = Assert.Throws<LrmCudaUnavailableException>(() => CudaTestBackends.Open().Dispose());
            Assert.That(error!.Message, Does.Contain("CUDA_ERROR_UNSUPPORTED_PTX_VERSION").And.Contain("made by NVRTC 12.4")
                .And.Contain("for a driver of CUDA 12.4"), "which NVRTC and which driver");
            var (backend, device, note) = BackendFactory.Create(Device.Auto, threads: 1);
            using (backend)
            {
                Assert.That(device, Is.EqualTo(Device.Cpu), "Device.Auto falls back to the CPU");
                Assert.That(note, Does.Contain(BackendFactory.CudaUnavailable).And.Contain("UNSUPPORTED_PTX_VERSION"));
            }
        }
        using var cuda = CudaTestBackends.Open(); // and a driver that loads them gets a backend again
    }

    [Test]
    public void LayerNormBackwardTakesMoreRowsThanGridYHolds()
    {
        // 65535 groups of 256 rows is the most grid y holds; one more row needs the groups on x.
        using var cuda = CudaTestBackends.Open();
        CudaTestDevice.SkipOnEmulator(cuda, "LayerNorm backward over 16.7M rows");
        const long rows = 65535L * 256 + 1, channels = 2;
        using var cpu = new CpuBackend();
        using var input = Tensor.Empty([rows, channels]);
        using var gradOutput = Tensor.Empty([rows, channels]);
        var x = input.AsSpan<float>();
        var dy = gradOutput.AsSpan<float>();
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (i * 37 % 101) / 50f - 1f;
            dy[i] = (i * 11 % 23) / 11f - 1f;
        }
        using var weight = Tensor.FromArray([1.5f, -0.5f], channels);
        using var mean = Tensor.Empty([rows]);
        using var rstd = Tensor.Empty([rows]);
        using var normed = Tensor.Empty([rows, channels]);
        cpu.LayerNorm(normed, mean, rstd, input, weight, null, 1e-5f);
        using var expectedWeight = Tensor.FromArray([0f, 0f], channels);
        using var expectedBias = Tensor.FromArray([0f, 0f], channels);
        using var expectedInput = Tensor.Empty([rows, channels]);
        cpu.LayerNormBackward(expectedInput, expectedWeight, expectedBias, gradOutput, mean, rstd, input, weight);

        using var dInput = cuda.Upload(input);
        using var dGradOutput = cuda.Upload(gradOutput);
        using var dMean = cuda.Upload(mean);
        using var dRstd = cuda.Upload(rstd);
        using var dWeight = cuda.Upload(weight);
        using var dGradInput = cuda.Empty([rows, channels]);
        cuda.Fill(dGradInput, float.NaN); // a row the kernel never reaches stays NaN
        using var dGradWeight = cuda.Zeros([channels]);
        using var dGradBias = cuda.Zeros([channels]);
        cuda.LayerNormBackward(dGradInput, dGradWeight, dGradBias, dGradOutput, dMean, dRstd, dInput, dWeight);
        using var gradWeight = cuda.Download(dGradWeight);
        using var gradBias = cuda.Download(dGradBias);
        using var gradInput = cuda.Download(dGradInput);
        Compare.Close(gradWeight, expectedWeight, 1e-5, "dweight over 16.7M rows");
        Compare.Close(gradBias, expectedBias, 1e-5, "dbias over 16.7M rows");
        Compare.Close(gradInput, expectedInput, 1e-5, "dx over 16.7M rows");
        // The rows past grid y's reach on their own, where a dropped row would be diluted in the norm above.
        const int tail = 257 * (int)channels;
        var last = gradInput.AsSpan<float>()[^tail..];
        var expectedLast = expectedInput.AsSpan<float>()[^tail..];
        Assert.That(Compare.RelativeError(last, expectedLast), Is.LessThan(1e-5), "dx of the last 257 rows (the last one beyond grid y)");
    }
}
