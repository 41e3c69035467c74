using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LrmNative.Metrics;

/// <summary>
/// The SSIM value and gradient of a batch of interleaved images (B, H, W, C) in double precision, one (image, channel) plane
/// per task (<see cref="Parallel"/>), every pass SIMD over contiguous rows (<see cref="Vector512"/>, <see cref="Vector256"/>
/// or <see cref="Vector128"/> of doubles, whichever the machine accelerates). <see cref="ImageMetrics"/> defines what is
/// computed (valid windows, C1, C2, the gradient's coefficients); this is how, per plane, streaming down the rows:
/// <list type="number">
/// <item>the plane is copied to doubles with rows padded to the vector width (zeros), and the products x², y², xy of the
/// eleven rows a window row spans are kept in a ring of eleven rows;</item>
/// <item>for output row i, a column pass gives the vertical Gaussian sums of x, y, x², y², xy over rows i…i+10 for every
/// column, then a row pass the five window sums μx, μy, Σgx², Σgy², Σgxy at the valid columns, and from them the SSIM
/// map and the gradient's coefficients α, β, γ (one division per window);</item>
/// <item>the gradient's adjoint ("full") filter runs the same way backwards: a row pass of the coefficient row, zero-padded
/// by ten on both sides (the window is symmetric, so the transposed filter is the same correlation), into a ring of
/// eleven rows, and as soon as row p of the ring is complete the column pass gives gradient row p.</item>
/// </list>
/// The working set per plane is the two double planes and a few rows (about 2·H·W doubles), the window sums are never
/// stored as planes. Lanes past the valid columns are computed on padding and masked out of the sums and coefficients.
/// Results do not depend on the thread count: each plane is summed in a fixed order and the planes are added in order.
/// </summary>
internal static class SsimKernel
{
    private const int Taps = ImageMetrics.WindowSize;

    // Below this many pixels in all (planes × H × W) the planes run on the calling thread: the work is shorter than a fork.
    private const long ParallelPixels = 8192;

    private static readonly double[] Gaussian = ImageMetrics.GaussianWindow();

