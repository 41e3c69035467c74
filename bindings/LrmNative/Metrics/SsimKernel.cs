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
/// <item>each image row goes, as doubles padded to the vector width with zeros, into a ring of eleven rows holding x, y,
/// x², y², xy interleaved by vector chunks; every row is written twice (slots r mod 11 and r mod 11 + 11), so the eleven
/// rows under a window row are always eleven consecutive slots and a column tap is one pointer step;</item>
/// <item>for output row i, a column pass gives the vertical Gaussian sums of the five over rows i…i+10 at every column,
/// then a row pass the five window sums μx, μy, Σgx², Σgy², Σgxy at the valid columns, and from them the SSIM map and
/// the gradient's coefficients α, β, γ (one division per window); both passes pair the window's symmetric taps;</item>
/// <item>the gradient's adjoint ("full") filter runs the same way backwards: a row pass of the coefficient row, zero-padded
/// by ten on both sides (the window is symmetric, so the transposed filter is the same correlation), into a second ring,
/// and as soon as ring row p is complete, the column pass gives gradient row p, combined with x and y of row p (still in
/// the first ring).</item>
/// </list>
/// The working set per plane is a few dozen rows, nothing of plane size. Lanes past the valid columns are computed on
/// padding and masked out of the sums and the coefficients. Results do not depend on the thread count or the batch: each
/// plane is summed in a fixed order and the planes are added in order.
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
            var layout = new Layout(width, TOps.Count);
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

        // One (image, channel) plane: returns the sum of its SSIM map and writes its gradient. The kernel's methods are compiled
        // optimised at once: the tiered JIT's first tier would call every vector operation, tens of times slower, until it
        // promotes them (which a busy machine delays).
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private double Plane<TV, TOps>(int plane, double[] buffer, Layout layout)
            where TV : struct
            where TOps : ILanes<TV>
        {
            int lanes = TOps.Count, padded = layout.Padded, outPadded = layout.OutPadded;
            int outH = height - Taps + 1, outW = width - Taps + 1;
            var imageOffset = (long)(plane / channels) * height * width * channels + plane % channels;
            var xs = (float*)x + imageOffset;
            var ys = (float*)y + imageOffset;
            ref var scratch = ref MemoryMarshal.GetArrayDataReference(buffer);
            ref var window = ref Unsafe.Add(ref scratch, layout.Window);
            ref var sums = ref Unsafe.Add(ref scratch, layout.Sums);
            ref var coefficients = ref Unsafe.Add(ref scratch, layout.Coefficients);
            ref var spread = ref Unsafe.Add(ref scratch, layout.Spread);
            ref var row = ref Unsafe.Add(ref scratch, layout.Row);
            ref var g = ref MemoryMarshal.GetArrayDataReference(Gaussian);
            nint sumsStride = layout.SumsStride, coefficientsStride = layout.CoefficientsStride;

            // The tails past the padded width are read by the last chunks of the row passes (and masked); the coefficient rows'
            // ten leading and trailing zeros are the adjoint filter's padding; the spread ring starts as the rows above the image.
            for (var k = 0; k < 5; k++)
            {
                MemoryMarshal.CreateSpan(ref Unsafe.Add(ref sums, k * sumsStride + padded), (int)sumsStride - padded).Clear();
            }
            if (withGradient)
            {
                MemoryMarshal.CreateSpan(ref coefficients, 3 * (int)coefficientsStride).Clear();
                MemoryMarshal.CreateSpan(ref spread, 2 * Taps * 3 * padded).Clear();
            }
            for (var r = 0; r < Taps - 1; r++)
            {
                WindowRow<TV, TOps>(ref window, ref row, xs, ys, r, padded);
            }

            var c1v = TOps.Create(c1);
            var c2v = TOps.Create(c2);
            var two = TOps.Create(2);
            var lastMask = TOps.FirstLanes(outW - (outPadded - lanes));
            var total = TOps.Zero;
            for (var i = 0; i < outH; i++)
            {
                WindowRow<TV, TOps>(ref window, ref row, xs, ys, i + Taps - 1, padded);
                // Column pass: vertical sums of x, y, x², y², xy over rows i…i+10 (ring slots i % 11 …, contiguous), every column.
                nint slot = 5 * padded;
                ref var top = ref Unsafe.Add(ref window, i % Taps * slot);
                for (int j = 0, at = 0; j < padded; j += lanes, at += 5 * lanes)
                {
                    ref var lo = ref Unsafe.Add(ref top, at);
                    ref var hi = ref Unsafe.Add(ref lo, 2 * (Taps / 2) * slot);
                    ref var mid = ref Unsafe.Add(ref lo, Taps / 2 * slot);
                    var centre = TOps.Create(Unsafe.Add(ref g, Taps / 2));
                    var s0 = TOps.Multiply(TOps.Load(ref mid, 0), centre);
                    var s1 = TOps.Multiply(TOps.Load(ref mid, lanes), centre);
                    var s2 = TOps.Multiply(TOps.Load(ref mid, 2 * lanes), centre);
                    var s3 = TOps.Multiply(TOps.Load(ref mid, 3 * lanes), centre);
                    var s4 = TOps.Multiply(TOps.Load(ref mid, 4 * lanes), centre);
                    for (var a = 0; a < Taps / 2; a++)
                    {
                        var weight = TOps.Create(Unsafe.Add(ref g, a));
                        s0 = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, 0), TOps.Load(ref hi, 0)), weight, s0);
                        s1 = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, lanes), TOps.Load(ref hi, lanes)), weight, s1);
                        s2 = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, 2 * lanes), TOps.Load(ref hi, 2 * lanes)), weight, s2);
                        s3 = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, 3 * lanes), TOps.Load(ref hi, 3 * lanes)), weight, s3);
                        s4 = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, 4 * lanes), TOps.Load(ref hi, 4 * lanes)), weight, s4);
                        lo = ref Unsafe.Add(ref lo, slot);
                        hi = ref Unsafe.Subtract(ref hi, slot);
                    }
                    TOps.Store(s0, ref sums, j);
                    TOps.Store(s1, ref sums, sumsStride + j);
                    TOps.Store(s2, ref sums, 2 * sumsStride + j);
                    TOps.Store(s3, ref sums, 3 * sumsStride + j);
                    TOps.Store(s4, ref sums, 4 * sumsStride + j);
                }
                // Row pass at the valid columns, the SSIM map and the gradient's coefficients.
                ref var sumX = ref sums;
                ref var sumY = ref Unsafe.Add(ref sums, sumsStride);
                ref var sumXX = ref Unsafe.Add(ref sums, 2 * sumsStride);
                ref var sumYY = ref Unsafe.Add(ref sums, 3 * sumsStride);
                ref var sumXY = ref Unsafe.Add(ref sums, 4 * sumsStride);
                for (var j = 0; j < outPadded; j += lanes)
                {
                    var mx = Row11<TV, TOps>(ref Unsafe.Add(ref sumX, j), ref g);
                    var my = Row11<TV, TOps>(ref Unsafe.Add(ref sumY, j), ref g);
                    var exx = Row11<TV, TOps>(ref Unsafe.Add(ref sumXX, j), ref g);
                    var eyy = Row11<TV, TOps>(ref Unsafe.Add(ref sumYY, j), ref g);
                    var exy = Row11<TV, TOps>(ref Unsafe.Add(ref sumXY, j), ref g);
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
                    TOps.Store(beta, ref coefficients, coefficientsStride + Taps - 1 + j);
                    TOps.Store(gamma, ref coefficients, 2 * coefficientsStride + Taps - 1 + j);
                }
                if (withGradient)
                {
                    // Adjoint row pass: spread[q] = Σ_b g[b]·coefficient[q + b − 10] (g symmetric), into spread ring row i.
                    nint spreadSlot = 3 * padded;
                    ref var first = ref Unsafe.Add(ref spread, i % Taps * spreadSlot);
                    ref var second = ref Unsafe.Add(ref first, Taps * spreadSlot);
                    ref var alphas = ref coefficients;
                    ref var betas = ref Unsafe.Add(ref coefficients, coefficientsStride);
                    ref var gammas = ref Unsafe.Add(ref coefficients, 2 * coefficientsStride);
                    for (int q = 0, at = 0; q < padded; q += lanes, at += 3 * lanes)
                    {
                        var sa = Row11<TV, TOps>(ref Unsafe.Add(ref alphas, q), ref g);
                        var sb = Row11<TV, TOps>(ref Unsafe.Add(ref betas, q), ref g);
                        var sc = Row11<TV, TOps>(ref Unsafe.Add(ref gammas, q), ref g);
                        TOps.Store(sa, ref first, at);
                        TOps.Store(sb, ref first, at + lanes);
                        TOps.Store(sc, ref first, at + 2 * lanes);
                        TOps.Store(sa, ref second, at);
                        TOps.Store(sb, ref second, at + lanes);
                        TOps.Store(sc, ref second, at + 2 * lanes);
                    }
                    GradientRow<TV, TOps>(ref spread, ref window, ref row, ref g, xs, i, padded);
                }
            }
            if (withGradient)
            {
                // Rows below the last window: the spread rows past outH are zero.
                for (var p = outH; p < height; p++)
                {
                    var slot = p % Taps * 3 * padded;
                    MemoryMarshal.CreateSpan(ref Unsafe.Add(ref spread, slot), 3 * padded).Clear();
                    MemoryMarshal.CreateSpan(ref Unsafe.Add(ref spread, slot + Taps * 3 * padded), 3 * padded).Clear();
                    GradientRow<TV, TOps>(ref spread, ref window, ref row, ref g, xs, p, padded);
                }
            }
            return TOps.Sum(total);
        }

        // Image row r into window ring slots r % 11 and r % 11 + 11 (so any eleven consecutive rows are contiguous slots):
        // x, y, x², y², xy, interleaved by chunks of one vector.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void WindowRow<TV, TOps>(ref double window, ref double row, float* xs, float* ys, int r, int padded)
            where TV : struct
            where TOps : ILanes<TV>
        {
            var lanes = TOps.Count;
            var xr = xs + (long)r * width * channels;
            var yr = ys + (long)r * width * channels;
            for (var j = 0; j < width; j++, xr += channels, yr += channels)
            {
                Unsafe.Add(ref row, j) = *xr;
                Unsafe.Add(ref row, padded + j) = *yr;
            }
            for (var j = width; j < padded; j++)
            {
                Unsafe.Add(ref row, j) = 0;
                Unsafe.Add(ref row, padded + j) = 0;
            }
            nint slot = 5 * padded;
            ref var first = ref Unsafe.Add(ref window, r % Taps * slot);
            ref var second = ref Unsafe.Add(ref first, Taps * slot);
            for (int j = 0, at = 0; j < padded; j += lanes, at += 5 * lanes)
            {
                var vx = TOps.Load(ref row, j);
                var vy = TOps.Load(ref row, padded + j);
                var xx = TOps.Multiply(vx, vx);
                var yy = TOps.Multiply(vy, vy);
                var xy = TOps.Multiply(vx, vy);
                TOps.Store(vx, ref first, at);
                TOps.Store(vy, ref first, at + lanes);
                TOps.Store(xx, ref first, at + 2 * lanes);
                TOps.Store(yy, ref first, at + 3 * lanes);
                TOps.Store(xy, ref first, at + 4 * lanes);
                TOps.Store(vx, ref second, at);
                TOps.Store(vy, ref second, at + lanes);
                TOps.Store(xx, ref second, at + 2 * lanes);
                TOps.Store(yy, ref second, at + 3 * lanes);
                TOps.Store(xy, ref second, at + 4 * lanes);
            }
        }

        // Gradient row p: the adjoint column pass over spread rows p−10…p (contiguous ring slots), combined as
        // α⋆ + y·(β⋆) + x·(γ⋆) with x, y from the window ring (row p is still in it), scaled, written (or added) interleaved.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void GradientRow<TV, TOps>(ref double spread, ref double window, ref double row, ref double g, float* xs, int p, int padded)
            where TV : struct
            where TOps : ILanes<TV>
        {
            var lanes = TOps.Count;
            nint slot = 3 * padded;
            ref var top = ref Unsafe.Add(ref spread, ((p - (Taps - 1)) % Taps + Taps) % Taps * slot);
            ref var image = ref Unsafe.Add(ref window, p % Taps * 5 * padded);
            var scale = TOps.Create(gradientScale);
            for (int q = 0, at = 0, imageAt = 0; q < padded; q += lanes, at += 3 * lanes, imageAt += 5 * lanes)
            {
                ref var lo = ref Unsafe.Add(ref top, at);
                ref var hi = ref Unsafe.Add(ref lo, 2 * (Taps / 2) * slot);
                ref var mid = ref Unsafe.Add(ref lo, Taps / 2 * slot);
                var centre = TOps.Create(Unsafe.Add(ref g, Taps / 2));
                var sa = TOps.Multiply(TOps.Load(ref mid, 0), centre);
                var sb = TOps.Multiply(TOps.Load(ref mid, lanes), centre);
                var sc = TOps.Multiply(TOps.Load(ref mid, 2 * lanes), centre);
                for (var a = 0; a < Taps / 2; a++)
                {
                    var weight = TOps.Create(Unsafe.Add(ref g, a));
                    sa = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, 0), TOps.Load(ref hi, 0)), weight, sa);
                    sb = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, lanes), TOps.Load(ref hi, lanes)), weight, sb);
                    sc = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref lo, 2 * lanes), TOps.Load(ref hi, 2 * lanes)), weight, sc);
                    lo = ref Unsafe.Add(ref lo, slot);
                    hi = ref Unsafe.Subtract(ref hi, slot);
                }
                var value = TOps.MultiplyAdd(TOps.Load(ref image, imageAt), sc, TOps.MultiplyAdd(TOps.Load(ref image, imageAt + lanes), sb, sa));
                TOps.Store(TOps.Multiply(value, scale), ref row, q);
            }
            var output = (float*)gradient + (xs - (float*)x) + (long)p * width * channels;
            if (accumulate)
            {
                for (var q = 0; q < width; q++, output += channels)
                {
                    *output += (float)Unsafe.Add(ref row, q);
                }
            }
            else
            {
                for (var q = 0; q < width; q++, output += channels)
                {
                    *output = (float)Unsafe.Add(ref row, q);
                }
            }
        }

        // Σ_b g[b]·p[b] over eleven consecutive values, the symmetric taps paired.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TV Row11<TV, TOps>(ref double p, ref double g)
            where TV : struct
            where TOps : ILanes<TV>
        {
            var s = TOps.Multiply(TOps.Load(ref p, 5), TOps.Create(Unsafe.Add(ref g, 5)));
            s = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref p, 0), TOps.Load(ref p, 10)), TOps.Create(g), s);
            s = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref p, 1), TOps.Load(ref p, 9)), TOps.Create(Unsafe.Add(ref g, 1)), s);
            s = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref p, 2), TOps.Load(ref p, 8)), TOps.Create(Unsafe.Add(ref g, 2)), s);
            s = TOps.MultiplyAdd(TOps.Add(TOps.Load(ref p, 3), TOps.Load(ref p, 7)), TOps.Create(Unsafe.Add(ref g, 3)), s);
            return TOps.MultiplyAdd(TOps.Add(TOps.Load(ref p, 4), TOps.Load(ref p, 6)), TOps.Create(Unsafe.Add(ref g, 4)), s);
        }
    }

    // Offsets (in doubles) of one plane's working buffers in its scratch array.
    private readonly struct Layout
    {
        public Layout(int width, int lanes)
        {
            Padded = RoundUp(width, lanes);
            OutPadded = RoundUp(width - Taps + 1, lanes);
            SumsStride = RoundUp(Padded + Taps + lanes, lanes);
            CoefficientsStride = SumsStride;
            long offset = 0;
            Window = Next(ref offset, 2L * Taps * 5 * Padded);
            Sums = Next(ref offset, 5L * SumsStride);
            Coefficients = Next(ref offset, 3L * CoefficientsStride);
            Spread = Next(ref offset, 2L * Taps * 3 * Padded);
            Row = Next(ref offset, 2L * Padded);
            if (offset > Array.MaxLength)
            {
                throw new LrmShapeException($"SSIM: images {width} wide are too large for the SSIM working buffers");
            }
            Length = (int)offset;
        }

        public int Padded { get; }

        public int OutPadded { get; }

        public int SumsStride { get; }

        public int CoefficientsStride { get; }

        public int Window { get; }

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

    static abstract TV Load(ref double source, nint offset);

    static abstract void Store(TV value, ref double destination, nint offset);

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
    public static Vector512<double> Load(ref double source, nint offset) => Vector512.LoadUnsafe(ref source, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<double> value, ref double destination, nint offset) => value.StoreUnsafe(ref destination, (nuint)offset);

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
    public static Vector256<double> Load(ref double source, nint offset) => Vector256.LoadUnsafe(ref source, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<double> value, ref double destination, nint offset) => value.StoreUnsafe(ref destination, (nuint)offset);

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
    public static Vector128<double> Load(ref double source, nint offset) => Vector128.LoadUnsafe(ref source, (nuint)offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<double> value, ref double destination, nint offset) => value.StoreUnsafe(ref destination, (nuint)offset);

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
