using System.CommandLine;
using System.Diagnostics;
using LrmNative.Backends;
using LrmNative.IO;

namespace LrmNative.Cli;

/// <summary>
/// `lrm mesh VOLUME.npy --level L --out mesh.glb`: the iso-surface {v = L} of any float .npy volume
/// (D, H, W) indexed [z][y][x], by marching cubes (values above the level are inside). Vertices are placed
/// in the box given by --bounds (default [−1, 1]³, the object box of the model); the format follows the
/// extension of --out (.glb, .ply, .obj). Vertex normals are area-weighted face normals. --max-triangles N simplifies
/// the surface by quadric edge collapse (<see cref="Mesh.Simplified"/>).
/// </summary>
internal static class MeshCommand
{
    public static Command Create()
    {
        var volume = new Argument<string>("VOLUME") { Description = "A float32/float64 .npy volume (D, H, W) indexed [z][y][x]" };
        var level = new Option<float>("--level") { Description = "Iso-level: values above it are inside", Required = true };
        var output = new Option<string>("--out") { Description = "Mesh file to write: .glb, .ply or .obj", Required = true };
        var bounds = new Option<float[]>("--bounds")
        {
            Description = "Box the grid spans: minX minY minZ maxX maxY maxZ (default -1 -1 -1 1 1 1)",
            AllowMultipleArgumentsPerToken = true,
        };
        var maxTriangles = new Option<int>("--max-triangles")
        {
            Description = "Simplify the surface to at most N triangles by quadric edge collapse, keeping its topology (default 0: keep all)",
        };
        var command = new Command("mesh", "Extract an iso-surface from a .npy volume with marching cubes and save it as GLB/PLY/OBJ") { volume, level, output, bounds, maxTriangles };
        command.SetAction(result =>
        {
            var box = result.GetValue(bounds) is { Length: > 0 } given ? given : [-1f, -1f, -1f, 1f, 1f, 1f];
            Run(result.GetValue(volume)!, result.GetValue(level), result.GetValue(output)!, box, Console.Error, result.GetValue(maxTriangles));
            return 0;
        });
        return command;
    }

    public static void Run(string volumePath, float level, string outputPath, float[] bounds, TextWriter log, int maxTriangles = 0)
    {
        if (maxTriangles < 0)
        {
            throw new LrmInvalidArgumentException($"--max-triangles must be >= 0 (0: keep all), got {maxTriangles}");
        }
        if (bounds.Length != 6)
        {
            throw new LrmInvalidArgumentException($"--bounds needs 6 numbers (minX minY minZ maxX maxY maxZ), got {bounds.Length}");
        }
        var extension = Path.GetExtension(outputPath).ToLowerInvariant();
        if (extension is not (".glb" or ".ply" or ".obj"))
        {
            throw new LrmInvalidArgumentException($"{outputPath}: unknown mesh format '{extension}' (use .glb, .ply or .obj)");
        }
        var clock = Stopwatch.StartNew();
        using var field = Npy.ReadFloat32(volumePath);
        if (field.Rank != 3)
        {
            throw new LrmShapeException($"{volumePath}: a volume must be 3-D (D, H, W), got {field.ShapeText}");
        }
        using var backend = new CpuBackend();
        var (vertices, triangles) = backend.MarchingCubes(field, level, bounds);
        using (vertices)
        using (triangles)
        {
            if (triangles.ElementCount == 0)
            {
                throw new LrmInvalidArgumentException($"{volumePath}: no surface at level {level} (values span {Min(field)} .. {Max(field)}); nothing written");
            }
            // Normals once, on the mesh that is written.
            var extracted = new Mesh(vertices.AsSpan<float>(), triangles.AsSpan<int>());
            var mesh = (maxTriangles > 0 ? extracted.Simplified(maxTriangles) : extracted).ComputeVertexNormals();
            mesh.Save(outputPath);
            var simplified = mesh == extracted ? "" : $" (simplified from {extracted.TriangleCount} triangles)";
            log.WriteLine($"lrm: mesh {field.ShapeText} at level {level}: {mesh.VertexCount} vertices, {mesh.TriangleCount} triangles{simplified} → {outputPath} ({clock.Elapsed.TotalSeconds:F2} s)");
        }
    }

    private static float Min(Tensor t) => t.AsSpan<float>().ToArray().Where(float.IsFinite).DefaultIfEmpty(float.NaN).Min();

    private static float Max(Tensor t) => t.AsSpan<float>().ToArray().Where(float.IsFinite).DefaultIfEmpty(float.NaN).Max();
}
