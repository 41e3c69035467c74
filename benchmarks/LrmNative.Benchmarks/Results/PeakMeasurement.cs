using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LrmNative.Benchmarks.Results;

/// <summary>
/// The machine's roofline, measured by our own code on the threads the engine uses (best of several trials):
/// peak fp32 FLOP/s from a register-only fused-multiply-add loop (16 independent accumulators per thread, the widest
/// vectors the JIT accelerates), and memory bandwidth from a STREAM-style triad a = b + s·c over arrays far larger than
/// the last-level cache (bytes counted as STREAM does: 2 reads + 1 write per element, no write-allocate).
/// </summary>
public static class PeakMeasurement
{
    private const int Trials = 5;
    private const double TargetSeconds = 0.2;
    private const long TriadElements = 32L << 20; // 128 MiB per array, 384 MiB in all

    /// <summary>Peak FLOP/s (GFLOP/s) and how it was measured.</summary>
    public static (double Gflops, string Source) Flops(int threads)
    {
        threads = Math.Max(1, threads);
        var lanes = Vector512.IsHardwareAccelerated ? Vector512<float>.Count : Vector256.IsHardwareAccelerated ? Vector256<float>.Count : Vector128<float>.Count;
        Func<long, float> loop = Vector512.IsHardwareAccelerated ? FmaLoop512 : Vector256.IsHardwareAccelerated ? FmaLoop256 : FmaLoop128;
        // Calibrate on one thread so that a trial takes about TargetSeconds.
        loop(1000);
        var calibration = Stopwatch.StartNew();
        loop(1_000_000);
        var iterations = Math.Max(1_000_000, (long)(1_000_000 * TargetSeconds / Math.Max(calibration.Elapsed.TotalSeconds, 1e-6)));
        var best = double.PositiveInfinity;
        for (var trial = 0; trial < Trials; trial++)
        {
            best = Math.Min(best, RunParallel(threads, _ => loop(iterations)));
        }
        var flops = 2.0 * Accumulators * lanes * iterations * threads;
        var width = lanes * 32;
        return (flops / best / 1e9, string.Create(CultureInfo.InvariantCulture,
            $"measured: {width}-bit fused multiply-add loop, {Accumulators} independent accumulators per thread, {threads} thread(s), best of {Trials}"));
    }

    /// <summary>Memory bandwidth (GB/s) and how it was measured.</summary>
    public static unsafe (double Gbps, string Source) Bandwidth(int threads)
    {
        threads = Math.Max(1, threads);
        var bytes = (nuint)(TriadElements * sizeof(float));
        var a = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        var b = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        var c = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        try
        {
            // First touch by the threads that will stream each part (NUMA placement where it matters).
            RunParallel(threads, thread =>
            {
                var (start, end) = Part(thread, threads);
                for (var i = start; i < end; i++)
                {
                    a[i] = 0;
                    b[i] = 1 + (i & 7);
                    c[i] = 2 - (i & 3);
                }
                return 0;
            });
            var best = double.PositiveInfinity;
            for (var trial = 0; trial < Trials + 1; trial++)
            {
                var seconds = RunParallel(threads, thread =>
                {
                    var (start, end) = Part(thread, threads);
                    Triad(a + start, b + start, c + start, end - start, 0.5f);
                    return 0;
                });
                if (trial > 0)
                {
                    best = Math.Min(best, seconds);
                }
            }
            var moved = 3.0 * TriadElements * sizeof(float);
            return (moved / best / 1e9, string.Create(CultureInfo.InvariantCulture,
                $"measured: STREAM-style triad a = b + s*c over 3 x {TriadElements * sizeof(float) >> 20} MiB, {threads} thread(s), best of {Trials}, 3 x 4 bytes per element (no write-allocate)"));
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
            NativeMemory.AlignedFree(c);
        }
    }

    private const int Accumulators = 16;

