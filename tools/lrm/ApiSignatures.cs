using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace LrmNative.Cli;

/// <summary>
/// What docs/api.md needs to know about a reflected member: its documentation comment ID (the <c>name</c> of its
/// entry in the compiler's XML documentation file, "ID string" in the C# specification's documentation-comment
/// annex) and its declaration as C# source would write it, with nullable annotations, tuple element names, default
/// values, <c>params</c>, <c>ref</c>/<c>out</c>/<c>in</c> and generic constraints.
/// </summary>
internal static class ApiSignatures
{
    // ---- documentation comment IDs ----

    /// <summary>The documentation ID of a type, e.g. <c>T:LrmNative.Reconstructor</c>.</summary>
    public static string DocumentationId(Type type) => "T:" + IdTypeName(type, inSignature: false);

    /// <summary>The documentation ID of a constructor, method, property, field or event.</summary>
    public static string DocumentationId(MemberInfo member)
    {
        ArgumentNullException.ThrowIfNull(member);
        var owner = IdTypeName(member.DeclaringType!, inSignature: false);
        switch (member)
        {
            case Type type:
                return DocumentationId(type);
            case FieldInfo field:
                return $"F:{owner}.{field.Name}";
            case EventInfo @event:
                return $"E:{owner}.{@event.Name}";
            case PropertyInfo property:
                return $"P:{owner}.{property.Name}{IdParameters(property.GetIndexParameters())}";
            case MethodBase method:
                var name = method.Name.Replace('.', '#');
                var arity = method.IsGenericMethod ? $"``{method.GetGenericArguments().Length}" : "";
                var id = $"M:{owner}.{name}{arity}{IdParameters(method.GetParameters())}";
                if (method is MethodInfo { Name: "op_Implicit" or "op_Explicit" } conversion)
                {
                    id += "~" + IdTypeName(conversion.ReturnType, inSignature: true);
                }
                return id;
            default:
                throw new ArgumentException($"no documentation ID for a {member.MemberType}", nameof(member));
        }
    }

    private static string IdParameters(ParameterInfo[] parameters) => parameters.Length == 0
        ? ""
        : "(" + string.Join(",", parameters.Select(p => IdTypeName(p.ParameterType, inSignature: true))) + ")";

    // A type as the ID grammar spells it: namespace-qualified, '.' between nested types, `N for a generic definition's
    // arity; in a signature, {…} around a constructed type's arguments, `i for a type's and ``i for a method's generic
    // parameter, @ for by-reference, * for a pointer, [] and [0:,0:] for arrays.
    private static string IdTypeName(Type type, bool inSignature)
    {
        if (type.IsGenericParameter)
        {
            return (type.DeclaringMethod is null ? "`" : "``") + type.GenericParameterPosition.ToString(CultureInfo.InvariantCulture);
        }
        if (type.IsByRef)
        {
            return IdTypeName(type.GetElementType()!, inSignature) + "@";
        }
        if (type.IsPointer)
        {
            return IdTypeName(type.GetElementType()!, inSignature) + "*";
        }
        if (type.IsArray)
        {
            var rank = type.GetArrayRank();
            var dimensions = rank == 1 && type.IsSZArray ? "[]" : "[" + string.Join(",", Enumerable.Repeat("0:", rank)) + "]";
            return IdTypeName(type.GetElementType()!, inSignature) + dimensions;
        }
        var arguments = type.IsGenericType && inSignature ? type.GetGenericArguments() : [];
        var used = 0;
        var text = new StringBuilder();
        foreach (var segment in DeclaringChain(type))
        {
            if (text.Length == 0)
            {
                if (!string.IsNullOrEmpty(segment.Namespace))
                {
                    text.Append(segment.Namespace).Append('.');
                }
            }
            else
            {
                text.Append('.');
            }
            var (name, arity) = SplitArity(segment.Name);
            if (arity == 0 || arguments.Length == 0)
            {
                text.Append(segment.Name);
                continue;
            }
            text.Append(name).Append('{')
                .AppendJoin(",", arguments.Skip(used).Take(arity).Select(a => IdTypeName(a, inSignature: true))).Append('}');
            used += arity;
        }
        return text.ToString();
    }

