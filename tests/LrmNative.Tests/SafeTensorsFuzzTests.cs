using System.Buffers.Binary;
using System.Diagnostics;
using LrmNative.IO;

namespace LrmNative.Tests;

/// <summary>
/// Thousands of mutated safetensors files: every one either opens (and then every tensor
/// reads) or fails with an LrmException naming the file — never another exception, a crash
/// or a hang.
/// </summary>
[TestFixture]
public sealed class SafeTensorsFuzzTests
{
    [Test]
    public void MutatedFilesFailCleanly()
    {
        var directory = Directory.CreateTempSubdirectory("lrm-fuzz-").FullName;
        try
        {
            var seedPath = Path.Combine(directory, "seed.safetensors");
            using (var a = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3))
            using (var b = Tensor.Zeros([4], DataType.BFloat16))
            using (var c = Tensor.Zeros([1, 1, 2], DataType.Int32))
            {
                SafeTensorsFile.Write(seedPath, new Dictionary<string, Tensor> { ["blocks.0.weight"] = a, ["b"] = b, ["c"] = c },
                    new Dictionary<string, string> { ["format"] = "pt" });
            }
            var seed = File.ReadAllBytes(seedPath);
            var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(seed);
            var random = new Random(20261121);
            var path = Path.Combine(directory, "mutant.safetensors");
            int opened = 0, rejected = 0;
            var clock = Stopwatch.StartNew();
            for (var iteration = 0; iteration < 3000; iteration++)
            {
                var mutant = Mutate(seed, headerLength, random);
                File.WriteAllBytes(path, mutant);
                try
                {
                    using var file = SafeTensorsFile.Open(path);
                    foreach (var info in file.Tensors)
                    {
                        try
                        {
                            using var tensor = file.ReadTensor(info.Name);
                            Assert.That(tensor.ElementCount, Is.EqualTo(info.ElementCount));
                        }
                        catch (LrmUnsupportedException error)
                        {
                            // A valid file with a dtype we do not convert (e.g. U8) is refused by name.
                            Assert.That(error.Message, Does.Contain(path));
                        }
                    }
                    opened++;
                }
                catch (LrmException error)
                {
                    Assert.That(error.Message, Does.Contain(path), $"iteration {iteration}: message must name the file");
                    rejected++;
                }
            }
            Assert.That(rejected, Is.GreaterThan(100), "the mutations must actually break files");
            TestContext.Out.WriteLine($"{opened} mutants opened, {rejected} rejected cleanly in {clock.ElapsedMilliseconds} ms");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static byte[] Mutate(byte[] seed, int headerLength, Random random)
    {
        var bytes = (byte[])seed.Clone();
        switch (random.Next(6))
        {
            case 0: // flip bytes inside the JSON header
                for (var i = random.Next(1, 4); i > 0; i--)
                {
                    bytes[8 + random.Next(headerLength)] = (byte)random.Next(256);
                }
                return bytes;
            case 1: // replace a digit of the header with another digit (shapes, offsets lie)
                {
                    var digits = Enumerable.Range(8, headerLength).Where(i => bytes[i] is >= (byte)'0' and <= (byte)'9').ToArray();
                    bytes[digits[random.Next(digits.Length)]] = (byte)('0' + random.Next(10));
                    return bytes;
                }
            case 2: // lie about the header length
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, random.Next(3) switch
                {
                    0 => (ulong)random.Next(0, bytes.Length * 2),
                    1 => ulong.MaxValue - (ulong)random.Next(1000),
                    _ => (ulong)(headerLength + random.Next(-8, 9)),
                });
                return bytes;
            case 3: // truncate anywhere
                return bytes[..random.Next(bytes.Length)];
            case 4: // append garbage
                return [.. bytes, .. Enumerable.Range(0, random.Next(1, 32)).Select(_ => (byte)random.Next(256))];
            default: // swap dtype names
                {
                    var text = System.Text.Encoding.UTF8.GetString(bytes, 8, headerLength);
                    string[] dtypes = ["F32", "BF16", "I32", "F16", "U8", "F64", "I64", "XX"];
                    var replaced = text.Replace(dtypes[random.Next(3)], dtypes[random.Next(dtypes.Length)], StringComparison.Ordinal);
                    var header = System.Text.Encoding.UTF8.GetBytes(replaced);
                    var result = new byte[8 + header.Length + bytes.Length - 8 - headerLength];
                    BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
                    header.CopyTo(result, 8);
                    Array.Copy(bytes, 8 + headerLength, result, 8 + header.Length, bytes.Length - 8 - headerLength);
                    return result;
                }
        }
    }
}
