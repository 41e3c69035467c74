using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LrmNative.Backends;

/// <summary>
/// <see cref="CpuBackend.GridPoints"/>: the points (x, y, z) of grid indices first .. first + n − 1 of a dense R³ grid over
/// [−1, 1]³, x fastest, each coordinate −1 + 2·i/(R − 1) in fp32 (the operation order of DensityGrid.Coordinate and the
/// CUDA kernel).
/// </summary>
/// <remarks>
/// Pure memory writing (12 bytes a point), so it is written as stores of whole vectors: the R axis coordinates are computed
/// once per call into a row template (x, ·, ·, x, ·, ·, …) of 3R floats, and every whole row of the grid (fixed y and z) is
/// the template with the y and z lanes blended in, one vector at a time. A vector of W floats starts at row offset vW, whose
/// phase mod 3 repeats every three vectors, so three lane masks serve the whole row. Blending copies values, so the points are
/// bitwise the scalar formula's. A partial first or last row, and the last 3R mod W floats of each row, are written one point
/// or float at a time. Large slabs are split into row ranges over the library's thread count (<see cref="ParallelRows"/>;
/// a short-lived fork next to OpenMP's pool: the slab's NeRF query that follows takes milliseconds, this microseconds).
/// Measured (Zen 5, 2 threads, busy shared machine, BenchmarkDotNet minimum): 256³ slab of 4 planes 234 → ~100 µs,
/// 384³ plane 127 → ~50 µs (PyTorch 1.13 meshgrid + stack: ~145 and ~90 µs).
/// </remarks>
internal static class GridPointsCpu
{
    /// <summary>Points at or above which a slab is split over threads (768 KB written: below that a fork/join costs more).</summary>
    internal const long ParallelPoints = 1 << 16;

    /// <summary>The widest vector (floats) this machine writes rows with: 16, 8, or 0 (one float at a time).</summary>
    internal static int HardwareVectorFloats =>
        Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 0;

    /// <summary>
    /// Writes the points of grid indices <paramref name="first"/> .. into <paramref name="points"/> (3 floats each), on up
    /// to <paramref name="threads"/> threads, rows in vectors of <paramref name="vectorFloats"/> floats (16, 8 or 0; tests
    /// pick narrower ones than the hardware's).
    /// </summary>
    public static void Write(Span<float> points, int resolution, long first, int threads, int vectorFloats)
    {
        if (vectorFloats is not (0 or 8 or 16) || vectorFloats > HardwareVectorFloats)
        {
            throw new ArgumentOutOfRangeException(nameof(vectorFloats), vectorFloats, $"16, 8 or 0, at most {HardwareVectorFloats} on this machine");
        }
        var count = points.Length / 3;
        var axis = new float[resolution];
        float scale = resolution - 1;
        for (var i = 0; i < resolution; i++)
        {
            axis[i] = -1f + 2f * i / scale;
        }
        long plane = (long)resolution * resolution;
        int x = (int)(first % resolution), y = (int)(first / resolution % resolution), z = (int)(first / plane);
        // Head: up to the first whole row.
        var head = x == 0 ? 0 : Math.Min(count, resolution - x);
        WriteScalar(points[..(3 * head)], axis, ref x, ref y, ref z);
        var rows = (count - head) / resolution;
        var body = points.Slice(3 * head, 3 * rows * resolution);
        var template = Template(axis);
        var startRow = (long)z * resolution + y; // row index in the grid (z·R + y) of the first whole row
        if (threads > 1 && (long)rows * resolution >= ParallelPoints)
        {
            ParallelRows(body, template, axis, startRow, rows, threads, vectorFloats);
        }
        else
        {
            WriteRows(body, template, axis, startRow, rows, vectorFloats);
        }
        // Tail: the points after the last whole row.
        var after = startRow + rows;
        x = 0;
        y = (int)(after % resolution);
        z = (int)(after / resolution);
        WriteScalar(points[(3 * (head + rows * resolution))..], axis, ref x, ref y, ref z);
    }

    // The row template: axis[x] at 3x (y and z lanes 0, overwritten per row).
    private static float[] Template(float[] axis)
    {
        var template = new float[3 * axis.Length];
        for (var i = 0; i < axis.Length; i++)
        {
            template[3 * i] = axis[i];
        }
        return template;
    }

