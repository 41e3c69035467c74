using System.Reflection;
using System.Runtime.CompilerServices;
using System.Xml.Linq;
using LrmNative.Cli;

namespace LrmNative.Tests;

/// <summary>
/// docs/api.md is what `lrm api-reference` generates from the library assemblies and their XML documentation: the
/// committed file must be the generated one, every public type and member must be in it with documentation, and the
/// pieces (documentation IDs, C# declarations, XML-to-Markdown) are checked against hand-written expectations taken
/// from the C# specification's documentation-comment annex and the Markdown they should read as.
/// </summary>
public sealed class ApiReferenceTests
{
    [Test]
    public void TheCommittedReferenceIsTheGeneratedOne()
    {
        var committedPath = TestFiles.InRepository(ApiReference.RepositoryPath, "compare");
        var generated = ApiReference.Generate(ApiReference.LibraryAssemblies()).Text;
        var committed = File.ReadAllText(committedPath);
        Assert.That(committed, Is.EqualTo(generated), $"{ApiReference.RepositoryPath} is stale: run {ApiReference.RegenerateCommand}");
    }

    [Test]
    public void EveryPublicTypeAndMemberOfBothAssembliesHasASection()
    {
        var assemblies = new[] { typeof(Reconstructor).Assembly, typeof(Interop.NativeMethods).Assembly };
        Assert.That(assemblies.Select(a => a.GetName().Name), Is.EqualTo(ApiReference.LibraryAssemblies().Select(a => a.GetName().Name)));
        var text = ApiReference.Generate(assemblies).Text;
        var types = assemblies.SelectMany(a => a.GetTypes()).Where(t => t.IsVisible).ToList();
        Assert.That(types, Has.Count.GreaterThanOrEqualTo(20), "Reconstructor, Mesh, Image, Device, the options, exceptions, backends, …");
        foreach (var type in types)
        {
            var name = string.Join(".", DeclaringChain(type).Select(t => t.Name.Split('`')[0]));
            var heading = text.IndexOf($"\n### `{name}{(type.IsGenericType ? "<" : "`")}", StringComparison.Ordinal);
            Assert.That(heading, Is.GreaterThanOrEqualTo(0), $"{type.FullName} has a section");
            var end = text.IndexOf("\n### ", heading + 1, StringComparison.Ordinal);
            var section = text[heading..(end < 0 ? text.Length : end)];
            if (type.IsEnum)
            {
                foreach (var value in Enum.GetNames(type))
                {
                    Assert.That(section, Does.Contain($"`{value}` | "), $"{type.Name}.{value}");
                }
                continue;
            }
            const BindingFlags declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var member in type.GetMembers(declared))
            {
                if (member is MethodInfo { IsSpecialName: true } or Type || member.IsDefined(typeof(CompilerGeneratedAttribute)) || member.Name.Contains('<', StringComparison.Ordinal))
                {
                    continue;
                }
                var memberName = member switch
                {
                    ConstructorInfo => name.Split('.')[^1],
                    PropertyInfo property when property.GetIndexParameters().Length > 0 => "this[",
                    _ => member.Name,
                };
                Assert.That(section, Does.Contain($"##### `{memberName}"), $"{type.Name}.{member.Name} ({member.MemberType})");
            }
        }
        Assert.That(text, Does.Contain("`LrmNative.Interop`: no public types"), "the interop assembly is named even though all of it is internal");
    }

    [Test]
    public void EveryPublicTypeAndMemberHasDocumentation()
    {
        var document = ApiReference.Generate(ApiReference.LibraryAssemblies());
        Assert.That(document.Undocumented, Is.Empty, "public members without a <summary> of their own or inherited one (a documentation ID the generator computes wrongly shows up here too)");
        Assert.That(document.Text, Does.Not.Contain("*No documentation.*"));
    }

