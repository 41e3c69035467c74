using System.Globalization;
using System.Text;
using LrmNative.IO;

namespace LrmNative.Benchmarks.Results;

/// <summary>
/// The generated summary of a results directory: SUMMARY.md with one section per machine file (&lt;id&gt;.json), and per
/// machine two SVG charts drawn here (no plotting dependency): the ratio to the peer per case, and the cases on the
/// machine's roofline.
/// </summary>
public static class ReportWriter
{
    /// <summary>The summary's file name.</summary>
    public const string SummaryFileName = "SUMMARY.md";

    // Why a family sits where it does on the roofline: properties of the kernel, not measurements.
    private static readonly Dictionary<string, string> FamilyNotes = new(StringComparer.Ordinal)
    {
        ["gemm"] = "OpenBLAS sgemm, one block of rows per thread; the compute roof is the register-only FMA peak, which no GEMM fully reaches (loads, packing)",
        ["layernorm"] = "the CPU reference accumulates the statistics in double over two passes per row (rows of a few KiB stay in L1); the floor is streaming the tensor once each way",
        ["modln"] = "LayerNorm plus the modulation in the same pass; bandwidth-bound like LayerNorm",
        ["attention"] = "fused online softmax: exp and the running max/sum are not counted as FLOPs but cost issue slots, so even a perfect kernel stays below the FMA roof",
        ["triplane"] = "writes 3C floats per point; the four taps per plane are gathers at random addresses, which cost more than their bytes",
        ["nerf-mlp"] = "fused: blocks of rows go through every layer in cache on a register-tiled microkernel; with 64-wide layers each weight is reused little, and the first layer streams the input from memory",
        ["render-march"] = "sequential along each ray (transmittance is a running product) with an exp and a log per interval; bytes are few, latency dominates",
        ["marching-cubes"] = "table-driven and branchy (no FLOPs counted): the floor is reading the field once, the work is classifying cells and emitting shared vertices",
        ["resize"] = "two separable passes through an intermediate image that is not counted in the bytes; gathers along the column pass",
        ["patch-embed"] = "an im2col gather (each pixel copied once) then one sgemm with K = 3·P², small for a GEMM",
        ["deconvolution"] = "kernel = stride: one sgemm per image then a scatter into the 2×-larger output (col2im without overlap-add)",
        ["gemm-backward"] = "two sgemm calls (gradInput = dY·W, gradWeight = dYᵀ·X) and a column sum for the bias; the second has the long token dimension as its inner K",
        ["layernorm-backward"] = "two passes per row (the row sums, then gradInput) plus the weight and bias gradients summed over rows; bandwidth-bound",
        ["modln-backward"] = "LayerNorm backward with the modulation folded in, plus the per-image shift and scale gradients; bandwidth-bound",
        ["attention-backward"] = "fused: the probabilities are recomputed from the log-sum-exp (one of the five counted products), so exp costs issue slots as in the forward",
        ["triplane-backward"] = "a scatter-add of four taps per plane at random addresses into the plane gradients (read-modify-write, more than the counted bytes)",
        ["nerf-mlp-backward"] = "the fused kernel recomputes the forward activations (not counted; PyTorch keeps them), then two products per 64-wide layer with little weight reuse",
        ["render-march-backward"] = "each ray recomputed forward, then a reverse sweep with the transmittance's suffix sums; sequential per ray and latency-bound like the forward",
        ["patch-embed-backward"] = "the im2col gather again, then one sgemm dYᵀ·patches whose inner dimension is the token count; the bias is a column sum",
        ["deconvolution-backward"] = "gradInput is a GEMM over the gathered 2×2 output blocks, gradWeight a GEMM with the pixels as the inner dimension; small channel counts keep both short",
        ["resize-backward"] = "the adjoint of two separable passes: each output's gradient scattered onto its filter taps, through an intermediate not counted in the bytes",
        ["activation-backward"] = "elementwise with an erf and an exp per element; the floor is streaming three tensors",
        ["layerscale-backward"] = "elementwise plus a per-channel column sum; bandwidth-bound",
        ["render-decode-backward"] = "elementwise per sample with a box test and a recomputed sigmoid; bandwidth-bound",
        ["adamw"] = "elementwise over four tensors (three read and written); purely bandwidth-bound",
        ["grid-points"] = "write-only: three floats per point from per-axis coordinate tables; the floor is streaming the points out",
        ["nerf-query"] = "linear first: the three projected planes gathered and summed (neighbouring points share corners), then the remaining 64-wide layers, whose weights are reused little",
        ["ssim-loss"] = "host C# on one thread: eight separable 11-tap filter passes per image and channel in double precision, with per-window formulas between them; no device kernel",
        ["lpips-loss"] = "host C#: single-threaded im2col copies, col2im scatters, ReLU, pools and normalisation around OpenBLAS sgemm calls (two forwards and the input gradient), whose AlexNet layers are small at patch sizes",
        ["triplane-sum"] = "four taps per plane gathered at random addresses over hidden-wide channels-last rows, summed with the bias and ReLU in registers; the output written dominates the bytes",
    };

