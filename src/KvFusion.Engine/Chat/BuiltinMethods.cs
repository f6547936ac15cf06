using System.Globalization;
using System.Text;

namespace KvFusion.Engine.Chat;

internal sealed partial class Builtins
{
    private static PyFunction Method(object target, string name, Node at) => target switch
    {
        string s => StrMethod(s, name, at),
        OrderedDictionary<object, object?> d => DictMethod(d, name, at),
        _ => ListMethod((List<object?>)target, name, at),
    };

    private static ChatTemplateException Unsupported(string type, string name, Node at) =>
        Interpreter.Fail(at, $"The method {type}.{name}() is not supported by the chat template interpreter.");

    private static string StrArg(List<object?> a, int i, string method) =>
        i < a.Count && a[i] is string s ? s : throw new PyError($"{method}() needs a string argument.");

    private static PyFunction StrMethod(string s, string name, Node at) => name switch
    {
        "strip" => new(name, (a, _) => Strip(s, a.Count > 0 ? a[0] as string : null, true, true)),
        "lstrip" => new(name, (a, _) => Strip(s, a.Count > 0 ? a[0] as string : null, true, false)),
        "rstrip" => new(name, (a, _) => Strip(s, a.Count > 0 ? a[0] as string : null, false, true)),
        "upper" => new(name, (_, _) => s.ToUpperInvariant()),
        "lower" => new(name, (_, _) => s.ToLowerInvariant()),
        "title" => new(name, (_, _) => PythonTitle(s)),
        "capitalize" => new(name, (_, _) => Capitalize(s)),
        "startswith" => new(name, (a, _) => Affix(s, a, true)),
        "endswith" => new(name, (a, _) => Affix(s, a, false)),
        "split" => new(name, (a, n) => Split(s, Arg(a, n, 0, "sep", null), Arg(a, n, 1, "maxsplit", -1L))),
        "replace" => new(name, (a, n) => Replace(s, StrArg(a, 0, name), StrArg(a, 1, name), Arg(a, n, 2, "count", null))),
        "find" => new(name, (a, _) => (long)IndexToCodePoints(s, s.IndexOf(StrArg(a, 0, name), StringComparison.Ordinal))),
        "count" => new(name, (a, _) => (long)CountOccurrences(s, StrArg(a, 0, name))),
        "join" => new(name, (a, _) => string.Join(s, Interpreter.Iterate(a.Count > 0 ? a[0] : null, at).Select(x => x as string ?? throw new PyError($"join() expects strings, found {Py.TypeName(x)}.")))),
        "removeprefix" => new(name, (a, _) => s.StartsWith(StrArg(a, 0, name), StringComparison.Ordinal) ? s[StrArg(a, 0, name).Length..] : s),
        "removesuffix" => new(name, (a, _) => StrArg(a, 0, name) is { Length: > 0 } x && s.EndsWith(x, StringComparison.Ordinal) ? s[..^x.Length] : s),
        "isspace" => new(name, (_, _) => s.Length > 0 && s.All(Py.IsSpace)),
        _ => throw Unsupported("str", name, at),
    };

    private static int IndexToCodePoints(string s, int index) => index < 0 ? -1 : Py.CodePointLength(s[..index]);

    private static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0)
        {
            return Py.CodePointLength(s) + 1;
        }

        var n = 0;
        for (var i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }

    private static bool Affix(string s, List<object?> a, bool start)
    {
        var candidates = a.Count > 0 && a[0] is List<object?> or PyTuple ? Py.Items(a[0]) : a.Count > 0 ? [a[0]] : [];
        if (candidates.Count == 0)
        {
            throw new PyError($"{(start ? "startswith" : "endswith")}() needs a string or a tuple of strings.");
        }

        foreach (var c in candidates)
        {
            var affix = c as string ?? throw new PyError($"{(start ? "startswith" : "endswith")}() needs strings, found {Py.TypeName(c)}.");
            if (start ? s.StartsWith(affix, StringComparison.Ordinal) : s.EndsWith(affix, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static List<object?> Split(string s, object? separator, object? maxSplit)
    {
        var max = maxSplit is long or bool ? Py.AsLong(maxSplit) : -1;
        var parts = new List<object?>();
        if (separator is null)
        {
            var i = 0;
            while (true)
            {
                while (i < s.Length && Py.IsSpace(s[i]))
                {
                    i++;
                }

                if (i >= s.Length)
                {
                    break;
                }

                if (max >= 0 && parts.Count == max)
                {
                    parts.Add(Strip(s[i..], null, false, true));
                    break;
                }

                var j = i;
                while (j < s.Length && !Py.IsSpace(s[j]))
                {
                    j++;
                }

                parts.Add(s[i..j]);
                i = j;
            }

            return parts;
        }

        if (separator is not string sep || sep.Length == 0)
        {
            throw new PyError("split() separator must be a non-empty string or none.");
        }

        var pos = 0;
        while (max < 0 || parts.Count < max)
        {
            var at = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            parts.Add(s[pos..at]);
            pos = at + sep.Length;
        }

        parts.Add(s[pos..]);
        return parts;
    }

    private static PyFunction DictMethod(OrderedDictionary<object, object?> d, string name, Node at) => name switch
    {
        "items" => new(name, (_, _) => d.Select(p => (object?)new PyTuple([p.Key, p.Value])).ToList()),
        "keys" => new(name, (_, _) => d.Keys.Select(k => (object?)k).ToList()),
        "values" => new(name, (_, _) => d.Values.ToList()),
        "get" => new(name, (a, _) =>
        {
            if (a.Count == 0)
            {
                throw new PyError("get() needs a key.");
            }

            return a[0] is not null and not Undefined and not List<object?> && d.TryGetValue(a[0]!, out var v) ? v : a.Count > 1 ? a[1] : null;
        }),
        _ => throw Unsupported("dict", name, at),
    };

    private static PyFunction ListMethod(List<object?> list, string name, Node at) => name switch
    {
        "count" => new(name, (a, _) => (long)list.Count(x => Py.AreEqual(x, a.Count > 0 ? a[0] : null))),
        "index" => new(name, (a, _) =>
        {
            var i = list.FindIndex(x => Py.AreEqual(x, a.Count > 0 ? a[0] : null));
            return i >= 0 ? (long)i : throw new PyError($"{Py.Repr(a.Count > 0 ? a[0] : null)} is not in list");
        }),
        _ => throw Unsupported("list", name, at),
    };

    private static readonly string[] MonthNames =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    private static readonly string[] DayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

    /// <summary>Python's <c>datetime.strftime</c> for the directives templates use (C locale names).</summary>
    internal static string Strftime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }

            var directive = format[++i];
            var inv = CultureInfo.InvariantCulture;
            sb.Append(directive switch
            {
                'd' => t.Day.ToString("00", inv),
                'm' => t.Month.ToString("00", inv),
                'Y' => t.Year.ToString("0000", inv),
                'y' => (t.Year % 100).ToString("00", inv),
                'H' => t.Hour.ToString("00", inv),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", inv),
                'M' => t.Minute.ToString("00", inv),
                'S' => t.Second.ToString("00", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'b' => MonthNames[t.Month - 1][..3],
                'B' => MonthNames[t.Month - 1],
                'a' => DayNames[(int)t.DayOfWeek][..3],
                'A' => DayNames[(int)t.DayOfWeek],
                'j' => t.DayOfYear.ToString("000", inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                '%' => "%",
                _ => throw new PyError($"strftime directive '%{directive}' is not supported by the chat template interpreter."),
            });
        }

        return sb.ToString();
    }
}