    // Rows split into one contiguous range per thread (Parallel.For over the ranges, the caller's thread taking one).
    private static unsafe void ParallelRows(Span<float> body, float[] template, float[] axis, long startRow, int rows, int threads, int vectorFloats)
    {
        var parts = Math.Min(threads, rows);
        var width = 3 * axis.Length;
        fixed (float* start = body)
        {
            var pointer = (nint)start;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                var r0 = (int)((long)rows * part / parts);
                var r1 = (int)((long)rows * (part + 1) / parts);
                var span = new Span<float>((float*)pointer + (long)r0 * width, (r1 - r0) * width);
                WriteRows(span, template, axis, startRow + r0, r1 - r0, vectorFloats);
            });
        }
    }

    // Whole rows: grid row index startRow .. startRow + rows − 1 (y = row mod R, z = row / R).
    private static void WriteRows(Span<float> destination, float[] template, float[] axis, long startRow, int rows, int vectorFloats)
    {
        var resolution = axis.Length;
        var width = 3 * resolution;
        // Vector v of W floats starts at row offset vW; W ≡ 1 (mod 3) for 16 and 2 for 8, so the phase of vector v is
        // v or 2v mod 3. Masks by vector index mod 3: the x lanes, and of the others the y lanes.
        var step = vectorFloats == 16 ? 1 : 2;
        Span<int> bits = stackalloc int[16];
        Span<Vector512<float>> masks512 = stackalloc Vector512<float>[6];
        Span<Vector256<float>> masks256 = stackalloc Vector256<float>[6];
        for (var k = 0; k < 3; k++)
        {
            for (var coordinate = 0; coordinate < 2; coordinate++)
            {
                for (var e = 0; e < 16; e++)
                {
                    bits[e] = (k * step + e) % 3 == coordinate ? -1 : 0;
                }
                masks512[2 * k + coordinate] = Vector512.Create<int>(bits).AsSingle();
                masks256[2 * k + coordinate] = Vector256.Create<int>(bits[..8]).AsSingle();
            }
        }
        for (var r = 0; r < rows; r++)
        {
            var row = startRow + r;
            float yv = axis[(int)(row % resolution)], zv = axis[(int)(row / resolution)];
            var dst = destination.Slice(r * width, width);
            var done = vectorFloats switch
            {
                16 => Row512(dst, template, masks512, yv, zv),
                8 => Row256(dst, template, masks256, yv, zv),
                _ => 0,
            };
            for (var i = done; i < width; i++)
            {
                var lane = i % 3;
                dst[i] = lane == 0 ? template[i] : lane == 1 ? yv : zv;
            }
        }
    }

    // One row with 16-float vectors; returns the floats written (a multiple of 16). masks: (x lanes, y lanes) by v mod 3.
    private static int Row512(Span<float> dst, float[] template, ReadOnlySpan<Vector512<float>> masks, float y, float z)
    {
        var count = dst.Length / Vector512<float>.Count;
        ref var d = ref MemoryMarshal.GetReference(dst);
        ref var t = ref MemoryMarshal.GetArrayDataReference(template);
        Vector512<float> vy = Vector512.Create(y), vz = Vector512.Create(z);
        Vector512<float> x0 = masks[0], x1 = masks[2], x2 = masks[4];
        var v0 = Vector512.ConditionalSelect(masks[1], vy, vz);
        var v1 = Vector512.ConditionalSelect(masks[3], vy, vz);
        var v2 = Vector512.ConditionalSelect(masks[5], vy, vz);
        var i = 0;
        for (; i + 3 <= count; i += 3)
        {
            var o = (nuint)(i * Vector512<float>.Count);
            Vector512.ConditionalSelect(x0, Vector512.LoadUnsafe(ref t, o), v0).StoreUnsafe(ref d, o);
            Vector512.ConditionalSelect(x1, Vector512.LoadUnsafe(ref t, o + 16), v1).StoreUnsafe(ref d, o + 16);
            Vector512.ConditionalSelect(x2, Vector512.LoadUnsafe(ref t, o + 32), v2).StoreUnsafe(ref d, o + 32);
        }
        if (i < count)
        {
            var o = (nuint)(i * Vector512<float>.Count);
            Vector512.ConditionalSelect(x0, Vector512.LoadUnsafe(ref t, o), v0).StoreUnsafe(ref d, o);
            if (i + 1 < count)
            {
                Vector512.ConditionalSelect(x1, Vector512.LoadUnsafe(ref t, o + 16), v1).StoreUnsafe(ref d, o + 16);
            }
        }
        return count * Vector512<float>.Count;
    }

    // One row with 8-float vectors; returns the floats written (a multiple of 8).
    private static int Row256(Span<float> dst, float[] template, ReadOnlySpan<Vector256<float>> masks, float y, float z)
    {
        var count = dst.Length / Vector256<float>.Count;
        ref var d = ref MemoryMarshal.GetReference(dst);
        ref var t = ref MemoryMarshal.GetArrayDataReference(template);
        Vector256<float> vy = Vector256.Create(y), vz = Vector256.Create(z);
        Vector256<float> x0 = masks[0], x1 = masks[2], x2 = masks[4];
        var v0 = Vector256.ConditionalSelect(masks[1], vy, vz);
        var v1 = Vector256.ConditionalSelect(masks[3], vy, vz);
        var v2 = Vector256.ConditionalSelect(masks[5], vy, vz);
        var i = 0;
        for (; i + 3 <= count; i += 3)
        {
            var o = (nuint)(i * Vector256<float>.Count);
            Vector256.ConditionalSelect(x0, Vector256.LoadUnsafe(ref t, o), v0).StoreUnsafe(ref d, o);
            Vector256.ConditionalSelect(x1, Vector256.LoadUnsafe(ref t, o + 8), v1).StoreUnsafe(ref d, o + 8);
            Vector256.ConditionalSelect(x2, Vector256.LoadUnsafe(ref t, o + 16), v2).StoreUnsafe(ref d, o + 16);
        }
        if (i < count)
        {
            var o = (nuint)(i * Vector256<float>.Count);
            Vector256.ConditionalSelect(x0, Vector256.LoadUnsafe(ref t, o), v0).StoreUnsafe(ref d, o);
            if (i + 1 < count)
            {
                Vector256.ConditionalSelect(x1, Vector256.LoadUnsafe(ref t, o + 8), v1).StoreUnsafe(ref d, o + 8);
            }
        }
        return count * Vector256<float>.Count;
    }

    // Points one at a time from index (x, y, z), advancing it.
    private static void WriteScalar(Span<float> points, float[] axis, ref int x, ref int y, ref int z)
    {
        var resolution = axis.Length;
        for (var i = 0; i + 2 < points.Length; i += 3)
        {
            points[i] = axis[x];
            points[i + 1] = axis[y];
            points[i + 2] = axis[z];
            if (++x == resolution)
            {
                x = 0;
                if (++y == resolution)
                {
                    y = 0;
                    z++;
                }
            }
        }
    }
}
