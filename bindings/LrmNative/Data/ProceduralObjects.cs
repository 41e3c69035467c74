namespace LrmNative.Data;

/// <summary>How elaborate the procedural objects of <c>lrm dataset synth</c> are.</summary>
internal enum ObjectStyle
{
    /// <summary>Zeroverse-like compositions: 2–6 textured primitives, cuts, thin parts, bumps (the default).</summary>
    Zeroverse,

    /// <summary>One or two solid-coloured primitives, no cuts, thin parts or bumps: a small model's curriculum.</summary>
    Simple,
}

/// <summary>
/// Random compositions of textured primitives in the spirit of LRM-Zero's "Zeroverse" (Xie et al., 2024): 2–6
/// primitives (sphere, box, rounded box, cylinder, cone, torus, capsule) with random sizes, rotations and placements
/// joined by union; with probability ½ one or two subtractions carving pieces out; with probability 0.4 one to three
/// thin structures (rods, plates, rings) added after the cuts; with probability ¼ per primitive height-field bumps; and
/// per part a procedural texture (solid, stripes, checker or value noise) with random colours. Every draw comes from
/// the one <see cref="DeterministicRandom"/> stream of the object.
/// </summary>
internal static class ProceduralObjects
{
    private static readonly SdfPrimitive[] Solids =
    [
        SdfPrimitive.Sphere, SdfPrimitive.Box, SdfPrimitive.RoundedBox, SdfPrimitive.Cylinder, SdfPrimitive.Cone,
        SdfPrimitive.Torus, SdfPrimitive.Capsule,
    ];

