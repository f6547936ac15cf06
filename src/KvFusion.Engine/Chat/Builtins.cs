using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace KvFusion.Engine.Chat;

/// <summary>An error raised inside a builtin; the interpreter adds the position of the expression that called it.</summary>
internal sealed class PyError(string message, bool raisedByTemplate = false) : Exception(message)
{
    public bool RaisedByTemplate { get; } = raisedByTemplate;
}

/// <summary>The globals, filters, tests, methods and operators of the supported Jinja subset, with Python's semantics.</summary>
internal sealed partial class Builtins
{
    private static readonly HashSet<string> Filters = new(StringComparer.Ordinal)
    {
        "trim", "length", "count", "upper", "lower", "title", "capitalize", "default", "d", "join", "tojson", "string",
        "int", "float", "abs", "first", "last", "list", "map", "select", "reject", "selectattr", "rejectattr", "items",
        "replace", "safe",
    };

    private static readonly HashSet<string> Tests = new(StringComparer.Ordinal)
    {
        "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
        "boolean", "true", "false", "equalto", "eq", "==", "ne", "!=", "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "in",
        "odd", "even", "divisibleby", "sameas", "callable", "lower", "upper",
    };

    // Python methods that exist but are not implemented here: naming them gives a clear error instead of an undefined.
    private static readonly HashSet<string> StrMethods = new(StringComparer.Ordinal)
    {
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map",
        "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
        "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
        "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
    };

    private static readonly HashSet<string> DictMethods = new(StringComparer.Ordinal)
    {
        "clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values",
    };

    private static readonly HashSet<string> ListMethods = new(StringComparer.Ordinal)
    {
        "append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort",
    };

    private readonly Func<DateTime> _clock;

    public Builtins(Func<DateTime> clock)
    {
        _clock = clock;
        Globals = new Dictionary<string, PyFunction>(StringComparer.Ordinal)
        {
            ["raise_exception"] = new("raise_exception", (a, _) => throw new PyError(a.Count > 0 ? Py.Str(a[0]) : "raise_exception() was called.", true)),
            ["strftime_now"] = new("strftime_now", (a, _) => Strftime(_clock(), a.Count > 0 && a[0] is string f ? f : throw new PyError("strftime_now() takes a format string."))),
            ["namespace"] = new("namespace", (a, n) => MakeNamespace(a, n)),
            ["range"] = new("range", (a, _) => Range(a)),
            ["dict"] = new("dict", (a, n) => MakeDict(a, n)),
        };
    }

    public Dictionary<string, PyFunction> Globals { get; }

    public static bool IsFilter(string name) => Filters.Contains(name);

    public static bool IsTest(string name) => Tests.Contains(name);

    /// <summary>Converts a .NET value given by the caller into the interpreter's values.</summary>
    public static object? ToValue(object? value) => value switch
    {
        null => null,
        Undefined or PyFunction or Namespace => value,
        string s => s,
        bool b => b,
        int i => (object)(long)i,
        long l => l,
        short s16 => (long)s16,
        byte u8 => (long)u8,
        uint u32 => (long)u32,
        float f => (double)f,
        double d => d,
        decimal m => (double)m,
        ChatTemplateMessage message => FromMessage(message),
        JsonElement json => FromJson(json),
        IDictionary<string, object?> dict => FromPairs(dict),
        IReadOnlyDictionary<string, object?> dict => FromPairs(dict),
        IDictionary dict => FromDictionary(dict),
        IEnumerable items => FromEnumerable(items),
        _ => throw new ChatTemplateException($"A value of type {value.GetType().Name} cannot be passed to a chat template."),
    };

    private static OrderedDictionary<object, object?> FromMessage(ChatTemplateMessage message)
    {
        var dict = Py.NewDict();
        dict["role"] = message.Role;
        dict["content"] = message.Content;
        if (message.Extra is not null)
        {
            foreach (var (k, v) in message.Extra)
            {
                dict[k] = ToValue(v);
            }
        }

        return dict;
    }

    private static OrderedDictionary<object, object?> FromPairs(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var dict = Py.NewDict();
        foreach (var (k, v) in pairs)
        {
            dict[k] = ToValue(v);
        }

        return dict;
    }

    private static OrderedDictionary<object, object?> FromDictionary(IDictionary source)
    {
        var dict = Py.NewDict();
        foreach (DictionaryEntry e in source)
        {
            dict[ToValue(e.Key) ?? throw new ChatTemplateException("A dict key passed to a chat template is null.")] = ToValue(e.Value);
        }

        return dict;
    }