    private static List<Type> DeclaringChain(Type type)
    {
        var definition = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
        var chain = new List<Type>();
        for (Type? segment = definition; segment is not null; segment = segment.IsNested ? segment.DeclaringType : null)
        {
            chain.Insert(0, segment);
        }
        return chain;
    }

    // "List`1" -> ("List", 1); "Camera" -> ("Camera", 0).
    private static (string Name, int Arity) SplitArity(string name)
    {
        var tick = name.IndexOf('`', StringComparison.Ordinal);
        return tick < 0 ? (name, 0) : (name[..tick], int.Parse(name[(tick + 1)..], CultureInfo.InvariantCulture));
    }

    // ---- C# names ----

    private static readonly Dictionary<Type, string> Keywords = new()
    {
        [typeof(bool)] = "bool", [typeof(byte)] = "byte", [typeof(sbyte)] = "sbyte", [typeof(char)] = "char",
        [typeof(decimal)] = "decimal", [typeof(double)] = "double", [typeof(float)] = "float", [typeof(short)] = "short",
        [typeof(ushort)] = "ushort", [typeof(int)] = "int", [typeof(uint)] = "uint", [typeof(long)] = "long",
        [typeof(ulong)] = "ulong", [typeof(nint)] = "nint", [typeof(nuint)] = "nuint", [typeof(object)] = "object",
        [typeof(string)] = "string", [typeof(void)] = "void",
    };

    /// <summary>
    /// A type as C# writes it, without namespace: <c>float[]</c>, <c>IReadOnlyList&lt;string?&gt;?</c>,
    /// <c>(Tensor Sigma, Tensor Rgb)</c>; nested types as <c>Outer.Inner</c>.
    /// </summary>
    public static string TypeName(Type type, NullabilityInfo? nullability = null, IList<string?>? tupleNames = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        var cursor = 0;
        return TypeName(type, nullability, tupleNames, ref cursor);
    }

