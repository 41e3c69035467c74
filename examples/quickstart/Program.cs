// LrmNative quickstart: one photo in, a coloured GLB mesh and a turntable of renders out.
//
//   dotnet run -- [IMAGE] [MODEL] [OUT]
//
// IMAGE: a PNG or JPEG of one object (RGBA with the background removed works best; an opaque photo is cut out
//        from its border colour). MODEL: an LrmNative model folder or file, or an OpenLRM checkpoint folder.
// Defaults: the repository's bundled example and default model, output in ./out.
using LrmNative;

var repository = FindRepository();
var imagePath = args.Length > 0 ? args[0] : Path.Combine(repository, "examples", "heldout_00001.png");
var modelPath = args.Length > 1 ? args[1] : Path.Combine(repository, "models", "default");
var outputFolder = args.Length > 2 ? args[2] : "out";
var meshResolution = int.TryParse(Environment.GetEnvironmentVariable("QUICKSTART_MESH_RESOLUTION"), out var r) ? r : 256;

// Ctrl+C cancels the work in progress cleanly (the engine checks the token between stages and inside the grid query).
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

try
{
    // Progress arrives synchronously from each stage; a tool would drive its own progress bar with it.
    var lastStage = (ReconstructionStage?)null;
    var options = new ReconstructorOptions
    {
        Progress = new SynchronousProgress(p =>
        {
            if (p.Stage != lastStage)
            {
                Console.WriteLine($"  {p.Stage} …");
                lastStage = p.Stage;
            }
        }),
    };

    // Device.Auto: a CUDA GPU when one is usable, else the CPU (DeviceNote says why).
    using var lrm = Reconstructor.Load(modelPath, Device.Auto, options);
    Console.WriteLine($"model {lrm.Source}: {lrm.ParameterCount:N0} parameters, on {lrm.Device}");
    if (lrm.DeviceNote is { } note)
    {
        Console.WriteLine($"  ({note})");
    }

    using var result = lrm.Reconstruct(imagePath, cancel.Token);
    foreach (var warning in result.Warnings)
    {
        Console.WriteLine($"warning: {warning}");
    }

    Directory.CreateDirectory(outputFolder);
    var mesh = result.ExtractMesh(meshResolution, threshold: null, coarseToFine: null, cancel.Token).WithoutSmallPieces(0.01);
    var glb = Path.Combine(outputFolder, "mesh.glb");
    mesh.SaveGlb(glb);
    Console.WriteLine($"{glb}: {mesh.VertexCount:N0} vertices, {mesh.TriangleCount:N0} triangles");

    using (var view = result.RenderInputView(256))
    {
        view.Color.SavePng(Path.Combine(outputFolder, "input_view.png"));
    }
    var frame = 0;
    foreach (var view in result.RenderTurntable(8, 128, cancel.Token))
    {
        using (view)
        {
            view.Color.SavePng(Path.Combine(outputFolder, $"turntable_{frame++:D2}.png"));
        }
    }
    Console.WriteLine($"{frame} turntable frames in {outputFolder}");
    Console.WriteLine(result.Timings);
    return 0;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("quickstart: cancelled");
    return 130;
}
catch (LrmException error)
{
    // Every engine error is an LrmException whose message names the file or tensor and what was expected.
    Console.Error.WriteLine($"quickstart: {error.Message}");
    return 1;
}

// The repository root (the folder with models/default), searched upwards from here and from the app's folder.
static string FindRepository()
{
    foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
    {
        for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
        {
            if (Directory.Exists(Path.Combine(directory.FullName, "models", "default")))
            {
                return directory.FullName;
            }
        }
    }
    return Environment.CurrentDirectory;
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
sealed class SynchronousProgress(Action<ReconstructionProgress> report) : IProgress<ReconstructionProgress>
{
    public void Report(ReconstructionProgress value) => report(value);
}
