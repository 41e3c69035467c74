namespace LrmNative.Data;

/// <summary>Primitive shapes with exact signed distance functions (local frame, axis along z where there is one).</summary>
internal enum SdfPrimitive
{
    /// <summary>Radius A.</summary>
    Sphere,
    /// <summary>Half extents (A, B, C).</summary>
    Box,
    /// <summary>Half extents (A, B, C), edges rounded with radius <see cref="SdfPart.Rounding"/>.</summary>
    RoundedBox,
    /// <summary>Radius A, half height B.</summary>
    Cylinder,
    /// <summary>Capped cone (frustum): radius A at z = −C, radius B at z = +C.</summary>
    Cone,
    /// <summary>Major radius A (in the xy plane), minor radius B.</summary>
    Torus,
    /// <summary>Radius A around the segment z ∈ [−B, B].</summary>
    Capsule,
}

/// <summary>How a part combines with everything before it: union min(d, d_part) or subtraction max(d, −d_part).</summary>
internal enum CsgMode
{
    Union,
    Subtract,
}

/// <summary>Procedural textures, evaluated in the part's local frame so they move with it.</summary>
internal enum TextureKind
{
    Solid,
    Stripes,
    Checker,
    Noise,
}

/// <summary>A part's colour pattern: colours A and B, spatial frequency, stripe axis and a noise seed.</summary>
internal sealed record SdfTexture(TextureKind Kind, Vec3 ColorA, Vec3 ColorB, double Frequency, Vec3 Axis, uint NoiseSeed)
{
    public static SdfTexture Solid(Vec3 color) => new(TextureKind.Solid, color, color, 1, new Vec3(0, 0, 1), 0);

    /// <summary>Albedo at a local point.</summary>
    public Vec3 Albedo(Vec3 q)
    {
        switch (Kind)
        {
            case TextureKind.Stripes:
                {
                    var s = Frequency * Vec3.Dot(q, Axis);
                    return s - Math.Floor(s) < 0.5 ? ColorA : ColorB;
                }
            case TextureKind.Checker:
                {
                    var parity = (long)Math.Floor(Frequency * q.X) + (long)Math.Floor(Frequency * q.Y) + (long)Math.Floor(Frequency * q.Z);
                    return (parity & 1) == 0 ? ColorA : ColorB;
                }
            case TextureKind.Noise:
                {
                    // Two octaves of value noise in [0, 1].
                    var n = (2 * ValueNoise(q * Frequency, NoiseSeed) + ValueNoise(q * (2 * Frequency), NoiseSeed + 1)) / 3;
                    return ColorA * (1 - n) + ColorB * n;
                }
            default:
                return ColorA;
        }
    }

    // Trilinear interpolation of hashed lattice values with smoothstep weights.
    private static double ValueNoise(Vec3 p, uint seed)
    {
        double fx = Math.Floor(p.X), fy = Math.Floor(p.Y), fz = Math.Floor(p.Z);
        int x = (int)fx, y = (int)fy, z = (int)fz;
        double u = Smooth(p.X - fx), v = Smooth(p.Y - fy), w = Smooth(p.Z - fz);
        double Lerp(double a, double b, double t) => a + (b - a) * t;
        var x00 = Lerp(Hash(x, y, z, seed), Hash(x + 1, y, z, seed), u);
        var x10 = Lerp(Hash(x, y + 1, z, seed), Hash(x + 1, y + 1, z, seed), u);
        var x01 = Lerp(Hash(x, y, z + 1, seed), Hash(x + 1, y, z + 1, seed), u);
        var x11 = Lerp(Hash(x, y + 1, z + 1, seed), Hash(x + 1, y + 1, z + 1, seed), u);
        return Lerp(Lerp(x00, x10, v), Lerp(x01, x11, v), w);

        static double Smooth(double t) => t * t * (3 - 2 * t);
    }

