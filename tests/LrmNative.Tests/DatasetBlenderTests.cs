using System.Globalization;
using LrmNative.Data;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>
/// The Blender path of <c>lrm dataset render</c>: the job file round-trips the exact cameras and its lens settings
/// project like our pinhole; the script ships next to the tool; a failing Blender is one error naming the mesh and
/// leaves nothing behind; and, when <c>blender</c> is on PATH, an asymmetric two-sphere mesh rendered by Blender has
/// the same silhouettes as the CPU engine's render from the same cameras (a camera convention mismatch would move or
/// flip them), with identical poses, intrinsics and mesh.ply.
/// </summary>
[TestFixture]
public sealed class DatasetBlenderTests : TemporaryFolderFixture
{
    // A big sphere and a small one up and to the side: no symmetry a flipped or rotated camera could hide behind.
    private static Mesh TwoSpheres(float[]? color = null)
    {
        var big = DatasetTestSupport.Icosphere(4, 1.0, color);
        var small = DatasetTestSupport.Icosphere(3, 0.45, color);
        var offset = new[] { 1.1f, 0.35f, 0.7f };
        var smallPositions = small.Positions.ToArray();
        for (var k = 0; k < smallPositions.Length; k++)
        {
            smallPositions[k] += offset[k % 3];
        }
        var bigCount = big.Positions.Length / 3;
        float[] positions = [.. big.Positions.ToArray(), .. smallPositions];
        int[] triangles = [.. big.Triangles.ToArray(), .. small.Triangles.ToArray().Select(t => t + bigCount)];
        float[] colors = color is null ? [] : [.. big.Colors.ToArray(), .. small.Colors.ToArray()];
        return new Mesh(positions, triangles, colors);
    }

    [Test]
    public void ScriptIsDeployedNextToTheTool()
    {
        var toolFolder = Path.GetDirectoryName(typeof(Cli.DatasetCommand).Assembly.Location)!;
        var script = Path.Combine(toolFolder, BlenderEngine.ScriptRelativePath);
        Assert.That(File.Exists(script), Is.True, script);
        Assert.That(File.Exists(BlenderEngine.DefaultScript), Is.True, BlenderEngine.DefaultScript);
        var text = File.ReadAllText(script);
        Assert.That(text, Does.Contain("film_transparent").And.Contain("matrix_world").And.Contain("obj_import").And.Contain("import_scene.obj"));
    }

    [Test]
    public void JobFileRoundTripsTheExactCamerasAndItsLensProjectsLikeOurPinhole()
    {
        var random = new DeterministicRandom(3, 1);
        var options = new DatasetOptions { Views = 5, Resolution = 48 };
        var cameras = DatasetGeneration.SampleCameras(random, options);
        var lighting = Lighting.Sample(random);
        var job = new BlenderJob("mesh.obj", 0.37, new Vec3(0.1, -2, 3.5), new Vec3(-0.96, -0.5, -0.4), new Vec3(0.96, 0.5, 0.4), cameras, lighting,
            Path.Combine(Folder, "rgba"));
        var path = Path.Combine(Folder, "job.json");
        BlenderEngine.WriteJob(path, job);
        var read = BlenderEngine.ReadJob(path);
        Assert.That(read.Cameras, Has.Length.EqualTo(5));
        for (var v = 0; v < 5; v++)
        {
            Assert.That(read.Cameras[v], Is.EqualTo(cameras[v].CameraToWorld), $"camera {v} is bit-exact after the JSON");
        }
        Assert.That((read.Width, read.Height), Is.EqualTo((48, 48)));
        Assert.That((read.FocalX, read.FocalY), Is.EqualTo(((double)Cameras.CanonicalFocal, (double)Cameras.CanonicalFocal)));
        Assert.That(read.Scale, Is.EqualTo(0.37));
        Assert.That(read.Center, Is.EqualTo(new Vec3(0.1, -2, 3.5)));
        Assert.That(read.Lens, Is.EqualTo(27.0).Within(1e-6), "fx = 0.75 of the width with a 36 mm horizontal sensor");

        // Blender's pinhole (horizontal fit, shifts in units of the larger side), written out from its definition:
        // x = W·(½ − shift_x) + (lens/sensor)·W·X/(−Z), y = H/2 + side·shift_y − (lens/sensor)·W·Y/(−Z) in camera
        // coordinates (X, Y, Z) = Rᵀ(p − t), must equal DatasetCamera.Project, also for an off-centre principal point.
        var shifted = new DatasetCamera(cameras[2].CameraToWorld, 40, 30, focal: 0.8);
        var offCentre = new DatasetCamera(cameras[3].CameraToWorld, 64, 64, focal: 0.75, principal: 0.42);
        foreach (var camera in new[] { cameras[0], cameras[4], offCentre })
        {
            var lens = BlenderLens.From(camera);
            var m = camera.CameraToWorld;
            var p = new Vec3(0.3, -0.2, 0.25);
            var d = new[] { p.X - m[3], p.Y - m[7], p.Z - m[11] };
            var cx = m[0] * d[0] + m[4] * d[1] + m[8] * d[2];
            var cy = m[1] * d[0] + m[5] * d[1] + m[9] * d[2];
            var cz = m[2] * d[0] + m[6] * d[1] + m[10] * d[2];
            double side = Math.Max(camera.Width, camera.Height);
            var scale = lens.Lens / lens.SensorWidth * camera.Width;
            var x = camera.Width / 2.0 - lens.ShiftX * side + scale * cx / -cz;
            var y = camera.Height / 2.0 + lens.ShiftY * side - scale * cy / -cz;
            var expected = camera.Project(p);
            Assert.That(x, Is.EqualTo(expected.X).Within(1e-6));
            Assert.That(y, Is.EqualTo(expected.Y).Within(1e-6));
        }
        Assert.Throws<LrmUnsupportedException>(() => BlenderLens.From(shifted), "fx·W ≠ fy·H: Blender has square pixels only");
    }