    /// <summary>
    /// SSIM of each image into <paramref name="values"/> (B) and, unless <paramref name="gradient"/> is empty,
    /// gradientScale·∂SSIM_b/∂x_b written (or added, <paramref name="accumulate"/>) to <paramref name="gradient"/> (B, H, W, C).
    /// Shapes are checked by the caller. <paramref name="vectorBits"/> 128, 256 or 512 picks the vector width (tests cover
    /// each); 0, the widest the machine accelerates.
    /// </summary>
    public static unsafe void Run(Span<double> values, Span<float> gradient, double gradientScale, bool accumulate,
        ReadOnlySpan<float> x, ReadOnlySpan<float> y, int images, int height, int width, int channels, double c1, double c2, int vectorBits = 0)
    {
        if (vectorBits == 0)
        {
            vectorBits = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;
        }
        var planes = images * channels;
        var totals = new double[planes];
        var windows = (double)(height - Taps + 1) * (width - Taps + 1);
        fixed (float* px = x, py = y, pg = gradient)
        {
            var job = new Job((nint)px, (nint)py, (nint)pg, gradientScale / (windows * channels), !gradient.IsEmpty, accumulate, height, width,
                channels, c1, c2, totals);
            switch (vectorBits)
            {
                case 512:
                    job.Run<Vector512<double>, Lanes512>(planes);
                    break;
                case 256:
                    job.Run<Vector256<double>, Lanes256>(planes);
                    break;
                case 128:
                    job.Run<Vector128<double>, Lanes128>(planes);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(vectorBits), vectorBits, "128, 256 or 512");
            }
        }
        for (var b = 0; b < images; b++)
        {
            double sum = 0;
            for (var c = 0; c < channels; c++)
            {
                sum += totals[b * channels + c];
            }
            values[b] = sum / (windows * channels);
        }
    }

    private sealed unsafe class Job(nint x, nint y, nint gradient, double gradientScale, bool withGradient, bool accumulate,
        int height, int width, int channels, double c1, double c2, double[] totals)
    {
        public void Run<TV, TOps>(int planes)
            where TV : struct
            where TOps : ILanes<TV>
        {
            var layout = new Layout(height, width, TOps.Count);
            if (planes > 1 && (long)planes * height * width >= ParallelPixels)
            {
                Parallel.For(0, planes, () => ArrayPool<double>.Shared.Rent(layout.Length),
                    (plane, _, scratch) =>
                    {
                        totals[plane] = Plane<TV, TOps>(plane, scratch, layout);
                        return scratch;
                    },
                    scratch => ArrayPool<double>.Shared.Return(scratch));
                return;
            }
            var buffer = ArrayPool<double>.Shared.Rent(layout.Length);
            try
            {
                for (var plane = 0; plane < planes; plane++)
                {
                    totals[plane] = Plane<TV, TOps>(plane, buffer, layout);
                }
            }
            finally
            {
                ArrayPool<double>.Shared.Return(buffer);
            }
        }

        // One (image, channel) plane: returns the sum of its SSIM map and writes its gradient.
        private double Plane<TV, TOps>(int plane, double[] buffer, Layout layout)
            where TV : struct
            where TOps : ILanes<TV>
        {
            int lanes = TOps.Count, padded = layout.Padded;
            int outH = height - Taps + 1, outW = width - Taps + 1, outPadded = layout.OutPadded;
            var imageOffset = (long)(plane / channels) * height * width * channels + plane % channels;
            var xs = (float*)x + imageOffset;
            var ys = (float*)y + imageOffset;
            ref var scratch = ref MemoryMarshal.GetArrayDataReference(buffer);
            ref var xd = ref Unsafe.Add(ref scratch, layout.X);
            ref var yd = ref Unsafe.Add(ref scratch, layout.Y);
            ref var products = ref Unsafe.Add(ref scratch, layout.Products);
            ref var sums = ref Unsafe.Add(ref scratch, layout.Sums);
            ref var coefficients = ref Unsafe.Add(ref scratch, layout.Coefficients);
            ref var spread = ref Unsafe.Add(ref scratch, layout.Spread);
            ref var row = ref Unsafe.Add(ref scratch, layout.Row);
            ref var g = ref MemoryMarshal.GetArrayDataReference(Gaussian);

            for (var i = 0; i < height; i++)
            {
                var source = (long)i * width * channels;
                var target = i * padded;
                for (var j = 0; j < width; j++)
                {
                    Unsafe.Add(ref xd, target + j) = xs[source + (long)j * channels];
                    Unsafe.Add(ref yd, target + j) = ys[source + (long)j * channels];
                }
                for (var j = width; j < padded; j++)
                {
                    Unsafe.Add(ref xd, target + j) = 0;
                    Unsafe.Add(ref yd, target + j) = 0;
                }
            }
            // The tails past the padded width are read by the last chunks of the row passes (and masked); the coefficient rows'
            // ten leading and trailing zeros are the adjoint filter's padding; the spread ring starts as the rows above the image.
            for (var k = 0; k < 5; k++)
            {
                MemoryMarshal.CreateSpan(ref Unsafe.Add(ref sums, k * layout.SumsStride + padded), layout.SumsStride - padded).Clear();
            }
            MemoryMarshal.CreateSpan(ref coefficients, 3 * layout.CoefficientsStride).Clear();
            MemoryMarshal.CreateSpan(ref spread, 3 * Taps * padded).Clear();
            for (var r = 0; r < Taps - 1; r++)
            {
                ProductRow<TV, TOps>(ref products, ref xd, ref yd, r, padded);
            }

            var ringSize = Taps * padded;
            Span<int> slots = stackalloc int[Taps];
            var c1v = TOps.Create(c1);
            var c2v = TOps.Create(c2);
            var two = TOps.Create(2);
            var lastMask = TOps.FirstLanes(outW - (outPadded - lanes));
            var total = TOps.Zero;
            for (var i = 0; i < outH; i++)
            {
                ProductRow<TV, TOps>(ref products, ref xd, ref yd, i + Taps - 1, padded);
                for (var a = 0; a < Taps; a++)
                {
                    slots[a] = (i + a) % Taps * padded;
                }
                // Column pass: vertical sums of x, y, x², y², xy over rows i…i+10, every column.
                for (var j = 0; j < padded; j += lanes)
                {
                    TV sx = TOps.Zero, sy = TOps.Zero, sxx = TOps.Zero, syy = TOps.Zero, sxy = TOps.Zero;
                    for (var a = 0; a < Taps; a++)
                    {
                        var weight = TOps.Create(Unsafe.Add(ref g, a));
                        var at = (i + a) * padded + j;
                        var ring = slots[a] + j;
                        sx = TOps.MultiplyAdd(TOps.Load(ref xd, at), weight, sx);
                        sy = TOps.MultiplyAdd(TOps.Load(ref yd, at), weight, sy);
                        sxx = TOps.MultiplyAdd(TOps.Load(ref products, ring), weight, sxx);
                        syy = TOps.MultiplyAdd(TOps.Load(ref products, ringSize + ring), weight, syy);
                        sxy = TOps.MultiplyAdd(TOps.Load(ref products, 2 * ringSize + ring), weight, sxy);
                    }
                    TOps.Store(sx, ref sums, j);
                    TOps.Store(sy, ref sums, layout.SumsStride + j);
                    TOps.Store(sxx, ref sums, 2 * layout.SumsStride + j);
                    TOps.Store(syy, ref sums, 3 * layout.SumsStride + j);
                    TOps.Store(sxy, ref sums, 4 * layout.SumsStride + j);
                }
                // Row pass at the valid columns, the SSIM map and the gradient's coefficients.
                for (var j = 0; j < outPadded; j += lanes)
                {
                    TV mx = TOps.Zero, my = TOps.Zero, exx = TOps.Zero, eyy = TOps.Zero, exy = TOps.Zero;
                    for (var b = 0; b < Taps; b++)
                    {
                        var weight = TOps.Create(Unsafe.Add(ref g, b));
                        var at = j + b;
                        mx = TOps.MultiplyAdd(TOps.Load(ref sums, at), weight, mx);
                        my = TOps.MultiplyAdd(TOps.Load(ref sums, layout.SumsStride + at), weight, my);
                        exx = TOps.MultiplyAdd(TOps.Load(ref sums, 2 * layout.SumsStride + at), weight, exx);
                        eyy = TOps.MultiplyAdd(TOps.Load(ref sums, 3 * layout.SumsStride + at), weight, eyy);
                        exy = TOps.MultiplyAdd(TOps.Load(ref sums, 4 * layout.SumsStride + at), weight, exy);
                    }
                    var mxmy = TOps.Multiply(mx, my);
                    var mx2 = TOps.Multiply(mx, mx);
                    var my2 = TOps.Multiply(my, my);
                    var a1 = TOps.Add(TOps.Multiply(two, mxmy), c1v);
                    var a2 = TOps.Add(TOps.Multiply(two, TOps.Subtract(exy, mxmy)), c2v);
                    var b1 = TOps.Add(TOps.Add(mx2, my2), c1v);
                    var b2 = TOps.Add(TOps.Add(TOps.Subtract(exx, mx2), TOps.Subtract(eyy, my2)), c2v);
                    var d = TOps.Divide(TOps.Create(1), TOps.Multiply(b1, b2));
                    var s = TOps.Multiply(TOps.Multiply(a1, a2), d);
                    var last = j + lanes >= outPadded;
                    total = TOps.Add(total, last ? TOps.Select(lastMask, s, TOps.Zero) : s);
                    if (!withGradient)
                    {
                        continue;
                    }
                    // s/a1 = a2·d, s/a2 = a1·d, s/b1 = s·b2·d, s/b2 = s·b1·d with d = 1/(b1·b2).
                    var twoD = TOps.Multiply(two, d);
                    var alpha = TOps.Multiply(twoD, TOps.Add(TOps.Multiply(my, TOps.Subtract(a2, a1)), TOps.Multiply(TOps.Multiply(mx, s), TOps.Subtract(b1, b2))));
                    var beta = TOps.Multiply(twoD, a1);
                    var gamma = TOps.Negate(TOps.Multiply(TOps.Multiply(twoD, s), b1));
                    if (last)
                    {
                        alpha = TOps.Select(lastMask, alpha, TOps.Zero);
                        beta = TOps.Select(lastMask, beta, TOps.Zero);
                        gamma = TOps.Select(lastMask, gamma, TOps.Zero);
                    }
                    TOps.Store(alpha, ref coefficients, Taps - 1 + j);
                    TOps.Store(beta, ref coefficients, layout.CoefficientsStride + Taps - 1 + j);
                    TOps.Store(gamma, ref coefficients, 2 * layout.CoefficientsStride + Taps - 1 + j);
                }
                if (withGradient)
                {
                    // Adjoint row pass: spread[q] = Σ_b g[b]·coefficient[q + b − 10] (g symmetric), into ring row i.
                    var slot = i % Taps * padded;
                    for (var q = 0; q < padded; q += lanes)
                    {
                        TV sa = TOps.Zero, sb = TOps.Zero, sc = TOps.Zero;
                        for (var b = 0; b < Taps; b++)
                        {
                            var weight = TOps.Create(Unsafe.Add(ref g, b));
                            var at = q + b;
                            sa = TOps.MultiplyAdd(TOps.Load(ref coefficients, at), weight, sa);
                            sb = TOps.MultiplyAdd(TOps.Load(ref coefficients, layout.CoefficientsStride + at), weight, sb);
                            sc = TOps.MultiplyAdd(TOps.Load(ref coefficients, 2 * layout.CoefficientsStride + at), weight, sc);
                        }
                        TOps.Store(sa, ref spread, slot + q);
                        TOps.Store(sb, ref spread, ringSize + slot + q);
                        TOps.Store(sc, ref spread, 2 * ringSize + slot + q);
                    }
                    GradientRow<TV, TOps>(ref spread, ref xd, ref yd, ref row, ref g, slots, i, padded, plane);
                }
            }
            if (withGradient)
            {
                // Rows below the last window: the ring rows past outH are zero.
                for (var p = outH; p < height; p++)
                {
                    var slot = p % Taps * padded;
                    for (var k = 0; k < 3; k++)
                    {
                        MemoryMarshal.CreateSpan(ref Unsafe.Add(ref spread, k * ringSize + slot), padded).Clear();
                    }
                    GradientRow<TV, TOps>(ref spread, ref xd, ref yd, ref row, ref g, slots, p, padded, plane);
                }
            }
            return TOps.Sum(total);
        }

        // Gradient row p: the adjoint column pass over ring rows p−10…p, combined as α⋆ + y·(β⋆) + x·(γ⋆), scaled, interleaved.
        private void GradientRow<TV, TOps>(ref double spread, ref double xd, ref double yd, ref double row, ref double g, Span<int> slots,
            int p, int padded, int plane)
            where TV : struct
            where TOps : ILanes<TV>
        {
            var lanes = TOps.Count;
            var ringSize = Taps * padded;
            for (var a = 0; a < Taps; a++)
            {
                slots[a] = ((p - a) % Taps + Taps) % Taps * padded;
            }
            for (var q = 0; q < padded; q += lanes)
            {
                TV sa = TOps.Zero, sb = TOps.Zero, sc = TOps.Zero;
                for (var a = 0; a < Taps; a++)
                {
                    var weight = TOps.Create(Unsafe.Add(ref g, a));
                    var at = slots[a] + q;
                    sa = TOps.MultiplyAdd(TOps.Load(ref spread, at), weight, sa);
                    sb = TOps.MultiplyAdd(TOps.Load(ref spread, ringSize + at), weight, sb);
                    sc = TOps.MultiplyAdd(TOps.Load(ref spread, 2 * ringSize + at), weight, sc);
                }
                var at2 = p * padded + q;
                var value = TOps.MultiplyAdd(TOps.Load(ref xd, at2), sc, TOps.MultiplyAdd(TOps.Load(ref yd, at2), sb, sa));
                TOps.Store(TOps.Multiply(value, TOps.Create(gradientScale)), ref row, q);
            }
            var output = (float*)gradient + (long)(plane / channels) * height * width * channels + plane % channels + (long)p * width * channels;
            if (accumulate)
            {
                for (var q = 0; q < width; q++)
                {
                    output[(long)q * channels] += (float)Unsafe.Add(ref row, q);
                }
            }
            else
            {
                for (var q = 0; q < width; q++)
                {
                    output[(long)q * channels] = (float)Unsafe.Add(ref row, q);
                }
            }
        }

        // Ring row r % 11 of the products x², y², xy of image row r.
        private static void ProductRow<TV, TOps>(ref double products, ref double xd, ref double yd, int r, int padded)
            where TV : struct
            where TOps : ILanes<TV>
        {
            var ringSize = Taps * padded;
            var slot = r % Taps * padded;
            for (var j = 0; j < padded; j += TOps.Count)
            {
                var vx = TOps.Load(ref xd, r * padded + j);
                var vy = TOps.Load(ref yd, r * padded + j);
                TOps.Store(TOps.Multiply(vx, vx), ref products, slot + j);
                TOps.Store(TOps.Multiply(vy, vy), ref products, ringSize + slot + j);
                TOps.Store(TOps.Multiply(vx, vy), ref products, 2 * ringSize + slot + j);
            }
        }
    }

    // Offsets (in doubles) of one plane's working buffers in its scratch array.
    private readonly struct Layout
    {
        public Layout(int height, int width, int lanes)
        {
            Padded = RoundUp(width, lanes);
            OutPadded = RoundUp(width - Taps + 1, lanes);
            SumsStride = RoundUp(Padded + Taps + lanes, lanes);
            CoefficientsStride = SumsStride;
            var plane = (long)height * Padded;
            long offset = 0;
            X = Next(ref offset, plane);
            Y = Next(ref offset, plane);
            Products = Next(ref offset, 3L * Taps * Padded);
            Sums = Next(ref offset, 5L * SumsStride);
            Coefficients = Next(ref offset, 3L * CoefficientsStride);
            Spread = Next(ref offset, 3L * Taps * Padded);
            Row = Next(ref offset, Padded);
            if (offset > Array.MaxLength)
            {
                throw new LrmShapeException($"SSIM: a {width}×{height} image is too large for the SSIM working buffers");
            }
            Length = (int)offset;
        }

        public int Padded { get; }

        public int OutPadded { get; }

        public int SumsStride { get; }

        public int CoefficientsStride { get; }

        public int X { get; }

        public int Y { get; }

        public int Products { get; }

        public int Sums { get; }

        public int Coefficients { get; }

        public int Spread { get; }

        public int Row { get; }

        public int Length { get; }

        private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

        private static int Next(ref long offset, long length)
        {
            var start = offset;
            offset += length;
            return (int)Math.Min(start, int.MaxValue);
        }
    }
}

