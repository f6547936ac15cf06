using System.Globalization;
using System.Text;

namespace KvFusion.Engine.Chat;

internal enum TokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

internal readonly record struct Token(TokenKind Kind, string Value, int Line, int Column);

/// <summary>
/// Splits template source into text and tag tokens, applying whitespace control as jinja2 does with
/// <c>trim_blocks</c> and <c>lstrip_blocks</c> on (the settings transformers renders chat templates with).
/// </summary>
internal sealed class Lexer
{
    private static readonly string[] Operators =
    [
        "**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|",
    ];

    private readonly string _src;
    private readonly List<Token> _tokens = [];
    private int _pos;

    private readonly List<int> _lineStarts = [0];

    private Lexer(string source)
    {
        source = NormalizeNewlines(source);
        _src = source;
        for (var i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    /// <summary>
    /// jinja2 reads the source as <c>"\n".join(source.splitlines())</c>: every line break becomes '\n' and one
    /// trailing line break goes (keep_trailing_newline is off).
    /// </summary>
    private static string NormalizeNewlines(string source)
    {
        var sb = new StringBuilder(source.Length);
        for (var i = 0; i < source.Length; i++)
        {
            var c = source[i];
            if (c == '\r' && i + 1 < source.Length && source[i + 1] == '\n')
            {
                i++;
                sb.Append('\n');
            }
            else if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
            {
                sb.Append('\n');
            }
            else
            {
                sb.Append(c);
            }
        }

        if (sb.Length > 0 && sb[^1] == '\n')
        {
            sb.Length--;
        }

        return sb.ToString();
    }

    public static List<Token> Tokenize(string source)
    {
        var lexer = new Lexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    private void Run()
    {
        var stripLeading = false;
        while (_pos <= _src.Length)
        {
            var tagAt = NextTagStart(_pos);
            var textEnd = tagAt < 0 ? _src.Length : tagAt;
            var text = _src[_pos..textEnd];
            var lineStarting = _pos == 0 || _src[_pos - 1] == '\n';
            if (stripLeading)
            {
                text = text.TrimStart();
                stripLeading = false;
            }

            if (tagAt < 0)
            {
                Emit(TokenKind.Text, text, _pos);
                return;
            }

            var opener = _src[tagAt + 1];
            var sign = tagAt + 2 < _src.Length ? _src[tagAt + 2] : '\0';
            if (sign == '-')
            {
                text = text.TrimEnd();
            }
            else if (sign != '+' && opener != '{')
            {
                var lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && IsBlank(text.AsSpan(lineStart)))
                {
                    text = text[..lineStart];
                }
            }

            Emit(TokenKind.Text, text, _pos);
            _pos = tagAt + 2 + (sign is '-' or '+' ? 1 : 0);
            stripLeading = opener switch
            {
                '#' => SkipComment(tagAt),
                '{' => LexTag(tagAt, TokenKind.VariableBegin, TokenKind.VariableEnd, '}'),
                _ => LexTag(tagAt, TokenKind.BlockBegin, TokenKind.BlockEnd, '%'),
            };
        }
    }

    private int NextTagStart(int from)
    {
        var i = from;
        while (true)
        {
            i = _src.IndexOf('{', i);
            if (i < 0 || i + 1 >= _src.Length)
            {
                return -1;
            }

            var c = _src[i + 1];
            if (c is '{' or '%' or '#')
            {
                return i;
            }

            i++;
        }
    }

    private static bool IsBlank(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (!char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    private void Emit(TokenKind kind, string value, int at)
    {
        if (kind == TokenKind.Text && value.Length == 0)
        {
            return;
        }

        var (line, column) = Position(at);
        _tokens.Add(new Token(kind, value, line, column));
    }

    private (int Line, int Column) Position(int at)
    {
        var index = _lineStarts.BinarySearch(at);
        if (index < 0)
        {
            index = ~index - 1;
        }

        return (index + 1, at - _lineStarts[index] + 1);
    }

    /// <summary>Skips a comment; returns whether the text after it loses its leading whitespace.</summary>
    private bool SkipComment(int tagAt)
    {
        var end = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0)
        {
            var (line, column) = Position(tagAt);
            throw new ChatTemplateException("Unclosed comment: '{#' without '#}'.", line, column);
        }

        var strip = end > _pos && _src[end - 1] == '-';
        var keep = end > _pos && _src[end - 1] == '+';
        _pos = end + 2;
        if (!strip && !keep && _pos < _src.Length && _src[_pos] == '\n')
        {
            _pos++;
        }

        return strip;
    }

    /// <summary>Tokenizes one tag's expression; returns whether the text after it loses its leading whitespace.</summary>
    private bool LexTag(int tagAt, TokenKind begin, TokenKind end, char closer)
    {
        Emit(begin, "", tagAt);
        while (true)
        {
            while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos]))
            {
                _pos++;
            }

            if (_pos >= _src.Length)
            {
                var (line, column) = Position(tagAt);
                throw new ChatTemplateException($"Unclosed tag: '{{{closer}' without '{closer}}}'.", line, column);
            }

            var c = _src[_pos];
            if ((c is '-' or '+') && At(_pos + 1, closer) && At(_pos + 2, '}') && !(c == '+' && closer == '}'))
            {
                Emit(end, "", _pos);
                _pos += 3;
                if (c == '-')
                {
                    return true;
                }

                return false;
            }

            if (c == closer && At(_pos + 1, '}'))
            {
                Emit(end, "", _pos);
                _pos += 2;
                if (end == TokenKind.BlockEnd && _pos < _src.Length && _src[_pos] == '\n')
                {
                    _pos++;
                }

                return false;
            }

            var start = _pos;
            if (char.IsAsciiLetter(c) || c == '_')
            {
                while (_pos < _src.Length && (char.IsAsciiLetterOrDigit(_src[_pos]) || _src[_pos] == '_'))
                {
                    _pos++;
                }

                Emit(TokenKind.Name, _src[start.._pos], start);
            }
            else if (char.IsAsciiDigit(c))
            {
                LexNumber(start);
            }
            else if (c is '\'' or '"')
            {
                Emit(TokenKind.String, LexString(start), start);
            }
            else
            {
                var op = Array.Find(Operators, o => string.CompareOrdinal(_src, _pos, o, 0, o.Length) == 0);
                if (op is null)
                {
                    var (line, column) = Position(_pos);
                    throw new ChatTemplateException($"Unexpected character '{c}' in a tag.", line, column);
                }

                _pos += op.Length;
                Emit(TokenKind.Operator, op, start);
            }
        }
    }

