using System.Diagnostics;
using LrmNative.Backends;

namespace LrmNative.Data;

/// <summary>Options shared by <c>lrm dataset synth</c> and <c>lrm dataset render</c>.</summary>
internal sealed record DatasetOptions
{
    /// <summary>Views per object.</summary>
    public int Views { get; init; } = 32;

    /// <summary>Image side in pixels (square images).</summary>
    public int Resolution { get; init; } = 256;

    /// <summary>Seed of every random draw (objects, lighting, cameras).</summary>
    public ulong Seed { get; init; }

    /// <summary>Marching-cubes cells per axis of the ground-truth mesh of synthetic objects.</summary>
    public int MeshResolution { get; init; } = 128;

    /// <summary>Threads (0: all cores). The bytes written do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>Replace the dataset in a non-empty output folder (<see cref="DatasetWriter.PrepareRoot"/> removes the earlier one first).</summary>
    public bool Overwrite { get; init; }

    /// <summary>Synth only: continue the run in the output folder (<see cref="SynthManifest"/>), keeping the objects already there.</summary>
    public bool Resume { get; init; }

    /// <summary>
    /// Distance of view 000 (the source view training and evaluation condition on) from the origin; null: drawn like
    /// every other view from [1.5, 3.0]. Its direction is drawn as always, so the other views do not change.
    /// </summary>
    public double? SourceDistance { get; init; }

    /// <summary>How elaborate the procedural objects are (synth only).</summary>
    public ObjectStyle Style { get; init; } = ObjectStyle.Zeroverse;

    public ParallelOptions Parallel => new() { MaxDegreeOfParallelism = Threads > 0 ? Threads : -1 };

    public void Validate()
    {
        if (Views is < 1 or > 9999)
        {
            throw new LrmInvalidArgumentException($"--views must be in [1, 9999], got {Views}");
        }
        if (Resolution is < 8 or > 4096)
        {
            throw new LrmInvalidArgumentException($"--resolution must be in [8, 4096] pixels, got {Resolution}");
        }
        if (MeshResolution is < 16 or > 512)
        {
            throw new LrmInvalidArgumentException($"--mesh-resolution must be in [16, 512] cells, got {MeshResolution}");
        }
        if (Threads < 0)
        {
            throw new LrmInvalidArgumentException($"--threads must be >= 0 (0: all cores), got {Threads}");
        }
        if (SourceDistance is { } d && !(d >= 1.2 && d <= 10))
        {
            throw new LrmInvalidArgumentException($"--source-distance must be in [1.2, 10] (objects span [-0.96, 0.96]), got {d}");
        }
    }
}

/// <summary>Progress of a dataset run: objects done out of the total, the last one written and the time so far.</summary>
internal readonly record struct DatasetProgress(int Done, int Total, string Name, TimeSpan Elapsed)
{
    /// <summary>True when the object was already there (<c>--resume</c>) and was not written again.</summary>
    public bool Kept { get; init; }
}

/// <summary>
/// Builds multi-view datasets: procedural objects (<see cref="Synthesize"/>) or the user's meshes
/// (<see cref="RenderMeshes"/>), written by <see cref="DatasetWriter"/>. Object k draws everything from its own
/// random stream (seed, k): its shape, its lighting, then its cameras, so the bytes of a dataset depend only on the
/// options and never on thread scheduling.
/// </summary>
internal static class DatasetGeneration
{
    /// <summary>Longest half side of a normalised object: its bounding box is centred and spans [−0.96, 0.96] on its longest axis.</summary>
    public const double ObjectHalfExtent = 0.96;

    /// <summary>Marching-cubes cells per axis of the pass that measures a procedural object's bounding box.</summary>
    public const int BoundsResolution = 96;

    /// <summary>Name of synthetic object k.</summary>
    public static string SynthName(int index) => $"obj_{index:D5}";