    [Test]
    public void FailingBlenderIsOneErrorNamingTheMeshAndLeavesNothingBehind()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("needs a POSIX shell: the stand-in Blender this test runs is a /bin/sh script");
        }
        var meshes = Path.Combine(Folder, "meshes");
        Directory.CreateDirectory(meshes);
        TwoSpheres().SavePly(Path.Combine(meshes, "pair.ply"));
        var fake = Path.Combine(Folder, "fake-blender");
        File.WriteAllText(fake, "#!/bin/sh\necho 'Blender 9.9 (stand-in)'\necho 'lrm-blender: the importer exploded' >&2\nexit 3\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var output = Path.Combine(Folder, "out");
        var settings = new BlenderSettings(fake, BlenderEngine.DefaultScript);
        var error = Assert.Throws<LrmFormatException>(() =>
            DatasetGeneration.RenderMeshes(meshes, output, new DatasetOptions { Views = 2, Resolution = 16 }, blender: settings))!;
        Assert.That(error.Message, Does.Contain(Path.Combine(meshes, "pair.ply")).And.Contain("exit code 3").And.Contain("the importer exploded"));
        Assert.That(Directory.EnumerateFileSystemEntries(output), Is.Empty, "no object folder and no scratch folder are left");

        // Exit code 0 without images is an error too.
        File.WriteAllText(fake, "#!/bin/sh\nexit 0\n");
        error = Assert.Throws<LrmFormatException>(() =>
            DatasetGeneration.RenderMeshes(meshes, output, new DatasetOptions { Views = 2, Resolution = 16 }, blender: settings))!;
        Assert.That(error.Message, Does.Contain("pair.ply").And.Contain("wrote no image for view 0"));
        Assert.That(Directory.EnumerateFileSystemEntries(output), Is.Empty);
    }

    [Test]
    public void BlenderShowsAGlbInTheColoursOfThePlyOfTheSameMesh()
    {
        // glTF's COLOR_0 is linear and PLY's byte colours are sRGB: the same mesh saved both ways must look the same in a
        // glTF importer (Blender's), not washed out in the GLB (sRGB values stored as if linear).
        var blender = BlenderEngine.FindOnPath();
        if (blender is null)
        {
            Assert.Ignore("blender not installed: the GLB colour check renders through `blender` on PATH");
        }
        var mesh = DatasetTestSupport.Icosphere(3, 1.0, [0.8f, 0.5f, 0.2f]);
        // One object per run, named alike, so both get the same random camera and lighting.
        double[] MeanColour(string extension)
        {
            var meshes = Path.Combine(Folder, extension, "meshes");
            Directory.CreateDirectory(meshes);
            mesh.Save(Path.Combine(meshes, "sphere." + extension));
            var output = Path.Combine(Folder, extension, "rendered");
            DatasetGeneration.RenderMeshes(meshes, output, new DatasetOptions { Views = 1, Resolution = 32, Seed = 5 },
                blender: new BlenderSettings(blender, BlenderEngine.DefaultScript) { Samples = 16 });
            using var image = Image.Load(Path.Combine(output, "sphere", "rgba", "000.png"));
            var pixels = image.Pixels.AsSpan<float>();
            var sum = new double[3];
            var covered = 0;
            for (var p = 0; p < 32 * 32; p++)
            {
                if (pixels[4 * p + 3] > 0.99f)
                {
                    covered++;
                    for (var c = 0; c < 3; c++)
                    {
                        sum[c] += pixels[4 * p + c];
                    }
                }
            }
            Assert.That(covered, Is.GreaterThan(100), $"the {extension} sphere is in view");
            return [.. sum.Select(v => v / covered)];
        }
        var ply = MeanColour("ply");
        var glb = MeanColour("glb");
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"mean colour: PLY ({ply[0]:F3}, {ply[1]:F3}, {ply[2]:F3}), GLB ({glb[0]:F3}, {glb[1]:F3}, {glb[2]:F3})"));
        Assert.That(glb, Is.EqualTo(ply).Within(0.02), "the GLB renders in the PLY's colours");
    }

    [Test]
    public void BlenderSilhouettesMatchTheCpuEngineFromTheSameCameras()
    {
        var blender = BlenderEngine.FindOnPath();
        if (blender is null)
        {
            Assert.Ignore("blender not installed: `lrm dataset render --engine blender` needs `blender` on PATH");
        }
        var meshes = Path.Combine(Folder, "meshes");
        Directory.CreateDirectory(meshes);
        // The same asymmetric object through Blender's PLY importer (vertex colours) and its OBJ importer (axes kept).
        TwoSpheres([0.6f, 0.4f, 0.2f]).SavePly(Path.Combine(meshes, "a_pair.ply"));
        TwoSpheres().SaveObj(Path.Combine(meshes, "b_pair.obj"));
        TwoSpheres([0.3f, 0.5f, 0.7f]).SaveGlb(Path.Combine(meshes, "c_pair.glb")); // glTF's y-up, turned back to z-up by both readers
        var options = new DatasetOptions { Views = 2, Resolution = 64, Seed = 11 };
        var cpu = Path.Combine(Folder, "cpu");
        var viaBlender = Path.Combine(Folder, "blender");
        DatasetGeneration.RenderMeshes(meshes, cpu, options);
        DatasetGeneration.RenderMeshes(meshes, viaBlender, options, blender: new BlenderSettings(blender, BlenderEngine.DefaultScript) { Samples = 16 });
        foreach (var name in new[] { "a_pair", "b_pair", "c_pair" })
        {
            for (var v = 0; v < 2; v++)
            {
                using var a = Image.Load(Path.Combine(cpu, name, "rgba", $"{v:000}.png"));
                using var b = Image.Load(Path.Combine(viaBlender, name, "rgba", $"{v:000}.png"));
                Assert.That((b.Width, b.Height, b.HasAlpha), Is.EqualTo((64, 64, true)));
                var pa = a.Pixels.AsSpan<float>();
                var pb = b.Pixels.AsSpan<float>();
                int intersection = 0, union = 0, covered = 0;
                for (var p = 0; p < 64 * 64; p++)
                {
                    bool inA = pa[4 * p + 3] > 0.5f, inB = pb[4 * p + 3] > 0.5f;
                    intersection += inA && inB ? 1 : 0;
                    union += inA || inB ? 1 : 0;
                    covered += inA ? 1 : 0;
                }
                var iou = intersection / (double)union;
                TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} view {v}: silhouette IoU {iou:F4} ({covered} CPU pixels)"));
                Assert.That(covered, Is.GreaterThan(200), "the object is in view");
                Assert.That(iou, Is.GreaterThan(0.97), $"{name} view {v}: silhouette IoU between Blender and the CPU engine");
                Assert.That(File.ReadAllBytes(Path.Combine(viaBlender, name, "pose", $"{v:000}.npy")),
                    Is.EqualTo(File.ReadAllBytes(Path.Combine(cpu, name, "pose", $"{v:000}.npy"))), $"{name} pose {v}");
            }
            foreach (var file in new[] { "intrinsics.npy", "mesh.ply" })
            {
                Assert.That(File.ReadAllBytes(Path.Combine(viaBlender, name, file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(cpu, name, file))), $"{name}/{file}");
            }
        }
        Assert.That(Cli.DatasetCommand.RunCheck(viaBlender, TextWriter.Null), Is.EqualTo(0), "the Blender dataset passes `lrm dataset check`");
        Assert.That(Directory.EnumerateDirectories(viaBlender).Select(d => Path.GetFileName(d)), Is.EquivalentTo(new[] { "a_pair", "b_pair", "c_pair" }), "no scratch folders left");
    }
}
