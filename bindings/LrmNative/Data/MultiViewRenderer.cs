namespace LrmNative.Data;

/// <summary>The nearest surface a ray meets: distance along the unit ray, unit normal facing the ray, albedo and part.</summary>
internal struct SurfaceHit
{
    public double Distance;
    public Vec3 Normal;
    public Vec3 Albedo;
    public int Part;
}

/// <summary>Something a ray can hit: an SDF composition (<see cref="SdfScene"/>) or a triangle mesh (<see cref="MeshScene"/>).</summary>
internal interface IRayScene
{
    /// <summary>The nearest hit of origin + t·direction (unit direction) with t in (0, ∞), or false.</summary>
    bool Intersect(Vec3 origin, Vec3 direction, out SurfaceHit hit);
}

/// <summary>
/// Soft, shadowless lighting for Lambertian surfaces: a sky/ground hemisphere ambient term (sky colour for normals
/// along +Z, ground colour along −Z, blended by ½(1 + n_z)) plus up to a few directional lights,
/// radiance = albedo · (ambient(n) + Σ max(0, n·l_k) c_k), clamped to [0, 1]. Fixed in the world, so every view of an
/// object is lit the same way.
/// </summary>
internal sealed record Lighting(Vec3 Sky, Vec3 Ground, Vec3[] Directions, Vec3[] Colors)
{
    /// <summary>A neutral default: grey hemisphere and one key light from above-front-right.</summary>
    public static Lighting Default { get; } = new(new Vec3(0.45, 0.45, 0.45), new Vec3(0.25, 0.25, 0.25),
        [new Vec3(0.4, -0.5, 0.77).Normalized()], [new Vec3(0.65, 0.65, 0.65)]);

    /// <summary>
    /// Random soft lighting: ambient 0.35–0.6 with a slight tint, one key light (0.4–0.8) from the upper hemisphere and
    /// with probability ½ a weaker fill light (0.1–0.35) from anywhere.
    /// </summary>
    public static Lighting Sample(DeterministicRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var ambient = random.Uniform(0.35, 0.6);
        Vec3 Tint(double level) => new(level * random.Uniform(0.9, 1.1), level * random.Uniform(0.9, 1.1), level * random.Uniform(0.9, 1.1));
        var sky = Tint(ambient);
        var ground = sky * random.Uniform(0.4, 0.8);
        var key = random.NextDirection();
        key = new Vec3(key.X, key.Y, Math.Abs(key.Z) + 0.2).Normalized();
        var directions = new List<Vec3> { key };
        var colors = new List<Vec3> { Tint(random.Uniform(0.4, 0.8)) };
        if (random.Chance(0.5))
        {
            directions.Add(random.NextDirection());
            colors.Add(Tint(random.Uniform(0.1, 0.35)));
        }
        return new Lighting(sky, ground, [.. directions], [.. colors]);
    }

    /// <summary>Shaded colour of a surface with this albedo and unit normal.</summary>
    public Vec3 Shade(Vec3 albedo, Vec3 normal)
    {
        var up = 0.5 * (1 + normal.Z);
        var light = Sky * up + Ground * (1 - up);
        for (var k = 0; k < Directions.Length; k++)
        {
            var cosine = Vec3.Dot(normal, Directions[k]);
            if (cosine > 0)
            {
                light += Colors[k] * cosine;
            }
        }
        var c = Vec3.Multiply(albedo, light);
        return new Vec3(Math.Clamp(c.X, 0, 1), Math.Clamp(c.Y, 0, 1), Math.Clamp(c.Z, 0, 1));
    }
}

/// <summary>One rendered view: straight (not premultiplied) RGBA (H, W, 4) in [0, 1] and the centre ray's hit distance per pixel (+∞ on a miss).</summary>
internal sealed class RenderedView(int width, int height)
{
    public int Width { get; } = width;
    public int Height { get; } = height;
    public float[] Rgba { get; } = new float[width * height * 4];
    public double[] Depth { get; } = new double[width * height];
}

