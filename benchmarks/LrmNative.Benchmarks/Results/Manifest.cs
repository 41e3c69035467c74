using System.Text;
using System.Text.Json;
using LrmNative.IO;

namespace LrmNative.Benchmarks.Results;

/// <summary>
/// The shapes as JSON for the peer script, so both sides run exactly the catalogue of <see cref="LrmShapes"/>:
/// <c>{"schema": "lrm-bench-manifest/1", "shapes": [{"family", "shape", "config", "dims": {…}, "flops", "bytes", "rate_unit"}]}</c>.
/// </summary>
public static class Manifest
{
    /// <summary>Schema name of the manifest.</summary>
    public const string SchemaName = "lrm-bench-manifest/1";

    /// <summary>The manifest text.</summary>
    public static string ToJson(IEnumerable<KernelShape> shapes)
    {
        ArgumentNullException.ThrowIfNull(shapes);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("schema", SchemaName);
            json.WriteStartArray("shapes");
            foreach (var shape in shapes)
            {
                json.WriteStartObject();
                json.WriteString("family", shape.Family);
                json.WriteString("shape", shape.Name);
                json.WriteString("config", shape.Configs);
                json.WriteStartObject("dims");
                foreach (var (name, value) in shape.Dimensions)
                {
                    json.WriteNumber(name, value);
                }
                json.WriteEndObject();
                json.WriteNumber("flops", shape.Flops);
                json.WriteNumber("bytes", shape.Bytes);
                json.WriteNumber("items", shape.Items);
                json.WriteString("rate_unit", shape.UnitText);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Writes the manifest atomically.</summary>
    public static void Write(string path, IEnumerable<KernelShape> shapes)
    {
        var text = ToJson(shapes);
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)));
    }
}
