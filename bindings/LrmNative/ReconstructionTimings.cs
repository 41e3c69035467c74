using System.Collections.Concurrent;

namespace LrmNative;

/// <summary>The stages of a reconstruction, in the paper's terms where it has them (LRM §4: image→triplane, grid query, marching cubes).</summary>
public enum ReconstructionStage
{
    /// <summary>Reading the weights (<see cref="Reconstructor.Load(string)"/>).</summary>
    Load,
    /// <summary>Compositing on white, re-centring and resizing the photo to the encoder's input.</summary>
    Preprocess,
    /// <summary>Encoder, camera embedding, transformer decoder and upsampler: the photo becomes a triplane.</summary>
    ImageToTriplane,
    /// <summary>Volume rendering of views.</summary>
    Render,
    /// <summary>The NeRF's density on the mesh grid.</summary>
    GridQuery,
    /// <summary>Marching cubes on the density grid.</summary>
    MarchingCubes,
    /// <summary>The NeRF's colour at the mesh vertices, and vertex normals.</summary>
    VertexColors,
}

/// <summary>How far a stage has come: reported to <see cref="ReconstructorOptions.Progress"/>.</summary>
/// <param name="Stage">The stage running.</param>
/// <param name="Fraction">Done so far, 0 at the start and 1 at the end.</param>
public readonly record struct ReconstructionProgress(ReconstructionStage Stage, double Fraction);

/// <summary>
/// Wall time spent in each <see cref="ReconstructionStage"/> (summed when a stage runs more than once, e.g. several
/// renders or meshes from one reconstruction). Stages that have not run read zero.
/// </summary>
public sealed class ReconstructionTimings
{
    private readonly ConcurrentDictionary<ReconstructionStage, TimeSpan> _times = new();

    // Made by the engine only: a reconstructor and each reconstruction fill one in.
    internal ReconstructionTimings()
    {
    }

    /// <summary>Time spent in <paramref name="stage"/>.</summary>
    public TimeSpan this[ReconstructionStage stage] => _times.TryGetValue(stage, out var time) ? time : TimeSpan.Zero;

    /// <summary>Loading the model (shared by every reconstruction of one <see cref="Reconstructor"/>).</summary>
    public TimeSpan Load => this[ReconstructionStage.Load];

    /// <summary>Preprocessing the photo.</summary>
    public TimeSpan Preprocess => this[ReconstructionStage.Preprocess];

    /// <summary>Image → triplane (the paper's 1.14 s on an A100 for its model).</summary>
    public TimeSpan ImageToTriplane => this[ReconstructionStage.ImageToTriplane];

    /// <summary>Rendering.</summary>
    public TimeSpan Render => this[ReconstructionStage.Render];

    /// <summary>Density grid query (the paper's 1.14 s at 384³).</summary>
    public TimeSpan GridQuery => this[ReconstructionStage.GridQuery];

    /// <summary>Marching cubes (the paper's 1.91 s at 384³).</summary>
    public TimeSpan MarchingCubes => this[ReconstructionStage.MarchingCubes];

    /// <summary>Vertex colours and normals.</summary>
    public TimeSpan VertexColors => this[ReconstructionStage.VertexColors];

    /// <summary>Every stage that has run, in stage order.</summary>
    public IReadOnlyList<KeyValuePair<ReconstructionStage, TimeSpan>> Stages =>
        [.. _times.OrderBy(pair => pair.Key)];

    internal void Add(ReconstructionStage stage, TimeSpan time) => _times.AddOrUpdate(stage, time, (_, old) => old + time);

    /// <summary>Every stage that has run with its seconds, e.g. "Load 0.05 s, Preprocess 0.07 s, ImageToTriplane 0.08 s".</summary>
    public override string ToString() =>
        string.Join(", ", Stages.Select(pair => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{pair.Key} {pair.Value.TotalSeconds:F2} s")));
}
