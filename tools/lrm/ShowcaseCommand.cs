using System.CommandLine;
using System.Numerics;
using LrmNative.Backends;
using LrmNative.Data;

namespace LrmNative.Cli;

/// <summary>
/// <c>lrm showcase --model M --out OUT.png IMAGE...</c>: one row per input image — the encoder input, three renders
/// from new views (turntable cameras 90°, 180° and 270° round from the input view, radius 2, height 0.8) and the
/// extracted mesh ray traced with its vertex colours (the dataset renderer's BVH tracer, default lighting) from 45°
/// round — composed on white into one PNG. tools/showcase.sh wraps it; the README's picture is made with it.
/// </summary>
internal static class ShowcaseCommand
{
    /// <summary>Tiles per row: input, three novel views, mesh.</summary>
    public const int Columns = 5;

    /// <summary>White margin around and between tiles, in pixels.</summary>
    public const int Gap = 4;

    /// <summary>Azimuths of the three novel views, in degrees round from the input view.</summary>
    public static readonly double[] ViewAngles = [90, 180, 270];

    /// <summary>Azimuth of the mesh render, in degrees round from the input view.</summary>
    public const double MeshAngle = 45;

    public static Command Create()
    {
        var images = new Argument<string[]>("IMAGE") { Description = "Input images (PNG or JPEG), one row each", Arity = ArgumentArity.OneOrMore };
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors) or LrmNative model file", Required = true };
        var output = new Option<string>("--out") { Description = "The PNG to write", Required = true };
        var size = new Option<int>("--size") { Description = "Side of each tile in pixels", DefaultValueFactory = _ => 192 };
        var resolution = new Option<int>("--resolution") { Description = "Mesh grid resolution R (R³)", DefaultValueFactory = _ => 192 };
        var density = new Option<float?>("--density") { Description = "Surface density of the mesh (default: the model's)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto", DefaultValueFactory = _ => "auto" };
        var command = new Command("showcase", "Side-by-side picture: input, renders from new views and the extracted mesh, one row per image")
        {
            images, model, output, size, resolution, density, device,
        };
        command.SetAction(result =>
        {
            var (width, height) = Run(result.GetValue(model)!, result.GetValue(images)!, result.GetValue(output)!, result.GetValue(size), result.GetValue(resolution),
                result.GetValue(density), ReconstructCommand.ParseDevice(result.GetValue(device)!), result.InvocationConfiguration.Output);
            result.InvocationConfiguration.Output.WriteLine($"wrote {result.GetValue(output)} ({width}×{height})");
            return 0;
        });
        return command;
    }

    /// <summary>The picture's size for <paramref name="rows"/> images of <paramref name="size"/>² tiles.</summary>
    public static (int Width, int Height) PictureSize(int rows, int size) => (Columns * size + (Columns + 1) * Gap, rows * size + (rows + 1) * Gap);

    public static (int Width, int Height) Run(string modelPath, IReadOnlyList<string> images, string output, int size, int resolution, float? density, Device device,
        TextWriter log)
    {
        if (images.Count == 0)
        {
            throw new LrmInvalidArgumentException("showcase: give at least one input image");
        }
        if (size is < 16 or > 1024)
        {
            throw new LrmInvalidArgumentException($"--size must be in 16..1024, got {size}");
        }
        if (resolution is < 2 or > 1024)
        {
            throw new LrmInvalidArgumentException($"--resolution must be in 2..1024, got {resolution}");
        }
        if (!string.Equals(Path.GetExtension(output), ".png", StringComparison.OrdinalIgnoreCase))
        {
            throw new LrmInvalidArgumentException($"{output}: the showcase is written as PNG; name the file .png");
        }
        foreach (var image in images)
        {
            if (!File.Exists(image))
            {
                throw new LrmFormatException($"{image}: input image not found");
            }
        }
        // The picture's folder is checked before the model loads, not found out after every image has been reconstructed.
        if (Directory.Exists(output))
        {
            throw new LrmInvalidArgumentException($"{output}: is a folder; --out names the PNG file to write");
        }
        ReconstructCommand.EnsureWritableFolder(Path.GetDirectoryName(Path.GetFullPath(output)) ?? ".");
        using var lrm = Reconstructor.Load(modelPath, device);
        var (width, height) = PictureSize(images.Count, size);
        var canvas = new float[width * height * 3];
        Array.Fill(canvas, 1f);
        for (var row = 0; row < images.Count; row++)
        {
            log.WriteLine($"{images[row]}: reconstructing");
            using var result = lrm.Reconstruct(images[row]);
            var top = Gap + row * (size + Gap);
            Place(canvas, width, Resized(lrm.HostBackend, result.InputImage, size), size, top, Gap);
            for (var v = 0; v < ViewAngles.Length; v++)
            {
                var camera = Camera.LookAt(Position(ViewAngles[v]));
                using var view = result.Render(camera, size, size);
                Place(canvas, width, Rgb(view.Color), size, top, Gap + (v + 1) * (size + Gap));
            }
            var mesh = result.ExtractMesh(resolution, density);
            Place(canvas, width, MeshTile(mesh, size, Position(MeshAngle)), size, top, Gap + 4 * (size + Gap));
            log.WriteLine($"{images[row]}: mesh {mesh.VertexCount} vertices, {mesh.TriangleCount} triangles{(mesh.IsEmpty ? " (empty: no surface at this density)" : "")}");
        }
        using var picture = Image.FromRgb(canvas, width, height, output);
        picture.SavePng(output);
        return (width, height);
    }

    /// <summary>A camera position on the turntable circle, <paramref name="degrees"/> round from the input view's side (−y).</summary>
    internal static Vector3 Position(double degrees)
    {
        var circle = Math.Sqrt(Camera.TurntableRadius * Camera.TurntableRadius - Camera.TurntableHeight * Camera.TurntableHeight);
        var theta = (-90 + degrees) * Math.PI / 180;
        return new Vector3((float)(Math.Cos(theta) * circle), (float)(Math.Sin(theta) * circle), Camera.TurntableHeight);
    }

    // The mesh ray traced with its vertex colours and composited on white; a white tile for an empty mesh.
    private static float[] MeshTile(Mesh mesh, int size, Vector3 position)
    {
        var tile = new float[size * size * 3];
        Array.Fill(tile, 1f);
        if (mesh.IsEmpty)
        {
            return tile;
        }
        var scene = new MeshScene(mesh);
        var camera = DatasetCamera.LookAtOrigin(new Vec3(position.X, position.Y, position.Z), size, size);
        var view = MultiViewRenderer.Render(scene, camera, Lighting.Default);
        for (var p = 0; p < size * size; p++)
        {
            var alpha = view.Rgba[4 * p + 3];
            for (var c = 0; c < 3; c++)
            {
                tile[3 * p + c] = view.Rgba[4 * p + c] * alpha + (1 - alpha);
            }
        }
        return tile;
    }

    private static float[] Rgb(Image image)
    {
        var pixels = image.Pixels.AsSpan<float>();
        var rgb = new float[image.Width * image.Height * 3];
        for (var p = 0; p < rgb.Length / 3; p++)
        {
            var alpha = pixels[4 * p + 3];
            for (var c = 0; c < 3; c++)
            {
                rgb[3 * p + c] = pixels[4 * p + c] * alpha + (1 - alpha);
            }
        }
        return rgb;
    }

    // An image resized to size² (bilinear, antialiased) as interleaved RGB.
    private static float[] Resized(IBackend backend, Image image, int size)
    {
        var rgb = Rgb(image);
        int w = image.Width, h = image.Height, plane = w * h;
        using var planar = Tensor.Empty([3, h, w]);
        var span = planar.AsSpan<float>();
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                span[c * plane + p] = rgb[3 * p + c];
            }
        }
        using var resized = Tensor.Empty([3, size, size]);
        backend.Resize(resized, planar, ResizeMode.Bilinear, antialias: true);
        var source = resized.AsSpan<float>();
        var result = new float[size * size * 3];
        for (var p = 0; p < size * size; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                result[3 * p + c] = Math.Clamp(source[c * size * size + p], 0f, 1f);
            }
        }
        return result;
    }

    private static void Place(float[] canvas, int width, float[] tile, int size, int top, int left)
    {
        for (var i = 0; i < size; i++)
        {
            tile.AsSpan(3 * i * size, 3 * size).CopyTo(canvas.AsSpan(3 * ((top + i) * width + left), 3 * size));
        }
    }
}
