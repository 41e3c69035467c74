using System.Numerics;
using LrmNative.Backends;
using LrmNative.Cli;
using LrmNative.IO;
using LrmNative.Model;
using LrmNative.Training;

namespace LrmNative.Tests;

/// <summary>
/// The occupancy supervision's pieces against independent references: <see cref="MeshOccupancy"/> against the analytic
/// inside of convex polyhedra (an icosphere's face planes, a box's bounds — the box's ±X faces put a shared diagonal
/// under query points and its other faces are edge-on to the ray), its point draws against the surface they come from,
/// and <see cref="Losses.Occupancy"/> against its closed form and central differences; then the loader's labelled points
/// against the analytic sphere in the world frame (mapped back from the normalised frame by the batch's own cameras), the
/// term inside a training step against central differences of its forward, and <c>lrm train --occupancy-weight</c>.
/// </summary>
public sealed class OccupancyTests
{
    // Inside a convex mesh with outward faces: behind every face plane.
    private static bool InsideConvex(Mesh mesh, double x, double y, double z)
    {
        var p = mesh.Positions;
        var t = mesh.Triangles;
        for (var f = 0; f < t.Length; f += 3)
        {
            double ax = p[3 * t[f]], ay = p[3 * t[f] + 1], az = p[3 * t[f] + 2];
            double ux = p[3 * t[f + 1]] - ax, uy = p[3 * t[f + 1] + 1] - ay, uz = p[3 * t[f + 1] + 2] - az;
            double vx = p[3 * t[f + 2]] - ax, vy = p[3 * t[f + 2] + 1] - ay, vz = p[3 * t[f + 2] + 2] - az;
            double nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
            if (nx * (x - ax) + ny * (y - ay) + nz * (z - az) >= 0)
            {
                return false;
            }
        }
        return true;
    }

    // The cube [−h, h]³ as 12 triangles facing outward.
    private static Mesh Cube(float h)
    {
        var positions = new float[24];
        for (var v = 0; v < 8; v++)
        {
            positions[3 * v] = (v & 1) == 0 ? -h : h;
            positions[3 * v + 1] = (v & 2) == 0 ? -h : h;
            positions[3 * v + 2] = (v & 4) == 0 ? -h : h;
        }
        int[] triangles =
        [
            0, 2, 1, 1, 2, 3, // z = −h
            4, 5, 6, 5, 7, 6, // z = +h
            0, 1, 4, 1, 5, 4, // y = −h
            2, 6, 3, 3, 6, 7, // y = +h
            0, 4, 2, 2, 4, 6, // x = −h
            1, 3, 5, 3, 7, 5, // x = +h
        ];
        return new Mesh(positions, triangles);
    }

    [Test]
    public void IcosphereInsideIsBehindEveryFacePlane()
    {
        var mesh = DatasetTestSupport.Icosphere(3, 0.6);
        var occupancy = new MeshOccupancy(mesh, "icosphere");
        var random = new Random(7);
        int inside = 0, disagree = 0;
        for (var i = 0; i < 20000; i++)
        {
            double x = random.NextDouble() * 1.6 - 0.8, y = random.NextDouble() * 1.6 - 0.8, z = random.NextDouble() * 1.6 - 0.8;
            var expected = InsideConvex(mesh, x, y, z);
            inside += expected ? 1 : 0;
            disagree += occupancy.Contains(x, y, z) == expected ? 0 : 1;
        }
        Assert.That(disagree, Is.Zero);
        // The sphere of radius 0.6 fills ~21 % of the 1.6³ box: both answers were exercised.
        Assert.That(inside, Is.InRange(3500, 5000));
    }

