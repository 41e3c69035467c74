using LrmNative.Backends;
using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// Multi-view datasets of simple objects for the training acceptance tests, written by the tests themselves in
/// OpenLRM's layout: each object is one to three coloured spheres inside [−0.85, 0.85]³, Lambert-shaded by a light fixed
/// in the world (so the colour is view-independent, as a NeRF without view direction represents it), ray-cast through
/// the engine's own pixel-centre rays (<see cref="IBackend.RenderRays"/>) from cameras on a ring around the object at
/// distance 2, looking at the origin; straight alpha 1 on the object, 0 elsewhere.
/// <para>Symmetric objects (for overfitting one object) are stacks of spheres centred on the up (z) axis, lit from
/// straight above, seen from one elevation: the loader moves each sample's source camera to the canonical pose, and
/// for such an object every source view then yields the same canonical scene, so fitting it tests fitting, not
/// single-view inference of an unseen side (which a tiny model cannot learn in a few hundred steps).</para>
/// </summary>
internal static class TrainingSceneData
{
    /// <summary>Normalised focal length of every view (at distance 2 the object fills about half the view).</summary>
    public const float Focal = 1.3f;

    /// <summary>A tiny model config for training tests (OpenLRM keys): DINOv2-style 2×24 encoder on 28² images with
    /// 7×7 patches, 2-layer decoder of width 32, triplane 3×8×16², NeRF 3 × 32, 24 samples per ray.</summary>
    public const string TinyConfigJson = """
        {
          "camera_embed_dim": 16,
          "rendering_samples_per_ray": 24,
          "transformer_dim": 32,
          "transformer_layers": 2,
          "transformer_heads": 2,
          "triplane_low_res": 8,
          "triplane_high_res": 16,
          "triplane_dim": 8,
          "encoder_type": "dinov2",
          "encoder_model_name": "dinov2_vits14_reg",
          "encoder_feat_dim": 24,
          "encoder_freeze": false,
          "encoder_depth": 2,
          "encoder_heads": 2,
          "encoder_image_size": 28,
          "encoder_patch_size": 7,
          "encoder_pos_grid": 4,
          "nerf_hidden_dim": 32,
          "nerf_layers": 3
        }
        """;

    /// <summary>
    /// Writes <paramref name="objects"/> objects (o0, o1, …, or <paramref name="namePrefix"/>0, …) of <paramref name="views"/>
    /// size×size views under <paramref name="root"/>.
    /// </summary>
    /// <remarks>
    /// With <paramref name="withMesh"/> every object is one sphere and gets a closed <c>mesh.ply</c> in the world frame
    /// of its poses: an icosphere (4 subdivisions) of the sphere's centre and radius, for occupancy supervision.
    /// </remarks>
    public static void Write(string root, int objects, int views, int size, int seed = 1, bool symmetric = false, string namePrefix = "o", bool withMesh = false)
    {
        using var backend = new CpuBackend();
        var random = new Random(seed);
        for (var o = 0; o < objects; o++)
        {
            var spheres = Enumerable.Range(0, withMesh ? 1 : 1 + random.Next(3)).Select(_ => new Sphere(
                symmetric
                    ? [0f, 0f, (float)(random.NextDouble() - 0.5) * 0.6f]
                    : [(float)(random.NextDouble() - 0.5) * 0.4f, (float)(random.NextDouble() - 0.5) * 0.4f, (float)(random.NextDouble() - 0.5) * 0.4f],
                0.45f + 0.2f * (float)random.NextDouble(),
                [0.15f + 0.8f * (float)random.NextDouble(), 0.15f + 0.8f * (float)random.NextDouble(), 0.15f + 0.8f * (float)random.NextDouble()])).ToArray();
            var directory = Path.Combine(root, $"{namePrefix}{o}");
            Directory.CreateDirectory(Path.Combine(directory, "rgba"));
            Directory.CreateDirectory(Path.Combine(directory, "pose"));
            for (var v = 0; v < views; v++)
            {
                var azimuth = 2 * Math.PI * v / views + o;
                var elevation = symmetric ? 0.35 : 0.15 + 0.5 * ((v * 0.618 + o * 0.3) % 1.0);
                var pose = Cameras.LookAtOrigin((float)(2 * Math.Cos(elevation) * Math.Cos(azimuth)), (float)(2 * Math.Cos(elevation) * Math.Sin(azimuth)), (float)(2 * Math.Sin(elevation)));
                using (var image = RayCast(backend, spheres, pose, size, symmetric ? [0, 0, 1] : [0.5, -0.6, 0.7]))
                {
                    image.SavePng(Path.Combine(directory, "rgba", $"{v:D3}.png"));
                }
                using var poseTensor = Tensor.FromArray(pose, 4, 4);
                Npy.Write(Path.Combine(directory, "pose", $"{v:D3}.npy"), poseTensor);
            }
            using var intrinsics = Tensor.FromArray([Focal * size, Focal * size, size / 2f, size / 2f, size, size], 3, 2);
            Npy.Write(Path.Combine(directory, "intrinsics.npy"), intrinsics);
            if (withMesh)
            {
                var (center, radius) = (spheres[0].Center, spheres[0].Radius);
                var unit = DatasetTestSupport.Icosphere(4, radius);
                var positions = unit.Positions.ToArray();
                for (var i = 0; i < positions.Length; i++)
                {
                    positions[i] += center[i % 3];
                }
                new Mesh(positions, unit.Triangles).SavePly(Path.Combine(directory, "mesh.ply"));
            }
        }
    }

