using System.Globalization;
using System.Text;

namespace KvFusion.Engine.Chat;

internal sealed partial class Builtins
{
    public static object? ApplyFilter(string name, object? value, List<object?> args, Dictionary<string, object?> named, Node at)
    {
        try
        {
            return Filter(name, value, args, named, at);
        }
        catch (PyError e)
        {
            throw new ChatTemplateException($"Filter '{name}': {e.Message}", at.Line, at.Column);
        }
    }

    private static object? Arg(List<object?> args, Dictionary<string, object?> named, int position, string name, object? fallback) =>
        named.TryGetValue(name, out var v) ? v : position < args.Count ? args[position] : fallback;

    private static object? Filter(string name, object? value, List<object?> args, Dictionary<string, object?> named, Node at)
    {
        switch (name)
        {
            case "trim":
                return Strip(Py.Str(value), Arg(args, named, 0, "chars", null) as string, true, true);
            case "length" or "count":
                return value switch
                {
                    string s => (long)Py.CodePointLength(s),
                    Undefined => 0L,
                    List<object?> or PyTuple => (long)Py.Items(value).Count,
                    OrderedDictionary<object, object?> d => (long)d.Count,
                    _ => throw new PyError($"object of type '{Py.TypeName(value)}' has no len()"),
                };
            case "upper":
                return Py.Str(value).ToUpperInvariant();
            case "lower":
                return Py.Str(value).ToLowerInvariant();
            case "capitalize":
                return Capitalize(Py.Str(value));
            case "title":
                return JinjaTitle(Py.Str(value));
            case "default" or "d":
                var fallback = Arg(args, named, 0, "default_value", "");
                var boolean = Py.Truthy(Arg(args, named, 1, "boolean", false));
                return value is Undefined || (boolean && !Py.Truthy(value)) ? fallback : value;
            case "join":
                var separator = Py.Str(Arg(args, named, 0, "d", ""));
                var attribute = Arg(args, named, 1, "attribute", null);
                var joined = new StringBuilder();
                var firstItem = true;
                foreach (var item in Interpreter.Iterate(value, at))
                {
                    if (!firstItem)
                    {
                        joined.Append(separator);
                    }

                    firstItem = false;
                    joined.Append(Py.Str(attribute is null ? item : GetPath(item, attribute, at)));
                }

                return joined.ToString();
            case "tojson":
                return ToJson(value, args, named);
            case "string" or "safe":
                return Py.Str(value);
            case "int":
                return ToInt(value, Arg(args, named, 0, "default", 0L));
            case "float":
                return ToFloat(value, Arg(args, named, 0, "default", 0.0));
            case "abs":
                return value switch
                {
                    long l => (object)Math.Abs(l),
                    double f => Math.Abs(f),
                    bool b => b ? 1L : 0L,
                    _ => throw new PyError($"bad operand type for abs(): '{Py.TypeName(value)}'"),
                };
            case "first":
                var firstItems = Interpreter.Iterate(value, at);
                return firstItems.Count > 0 ? firstItems[0] : new Undefined("No first item, sequence was empty.");
            case "last":
                var lastItems = value is OrderedDictionary<object, object?> ? throw new PyError("'dict' object is not reversible") : Interpreter.Iterate(value, at);
                return lastItems.Count > 0 ? lastItems[^1] : new Undefined("No last item, sequence was empty.");
            case "list":
                return Interpreter.Iterate(value, at);
            case "items":
                if (value is Undefined)
                {
                    return new List<object?>();
                }

                if (value is not OrderedDictionary<object, object?> mapping)
                {
                    throw new PyError($"Can only get item pairs from a mapping, not '{Py.TypeName(value)}'.");
                }

                return mapping.Select(p => (object?)new PyTuple([p.Key, p.Value])).ToList();
            case "replace":
                return Replace(Py.Str(value), Py.Str(Arg(args, named, 0, "old", "")), Py.Str(Arg(args, named, 1, "new", "")), Arg(args, named, 2, "count", null));
            case "map":
                return Map(value, args, named, at);
            case "select" or "reject":
                return Select(value, args, name == "select", null, at);
            case "selectattr" or "rejectattr":
                if (args.Count == 0 || args[0] is not string attr)
                {
                    throw new PyError("needs the attribute name as its first argument.");
                }

                return Select(value, args[1..], name == "selectattr", attr, at);
            default:
                throw new PyError("is not supported.");
        }
    }