    private static List<object?> FromEnumerable(IEnumerable items)
    {
        var list = new List<object?>();
        foreach (var item in items)
        {
            list.Add(ToValue(item));
        }

        return list;
    }

    public static object? FromJson(JsonElement json)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.Object:
                var dict = Py.NewDict();
                foreach (var p in json.EnumerateObject())
                {
                    dict[p.Name] = FromJson(p.Value);
                }

                return dict;
            case JsonValueKind.Array:
                var list = new List<object?>();
                foreach (var item in json.EnumerateArray())
                {
                    list.Add(FromJson(item));
                }

                return list;
            case JsonValueKind.String:
                return json.GetString();
            case JsonValueKind.Number:
                return json.TryGetInt64(out var l) ? l : (object)json.GetDouble();
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }

    public static object? Invoke(PyFunction fn, List<object?> positional, Dictionary<string, object?> named, Node at)
    {
        try
        {
            return fn.Invoke(positional, named);
        }
        catch (PyError e)
        {
            throw new ChatTemplateException(e.Message, at.Line, at.Column) { RaisedByTemplate = e.RaisedByTemplate };
        }
    }

    private static Namespace MakeNamespace(List<object?> positional, Dictionary<string, object?> named)
    {
        var ns = new Namespace();
        foreach (var p in positional)
        {
            if (p is not OrderedDictionary<object, object?> d)
            {
                throw new PyError("namespace() takes keyword arguments or a dict.");
            }

            foreach (var (k, v) in d)
            {
                ns.Attributes[Py.Str(k)] = v;
            }
        }

        foreach (var (k, v) in named)
        {
            ns.Attributes[k] = v;
        }

        return ns;
    }

    private static OrderedDictionary<object, object?> MakeDict(List<object?> positional, Dictionary<string, object?> named)
    {
        var dict = Py.NewDict();
        if (positional.Count > 0 && positional[0] is OrderedDictionary<object, object?> source)
        {
            foreach (var (k, v) in source)
            {
                dict[k] = v;
            }
        }

        foreach (var (k, v) in named)
        {
            dict[k] = v;
        }

        return dict;
    }

    private static List<object?> Range(List<object?> a)
    {
        if (a.Count is < 1 or > 3 || a.Exists(x => x is not (long or bool)))
        {
            throw new PyError("range() takes one to three integers.");
        }

        long start = 0, stop, step = 1;
        if (a.Count == 1)
        {
            stop = Py.AsLong(a[0]);
        }
        else
        {
            start = Py.AsLong(a[0]);
            stop = Py.AsLong(a[1]);
            if (a.Count == 3)
            {
                step = Py.AsLong(a[2]);
            }
        }

        if (step == 0)
        {
            throw new PyError("range() arg 3 must not be zero.");
        }

        var list = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (list.Count >= 1_000_000)
            {
                throw new PyError("range() is limited to a million items in chat templates.");
            }

            list.Add(i);
        }

        return list;
    }

    /// <summary>jinja2's <c>obj.name</c>: the Python attribute (a method) first, then the item.</summary>
    public static object? GetAttribute(object? target, string name, Node at)
    {
        switch (target)
        {
            case Undefined u:
                throw Interpreter.Fail(at, $"{u.Description}; cannot read its attribute '{name}'.");
            case OrderedDictionary<object, object?> dict:
                if (DictMethods.Contains(name))
                {
                    return Method(dict, name, at);
                }

                return dict.TryGetValue(name, out var value) ? value : new Undefined($"'dict object' has no attribute '{name}'");
            case string s:
                return StrMethods.Contains(name) ? Method(s, name, at) : new Undefined($"'str object' has no attribute '{name}'");
            case List<object?> list:
                return ListMethods.Contains(name) ? Method(list, name, at) : new Undefined($"'list object' has no attribute '{name}'");
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var attr) ? attr : new Undefined($"'Namespace object' has no attribute '{name}'");
            case LoopState loop:
                return LoopAttribute(loop, name);
            default:
                return new Undefined($"'{Py.TypeName(target)} object' has no attribute '{name}'");
        }
    }

    private static object? LoopAttribute(LoopState loop, string name)
    {
        var n = loop.Items.Count;
        var i = loop.Index0;
        return name switch
        {
            "index" => (long)(i + 1),
            "index0" => (long)i,
            "revindex" => (long)(n - i),
            "revindex0" => (long)(n - i - 1),
            "first" => i == 0,
            "last" => i == n - 1,
            "length" => (long)n,
            "depth" => 1L,
            "depth0" => 0L,
            "previtem" => i > 0 ? loop.Items[i - 1] : new Undefined("there is no previous item"),
            "nextitem" => i < n - 1 ? loop.Items[i + 1] : new Undefined("there is no next item"),
            "cycle" => new PyFunction("cycle", (a, _) => a.Count == 0 ? throw new PyError("loop.cycle() needs at least one value.") : a[i % a.Count]),
            _ => new Undefined($"'LoopContext object' has no attribute '{name}'"),
        };
    }

    /// <summary>jinja2's <c>obj[key]</c>: the item first, then the attribute.</summary>
    public static object? GetItem(object? target, object? key, Node at)
    {
        switch (target)
        {
            case Undefined u:
                throw Interpreter.Fail(at, $"{u.Description}; cannot read its item {Py.Repr(key)}.");
            case OrderedDictionary<object, object?> dict:
                if (key is not null and not Undefined and not List<object?> && dict.TryGetValue(key, out var value))
                {
                    return value;
                }

                return key is string name && DictMethods.Contains(name) ? Method(dict, name, at) : new Undefined($"'dict object' has no attribute {Py.Repr(key)}");
            case List<object?> or PyTuple or string when key is long or bool:
                var items = target is string s ? Py.CodePoints(s) : Py.Items(target);
                var index = Py.AsLong(key);
                if (index < 0)
                {
                    index += items.Count;
                }

                return index >= 0 && index < items.Count ? items[(int)index] : new Undefined($"{Py.TypeName(target)} index {Py.AsLong(key)} is out of range");
            case Namespace or LoopState or string or List<object?> when key is string attribute:
                return GetAttribute(target, attribute, at);
            default:
                return new Undefined($"'{Py.TypeName(target)} object' has no item {Py.Repr(key)}");
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step, Node at)
    {
        if (target is Undefined u)
        {
            throw Interpreter.Fail(at, $"{u.Description}; it cannot be sliced.");
        }

        var items = target switch
        {
            string s => Py.CodePoints(s),
            List<object?> or PyTuple => Py.Items(target),
            _ => throw Interpreter.Fail(at, $"'{Py.TypeName(target)}' object is not subscriptable."),
        };

        long? Bound(object? v, string what) => v switch
        {
            null => null,
            long or bool => Py.AsLong(v),
            _ => throw Interpreter.Fail(at, $"Slice {what} must be an integer or none, not '{Py.TypeName(v)}'."),
        };

        var n = items.Count;
        var st = Bound(step, "step") ?? 1;
        if (st == 0)
        {
            throw Interpreter.Fail(at, "Slice step cannot be zero.");
        }

        long Clamp(long? v, long dflt, long lo, long hi)
        {
            if (v is null)
            {
                return dflt;
            }

            var x = v.Value < 0 ? v.Value + n : v.Value;
            return Math.Clamp(x, lo, hi);
        }

        var result = new List<object?>();
        if (st > 0)
        {
            var a = Clamp(Bound(start, "start"), 0, 0, n);
            var b = Clamp(Bound(stop, "stop"), n, 0, n);
            for (var i = a; i < b; i += st)
            {
                result.Add(items[(int)i]);
            }
        }
        else
        {
            var a = Clamp(Bound(start, "start"), n - 1, -1, n - 1);
            var b = Clamp(Bound(stop, "stop"), -1, -1, n - 1);
            for (var i = a; i > b; i += st)
            {
                result.Add(items[(int)i]);
            }
        }

        if (target is string)
        {
            var sb = new StringBuilder();
            foreach (var c in result)
            {
                sb.Append((string)c!);
            }

            return sb.ToString();
        }

        return target is PyTuple ? new PyTuple(result) : result;
    }

    public static object? Negate(object? v, Node at) => v switch
    {
        bool b => (object)(b ? -1L : 0L),
        long l => -l,
        double d => -d,
        Undefined u => throw Interpreter.Fail(at, u.Description + "."),
        _ => throw Interpreter.Fail(at, $"bad operand type for unary -: '{Py.TypeName(v)}'"),
    };

    public static object? Arithmetic(string op, object? a, object? b, Node at)
    {
        if (op == "~")
        {
            return Py.Str(a) + Py.Str(b);
        }

        if (a is Undefined ua)
        {
            throw Interpreter.Fail(at, ua.Description + ".");
        }

        if (b is Undefined ub)
        {
            throw Interpreter.Fail(at, ub.Description + ".");
        }

        if (Py.IsNumber(a) && Py.IsNumber(b))
        {
            var floats = a is double || b is double;
            try
            {
                if (floats)
                {
                    var x = Py.AsDouble(a);
                    var y = Py.AsDouble(b);
                    return op switch
                    {
                        "+" => x + y,
                        "-" => x - y,
                        "*" => x * y,
                        "/" => y == 0 ? throw Interpreter.Fail(at, "float division by zero") : x / y,
                        "//" => y == 0 ? throw Interpreter.Fail(at, "float floor division by zero") : Math.Floor(x / y),
                        "%" => y == 0 ? throw Interpreter.Fail(at, "float modulo") : FloatMod(x, y),
                        "**" => Math.Pow(x, y),
                        _ => throw Interpreter.Fail(at, $"Unknown operator '{op}'."),
                    };
                }

                var m = Py.AsLong(a);
                var n = Py.AsLong(b);
                return op switch
                {
                    "+" => checked(m + n),
                    "-" => checked(m - n),
                    "*" => checked(m * n),
                    "/" => n == 0 ? throw Interpreter.Fail(at, "division by zero") : (object)((double)m / n),
                    "//" => n == 0 ? throw Interpreter.Fail(at, "integer division or modulo by zero") : FloorDiv(m, n),
                    "%" => n == 0 ? throw Interpreter.Fail(at, "integer modulo by zero") : m - (FloorDiv(m, n) * n),
                    "**" => n < 0 ? Math.Pow(m, n) : (object)IntPow(m, n),
                    _ => throw Interpreter.Fail(at, $"Unknown operator '{op}'."),
                };
            }
            catch (OverflowException)
            {
                throw Interpreter.Fail(at, $"Integer overflow in '{op}'.");
            }
        }

        switch (op)
        {
            case "+" when a is string s && b is string t:
                return s + t;
            case "+" when a is List<object?> x && b is List<object?> y:
                return (List<object?>)[.. x, .. y];
            case "+" when a is PyTuple x && b is PyTuple y:
                return new PyTuple([.. x.Items, .. y.Items]);
            case "*" when (a is string && b is long or bool) || (b is string && a is long or bool):
                var text = a as string ?? (string)b!;
                var times = (int)Math.Max(0, Py.AsLong(a is string ? b : a));
                return new StringBuilder(text.Length * times).Insert(0, text, times).ToString();
            case "*" when a is List<object?> list && b is long or bool:
                var repeated = new List<object?>();
                for (var i = 0; i < Py.AsLong(b); i++)
                {
                    repeated.AddRange(list);
                }

                return repeated;
            case "%" when a is string:
                throw Interpreter.Fail(at, "printf-style string formatting ('...' % values) is not supported by the chat template interpreter.");
        }

        throw Interpreter.Fail(at, $"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
    }

    private static long FloorDiv(long a, long b)
    {
        var q = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q;
    }

    private static double FloatMod(double a, double b)
    {
        var r = a % b;
        return r != 0 && (r < 0) != (b < 0) ? r + b : r;
    }

    private static long IntPow(long a, long b)
    {
        long r = 1;
        for (var i = 0; i < b; i++)
        {
            r = checked(r * a);
        }

        return r;
    }

    public static bool Compare(string op, object? a, object? b, Node at)
    {
        switch (op)
        {
            case "==":
                return Py.AreEqual(a, b);
            case "!=":
                return !Py.AreEqual(a, b);
            case "in":
                return Contains(b, a, at);
            case "notin":
                return !Contains(b, a, at);
        }

        var order = Py.Order(a, b);
        if (order is null)
        {
            if (a is Undefined ua)
            {
                throw Interpreter.Fail(at, ua.Description + ".");
            }

            if (b is Undefined ub)
            {
                throw Interpreter.Fail(at, ub.Description + ".");
            }

            throw Interpreter.Fail(at, $"'{op}' not supported between instances of '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
        }

        return op switch
        {
            "<" => order < 0,
            "<=" => order <= 0,
            ">" => order > 0,
            _ => order >= 0,
        };
    }

    public static bool Contains(object? container, object? item, Node at)
    {
        switch (container)
        {
            case string s:
                if (item is not string sub)
                {
                    throw Interpreter.Fail(at, $"'in <string>' requires string as left operand, not {Py.TypeName(item)}");
                }

                return s.Contains(sub, StringComparison.Ordinal);
            case List<object?> or PyTuple:
                return Py.Items(container).Exists(x => Py.AreEqual(x, item));
            case OrderedDictionary<object, object?> dict:
                return item is not null and not Undefined and not List<object?> && dict.ContainsKey(item);
            case Undefined:
                return false;
            default:
                throw Interpreter.Fail(at, $"argument of type '{Py.TypeName(container)}' is not iterable");
        }
    }
}
