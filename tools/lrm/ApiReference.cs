using System.CommandLine;
using System.ComponentModel;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;

namespace LrmNative.Cli;

/// <summary>
/// docs/api.md, generated (<c>lrm api-reference --out docs/api.md</c>) by reflection over the public surface of the two
/// library assemblies a program references through NuGet, <c>LrmNative</c> and <c>LrmNative.Interop</c>, with the text of
/// the XML documentation files the build writes next to them. Every public type gets a section with its declaration,
/// documentation and its public and protected members; the order is fixed (namespace, type, member kind, name,
/// signature) and nothing depends on the machine, so <c>ApiReferenceTests</c> can fail when the committed file differs.
/// </summary>
internal static partial class ApiReference
{
    /// <summary>Where the reference lives in the repository.</summary>
    public const string RepositoryPath = "docs/api.md";

    /// <summary>The command that regenerates <see cref="RepositoryPath"/> from a source checkout.</summary>
    public const string RegenerateCommand = "./lrm api-reference --out " + RepositoryPath;

    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = $"Write the Markdown here (e.g. {RepositoryPath}) instead of standard output" };
        var command = new Command("api-reference", $"Print the C# API reference ({RepositoryPath}) generated from the library assemblies and their XML documentation") { output };
        command.Hidden = true;
        command.SetAction(result =>
        {
            var document = Generate(LibraryAssemblies());
            var text = document.Text;
            var errors = result.InvocationConfiguration.Error;
            foreach (var id in document.Undocumented)
            {
                errors.WriteLine($"lrm: api-reference: no documentation: {id}");
            }
            foreach (var id in document.UnlinkedReferences)
            {
                errors.WriteLine($"lrm: api-reference: public documentation refers to a member outside the reference: {id}");
            }
            CliReference.WriteDocument(result, output, text, "API reference");
            return 0;
        });
        return command;
    }

    /// <summary>The assemblies of the NuGet packages: <c>LrmNative</c> and <c>LrmNative.Interop</c>.</summary>
    public static IReadOnlyList<Assembly> LibraryAssemblies() => [typeof(Reconstructor).Assembly, typeof(Interop.NativeMethods).Assembly];

    /// <summary>The reference of <paramref name="assemblies"/>, with the XML documentation found next to each.</summary>
    public static ApiDocument Generate(IReadOnlyList<Assembly> assemblies)
    {
        ArgumentNullException.ThrowIfNull(assemblies);
        return new Writer(assemblies, ApiDocumentation.Load(assemblies)).Write();
    }

    /// <summary>The types a program referencing <paramref name="assembly"/> sees, minus those hidden from IntelliSense.</summary>
    public static IEnumerable<Type> PublicTypes(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return assembly.GetExportedTypes().Where(t => !Hidden(t));
    }

    private static bool Hidden(MemberInfo member) =>
        member.GetCustomAttribute<EditorBrowsableAttribute>() is { State: EditorBrowsableState.Never };

    /// <summary>The anchor of a documentation ID: lower case, runs of other characters as one '-', with arrays,
    /// by-reference and pointer parameters spelled out so that overloads stay apart.</summary>
    public static string Anchor(string prefix, string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var spelled = id.Replace("[]", "-array-", StringComparison.Ordinal).Replace("@", "-ref-", StringComparison.Ordinal)
            .Replace("*", "-ptr-", StringComparison.Ordinal).Replace("{", "-of-", StringComparison.Ordinal).Replace("``", "-m", StringComparison.Ordinal)
            .Replace("`", "-t", StringComparison.Ordinal);
        return prefix + "-" + NotAnchor().Replace(spelled.ToLowerInvariant(), "-").Trim('-');
    }

    [GeneratedRegex("[^a-z0-9]+")]
    private static partial Regex NotAnchor();

    private enum Kind
    {
        Constructor,
        Constant,
        Field,
        Property,
        Method,
        Operator,
        Event,
    }

    private static readonly string[] EntryPoints =
        ["LrmNative.Reconstructor", "LrmNative.ReconstructorOptions", "LrmNative.Reconstruction", "LrmNative.Mesh", "LrmNative.Image", "LrmNative.Device"];

    private static readonly string[] KindHeadings = ["Constructors", "Constants", "Fields", "Properties", "Methods", "Operators", "Events"];

    private sealed record Member(MemberInfo Info, Kind Kind, string Id, string Title, string Declaration)
    {
        public string Anchor { get; set; } = "";
    }

    private sealed class Writer
    {
        private readonly IReadOnlyList<Assembly> _assemblies;
        private readonly ApiDocumentation _documentation;
        private readonly SortedDictionary<string, List<Type>> _namespaces = new(StringComparer.Ordinal);
        private readonly Dictionary<Type, List<Member>> _members = [];
        private readonly Dictionary<string, CrefTarget> _targets = new(StringComparer.Ordinal);
        private readonly HashSet<string> _anchors = new(StringComparer.Ordinal);
        private readonly SortedSet<string> _undocumented = new(StringComparer.Ordinal);
        private readonly SortedSet<string> _unlinked = new(StringComparer.Ordinal);
        private readonly XmlDocMarkdown _markdown;

        public Writer(IReadOnlyList<Assembly> assemblies, ApiDocumentation documentation)
        {
            _assemblies = assemblies;
            _documentation = documentation;
            _markdown = new XmlDocMarkdown(Resolve);
            foreach (var type in assemblies.SelectMany(PublicTypes))
            {
                var space = type.Namespace ?? "";
                if (!_namespaces.TryGetValue(space, out var types))
                {
                    _namespaces[space] = types = [];
                }
                types.Add(type);
            }
            foreach (var types in _namespaces.Values)
            {
                types.Sort((a, b) => string.CompareOrdinal(ShortName(a), ShortName(b)));
                foreach (var type in types)
                {
                    var id = ApiSignatures.DocumentationId(type);
                    _targets[id] = new CrefTarget(ShortName(type), "#" + Unique(Anchor("t", id[2..])));
                    if (type.IsEnum)
                    {
                        foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => !Hidden(f)).OrderBy(f => f.Name, StringComparer.Ordinal))
                        {
                            var fieldId = ApiSignatures.DocumentationId(field);
                            _targets[fieldId] = new CrefTarget($"{ShortName(type)}.{field.Name}", "#" + Unique(Anchor("m", fieldId[2..])));
                        }
                    }
                    var members = Members(type);
                    _members[type] = members;
                    foreach (var member in members)
                    {
                        member.Anchor = Unique(Anchor("m", member.Id[2..]));
                        _targets[member.Id] = new CrefTarget(ReferenceText(type, member.Info), "#" + member.Anchor);
                    }
                }
            }
        }

        private string Unique(string anchor)
        {
            var candidate = anchor;
            for (var i = 2; !_anchors.Add(candidate); i++)
            {
                candidate = $"{anchor}-{i}";
            }
            return candidate;
        }

        private CrefTarget? Resolve(string id)
        {
            if (_targets.TryGetValue(id, out var target))
            {
                return target;
            }
            if (id.Length > 2 && id[2..].StartsWith("LrmNative", StringComparison.Ordinal))
            {
                _unlinked.Add(id);
            }
            return null;
        }

        public ApiDocument Write()
        {
            var text = new StringBuilder();
            text.Append("# LrmNative C# API reference\n\n")
                .Append("Generated by `").Append(RegenerateCommand).Append("` from the public types of the assemblies in the NuGet packages\n")
                .Append("(`LrmNative`, `LrmNative.Interop`) and the XML documentation the build writes next to them. `ApiReferenceTests`\n")
                .Append("fails when this file and the code differ: change the `///` comments in `bindings/`, then regenerate; do not edit\n")
                .Append("this file by hand.\n\n")
                .Append("Each type lists the public and protected members it declares (inherited ones are on the base type). Left out: the\n")
                .Append("members the compiler writes for records (value equality, `ToString`, `Deconstruct`, `with` copies) and members\n")
                .Append("hidden from IntelliSense. A first use is in the README (\"Using LrmNative from C#\") and in `examples/quickstart`.\n\n");
            // Where a game studio starts; the rest (backends, tensors, safetensors) is the engine underneath.
            var entryPoints = EntryPoints.Select(name => _targets.GetValueOrDefault("T:" + name)).OfType<CrefTarget>().ToList();
            if (entryPoints.Count > 0)
            {
                text.Append("Start with ").AppendJoin(", ", entryPoints.Select(t => $"[`{t.Text}`]({t.Link})"))
                    .Append(":\nload a model, reconstruct a photo, save a mesh or renders. `LrmNative.Backends` and `LrmNative.IO` are the engine\n")
                    .Append("underneath (ops on tensors, safetensors files), for tools and research code.\n\n");
            }
            foreach (var assembly in _assemblies.OrderBy(a => a.GetName().Name, StringComparer.Ordinal))
            {
                var count = PublicTypes(assembly).Count();
                text.Append("- `").Append(assembly.GetName().Name).Append("`: ")
                    .Append(count == 0 ? "no public types (everything in it is internal; the package carries the native library)" : $"{count} public types")
                    .Append('\n');
            }
            text.Append("\n## Contents\n\n");
            foreach (var (space, types) in _namespaces)
            {
                text.Append("- [`").Append(space).Append("`](#").Append(Anchor("n", space)).Append("): ")
                    .AppendJoin(", ", types.Select(t => $"[`{ShortName(t)}`]({_targets[ApiSignatures.DocumentationId(t)].Link})")).Append('\n');
            }
            foreach (var (space, types) in _namespaces)
            {
                text.Append("\n<a id=\"").Append(Anchor("n", space)).Append("\"></a>\n\n## Namespace `").Append(space).Append("`\n\n")
                    .Append("| type | kind | summary |\n| --- | --- | --- |\n");
                foreach (var type in types)
                {
                    var summary = _documentation.Resolve(type, this).Element?.Element("summary") is { } element ? FirstSentence(_markdown.Inline(element)) : "";
                    text.Append("| [`").Append(ShortName(type)).Append("`](").Append(_targets[ApiSignatures.DocumentationId(type)].Link).Append(") | ")
                        .Append(ApiSignatures.TypeKind(type)).Append(" | ").Append(summary.Replace("|", "\\|", StringComparison.Ordinal)).Append(" |\n");
                }
                foreach (var type in types)
                {
                    AppendType(text, type);
                }
            }
            return new ApiDocument(text.ToString(), [.. _undocumented], [.. _unlinked]);
        }

        private void AppendType(StringBuilder text, Type type)
        {
            var id = ApiSignatures.DocumentationId(type);
            text.Append("\n<a id=\"").Append(_targets[id].Link![1..]).Append("\"></a>\n\n### `").Append(ShortName(type)).Append("` ")
                .Append(ApiSignatures.TypeKind(type)).Append("\n\n```csharp\n");
            if (type.IsDefined(typeof(FlagsAttribute), inherit: false))
            {
                text.Append("[Flags]\n");
            }
            text.Append(ApiSignatures.TypeDeclaration(type, ShownBaseTypes(type))).Append("\n```\n\n");
            text.Append("Assembly `").Append(type.Assembly.GetName().Name).Append("`, namespace `").Append(type.Namespace).Append("`.\n");
            var (documentation, inherited) = _documentation.Resolve(type, this);
            AppendDocumentation(text, type, documentation, inherited);
            if (type.IsEnum)
            {
                AppendEnumValues(text, type);
                return;
            }
            var nested = type.GetNestedTypes().Where(t => t.IsVisible && !Hidden(t)).OrderBy(ShortName, StringComparer.Ordinal).ToList();
            if (nested.Count > 0)
            {
                text.Append("\nNested types: ").AppendJoin(", ", nested.Select(n => _markdown.Cref(ApiSignatures.DocumentationId(n)))).Append(".\n");
            }
            foreach (var group in _members[type].GroupBy(m => m.Kind))
            {
                text.Append("\n#### ").Append(KindHeadings[(int)group.Key]).Append('\n');
                foreach (var member in group)
                {
                    text.Append("\n<a id=\"").Append(member.Anchor).Append("\"></a>\n\n##### `").Append(member.Title).Append("`\n\n```csharp\n")
                        .Append(member.Declaration).Append("\n```\n");
                    var (memberDocumentation, memberInherited) = _documentation.Resolve(member.Info, this);
                    AppendDocumentation(text, member.Info, memberDocumentation, memberInherited);
                }
            }
        }

        private void AppendEnumValues(StringBuilder text, Type type)
        {
            var underlying = Enum.GetUnderlyingType(type);
            var values = type.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => !Hidden(f))
                .Select(f => (Field: f, Value: Convert.ToDecimal(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)))
                .OrderBy(v => v.Value).ThenBy(v => v.Field.Name, StringComparer.Ordinal).ToList();
            text.Append("\n| value | number | description |\n| --- | --- | --- |\n");
            foreach (var (field, value) in values)
            {
                var fieldId = ApiSignatures.DocumentationId(field);
                var (documentation, _) = _documentation.Resolve(field, this);
                var summary = documentation?.Element("summary") is { } element ? _markdown.Inline(element) : "";
                if (summary.Length == 0)
                {
                    _undocumented.Add(fieldId);
                }
                var obsolete = field.GetCustomAttribute<ObsoleteAttribute>() is { } attribute ? "**Obsolete**" + (attribute.Message is { } m ? ": " + XmlDocMarkdown.Escape(m) : "") + ". " : "";
                text.Append("| <a id=\"").Append(_targets[fieldId].Link![1..]).Append("\"></a>`").Append(field.Name).Append("` | ")
                    .Append(ApiSignatures.Literal(field.GetRawConstantValue(), underlying)).Append(" | ")
                    .Append((obsolete + summary).Replace("|", "\\|", StringComparison.Ordinal)).Append(" |\n");
            }
        }

        private void AppendDocumentation(StringBuilder text, MemberInfo member, XElement? documentation, string? inherited)
        {
            if (member.GetCustomAttribute<ObsoleteAttribute>() is { } obsolete)
            {
                text.Append("\n**Obsolete**").Append(obsolete.Message is { } message ? ": " + XmlDocMarkdown.Escape(message) : ".").Append('\n');
            }
            if (documentation?.Element("summary") is not { } summary || _markdown.Blocks(summary).Length == 0)
            {
                if (member is ConstructorInfo { IsPublic: true } constructor && constructor.GetParameters().Length == 0 && documentation is null)
                {
                    // The parameterless constructor the compiler supplies has no comment to carry.
                    text.Append("\nCreates an instance with every field and property at its initial value (the constructor the compiler supplies).\n");
                    return;
                }
                if (inherited is not null)
                {
                    text.Append('\n').Append("Inherits the documentation of ").Append(XmlDocMarkdown.Code(inherited)).Append(" (.NET).\n");
                }
                else
                {
                    _undocumented.Add(member is Type type ? ApiSignatures.DocumentationId(type) : ApiSignatures.DocumentationId(member));
                    text.Append("\n*No documentation.*\n");
                }
                if (documentation is null)
                {
                    return;
                }
            }
            else
            {
                text.Append('\n').Append(_markdown.Blocks(summary)).Append('\n');
            }
            if (documentation.Element("value") is { } value && _markdown.Blocks(value) is { Length: > 0 } valueText)
            {
                text.Append("\n**Value:** ").Append(valueText).Append('\n');
            }
            AppendNamedList(text, "Type parameters", documentation.Elements("typeparam"), GenericParameterNames(member));
            if (member is not Type || typeof(Delegate).IsAssignableFrom((Type)member))
            {
                AppendNamedList(text, "Parameters", documentation.Elements("param"), ParameterNames(member));
            }
            if (documentation.Element("returns") is { } returns && _markdown.Blocks(returns) is { Length: > 0 } returnsText)
            {
                text.Append("\n**Returns:** ").Append(returnsText).Append('\n');
            }
            var exceptions = documentation.Elements("exception").ToList();
            if (exceptions.Count > 0)
            {
                text.Append("\n**Exceptions**\n\n");
                foreach (var exception in exceptions)
                {
                    var cref = (string?)exception.Attribute("cref") ?? "";
                    var description = _markdown.Inline(exception);
                    text.Append("- ").Append(_markdown.Cref(cref)).Append(description.Length > 0 ? ": " + description : "").Append('\n');
                }
            }
            if (documentation.Element("remarks") is { } remarks && _markdown.Blocks(remarks) is { Length: > 0 } remarksText)
            {
                text.Append("\n**Remarks**\n\n").Append(remarksText).Append('\n');
            }
            foreach (var example in documentation.Elements("example"))
            {
                text.Append("\n**Example**\n\n").Append(_markdown.Blocks(example)).Append('\n');
            }
            var seeAlso = documentation.Elements("seealso").Select(s => (string?)s.Attribute("cref") is { } cref ? _markdown.Cref(cref)
                : (string?)s.Attribute("href") is { } href ? $"[{(s.Value.Trim().Length > 0 ? XmlDocMarkdown.Escape(s.Value.Trim()) : href)}]({href})" : null)
                .OfType<string>().ToList();
            if (seeAlso.Count > 0)
            {
                text.Append("\n**See also:** ").AppendJoin(", ", seeAlso).Append('\n');
            }
        }

        // "- `name`: text" for each documented parameter, in declaration order (documented names unknown to the
        // signature last, so a stale <param> still shows).
        private void AppendNamedList(StringBuilder text, string heading, IEnumerable<XElement> elements, List<string> order)
        {
            var documented = elements.Where(e => e.Attribute("name") is not null).ToList();
            if (documented.Count == 0)
            {
                return;
            }
            var ordered = documented.OrderBy(e => order.IndexOf((string)e.Attribute("name")!) is var i && i >= 0 ? i : int.MaxValue).ToList();
            text.Append("\n**").Append(heading).Append("**\n\n");
            foreach (var element in ordered)
            {
                var description = _markdown.Blocks(element).Replace("\n", "\n  ", StringComparison.Ordinal).Replace("\n  \n", "\n\n", StringComparison.Ordinal);
                text.Append("- `").Append((string)element.Attribute("name")!).Append('`').Append(description.Length > 0 ? ": " + description : "").Append('\n');
            }
        }

        private static List<string> ParameterNames(MemberInfo member) => member switch
        {
            MethodBase method => method.GetParameters().Select(p => p.Name ?? "").ToList(),
            PropertyInfo property => property.GetIndexParameters().Select(p => p.Name ?? "").ToList(),
            Type type when type.GetMethod("Invoke") is { } invoke => invoke.GetParameters().Select(p => p.Name ?? "").ToList(),
            _ => [],
        };

        private static List<string> GenericParameterNames(MemberInfo member) => member switch
        {
            MethodInfo { IsGenericMethod: true } method => method.GetGenericArguments().Select(a => a.Name).ToList(),
            Type { IsGenericType: true } type => type.GetGenericArguments().Select(a => a.Name).ToList(),
            _ => [],
        };

        // The base type unless it is object/ValueType/Enum/MulticastDelegate, and the public interfaces this type adds:
        // none its base type already has, none another listed interface brings, and not the IEquatable<T> of a record.
        private static List<Type> ShownBaseTypes(Type type)
        {
            var shown = new List<Type>();
            if (type.BaseType is { } baseType && baseType != typeof(object) && baseType != typeof(ValueType) && baseType != typeof(Enum)
                && baseType != typeof(MulticastDelegate))
            {
                shown.Add(baseType);
            }
            if (type.IsEnum || typeof(Delegate).IsAssignableFrom(type))
            {
                return shown;
            }
            var inherited = type.BaseType?.GetInterfaces() ?? [];
            var interfaces = type.GetInterfaces().Where(i => i.IsVisible && !inherited.Contains(i)).ToList();
            var implied = interfaces.SelectMany(i => i.GetInterfaces()).ToHashSet();
            var record = ApiSignatures.TypeKind(type).StartsWith("record", StringComparison.Ordinal);
            shown.AddRange(interfaces
                .Where(i => !implied.Contains(i))
                .Where(i => !(record && i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEquatable<>) && i.GetGenericArguments()[0] == type))
                .OrderBy(i => ApiSignatures.TypeName(i), StringComparer.Ordinal));
            return shown;
        }

        private static List<Member> Members(Type type)
        {
            if (type.IsEnum || typeof(Delegate).IsAssignableFrom(type))
            {
                return [];
            }
            const BindingFlags declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            var members = new List<Member>();
            var properties = type.GetProperties(declared).Where(p => ApiSignatures.Visible(p.GetMethod) || ApiSignatures.Visible(p.SetMethod)).ToList();
            var events = type.GetEvents(declared).Where(e => ApiSignatures.Visible(e.AddMethod)).ToList();
            var accessors = properties.SelectMany(p => new[] { p.GetMethod, p.SetMethod })
                .Concat(events.SelectMany(e => new[] { e.AddMethod, e.RemoveMethod, e.RaiseMethod }))
                .OfType<MethodInfo>().ToHashSet();
            bool Generated(MemberInfo member) => member.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) || member.Name.Contains('<', StringComparison.Ordinal);
            void Add(MemberInfo member, Kind kind)
            {
                if (!Hidden(member))
                {
                    members.Add(new Member(member, kind, ApiSignatures.DocumentationId(member), ApiSignatures.MemberTitle(member), ApiSignatures.MemberDeclaration(member)));
                }
            }
            foreach (var constructor in type.GetConstructors(declared).Where(c => ApiSignatures.Visible(c) && !c.IsStatic))
            {
                // A struct's parameterless constructor is the language's own (default) unless it was written.
                Add(constructor, Kind.Constructor);
            }
            foreach (var field in type.GetFields(declared).Where(f => (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.IsSpecialName && !Generated(f)))
            {
                Add(field, field.IsLiteral ? Kind.Constant : Kind.Field);
            }
            foreach (var property in properties.Where(p => !Generated(p)))
            {
                Add(property, Kind.Property);
            }
            // A finalizer (~Type) is protected Finalize() to reflection; no caller can call it.
            static bool Finalizer(MethodInfo method) => method is { Name: "Finalize", IsVirtual: true } && method.GetParameters().Length == 0 && method.ReturnType == typeof(void);
            foreach (var method in type.GetMethods(declared).Where(m => ApiSignatures.Visible(m) && !accessors.Contains(m) && !Generated(m) && !Finalizer(m)))
            {
                Add(method, ApiSignatures.OperatorSymbol(method) is null ? Kind.Method : Kind.Operator);
            }
            foreach (var @event in events.Where(e => !Generated(e)))
            {
                Add(@event, Kind.Event);
            }
            return [.. members
                .OrderBy(m => m.Kind)
                .ThenBy(m => m.Info.Name, StringComparer.Ordinal)
                .ThenBy(m => m.Title, StringComparer.Ordinal)
                .ThenBy(m => m.Declaration, StringComparer.Ordinal)];
        }

        /// <summary>The reflection member a documentation ID names, among the documented members, or null.</summary>
        public MemberInfo? Find(string id) =>
            _members.Values.SelectMany(m => m).FirstOrDefault(m => m.Id == id)?.Info
            ?? _members.Keys.FirstOrDefault(t => ApiSignatures.DocumentationId(t) == id);
    }

    /// <summary>
    /// The first sentence of a line of Markdown: up to the first ". " that is outside inline code and brackets, follows
    /// no abbreviation (e.g., i.e., etc.) and precedes a capital, a link or code.
    /// </summary>
    public static string FirstSentence(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var code = false;
        var depth = 0;
        for (var i = 0; i < text.Length - 2; i++)
        {
            var c = text[i];
            if (c == '\\')
            {
                i++;
                continue;
            }
            if (c == '`')
            {
                code = !code;
            }
            else if (!code && c is '[' or '(')
            {
                depth++;
            }
            else if (!code && c is ']' or ')')
            {
                depth = Math.Max(0, depth - 1);
            }
            else if (!code && depth == 0 && c == '.' && text[i + 1] == ' ' && (char.IsUpper(text[i + 2]) || text[i + 2] is '[' or '`' or '*'))
            {
                var start = text.LastIndexOf(' ', i) + 1;
                var word = text[start..i];
                if (word is not ("e.g" or "i.e" or "etc" or "vs" or "cf" or "approx" or "Fig" or "Eq" or "Sec"))
                {
                    return text[..(i + 1)];
                }
            }
        }
        return text;
    }

    // How prose refers to a member: Mesh.Save(…), Mesh.ComputeVertexNormals(), new Mesh(…), CudaBackend.DeviceTimer.Start(),
    // Mesh.VertexCount; the same shape XmlDocMarkdown.CrefText gives members outside the document.
    private static string ReferenceText(Type type, MemberInfo member)
    {
        string Call(MethodBase method) => method.GetParameters().Length == 0 ? "()" : "(…)";
        return member switch
        {
            ConstructorInfo constructor => $"new {ShortName(type)}{Call(constructor)}",
            MethodInfo method => ShortName(type) + "." + method.Name
                + (method.IsGenericMethod ? "<" + string.Join(", ", method.GetGenericArguments().Select(a => a.Name)) + ">" : "") + Call(method),
            PropertyInfo property when property.GetIndexParameters().Length > 0 => $"{ShortName(type)}[…]",
            _ => ShortName(type) + "." + member.Name,
        };
    }

    // A type's name as the document shows it: nested types as Outer.Inner, generic parameters spelled out.
    private static string ShortName(Type type) => ApiSignatures.NameWithGenerics(type);

    /// <summary>
    /// The XML documentation of the assemblies by ID, with <c>&lt;inheritdoc/&gt;</c> resolved to the overridden or
    /// implemented member's documentation when that is in one of the files.
    /// </summary>
    private sealed class ApiDocumentation(Dictionary<string, XElement> members)
    {
        public static ApiDocumentation Load(IEnumerable<Assembly> assemblies)
        {
            var members = new Dictionary<string, XElement>(StringComparer.Ordinal);
            foreach (var assembly in assemblies)
            {
                foreach (var (id, element) in ApiReference.LoadDocumentation(assembly))
                {
                    members[id] = element;
                }
            }
            return new ApiDocumentation(members);
        }

        /// <summary>
        /// The documentation of <paramref name="member"/> (its own, merged with what an <c>&lt;inheritdoc/&gt;</c> brings
        /// from ours), and when the inherited documentation is outside our files (.NET's), the member it comes from.
        /// </summary>
        public (XElement? Element, string? InheritedFrom) Resolve(MemberInfo member, Writer writer) => Resolve(member, writer, depth: 0);

        private (XElement? Element, string? InheritedFrom) Resolve(MemberInfo member, Writer writer, int depth)
        {
            var id = member is Type type ? ApiSignatures.DocumentationId(type) : ApiSignatures.DocumentationId(member);
            var own = members.GetValueOrDefault(id);
            // A positional record's property is documented by the record's <param>.
            if (own is null && member is PropertyInfo property
                && members.GetValueOrDefault(ApiSignatures.DocumentationId(property.DeclaringType!))?.Elements("param")
                    .FirstOrDefault(p => (string?)p.Attribute("name") == property.Name) is { } parameter)
            {
                own = new XElement("member", new XElement("summary", parameter.Nodes()));
            }
            if (own?.Element("inheritdoc") is not { } inherit || depth > 8)
            {
                return (own, null);
            }
            XElement? source = null;
            string? external = null;
            if ((string?)inherit.Attribute("cref") is { } cref)
            {
                source = members.GetValueOrDefault(cref);
                if (source is null)
                {
                    external = XmlDocMarkdown.CrefText(cref);
                }
                else if (writer.Find(cref) is { } target)
                {
                    source = Resolve(target, writer, depth + 1).Element;
                }
            }
            else
            {
                foreach (var candidate in Bases(member))
                {
                    var (element, inherited) = Resolve(candidate, writer, depth + 1);
                    if (element is not null && element.Element("summary") is not null)
                    {
                        source = element;
                        break;
                    }
                    external ??= inherited ?? Describe(candidate);
                }
            }
            var merged = new XElement("member");
            var replaced = own.Elements().Where(e => e.Name != "inheritdoc").Select(Key).ToHashSet();
            if (source is not null)
            {
                merged.Add(source.Elements().Where(e => !replaced.Contains(Key(e))));
            }
            merged.Add(own.Elements().Where(e => e.Name != "inheritdoc"));
            return (merged, source is null ? external : null);
        }

        private static string Key(XElement element) => element.Name.LocalName + "/" + ((string?)element.Attribute("name") ?? (string?)element.Attribute("cref") ?? "");

        // "IDisposable.Dispose()", "object.ToString()".
        private static string Describe(MemberInfo member) =>
            ApiSignatures.TypeName(member.DeclaringType!) + "." + member.Name + (member is MethodBase method ? (method.GetParameters().Length == 0 ? "()" : "(…)") : "");

        // What an <inheritdoc/> without cref inherits from: the overridden member, then the implemented interface members;
        // for a type, its base type and interfaces.
        private static IEnumerable<MemberInfo> Bases(MemberInfo member)
        {
            switch (member)
            {
                case Type type:
                    if (type.BaseType is { } baseType)
                    {
                        yield return baseType;
                    }
                    foreach (var face in type.GetInterfaces())
                    {
                        yield return face;
                    }
                    break;
                case MethodInfo method:
                    {
                        var parent = ParentMethod(method);
                        if (parent is not null)
                        {
                            yield return parent;
                        }
                        foreach (var implemented in InterfaceMethods(method))
                        {
                            yield return implemented;
                        }
                        break;
                    }
                case PropertyInfo property:
                    {
                        var accessor = property.GetMethod ?? property.SetMethod!;
                        var candidates = new List<MethodInfo>();
                        if (ParentMethod(accessor) is { } parent)
                        {
                            candidates.Add(parent);
                        }
                        candidates.AddRange(InterfaceMethods(accessor));
                        foreach (var candidate in candidates)
                        {
                            var owner = candidate.DeclaringType!.GetProperties(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
                                .FirstOrDefault(p => p.GetMethod == candidate || p.SetMethod == candidate);
                            if (owner is not null)
                            {
                                yield return owner;
                            }
                        }
                        break;
                    }
                case ConstructorInfo constructor when constructor.DeclaringType!.BaseType is { } baseClass:
                    {
                        var types = constructor.GetParameters().Select(p => p.ParameterType).ToArray();
                        if (baseClass.GetConstructor(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance, types) is { } parent)
                        {
                            yield return parent;
                        }
                        break;
                    }
                default:
                    break;
            }
        }

        // The method this one overrides, one level up.
        private static MethodInfo? ParentMethod(MethodInfo method)
        {
            if (method.GetBaseDefinition() == method || method.DeclaringType!.BaseType is not { } baseType)
            {
                return null;
            }
            var types = method.GetParameters().Select(p => p.ParameterType).ToArray();
            for (Type? level = baseType; level is not null; level = level.BaseType)
            {
                var candidate = level.GetMethod(method.Name, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly, null, types, null);
                if (candidate is not null)
                {
                    return candidate;
                }
            }
            return method.GetBaseDefinition();
        }

        private static IEnumerable<MethodInfo> InterfaceMethods(MethodInfo method)
        {
            var type = method.DeclaringType!;
            if (type.IsInterface)
            {
                yield break;
            }
            foreach (var face in type.GetInterfaces())
            {
                var map = type.GetInterfaceMap(face);
                for (var i = 0; i < map.TargetMethods.Length; i++)
                {
                    if (map.TargetMethods[i] == method)
                    {
                        yield return map.InterfaceMethods[i];
                    }
                }
            }
        }
    }

    /// <summary>
    /// The entries of the XML documentation file next to <paramref name="assembly"/> (<c>LrmNative.xml</c> beside
    /// <c>LrmNative.dll</c>), by ID. A missing or unreadable file is an <see cref="LrmFormatException"/> naming it.
    /// </summary>
    public static Dictionary<string, XElement> LoadDocumentation(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var name = assembly.GetName().Name;
        if (string.IsNullOrEmpty(assembly.Location))
        {
            throw new LrmFormatException($"{name}: the assembly has no file location, so its XML documentation ({name}.xml) cannot be found next to it");
        }
        var path = Path.ChangeExtension(assembly.Location, ".xml");
        if (!File.Exists(path))
        {
            throw new LrmFormatException(
                $"{path}: the XML documentation of {name} is missing; the API reference needs it next to {Path.GetFileName(assembly.Location)} "
                + "(the projects build it with GenerateDocumentationFile, and a build of tools/lrm copies it there: rebuild with dotnet build tools/lrm/lrm.csproj)");
        }
        XDocument document;
        try
        {
            document = XDocument.Load(path, LoadOptions.PreserveWhitespace);
        }
        catch (XmlException error)
        {
            throw new LrmFormatException($"{path}: not readable XML documentation ({error.Message})");
        }
        var members = new Dictionary<string, XElement>(StringComparer.Ordinal);
        foreach (var member in document.Root?.Element("members")?.Elements("member") ?? [])
        {
            if ((string?)member.Attribute("name") is { } id)
            {
                members[id] = member;
            }
        }
        return members;
    }
}

/// <summary>The generated reference and what the generator noticed on the way.</summary>
/// <param name="Text">The Markdown of docs/api.md.</param>
/// <param name="Undocumented">IDs of public types and members without a summary (their own or inherited).</param>
/// <param name="UnlinkedReferences">IDs of LrmNative members that public documentation refers to but that are not in
/// the reference (internal ones: a hint that a comment speaks of internals a user cannot see).</param>
internal sealed record ApiDocument(string Text, IReadOnlyList<string> Undocumented, IReadOnlyList<string> UnlinkedReferences);