    [Test]
    public void CubeInsideHoldsOnSharedDiagonalsAndEdgeOnFaces()
    {
        var occupancy = new MeshOccupancy(Cube(0.5f), "cube");
        // Coordinates with y = z (the ±X faces' shared diagonal under the ray), 0 and values outside; none on a face.
        double[] values = [-0.75, -0.375, -0.25, 0, 0.25, 0.375, 0.75];
        var checkedPoints = 0;
        foreach (var x in values)
        {
            foreach (var y in values)
            {
                foreach (var z in values)
                {
                    var expected = Math.Abs(x) < 0.5 && Math.Abs(y) < 0.5 && Math.Abs(z) < 0.5;
                    Assert.That(occupancy.Contains(x, y, z), Is.EqualTo(expected), $"({x}, {y}, {z})");
                    checkedPoints++;
                }
            }
        }
        Assert.That(checkedPoints, Is.EqualTo(343));
        Assert.That(occupancy.Area, Is.EqualTo(6.0).Within(1e-9));
    }

    [Test]
    public void OpenOrEmptyMeshesAreRefusedNamingThem()
    {
        var cube = Cube(0.5f);
        var open = new Mesh(cube.Positions, cube.Triangles[..^3]);
        var error = Assert.Throws<LrmFormatException>(() => _ = new MeshOccupancy(open, "obj_7/mesh.ply"))!;
        Assert.That(error.Message, Does.StartWith("obj_7/mesh.ply: ").And.Contains("not closed").And.Contains("3 edge(s)"));
        Assert.That(MeshOccupancy.OpenEdges(cube.Triangles), Is.Zero);
        var empty = new Mesh(cube.Positions, ReadOnlySpan<int>.Empty);
        Assert.That(() => _ = new MeshOccupancy(empty, "empty.ply"), Throws.TypeOf<LrmFormatException>().With.Message.StartWith("empty.ply: ").And.Message.Contains("no triangles"));
    }

    [Test]
    public void SampledPointsAreLabelledAndHalfOfThemHugTheSurface()
    {
        const double radius = 0.6;
        var mesh = DatasetTestSupport.Icosphere(4, radius);
        var occupancy = new MeshOccupancy(mesh, "icosphere");
        const int n = 4000;
        var points = new float[3 * n];
        var labels = new float[n];
        occupancy.Sample(new TrainingRandom(2026), points, labels);
        var near = (int)(n * MeshOccupancy.NearSurfaceShare);
        double nearInside = 0, squaredOffset = 0;
        for (var i = 0; i < n; i++)
        {
            double x = points[3 * i], y = points[3 * i + 1], z = points[3 * i + 2];
            Assert.That(labels[i], Is.EqualTo(InsideConvex(mesh, x, y, z) ? 1f : 0f), $"point {i}");
            Assert.That(Math.Max(Math.Abs(x), Math.Max(Math.Abs(y), Math.Abs(z))), Is.LessThanOrEqualTo(MeshOccupancy.BoxHalfSide));
            if (i < near)
            {
                var offset = Math.Sqrt(x * x + y * y + z * z) - radius;
                squaredOffset += offset * offset;
                nearInside += labels[i];
            }
        }
        // A surface point plus N(0, σ²I) lies off the (locally flat) sphere by N(0, σ²) along the normal: RMS ≈ σ.
        Assert.That(Math.Sqrt(squaredOffset / near), Is.EqualTo(MeshOccupancy.SurfaceNoise).Within(0.1 * MeshOccupancy.SurfaceNoise));
        Assert.That(nearInside / near, Is.EqualTo(0.5).Within(0.05));
        // The uniform half: the sphere's share of the [−1, 1]³ box, 4/3·π·0.6³/8 ≈ 0.113.
        var uniformInside = labels[near..].Average();
        Assert.That(uniformInside, Is.EqualTo(4.0 / 3 * Math.PI * radius * radius * radius / 8).Within(0.025));
        // Same generator state, same points.
        var again = new float[3 * n];
        occupancy.Sample(new TrainingRandom(2026), again, new float[n]);
        Assert.That(again, Is.EqualTo(points));
    }

