using System.Globalization;

namespace KvFusion.Engine.Chat;

/// <summary>Parses the token stream into statements with jinja2's grammar and operator precedence.</summary>
internal sealed class Parser
{
    private static readonly HashSet<string> UnsupportedTags = new(StringComparer.Ordinal)
    {
        "macro", "endmacro", "call", "endcall", "filter", "endfilter", "raw", "endraw", "include", "import", "from",
        "extends", "block", "endblock", "with", "endwith", "do", "autoescape", "endautoescape", "trans", "endtrans",
        "pluralize",
    };

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "and", "or", "not", "in", "is", "if", "else", "elif",
    };

    private readonly List<Token> _tokens;
    private int _i;

    private Parser(List<Token> tokens) => _tokens = tokens;

    public static List<Statement> Parse(string source)
    {
        var parser = new Parser(Lexer.Tokenize(source));
        var (body, end) = parser.ParseBody([]);
        if (end is not null)
        {
            throw Error(end.Value, $"Unexpected '{end.Value.Value}' tag: nothing open to close.");
        }

        return body;
    }

    private Token Current => _i < _tokens.Count ? _tokens[_i] : EndToken();

    private Token EndToken()
    {
        var last = _tokens.Count > 0 ? _tokens[^1] : new Token(TokenKind.End, "", 1, 1);
        return new Token(TokenKind.End, "", last.Line, last.Column);
    }

    private static ChatTemplateException Error(Token at, string message) => new(message, at.Line, at.Column);

    private Token Next() => _tokens[_i++];

    private bool IsOp(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;

    private bool IsName(string name) => Current.Kind == TokenKind.Name && Current.Value == name;

    private bool SkipOp(string op)
    {
        if (!IsOp(op))
        {
            return false;
        }

        _i++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!IsName(name))
        {
            return false;
        }

        _i++;
        return true;
    }

    private Token ExpectOp(string op)
    {
        if (!IsOp(op))
        {
            throw Error(Current, $"Expected '{op}' but found {Describe(Current)}.");
        }

        return Next();
    }

    private Token ExpectKind(TokenKind kind, string what)
    {
        if (Current.Kind != kind)
        {
            throw Error(Current, $"Expected {what} but found {Describe(Current)}.");
        }

        return Next();
    }

    private static string Describe(Token t) => t.Kind switch
    {
        TokenKind.End => "the end of the template",
        TokenKind.BlockEnd => "the end of the tag ('%}')",
        TokenKind.VariableEnd => "the end of the expression ('}}')",
        TokenKind.Text => "template text",
        TokenKind.String => "a string",
        _ => $"'{t.Value}'",
    };

    /// <summary>Parses statements until one of <paramref name="endTags"/> (returned, with the block tag consumed up to its name).</summary>
    private (List<Statement> Body, Token? End) ParseBody(HashSet<string> endTags)
    {
        var body = new List<Statement>();
        while (_i < _tokens.Count)
        {
            var t = Next();
            switch (t.Kind)
            {
                case TokenKind.Text:
                    body.Add(new TextStatement(t.Value, t.Line, t.Column));
                    break;
                case TokenKind.VariableBegin:
                    var value = ParseTuple(true);
                    ExpectKind(TokenKind.VariableEnd, "'}}'");
                    body.Add(new OutputStatement(value, t.Line, t.Column));
                    break;
                case TokenKind.BlockBegin:
                    var name = ExpectKind(TokenKind.Name, "a tag name");
                    if (endTags.Contains(name.Value))
                    {
                        return (body, name);
                    }

                    var statement = ParseStatement(name);
                    if (statement is not null)
                    {
                        body.Add(statement);
                    }

                    break;
                default:
                    throw Error(t, $"Unexpected {Describe(t)}.");
            }
        }

        if (endTags.Count > 0)
        {
            throw Error(EndToken(), $"The template ended inside a block: expected one of {string.Join(", ", endTags.Order(StringComparer.Ordinal).Select(e => $"'{e}'"))}.");
        }

        return (body, null);
    }

    private Statement? ParseStatement(Token name)
    {
        switch (name.Value)
        {
            case "if":
                return ParseIf(name);
            case "for":
                return ParseFor(name);
            case "set":
                return ParseSet(name);
            case "break" or "continue":
                ExpectKind(TokenKind.BlockEnd, "'%}'");
                return new LoopControlStatement(name.Value == "break", name.Line, name.Column);
            case "generation":
                // transformers' {% generation %} marks assistant text for masks; rendering keeps its body as is.
                ExpectKind(TokenKind.BlockEnd, "'%}'");
                var (body, _) = ParseBody(["endgeneration"]);
                ExpectKind(TokenKind.BlockEnd, "'%}'");
                return new IfStatement([(new LiteralExpr(true, name.Line, name.Column), body)], null, name.Line, name.Column);
            default:
                if (UnsupportedTags.Contains(name.Value))
                {
                    throw Error(name, $"The '{{% {name.Value} %}}' tag is not supported by the chat template interpreter.");
                }

                if (name.Value.StartsWith("end", StringComparison.Ordinal) || name.Value is "elif" or "else")
                {
                    throw Error(name, $"Unexpected '{{% {name.Value} %}}' tag: nothing open to close.");
                }

                throw Error(name, $"Unknown tag '{{% {name.Value} %}}'.");
        }
    }

    private IfStatement ParseIf(Token at)
    {
        var branches = new List<(Expr, List<Statement>)>();
        List<Statement>? otherwise = null;
        var condition = ParseTuple(true);
        while (true)
        {
            ExpectKind(TokenKind.BlockEnd, "'%}'");
            var (body, end) = ParseBody(["elif", "else", "endif"]);
            branches.Add((condition, body));
            if (end!.Value.Value == "elif")
            {
                condition = ParseTuple(true);
                continue;
            }

            if (end.Value.Value == "else")
            {
                ExpectKind(TokenKind.BlockEnd, "'%}'");
                (otherwise, _) = ParseBody(["endif"]);
            }

            ExpectKind(TokenKind.BlockEnd, "'%}'");
            return new IfStatement(branches, otherwise, at.Line, at.Column);
        }
    }

    private ForStatement ParseFor(Token at)
    {
        var target = ParseAssignTarget(false);
        if (!SkipName("in"))
        {
            throw Error(Current, $"Expected 'in' in the for loop but found {Describe(Current)}.");
        }

        var iterable = ParseTuple(false);
        Expr? filter = null;
        if (SkipName("if"))
        {
            filter = ParseExpression(true);
        }

        if (IsName("recursive"))
        {
            throw Error(Current, "Recursive for loops ('recursive') are not supported by the chat template interpreter.");
        }

        ExpectKind(TokenKind.BlockEnd, "'%}'");
        var (body, end) = ParseBody(["else", "endfor"]);
        List<Statement>? otherwise = null;
        if (end!.Value.Value == "else")
        {
            ExpectKind(TokenKind.BlockEnd, "'%}'");
            (otherwise, _) = ParseBody(["endfor"]);
        }

        ExpectKind(TokenKind.BlockEnd, "'%}'");
        return new ForStatement(target, iterable, filter, body, otherwise, at.Line, at.Column);
    }

    private SetStatement ParseSet(Token at)
    {
        var target = ParseAssignTarget(true);
        if (SkipOp("="))
        {
            var value = ParseTuple(true);
            ExpectKind(TokenKind.BlockEnd, "'%}'");
            return new SetStatement(target, value, null, at.Line, at.Column);
        }

        if (target.Unpack || target.Attribute is not null)
        {
            throw Error(Current, "A block set ('{% set x %}...{% endset %}') assigns one plain name.");
        }

        if (IsOp("|"))
        {
            throw Error(Current, "Filters on a block set are not supported by the chat template interpreter.");
        }

        ExpectKind(TokenKind.BlockEnd, "'%}'");
        var (body, _) = ParseBody(["endset"]);
        ExpectKind(TokenKind.BlockEnd, "'%}'");
        return new SetStatement(target, null, body, at.Line, at.Column);
    }

    private AssignTarget ParseAssignTarget(bool allowAttribute)
    {
        var first = Current;
        var parenthesized = SkipOp("(");
        var name = ExpectKind(TokenKind.Name, "a variable name");
        if (allowAttribute && !parenthesized && SkipOp("."))
        {
            var attribute = ExpectKind(TokenKind.Name, "an attribute name");
            return new AssignTarget([name.Value], attribute.Value, false, first.Line, first.Column);
        }

        var names = new List<string> { name.Value };
        var unpack = false;
        while (SkipOp(","))
        {
            unpack = true;
            if (Current.Kind != TokenKind.Name || Current.Value == "in")
            {
                break;
            }

            names.Add(Next().Value);
        }

        if (parenthesized)
        {
            ExpectOp(")");
        }

        return new AssignTarget(names, null, unpack, first.Line, first.Column);
    }

    /// <summary>An expression, or a tuple of them separated by commas (without parentheses).</summary>
    private Expr ParseTuple(bool withCondition)
    {
        var first = Current;
        var item = ParseExpression(withCondition);
        if (!IsOp(","))
        {
            return item;
        }

        var items = new List<Expr> { item };
        while (SkipOp(","))
        {
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd || IsOp(")"))
            {
                break;
            }

            items.Add(ParseExpression(withCondition));
        }

        return new ListExpr(items, true, first.Line, first.Column);
    }

    private Expr ParseExpression(bool withCondition) => withCondition ? ParseConditional() : ParseOr();

    private Expr ParseConditional()
    {
        var expr = ParseOr();
        while (IsName("if"))
        {
            var at = Next();
            var condition = ParseOr();
            Expr? otherwise = null;
            if (SkipName("else"))
            {
                otherwise = ParseConditional();
            }

            expr = new ConditionalExpr(condition, expr, otherwise, at.Line, at.Column);
        }

        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or"))
        {
            var at = Next();
            left = new BinaryExpr("or", left, ParseAnd(), at.Line, at.Column);
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and"))
        {
            var at = Next();
            left = new BinaryExpr("and", left, ParseNot(), at.Line, at.Column);
        }

        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            var at = Next();
            return new UnaryExpr("not", ParseNot(), at.Line, at.Column);
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (SkipName("in"))
            {
                rest.Add(("in", ParseMath1()));
            }
            else if (IsName("not") && _i + 1 < _tokens.Count && _tokens[_i + 1].Kind == TokenKind.Name && _tokens[_i + 1].Value == "in")
            {
                _i += 2;
                rest.Add(("notin", ParseMath1()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest, first.Line, first.Column);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            var at = Next();
            left = new BinaryExpr(at.Value, left, ParseConcat(), at.Line, at.Column);
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~"))
        {
            var at = Next();
            left = new BinaryExpr("~", left, ParseMath2(), at.Line, at.Column);
        }

        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var at = Next();
            left = new BinaryExpr(at.Value, left, ParsePow(), at.Line, at.Column);
        }

        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(true);
        while (IsOp("**"))
        {
            var at = Next();
            left = new BinaryExpr("**", left, ParseUnary(true), at.Line, at.Column);
        }

        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Expr node;
        if (Current.Kind == TokenKind.Operator && Current.Value is "-" or "+")
        {
            var at = Next();
            node = new UnaryExpr(at.Value, ParseUnary(false), at.Line, at.Column);
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        return withFilter ? ParseFilterChain(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                _i++;
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, t.Line, t.Column),
                    "false" or "False" => new LiteralExpr(false, t.Line, t.Column),
                    "none" or "None" => new LiteralExpr(null, t.Line, t.Column),
                    _ => new NameExpr(t.Value, t.Line, t.Column),
                };
            case TokenKind.String:
                _i++;
                var text = t.Value;
                while (Current.Kind == TokenKind.String)
                {
                    text += Next().Value;
                }

                return new LiteralExpr(text, t.Line, t.Column);
            case TokenKind.Integer:
                _i++;
                if (!long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var integer))
                {
                    throw Error(t, $"The integer {t.Value} is too large.");
                }

                return new LiteralExpr(integer, t.Line, t.Column);
            case TokenKind.Float:
                _i++;
                return new LiteralExpr(double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture), t.Line, t.Column);
            case TokenKind.Operator when t.Value == "(":
                _i++;
                if (SkipOp(")"))
                {
                    return new ListExpr([], true, t.Line, t.Column);
                }

                var inner = ParseTuple(true);
                ExpectOp(")");
                return inner;
            case TokenKind.Operator when t.Value == "[":
                _i++;
                var items = new List<Expr>();
                while (!IsOp("]"))
                {
                    items.Add(ParseExpression(true));
                    if (!SkipOp(","))
                    {
                        break;
                    }
                }

                ExpectOp("]");
                return new ListExpr(items, false, t.Line, t.Column);
            case TokenKind.Operator when t.Value == "{":
                _i++;
                var pairs = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var key = ParseExpression(true);
                    ExpectOp(":");
                    pairs.Add((key, ParseExpression(true)));
                    if (!SkipOp(","))
                    {
                        break;
                    }
                }

                ExpectOp("}");
                return new DictExpr(pairs, t.Line, t.Column);
            default:
                throw Error(t, $"Expected an expression but found {Describe(t)}.");
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (IsOp("."))
            {
                var at = Next();
                if (Current.Kind == TokenKind.Name)
                {
                    node = new AttrExpr(node, Next().Value, at.Line, at.Column);
                }
                else if (Current.Kind == TokenKind.Integer)
                {
                    var index = Next();
                    node = new ItemExpr(node, new LiteralExpr(long.Parse(index.Value, CultureInfo.InvariantCulture), index.Line, index.Column), at.Line, at.Column);
                }
                else
                {
                    throw Error(Current, $"Expected an attribute name after '.' but found {Describe(Current)}.");
                }
            }
            else if (IsOp("["))
            {
                node = ParseSubscript(node, Next());
            }
            else if (IsOp("("))
            {
                var at = Next();
                node = new CallExpr(node, ParseArguments(), at.Line, at.Column);
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr target, Token at)
    {
        Expr? start = null;
        if (!IsOp(":"))
        {
            start = ParseExpression(true);
            if (SkipOp("]"))
            {
                return new ItemExpr(target, start, at.Line, at.Column);
            }
        }

        ExpectOp(":");
        Expr? stop = null;
        Expr? step = null;
        if (!IsOp("]") && !IsOp(":"))
        {
            stop = ParseExpression(true);
        }

        if (SkipOp(":") && !IsOp("]"))
        {
            step = ParseExpression(true);
        }

        ExpectOp("]");
        return new SliceExpr(target, start, stop, step, at.Line, at.Column);
    }

    /// <summary>Call arguments after '(' up to and including ')'.</summary>
    private CallArguments ParseArguments()
    {
        var args = new CallArguments();
        while (!IsOp(")"))
        {
            if (IsOp("*") || IsOp("**"))
            {
                throw Error(Current, "Argument unpacking ('*args', '**kwargs') is not supported by the chat template interpreter.");
            }

            if (Current.Kind == TokenKind.Name && _i + 1 < _tokens.Count && _tokens[_i + 1].Kind == TokenKind.Operator && _tokens[_i + 1].Value == "=")
            {
                var name = Next().Value;
                _i++;
                args.Named.Add((name, ParseExpression(true)));
            }
            else
            {
                if (args.Named.Count > 0)
                {
                    throw Error(Current, "A positional argument follows a keyword argument.");
                }

                args.Positional.Add(ParseExpression(true));
            }

            if (!SkipOp(","))
            {
                break;
            }
        }

        ExpectOp(")");
        return args;
    }

    private Expr ParseFilterChain(Expr node)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                _i++;
                var name = ExpectKind(TokenKind.Name, "a filter name");
                var filterName = name.Value;
                while (IsOp(".") && _i + 1 < _tokens.Count && _tokens[_i + 1].Kind == TokenKind.Name)
                {
                    _i++;
                    filterName += "." + Next().Value;
                }

                if (!Builtins.IsFilter(filterName))
                {
                    throw Error(name, $"The filter '{filterName}' is not supported by the chat template interpreter.");
                }

                var args = SkipOp("(") ? ParseArguments() : new CallArguments();
                node = new FilterExpr(node, filterName, args, name.Line, name.Column);
            }
            else if (IsName("is"))
            {
                var at = Next();
                var negated = SkipName("not");
                var name = ExpectKind(TokenKind.Name, "a test name");
                var testName = name.Value;
                if (testName is "none" or "true" or "false" or "True" or "False" or "None")
                {
                    testName = testName.ToLowerInvariant();
                }

                if (!Builtins.IsTest(testName))
                {
                    throw Error(name, $"The test '{testName}' is not supported by the chat template interpreter.");
                }

                CallArguments args;
                if (SkipOp("("))
                {
                    args = ParseArguments();
                }
                else
                {
                    args = new CallArguments();
                    if (StartsPrimary())
                    {
                        args.Positional.Add(ParsePostfix(ParsePrimary()));
                    }
                }

                node = new TestExpr(node, testName, args, at.Line, at.Column);
                if (negated)
                {
                    node = new UnaryExpr("not", node, at.Line, at.Column);
                }
            }
            else if (IsOp("("))
            {
                var at = Next();
                node = new CallExpr(node, ParseArguments(), at.Line, at.Column);
            }
            else
            {
                return node;
            }
        }
    }

    private bool StartsPrimary() => Current.Kind switch
    {
        TokenKind.Name => !Keywords.Contains(Current.Value),
        TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
        TokenKind.Operator => Current.Value is "[" or "{",
        _ => false,
    };
}