    private static object? GetPath(object? item, object attribute, Node at)
    {
        if (attribute is long or bool)
        {
            return item is List<object?> or PyTuple && Py.Items(item) is var items && Py.AsLong(attribute) < items.Count ? items[(int)Py.AsLong(attribute)] : new Undefined($"no item {attribute}");
        }

        var current = item;
        foreach (var part in Py.Str(attribute).Split('.'))
        {
            current = current switch
            {
                OrderedDictionary<object, object?> d => d.TryGetValue(part, out var v) ? v : new Undefined($"'dict object' has no attribute '{part}'"),
                Namespace ns => ns.Attributes.TryGetValue(part, out var v) ? v : new Undefined($"'Namespace object' has no attribute '{part}'"),
                Undefined u => throw Interpreter.Fail(at, $"{u.Description}; cannot read its attribute '{part}'."),
                _ => new Undefined($"'{Py.TypeName(current)} object' has no attribute '{part}'"),
            };
        }

        return current;
    }

    private static List<object?> Map(object? value, List<object?> args, Dictionary<string, object?> named, Node at)
    {
        var items = Interpreter.Iterate(value, at);
        if (named.TryGetValue("attribute", out var attribute))
        {
            var hasDefault = named.TryGetValue("default", out var dflt);
            return items.Select(i =>
            {
                var v = GetPath(i, attribute!, at);
                return v is Undefined && hasDefault ? dflt : v;
            }).ToList();
        }

        if (args.Count == 0 || args[0] is not string filter)
        {
            throw new PyError("needs attribute= or a filter name.");
        }

        if (!IsFilter(filter))
        {
            throw new PyError($"the filter '{filter}' is not supported by the chat template interpreter.");
        }

        return items.Select(i => Filter(filter, i, args[1..], [], at)).ToList();
    }

    private static List<object?> Select(object? value, List<object?> args, bool keep, string? attribute, Node at)
    {
        var result = new List<object?>();
        foreach (var item in Interpreter.Iterate(value, at))
        {
            var subject = attribute is null ? item : GetPath(item, attribute, at);
            bool passed;
            if (args.Count == 0)
            {
                passed = Py.Truthy(subject);
            }
            else
            {
                if (args[0] is not string test || !IsTest(test))
                {
                    throw new PyError($"the test {Py.Repr(args[0])} is not supported by the chat template interpreter.");
                }

                passed = Test(test, subject, args[1..], at);
            }

            if (passed == keep)
            {
                result.Add(item);
            }
        }

        return result;
    }

    public static bool ApplyTest(string name, object? value, List<object?> args, Node at)
    {
        try
        {
            return Test(name, value, args, at);
        }
        catch (PyError e)
        {
            throw new ChatTemplateException($"Test '{name}': {e.Message}", at.Line, at.Column);
        }
    }