/// <summary>
/// Renders a scene from a <see cref="DatasetCamera"/> with adaptive anti-aliasing. Pass 1 traces the pixel centre.
/// Pass 2 traces a 4×4 stratified grid of sub-pixel rays in every pixel whose 3×3 neighbourhood disagrees (hit versus
/// miss, a different part, or a shaded colour differing by more than <see cref="ColorEdge"/>): alpha is the fraction of
/// the 16 rays that hit, RGB the mean colour of those that hit (straight alpha, RGB 0 where nothing is hit). Every
/// pixel is a pure function of the scene and the camera, so the image is identical for any thread count.
/// </summary>
internal static class MultiViewRenderer
{
    /// <summary>Shaded-colour difference (max over channels) between neighbours that triggers supersampling.</summary>
    public const double ColorEdge = 0.08;

    /// <summary>Sub-pixel rays per axis in supersampled pixels.</summary>
    public const int SubSamples = 4;

    public static RenderedView Render(IRayScene scene, DatasetCamera camera, Lighting lighting, ParallelOptions? parallel = null)
    {
        ArgumentNullException.ThrowIfNull(scene);
        ArgumentNullException.ThrowIfNull(camera);
        ArgumentNullException.ThrowIfNull(lighting);
        parallel ??= new ParallelOptions();
        int width = camera.Width, height = camera.Height;
        var view = new RenderedView(width, height);
        var centre = new float[width * height * 3];
        var part = new int[width * height];
        Parallel.For(0, height, parallel, i =>
        {
            for (var j = 0; j < width; j++)
            {
                var p = i * width + j;
                var direction = camera.RayDirection(j + 0.5, i + 0.5);
                if (scene.Intersect(camera.Origin, direction, out var hit))
                {
                    var c = lighting.Shade(hit.Albedo, hit.Normal);
                    centre[3 * p] = (float)c.X;
                    centre[3 * p + 1] = (float)c.Y;
                    centre[3 * p + 2] = (float)c.Z;
                    part[p] = hit.Part;
                    view.Depth[p] = hit.Distance;
                }
                else
                {
                    part[p] = -1;
                    view.Depth[p] = double.PositiveInfinity;
                }
            }
        });
        Parallel.For(0, height, parallel, i =>
        {
            for (var j = 0; j < width; j++)
            {
                var p = i * width + j;
                var rgba = view.Rgba.AsSpan(4 * p, 4);
                if (!NeedsSupersampling(centre, part, width, height, i, j))
                {
                    if (part[p] >= 0)
                    {
                        rgba[0] = centre[3 * p];
                        rgba[1] = centre[3 * p + 1];
                        rgba[2] = centre[3 * p + 2];
                        rgba[3] = 1f;
                    }
                    continue;
                }
                var sum = Vec3.Zero;
                var hits = 0;
                for (var a = 0; a < SubSamples; a++)
                {
                    for (var b = 0; b < SubSamples; b++)
                    {
                        var direction = camera.RayDirection(j + (b + 0.5) / SubSamples, i + (a + 0.5) / SubSamples);
                        if (scene.Intersect(camera.Origin, direction, out var hit))
                        {
                            sum += lighting.Shade(hit.Albedo, hit.Normal);
                            hits++;
                        }
                    }
                }
                if (hits > 0)
                {
                    rgba[0] = (float)(sum.X / hits);
                    rgba[1] = (float)(sum.Y / hits);
                    rgba[2] = (float)(sum.Z / hits);
                    rgba[3] = hits / (float)(SubSamples * SubSamples);
                }
            }
        });
        return view;
    }

    private static bool NeedsSupersampling(float[] colour, int[] part, int width, int height, int i, int j)
    {
        var p = i * width + j;
        for (var di = -1; di <= 1; di++)
        {
            var y = i + di;
            if (y < 0 || y >= height)
            {
                continue;
            }
            for (var dj = -1; dj <= 1; dj++)
            {
                var x = j + dj;
                if (x < 0 || x >= width || (di == 0 && dj == 0))
                {
                    continue;
                }
                var q = y * width + x;
                if (part[q] != part[p])
                {
                    return true;
                }
                if (part[p] >= 0 && (Math.Abs(colour[3 * q] - colour[3 * p]) > ColorEdge || Math.Abs(colour[3 * q + 1] - colour[3 * p + 1]) > ColorEdge
                    || Math.Abs(colour[3 * q + 2] - colour[3 * p + 2]) > ColorEdge))
                {
                    return true;
                }
            }
        }
        return false;
    }
}