    [Test]
    public void TheReferenceShowsDeclarationsDocumentationAndLinks()
    {
        var text = ApiReference.Generate(ApiReference.LibraryAssemblies()).Text;
        Assert.Multiple(() =>
        {
            Assert.That(text, Does.StartWith("# LrmNative C# API reference\n"));
            Assert.That(text, Does.Contain(ApiReference.RegenerateCommand), "the header says how to regenerate");
            Assert.That(text, Does.Contain("## Contents\n"));
            Assert.That(text, Does.Contain("### `Reconstructor` class\n\n```csharp\npublic sealed class Reconstructor : IDisposable\n```"));
            Assert.That(text, Does.Contain("### `Device` record struct"));
            Assert.That(text, Does.Contain("### `DataType` enum"));
            Assert.That(text, Does.Contain("| <a id=\"m-lrmnative-datatype-bfloat16\"></a>`BFloat16` | 1 | "), "enum values with their numbers");
            Assert.That(text, Does.Contain("public static Reconstructor Load(string path, Device device, ReconstructorOptions? options = null)"),
                "nullable annotation and default value");
            Assert.That(text, Does.Contain("[`LrmFormatException`](#t-lrmnative-lrmformatexception)"), "exception crefs link to the type");
            Assert.That(text, Does.Contain("(Tensor Vertices, Tensor Triangles) MarchingCubes("), "tuple element names");
            Assert.That(text, Does.Contain("{ get; init; }"));
            var anchors = System.Text.RegularExpressions.Regex.Matches(text, "<a id=\"([^\"]+)\"></a>").Select(m => m.Groups[1].Value).ToList();
            Assert.That(anchors, Is.Unique, "every anchor is distinct");
            foreach (var link in System.Text.RegularExpressions.Regex.Matches(text, @"\]\(#([^)]+)\)").Select(m => m.Groups[1].Value).Distinct())
            {
                Assert.That(anchors, Does.Contain(link), $"#{link} points at an anchor");
            }
        });
    }

    [Test]
    public void AMissingDocumentationFileIsOneClearError()
    {
        // The test assembly is built without GenerateDocumentationFile, so no LrmNative.Tests.xml lies next to it.
        var error = Assert.Throws<LrmFormatException>(() => ApiReference.LoadDocumentation(typeof(ApiReferenceTests).Assembly));
        Assert.That(error!.Message, Does.Contain("LrmNative.Tests.xml").And.Contain("missing"));
    }

    // ---- documentation comment IDs (C# specification, annex D "Documentation comments", ID string format) ----

    [Test]
    public void DocumentationIdsFollowTheIdStringFormat()
    {
        var sample = typeof(Sample);
        Assert.Multiple(() =>
        {
            Assert.That(ApiSignatures.DocumentationId(sample), Is.EqualTo("T:LrmNative.Tests.ApiReferenceTests.Sample"));
            Assert.That(ApiSignatures.DocumentationId(typeof(Sample.Box<>)), Is.EqualTo("T:LrmNative.Tests.ApiReferenceTests.Sample.Box`1"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetMethod(nameof(Sample.Generic))!),
                Is.EqualTo("M:LrmNative.Tests.ApiReferenceTests.Sample.Generic``1(``0,System.Int32@,System.Single[]@,System.Collections.Generic.List{``0},System.Int32[0:,0:],System.Int32*)"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetConstructor([typeof(int)])!), Is.EqualTo("M:LrmNative.Tests.ApiReferenceTests.Sample.#ctor(System.Int32)"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetProperty(nameof(Sample.Name))!), Is.EqualTo("P:LrmNative.Tests.ApiReferenceTests.Sample.Name"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetProperty("Item")!), Is.EqualTo("P:LrmNative.Tests.ApiReferenceTests.Sample.Item(System.Int32)"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetField(nameof(Sample.Limit))!), Is.EqualTo("F:LrmNative.Tests.ApiReferenceTests.Sample.Limit"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetEvent(nameof(Sample.Changed))!), Is.EqualTo("E:LrmNative.Tests.ApiReferenceTests.Sample.Changed"));
            Assert.That(ApiSignatures.DocumentationId(sample.GetMethod("op_Implicit")!), Is.EqualTo("M:LrmNative.Tests.ApiReferenceTests.Sample.op_Implicit(System.Int32)~LrmNative.Tests.ApiReferenceTests.Sample"));
            Assert.That(ApiSignatures.DocumentationId(typeof(Sample.Box<>).GetMethod(nameof(Sample.Box<int>.Put))!),
                Is.EqualTo("M:LrmNative.Tests.ApiReferenceTests.Sample.Box`1.Put(`0,System.Nullable{System.Int32})"));
        });
    }

