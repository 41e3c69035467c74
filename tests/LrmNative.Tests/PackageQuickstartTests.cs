namespace LrmNative.Tests;

/// <summary>
/// The NuGet packages (tools/pack.sh) as a game studio's tool would use them: examples/quickstart, copied out of the
/// repository so nothing of the repository's build leaks in, restores LrmNative from the freshly packed folder only,
/// builds, and reconstructs the bundled example into a GLB that the glTF validator accepts — with liblrm_native.so
/// found where the SDK puts a package's native asset (runtimes/linux-x64/native), not next to the app.
/// Needs the .NET SDK and a repository checkout with the tests' build; elsewhere (the GPU test bundle) it is ignored.
/// </summary>
[NonParallelizable]
public sealed class PackageQuickstartTests
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    [Test]
    public void TheQuickstartBuildsAgainstThePackagesAndWritesAValidGlb()
    {
        var (repository, dotnet) = Prerequisites();
        var work = Path.Combine(Path.GetTempPath(), $"lrm-quickstart-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            var packages = Path.Combine(work, "packages");
            var pack = Run(Path.Combine(repository, "tools", "pack.sh"),
                ["--no-build", "--configuration", Configuration, "--out", packages], repository, work);
            Assert.That(pack.ExitCode, Is.EqualTo(0), $"tools/pack.sh failed:\n{pack.Output}\n{pack.Errors}");
            Assert.That(File.Exists(Path.Combine(packages, "LrmNative.0.1.0.nupkg")), Is.True, pack.Output);
            Assert.That(File.Exists(Path.Combine(packages, "LrmNative.Interop.0.1.0.nupkg")), Is.True, pack.Output);

            var app = Path.Combine(work, "quickstart");
            Directory.CreateDirectory(app);
            foreach (var file in new[] { "Quickstart.csproj", "Program.cs", "Directory.Build.props", "Directory.Packages.props" })
            {
                File.Copy(Path.Combine(repository, "examples", "quickstart", file), Path.Combine(app, file));
            }
            // The committed nuget.config points at ../../artifacts/packages; the copy points at this test's packages.
            var config = File.ReadAllText(Path.Combine(repository, "examples", "quickstart", "nuget.config"));
            Assert.That(config, Does.Contain("value=\"../../artifacts/packages\""));
            File.WriteAllText(Path.Combine(app, "nuget.config"), config.Replace("../../artifacts/packages", packages));

            var build = Run(dotnet, ["build", "-c", "Release", "-nologo", "--disable-build-servers"], app, work);
            Assert.That(build.ExitCode, Is.EqualTo(0), $"dotnet build of the quickstart failed:\n{build.Output}\n{build.Errors}");
            var output = Path.Combine(app, "bin", "Release", "net10.0");
            Assert.That(File.Exists(Path.Combine(output, "runtimes", "linux-x64", "native", "liblrm_native.so")), Is.True,
                "the package's native asset is copied into the app's runtimes folder");
            Assert.That(File.Exists(Path.Combine(output, "liblrm_native.so")), Is.False,
                "the library is not next to the app, so the engine must find it in runtimes/");

            var result = Path.Combine(work, "result");
            var image = Path.Combine(repository, "examples", "heldout_00001.png");
            var run = Run(dotnet, [Path.Combine(output, "Quickstart.dll"), image, Path.Combine(repository, "models", "default"), result],
                app, work, new Dictionary<string, string> { ["QUICKSTART_MESH_RESOLUTION"] = "96" });
            TestContext.Out.WriteLine(run.Output);
            Assert.That(run.ExitCode, Is.EqualTo(0), $"the quickstart failed:\n{run.Output}\n{run.Errors}");
            Assert.That(run.Output, Does.Match(@"mesh\.glb: [\d,]+ vertices, [\d,]+ triangles"));
            var glb = Path.Combine(result, "mesh.glb");
            Assert.That(new FileInfo(glb).Length, Is.GreaterThan(1000));
            var mesh = Mesh.Load(glb);
            Assert.That(mesh.TriangleCount, Is.GreaterThan(100), "the default model's mesh of the example is a real surface");
            Assert.That(mesh.HasColors, Is.True);
            GltfValidator.AssertValid(glb);
            Assert.That(Directory.GetFiles(result, "turntable_*.png"), Has.Length.EqualTo(8));
            using (var view = Image.Load(Path.Combine(result, "input_view.png")))
            {
                Assert.That((view.Width, view.Height), Is.EqualTo((256, 256)));
            }

            // Bad input: one clear error naming the file, exit code 1, nothing written.
            var missing = Path.Combine(work, "no-such-photo.png");
            var bad = Run(dotnet, [Path.Combine(output, "Quickstart.dll"), missing, Path.Combine(repository, "models", "default"),
                Path.Combine(work, "bad")], app, work);
            Assert.That(bad.ExitCode, Is.EqualTo(1), bad.Output + bad.Errors);
            Assert.That(bad.Errors, Does.StartWith("quickstart: ").And.Contain(missing));
            Assert.That(Directory.Exists(Path.Combine(work, "bad")), Is.False);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The repository root (the tests' build must be in it) and the dotnet host with an SDK, or Ignore.</summary>
    private static (string Repository, string Dotnet) Prerequisites()
    {
        var repository = TestFiles.RepositoryFolder();
        if (repository is null)
        {
            Assert.Ignore("not running from a repository checkout (the GPU test bundle): the package test needs tools/pack.sh and the build");
        }
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)
            ? host
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "dotnet")).FirstOrDefault(File.Exists);
        if (dotnet is null)
        {
            Assert.Ignore("no dotnet host on PATH: the package test needs the .NET SDK");
        }
        var sdks = ExternalProcess.Run(dotnet, ["--list-sdks"], timeout: TimeSpan.FromMinutes(1));
        if (sdks.ExitCode != 0 || string.IsNullOrWhiteSpace(sdks.Output))
        {
            Assert.Ignore($"{dotnet} has no .NET SDK (only a runtime): the package test needs one");
        }
        return (repository, dotnet);
    }

    /// <summary>Runs a step of the test with a private NuGet cache (so a stale 0.1.0 in ~/.nuget/packages is never used).</summary>
    private static (int? ExitCode, string Output, string Errors) Run(string program, IEnumerable<string> arguments, string directory,
        string work, Dictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["NUGET_PACKAGES"] = Path.Combine(work, "nuget-cache"),
            ["MSBUILDDISABLENODEREUSE"] = "1",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        foreach (var (name, value) in extra ?? [])
        {
            environment[name] = value;
        }
        var (exitCode, output, errors) = ExternalProcess.Run(program, arguments, environment, TimeSpan.FromMinutes(5), directory);
        Assert.That(exitCode, Is.Not.Null, $"{Path.GetFileName(program)} {string.Join(' ', arguments)} did not finish in 5 minutes");
        return (exitCode, output, errors);
    }
}
