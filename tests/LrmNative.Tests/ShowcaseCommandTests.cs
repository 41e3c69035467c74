using System.CommandLine;
using LrmNative.Cli;
using NUnit.Framework;

namespace LrmNative.Tests;

/// <summary><c>lrm showcase</c>: one row per image (input, three novel views, the ray-traced mesh) in one PNG.</summary>
[TestFixture]
public sealed class ShowcaseCommandTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "lrm-showcase-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void WritesOneRowPerImageOfFiveTiles()
    {
        const int Size = 24;
        var output = Path.Combine(_folder, "sub", "showcase.png");
        var root = new RootCommand("lrm (test)");
        root.Subcommands.Add(ShowcaseCommand.Create());
        using var text = new StringWriter();
        using var error = new StringWriter();
        var code = root.Parse(["showcase", "--model", Golden.TinyModelDirectory, "--out", output, "--size", $"{Size}", "--resolution", "24",
            "--density", "0.5", "--device", "cpu", Golden.ExampleImagePath, Golden.ExampleImagePath])
            .Invoke(new InvocationConfiguration { Output = text, Error = error });
        Assert.That(code, Is.EqualTo(0), error.ToString());
        using var picture = Image.Load(output);
        var gap = ShowcaseCommand.Gap;
        Assert.That((picture.Width, picture.Height), Is.EqualTo((5 * Size + 6 * gap, 2 * Size + 3 * gap)));
        Assert.That((picture.Width, picture.Height), Is.EqualTo(ShowcaseCommand.PictureSize(2, Size)));
        var pixels = picture.Pixels.AsSpan<float>().ToArray();
        float Pixel(int x, int y, int c) => pixels[4 * (y * picture.Width + x) + c];
        // Margins stay white; each tile holds a picture, not a blank (the mesh tile too: the tiny model has a surface at 0.5).
        Assert.That(Pixel(0, 0, 0), Is.EqualTo(1f));
        for (var column = 0; column < 5; column++)
        {
            var left = gap + column * (Size + gap);
            var darkest = 1f;
            for (var y = gap; y < gap + Size; y++)
            {
                for (var x = left; x < left + Size; x++)
                {
                    darkest = Math.Min(darkest, Math.Min(Pixel(x, y, 0), Math.Min(Pixel(x, y, 1), Pixel(x, y, 2))));
                }
            }
            Assert.That(darkest, Is.LessThan(0.9f), $"tile {column} of row 0 is not blank");
        }
        // The same image twice: the second row is the first, pixel for pixel (every tile of it was made, in place).
        for (var y = gap; y < gap + Size; y++)
        {
            for (var x = 0; x < picture.Width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    Assert.That(Pixel(x, y + Size + gap, c), Is.EqualTo(Pixel(x, y, c)), $"row 1 pixel ({x}, {y}) channel {c}");
                }
            }
        }
        // The novel-view tiles are the reconstruction rendered from the documented turntable cameras (on white, through
        // an 8-bit PNG), in order.
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        for (var v = 0; v < ShowcaseCommand.ViewAngles.Length; v++)
        {
            using var view = result.Render(Camera.LookAt(ShowcaseCommand.Position(ShowcaseCommand.ViewAngles[v])), Size, Size);
            var rendered = view.Color.Pixels.AsSpan<float>().ToArray();
            var left = gap + (v + 1) * (Size + gap);
            var worst = 0.0;
            for (var p = 0; p < Size * Size; p++)
            {
                var alpha = rendered[4 * p + 3];
                for (var c = 0; c < 3; c++)
                {
                    var expected = Math.Clamp(rendered[4 * p + c] * alpha + (1 - alpha), 0f, 1f);
                    worst = Math.Max(worst, Math.Abs(Pixel(left + p % Size, gap + p / Size, c) - expected));
                }
            }
            Assert.That(worst, Is.LessThanOrEqualTo(0.6 / 255), $"tile {v + 1}: the render from {ShowcaseCommand.ViewAngles[v]}° (8-bit rounding)");
        }
        Assert.That(text.ToString(), Does.Contain("wrote"));
    }

    [Test]
    public void MissingImageIsNamed()
    {
        var missing = Path.Combine(_folder, "none.png");
        var error = Assert.Throws<LrmFormatException>(() =>
            ShowcaseCommand.Run(Golden.TinyModelDirectory, [missing], Path.Combine(_folder, "out.png"), 32, 16, null, Device.Cpu, TextWriter.Null));
        Assert.That(error!.Message, Does.Contain("none.png"));
    }
}