    [Test]
    public void EveryPublicMemberIdIsInTheCompilersDocumentationFile()
    {
        // The compiler's own IDs are the independent reference: each public member of LrmNative must find its entry.
        var entries = ApiReference.LoadDocumentation(typeof(Reconstructor).Assembly);
        var checkedMembers = 0;
        foreach (var type in typeof(Reconstructor).Assembly.GetExportedTypes())
        {
            Assert.That(entries, Does.ContainKey(ApiSignatures.DocumentationId(type)));
            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(m => !m.IsSpecialName && !m.IsDefined(typeof(CompilerGeneratedAttribute)) && m.GetParameters().Length > 0))
            {
                Assert.That(entries, Does.ContainKey(ApiSignatures.DocumentationId(method)), $"{type.Name}.{method.Name}");
                checkedMembers++;
            }
        }
        Assert.That(checkedMembers, Is.GreaterThan(100));
    }

    // ---- C# declarations ----

    [Test]
    public void DeclarationsReadAsCSharp()
    {
        var sample = typeof(Sample);
        Assert.Multiple(() =>
        {
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetMethod(nameof(Sample.Generic))!),
                Is.EqualTo("public static T Generic<T>(T value, ref int count, out float[] results, List<T> items, int[,] grid, int* pointer) where T : class"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetMethod(nameof(Sample.Defaults))!),
                Is.EqualTo("public string? Defaults(string? text = null, float scale = 0.5f, double ratio = 2.0, DayOfWeek day = DayOfWeek.Monday, CancellationToken cancellation = default, params int[] rest)"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetMethod(nameof(Sample.Pair))!),
                Is.EqualTo("public (int Width, (string? Name, long Size) Inner) Pair(in ApiReferenceTests.Vector3Like point, IReadOnlyList<string?>? names)"));
            Assert.That(ApiSignatures.MemberDeclaration(typeof(ApiReferenceSampleExtensions).GetMethod(nameof(ApiReferenceSampleExtensions.Spans))!),
                Is.EqualTo("public static void Spans<T>(this ReadOnlySpan<T> values, Span<float> output) where T : unmanaged"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetProperty(nameof(Sample.Name))!), Is.EqualTo("public string? Name { get; init; }"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetProperty("Item")!), Is.EqualTo("public int this[int index] { get; protected set; }"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetField(nameof(Sample.Limit))!), Is.EqualTo("public const long Limit = 5L"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetEvent(nameof(Sample.Changed))!), Is.EqualTo("public event Action<string>? Changed"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetMethod("op_Implicit")!), Is.EqualTo("public static implicit operator ApiReferenceTests.Sample(int value)"));
            Assert.That(ApiSignatures.MemberDeclaration(sample.GetMethod(nameof(ToString))!), Is.EqualTo("public override string ToString()"));
            Assert.That(ApiSignatures.MemberTitle(sample.GetMethod(nameof(Sample.Generic))!), Is.EqualTo("Generic<T>(T, ref int, out float[], List<T>, int[,], int*)"));
            Assert.That(ApiSignatures.MemberTitle(sample.GetConstructor([typeof(int)])!), Is.EqualTo("Sample(int)"));
            Assert.That(ApiSignatures.TypeDeclaration(typeof(Sample.Box<>), [typeof(IDisposable)]), Is.EqualTo("public sealed class Box<T> : IDisposable where T : new()"));
            Assert.That(ApiSignatures.TypeKind(typeof(Sample.Settings)), Is.EqualTo("record"));
            Assert.That(ApiSignatures.TypeKind(typeof(Vector3Like)), Is.EqualTo("record struct"));
            Assert.That(ApiSignatures.TypeKind(typeof(Sample)), Is.EqualTo("class"));
            Assert.That(ApiSignatures.TypeKind(typeof(DataTypeExtensions)), Is.EqualTo("static class"));
            Assert.That(ApiSignatures.TypeDeclaration(typeof(Vector3Like), []), Is.EqualTo("public readonly record struct Vector3Like"));
        });
    }

    // ---- XML documentation to Markdown ----

    private static readonly XmlDocMarkdown Linking = new(id => id switch
    {
        "T:LrmNative.Mesh" => new CrefTarget("Mesh", "#t-lrmnative-mesh"),
        "M:LrmNative.Mesh.Save(System.String)" => new CrefTarget("Mesh.Save(…)", "#m-lrmnative-mesh-save-system-string"),
        "P:LrmNative.Mesh.VertexCount" => new CrefTarget("Mesh.VertexCount", "#m-lrmnative-mesh-vertexcount"),
        _ => null,
    });

    private static string Blocks(string xml) => Linking.Blocks(XElement.Parse(xml, LoadOptions.PreserveWhitespace));

    [Test]
    public void CrefsBecomeLinksWhenDocumentedAndCodeOtherwise()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Blocks("<summary>A <see cref=\"T:LrmNative.Mesh\"/>.</summary>"), Is.EqualTo("A [`Mesh`](#t-lrmnative-mesh)."));
            Assert.That(Blocks("<summary>Call <see cref=\"M:LrmNative.Mesh.Save(System.String)\"/> once.</summary>"),
                Is.EqualTo("Call [`Mesh.Save(…)`](#m-lrmnative-mesh-save-system-string) once."));
            Assert.That(Blocks("<summary><see cref=\"P:LrmNative.Mesh.VertexCount\">the count</see></summary>"),
                Is.EqualTo("[the count](#m-lrmnative-mesh-vertexcount)"));
            Assert.That(Blocks("<summary>See <see cref=\"T:System.Threading.CancellationToken\"/>.</summary>"), Is.EqualTo("See `CancellationToken`."));
            Assert.That(Blocks("<summary><see cref=\"M:LrmNative.Mesh.#ctor(System.Single[],System.Int32[])\"/></summary>"), Is.EqualTo("`new Mesh(…)`"));
            Assert.That(Blocks("<summary><see cref=\"M:LrmNative.Mesh.ComputeVertexNormals\"/></summary>"), Is.EqualTo("`Mesh.ComputeVertexNormals()`"));
            Assert.That(Blocks("<summary><see langword=\"null\"/> or <see href=\"https://example.org/a\">the spec</see></summary>"),
                Is.EqualTo("`null` or [the spec](https://example.org/a)"));
            Assert.That(Blocks("<summary><see cref=\"!:NotThere\"/></summary>"), Is.EqualTo("`NotThere`"));
        });
    }

    [Test]
    public void GenericCrefsReadWithTypeParameters()
    {
        Assert.Multiple(() =>
        {
            Assert.That(XmlDocMarkdown.CrefText("M:Foo.Bar``1(``0)"), Is.EqualTo("Foo.Bar<T>(…)"));
            Assert.That(XmlDocMarkdown.CrefText("M:Foo.Bar``2"), Is.EqualTo("Foo.Bar<T1, T2>()"));
            Assert.That(XmlDocMarkdown.CrefText("T:System.Collections.Generic.List`1"), Is.EqualTo("List<T>"));
            Assert.That(XmlDocMarkdown.CrefText("T:System.Collections.Generic.Dictionary`2"), Is.EqualTo("Dictionary<T1, T2>"));
            Assert.That(XmlDocMarkdown.CrefText("M:System.Collections.Generic.List`1.Add(`0)"), Is.EqualTo("List<T>.Add(…)"));
            Assert.That(XmlDocMarkdown.CrefText("P:LrmNative.Device.Auto"), Is.EqualTo("Device.Auto"));
            Assert.That(XmlDocMarkdown.CrefText("F:LrmNative.DataType.Float32"), Is.EqualTo("DataType.Float32"));
            Assert.That(XmlDocMarkdown.CrefText("M:Foo.op_Implicit(System.Int32)~Foo"), Is.EqualTo("Foo.op_Implicit(…)"));
            Assert.That(Blocks("<summary><see cref=\"M:Foo.Bar``1(``0)\"/></summary>"), Is.EqualTo("`Foo.Bar<T>(…)`"));
        });
    }

    [Test]
    public void InlineMarkupParagraphsAndEscaping()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Blocks("<summary>Scales <paramref name=\"mesh\"/> by <typeparamref name=\"T\"/> with <c>scale  *  2</c>.</summary>"),
                Is.EqualTo("Scales `mesh` by `T` with `scale * 2`."));
            Assert.That(Blocks("<summary>\n    First line\n    continues.\n    <para>Second paragraph.</para>\n    Third.\n</summary>"),
                Is.EqualTo("First line continues.\n\nSecond paragraph.\n\nThird."));
            Assert.That(Blocks("<summary>a*b_c &lt;d&gt; [e] x|y ~1 \\ `t`</summary>"), Is.EqualTo(@"a\*b\_c \<d\> \[e\] x\|y \~1 \\ \`t\`"));
            Assert.That(Blocks("<summary><c>a`b</c></summary>"), Is.EqualTo("`` a`b ``"));
            Assert.That(Blocks("<summary><b>bold</b> and <i>it</i></summary>"), Is.EqualTo("**bold** and *it*"));
        });
    }

    [Test]
    public void ListsBecomeMarkdownLists()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Blocks("<summary>Steps:<list type=\"number\"><item>Load <c>x</c>.</item><item>Save.</item></list>Done.</summary>"),
                Is.EqualTo("Steps:\n\n1. Load `x`.\n2. Save.\n\nDone."));
            Assert.That(Blocks("<summary><list type=\"bullet\"><item><term>fast</term><description>the GPU</description></item><item><term>slow</term><description>the CPU</description></item></list></summary>"),
                Is.EqualTo("- **fast** — the GPU\n- **slow** — the CPU"));
            Assert.That(Blocks("<summary><list type=\"table\"><listheader><term>name</term><description>meaning</description></listheader><item><term>a|b</term><description>one</description></item></list></summary>"),
                Is.EqualTo("| name | meaning |\n| --- | --- |\n| a\\\\|b | one |"));
            Assert.That(Blocks("<summary><list type=\"bullet\"><item>outer<list type=\"bullet\"><item>inner</item></list></item></list></summary>"),
                Is.EqualTo("- outer\n\n  - inner"));
        });
    }

    [Test]
    public void CodeBlocksKeepTheirLinesWithoutTheCommentIndent()
    {
        var xml = "<example>\n    <code>\n    using var image = Image.Load(\"a.png\");\n    if (x &lt; 2)\n        image.SavePng(\"b.png\");\n    </code>\n</example>";
        Assert.That(Blocks(xml), Is.EqualTo("```csharp\nusing var image = Image.Load(\"a.png\");\nif (x < 2)\n    image.SavePng(\"b.png\");\n```"));
    }

    [Test]
    public void FirstSentenceStopsAtTheFirstFullStopOutsideCode()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ApiReference.FirstSentence("One mesh, e.g. a chair. More text."), Is.EqualTo("One mesh, e.g. a chair."));
            Assert.That(ApiReference.FirstSentence("Calls `a. B` first. Then more."), Is.EqualTo("Calls `a. B` first."));
            Assert.That(ApiReference.FirstSentence("Only one."), Is.EqualTo("Only one."));
        });
    }

    private static List<Type> DeclaringChain(Type type)
    {
        var chain = new List<Type>();
        for (Type? t = type; t is not null; t = t.IsNested ? t.DeclaringType : null)
        {
            chain.Insert(0, t);
        }
        return chain;
    }

    /// <summary>Members of every shape the reference must spell (never called).</summary>
