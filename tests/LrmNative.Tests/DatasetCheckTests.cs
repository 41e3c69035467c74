using LrmNative.Data;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// `lrm dataset check` on a valid dataset (exit 0) and on copies with one problem injected each (exit 1, the file
/// named, the kind of problem said); `lrm dataset render` input errors.
/// </summary>
[TestFixture]
public sealed class DatasetCheckTests
{
    private static string _root = "";
    private static string _valid = "";

    [OneTimeSetUp]
    public static void MakeDataset()
    {
        _root = ImageFixtures.TemporaryFolder();
        _valid = Path.Combine(_root, "valid");
        var (code, _, error) = DatasetTestSupport.Lrm("dataset", "synth", "--objects", "2", "--views", "3", "--resolution", "24", "--seed", "1",
            "--mesh-resolution", "24", "--out", _valid);
        Assert.That(code, Is.EqualTo(0), error);
    }

    [OneTimeTearDown]
    public static void Remove() => Directory.Delete(_root, recursive: true);

    private static string Copy(string name) => DatasetTestSupport.CopyFolder(_valid, Path.Combine(_root, name));

    [Test]
    public void ValidDatasetPassesWithCounts()
    {
        var (code, output, _) = DatasetTestSupport.Lrm("dataset", "check", _valid);
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain("2 objects, 6 views, 2 meshes, images 24×24").And.Contain("ok: no problems"));
        // One object folder on its own is a dataset too.
        var single = DatasetTestSupport.Lrm("dataset", "check", Path.Combine(_valid, "obj_00001"));
        Assert.That(single.ExitCode, Is.EqualTo(0), single.Output);
        Assert.That(single.Output, Does.Contain("1 objects, 3 views"));
    }

    private static void WritePose(string path, double[] values, params long[] shape)
    {
        using var tensor = Tensor.FromArray([.. values.Select(v => (float)v)], shape);
        Npy.Write(path, tensor);
    }

    public static IEnumerable<TestCaseData> Problems()
    {
        TestCaseData Case(string name, string file, string expect, Action<string> inject) =>
            new TestCaseData(name, file, expect, inject).SetName($"{{m}}({name})");
        yield return Case("missing image", "obj_00000/rgba/001.png", "has a pose but no image", d => File.Delete(Path.Combine(d, "obj_00000/rgba/001.png")));
        yield return Case("missing pose", "obj_00001/pose/002.npy", "has an image but no pose", d => File.Delete(Path.Combine(d, "obj_00001/pose/002.npy")));
        yield return Case("scaled pose", "obj_00000/pose/000.npy", "not a rigid transform", d =>
        {
            var pose = DatasetLayout.ReadPose(Path.Combine(d, "obj_00000/pose/000.npy"));
            pose[0] *= 1.5;
            pose[4] *= 1.5;
            pose[8] *= 1.5;
            WritePose(Path.Combine(d, "obj_00000/pose/000.npy"), pose, 4, 4);
        });
        yield return Case("mirrored pose", "obj_00000/pose/001.npy", "reflection", d =>
        {
            var pose = DatasetLayout.ReadPose(Path.Combine(d, "obj_00000/pose/001.npy"));
            pose[0] = -pose[0];
            pose[4] = -pose[4];
            pose[8] = -pose[8];
            WritePose(Path.Combine(d, "obj_00000/pose/001.npy"), pose, 4, 4);
        });
        yield return Case("bad bottom row", "obj_00001/pose/000.npy", "bottom row", d =>
        {
            var pose = DatasetLayout.ReadPose(Path.Combine(d, "obj_00001/pose/000.npy"));
            pose[14] = 0.5;
            WritePose(Path.Combine(d, "obj_00001/pose/000.npy"), pose, 4, 4);
        });
        yield return Case("NaN pose", "obj_00001/pose/001.npy", "non-finite", d =>
        {
            var pose = DatasetLayout.ReadPose(Path.Combine(d, "obj_00001/pose/001.npy"));
            pose[3] = double.NaN;
            WritePose(Path.Combine(d, "obj_00001/pose/001.npy"), pose, 4, 4);
        });
        yield return Case("pose shape", "obj_00000/pose/002.npy", "(4, 4) or (3, 4)", d =>
            WritePose(Path.Combine(d, "obj_00000/pose/002.npy"), new double[9], 3, 3));
        yield return Case("camera at the origin", "obj_00001/pose/002.npy", "is at the origin", d =>
            WritePose(Path.Combine(d, "obj_00001/pose/002.npy"), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], 4, 4));
        yield return Case("image size", "obj_00000/rgba/002.png", "image of the wrong size: 20×24, but", d =>
        {
            using var image = Image.FromRgba(new float[20 * 24 * 4], 20, 24);
            image.SavePng(Path.Combine(d, "obj_00000/rgba/002.png"));
        });
        yield return Case("no alpha", "obj_00001/rgba/000.png", "no alpha channel", d =>
        {
            using var image = Image.FromRgb(new float[24 * 24 * 3], 24, 24);
            image.SavePng(Path.Combine(d, "obj_00001/rgba/000.png"));
        });
        yield return Case("corrupt image", "obj_00001/rgba/001.png", "obj_00001/rgba/001.png", d =>
        {
            var path = Path.Combine(d, "obj_00001/rgba/001.png");
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        });
        yield return Case("NaN intrinsics", "obj_00000/intrinsics.npy", "not finite", d =>
            WritePose(Path.Combine(d, "obj_00000/intrinsics.npy"), [18, 18, 12, 12, float.NaN, 24], 3, 2));
        yield return Case("absurd focal", "obj_00000/intrinsics.npy", "must lie in (0.001, 1000)", d =>
            WritePose(Path.Combine(d, "obj_00000/intrinsics.npy"), [1e30, 1e30, 12, 12, 24, 24], 3, 2));
        yield return Case("intrinsics size", "obj_00001/intrinsics.npy", "intrinsics.npy says 32×32", d =>
            WritePose(Path.Combine(d, "obj_00001/intrinsics.npy"), [24, 24, 16, 16, 32, 32], 3, 2));
        yield return Case("missing intrinsics", "obj_00001/intrinsics.npy", "missing", d => File.Delete(Path.Combine(d, "obj_00001/intrinsics.npy")));
        yield return Case("corrupt mesh", "obj_00000/mesh.ply", "mesh.ply", d => File.WriteAllText(Path.Combine(d, "obj_00000/mesh.ply"), "ply\nnonsense\n"));
        yield return Case("uids lists a missing object", "uids.json", "obj_00007", d =>
            File.WriteAllText(Path.Combine(d, "uids.json"), "[\"obj_00000\", \"obj_00001\", \"obj_00007\"]"));
        yield return Case("empty object", "obj_00002", "no views", d => Directory.CreateDirectory(Path.Combine(d, "obj_00002", "rgba")));
    }

    [TestCaseSource(nameof(Problems))]
    public void CheckFindsTheInjectedProblem(string name, string file, string expect, Action<string> inject)
    {
        ArgumentNullException.ThrowIfNull(inject);
        var dataset = Copy(name.Replace(' ', '_'));
        inject(dataset);
        var (code, output, _) = DatasetTestSupport.Lrm("dataset", "check", dataset);
        Assert.That(code, Is.EqualTo(1), output);
        var problems = output.Split('\n').Where(l => l.StartsWith("problem: ", StringComparison.Ordinal)).ToList();
        // One line names both the file and the problem (not one line the file, another the text).
        Assert.That(problems.Where(l => l.Contains(Path.Combine(dataset, file), StringComparison.Ordinal) && l.Contains(expect, StringComparison.Ordinal)),
            Is.Not.Empty, output);
        Assert.That(output, Does.Contain($"{problems.Count} problem(s)"));
    }

    [Test]
    public void CheckOfAMissingOrEmptyFolder()
    {
        var missing = DatasetTestSupport.Lrm("dataset", "check", Path.Combine(_root, "nowhere"));
        Assert.That(missing.ExitCode, Is.EqualTo(1));
        Assert.That(missing.Error, Does.Contain("nowhere").And.Contain("not found"));
        Directory.CreateDirectory(Path.Combine(_root, "empty"));
        var empty = DatasetTestSupport.Lrm("dataset", "check", Path.Combine(_root, "empty"));
        Assert.That(empty.ExitCode, Is.EqualTo(1));
        Assert.That(empty.Output, Does.Contain("no object folders"));
    }

    [Test]
    public void RenderRefusesBadInputsBeforeWritingAnything()
    {
        var meshes = Path.Combine(_root, "meshes");
        Directory.CreateDirectory(meshes);
        var output = Path.Combine(_root, "render-out");
        (int, string, string) Render(params string[] extra) =>
            DatasetTestSupport.Lrm(["dataset", "render", "--meshes", meshes, "--views", "2", "--resolution", "16", "--out", output, .. extra]);
        Assert.That(Render().Item3, Does.Contain("no .obj, .ply or .glb meshes"));
        DatasetTestSupport.Icosphere(1).SaveObj(Path.Combine(meshes, "a.obj"));
        File.WriteAllText(Path.Combine(meshes, "b.ply"), "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n");
        var broken = Render();
        Assert.That(broken.Item1, Is.EqualTo(1));
        Assert.That(broken.Item3, Does.Contain("b.ply").And.Contain("'y'"));
        Assert.That(Directory.Exists(output), Is.False, "the good mesh was not rendered before the broken one was found");
        File.Delete(Path.Combine(meshes, "b.ply"));
        DatasetTestSupport.Icosphere(1).SavePly(Path.Combine(meshes, "a.ply"));
        Assert.That(Render().Item3, Does.Contain("'a'"), "a.obj and a.ply would share a folder");
        File.Delete(Path.Combine(meshes, "a.ply"));
        Assert.That(Render("--engine", "povray").Item3, Does.Contain("--engine"));
        var blender = Render("--engine", "blender");
        if (Data.BlenderEngine.FindOnPath() is null)
        {
            Assert.That(blender.Item3, Does.Contain("blender"), "without Blender installed: a message, no crash");
        }
        else
        {
            Assert.That(blender.Item1, Is.EqualTo(0), blender.Item3); // the Blender path itself: DatasetBlenderTests
            Directory.Delete(output, recursive: true);
        }
        Assert.That(DatasetTestSupport.Lrm("dataset", "render", "--meshes", Path.Combine(_root, "none"), "--out", output).Error, Does.Contain("not found"));
        var (code, _, error) = Render();
        Assert.That(code, Is.EqualTo(0), error);
        Assert.That(DatasetTestSupport.Lrm("dataset", "check", output).ExitCode, Is.EqualTo(0));
    }
}