/// <summary>The few vector operations the SSIM kernel needs, over one vector width (static abstract, so the JIT inlines them).</summary>
internal interface ILanes<TV> where TV : struct
{
    static abstract int Count { get; }

    static abstract TV Zero { get; }

    static abstract TV Create(double value);

    /// <summary>All-ones in the first <paramref name="count"/> lanes, zero in the rest.</summary>
    static abstract TV FirstLanes(int count);

    static abstract TV Load(ref double source, int offset);

    static abstract void Store(TV value, ref double destination, int offset);

    static abstract TV Add(TV left, TV right);

    static abstract TV Subtract(TV left, TV right);

    static abstract TV Multiply(TV left, TV right);

    static abstract TV Divide(TV left, TV right);

    static abstract TV Negate(TV value);

    /// <summary>left·right + addend (fused where the machine has FMA).</summary>
    static abstract TV MultiplyAdd(TV left, TV right, TV addend);

    static abstract TV Select(TV mask, TV whenSet, TV otherwise);

    static abstract double Sum(TV value);
}

internal readonly struct Lanes512 : ILanes<Vector512<double>>
{
    public static int Count => Vector512<double>.Count;

    public static Vector512<double> Zero => Vector512<double>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Create(double value) => Vector512.Create(value);

    public static Vector512<double> FirstLanes(int count) => Vector512.LessThan(Vector512<double>.Indices, Vector512.Create((double)count));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Load(ref double source, int offset) => Vector512.LoadUnsafe(ref source, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<double> value, ref double destination, int offset) => value.StoreUnsafe(ref destination, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Add(Vector512<double> left, Vector512<double> right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Subtract(Vector512<double> left, Vector512<double> right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Multiply(Vector512<double> left, Vector512<double> right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Divide(Vector512<double> left, Vector512<double> right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Negate(Vector512<double> value) => -value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> MultiplyAdd(Vector512<double> left, Vector512<double> right, Vector512<double> addend) =>
        Vector512.MultiplyAddEstimate(left, right, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Select(Vector512<double> mask, Vector512<double> whenSet, Vector512<double> otherwise) =>
        Vector512.ConditionalSelect(mask, whenSet, otherwise);

    public static double Sum(Vector512<double> value) => Vector512.Sum(value);
}

internal readonly struct Lanes256 : ILanes<Vector256<double>>
{
    public static int Count => Vector256<double>.Count;

    public static Vector256<double> Zero => Vector256<double>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Create(double value) => Vector256.Create(value);

    public static Vector256<double> FirstLanes(int count) => Vector256.LessThan(Vector256<double>.Indices, Vector256.Create((double)count));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Load(ref double source, int offset) => Vector256.LoadUnsafe(ref source, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<double> value, ref double destination, int offset) => value.StoreUnsafe(ref destination, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Add(Vector256<double> left, Vector256<double> right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Subtract(Vector256<double> left, Vector256<double> right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Multiply(Vector256<double> left, Vector256<double> right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Divide(Vector256<double> left, Vector256<double> right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Negate(Vector256<double> value) => -value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> MultiplyAdd(Vector256<double> left, Vector256<double> right, Vector256<double> addend) =>
        Vector256.MultiplyAddEstimate(left, right, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Select(Vector256<double> mask, Vector256<double> whenSet, Vector256<double> otherwise) =>
        Vector256.ConditionalSelect(mask, whenSet, otherwise);

    public static double Sum(Vector256<double> value) => Vector256.Sum(value);
}

internal readonly struct Lanes128 : ILanes<Vector128<double>>
{
    public static int Count => Vector128<double>.Count;

    public static Vector128<double> Zero => Vector128<double>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Create(double value) => Vector128.Create(value);

    public static Vector128<double> FirstLanes(int count) => Vector128.LessThan(Vector128<double>.Indices, Vector128.Create((double)count));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Load(ref double source, int offset) => Vector128.LoadUnsafe(ref source, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<double> value, ref double destination, int offset) => value.StoreUnsafe(ref destination, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Add(Vector128<double> left, Vector128<double> right) => left + right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Subtract(Vector128<double> left, Vector128<double> right) => left - right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Multiply(Vector128<double> left, Vector128<double> right) => left * right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Divide(Vector128<double> left, Vector128<double> right) => left / right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Negate(Vector128<double> value) => -value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> MultiplyAdd(Vector128<double> left, Vector128<double> right, Vector128<double> addend) =>
        Vector128.MultiplyAddEstimate(left, right, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> Select(Vector128<double> mask, Vector128<double> whenSet, Vector128<double> otherwise) =>
        Vector128.ConditionalSelect(mask, whenSet, otherwise);

    public static double Sum(Vector128<double> value) => Vector128.Sum(value);
}
