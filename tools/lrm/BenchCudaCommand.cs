using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LrmNative;
using LrmNative.Backends;

namespace LrmNative.Cli;

/// <summary>
/// `lrm bench-cuda`: device timings of the CUDA kernels on the LRM shapes (CUDA events, warm-up
/// first, median of repeats, inputs random, never zeros), written as JSON and a table. The peers
/// (PyTorch SDPA, grid_sample, scikit-image) run in benchmarks/peers/cuda_peers.py on the same
/// machine; tools/gpu-check.sh runs both.
/// </summary>
internal static class BenchCudaCommand
{
    public static Command Create()
    {
        var command = new Command("bench-cuda", "Time the CUDA kernels on LRM shapes (attention, triplane sampling, ModLN, GEMM, marching cubes, a decoder layer)");
        var output = new Option<string?>("--out") { Description = "Write the results as JSON to this file" };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions per case (median reported)", DefaultValueFactory = _ => 20 };
        command.Options.Add(output);
        command.Options.Add(repeats);
        command.SetAction(parse =>
        {
            try
            {
                Run(parse.GetValue(output), Math.Max(3, parse.GetValue(repeats)));
                return 0;
            }
            catch (LrmException error)
            {
                Console.Error.WriteLine($"lrm: error: {error.Message}");
                return 1;
            }
        });
        return command;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private sealed record Result(string Name, double Milliseconds, double Rate, string Unit, string Note);

    private static void Run(string? outputPath, int repeats)
    {
        if (!CudaBackend.IsAvailable(out var reason))
        {
            throw new LrmCudaUnavailableException($"bench-cuda needs a CUDA device: {reason}");
        }
        var results = new List<Result>();
        using var cuda = new CudaBackend(new CudaBackendOptions { Precision = MatmulPrecision.BFloat16 });
        using var fp32 = new CudaBackend(new CudaBackendOptions { Precision = MatmulPrecision.Float32 });
        using var pipelined = new CudaBackend(new CudaBackendOptions { Precision = MatmulPrecision.BFloat16, TensorCoreAttentionVersion = 2 });
        Console.WriteLine($"device {cuda.DeviceName} ({cuda.Architecture}), driver {cuda.DriverVersion}, cuBLASLt {cuda.CublasLtStatus}");
        var scope = new List<Tensor>();
        Tensor Random(CudaBackend backend, int seed, float low, float high, params long[] shape)
        {
            using var host = Tensor.Empty(shape);
            var span = host.AsSpan<float>();
            var random = new Random(seed);
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = low + (float)random.NextDouble() * (high - low);
            }
            var device = backend.Upload(host);
            scope.Add(device);
            return device;
        }
        Tensor Empty(CudaBackend backend, params long[] shape)
        {
            var device = backend.Empty(shape);
            scope.Add(device);
            return device;
        }
        double Median(CudaBackend backend, Action work)
        {
            work(); // warm-up: compiles/loads modules, plans cuBLASLt
            work();
            var times = new double[repeats];
            for (var i = 0; i < repeats; i++)
            {
                times[i] = backend.ElapsedMilliseconds(work);
            }
            Array.Sort(times);
            return times[repeats / 2];
        }
        void Add(string name, double milliseconds, double amount, string unit, string note = "")
        {
            var rate = amount / (milliseconds * 1e-3);
            results.Add(new Result(name, milliseconds, rate, unit, note));
            Console.WriteLine($"{name,-52} {milliseconds,10:F3} ms  {rate,12:F2} {unit}  {note}");
        }

        try
        {
            // Attention, heads of 64 (LRM decoder: 16 heads × 64, 3072 triplane tokens; cross to 257…1025 image tokens).
            foreach (var (label, backend) in new[] { ("bf16 mma v1", cuda), ("bf16 mma v2", pipelined), ("fp32", fp32) })
            {
                foreach (var keys in new[] { 3072, 1025, 257 })
                {
                    var q = Random(backend, 1, -1, 1, 1, 3072, 1024);
                    var kv = Random(backend, 2, -1, 1, 1, keys, 2048);
                    var o = Empty(backend, 1, 3072, 1024);
                    var ms = Median(backend, () => backend.Attention(o, null, q, new ColumnSlice(kv, 0), new ColumnSlice(kv, 1024), 16, 0.125f));
                    Add($"attention {label} 16x64 q3072 k{keys}", ms, 4.0 * 16 * 3072 * keys * 64 / 1e12, "TFLOP/s");
                }
            }

            // Triplane sampling: planes (1, 3, 64, 64, 80) channels-last, 2^22 points (rendering 32768 rays × 128 samples).
            {
                var planes = Random(cuda, 3, -1, 1, 1, 3, 64, 64, 80);
                var points = Random(cuda, 4, -1, 1, 1, 1L << 22, 3);
                var o = Empty(cuda, 1, 1L << 22, 240);
                var ms = Median(cuda, () => cuda.TriplaneSample(o, planes, points));
                Add("triplane sample 3x64x64x80, 4M points", ms, (1L << 22) / 1e9, "Gpoints/s",
                    $"{((1L << 22) * (240 + 3) * 4) / (ms * 1e-3) / 1e9:F0} GB/s of points+output");
            }

            // The NeRF decoder MLP (fused kernel): 3·80 → 64 → 64 → 64 → 4, ReLU, on the triplane samples of 2^20 points.
            {
                const long rows = 1L << 20;
                var features = Random(cuda, 30, -1, 1, rows, 240);
                var w0 = Random(cuda, 31, -0.1f, 0.1f, 64, 240);
                var w1 = Random(cuda, 32, -0.1f, 0.1f, 64, 64);
                var w2 = Random(cuda, 33, -0.1f, 0.1f, 64, 64);
                var w3 = Random(cuda, 34, -0.1f, 0.1f, 4, 64);
                var b0 = Random(cuda, 35, -0.1f, 0.1f, 64);
                var o = Empty(cuda, rows, 4);
                var ms = Median(cuda, () => cuda.Mlp(o, features, [w0, w1, w2, w3], [b0, b0, b0, null], Activation.Relu, Activation.None));
                Add("NeRF MLP fused 240-64-64-64-4, 1M rows", ms, 2.0 * rows * (240 * 64 + 2 * 64 * 64 + 64 * 4) / 1e12, "TFLOP/s",
                    $"{rows * (240 + 4) * 4 / (ms * 1e-3) / 1e9:F0} GB/s of input+output");
            }

            // ModLN over the decoder's tokens: (1, 3072, 1024), fp32 in; fp32 out, and bf16 out with the residual fused.
            {
                var x = Random(cuda, 5, -2, 2, 1, 3072, 1024);
                var residual = Random(cuda, 6, -2, 2, 1, 3072, 1024);
                var w = Random(cuda, 7, 0.5f, 1.5f, 1024);
                var b = Random(cuda, 8, -0.5f, 0.5f, 1024);
                var shift = Random(cuda, 9, -0.5f, 0.5f, 1, 1024);
                var scale = Random(cuda, 10, -0.5f, 0.5f, 1, 1024);
                var o = Empty(cuda, 1, 3072, 1024);
                var sum = Empty(cuda, 1, 3072, 1024);
                var half = cuda.Empty([1, 3072, 1024], DataType.BFloat16);
                scope.Add(half);
                var ms = Median(cuda, () => cuda.ModLN(o, null, null, x, w, b, shift, scale, 1e-6f));
                Add("ModLN 3072x1024 fp32->fp32", ms, 3072.0 * 1024 * 8 / 1e9, "GB/s");
                ms = Median(cuda, () => cuda.ModLNResidual(null, half, sum, null, null, x, residual, w, b, shift, scale, 1e-6f));
                Add("ModLN+residual 3072x1024 -> sum fp32 + bf16", ms, 3072.0 * 1024 * (4 + 4 + 4 + 2) / 1e9, "GB/s");
            }

            // GEMM: the decoder MLP's first layer, 3072×1024 · 1024×4096.
            foreach (var (label, backend) in new[] { ("bf16 cuBLASLt", cuda), ("fp32 kernel", fp32) })
            {
                var a = Random(backend, 11, -1, 1, 3072, 1024);
                var w = Random(backend, 12, -0.05f, 0.05f, 4096, 1024);
                var bias = Random(backend, 13, -0.1f, 0.1f, 4096);
                var o = Empty(backend, 3072, 4096);
                var ms = Median(backend, () => backend.Gemm(o, a, w, bias, null, false, true));
                Add($"GEMM {label} 3072x1024x4096 +bias", ms, 2.0 * 3072 * 1024 * 4096 / 1e12, "TFLOP/s", "includes fp32→bf16 operand conversion");
            }

            // Marching cubes of a 384³ sphere (plus ripples, so the surface is not trivial).
            {
                const int n = 384;
                using var host = Tensor.Empty([n, n, n]);
                var span = host.AsSpan<float>();
                for (var z = 0; z < n; z++)
                {
                    for (var y = 0; y < n; y++)
                    {
                        for (var x = 0; x < n; x++)
                        {
                            double dx = (x - n / 2.0) / n, dy = (y - n / 2.0) / n, dz = (z - n / 2.0) / n;
                            span[(z * n + y) * n + x] = (float)(0.35 - Math.Sqrt(dx * dx + dy * dy + dz * dz) + 0.02 * Math.Sin(40 * dx) * Math.Cos(37 * dy));
                        }
                    }
                }
                var field = cuda.Upload(host);
                scope.Add(field);
                var triangles = 0L;
                var ms = Median(cuda, () =>
                {
                    var (v, t) = cuda.MarchingCubes(field, 0f);
                    triangles = t.Size(0);
                    v.Dispose();
                    t.Dispose();
                });
                Add("marching cubes 384^3 (count, scan, emit)", ms, (double)n * n * n / 1e6, "Mvoxel/s", $"{triangles} triangles; includes reading the two totals to the host");
            }

            // One decoder layer of the large config (dD 1024, 16 heads, 3072 tokens, 1025 image tokens, MLP 4096), bf16 GEMMs:
            // a proxy for image→triplane until the model runs on CudaBackend (×16 layers ≈ the decoder).
            {
                const long tokens = 3072, image = 1025, width = 1024;
                var f = Random(cuda, 14, -1, 1, 1, tokens, width);
                var h = Random(cuda, 15, -1, 1, 1, image, width);
                var w = Random(cuda, 16, 0.5f, 1.5f, width);
                var b = Random(cuda, 17, -0.1f, 0.1f, width);
                var shift = Random(cuda, 18, -0.1f, 0.1f, 1, width);
                var scale = Random(cuda, 19, -0.1f, 0.1f, 1, width);
                var wq = Random(cuda, 20, -0.03f, 0.03f, width, width);
                var wkv = Random(cuda, 21, -0.03f, 0.03f, 2 * width, width);
                var wqkv = Random(cuda, 22, -0.03f, 0.03f, 3 * width, width);
                var wo = Random(cuda, 23, -0.03f, 0.03f, width, width);
                var w1 = Random(cuda, 24, -0.03f, 0.03f, 4 * width, width);
                var b1 = Random(cuda, 25, -0.03f, 0.03f, 4 * width);
                var w2 = Random(cuda, 26, -0.03f, 0.03f, width, 4 * width);
                var normed = Empty(cuda, 1, tokens, width);
                var q = Empty(cuda, 1, tokens, width);
                var kv = Empty(cuda, 1, image, 2 * width);
                var qkv = Empty(cuda, 1, tokens, 3 * width);
                var attended = Empty(cuda, 1, tokens, width);
                var hidden = Empty(cuda, 1, tokens, 4 * width);
                var ms = Median(cuda, () =>
                {
                    cuda.ModLN(normed, null, null, f, w, b, shift, scale, 1e-6f);
                    cuda.Gemm(q, normed, wq, null, null, false, true);
                    cuda.Gemm(kv, h, wkv, null, null, false, true);
                    cuda.Attention(attended, null, q, new ColumnSlice(kv, 0), new ColumnSlice(kv, width), 16, 0.125f);
                    cuda.Gemm(f, attended, wo, null, f, false, true);
                    cuda.ModLN(normed, null, null, f, w, b, shift, scale, 1e-6f);
                    cuda.Gemm(qkv, normed, wqkv, null, null, false, true);
                    cuda.Attention(attended, null, new ColumnSlice(qkv, 0), new ColumnSlice(qkv, width), new ColumnSlice(qkv, 2 * width), 16, 0.125f);
                    cuda.Gemm(f, attended, wo, null, f, false, true);
                    cuda.ModLN(normed, null, null, f, w, b, shift, scale, 1e-6f);
                    cuda.Gemm(hidden, normed, w1, b1, null, false, true);
                    cuda.Activate(hidden, hidden, Activation.Gelu);
                    cuda.Gemm(f, hidden, w2, null, f, false, true);
                });
                var flops = 2.0 * tokens * width * width * 6 + 2.0 * image * width * 2 * width + 2.0 * tokens * width * 4 * width * 2
                    + 4.0 * tokens * (tokens + image) * width;
                Add("decoder layer (large config), bf16", ms, flops / 1e12, "TFLOP/s", $"x16 layers ≈ {16 * ms:F1} ms (proxy for image→triplane's decoder)");
            }
        }
        finally
        {
            foreach (var tensor in scope)
            {
                tensor.Dispose();
            }
        }

        if (outputPath is not null)
        {
            var document = new
            {
                device = cuda.DeviceName,
                architecture = cuda.Architecture,
                driver = cuda.DriverVersion,
                cublasLt = cuda.CublasLtStatus,
                date = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
                results = results.Select(r => new { name = r.Name, milliseconds = r.Milliseconds, rate = r.Rate, unit = r.Unit, note = r.Note }),
            };
            IO.AtomicFile.Write(outputPath, stream => JsonSerializer.Serialize(stream, document, Indented));
            Console.WriteLine($"wrote {outputPath}");
        }
    }
}