    private static bool Test(string name, object? value, List<object?> args, Node at)
    {
        object? Other() => args.Count > 0 ? args[0] : throw new PyError("needs an argument.");
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string,
            "mapping" => value is OrderedDictionary<object, object?>,
            "iterable" => value is string or List<object?> or PyTuple or OrderedDictionary<object, object?> or Undefined,
            "sequence" => value is string or List<object?> or PyTuple or OrderedDictionary<object, object?>,
            "number" => value is long or double or bool,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "equalto" or "eq" or "==" => Py.AreEqual(value, Other()),
            "ne" or "!=" => !Py.AreEqual(value, Other()),
            "lt" or "<" => Compare("<", value, Other(), at),
            "le" or "<=" => Compare("<=", value, Other(), at),
            "gt" or ">" => Compare(">", value, Other(), at),
            "ge" or ">=" => Compare(">=", value, Other(), at),
            "in" => Contains(Other(), value, at),
            "odd" => value is long l ? l % 2 != 0 : throw new PyError("needs an integer."),
            "even" => value is long e ? e % 2 == 0 : throw new PyError("needs an integer."),
            "divisibleby" => value is long n && Other() is long d ? d != 0 && n % d == 0 : throw new PyError("needs integers."),
            "sameas" => ReferenceEquals(value, Other()) || (value is null && Other() is null) || (value is bool b && Other() is bool c && b == c),
            "callable" => value is PyFunction,
            "lower" => value is string s && string.Equals(s.ToLowerInvariant(), s, StringComparison.Ordinal),
            "upper" => value is string u && string.Equals(u.ToUpperInvariant(), u, StringComparison.Ordinal),
            _ => throw new PyError("is not supported."),
        };
    }

    private static object? ToInt(object? value, object? fallback)
    {
        switch (value)
        {
            case bool b:
                return b ? 1L : 0L;
            case long l:
                return l;
            case double d when !double.IsNaN(d) && !double.IsInfinity(d):
                return (long)Math.Truncate(d);
            case string s:
                var t = s.Trim().Replace("_", "", StringComparison.Ordinal);
                if (long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed))
                {
                    return parsed;
                }

                if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && !double.IsNaN(f) && !double.IsInfinity(f))
                {
                    return (long)Math.Truncate(f);
                }

                return fallback;
            default:
                return fallback;
        }
    }

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        bool b => (object)(b ? 1.0 : 0.0),
        long l => (double)l,
        double d => d,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) => f,
        _ => fallback,
    };

    private static string Replace(string s, string old, string replacement, object? count)
    {
        var max = count is long or bool ? Py.AsLong(count) : -1;
        if (max < 0)
        {
            return old.Length == 0 ? InsertEverywhere(s, replacement, long.MaxValue) : s.Replace(old, replacement, StringComparison.Ordinal);
        }

        if (old.Length == 0)
        {
            return InsertEverywhere(s, replacement, max);
        }

        var sb = new StringBuilder();
        var pos = 0;
        for (long n = 0; n < max; n++)
        {
            var at = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            sb.Append(s, pos, at - pos).Append(replacement);
            pos = at + old.Length;
        }

        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static string InsertEverywhere(string s, string insert, long max)
    {
        var sb = new StringBuilder();
        long n = 0;
        foreach (var c in Py.CodePoints(s))
        {
            if (n++ < max)
            {
                sb.Append(insert);
            }

            sb.Append((string)c!);
        }

        if (n < max)
        {
            sb.Append(insert);
        }

        return sb.ToString();
    }

    internal static string Strip(string s, string? chars, bool left, bool right)
    {
        var start = 0;
        var end = s.Length;
        bool Strippable(char c) => chars is null ? Py.IsSpace(c) : chars.Contains(c, StringComparison.Ordinal);
        if (left)
        {
            while (start < end && Strippable(s[start]))
            {
                start++;
            }
        }

        if (right)
        {
            while (end > start && Strippable(s[end - 1]))
            {
                end--;
            }
        }

        return s[start..end];
    }

    private static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>jinja2's <c>title</c> filter: each word (split at whitespace, '-', brackets) capitalized.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        var wordStart = true;
        foreach (var c in s)
        {
            if (char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<')
            {
                sb.Append(c);
                wordStart = true;
            }
            else
            {
                sb.Append(wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
                wordStart = false;
            }
        }

        return sb.ToString();
    }

    /// <summary>Python's <c>str.title()</c>: a letter after a non-letter is upper case, the others lower case.</summary>
    private static string PythonTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }

        return sb.ToString();
    }

    /// <summary>transformers' <c>tojson</c>: <c>json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)</c>.</summary>
    private static string ToJson(object? value, List<object?> args, Dictionary<string, object?> named)
    {
        var ensureAscii = Py.Truthy(Arg(args, named, 0, "ensure_ascii", false));
        var indentValue = Arg(args, named, 1, "indent", null);
        var separators = Arg(args, named, 2, "separators", null);
        var sortKeys = Py.Truthy(Arg(args, named, 3, "sort_keys", false));
        string? indent = indentValue switch
        {
            null => null,
            long n => new string(' ', (int)Math.Max(0, n)),
            string s => s,
            _ => throw new PyError("indent must be an integer or a string."),
        };
        var itemSeparator = indent is null ? ", " : ",";
        var keySeparator = ": ";
        if (separators is not null)
        {
            if (separators is not (List<object?> or PyTuple) || Py.Items(separators) is not [string i, string k])
            {
                throw new PyError("separators must be a pair of strings.");
            }

            itemSeparator = i;
            keySeparator = k;
        }

        var sb = new StringBuilder();
        new JsonDumper(sb, indent, itemSeparator, keySeparator, sortKeys, ensureAscii).Write(value, 0);
        return sb.ToString();
    }

    private sealed class JsonDumper(StringBuilder sb, string? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii)
    {
        public void Write(object? value, int depth)
        {
            if (depth > 100)
            {
                throw new PyError("the value is nested too deeply.");
            }

            switch (value)
            {
                case null:
                    sb.Append("null");
                    break;
                case bool b:
                    sb.Append(b ? "true" : "false");
                    break;
                case long l:
                    sb.Append(l.ToString(CultureInfo.InvariantCulture));
                    break;
                case double d:
                    sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Py.FloatRepr(d));
                    break;
                case string s:
                    WriteString(s);
                    break;
                case List<object?> or PyTuple:
                    var items = Py.Items(value);
                    if (items.Count == 0)
                    {
                        sb.Append("[]");
                        break;
                    }

                    sb.Append('[');
                    for (var i = 0; i < items.Count; i++)
                    {
                        sb.Append(i == 0 ? "" : itemSeparator);
                        NewLine(depth + 1);
                        Write(items[i], depth + 1);
                    }

                    NewLine(depth);
                    sb.Append(']');
                    break;
                case OrderedDictionary<object, object?> dict:
                    if (dict.Count == 0)
                    {
                        sb.Append("{}");
                        break;
                    }

                    IEnumerable<KeyValuePair<object, object?>> pairs = dict;
                    if (sortKeys)
                    {
                        pairs = dict.OrderBy(p => p.Key, Comparer<object>.Create((x, y) => Py.Order(x, y) ?? throw new PyError("keys of different types cannot be sorted.")));
                    }

                    sb.Append('{');
                    var first = true;
                    foreach (var (k, v) in pairs)
                    {
                        sb.Append(first ? "" : itemSeparator);
                        first = false;
                        NewLine(depth + 1);
                        WriteString(k switch
                        {
                            string s => s,
                            bool b => b ? "true" : "false",
                            long l => l.ToString(CultureInfo.InvariantCulture),
                            double f => Py.FloatRepr(f),
                            _ => throw new PyError($"keys must be str, int, float or bool, not {Py.TypeName(k)}"),
                        });
                        sb.Append(keySeparator);
                        Write(v, depth + 1);
                    }

                    NewLine(depth);
                    sb.Append('}');
                    break;
                default:
                    throw new PyError($"Object of type {Py.TypeName(value)} is not JSON serializable");
            }
        }

        private void NewLine(int depth)
        {
            if (indent is null)
            {
                return;
            }

            sb.Append('\n');
            for (var i = 0; i < depth; i++)
            {
                sb.Append(indent);
            }
        }

        private void WriteString(string s)
        {
            sb.Append('"');
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20 || (ensureAscii && c > 0x7e))
                        {
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        }
                        else
                        {
                            sb.Append(c);
                        }

                        break;
                }
            }

            sb.Append('"');
        }
    }
}