    private static (long Start, long End) Part(int thread, int threads)
    {
        var chunk = (TriadElements / threads + 63) / 64 * 64;
        var start = Math.Min(TriadElements, thread * chunk);
        return (start, Math.Min(TriadElements, start + chunk));
    }

    // Seconds from a common start until the last thread finishes.
    private static double RunParallel(int threads, Func<int, float> body)
    {
        using var start = new Barrier(threads + 1);
        var sink = new float[threads];
        var workers = new Thread[threads];
        for (var t = 0; t < threads; t++)
        {
            var index = t;
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                sink[index] = body(index);
            })
            { IsBackground = true };
            workers[t].Start();
        }
        start.SignalAndWait();
        var clock = Stopwatch.StartNew();
        foreach (var worker in workers)
        {
            worker.Join();
        }
        var seconds = clock.Elapsed.TotalSeconds;
        GC.KeepAlive(sink);
        return seconds;
    }

    private static unsafe void Triad(float* a, float* b, float* c, long count, float scale)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale);
            for (; i + 16 <= count; i += 16)
            {
                Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(c + i), s, Vector512.Load(b + i)), a + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i + 8 <= count; i += 8)
            {
                Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(c + i), s, Vector256.Load(b + i)), a + i);
            }
        }
        for (; i < count; i++)
        {
            a[i] = b[i] + scale * c[i];
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float FmaLoop512(long iterations)
    {
        var m = Vector512.Create(0.9999999f);
        var add = Vector512.Create(1e-7f);
        Vector512<float> x0 = Vector512.Create(1.0f), x1 = Vector512.Create(1.1f), x2 = Vector512.Create(1.2f), x3 = Vector512.Create(1.3f);
        Vector512<float> x4 = Vector512.Create(1.4f), x5 = Vector512.Create(1.5f), x6 = Vector512.Create(1.6f), x7 = Vector512.Create(1.7f);
        Vector512<float> x8 = Vector512.Create(1.8f), x9 = Vector512.Create(1.9f), x10 = Vector512.Create(2.0f), x11 = Vector512.Create(2.1f);
        Vector512<float> x12 = Vector512.Create(2.2f), x13 = Vector512.Create(2.3f), x14 = Vector512.Create(2.4f), x15 = Vector512.Create(2.5f);
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector512.FusedMultiplyAdd(x0, m, add); x1 = Vector512.FusedMultiplyAdd(x1, m, add);
            x2 = Vector512.FusedMultiplyAdd(x2, m, add); x3 = Vector512.FusedMultiplyAdd(x3, m, add);
            x4 = Vector512.FusedMultiplyAdd(x4, m, add); x5 = Vector512.FusedMultiplyAdd(x5, m, add);
            x6 = Vector512.FusedMultiplyAdd(x6, m, add); x7 = Vector512.FusedMultiplyAdd(x7, m, add);
            x8 = Vector512.FusedMultiplyAdd(x8, m, add); x9 = Vector512.FusedMultiplyAdd(x9, m, add);
            x10 = Vector512.FusedMultiplyAdd(x10, m, add); x11 = Vector512.FusedMultiplyAdd(x11, m, add);
            x12 = Vector512.FusedMultiplyAdd(x12, m, add); x13 = Vector512.FusedMultiplyAdd(x13, m, add);
            x14 = Vector512.FusedMultiplyAdd(x14, m, add); x15 = Vector512.FusedMultiplyAdd(x15, m, add);
        }
        var sum = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + ((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15));
        return Vector512.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float FmaLoop256(long iterations)
    {
        var m = Vector256.Create(0.9999999f);
        var add = Vector256.Create(1e-7f);
        Vector256<float> x0 = Vector256.Create(1.0f), x1 = Vector256.Create(1.1f), x2 = Vector256.Create(1.2f), x3 = Vector256.Create(1.3f);
        Vector256<float> x4 = Vector256.Create(1.4f), x5 = Vector256.Create(1.5f), x6 = Vector256.Create(1.6f), x7 = Vector256.Create(1.7f);
        Vector256<float> x8 = Vector256.Create(1.8f), x9 = Vector256.Create(1.9f), x10 = Vector256.Create(2.0f), x11 = Vector256.Create(2.1f);
        Vector256<float> x12 = Vector256.Create(2.2f), x13 = Vector256.Create(2.3f), x14 = Vector256.Create(2.4f), x15 = Vector256.Create(2.5f);
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector256.FusedMultiplyAdd(x0, m, add); x1 = Vector256.FusedMultiplyAdd(x1, m, add);
            x2 = Vector256.FusedMultiplyAdd(x2, m, add); x3 = Vector256.FusedMultiplyAdd(x3, m, add);
            x4 = Vector256.FusedMultiplyAdd(x4, m, add); x5 = Vector256.FusedMultiplyAdd(x5, m, add);
            x6 = Vector256.FusedMultiplyAdd(x6, m, add); x7 = Vector256.FusedMultiplyAdd(x7, m, add);
            x8 = Vector256.FusedMultiplyAdd(x8, m, add); x9 = Vector256.FusedMultiplyAdd(x9, m, add);
            x10 = Vector256.FusedMultiplyAdd(x10, m, add); x11 = Vector256.FusedMultiplyAdd(x11, m, add);
            x12 = Vector256.FusedMultiplyAdd(x12, m, add); x13 = Vector256.FusedMultiplyAdd(x13, m, add);
            x14 = Vector256.FusedMultiplyAdd(x14, m, add); x15 = Vector256.FusedMultiplyAdd(x15, m, add);
        }
        var sum = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + ((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15));
        return Vector256.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float FmaLoop128(long iterations)
    {
        var m = Vector128.Create(0.9999999f);
        var add = Vector128.Create(1e-7f);
        Vector128<float> x0 = Vector128.Create(1.0f), x1 = Vector128.Create(1.1f), x2 = Vector128.Create(1.2f), x3 = Vector128.Create(1.3f);
        Vector128<float> x4 = Vector128.Create(1.4f), x5 = Vector128.Create(1.5f), x6 = Vector128.Create(1.6f), x7 = Vector128.Create(1.7f);
        Vector128<float> x8 = Vector128.Create(1.8f), x9 = Vector128.Create(1.9f), x10 = Vector128.Create(2.0f), x11 = Vector128.Create(2.1f);
        Vector128<float> x12 = Vector128.Create(2.2f), x13 = Vector128.Create(2.3f), x14 = Vector128.Create(2.4f), x15 = Vector128.Create(2.5f);
        for (long i = 0; i < iterations; i++)
        {
            x0 = Vector128.FusedMultiplyAdd(x0, m, add); x1 = Vector128.FusedMultiplyAdd(x1, m, add);
            x2 = Vector128.FusedMultiplyAdd(x2, m, add); x3 = Vector128.FusedMultiplyAdd(x3, m, add);
            x4 = Vector128.FusedMultiplyAdd(x4, m, add); x5 = Vector128.FusedMultiplyAdd(x5, m, add);
            x6 = Vector128.FusedMultiplyAdd(x6, m, add); x7 = Vector128.FusedMultiplyAdd(x7, m, add);
            x8 = Vector128.FusedMultiplyAdd(x8, m, add); x9 = Vector128.FusedMultiplyAdd(x9, m, add);
            x10 = Vector128.FusedMultiplyAdd(x10, m, add); x11 = Vector128.FusedMultiplyAdd(x11, m, add);
            x12 = Vector128.FusedMultiplyAdd(x12, m, add); x13 = Vector128.FusedMultiplyAdd(x13, m, add);
            x14 = Vector128.FusedMultiplyAdd(x14, m, add); x15 = Vector128.FusedMultiplyAdd(x15, m, add);
        }
        var sum = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + ((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15));
        return Vector128.Sum(sum);
    }
}
