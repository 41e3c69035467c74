using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace LrmNative.Cli;

/// <summary>
/// Turns the XML of a documentation comment, as the compiler writes it (crefs already resolved to IDs such as
/// <c>M:LrmNative.Mesh.Save(System.String)</c>), into Markdown: <c>&lt;see cref&gt;</c> becomes a link when
/// <paramref name="resolve"/> knows an anchor for the ID and inline code otherwise, <c>&lt;paramref&gt;</c> and
/// <c>&lt;c&gt;</c> inline code, <c>&lt;para&gt;</c> a paragraph, <c>&lt;list&gt;</c> a bullet, numbered or table list,
/// <c>&lt;code&gt;</c> a fenced block. Text is escaped so that <c>*</c>, <c>_</c>, <c>&lt;</c> and friends stay literal.
/// </summary>
/// <param name="resolve">The display text and link target (e.g. <c>#t-lrmnative-mesh</c>) of a cref ID, or null for
/// an ID outside the document; then the text comes from the ID itself (<see cref="CrefText"/>).</param>
internal sealed partial class XmlDocMarkdown(Func<string, CrefTarget?> resolve)
{
    /// <summary>A converter that links nothing.</summary>
    public static XmlDocMarkdown Plain { get; } = new(_ => null);

    /// <summary>The element's content as Markdown blocks (paragraphs, lists, code) separated by blank lines.</summary>
    public string Blocks(XElement element)
    {
        ArgumentNullException.ThrowIfNull(element);
        return string.Join("\n\n", BlockList(element.Nodes()));
    }

    /// <summary>The element's content on one line (for a table cell or a list item): paragraphs joined by a space.</summary>
    public string Inline(XElement element)
    {
        ArgumentNullException.ThrowIfNull(element);
        return Tidy(InlineOf(element.Nodes(), flatten: true));
    }

    /// <summary>Markdown for one cref ID: a link when it resolves, inline code otherwise.</summary>
    public string Cref(string cref, string? text = null)
    {
        ArgumentNullException.ThrowIfNull(cref);
        var target = resolve(cref);
        var shown = text ?? Code(target?.Text ?? CrefText(cref));
        return target?.Link is { } link ? $"[{shown}]({link})" : shown;
    }

    /// <summary>
    /// The display text of a cref ID without reflection: <c>T:LrmNative.Mesh</c> → <c>Mesh</c>,
    /// <c>M:LrmNative.Mesh.Save(System.String)</c> → <c>Mesh.Save(…)</c>, <c>M:A.B.#ctor</c> → <c>new B()</c>,
    /// <c>T:System.Collections.Generic.List`1</c> → <c>List&lt;T&gt;</c>, <c>M:Foo.Bar``1(``0)</c> → <c>Foo.Bar&lt;T&gt;(…)</c>.
    /// </summary>
    public static string CrefText(string cref)
    {
        ArgumentNullException.ThrowIfNull(cref);
        if (cref.Length < 2 || cref[1] != ':')
        {
            return cref;
        }
        var kind = cref[0];
        var body = cref[2..];
        if (kind == '!')
        {
            return body;
        }
        var parameters = "";
        var open = body.IndexOf('(', StringComparison.Ordinal);
        if (open >= 0)
        {
            parameters = body[open..];
            body = body[..open];
        }
        var conversion = body.IndexOf('~', StringComparison.Ordinal);
        if (conversion >= 0)
        {
            body = body[..conversion];
        }
        var parts = body.Split('.');
        if (kind is 'T' or 'N')
        {
            return kind == 'N' ? body : Generic(parts[^1], method: false);
        }
        var type = parts.Length >= 2 ? Generic(parts[^2], method: false) : "";
        var member = parts[^1];
        var call = kind == 'M' ? (parameters.Length > 2 ? "(…)" : "()") : "";
        if (member == "#ctor")
        {
            return $"new {type}{call}";
        }
        return (type.Length > 0 ? type + "." : "") + Generic(member, method: kind == 'M') + call;
    }