    /// <summary>A normalised procedural object with its ground-truth mesh and lighting, and its stream (next: cameras).</summary>
    public static (SdfScene Scene, Mesh Mesh, Lighting Lighting, DeterministicRandom Random) CreateSynthObject(CpuBackend backend, ulong seed,
        int index, int meshResolution, ParallelOptions? parallel = null, ObjectStyle style = ObjectStyle.Zeroverse)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var random = new DeterministicRandom(seed, (ulong)index);
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var scene = new SdfScene(ProceduralObjects.Generate(random, style));
            var (min, max) = scene.Bounds;
            var lo = Math.Min(min.X, Math.Min(min.Y, min.Z)) - 0.05;
            var hi = Math.Max(max.X, Math.Max(max.Y, max.Z)) + 0.05;
            var coarse = Extract(backend, scene, BoundsResolution, lo, hi, parallel, colors: false);
            if (coarse is null)
            {
                continue; // the cuts removed everything: draw another object from the same stream
            }
            var box = coarse.Bounds;
            var centre = new Vec3(box.Center.X, box.Center.Y, box.Center.Z);
            var half = 0.5 * Math.Max(box.Size.X, Math.Max(box.Size.Y, box.Size.Z));
            var scale = ObjectHalfExtent / half;
            var normalised = scene.WithTransform(scale, -centre * scale);
            var mesh = Extract(backend, normalised, meshResolution, -1, 1, parallel, colors: true)
                ?? throw new LrmInternalException($"object {index}: the normalised object lost its surface");
            return (normalised, mesh, Lighting.Sample(random), random);
        }
        throw new LrmInternalException($"object {index} of seed {seed}: 20 draws in a row were empty");
    }

    /// <summary>The surface {d = 0} on a (cells+1)³ grid over [lo, hi]³ by marching cubes, with albedo vertex colours; null if empty.</summary>
    public static Mesh? Extract(CpuBackend backend, SdfScene scene, int cells, double lo, double hi, ParallelOptions? parallel, bool colors)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(scene);
        var samples = cells + 1;
        var inside = scene.InsideField(samples, lo, hi, parallel);
        using var field = Tensor.FromArray(inside, samples, samples, samples);
        float flo = (float)lo, fhi = (float)hi;
        var (vertices, triangles) = backend.MarchingCubes(field, 0f, [flo, flo, flo, fhi, fhi, fhi]);
        using (vertices)
        using (triangles)
        {
            if (triangles.ElementCount == 0)
            {
                return null;
            }
            var positions = vertices.AsSpan<float>();
            float[] rgb = [];
            if (colors)
            {
                rgb = new float[positions.Length];
                var copy = positions.ToArray();
                System.Threading.Tasks.Parallel.For(0, copy.Length / 3, parallel ?? new ParallelOptions(), v =>
                {
                    var p = new Vec3(copy[3 * v], copy[3 * v + 1], copy[3 * v + 2]);
                    scene.Distance(p, out var part);
                    var albedo = scene.Albedo(p, part);
                    rgb[3 * v] = (float)Math.Clamp(albedo.X, 0, 1);
                    rgb[3 * v + 1] = (float)Math.Clamp(albedo.Y, 0, 1);
                    rgb[3 * v + 2] = (float)Math.Clamp(albedo.Z, 0, 1);
                });
            }
            return new Mesh(positions, triangles.AsSpan<int>(), rgb);
        }
    }

    /// <summary>The cameras of an object's views, drawn from its stream (after its shape and lighting).</summary>
    public static List<DatasetCamera> SampleCameras(DeterministicRandom random, DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var cameras = Enumerable.Range(0, options.Views).Select(_ => DatasetCamera.SampleOrbit(random, options.Resolution, options.Resolution)).ToList();
        if (options.SourceDistance is { } distance)
        {
            cameras[0] = cameras[0].AtDistance(distance);
        }
        return cameras;
    }

    /// <summary>Host bytes per pixel of a rendered view (<see cref="RenderedView"/>): RGBA float32 (16) and depth float64 (8).</summary>
    public const long ViewBytesPerPixel = 24;

    /// <summary>
    /// Host memory an object's views take: every view is kept until the object is written (<see cref="RenderViews"/>,
    /// <see cref="DatasetWriter.WriteObject"/>), plus about one view more of working buffers while one is rendered or encoded.
    /// </summary>
    public static long ViewMemoryBytes(DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return (options.Views + 1L) * options.Resolution * options.Resolution * ViewBytesPerPixel;
    }

    /// <summary>
    /// Throws <see cref="LrmOutOfMemoryException"/> before anything is rendered or removed when an object's views
    /// (<see cref="ViewMemoryBytes"/>) would not fit in the host memory available: <c>--views 32 --resolution 4096</c>
    /// needs about 13 GB, which would otherwise end in the kernel's out-of-memory kill partway through the first object.
    /// </summary>
    public static void EnsureViewMemory(DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        HostMemory.EnsureAvailable(ViewMemoryBytes(options),
            $"--views {options.Views} at --resolution {options.Resolution} (an object's views are held until it is written, {ViewBytesPerPixel} bytes per pixel)",
            "use fewer --views or a lower --resolution");
    }

    /// <summary>Renders all views of an object from cameras drawn from its stream.</summary>
    public static List<(DatasetCamera Camera, RenderedView View)> RenderViews(IRayScene scene, Lighting lighting, DeterministicRandom random,
        DatasetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return SampleCameras(random, options).Select(camera => (camera, MultiViewRenderer.Render(scene, camera, lighting, options.Parallel))).ToList();
    }

    /// <summary>
    /// <c>lrm dataset synth</c>: <paramref name="objects"/> procedural objects into <paramref name="root"/>.
    /// <paramref name="note"/> hears what was done to the folder before the first object (the earlier dataset removed by --overwrite).
    /// </summary>
    public static void Synthesize(string root, int objects, DatasetOptions options, Action<DatasetProgress>? progress = null,
        Action<string>? note = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(options);
        if (objects is < 1 or > 10_000_000)
        {
            throw new LrmInvalidArgumentException($"--objects must be in [1, 10000000], got {objects}");
        }
        options.Validate();
        if (options.Resume && options.Overwrite)
        {
            throw new LrmInvalidArgumentException("--resume and --overwrite exclude each other: --resume keeps the objects already written, --overwrite replaces them");
        }
        EnsureViewMemory(options);
        if (options.Resume)
        {
            SynthManifest.CheckResume(root, options, objects);
            SynthManifest.RemoveStaging(root);
        }
        else
        {
            NoteRemoved(note, root, DatasetWriter.PrepareRoot(root, options.Overwrite));
        }
        SynthManifest.Write(root, options, objects);
        using var backend = new CpuBackend();
        var clock = Stopwatch.StartNew();
        var names = new List<string>();
        for (var index = 0; index < objects; index++)
        {
            cancel.ThrowIfCancellationRequested();
            var name = SynthName(index);
            // An object folder appears only by the rename of a complete one, so one that exists is whole.
            var kept = options.Resume && Directory.Exists(Path.Combine(root, name));
            if (!kept)
            {
                var (scene, mesh, lighting, random) = CreateSynthObject(backend, options.Seed, index, options.MeshResolution, options.Parallel, options.Style);
                var views = RenderViews(scene, lighting, random, options);
                DatasetWriter.WriteObject(root, name, views, mesh);
            }
            names.Add(name);
            if (!kept || index + 1 == objects)
            {
                DatasetWriter.WriteUids(root, names);
            }
            progress?.Invoke(new DatasetProgress(index + 1, objects, name, clock.Elapsed) { Kept = kept });
        }
    }

    /// <summary>Mesh files <c>lrm dataset render</c> accepts.</summary>
    public static readonly string[] MeshExtensions = [".obj", ".ply", ".glb"];

    /// <summary>
    /// Centres a mesh's bounding box at the origin and scales it so its longest side spans [−0.96, 0.96] (the same
    /// normalisation as procedural objects).
    /// </summary>
    public static Mesh Normalize(Mesh mesh, string source)
    {
        var (scale, center) = NormalizeTransform(mesh, source);
        var positions = mesh.Positions.ToArray();
        for (var v = 0; v < positions.Length / 3; v++)
        {
            positions[3 * v] = (float)((positions[3 * v] - center.X) * scale);
            positions[3 * v + 1] = (float)((positions[3 * v + 1] - center.Y) * scale);
            positions[3 * v + 2] = (float)((positions[3 * v + 2] - center.Z) * scale);
        }
        return new Mesh(positions, mesh.Triangles, mesh.Colors);
    }

    /// <summary>The normalisation of <see cref="Normalize"/>: p' = (p − center)·scale (also handed to Blender, so both engines agree).</summary>
    public static (double Scale, Vec3 Center) NormalizeTransform(Mesh mesh, string source)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (mesh.TriangleCount == 0)
        {
            throw new LrmInvalidArgumentException($"{source}: the mesh has no triangles");
        }
        var box = mesh.Bounds;
        var half = 0.5 * Math.Max(box.Size.X, Math.Max(box.Size.Y, box.Size.Z));
        if (!(half > 0))
        {
            throw new LrmInvalidArgumentException($"{source}: the mesh has zero extent (all vertices at one point)");
        }
        return (ObjectHalfExtent / half, new Vec3(box.Center.X, box.Center.Y, box.Center.Z));
    }

    /// <summary>
    /// Names an object folder must not take: the layout's own (an object folder named <c>rgba</c> makes readers take the
    /// whole root for one object; <c>uids.json</c> or <c>synth.json</c> as a folder hides the meta file), compared
    /// ignoring case so the dataset also reads on case-insensitive file systems.
    /// </summary>
    public static readonly string[] ReservedNames =
        [DatasetLayout.ImagesFolder, DatasetLayout.PosesFolder, DatasetLayout.IntrinsicsFile, DatasetLayout.MeshFile, DatasetLayout.UidsFile, SynthManifest.FileName];

    /// <summary>Appended to a mesh name that is one of <see cref="ReservedNames"/>.</summary>
    public const string ReservedSuffix = "_mesh";

    /// <summary>
    /// Object folder name for a mesh file: its file name without extension, unsafe characters replaced, leading dots
    /// dropped (hidden folders are not objects), and <see cref="ReservedSuffix"/> appended to a reserved name.
    /// </summary>
    public static string MeshName(string path)
    {
        var stem = Path.GetFileNameWithoutExtension(path);
        var chars = stem.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray();
        var name = new string(chars).TrimStart('.');
        if (name.Length == 0)
        {
            return "mesh";
        }
        return ReservedNames.Contains(name, StringComparer.OrdinalIgnoreCase) ? name + ReservedSuffix : name;
    }

    // Tells the caller how many objects of an earlier dataset --overwrite removed.
    private static void NoteRemoved(Action<string>? note, string root, int removed)
    {
        if (removed > 0)
        {
            note?.Invoke($"--overwrite: removed the {removed} object folder(s) of the earlier dataset in {root}");
        }
    }

    /// <summary>
    /// <c>lrm dataset render</c>: every OBJ/PLY/GLB in <paramref name="meshFolder"/> (sorted by name), normalised, rendered
    /// with the BVH ray tracer from the same random cameras as synthetic objects. All meshes are read and checked first.
    /// With <paramref name="blender"/>, Blender renders the images instead (<see cref="BlenderEngine"/>: textures,
    /// the same normalisation, cameras and lighting); poses, intrinsics and mesh.ply are the same bytes either way.
    /// </summary>
    public static void RenderMeshes(string meshFolder, string root, DatasetOptions options, Action<DatasetProgress>? progress = null,
        BlenderSettings? blender = null, Action<string>? note = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(meshFolder);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        EnsureViewMemory(options);
        if (!Directory.Exists(meshFolder))
        {
            throw new LrmInvalidArgumentException($"{meshFolder}: mesh folder not found");
        }
        var files = Directory.GetFiles(meshFolder)
            .Where(f => MeshExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
        {
            throw new LrmInvalidArgumentException($"{meshFolder}: no .obj, .ply or .glb meshes in the folder");
        }
        var names = files.Select(MeshName).ToList();
        // Two meshes with one object folder would overwrite each other: refused before anything is written.
        var duplicate = names.Select((name, i) => (name, i)).GroupBy(n => n.name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new LrmInvalidArgumentException(
                $"{meshFolder}: {string.Join(" and ", duplicate.Select(d => Path.GetFileName(files[d.i])))} map to the same object folder '{duplicate.Key}'; rename one");
        }
        // Read everything before writing anything.
        var loaded = files.Select(f =>
        {
            var raw = Mesh.Load(f);
            var (scale, center) = NormalizeTransform(raw, f);
            return (Mesh: Normalize(raw, f), Scale: scale, Center: center);
        }).ToList();
        var meshes = loaded.Select(m => m.Mesh).ToList();
        NoteRemoved(note, root, DatasetWriter.PrepareRoot(root, options.Overwrite));
        var clock = Stopwatch.StartNew();
        for (var index = 0; index < meshes.Count; index++)
        {
            cancel.ThrowIfCancellationRequested();
            var random = new DeterministicRandom(options.Seed, (ulong)index);
            var lighting = Lighting.Sample(random);
            List<(DatasetCamera Camera, RenderedView View)> views;
            if (blender is null)
            {
                views = RenderViews(new MeshScene(meshes[index]), lighting, random, options);
            }
            else
            {
                var cameras = SampleCameras(random, options);
                var box = meshes[index].Bounds;
                var work = Path.Combine(root, $".{names[index]}.blender.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
                try
                {
                    var job = new BlenderJob(files[index], loaded[index].Scale, loaded[index].Center, new Vec3(box.Min.X, box.Min.Y, box.Min.Z),
                        new Vec3(box.Max.X, box.Max.Y, box.Max.Z), cameras, lighting, Path.Combine(work, "rgba"), blender.Engine, blender.Samples);
                    var images = BlenderEngine.Render(blender, job, work, options.Threads);
                    views = [.. cameras.Zip(images)];
                }
                finally
                {
                    if (Directory.Exists(work))
                    {
                        Directory.Delete(work, recursive: true);
                    }
                }
            }
            DatasetWriter.WriteObject(root, names[index], views, meshes[index]);
            DatasetWriter.WriteUids(root, names.Take(index + 1));
            progress?.Invoke(new DatasetProgress(index + 1, meshes.Count, names[index], clock.Elapsed));
        }
    }
}