    private static string TypeName(Type type, NullabilityInfo? nullability, IList<string?>? tupleNames, ref int cursor,
        NullabilityState? state = null)
    {
        if (type.IsByRef)
        {
            return TypeName(type.GetElementType()!, nullability, tupleNames, ref cursor, state);
        }
        var annotation = (state ?? nullability?.ReadState) == NullabilityState.Nullable && !type.IsValueType ? "?" : "";
        if (type.IsGenericParameter)
        {
            // NullabilityInfoContext reports a generic parameter's declared nullability (from its constraints), not the
            // annotation where it is used, so T and T? cannot be told apart here: generic parameters show without '?'.
            return type.Name;
        }
        if (type.IsPointer)
        {
            return TypeName(type.GetElementType()!, null, tupleNames, ref cursor) + "*";
        }
        if (type.IsArray)
        {
            var rank = type.GetArrayRank();
            return TypeName(type.GetElementType()!, nullability?.ElementType, tupleNames, ref cursor)
                + "[" + new string(',', rank - 1) + "]" + annotation;
        }
        if (Keywords.TryGetValue(type, out var keyword))
        {
            return keyword + annotation;
        }
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return TypeName(underlying, nullability?.GenericTypeArguments.FirstOrDefault(), tupleNames, ref cursor) + "?";
        }
        var arguments = type.IsGenericType ? type.GetGenericArguments() : [];
        if (type.IsGenericType && !type.IsGenericTypeDefinition && IsValueTuple(type) && arguments.Length < 8)
        {
            var names = Enumerable.Range(cursor, arguments.Length).Select(i => tupleNames is not null && i < tupleNames.Count ? tupleNames[i] : null).ToArray();
            cursor += arguments.Length;
            var elements = new List<string>();
            for (var i = 0; i < arguments.Length; i++)
            {
                var element = TypeName(arguments[i], ArgumentNullability(nullability, i), tupleNames, ref cursor);
                elements.Add(names[i] is { } name ? $"{element} {name}" : element);
            }
            return "(" + string.Join(", ", elements) + ")" + annotation;
        }
        var used = 0;
        var text = new StringBuilder();
        foreach (var segment in DeclaringChain(type))
        {
            if (text.Length > 0)
            {
                text.Append('.');
            }
            var (name, arity) = SplitArity(segment.Name);
            text.Append(name);
            if (arity > 0)
            {
                var parts = new List<string>();
                for (var i = used; i < used + arity && i < arguments.Length; i++)
                {
                    parts.Add(TypeName(arguments[i], ArgumentNullability(nullability, i), tupleNames, ref cursor));
                }
                text.Append('<').AppendJoin(", ", parts).Append('>');
                used += arity;
            }
        }
        return text.Append(annotation).ToString();
    }

    private static NullabilityInfo? ArgumentNullability(NullabilityInfo? nullability, int index) =>
        nullability is not null && index < nullability.GenericTypeArguments.Length ? nullability.GenericTypeArguments[index] : null;

    private static bool IsValueTuple(Type type) =>
        type.Namespace == "System" && type.Name.StartsWith("ValueTuple`", StringComparison.Ordinal);

    // ---- declarations ----

    /// <summary>A type's declaration line, e.g. <c>public sealed class Mesh</c> or <c>public enum DataType : byte</c>.</summary>
    public static string TypeDeclaration(Type type, IEnumerable<Type> shownBaseTypes)
    {
        ArgumentNullException.ThrowIfNull(type);
        var text = new StringBuilder(type.IsNestedFamily || type.IsNestedFamORAssem ? "protected " : "public ");
        var kind = TypeKind(type);
        if (kind == "delegate")
        {
            var invoke = type.GetMethod("Invoke")!;
            var context = new NullabilityInfoContext();
            return text.Append("delegate ").Append(ReturnTypeName(invoke, context)).Append(' ').Append(OwnName(type))
                .Append('(').AppendJoin(", ", invoke.GetParameters().Select(p => Parameter(p, context, extension: false))).Append(')')
                .Append(Constraints(type.GetGenericArguments())).ToString();
        }
        if (kind == "static class")
        {
            text.Append("static class ");
        }
        else
        {
            if (type.IsClass && type.IsSealed && kind != "delegate")
            {
                text.Append("sealed ");
            }
            else if (type.IsClass && type.IsAbstract)
            {
                text.Append("abstract ");
            }
            if (type.IsValueType && HasAttribute(type, "System.Runtime.CompilerServices.IsReadOnlyAttribute"))
            {
                text.Append("readonly ");
            }
            if (type.IsByRefLike)
            {
                text.Append("ref ");
            }
            text.Append(kind).Append(' ');
        }
        text.Append(OwnName(type));
        if (type.IsEnum)
        {
            var underlying = Enum.GetUnderlyingType(type);
            if (underlying != typeof(int))
            {
                text.Append(" : ").Append(TypeName(underlying));
            }
            return text.ToString();
        }
        var bases = shownBaseTypes.Select(t => TypeName(t)).ToList();
        if (bases.Count > 0)
        {
            text.Append(" : ").AppendJoin(", ", bases);
        }
        return text.Append(Constraints(type.GetGenericArguments())).ToString();
    }

    /// <summary>class, record, struct, record struct, enum, interface, static class or delegate.</summary>
    public static string TypeKind(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (type.IsEnum)
        {
            return "enum";
        }
        if (type.IsInterface)
        {
            return "interface";
        }
        if (typeof(Delegate).IsAssignableFrom(type))
        {
            return "delegate";
        }
        var record = IsRecord(type);
        if (type.IsValueType)
        {
            return record ? "record struct" : "struct";
        }
        if (type.IsAbstract && type.IsSealed)
        {
            return "static class";
        }
        return record ? "record" : "class";
    }

    // The compiler gives every record (class or struct) a PrintMembers method of its own.
    private static bool IsRecord(Type type) => type
        .GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
        .Any(m => m.Name == "PrintMembers" && m.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false));

    /// <summary>A type's name with its generic parameters, nested types as <c>Outer.Inner</c>, e.g. <c>Mesh</c> or <c>Lease&lt;T&gt;</c>.</summary>
    public static string NameWithGenerics(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return TypeName(type.IsGenericType ? type.GetGenericTypeDefinition() : type);
    }

    // The name a declaration uses: the type's own, without its declaring types, with the generic parameters it adds.
    private static string OwnName(Type type)
    {
        var (name, arity) = SplitArity(type.Name);
        var parameters = type.GetGenericArguments();
        return arity == 0 ? name : name + "<" + string.Join(", ", parameters.Skip(parameters.Length - arity).Select(p => p.Name)) + ">";
    }

    /// <summary>The declaration of a constructor, method, property, field or event, as C# writes it.</summary>
    public static string MemberDeclaration(MemberInfo member)
    {
        ArgumentNullException.ThrowIfNull(member);
        var context = new NullabilityInfoContext();
        var inInterface = member.DeclaringType!.IsInterface;
        switch (member)
        {
            case ConstructorInfo constructor:
                return Access(constructor) + (constructor.IsStatic ? "static " : "") + SplitArity(member.DeclaringType.Name).Name
                    + "(" + string.Join(", ", constructor.GetParameters().Select(p => Parameter(p, context, extension: false))) + ")";
            case MethodInfo method:
                {
                    var text = new StringBuilder(inInterface ? "" : Access(method)).Append(MethodModifiers(method, inInterface));
                    var parameters = string.Join(", ", method.GetParameters().Select((p, i) => Parameter(p, context, extension: i == 0 && IsExtension(method))));
                    if (OperatorSymbol(method) is { } symbol)
                    {
                        return symbol is "implicit" or "explicit"
                            ? text.Append(symbol).Append(" operator ").Append(ReturnTypeName(method, context)).Append('(').Append(parameters).Append(')').ToString()
                            : text.Append(ReturnTypeName(method, context)).Append(" operator ").Append(symbol).Append('(').Append(parameters).Append(')').ToString();
                    }
                    text.Append(ReturnTypeName(method, context)).Append(' ').Append(method.Name);
                    if (method.IsGenericMethod)
                    {
                        text.Append('<').AppendJoin(", ", method.GetGenericArguments().Select(a => a.Name)).Append('>');
                    }
                    return text.Append('(').Append(parameters).Append(')')
                        .Append(method.IsGenericMethod ? Constraints(method.GetGenericArguments()) : "").ToString();
                }
            case PropertyInfo property:
                {
                    var getter = Visible(property.GetMethod) ? property.GetMethod : null;
                    var setter = Visible(property.SetMethod) ? property.SetMethod : null;
                    var accessor = (getter ?? setter)!;
                    var text = new StringBuilder(inInterface ? "" : Access(accessor)).Append(MethodModifiers(accessor, inInterface));
                    if (HasAttribute(property, "System.Runtime.CompilerServices.RequiredMemberAttribute"))
                    {
                        text.Append("required ");
                    }
                    // A set-only property's annotation is its write state.
                    var nullability = context.Create(property);
                    var cursor = 0;
                    text.Append(TypeName(property.PropertyType, nullability, TupleNames(property), ref cursor,
                        getter is null ? nullability.WriteState : nullability.ReadState));
                    var index = property.GetIndexParameters();
                    text.Append(' ').Append(index.Length == 0 ? property.Name : "this[" + string.Join(", ", index.Select(p => Parameter(p, context, extension: false))) + "]");
                    text.Append(" {");
                    if (getter is not null)
                    {
                        text.Append(AccessorAccess(getter, accessor)).Append(" get;");
                    }
                    if (setter is not null)
                    {
                        var init = setter.ReturnParameter.GetRequiredCustomModifiers().Any(m => m.FullName == "System.Runtime.CompilerServices.IsExternalInit");
                        text.Append(AccessorAccess(setter, accessor)).Append(init ? " init;" : " set;");
                    }
                    return text.Append(" }").ToString();
                }
            case FieldInfo field:
                {
                    var text = new StringBuilder(Access(field));
                    var type = TypeName(field.FieldType, context.Create(field), TupleNames(field));
                    if (field.IsLiteral)
                    {
                        return text.Append("const ").Append(type).Append(' ').Append(field.Name).Append(" = ")
                            .Append(Literal(field.GetRawConstantValue(), field.FieldType)).ToString();
                    }
                    text.Append(field.IsStatic ? "static " : "").Append(field.IsInitOnly ? "readonly " : "");
                    return text.Append(type).Append(' ').Append(field.Name).ToString();
                }
            case EventInfo @event:
                {
                    var add = @event.AddMethod!;
                    return new StringBuilder(inInterface ? "" : Access(add)).Append(MethodModifiers(add, inInterface)).Append("event ")
                        .Append(TypeName(@event.EventHandlerType!, context.Create(@event))).Append(' ').Append(@event.Name).ToString();
                }
            default:
                throw new ArgumentException($"no declaration for a {member.MemberType}", nameof(member));
        }
    }

    /// <summary>
    /// A short title for a member: its name and parameter types, e.g. <c>Reconstruct(Image, CancellationToken)</c>,
    /// <c>Mesh(float[], int[], float[]?)</c> for a constructor, <c>this[int]</c>, <c>operator ==(Device, Device)</c>.
    /// </summary>
    public static string MemberTitle(MemberInfo member)
    {
        ArgumentNullException.ThrowIfNull(member);
        var context = new NullabilityInfoContext();
        string List(ParameterInfo[] parameters) => string.Join(", ", parameters.Select(p => ParameterTypeName(p, context)));
        return member switch
        {
            ConstructorInfo constructor => $"{SplitArity(member.DeclaringType!.Name).Name}({List(constructor.GetParameters())})",
            MethodInfo method when OperatorSymbol(method) is { } symbol => symbol is "implicit" or "explicit"
                ? $"{symbol} operator {ReturnTypeName(method, context)}({List(method.GetParameters())})"
                : $"operator {symbol}({List(method.GetParameters())})",
            MethodInfo method => method.Name + (method.IsGenericMethod ? "<" + string.Join(", ", method.GetGenericArguments().Select(a => a.Name)) + ">" : "")
                + $"({List(method.GetParameters())})",
            PropertyInfo property when property.GetIndexParameters().Length > 0 => $"this[{List(property.GetIndexParameters())}]",
            _ => member.Name,
        };
    }

    private static string ParameterTypeName(ParameterInfo parameter, NullabilityInfoContext context)
    {
        var prefix = parameter.ParameterType.IsByRef ? RefKind(parameter) : "";
        return prefix + TypeName(parameter.ParameterType, context.Create(parameter), TupleNames(parameter));
    }

    private static string Parameter(ParameterInfo parameter, NullabilityInfoContext context, bool extension)
    {
        var text = new StringBuilder();
        if (extension)
        {
            text.Append("this ");
        }
        if (parameter.IsDefined(typeof(ParamArrayAttribute), inherit: false) || HasAttribute(parameter, "System.Runtime.CompilerServices.ParamCollectionAttribute"))
        {
            text.Append("params ");
        }
        text.Append(ParameterTypeName(parameter, context)).Append(' ').Append(parameter.Name);
        if (parameter.HasDefaultValue)
        {
            text.Append(" = ").Append(Literal(parameter.RawDefaultValue, parameter.ParameterType));
        }
        return text.ToString();
    }

    private static string RefKind(ParameterInfo parameter)
    {
        if (parameter.IsOut)
        {
            return "out ";
        }
        if (HasAttribute(parameter, "System.Runtime.CompilerServices.RequiresLocationAttribute"))
        {
            return "ref readonly ";
        }
        return parameter.IsIn || HasAttribute(parameter, "System.Runtime.CompilerServices.IsReadOnlyAttribute") ? "in " : "ref ";
    }

    private static string ReturnTypeName(MethodInfo method, NullabilityInfoContext context)
    {
        var prefix = "";
        if (method.ReturnType.IsByRef)
        {
            prefix = HasAttribute(method.ReturnParameter, "System.Runtime.CompilerServices.IsReadOnlyAttribute") ? "ref readonly " : "ref ";
        }
        return prefix + TypeName(method.ReturnType, context.Create(method.ReturnParameter), TupleNames(method.ReturnParameter));
    }

    /// <summary>A constant or default value as a C# literal: <c>null</c>, <c>default</c>, <c>0.5f</c>, <c>"glb"</c>, <c>ResizeMode.Bicubic</c>.</summary>
    public static string Literal(object? value, Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (type.IsByRef)
        {
            type = type.GetElementType()!;
        }
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (value is null or DBNull or Missing)
        {
            return type.IsValueType && Nullable.GetUnderlyingType(type) is null ? "default" : "null";
        }
        if (target.IsEnum)
        {
            var boxed = Enum.ToObject(target, value);
            return Enum.GetName(target, boxed) is { } name
                ? $"{TypeName(target)}.{name}"
                : $"({TypeName(target)}){Convert.ToString(value, CultureInfo.InvariantCulture)}";
        }
        return value switch
        {
            bool b => b ? "true" : "false",
            string s => "\"" + Escape(s, '"') + "\"",
            char c => "'" + Escape(c.ToString(), '\'') + "'",
            float f => float.IsFinite(f) ? f.ToString("R", CultureInfo.InvariantCulture) + "f"
                : float.IsNaN(f) ? "float.NaN" : f > 0 ? "float.PositiveInfinity" : "float.NegativeInfinity",
            double d => double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) + (d == Math.Floor(d) && !d.ToString("R", CultureInfo.InvariantCulture).Contains('E', StringComparison.Ordinal) ? ".0" : "")
                : double.IsNaN(d) ? "double.NaN" : d > 0 ? "double.PositiveInfinity" : "double.NegativeInfinity",
            decimal m => m.ToString(CultureInfo.InvariantCulture) + "m",
            long l => l.ToString(CultureInfo.InvariantCulture) + "L",
            ulong u => u.ToString(CultureInfo.InvariantCulture) + "UL",
            uint u => u.ToString(CultureInfo.InvariantCulture) + "U",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
    }

    private static string Escape(string text, char quote)
    {
        var escaped = new StringBuilder();
        foreach (var c in text)
        {
            escaped.Append(c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\0' => "\\0",
                _ when c == quote => "\\" + c,
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return escaped.ToString();
    }

    private static string Constraints(Type[] parameters)
    {
        var text = new StringBuilder();
        foreach (var parameter in parameters.Where(p => p.IsGenericParameter))
        {
            var attributes = parameter.GenericParameterAttributes;
            var parts = new List<string>();
            var isStruct = attributes.HasFlag(GenericParameterAttributes.NotNullableValueTypeConstraint);
            if (isStruct)
            {
                parts.Add(HasAttribute(parameter, "System.Runtime.CompilerServices.IsUnmanagedAttribute") ? "unmanaged" : "struct");
            }
            else if (attributes.HasFlag(GenericParameterAttributes.ReferenceTypeConstraint))
            {
                parts.Add("class");
            }
            parts.AddRange(parameter.GetGenericParameterConstraints().Where(c => !(isStruct && c == typeof(ValueType))).Select(c => TypeName(c)).Order(StringComparer.Ordinal));
            if (attributes.HasFlag(GenericParameterAttributes.DefaultConstructorConstraint) && !isStruct)
            {
                parts.Add("new()");
            }
            if (attributes.HasFlag(GenericParameterAttributes.AllowByRefLike))
            {
                parts.Add("allows ref struct");
            }
            if (parts.Count > 0)
            {
                text.Append(" where ").Append(parameter.Name).Append(" : ").AppendJoin(", ", parts);
            }
        }
        return text.ToString();
    }

    private static string Access(MethodBase method) => method.IsPublic ? "public " : method.IsFamilyOrAssembly || method.IsFamily ? "protected " : "";

    private static string Access(FieldInfo field) => field.IsPublic ? "public " : field.IsFamilyOrAssembly || field.IsFamily ? "protected " : "";

    // " protected" before an accessor less visible than its property.
    private static string AccessorAccess(MethodInfo accessor, MethodInfo widest) =>
        accessor.IsPublic == widest.IsPublic ? "" : " protected";

    /// <summary>Whether code outside the assembly can call <paramref name="method"/> (public or protected).</summary>
    public static bool Visible(MethodBase? method) => method is not null && (method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly);

    private static string MethodModifiers(MethodInfo method, bool inInterface)
    {
        if (method.IsStatic)
        {
            return inInterface && method.IsAbstract ? "static abstract " : "static ";
        }
        if (inInterface)
        {
            return "";
        }
        var overrides = method.GetBaseDefinition().DeclaringType != method.DeclaringType;
        if (method.IsAbstract)
        {
            return "abstract ";
        }
        if (overrides)
        {
            return method.IsFinal ? "sealed override " : "override ";
        }
        return method.IsVirtual && !method.IsFinal ? "virtual " : "";
    }

    private static bool IsExtension(MethodInfo method) => method.IsStatic && method.IsDefined(typeof(ExtensionAttribute), inherit: false);

    /// <summary>The C# operator a method named <c>op_…</c> declares, or null.</summary>
    public static string? OperatorSymbol(MethodInfo method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return !method.IsSpecialName ? null : method.Name switch
        {
            "op_Implicit" => "implicit",
            "op_Explicit" => "explicit",
            "op_Equality" => "==",
            "op_Inequality" => "!=",
            "op_LessThan" => "<",
            "op_GreaterThan" => ">",
            "op_LessThanOrEqual" => "<=",
            "op_GreaterThanOrEqual" => ">=",
            "op_Addition" or "op_UnaryPlus" => "+",
            "op_Subtraction" or "op_UnaryNegation" => "-",
            "op_Multiply" => "*",
            "op_Division" => "/",
            "op_Modulus" => "%",
            "op_BitwiseAnd" => "&",
            "op_BitwiseOr" => "|",
            "op_ExclusiveOr" => "^",
            "op_LogicalNot" => "!",
            "op_OnesComplement" => "~",
            "op_Increment" => "++",
            "op_Decrement" => "--",
            "op_True" => "true",
            "op_False" => "false",
            "op_LeftShift" => "<<",
            "op_RightShift" => ">>",
            "op_UnsignedRightShift" => ">>>",
            _ => null,
        };
    }

    private static IList<string?>? TupleNames(ICustomAttributeProvider provider) =>
        provider.GetCustomAttributes(typeof(TupleElementNamesAttribute), inherit: false).OfType<TupleElementNamesAttribute>().FirstOrDefault()?.TransformNames;

    private static bool HasAttribute(ICustomAttributeProvider provider, string fullName) => provider switch
    {
        MemberInfo member => member.CustomAttributes.Any(a => a.AttributeType.FullName == fullName),
        ParameterInfo parameter => parameter.CustomAttributes.Any(a => a.AttributeType.FullName == fullName),
        _ => false,
    };
}