    private static double Hash(int x, int y, int z, uint seed)
    {
        var h = (uint)x * 0x8DA6B343u ^ (uint)y * 0xD8163841u ^ (uint)z * 0xCB1AB31Fu ^ seed * 0x9E3779B9u;
        h ^= h >> 16;
        h *= 0x7FEB352Du;
        h ^= h >> 15;
        h *= 0x846CA68Bu;
        h ^= h >> 16;
        return h / 4294967296.0;
    }
}

/// <summary>
/// One part of a composition: a primitive with size parameters (A, B, C), a rotation and translation (local → world:
/// p = R·q + t), a CSG mode, a texture, and optional height-field bumps d − a·sin(f q_x + φ_x) sin(f q_y + φ_y) sin(f q_z + φ_z)
/// that make the surface wavy (the distance bound then has Lipschitz constant 1 + a·f·√3, which the tracer divides by).
/// </summary>
internal sealed class SdfPart
{
    public required SdfPrimitive Primitive { get; init; }
    public double A { get; init; }
    public double B { get; init; }
    public double C { get; init; }
    public double Rounding { get; init; }
    public Mat3 Rotation { get; init; } = Mat3.Identity;
    public Vec3 Translation { get; init; }
    public CsgMode Mode { get; init; }
    public SdfTexture Texture { get; init; } = SdfTexture.Solid(new Vec3(0.8, 0.8, 0.8));
    public double BumpAmplitude { get; init; }
    public double BumpFrequency { get; init; }
    public Vec3 BumpPhase { get; init; }

    /// <summary>Radius around <see cref="Translation"/> that holds the whole part (bumps included).</summary>
    public double BoundingRadius => LocalRadius + BumpAmplitude;

    /// <summary>Lipschitz constant of this part's distance (1 without bumps).</summary>
    public double Lipschitz => 1 + BumpAmplitude * BumpFrequency * Math.Sqrt(3);

    /// <summary>Half extents of the world-axis box around the part (its local box turned by the rotation, bumps included).</summary>
    public Vec3 WorldHalfExtents
    {
        get
        {
            var h = Primitive switch
            {
                SdfPrimitive.Sphere => new Vec3(A, A, A),
                SdfPrimitive.Box or SdfPrimitive.RoundedBox => new Vec3(A, B, C),
                SdfPrimitive.Cylinder => new Vec3(A, A, B),
                SdfPrimitive.Cone => new Vec3(Math.Max(A, B), Math.Max(A, B), C),
                SdfPrimitive.Torus => new Vec3(A + B, A + B, B),
                SdfPrimitive.Capsule => new Vec3(A, A, A + B),
                _ => throw new InvalidOperationException(Primitive.ToString()),
            } + new Vec3(BumpAmplitude, BumpAmplitude, BumpAmplitude);
            var r = Rotation;
            return new Vec3(
                Math.Abs(r.M00) * h.X + Math.Abs(r.M01) * h.Y + Math.Abs(r.M02) * h.Z,
                Math.Abs(r.M10) * h.X + Math.Abs(r.M11) * h.Y + Math.Abs(r.M12) * h.Z,
                Math.Abs(r.M20) * h.X + Math.Abs(r.M21) * h.Y + Math.Abs(r.M22) * h.Z);
        }
    }

    private double LocalRadius => Primitive switch
    {
        SdfPrimitive.Sphere => A,
        SdfPrimitive.Box or SdfPrimitive.RoundedBox => Math.Sqrt(A * A + B * B + C * C),
        SdfPrimitive.Cylinder => Math.Sqrt(A * A + B * B),
        SdfPrimitive.Cone => Math.Sqrt(Math.Max(A, B) * Math.Max(A, B) + C * C),
        SdfPrimitive.Torus => A + B,
        SdfPrimitive.Capsule => A + B,
        _ => throw new InvalidOperationException(Primitive.ToString()),
    };

    /// <summary>The local coordinates of a world point.</summary>
    public Vec3 ToLocal(Vec3 p) => Rotation.TransposeTimes(p - Translation);