    [Test]
    public void OccupancyLossHasItsClosedFormAndItsGradientMatchesCentralDifferences()
    {
        const float half = 2f;
        var delta = Math.Log(2) / half;
        float[] sigma = [0f, 0.3f, 2f, 2f, 7.5f, 40f, 0.05f, 3f];
        float[] labels = [1f, 0f, 1f, 0f, 1f, 0f, 1f, 0.25f];
        using var s = Tensor.FromArray(sigma, [1, sigma.Length, 1]);
        using var o = Tensor.FromArray(labels, [1, labels.Length, 1]);
        using var g = Tensor.Zeros([1, sigma.Length, 1]);
        const float weight = 0.7f;
        var value = Losses.Occupancy(g, s, o, half, weight);
        var eps = Losses.OccupancyEpsilon;
        double Point(double sg, double label)
        {
            var p = 1 - Math.Exp(-sg * delta);
            return label * (Math.Log(1 + eps) - Math.Log(p + eps)) + (1 - label) * sg * delta;
        }
        var expected = sigma.Select((sg, i) => Point(sg, labels[i])).Average();
        Assert.That(value, Is.EqualTo(expected).Within(1e-12 + 1e-9 * expected));
        // At σ = half the occupancy is ½: inside costs log((1 + ε)/(½ + ε)), outside ln 2.
        Assert.That(Point(half, 1), Is.EqualTo(Math.Log((1 + eps) / (0.5 + eps))).Within(1e-12));
        Assert.That(Point(half, 0), Is.EqualTo(Math.Log(2)).Within(1e-12));
        var gradient = g.ToFloatArray();
        for (var i = 0; i < sigma.Length; i++)
        {
            var h = 1e-4 * Math.Max(1, sigma[i]);
            var numeric = (Point(sigma[i] + h, labels[i]) - Point(sigma[i] - h, labels[i])) / (2 * h) * weight / sigma.Length;
            Assert.That(gradient[i], Is.EqualTo(numeric).Within(2e-5 * Math.Abs(numeric) + 1e-9), $"σ = {sigma[i]}, o = {labels[i]}");
        }
        // Accumulating adds to what is there.
        using var twice = Tensor.FromArray(gradient, [1, sigma.Length, 1]);
        Losses.Occupancy(twice, s, o, half, weight, accumulate: true);
        Assert.That(twice.ToFloatArray(), Is.EqualTo(gradient.Select(v => 2 * v).ToArray()).Within(1e-7));
        Assert.That(() => Losses.Occupancy(null, s, o, 0f), Throws.TypeOf<LrmInvalidArgumentException>());
    }

    private static string TinyModel => Path.Combine(Golden.DataDirectory, "model", "tiny-train");

    // The occupancy loss of planes (1, 3, C, H, W) at points (1, N, 3) against labels (1, N, 1), in the model's NeRF.
    private static double OccupancyOf(CpuBackend backend, TriplaneNerf nerf, Tensor planes, Tensor points, Tensor labels, float half)
    {
        using var channelsLast = TriplaneNerf.ToChannelsLast(backend, planes);
        var n = points.Size(1);
        using var features = Tensor.Empty([1, n, 3 * nerf.Channels]);
        using var raw = Tensor.Empty([1, n, 4]);
        nerf.QueryRawTraining(backend, features, raw, channelsLast, points);
        using var sigma = Tensor.Empty([1, n, 1]);
        backend.NerfDecode(sigma, null, raw);
        using var column = Tensor.FromArray(labels.ToFloatArray(), 1, n, 1);
        return Losses.Occupancy(null, sigma, column, half);
    }