#pragma warning disable CA1822, IDE0060, CA1024, CA1034, CA2225, CA1044, CA1003, CA1051, CA1062, CA1065, CA1043, CA1819
    public unsafe class Sample
    {
        public const long Limit = 5;

        public Sample(int size) => Size = size;

        public int Size { get; }

        public string? Name { get; init; }

        public int this[int index] { get => index; protected set { } }

        public event Action<string>? Changed;

        public static T Generic<T>(T value, ref int count, out float[] results, List<T> items, int[,] grid, int* pointer) where T : class
        {
            results = [];
            return value;
        }

        public string? Defaults(string? text = null, float scale = 0.5f, double ratio = 2, DayOfWeek day = DayOfWeek.Monday,
            CancellationToken cancellation = default, params int[] rest) => text;

        public (int Width, (string? Name, long Size) Inner) Pair(in Vector3Like point, IReadOnlyList<string?>? names) => default;

        public static implicit operator Sample(int value) => new(value);

        public override string ToString() => Changed is null ? "" : "changed";

        public sealed class Box<T> : IDisposable where T : new()
        {
            public void Put(T item, int? slot) { }

            public void Dispose() { }
        }

        public sealed record Settings(int Width);
    }

    public readonly record struct Vector3Like(float X, float Y, float Z);
#pragma warning restore CA1822, IDE0060, CA1024, CA1034, CA2225, CA1044, CA1003, CA1051, CA1062, CA1065, CA1043, CA1819
}

/// <summary>Extension methods need a static class of their own.</summary>
public static class ApiReferenceSampleExtensions
{
#pragma warning disable IDE0060
    public static void Spans<T>(this ReadOnlySpan<T> values, Span<float> output) where T : unmanaged { }
#pragma warning restore IDE0060
}