    // "List`1" -> "List<T>", "Map`2" -> "Map<T1, T2>", "Bar``1" -> "Bar<T>".
    private static string Generic(string name, bool method)
    {
        var tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick < 0)
        {
            return name;
        }
        var count = int.Parse(name[(tick + (method && name.Length > tick + 1 && name[tick + 1] == '`' ? 2 : 1))..], CultureInfo.InvariantCulture);
        var names = count == 1 ? ["T"] : Enumerable.Range(1, count).Select(i => "T" + i.ToString(CultureInfo.InvariantCulture));
        return name[..tick] + "<" + string.Join(", ", names) + ">";
    }

    private List<string> BlockList(IEnumerable<XNode> nodes)
    {
        var blocks = new List<string>();
        var paragraph = new StringBuilder();
        void Flush()
        {
            var text = Tidy(paragraph.ToString());
            if (text.Length > 0)
            {
                blocks.Add(text);
            }
            paragraph.Clear();
        }
        foreach (var node in nodes)
        {
            if (node is XElement element && IsBlock(element))
            {
                Flush();
                switch (element.Name.LocalName)
                {
                    case "para":
                        blocks.AddRange(BlockList(element.Nodes()));
                        break;
                    case "list":
                        if (List(element) is { Length: > 0 } list)
                        {
                            blocks.Add(list);
                        }
                        break;
                    case "code":
                        blocks.Add(CodeBlock(element));
                        break;
                    default:
                        throw new InvalidOperationException(element.Name.LocalName);
                }
            }
            else
            {
                paragraph.Append(InlineOf([node], flatten: false));
            }
        }
        Flush();
        return blocks;
    }

    private static bool IsBlock(XElement element) => element.Name.LocalName is "para" or "list" or "code";

    // Inline Markdown of nodes; with flatten, block elements are folded into the line (for table cells).
    private string InlineOf(IEnumerable<XNode> nodes, bool flatten)
    {
        var text = new StringBuilder();
        foreach (var node in nodes)
        {
            switch (node)
            {
                case XText plain:
                    text.Append(Escape(Whitespace().Replace(plain.Value, " ")));
                    break;
                case XElement element:
                    text.Append(InlineElement(element, flatten));
                    break;
                default:
                    break;
            }
        }
        return text.ToString();
    }

    private string InlineElement(XElement element, bool flatten)
    {
        string Content() => Tidy(InlineOf(element.Nodes(), flatten));
        switch (element.Name.LocalName)
        {
            case "c":
                return Code(Whitespace().Replace(element.Value, " ").Trim());
            case "code":
                return flatten ? Code(Whitespace().Replace(element.Value, " ").Trim()) : "";
            case "paramref":
            case "typeparamref":
                return Code((string?)element.Attribute("name") ?? "");
            case "see":
            case "seealso":
                {
                    if ((string?)element.Attribute("langword") is { } keyword)
                    {
                        return Code(keyword);
                    }
                    if ((string?)element.Attribute("href") is { } href)
                    {
                        var label = Content();
                        return $"[{(label.Length > 0 ? label : Escape(href))}]({href})";
                    }
                    if ((string?)element.Attribute("cref") is { } cref)
                    {
                        var label = Content();
                        return Cref(cref, label.Length > 0 ? label : null);
                    }
                    return Content();
                }
            case "a" when element.Attribute("href") is { } link:
                return $"[{Content()}]({link.Value})";
            case "b":
            case "strong":
                return Wrap("**", Content());
            case "i":
            case "em":
                return Wrap("*", Content());
            case "br":
                return flatten ? " " : "<br>";
            case "para":
                return " " + Content() + " ";
            case "list":
                return " " + string.Join("; ", element.Elements("item").Select(ItemText)) + " ";
            default:
                return Content();
        }
    }

    private static string Wrap(string marker, string text) => text.Length == 0 ? "" : marker + text + marker;

    private string List(XElement list)
    {
        var type = (string?)list.Attribute("type") ?? "bullet";
        var items = list.Elements("item").ToList();
        if (type == "table")
        {
            var header = list.Element("listheader");
            var headings = header is null ? ["term", "description"] : Cells(header);
            var rows = items.Select(Cells).ToList();
            var columns = Math.Max(headings.Count, rows.Count == 0 ? 0 : rows.Max(r => r.Count));
            var text = new StringBuilder();
            void Row(IReadOnlyList<string> cells) => text.Append("| ")
                .AppendJoin(" | ", Enumerable.Range(0, columns).Select(i => i < cells.Count ? cells[i].Replace("|", "\\|", StringComparison.Ordinal) : "")).Append(" |\n");
            Row(headings);
            Row(Enumerable.Repeat("---", columns).ToList());
            rows.ForEach(Row);
            return text.ToString().TrimEnd('\n');
        }
        var lines = new List<string>();
        for (var i = 0; i < items.Count; i++)
        {
            var marker = type == "number" ? $"{i + 1}. " : "- ";
            var indent = new string(' ', marker.Length);
            var body = ItemBlocks(items[i]);
            var first = body.Count > 0 ? body[0] : "";
            var item = new StringBuilder(marker).Append(Indent(first, indent));
            foreach (var block in body.Skip(1))
            {
                item.Append("\n\n").Append(indent).Append(Indent(block, indent));
            }
            lines.Add(item.ToString());
        }
        return string.Join("\n", lines);
    }

    // An item's content as blocks; <term>/<description> become "**term** — description".
    private List<string> ItemBlocks(XElement item)
    {
        var term = item.Element("term");
        var description = item.Element("description");
        if (term is null && description is null)
        {
            return BlockList(item.Nodes());
        }
        var blocks = description is null ? [] : BlockList(description.Nodes());
        var termText = term is null ? "" : Tidy(InlineOf(term.Nodes(), flatten: true));
        if (termText.Length > 0)
        {
            var lead = "**" + termText + "**";
            if (blocks.Count > 0 && !blocks[0].StartsWith("- ", StringComparison.Ordinal) && !blocks[0].StartsWith("```", StringComparison.Ordinal))
            {
                blocks[0] = lead + " — " + blocks[0];
            }
            else
            {
                blocks.Insert(0, lead);
            }
        }
        return blocks;
    }

    private string ItemText(XElement item) => Tidy(string.Join(" — ", new[] { item.Element("term"), item.Element("description") }
        .Where(e => e is not null).Select(e => InlineOf(e!.Nodes(), flatten: true)).DefaultIfEmpty(InlineOf(item.Nodes(), flatten: true))));

    private List<string> Cells(XElement row)
    {
        var cells = row.Elements().Where(e => e.Name.LocalName is "term" or "description").ToList();
        return cells.Count == 0 ? [Tidy(InlineOf(row.Nodes(), flatten: true))] : cells.Select(c => Tidy(InlineOf(c.Nodes(), flatten: true))).ToList();
    }

    // Continuation lines of a block nested in a list item.
    private static string Indent(string block, string indent) => block.Replace("\n", "\n" + indent, StringComparison.Ordinal).Replace("\n" + indent + "\n", "\n\n", StringComparison.Ordinal);

    private static string CodeBlock(XElement code)
    {
        var lines = code.Value.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').ToList();
        while (lines.Count > 0 && string.IsNullOrWhiteSpace(lines[0]))
        {
            lines.RemoveAt(0);
        }
        while (lines.Count > 0 && string.IsNullOrWhiteSpace(lines[^1]))
        {
            lines.RemoveAt(lines.Count - 1);
        }
        var margin = lines.Where(l => l.Trim().Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        var body = lines.Select(l => (l.Length >= margin ? l[margin..] : l.TrimStart()).TrimEnd());
        var language = (string?)code.Attribute("language") ?? (string?)code.Attribute("lang")
            ?? (code.Ancestors("example").Any() ? "csharp" : "");
        var fence = body.Any(l => l.Contains("```", StringComparison.Ordinal)) ? "````" : "```";
        return fence + language + "\n" + string.Join("\n", body) + "\n" + fence;
    }

    /// <summary>Inline code, with a longer fence when the text holds a backtick.</summary>
    public static string Code(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            return "";
        }
        if (!text.Contains('`', StringComparison.Ordinal))
        {
            return "`" + text + "`";
        }
        var fence = new string('`', Backticks().Matches(text).Max(run => run.Length) + 1);
        return $"{fence} {text} {fence}";
    }

    /// <summary>Plain text made literal in Markdown (no emphasis, links, HTML, strikethrough or table breaks).</summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return MarkdownSpecial().Replace(text, @"\$0");
    }

    // Collapses runs of spaces left between inline pieces and trims the ends.
    private static string Tidy(string text) => Spaces().Replace(text, " ").Trim();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex("`+")]
    private static partial Regex Backticks();

    [GeneratedRegex(" {2,}")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"[\\`*_\[\]<>|~]")]
    private static partial Regex MarkdownSpecial();
}

/// <summary>How a cref shows in the document: its text and, when it is documented there, the link to it.</summary>
/// <param name="Text">The member or type as a reader knows it, e.g. <c>Mesh.Save(…)</c>.</param>
/// <param name="Link">The link target, e.g. <c>#m-lrmnative-mesh-save-system-string</c>, or null.</param>
internal sealed record CrefTarget(string Text, string? Link);