    /// <summary>Signed distance (bound) of the part at a world point; negative inside.</summary>
    public double Distance(Vec3 p)
    {
        var q = ToLocal(p);
        var d = LocalDistance(q);
        if (BumpAmplitude != 0)
        {
            d -= BumpAmplitude * Math.Sin(BumpFrequency * q.X + BumpPhase.X) * Math.Sin(BumpFrequency * q.Y + BumpPhase.Y)
                * Math.Sin(BumpFrequency * q.Z + BumpPhase.Z);
        }
        return d;
    }

    // Exact distances of the primitives (standard closed forms).
    private double LocalDistance(Vec3 q)
    {
        switch (Primitive)
        {
            case SdfPrimitive.Sphere:
                return q.Length - A;
            case SdfPrimitive.Box:
                return BoxDistance(q, A, B, C);
            case SdfPrimitive.RoundedBox:
                return BoxDistance(q, A - Rounding, B - Rounding, C - Rounding) - Rounding;
            case SdfPrimitive.Cylinder:
                {
                    double dx = Math.Sqrt(q.X * q.X + q.Y * q.Y) - A, dz = Math.Abs(q.Z) - B;
                    double ox = Math.Max(dx, 0), oz = Math.Max(dz, 0);
                    return Math.Min(Math.Max(dx, dz), 0) + Math.Sqrt(ox * ox + oz * oz);
                }
            case SdfPrimitive.Cone:
                return ConeDistance(Math.Sqrt(q.X * q.X + q.Y * q.Y), q.Z, A, B, C);
            case SdfPrimitive.Torus:
                {
                    var radial = Math.Sqrt(q.X * q.X + q.Y * q.Y) - A;
                    return Math.Sqrt(radial * radial + q.Z * q.Z) - B;
                }
            case SdfPrimitive.Capsule:
                {
                    var z = q.Z - Math.Clamp(q.Z, -B, B);
                    return Math.Sqrt(q.X * q.X + q.Y * q.Y + z * z) - A;
                }
            default:
                throw new InvalidOperationException(Primitive.ToString());
        }
    }

    private static double BoxDistance(Vec3 q, double a, double b, double c)
    {
        double x = Math.Abs(q.X) - a, y = Math.Abs(q.Y) - b, z = Math.Abs(q.Z) - c;
        double ox = Math.Max(x, 0), oy = Math.Max(y, 0), oz = Math.Max(z, 0);
        return Math.Sqrt(ox * ox + oy * oy + oz * oz) + Math.Min(Math.Max(x, Math.Max(y, z)), 0);
    }

    // Capped cone in the (radial r, axial z) half-plane: radius r1 at z = −h, r2 at z = +h.
    private static double ConeDistance(double r, double z, double r1, double r2, double h)
    {
        // Distance to the caps.
        var capRadius = z < 0 ? r1 : r2;
        double caX = r - Math.Min(r, capRadius), caY = Math.Abs(z) - h;
        // Distance to the slanted side, the segment from (r1, −h) to (r2, h).
        double k2x = r2 - r1, k2y = 2 * h;
        double k1x = r2, k1y = h;
        var along = Math.Clamp(((k1x - r) * k2x + (k1y - z) * k2y) / (k2x * k2x + k2y * k2y), 0, 1);
        double cbX = r - k1x + k2x * along, cbY = z - k1y + k2y * along;
        var sign = cbX < 0 && caY < 0 ? -1.0 : 1.0;
        return sign * Math.Sqrt(Math.Min(caX * caX + caY * caY, cbX * cbX + cbY * cbY));
    }
}

/// <summary>
/// A composition of <see cref="SdfPart"/>s in order (each a union or a subtraction of everything before it) under a
/// uniform scale and offset (world = Scale · composition + Offset), rendered by sphere tracing. The parts' bounding
/// spheres skip parts that cannot change the minimum, which keeps many-part objects fast.
/// </summary>
internal sealed class SdfScene : IRayScene
{
    /// <summary>Hit tolerance of the sphere tracer, in world units.</summary>
    public const double HitEpsilon = 2e-5;
    private const int MaxSteps = 400;

