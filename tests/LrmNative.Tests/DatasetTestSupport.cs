using System.CommandLine;
using System.Security.Cryptography;
using LrmNative.Cli;

namespace LrmNative.Tests;

/// <summary>Meshes, folders and in-process `lrm` runs shared by the dataset, mesh-reader and metrics tests.</summary>
internal static class DatasetTestSupport
{
    /// <summary>An icosahedron subdivided <paramref name="subdivisions"/> times onto a sphere, triangles facing outward.</summary>
    public static Mesh Icosphere(int subdivisions, double radius = 1, float[]? color = null)
    {
        var (points, triangles) = UnitIcosphere(subdivisions);
        var positions = points.SelectMany(p => new[] { (float)(p.X * radius), (float)(p.Y * radius), (float)(p.Z * radius) }).ToArray();
        var colors = color is null ? default : Enumerable.Range(0, points.Count).SelectMany(_ => color).ToArray();
        return new Mesh(positions, triangles, colors);
    }

    /// <summary>
    /// The vertices (on the unit sphere, in double precision) and triangles of an icosahedron subdivided
    /// <paramref name="subdivisions"/> times, each triangle oriented outward from the centre whatever order
    /// the table lists it in.
    /// </summary>
    public static (List<(double X, double Y, double Z)> Points, int[] Triangles) UnitIcosphere(int subdivisions)
    {
        var t = (1 + Math.Sqrt(5)) / 2;
        var points = new List<(double X, double Y, double Z)>
        {
            (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
            (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
        };
        points = points.Select(Unit).ToList();
        var faces = new List<(int A, int B, int C)>
        {
            (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
            (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
            (8, 6, 7), (9, 8, 1),
        };
        for (var s = 0; s < subdivisions; s++)
        {
            var midpoints = new Dictionary<(int, int), int>();
            int Midpoint(int a, int b)
            {
                var key = a < b ? (a, b) : (b, a);
                if (!midpoints.TryGetValue(key, out var index))
                {
                    var (p, q) = (points[a], points[b]);
                    points.Add(Unit(((p.X + q.X) / 2, (p.Y + q.Y) / 2, (p.Z + q.Z) / 2)));
                    index = midpoints[key] = points.Count - 1;
                }
                return index;
            }
            var finer = new List<(int, int, int)>();
            foreach (var (a, b, c) in faces)
            {
                int ab = Midpoint(a, b), bc = Midpoint(b, c), ca = Midpoint(c, a);
                finer.AddRange([(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]);
            }
            faces = finer;
        }
        var triangles = new List<int>();
        foreach (var (a, b, c) in faces)
        {
            var (pa, pb, pc) = (points[a], points[b], points[c]);
            var n = Cross((pb.X - pa.X, pb.Y - pa.Y, pb.Z - pa.Z), (pc.X - pa.X, pc.Y - pa.Y, pc.Z - pa.Z));
            var outward = n.X * (pa.X + pb.X + pc.X) + n.Y * (pa.Y + pb.Y + pc.Y) + n.Z * (pa.Z + pb.Z + pc.Z) > 0;
            triangles.AddRange(outward ? [a, b, c] : [a, c, b]);
        }
        return (points, triangles.ToArray());

        static (double X, double Y, double Z) Unit((double X, double Y, double Z) p)
        {
            var length = Math.Sqrt(p.X * p.X + p.Y * p.Y + p.Z * p.Z);
            return (p.X / length, p.Y / length, p.Z / length);
        }

        static (double X, double Y, double Z) Cross((double X, double Y, double Z) a, (double X, double Y, double Z) b) =>
            (a.Y * b.Z - a.Z * b.Y, a.Z * b.X - a.X * b.Z, a.X * b.Y - a.Y * b.X);
    }

    /// <summary>Copies every file under <paramref name="source"/> to the same relative path under <paramref name="target"/>; returns target.</summary>
    public static string CopyFolder(string source, string target)
    {
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }
        return target;
    }

    /// <summary>Runs `lrm dataset …` / `lrm eval …` in process; returns the exit code, stdout and stderr.</summary>
    public static (int ExitCode, string Output, string Error) Lrm(params string[] args)
    {
        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(DatasetCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>SHA-256 of every file under a folder, by relative path (hidden entries included).</summary>
    public static SortedDictionary<string, string> Hashes(string folder) =>
        new(Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))),
            StringComparer.Ordinal);
}