    [Test]
    public void OccupancyTermOfATrainingStepMatchesCentralDifferencesIntoThePlanes()
    {
        using var backend = new CpuBackend();
        using var model = LrmModel.Load(TinyModel, trainable: true, backend);
        using var file = SafeTensorsFile.Open(Path.Combine(TinyModel, "gradients.safetensors"));
        using var image = file.ReadTensor("in.image");
        using var camera = file.ReadTensor("in.source_camera");
        var random = new Random(5);
        using var target = GradientCheck.Uniform(random, 0f, 1f, 1, 8, 8, 3);
        using var alpha = GradientCheck.Uniform(random, 0f, 1f, 1, 8, 8, 1);
        using var viewCamera = file.ReadTensor("in.camera.0");
        IReadOnlyList<IReadOnlyList<TrainingView>> views = [[new TrainingView(viewCamera, 8, 1f, target, alpha)]];
        const int n = 96;
        using var points = GradientCheck.Uniform(random, -0.9f, 0.9f, 1, n, 3);
        using var labels = Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (float)random.Next(2)).ToArray(), 1, n);
        const float weight = 0.8f, half = 1.5f;
        Dictionary<string, float[]> PlaneGradient(LrmLossOptions options, out IReadOnlyDictionary<string, double> losses)
        {
            using var gradients = new GradientSet(LrmWeightNames.Expected(model.Config), model.Placement);
            var intermediate = new Dictionary<string, Tensor>();
            losses = LrmTrainingStep.ComputeGradients(backend, model, new TrainingRenderer(model.Renderer) { ChunkRays = 40 }, gradients, image, camera, views,
                options, intermediate, points, labels);
            var result = new Dictionary<string, float[]> { ["planes"] = intermediate["planes"].ToFloatArray(), ["nerf"] = gradients[$"{LrmWeightNames.Nerf}0.weight"].ToFloatArray() };
            foreach (var tensor in intermediate.Values)
            {
                tensor.Dispose();
            }
            return result;
        }
        var plain = new LrmLossOptions { MaskWeight = 0.5f };
        var without = PlaneGradient(plain, out var plainLosses);
        var with = PlaneGradient(plain with { OccupancyWeight = weight, OccupancyHalfDensity = half }, out var losses);
        Assert.That(plainLosses.ContainsKey("occupancy"), Is.False, "off by default");
        using var planes = model.ForwardPlanes(backend, image, camera);
        var value = OccupancyOf(backend, model.Renderer.Nerf, planes, points, labels, half);
        Assert.That(losses["occupancy"], Is.EqualTo(value).Within(1e-6 * value));
        Assert.That(losses["loss"], Is.EqualTo(plainLosses["loss"] + weight * value).Within(1e-6));
        Assert.That(with["nerf"], Is.Not.EqualTo(without["nerf"]), "the term reaches the NeRF's weights");
        // ∂(λ·Occ)/∂planes is what the term added; along a random direction it must match the loss's central difference.
        var added = with["planes"].Zip(without["planes"], (a, b) => (double)a - b).ToArray();
        var direction = Enumerable.Range(0, added.Length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        const float h = 1e-3f;
        double Shifted(float sign)
        {
            var values = planes.ToFloatArray();
            for (var i = 0; i < values.Length; i++)
            {
                values[i] += sign * h * direction[i];
            }
            using var moved = Tensor.FromArray(values, planes.Shape);
            return OccupancyOf(backend, model.Renderer.Nerf, moved, points, labels, half);
        }
        var numeric = (Shifted(1) - Shifted(-1)) / (2 * h);
        var analytic = added.Zip(direction, (g, d) => g * d).Sum() / weight;
        Assert.That(Math.Abs(numeric), Is.GreaterThan(1e-3), "the direction moves the loss");
        Assert.That(analytic, Is.EqualTo(numeric).Within(2e-2 * Math.Abs(numeric)));
        Assert.That(() => LrmTrainingStep.ComputeGradients(backend, model, new TrainingRenderer(model.Renderer), new GradientSet(LrmWeightNames.Expected(model.Config), model.Placement),
            image, camera, views, plain with { OccupancyWeight = weight }), Throws.TypeOf<LrmShapeException>().With.Message.Contains("occupancy loss needs points"));
    }

    // One training step of the tiny model with the occupancy term on backend (every input moved there): its losses
    // and every gradient on the host.
    private static (IReadOnlyDictionary<string, double> Losses, Dictionary<string, float[]> Gradients) DeviceStep(IBackend backend)
    {
        using var model = LrmModel.Load(TinyModel, trainable: true, backend);
        using var file = SafeTensorsFile.Open(Path.Combine(TinyModel, "gradients.safetensors"));
        using var scope = new ScratchTensors(backend);
        Tensor Place(Tensor host)
        {
            using (host)
            {
                return scope.Adopt(backend.ToBackend(host));
            }
        }
        var random = new Random(9);
        var views = new List<TrainingView>
        {
            new(Place(file.ReadTensor("in.camera.1")), 8, 0.5f, Place(GradientCheck.Uniform(random, 0f, 1f, 1, 8, 8, 3)), Place(GradientCheck.Uniform(random, 0f, 1f, 1, 8, 8, 1))),
        };
        var points = Place(GradientCheck.Uniform(random, -1f, 1f, 1, 50, 3));
        var labels = Place(Tensor.FromArray(Enumerable.Range(0, 50).Select(_ => (float)random.Next(2)).ToArray(), 1, 50));
        using var gradients = new GradientSet(LrmWeightNames.Expected(model.Config), model.Placement);
        var losses = LrmTrainingStep.ComputeGradients(backend, model, new TrainingRenderer(model.Renderer) { ChunkRays = 30 }, gradients,
            Place(file.ReadTensor("in.image")), Place(file.ReadTensor("in.source_camera")), [views],
            new LrmLossOptions { MaskWeight = 0.5f, OccupancyWeight = 0.3f }, occupancyPoints: points, occupancyLabels: labels);
        return (losses, gradients.Names.ToDictionary(n => n, n => backend.ToFloatArray(gradients[n]), StringComparer.Ordinal));
    }

    [Test]
    public void OccupancyStepOnADeviceBackendEqualsTheCpuBitForBit()
    {
        using var cpu = new CpuBackend();
        var expected = DeviceStep(cpu);
        using var device = new SimulatedDeviceBackend();
        var actual = DeviceStep(device);
        Assert.That(expected.Losses["occupancy"], Is.GreaterThan(0));
        Assert.That(actual.Losses, Is.EqualTo(expected.Losses));
        foreach (var (name, gradient) in expected.Gradients)
        {
            Assert.That(actual.Gradients[name], Is.EqualTo(gradient), name);
        }
        Assert.That(device.LiveTensors, Is.Zero, "no device tensor left behind");
    }

    private static readonly DataOptions MeshOptions = new()
    {
        ViewsPerSample = 2,
        SourceImageSize = 16,
        RenderMinResolution = 8,
        RenderMaxResolution = 16,
        PatchSize = 8,
        OccupancyPoints = 600,
    };

    [Test]
    public void LoaderLabelsPointsByTheSphereInTheSourcesNormalisedFrame()
    {
        using var temp = new TempFolder();
        TrainingSceneData.Write(temp.Path, objects: 3, views: 4, size: 16, seed: 3, withMesh: true);
        var dataset = MultiViewDataset.Open(temp.Path, MeshOptions);
        using var loader = new MultiViewLoader(dataset, batchSize: 3, seed: 11);
        using var batch = loader.Next();
        var plainDataset = MultiViewDataset.Open(temp.Path, MeshOptions with { OccupancyPoints = 0 });
        using var plainLoader = new MultiViewLoader(plainDataset, batchSize: 3, seed: 11);
        using var plain = plainLoader.Next();
        Assert.That(plain.OccupancyPoints, Is.Null);
        Assert.That(batch.SourceImages.ToFloatArray(), Is.EqualTo(plain.SourceImages.ToFloatArray()), "the rest of the sample does not change");
        Assert.That(batch.RenderCameras.ToFloatArray(), Is.EqualTo(plain.RenderCameras.ToFloatArray()));
        var points = batch.OccupancyPoints!.ToFloatArray();
        var labels = batch.OccupancyLabels!.ToFloatArray();
        const int n = 600;
        var sources = new HashSet<int>();
        for (var row = 0; row < 3; row++)
        {
            var directory = Path.Combine(temp.Path, batch.Objects[row]);
            var sphere = Mesh.Load(Path.Combine(directory, "mesh.ply"));
            var vertices = Enumerable.Range(0, sphere.VertexCount).Select(v => new Vector3(sphere.Positions[3 * v], sphere.Positions[3 * v + 1], sphere.Positions[3 * v + 2])).ToList();
            var center = vertices.Aggregate(Vector3.Zero, (a, b) => a + b) / vertices.Count;
            var radius = vertices.Average(v => (v - center).Length());
            // normalised = M·world with M taking the raw source pose to the normalised one: world = raw · normalisedᵀ… as matrices, raw · normalised⁻¹.
            var view = batch.ViewNumbers[row * 2];
            sources.Add(view);
            using var rawPose = Npy.ReadFloat32(Path.Combine(directory, "pose", $"{view:D3}.npy"));
            var raw = ToMatrix(rawPose.ToFloatArray());
            var normalised = ToMatrix(batch.FullCameras.ToFloatArray().AsSpan(row * 2 * 25, 16).ToArray());
            Assert.That(Matrix4x4.Invert(normalised, out var inverse), Is.True);
            var toWorld = inverse * raw; // row-vector convention: p_world = p_norm · (N⁻¹ R) as System.Numerics composes
            int decided = 0, nearSurface = 0;
            for (var i = 0; i < n; i++)
            {
                var p = new Vector3(points[3 * (row * n + i)], points[3 * (row * n + i) + 1], points[3 * (row * n + i) + 2]);
                var world = Vector3.Transform(p, toWorld);
                var distance = (world - center).Length() - radius;
                if (i < n / 2 && Math.Abs(distance) < 0.2)
                {
                    nearSurface++;
                }
                if (Math.Abs(distance) < 0.002)
                {
                    continue; // between the icosphere (faces within 0.001 of it) and the sphere
                }
                decided++;
                Assert.That(labels[row * n + i], Is.EqualTo(distance < 0 ? 1f : 0f), $"{batch.Objects[row]} point {i}: {distance:F3} from the sphere");
            }
            Assert.That(decided, Is.GreaterThan(n * 95 / 100));
            Assert.That(nearSurface, Is.GreaterThan(n / 2 * 95 / 100), "the first half lies near the surface");
        }
        Assert.That(labels.Sum(), Is.InRange(0.2 * labels.Length, 0.5 * labels.Length), "both labels drawn");
    }

    // A row-major 4×4 camera-to-world matrix (column vectors) as System.Numerics' row-vector matrix (its transpose).
    private static Matrix4x4 ToMatrix(float[] m) => Matrix4x4.Transpose(new Matrix4x4(m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]));

    [Test]
    public void MissingOpenOrUnreadableMeshesAreBadDataNamingTheFile()
    {
        using var temp = new TempFolder();
        TrainingSceneData.Write(temp.Path, objects: 3, views: 3, size: 16, seed: 4, withMesh: true);
        var garbage = Path.Combine(temp.Path, "o2", "mesh.ply");
        File.WriteAllText(garbage, "ply\nformat ascii 1.0\nelement vertex many\nend_header\n");
        var missing = Path.Combine(temp.Path, "o0", "mesh.ply");
        File.Delete(missing);
        var open = Path.Combine(temp.Path, "o1", "mesh.ply");
        var sphere = Mesh.Load(open);
        new Mesh(sphere.Positions, sphere.Triangles[3..]).SavePly(open);
        var dataset = MultiViewDataset.Open(temp.Path, MeshOptions with { BadData = BadDataPolicy.Skip });
        using var loader = new MultiViewLoader(dataset, batchSize: 1, seed: 1);
        Assert.That(() => loader.Next(), Throws.TypeOf<LrmFormatException>().With.Message.Contains("every object failed"));
        var problems = loader.Problems.OrderBy(p => p.Object, StringComparer.Ordinal).ToList();
        Assert.That(problems.Select(p => p.File), Is.EqualTo(new[] { missing, open, garbage }));
        Assert.That(problems[0].Message, Does.Contain("missing"));
        Assert.That(problems[1].Message, Does.Contain("not closed").And.Not.StartWith(open));
        Assert.That(problems[2].Message, Is.Not.Empty.And.Not.StartWith(garbage));
    }

    [Test]
    public void TrainWithOccupancyLowersTheTermAndRefusesDataWithoutMeshes()
    {
        using var temp = new TempFolder();
        var data = Path.Combine(temp.Path, "data");
        TrainingSceneData.Write(data, objects: 2, views: 4, size: 32, seed: 8, withMesh: true);
        var config = Path.Combine(temp.Path, "tiny.json");
        File.WriteAllText(config, TrainingSceneData.TinyConfigJson);
        var output = Path.Combine(temp.Path, "run");
        var log = new StringWriter();
        var options = new TrainOptions
        {
            Config = config, Data = data, Out = output, Steps = 60, Batch = 2, Views = 2, LearningRate = 2e-3, Warmup = 5, Seed = 3,
            CheckpointEvery = 0, Device = Device.Cpu, RenderMin = 16, RenderMax = 16, Patch = 16, MaskWeight = 0.5f, OccupancyWeight = 1f,
            OccupancyPoints = 256,
        };
        Assert.That(TrainCommand.Run(options, log), Is.EqualTo(60));
        Assert.That(log.ToString(), Does.Contain("occupancy loss at weight 1, 256 points per object and step"));
        var rows = TrainingLoop.ReadLog(output);
        var first = rows.Take(5).Average(r => r["occupancy"]);
        var last = rows.TakeLast(5).Average(r => r["occupancy"]);
        Assert.That(last, Is.LessThan(0.8 * first), $"occupancy {first:F3} → {last:F3}");

        // The points are part of the resumable data stream: 4 straight = 2, stop, resume 2, bit for bit.
        var straight = options with { Out = Path.Combine(temp.Path, "straight"), Steps = 4 };
        TrainCommand.Run(straight, new StringWriter());
        var split = straight with { Out = Path.Combine(temp.Path, "split") };
        Assert.That(TrainCommand.Run(split with { StopAt = 2 }, new StringWriter()), Is.EqualTo(2));
        Assert.That(TrainCommand.Run(split with { Resume = true }, new StringWriter()), Is.EqualTo(4));
        Assert.That(File.ReadAllBytes(Path.Combine(split.Out, TrainCommand.ModelFileName)), Is.EqualTo(File.ReadAllBytes(Path.Combine(straight.Out, TrainCommand.ModelFileName))));
        var changed = Assert.Throws<LrmInvalidArgumentException>(() => TrainCommand.Run(split with { Resume = true, Steps = 4, OccupancyWeight = 0.5f }, new StringWriter()))!;
        Assert.That(changed.Message, Does.Contain("--occupancy-weight 1 → 0.5"));

        var off = new StringWriter();
        TrainCommand.Run(options with { Out = Path.Combine(temp.Path, "off"), Steps = 1, OccupancyWeight = 0, OccupancyPoints = 100 }, off);
        Assert.That(off.ToString(), Does.Contain("--occupancy-points and --occupancy-density have no effect without --occupancy-weight").And.Not.Contain("occupancy loss at weight"));
        Assert.That(TrainingLoop.ReadLog(Path.Combine(temp.Path, "off"))[0].ContainsKey("occupancy"), Is.False);

        File.Delete(Path.Combine(data, "o1", "mesh.ply"));
        var error = Assert.Throws<LrmInvalidArgumentException>(() => TrainCommand.Run(options with { Out = Path.Combine(temp.Path, "again") }, new StringWriter()))!;
        Assert.That(error.Message, Does.Contain("--occupancy-weight needs a closed mesh.ply").And.Contains(Path.Combine(data, "o1", "mesh.ply")));
        Assert.That(() => TrainCommand.Run(options with { Out = Path.Combine(temp.Path, "third"), OccupancyPoints = 0 }, new StringWriter()),
            Throws.TypeOf<LrmInvalidArgumentException>().With.Message.Contains("--occupancy-points"));
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("lrm-occupancy-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