    private readonly SdfPart[] _parts;
    private readonly Vec3[] _centres;
    private readonly double[] _radii;
    private readonly double _lipschitz;
    private readonly Vec3 _boxMin, _boxMax;

    public SdfScene(IReadOnlyList<SdfPart> parts, double scale = 1, Vec3 offset = default)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0 || parts[0].Mode != CsgMode.Union)
        {
            throw new LrmInvalidArgumentException("an SDF scene needs at least one part, the first a union");
        }
        if (!(scale > 0) || !double.IsFinite(scale))
        {
            throw new LrmInvalidArgumentException($"an SDF scene's scale must be positive and finite, got {scale}");
        }
        _parts = [.. parts];
        _centres = _parts.Select(p => p.Translation).ToArray();
        _radii = _parts.Select(p => p.BoundingRadius).ToArray();
        _lipschitz = _parts.Max(p => p.Lipschitz);
        Scale = scale;
        Offset = offset;
        // World box: the union parts' rotated boxes (subtractions only remove material), a hair larger so that the
        // tracer starts outside every surface.
        var min = new Vec3(double.MaxValue, double.MaxValue, double.MaxValue);
        var max = -min;
        foreach (var part in _parts.Where(p => p.Mode == CsgMode.Union))
        {
            var h = part.WorldHalfExtents + new Vec3(1e-3, 1e-3, 1e-3);
            min = Vec3.Min(min, part.Translation - h);
            max = Vec3.Max(max, part.Translation + h);
        }
        _boxMin = min * scale + offset;
        _boxMax = max * scale + offset;
    }

    /// <summary>The parts, in order.</summary>
    public IReadOnlyList<SdfPart> Parts => _parts;

    /// <summary>World = Scale · composition + Offset.</summary>
    public double Scale { get; }

    /// <inheritdoc cref="Scale"/>
    public Vec3 Offset { get; }

    /// <summary>A box in world coordinates that holds the whole surface.</summary>
    public (Vec3 Min, Vec3 Max) Bounds => (_boxMin, _boxMax);

    /// <summary>The same composition under another scale and offset.</summary>
    public SdfScene WithTransform(double scale, Vec3 offset) => new(_parts, scale, offset);

    /// <summary>Signed distance bound at a world point (negative inside) and the part whose surface is nearest.</summary>
    public double Distance(Vec3 world, out int part)
    {
        var p = (world - Offset) / Scale;
        var d = double.PositiveInfinity;
        part = 0;
        for (var k = 0; k < _parts.Length; k++)
        {
            var toCentre = (p - _centres[k]).Length - _radii[k];
            if (_parts[k].Mode == CsgMode.Union)
            {
                // The part is at least toCentre away: it cannot lower a minimum already below that.
                if (toCentre >= d)
                {
                    continue;
                }
                var dk = _parts[k].Distance(p);
                if (dk < d)
                {
                    d = dk;
                    part = k;
                }
            }
            else
            {
                // max(d, −d_k) changes only where −d_k > d, i.e. d_k < −d; d_k ≥ toCentre.
                if (toCentre >= -d)
                {
                    continue;
                }
                var dk = -_parts[k].Distance(p);
                if (dk > d)
                {
                    d = dk;
                    part = k;
                }
            }
        }
        return d * Scale;
    }

    /// <summary>Signed distance bound at a world point.</summary>
    public double Distance(Vec3 world) => Distance(world, out _);

    /// <summary>The albedo of the part nearest a world point, from its texture in its local frame.</summary>
    public Vec3 Albedo(Vec3 world, int part)
    {
        var p = (world - Offset) / Scale;
        return _parts[part].Texture.Albedo(_parts[part].ToLocal(p));
    }

    /// <summary>Outward unit normal: the normalised gradient by the tetrahedron finite difference.</summary>
    public Vec3 Normal(Vec3 p)
    {
        var h = 1e-5 * Math.Max(1, Scale);
        var a = Distance(new Vec3(p.X + h, p.Y - h, p.Z - h));
        var b = Distance(new Vec3(p.X - h, p.Y - h, p.Z + h));
        var c = Distance(new Vec3(p.X - h, p.Y + h, p.Z - h));
        var d = Distance(new Vec3(p.X + h, p.Y + h, p.Z + h));
        return new Vec3(a - b - c + d, -a - b + c + d, -a + b - c + d).Normalized();
    }

    /// <inheritdoc />
    public bool Intersect(Vec3 origin, Vec3 direction, out SurfaceHit hit)
    {
        hit = default;
        if (!RayBox(origin, direction, _boxMin, _boxMax, out var near, out var far))
        {
            return false;
        }
        var t = Math.Max(near, 0);
        for (var step = 0; step < MaxSteps && t <= far; step++)
        {
            var d = Distance(origin + direction * t) / _lipschitz;
            if (d < HitEpsilon)
            {
                t = Refine(origin, direction, t, d * _lipschitz);
                var point = origin + direction * t;
                Distance(point, out var part);
                var normal = Normal(point);
                hit.Distance = t;
                hit.Normal = Vec3.Dot(normal, direction) > 0 ? -normal : normal;
                hit.Part = part;
                hit.Albedo = Albedo(point, part);
                return true;
            }
            t += d;
        }
        return false;
    }

    // Sphere tracing stops within HitEpsilon of the surface, which at a slanted incidence can leave t short by
    // HitEpsilon / cos θ. Secant steps on f(t) = distance(o + t·d) finish the root (keeping the best |f| seen).
    private double Refine(Vec3 origin, Vec3 direction, double t, double f)
    {
        double bestT = t, bestF = Math.Abs(f);
        double t0 = t, f0 = f;
        var t1 = t + f / _lipschitz;
        var f1 = Distance(origin + direction * t1);
        for (var k = 0; k < 8; k++)
        {
            if (Math.Abs(f1) < bestF)
            {
                bestF = Math.Abs(f1);
                bestT = t1;
            }
            if (bestF < 1e-13 || f1 == f0)
            {
                break;
            }
            var t2 = t1 - f1 * (t1 - t0) / (f1 - f0);
            if (!double.IsFinite(t2) || Math.Abs(t2 - t1) > 1e-2)
            {
                break;
            }
            (t0, f0) = (t1, f1);
            t1 = t2;
            f1 = Distance(origin + direction * t1);
        }
        return bestT;
    }

    /// <summary>
    /// −distance on a (res+1)³ grid over [lo, hi]³, indexed [z][y][x] (marching cubes' layout: values above 0 inside).
    /// Evaluated in parallel over z slices.
    /// </summary>
    public float[] InsideField(int samples, double lo, double hi, ParallelOptions? parallel = null)
    {
        var field = new float[(long)samples * samples * samples];
        var step = (hi - lo) / (samples - 1);
        Parallel.For(0, samples, parallel ?? new ParallelOptions(), z =>
        {
            for (var y = 0; y < samples; y++)
            {
                for (var x = 0; x < samples; x++)
                {
                    var d = Distance(new Vec3(lo + x * step, lo + y * step, lo + z * step));
                    field[((long)z * samples + y) * samples + x] = (float)-d;
                }
            }
        });
        return field;
    }

    /// <summary>Slab test of a ray with an axis-aligned box; near ≤ far when they meet in front of the origin.</summary>
    internal static bool RayBox(Vec3 o, Vec3 d, Vec3 min, Vec3 max, out double near, out double far)
    {
        near = double.NegativeInfinity;
        far = double.PositiveInfinity;
        for (var a = 0; a < 3; a++)
        {
            if (d[a] == 0)
            {
                if (o[a] < min[a] || o[a] > max[a])
                {
                    return false;
                }
                continue;
            }
            var inverse = 1.0 / d[a];
            var t0 = (min[a] - o[a]) * inverse;
            var t1 = (max[a] - o[a]) * inverse;
            if (t0 > t1)
            {
                (t0, t1) = (t1, t0);
            }
            near = Math.Max(near, t0);
            far = Math.Min(far, t1);
        }
        return near <= far && far > 0;
    }
}