    /// <summary>The parts of one random object (not yet normalised; roughly within a radius of 1.3 of the origin).</summary>
    public static List<SdfPart> Generate(DeterministicRandom random, ObjectStyle style = ObjectStyle.Zeroverse)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (style == ObjectStyle.Simple)
        {
            return GenerateSimple(random);
        }
        var parts = new List<SdfPart>();
        var solids = random.NextInt(2, 6);
        for (var k = 0; k < solids; k++)
        {
            var centre = k == 0 ? Vec3.Zero : Clamp(new Vec3(random.NextGaussian(), random.NextGaussian(), random.NextGaussian()) * 0.3, 0.6);
            parts.Add(Solid(random, CsgMode.Union, centre, random.Uniform(0.18, 0.45), bumps: random.Chance(0.25)));
        }
        if (random.Chance(0.5))
        {
            var cuts = random.NextInt(1, 2);
            for (var k = 0; k < cuts; k++)
            {
                // Centred near a part's surface so that the cut removes something visible.
                var target = parts[random.NextInt(solids)];
                var centre = target.Translation + random.NextDirection() * (0.6 * target.BoundingRadius);
                parts.Add(Solid(random, CsgMode.Subtract, centre, random.Uniform(0.12, 0.3), bumps: false));
            }
        }
        if (random.Chance(0.4))
        {
            var thin = random.NextInt(1, 3);
            for (var k = 0; k < thin; k++)
            {
                parts.Add(Thin(random, Clamp(new Vec3(random.NextGaussian(), random.NextGaussian(), random.NextGaussian()) * 0.35, 0.7)));
            }
        }
        return parts;
    }

    // One or two solid-coloured primitives, the second overlapping the first: shapes a small model can learn quickly.
    private static List<SdfPart> GenerateSimple(DeterministicRandom random)
    {
        var parts = new List<SdfPart>();
        var solids = random.NextInt(1, 2);
        for (var k = 0; k < solids; k++)
        {
            var centre = k == 0 ? Vec3.Zero : Clamp(new Vec3(random.NextGaussian(), random.NextGaussian(), random.NextGaussian()) * 0.25, 0.4);
            var size = random.Uniform(0.25, 0.45);
            var colour = RandomColor(random);
            parts.Add(Solid(random, CsgMode.Union, centre, size, bumps: false, SdfTexture.Solid(colour)));
        }
        return parts;
    }

    private static Vec3 Clamp(Vec3 v, double limit) => new(Math.Clamp(v.X, -limit, limit), Math.Clamp(v.Y, -limit, limit), Math.Clamp(v.Z, -limit, limit));

    private static SdfPart Solid(DeterministicRandom random, CsgMode mode, Vec3 centre, double size, bool bumps, SdfTexture? texture = null)
    {
        var primitive = Solids[random.NextInt(Solids.Length)];
        double a, b = 0, c = 0, rounding = 0;
        switch (primitive)
        {
            case SdfPrimitive.Sphere:
                a = size;
                break;
            case SdfPrimitive.Box:
            case SdfPrimitive.RoundedBox:
                a = size * random.Uniform(0.4, 1);
                b = size * random.Uniform(0.4, 1);
                c = size * random.Uniform(0.4, 1);
                rounding = primitive == SdfPrimitive.RoundedBox ? Math.Min(a, Math.Min(b, c)) * random.Uniform(0.15, 0.5) : 0;
                break;
            case SdfPrimitive.Cylinder:
            case SdfPrimitive.Capsule:
                a = size * random.Uniform(0.3, 0.8);
                b = size * random.Uniform(0.5, 1.2);
                break;
            case SdfPrimitive.Cone:
                a = size * random.Uniform(0.4, 1);
                b = size * random.Uniform(0, 0.6);
                c = size * random.Uniform(0.5, 1.1);
                break;
            default: // torus
                a = size * random.Uniform(0.6, 1);
                b = a * random.Uniform(0.15, 0.45);
                break;
        }
        var frequency = random.Uniform(10, 24);
        return new SdfPart
        {
            Primitive = primitive,
            A = a,
            B = b,
            C = c,
            Rounding = rounding,
            Rotation = random.NextRotation(),
            Translation = centre,
            Mode = mode,
            Texture = texture ?? RandomTexture(random),
            BumpAmplitude = bumps ? size * random.Uniform(0.02, 0.06) : 0,
            BumpFrequency = bumps ? frequency / size * 0.25 : 0,
            BumpPhase = bumps ? new Vec3(random.Uniform(0, 6.3), random.Uniform(0, 6.3), random.Uniform(0, 6.3)) : Vec3.Zero,
        };
    }

    // Rods (capsules or cylinders), plates (flat boxes) and rings (thin tori).
    private static SdfPart Thin(DeterministicRandom random, Vec3 centre)
    {
        var thickness = random.Uniform(0.012, 0.035);
        var (primitive, a, b, c) = random.NextInt(4) switch
        {
            0 => (SdfPrimitive.Capsule, thickness, random.Uniform(0.25, 0.6), 0.0),
            1 => (SdfPrimitive.Cylinder, thickness, random.Uniform(0.25, 0.6), 0.0),
            2 => (SdfPrimitive.Box, random.Uniform(0.15, 0.4), random.Uniform(0.15, 0.4), thickness),
            _ => (SdfPrimitive.Torus, random.Uniform(0.2, 0.45), thickness, 0.0),
        };
        return new SdfPart
        {
            Primitive = primitive,
            A = a,
            B = b,
            C = c,
            Rotation = random.NextRotation(),
            Translation = centre,
            Mode = CsgMode.Union,
            Texture = RandomTexture(random),
        };
    }

    private static SdfTexture RandomTexture(DeterministicRandom random)
    {
        var kind = (TextureKind)random.NextInt(4);
        var a = RandomColor(random);
        var b = RandomColor(random);
        var frequency = kind switch
        {
            TextureKind.Stripes => random.Uniform(3, 12),
            TextureKind.Checker => random.Uniform(3, 10),
            TextureKind.Noise => random.Uniform(2, 8),
            _ => 1,
        };
        return new SdfTexture(kind, a, b, frequency, random.NextDirection(), (uint)random.NextUInt64());
    }

    private static Vec3 RandomColor(DeterministicRandom random) =>
        new(random.Uniform(0.05, 0.95), random.Uniform(0.05, 0.95), random.Uniform(0.05, 0.95));
}