    /// <summary>The families <see cref="FamilyNotes"/> explains (every family of the catalogue should be one).</summary>
    internal static IReadOnlyCollection<string> NotedFamilies => FamilyNotes.Keys;

    /// <summary>The roofline chart's distinct family colours.</summary>
    internal static IReadOnlyList<string> FamilyColours => Palette;

    private static readonly string[] Palette =
    [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
        "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#fd8d3c", "#74c476", "#9e9ac8", "#e7969c",
        "#6baed6", "#b15928", "#6a3d9a", "#1b9e77", "#d95f02", "#e7298a", "#66a61e", "#e6ab02",
    ];

    /// <summary>
    /// Reads every results file (<c>*.json</c> with the <see cref="BenchmarkResults.SchemaName"/> schema) in
    /// <paramref name="directory"/> and writes SUMMARY.md and the charts there; returns the files written.
    /// </summary>
    public static IReadOnlyList<string> WriteDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var runs = new List<(string FileName, BenchmarkResults Results)>();
        foreach (var path in Directory.EnumerateFiles(directory, "*.json").Order(StringComparer.Ordinal))
        {
            var text = File.ReadAllText(path);
            if (!text.Contains(BenchmarkResults.SchemaName, StringComparison.Ordinal))
            {
                continue; // BenchmarkDotNet's own reports and other JSON live here too.
            }
            runs.Add((Path.GetFileName(path), BenchmarkResults.Parse(text, path)));
        }
        var written = new List<string>();
        foreach (var (_, results) in runs)
        {
            written.Add(WriteText(Path.Combine(directory, RatioChartName(results)), RatioChart(results)));
            written.Add(WriteText(Path.Combine(directory, RooflineChartName(results)), RooflineChart(results)));
        }
        written.Add(WriteText(Path.Combine(directory, SummaryFileName), Markdown(runs)));
        return written;
    }

    /// <summary>File name of the ratio chart of a run.</summary>
    public static string RatioChartName(BenchmarkResults results) => $"{Check(results).Machine.Id}-ratios.svg";

    /// <summary>File name of the roofline chart of a run.</summary>
    public static string RooflineChartName(BenchmarkResults results) => $"{Check(results).Machine.Id}-roofline.svg";

    /// <summary>SUMMARY.md for the runs given (file name, results).</summary>
    public static string Markdown(IReadOnlyList<(string FileName, BenchmarkResults Results)> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var md = new StringBuilder();
        md.Append("# LrmNative kernel benchmarks\n\n");
        md.Append("Generated by `benchmarks/run.sh` (`LrmNative.Benchmarks --report`) from the results files in this directory; ");
        md.Append("do not edit by hand, rerun the command. The JSON schema, the FLOP and byte counts and the roofline are described in ");
        md.Append("[docs/benchmarks.md](../../docs/benchmarks.md).\n\n");
        if (runs.Count == 0)
        {
            md.Append("No results files yet.\n");
            return md.ToString();
        }
        md.Append("Machines: ").AppendJoin(", ", runs.Select(run => $"[{run.Results.Machine.Id}](#{Anchor(run.Results.Machine.Id)})")).Append("\n\n");
        foreach (var (fileName, results) in runs)
        {
            AppendMachine(md, fileName, results);
        }
        return md.ToString();
    }

    private static void AppendMachine(StringBuilder md, string fileName, BenchmarkResults results)
    {
        var machine = results.Machine;
        var run = results.Run;
        md.Append(CultureInfo.InvariantCulture, $"## {machine.Id}\n\n");
        if (run.Preliminary)
        {
            md.Append("> **Preliminary.** ").Append(Cell(run.Note ?? "These numbers were taken on a busy machine; rerun the command on a quiet one.")).Append("\n\n");
        }
        else if (run.Note is { Length: > 0 } note)
        {
            md.Append("> ").Append(Cell(note)).Append("\n\n");
        }
        md.Append("| | |\n|---|---|\n");
        Row(md, "Results", $"[`{fileName}`]({fileName})");
        Row(md, "CPU", $"{machine.Cpu}{(machine.CpuFeatures is { } features ? $"; {features}" : "")}");
        Row(md, "Cores, threads", $"{machine.Cores} cores ({machine.LogicalProcessors} logical), {machine.Threads} compute threads");
        Row(md, "Memory", Format($"{machine.MemoryGib:0.0} GiB"));
        Row(md, "OS", machine.Os ?? "");
        Row(md, ".NET", machine.Dotnet ?? "");
        Row(md, "GPU", machine.Gpu is { } gpu ? $"{gpu.Name}; {gpu.Driver}" : "none");
        Row(md, "Native", machine.Native ?? "");
        Row(md, "BLAS", machine.Blas ?? "");
        Row(md, "Date, commit", $"{machine.Date}, `{machine.Commit}`");
        Row(md, "Job", $"{run.Job} ({run.Tool})");
        Row(md, "Peer", run.Peer ?? "none");
        if (machine.Peak is { } peak)
        {
            Row(md, "Peak compute", Format($"{peak.Gflops:0.0} GFLOP/s fp32 ({peak.GflopsSource})"));
            Row(md, "Peak bandwidth", Format($"{peak.Gbps:0.0} GB/s ({peak.GbpsSource})"));
            Row(md, "Ridge point", Format($"{peak.Gflops / peak.Gbps:0.0} FLOP/byte"));
        }
        Row(md, "Command", $"`{run.Command ?? "benchmarks/run.sh"}`");
        md.Append('\n');
        md.Append(CultureInfo.InvariantCulture, $"![Ratio to the peer per case]({RatioChartName(results)})\n\n");
        md.Append(CultureInfo.InvariantCulture, $"![Cases on the roofline]({RooflineChartName(results)})\n\n");

        md.Append("Ratio = peer time / our time: above 1 LrmNative is faster. Roofline = floor time / measured time, floor = ");
        md.Append("max(FLOPs / peak compute, bytes / peak bandwidth): 100 % is a kernel at the roof. Rates: GFLOP/s for compute kernels, ");
        md.Append("GB/s of compulsory traffic for memory kernels, Mvoxels/s for marching cubes. The peak bandwidth is DRAM's (a triad far ");
        md.Append("larger than the caches): a memory-bound case whose working set fits in the last-level cache can run above 100 %.\n\n");
        md.Append("| # | Family | Shape | Configs | Backend | Time (mean ± sd) | Rate | Roofline | Bound | Peer time | Ratio |\n");
        md.Append("|---|---|---|---|---|---|---|---|---|---|---|\n");
        var number = 0;
        foreach (var entry in results.Entries)
        {
            number++;
            var time = entry.Skipped is { } skipped ? $"skipped: {skipped}" : entry.TimeMeanS is { } mean ? $"{Time(mean)} ± {Time(entry.TimeStddevS ?? 0)}" : "-";
            if (entry.DeviceTimeMeanS is { } device)
            {
                time += $" (device {Time(device)})";
            }
            var rate = entry.Rate is { } r ? Format($"{r:0.0} {entry.RateUnit}") : "-";
            var roofline = entry.RooflineFraction is { } f ? Format($"{100 * f:0.0} %") : "-";
            var peerTime = entry.PeerTimeMeanS is { } p ? $"{Time(p)} ± {Time(entry.PeerTimeStddevS ?? 0)}" : entry.PeerNote is { } why ? $"- ({why})" : "-";
            var ratio = entry.Ratio is { } q ? Format($"**{q:0.00}×**") : "-";
            md.Append(CultureInfo.InvariantCulture, $"| {number} | {Cell(entry.Family)} | {Cell(entry.Shape)} | {Cell(entry.Config.Replace(",", ", ", StringComparison.Ordinal))} | {Cell(entry.Backend)} | {Cell(time)} | {rate} | {roofline} | {entry.Bound ?? "-"} | {Cell(peerTime)} | {ratio} |\n");
        }
        md.Append('\n');

        var ranked = results.Entries.Where(entry => entry.RooflineFraction is not null).OrderBy(entry => entry.RooflineFraction).Take(3).ToList();
        if (ranked.Count > 0)
        {
            md.Append("### Furthest from the roofline\n\n");
            var rank = 0;
            foreach (var entry in ranked)
            {
                rank++;
                var why = FamilyNotes.TryGetValue(entry.Family, out var note) ? note : "no note for this family";
                md.Append(CultureInfo.InvariantCulture, $"{rank}. **{Cell(entry.Family)}** {Cell(entry.Shape)}: {Format($"{100 * entry.RooflineFraction!.Value:0.0}")} % of the {entry.Bound}-bound floor — {why}.\n");
            }
            md.Append('\n');
        }
        var peered = results.Entries.Where(entry => entry.Ratio is not null).ToList();
        if (peered.Count > 0)
        {
            var geometric = Math.Exp(peered.Average(entry => Math.Log(entry.Ratio!.Value)));
            md.Append(CultureInfo.InvariantCulture, $"Geometric mean of the ratios over {peered.Count} cases: **{Format($"{geometric:0.00}")}×**; ");
            md.Append(CultureInfo.InvariantCulture, $"faster than the peer in {peered.Count(entry => entry.Ratio > 1)} of them.\n\n");
        }
        if (run.PeerNotes is { Count: > 0 } notes)
        {
            md.Append("Peer notes:\n\n");
            foreach (var note in notes)
            {
                md.Append("- ").Append(Cell(note)).Append('\n');
            }
            md.Append('\n');
        }
    }

    /// <summary>Horizontal bars of peer time / our time per case, on a log₂ axis with parity at 1.</summary>
    public static string RatioChart(BenchmarkResults results)
    {
        Check(results);
        var rows = results.Entries.Select((entry, index) => (Number: index + 1, Entry: entry)).ToList();
        const double labelWidth = 430, plotWidth = 440, rowHeight = 18, top = 56, right = 70;
        var height = top + rows.Count * rowHeight + 44;
        var width = labelWidth + plotWidth + right;
        var ratios = rows.Where(row => row.Entry.Ratio is > 0).Select(row => row.Entry.Ratio!.Value).ToList();
        var low = Math.Floor(Math.Log2(Math.Min(0.25, ratios.Count > 0 ? ratios.Min() : 1)));
        var high = Math.Ceiling(Math.Log2(Math.Max(4, ratios.Count > 0 ? ratios.Max() : 1)));
        double X(double ratio) => labelWidth + (Math.Log2(ratio) - low) / (high - low) * plotWidth;
        var svg = new SvgBuilder(width, height);
        svg.Text(width / 2, 22, $"LrmNative vs {results.Run.Peer ?? "peer"}: peer time / our time ({results.Machine.Id})", 14, "middle", bold: true);
        svg.Text(width / 2, 40, "bars right of 1: LrmNative faster; log scale", 11, "middle", fill: "#555");
        for (var power = low; power <= high; power++)
        {
            var x = X(Math.Pow(2, power));
            svg.Line(x, top - 4, x, top + rows.Count * rowHeight, power == 0 ? "#000" : "#ddd", power == 0 ? 1.5 : 1);
            svg.Text(x, top + rows.Count * rowHeight + 16, RatioLabel(Math.Pow(2, power)), 10, "middle");
        }
        var y = top;
        foreach (var (number, entry) in rows)
        {
            svg.Text(labelWidth - 8, y + rowHeight * 0.7, Truncate($"{number}. {entry.Family}: {entry.Shape}", 68), 10.5, "end");
            if (entry.Ratio is { } ratio && ratio > 0)
            {
                double x0 = X(1), x1 = X(ratio);
                var colour = ratio >= 1 ? "#2ca02c" : "#d62728";
                svg.Rect(Math.Min(x0, x1), y + 3, Math.Max(1, Math.Abs(x1 - x0)), rowHeight - 6, colour, $"{entry.Key}: {RatioLabel(ratio)}");
                svg.Text(Math.Max(x0, x1) + 4, y + rowHeight * 0.7, Format($"{ratio:0.00}×"), 10, "start");
            }
            else
            {
                svg.Text(X(1) + 4, y + rowHeight * 0.7, entry.Skipped is not null ? "not measured" : "no peer", 10, "start", fill: "#888");
            }
            y += rowHeight;
        }
        svg.Text(width / 2, height - 8, "ratio (log₂ axis)", 11, "middle");
        return svg.ToString();
    }

    /// <summary>
    /// The roofline (log-log: arithmetic intensity FLOP/byte against GFLOP/s) with each case that counts FLOPs as a point,
    /// numbered as in the summary table and coloured by family.
    /// </summary>
    public static string RooflineChart(BenchmarkResults results)
    {
        Check(results);
        var peak = results.Machine.Peak;
        var points = results.Entries
            .Select((entry, index) => (Number: index + 1, Entry: entry))
            .Where(row => row.Entry.Flops > 0 && row.Entry.Bytes > 0 && row.Entry.Seconds is > 0)
            .Select(row => (row.Number, row.Entry, Intensity: row.Entry.Flops / row.Entry.Bytes, Gflops: row.Entry.Flops / row.Entry.Seconds!.Value / 1e9))
            .ToList();
        var families = results.Entries.Select(entry => entry.Family).Distinct().ToList();
        const double left = 70, top = 50, plotWidth = 640, plotHeight = 420, legendWidth = 270;
        var width = left + plotWidth + 20 + legendWidth;
        var height = top + plotHeight + 60;
        var intensities = points.Select(point => point.Intensity).ToList();
        var rates = points.Select(point => point.Gflops).ToList();
        if (peak is not null && peak.Gbps > 0)
        {
            intensities.Add(peak.Gflops / peak.Gbps);
            rates.Add(peak.Gflops);
        }
        double xLow = Math.Floor(Math.Log10(intensities.Count > 0 ? intensities.Min() / 2 : 0.1));
        double xHigh = Math.Ceiling(Math.Log10(intensities.Count > 0 ? intensities.Max() * 2 : 1000));
        double yLow = Math.Floor(Math.Log10(rates.Count > 0 ? Math.Max(1e-3, rates.Min() / 2) : 1));
        double yHigh = Math.Ceiling(Math.Log10(rates.Count > 0 ? rates.Max() * 1.5 : 1000));
        if (xHigh <= xLow)
        {
            xHigh = xLow + 1;
        }
        if (yHigh <= yLow)
        {
            yHigh = yLow + 1;
        }
        double X(double intensity) => left + (Math.Log10(intensity) - xLow) / (xHigh - xLow) * plotWidth;
        double Y(double gflops) => top + plotHeight - (Math.Log10(gflops) - yLow) / (yHigh - yLow) * plotHeight;
        var svg = new SvgBuilder(width, height);
        svg.Text(left + plotWidth / 2, 22, $"Roofline ({results.Machine.Id})", 14, "middle", bold: true);
        svg.Text(left + plotWidth / 2, 38, peak is null ? "no peak measured" : Format($"roofs: {peak.Gflops:0.0} GFLOP/s, {peak.Gbps:0.0} GB/s"), 11, "middle", fill: "#555");
        for (var decade = xLow; decade <= xHigh; decade++)
        {
            var x = X(Math.Pow(10, decade));
            svg.Line(x, top, x, top + plotHeight, "#e5e5e5", 1);
            svg.Text(x, top + plotHeight + 16, Decade(decade), 10, "middle");
        }
        for (var decade = yLow; decade <= yHigh; decade++)
        {
            var y = Y(Math.Pow(10, decade));
            svg.Line(left, y, left + plotWidth, y, "#e5e5e5", 1);
            svg.Text(left - 6, y + 4, Decade(decade), 10, "end");
        }
        svg.Rect(left, top, plotWidth, plotHeight, "none", null, stroke: "#000");
        svg.Text(left + plotWidth / 2, top + plotHeight + 36, "arithmetic intensity (FLOP / compulsory byte)", 11, "middle");
        svg.Text(16, top + plotHeight / 2, "GFLOP/s", 11, "middle", rotate: true);
        if (peak is not null && peak.Gbps > 0 && peak.Gflops > 0)
        {
            // The roof: bandwidth-limited slope up to the ridge, flat at the compute peak after it.
            var ridge = peak.Gflops / peak.Gbps;
            var start = Math.Pow(10, xLow);
            var end = Math.Pow(10, xHigh);
            var first = Math.Max(start, Math.Pow(10, yLow) / peak.Gbps);
            svg.Polyline([(X(first), Y(first * peak.Gbps)), (X(ridge), Y(peak.Gflops)), (X(end), Y(peak.Gflops))], "#000", 2);
        }
        foreach (var (number, entry, intensity, gflops) in points)
        {
            var colour = Palette[families.IndexOf(entry.Family) % Palette.Length];
            double x = X(intensity), y = Y(gflops);
            svg.Circle(x, y, 4, colour, Format($"{number}. {entry.Key}: {gflops:0.0} GFLOP/s at {intensity:0.00} FLOP/byte"));
            svg.Text(x + 6, y - 4, number.ToString(CultureInfo.InvariantCulture), 9, "start", fill: colour);
        }
        var legendY = top + 10;
        foreach (var family in families)
        {
            var colour = Palette[families.IndexOf(family) % Palette.Length];
            var plotted = points.Any(point => point.Entry.Family == family);
            svg.Circle(left + plotWidth + 30, legendY, 4, colour, family);
            svg.Text(left + plotWidth + 40, legendY + 4, plotted ? family : $"{family} (no FLOPs, not plotted)", 10.5, "start");
            legendY += 18;
        }
        return svg.ToString();
    }

    private static BenchmarkResults Check(BenchmarkResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        return results;
    }

    private static string WriteText(string path, string text)
    {
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(text)));
        return path;
    }

    private static void Row(StringBuilder md, string key, string value) => md.Append("| ").Append(key).Append(" | ").Append(Cell(value)).Append(" |\n");

    // A table cell: no pipes or line breaks.
    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);

    private static string Anchor(string heading) => new([.. heading.ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')]);

    private static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Seconds in the unit that keeps 3–4 significant digits readable.</summary>
    public static string Time(double seconds) => seconds switch
    {
        >= 1 => Format($"{seconds:0.000} s"),
        >= 1e-3 => Format($"{seconds * 1e3:0.00} ms"),
        _ => Format($"{seconds * 1e6:0.0} µs"),
    };

    private static string RatioLabel(double ratio) => ratio >= 1 ? Format($"{ratio:0.##}×") : Format($"1/{1 / ratio:0.##}");

    private static string Decade(double exponent) => exponent switch
    {
        >= 0 and <= 4 => Math.Pow(10, exponent).ToString("0", CultureInfo.InvariantCulture),
        >= -2 and < 0 => Math.Pow(10, exponent).ToString("0.##", CultureInfo.InvariantCulture),
        _ => Format($"1e{exponent:0}"),
    };

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";
}

/// <summary>A minimal SVG writer: shapes and text with escaped content, invariant number formatting.</summary>
internal sealed class SvgBuilder
{
    private readonly StringBuilder _body = new();
    private readonly double _width;
    private readonly double _height;

    public SvgBuilder(double width, double height)
    {
        _width = width;
        _height = height;
    }

    public void Line(double x1, double y1, double x2, double y2, string stroke, double strokeWidth) =>
        _body.Append(CultureInfo.InvariantCulture, $"<line x1=\"{R(x1)}\" y1=\"{R(y1)}\" x2=\"{R(x2)}\" y2=\"{R(y2)}\" stroke=\"{stroke}\" stroke-width=\"{R(strokeWidth)}\"/>\n");

    public void Rect(double x, double y, double width, double height, string fill, string? title, string? stroke = null)
    {
        _body.Append(CultureInfo.InvariantCulture, $"<rect x=\"{R(x)}\" y=\"{R(y)}\" width=\"{R(width)}\" height=\"{R(height)}\" fill=\"{fill}\"");
        if (stroke is not null)
        {
            _body.Append(CultureInfo.InvariantCulture, $" stroke=\"{stroke}\"");
        }
        _body.Append(title is null ? "/>\n" : $"><title>{Escape(title)}</title></rect>\n");
    }

    public void Circle(double x, double y, double radius, string fill, string title) =>
        _body.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{R(x)}\" cy=\"{R(y)}\" r=\"{R(radius)}\" fill=\"{fill}\"><title>{Escape(title)}</title></circle>\n");

    public void Polyline(IEnumerable<(double X, double Y)> points, string stroke, double strokeWidth) =>
        _body.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{string.Join(" ", points.Select(p => $"{R(p.X)},{R(p.Y)}"))}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{R(strokeWidth)}\"/>\n");

    public void Text(double x, double y, string text, double size, string anchor, bool bold = false, string fill = "#000", bool rotate = false)
    {
        _body.Append(CultureInfo.InvariantCulture, $"<text x=\"{R(x)}\" y=\"{R(y)}\" font-size=\"{R(size)}\" text-anchor=\"{anchor}\" fill=\"{fill}\"");
        if (bold)
        {
            _body.Append(" font-weight=\"bold\"");
        }
        if (rotate)
        {
            _body.Append(CultureInfo.InvariantCulture, $" transform=\"rotate(-90 {R(x)} {R(y)})\"");
        }
        _body.Append('>').Append(Escape(text)).Append("</text>\n");
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{R(_width)}\" height=\"{R(_height)}\" viewBox=\"0 0 {R(_width)} {R(_height)}\" font-family=\"sans-serif\">\n")
        + $"<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
        + _body
        + "</svg>\n";

    private static string R(double value) => double.IsFinite(value) ? Math.Round(value, 1).ToString("0.#", CultureInfo.InvariantCulture) : "0";

    private static string Escape(string text) => text
        .Replace("&", "&amp;", StringComparison.Ordinal)
        .Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal)
        .Replace("\"", "&quot;", StringComparison.Ordinal);
}
