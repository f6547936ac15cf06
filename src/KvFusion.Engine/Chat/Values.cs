using System.Globalization;
using System.Text;

namespace KvFusion.Engine.Chat;

/// <summary>jinja2's default undefined value: renders empty, is falsy and iterates as empty; anything else fails.</summary>
internal sealed class Undefined(string description)
{
    /// <summary>What is undefined, as jinja2 words it: <c>'x' is undefined</c> or <c>'dict object' has no attribute 'y'</c>.</summary>
    public string Description { get; } = description;

    public static Undefined Named(string name) => new($"'{name}' is undefined");
}

/// <summary>The object <c>namespace(...)</c> returns: attributes that <c>{% set ns.x = ... %}</c> may change from a loop.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A callable value: a global function or a bound method.</summary>
internal sealed class PyFunction(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;

    public Func<List<object?>, Dictionary<string, object?>, object?> Invoke { get; } = invoke;
}

/// <summary>A tuple: a list that prints with parentheses.</summary>
internal sealed class PyTuple(List<object?> items)
{
    public List<object?> Items { get; } = items;
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopState(List<object?> items)
{
    public List<object?> Items { get; } = items;

    public int Index0 { get; set; }
}

/// <summary>Python key equality for dict keys (1 == 1.0 == True, strings by ordinal).</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static PyKeyComparer Instance { get; } = new();

    public new bool Equals(object? x, object? y) => Py.AreEqual(x, y);

    public int GetHashCode(object obj) => obj switch
    {
        bool b => b ? 1 : 0,
        long l => l.GetHashCode(),
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => ((long)d).GetHashCode(),
        string s => StringComparer.Ordinal.GetHashCode(s),
        _ => obj.GetHashCode(),
    };
}

/// <summary>Python's semantics for the values templates see: truth, equality, ordering, str() and repr().</summary>
internal static class Py
{
    public static OrderedDictionary<object, object?> NewDict() => new(PyKeyComparer.Instance);

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        PyTuple t => t.Items.Count > 0,
        OrderedDictionary<object, object?> dict => dict.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        PyTuple => "tuple",
        OrderedDictionary<object, object?> => "dict",
        Namespace => "Namespace",
        PyFunction => "function",
        LoopState => "LoopContext",
        _ => v.GetType().Name,
    };

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double AsDouble(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        _ => throw new InvalidCastException(),
    };

    public static bool AreEqual(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            return a is double || b is double ? AsDouble(a) == AsDouble(b) : AsLong(a) == AsLong(b);
        }

        switch (a)
        {
            case null:
                return b is null;
            case Undefined:
                return b is Undefined;
            case string s:
                return b is string t && string.Equals(s, t, StringComparison.Ordinal);
            case List<object?> or PyTuple:
                if ((a is List<object?>) != (b is List<object?>) || b is not (List<object?> or PyTuple))
                {
                    return false;
                }

                var x = Items(a);
                var y = Items(b);
                if (x.Count != y.Count)
                {
                    return false;
                }

                for (var i = 0; i < x.Count; i++)
                {
                    if (!AreEqual(x[i], y[i]))
                    {
                        return false;
                    }
                }

                return true;
            case OrderedDictionary<object, object?> d:
                if (b is not OrderedDictionary<object, object?> e || d.Count != e.Count)
                {
                    return false;
                }

                foreach (var (k, v) in d)
                {
                    if (!e.TryGetValue(k, out var w) || !AreEqual(v, w))
                    {
                        return false;
                    }
                }

                return true;
            default:
                return ReferenceEquals(a, b);
        }
    }

    public static long AsLong(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        _ => throw new InvalidCastException(),
    };

    public static List<object?> Items(object? v) => v switch
    {
        List<object?> l => l,
        PyTuple t => t.Items,
        _ => throw new InvalidCastException(),
    };

    /// <summary>Python ordering (<c>&lt;</c>): negative, zero or positive; null when the types do not order.</summary>
    public static int? Order(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            return AsDouble(a).CompareTo(AsDouble(b));
        }

        if (a is string s && b is string t)
        {
            return Math.Sign(string.CompareOrdinal(s, t));
        }

        if (a is List<object?> or PyTuple && b is List<object?> or PyTuple && (a is PyTuple) == (b is PyTuple))
        {
            var x = Items(a);
            var y = Items(b);
            for (var i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                if (!AreEqual(x[i], y[i]))
                {
                    return Order(x[i], y[i]);
                }
            }

            return x.Count.CompareTo(y.Count);
        }

        return null;
    }

    /// <summary>Python's <c>str()</c>, with jinja2's empty rendering of undefined values.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? v)
    {
        switch (v)
        {
            case null:
                sb.Append("None");
                break;
            case Undefined:
                break;
            case bool b:
                sb.Append(b ? "True" : "False");
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(FloatRepr(d));
                break;
            case string s:
                AppendStringRepr(sb, s);
                break;
            case List<object?> list:
                sb.Append('[');
                AppendItems(sb, list);
                sb.Append(']');
                break;
            case PyTuple tuple:
                sb.Append('(');
                AppendItems(sb, tuple.Items);
                sb.Append(tuple.Items.Count == 1 ? ",)" : ")");
                break;
            case OrderedDictionary<object, object?> dict:
                sb.Append('{');
                var first = true;
                foreach (var (k, item) in dict)
                {
                    if (!first)
                    {
                        sb.Append(", ");
                    }

                    first = false;
                    AppendRepr(sb, k);
                    sb.Append(": ");
                    AppendRepr(sb, item);
                }

                sb.Append('}');
                break;
            case Namespace:
                sb.Append("<Namespace>");
                break;
            default:
                sb.Append('<').Append(TypeName(v)).Append('>');
                break;
        }
    }

    private static void AppendItems(StringBuilder sb, List<object?> items)
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(", ");
            }

            AppendRepr(sb, items[i]);
        }
    }

    private static void AppendStringRepr(StringBuilder sb, string s)
    {
        var quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        sb.Append(quote);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        sb.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append(quote);
    }

    /// <summary>Python's <c>repr(float)</c>: the shortest round-trip digits, <c>1.0</c> for integral values, <c>1e+20</c> exponents.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        var r = d.ToString("R", CultureInfo.InvariantCulture);
        var e = r.IndexOf('E', StringComparison.Ordinal);
        if (e < 0)
        {
            return r.Contains('.', StringComparison.Ordinal) ? r : r + ".0";
        }

        var mantissa = r[..e];
        var exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        if (exponent is >= -4 and < 16)
        {
            var plain = d.ToString("0.####################", CultureInfo.InvariantCulture);
            return plain.Contains('.', StringComparison.Ordinal) ? plain : plain + ".0";
        }

        return $"{mantissa}e{(exponent < 0 ? '-' : '+')}{Math.Abs(exponent):00}";
    }

    /// <summary>Python's <c>str.isspace</c> for one character.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary>Number of code points (Python's <c>len</c> of a str).</summary>
    public static int CodePointLength(string s)
    {
        var n = s.Length;
        foreach (var c in s)
        {
            if (char.IsLowSurrogate(c))
            {
                n--;
            }
        }

        return n;
    }

    /// <summary>The code points of a string as strings (a str's items in Python).</summary>
    public static List<object?> CodePoints(string s)
    {
        var list = new List<object?>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                list.Add(s.Substring(i, 2));
                i++;
            }
            else
            {
                list.Add(s[i].ToString());
            }
        }

        return list;
    }

    public static bool HasSurrogates(string s)
    {
        foreach (var c in s)
        {
            if (char.IsSurrogate(c))
            {
                return true;
            }
        }

        return false;
    }
}