    private sealed record Sphere(float[] Center, float Radius, float[] Color);

    private static Image RayCast(CpuBackend backend, Sphere[] spheres, float[] pose, int size, double[] lightDirection)
    {
        long rays = (long)size * size;
        using var camera = Tensor.FromArray(Cameras.Render(pose, Focal, 0.5f), 1, 25);
        using var origins = Tensor.Empty([1, rays, 3]);
        using var directions = Tensor.Empty([1, rays, 3]);
        using var depths = Tensor.Empty([1, rays, 2]);
        backend.RenderRays(origins, directions, depths, null, camera, size, size);
        var o = origins.AsSpan<float>();
        var d = directions.AsSpan<float>();
        var light = Normalize(lightDirection);
        var rgba = new float[rays * 4];
        for (var r = 0; r < rays; r++)
        {
            double[] origin = [o[3 * r], o[3 * r + 1], o[3 * r + 2]];
            var direction = Normalize([d[3 * r], d[3 * r + 1], d[3 * r + 2]]);
            var best = double.PositiveInfinity;
            Sphere? hit = null;
            foreach (var sphere in spheres)
            {
                double[] oc = [origin[0] - sphere.Center[0], origin[1] - sphere.Center[1], origin[2] - sphere.Center[2]];
                var b = Dot(oc, direction);
                var c = Dot(oc, oc) - sphere.Radius * sphere.Radius;
                var discriminant = b * b - c;
                if (discriminant < 0)
                {
                    continue;
                }
                var t = -b - Math.Sqrt(discriminant);
                if (t > 0 && t < best)
                {
                    best = t;
                    hit = sphere;
                }
            }
            if (hit is null)
            {
                continue;
            }
            var normal = Normalize([origin[0] + best * direction[0] - hit.Center[0], origin[1] + best * direction[1] - hit.Center[1], origin[2] + best * direction[2] - hit.Center[2]]);
            var shade = 0.35 + 0.65 * Math.Max(0, Dot(normal, light));
            for (var c = 0; c < 3; c++)
            {
                rgba[4 * r + c] = (float)(hit.Color[c] * shade);
            }
            rgba[4 * r + 3] = 1f;
        }
        return Image.FromRgba(rgba, size, size);
    }

    private static double Dot(double[] a, double[] b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

    private static double[] Normalize(double[] v)
    {
        var n = Math.Sqrt(Dot(v, v));
        return [v[0] / n, v[1] / n, v[2] / n];
    }
}