    private bool At(int i, char c) => i < _src.Length && _src[i] == c;

    private void LexNumber(int start)
    {
        while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_'))
        {
            _pos++;
        }

        var isFloat = false;
        if (_pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _src.Length && (char.IsAsciiDigit(_src[_pos]) || _src[_pos] == '_'))
            {
                _pos++;
            }
        }

        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            var save = _pos;
            _pos++;
            if (_pos < _src.Length && _src[_pos] is '+' or '-')
            {
                _pos++;
            }

            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
            {
                isFloat = true;
                while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
                {
                    _pos++;
                }
            }
            else
            {
                _pos = save;
            }
        }

        Emit(isFloat ? TokenKind.Float : TokenKind.Integer, _src[start.._pos].Replace("_", "", StringComparison.Ordinal), start);
    }

    /// <summary>A string literal with Python's escapes (jinja2 decodes them as <c>unicode-escape</c>).</summary>
    private string LexString(int start)
    {
        var quote = _src[_pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _src.Length)
            {
                var (line, column) = Position(start);
                throw new ChatTemplateException("Unterminated string literal.", line, column);
            }

            var c = _src[_pos++];
            if (c == quote)
            {
                return sb.ToString();
            }

            if (c != '\\' || _pos >= _src.Length)
            {
                sb.Append(c);
                continue;
            }

            var e = _src[_pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case 'a': sb.Append('\a'); break;
                case '0': sb.Append('\0'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': break;
                case 'x': sb.Append(Hex(2, start)); break;
                case 'u': sb.Append(Hex(4, start)); break;
                case 'U': sb.Append(Hex(8, start)); break;
                default: sb.Append('\\').Append(e); break;
            }
        }
    }

    private string Hex(int digits, int start)
    {
        if (_pos + digits > _src.Length
            || !int.TryParse(_src.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
        {
            var (line, column) = Position(start);
            throw new ChatTemplateException($"Malformed \\{(digits == 2 ? 'x' : digits == 4 ? 'u' : 'U')} escape in a string literal.", line, column);
        }

        _pos += digits;
        return char.ConvertFromUtf32(code);
    }
}
