using LrmNative.IO;
using LrmNative.Model;

namespace LrmNative.Tests;

/// <summary>Small datasets in OpenLRM's layout for the training tests.</summary>
internal static class TrainingTestData
{
    /// <summary>Three objects (o1, o2, o3) of three 8×8 views with varied pixels, cameras on a circle, OpenLRM (3, 2) intrinsics.</summary>
    public static void WriteTinyDataset(string root)
    {
        foreach (var name in new[] { "o1", "o2", "o3" })
        {
            var directory = Path.Combine(root, name);
            Directory.CreateDirectory(Path.Combine(directory, "rgba"));
            Directory.CreateDirectory(Path.Combine(directory, "pose"));
            for (var v = 0; v < 3; v++)
            {
                var pixels = Enumerable.Range(0, 8 * 8 * 4).Select(i => ((i * 37 + v * 11 + name[1]) % 256) / 255f).ToArray();
                using (var image = Image.FromRgba(pixels, 8, 8))
                {
                    image.SavePng(Path.Combine(directory, "rgba", $"{v:D3}.png"));
                }
                using var pose = Tensor.FromArray(Cameras.LookAtOrigin(2 * MathF.Cos(v), 2 * MathF.Sin(v), 0.5f * v), 4, 4);
                Npy.Write(Path.Combine(directory, "pose", $"{v:D3}.npy"), pose);
            }
            using var k = Tensor.FromArray([6.4f, 6.4f, 4, 4, 8, 8], 3, 2);
            Npy.Write(Path.Combine(directory, "intrinsics.npy"), k);
        }
    }
}
