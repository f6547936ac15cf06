using System.Text;

namespace KvFusion.Engine.Chat;

/// <summary>Runs parsed statements against variables, writing the output into one <see cref="StringBuilder"/>.</summary>
internal sealed class Interpreter
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    private sealed class Frame(Frame? parent)
    {
        public Frame? Parent { get; } = parent;

        public Dictionary<string, object?> Variables { get; } = new(StringComparer.Ordinal);
    }

    private readonly Builtins _builtins;

    public Interpreter(Func<DateTime> clock) => _builtins = new Builtins(clock);

    public string Render(List<Statement> body, IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new Frame(null);
        foreach (var (name, fn) in _builtins.Globals)
        {
            globals.Variables[name] = fn;
        }

        foreach (var (name, value) in variables)
        {
            globals.Variables[name] = Builtins.ToValue(value);
        }

        var output = new StringBuilder();
        var flow = Execute(body, new Frame(globals), output);
        if (flow != Flow.Normal)
        {
            throw new ChatTemplateException("'break' or 'continue' outside a for loop.");
        }

        return output.ToString();
    }

    internal static ChatTemplateException Fail(Node at, string message) => new(message, at.Line, at.Column);

    private Flow Execute(List<Statement> body, Frame frame, StringBuilder output)
    {
        foreach (var statement in body)
        {
            var flow = Execute(statement, frame, output);
            if (flow != Flow.Normal)
            {
                return flow;
            }
        }

        return Flow.Normal;
    }

    private Flow Execute(Statement statement, Frame frame, StringBuilder output)
    {
        switch (statement)
        {
            case TextStatement text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputStatement emit:
                output.Append(Py.Str(Evaluate(emit.Value, frame)));
                return Flow.Normal;
            case IfStatement branch:
                foreach (var (condition, body) in branch.Branches)
                {
                    if (Py.Truthy(Evaluate(condition, frame)))
                    {
                        return Execute(body, frame, output);
                    }
                }

                return branch.Otherwise is null ? Flow.Normal : Execute(branch.Otherwise, frame, output);
            case ForStatement loop:
                RunLoop(loop, frame, output);
                return Flow.Normal;
            case SetStatement set:
                object? value;
                if (set.Value is null)
                {
                    var captured = new StringBuilder();
                    Execute(set.Body!, frame, captured);
                    value = captured.ToString();
                }
                else
                {
                    value = Evaluate(set.Value, frame);
                }

                Assign(set.Target, value, frame);
                return Flow.Normal;
            case LoopControlStatement control:
                return control.IsBreak ? Flow.Break : Flow.Continue;
            default:
                throw Fail(statement, $"Unknown statement {statement.GetType().Name}.");
        }
    }

    private void RunLoop(ForStatement loop, Frame frame, StringBuilder output)
    {
        var source = Evaluate(loop.Iterable, frame);
        var items = Iterate(source, loop.Iterable);
        var loopFrame = new Frame(frame);
        if (loop.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                Assign(loop.Target, item, loopFrame);
                if (Py.Truthy(Evaluate(loop.Filter, loopFrame)))
                {
                    kept.Add(item);
                }
            }

            items = kept;
        }

        if (items.Count == 0)
        {
            if (loop.Otherwise is not null)
            {
                Execute(loop.Otherwise, frame, output);
            }

            return;
        }

        var state = new LoopState(items);
        loopFrame.Variables["loop"] = state;
        for (var i = 0; i < items.Count; i++)
        {
            state.Index0 = i;
            Assign(loop.Target, items[i], loopFrame);
            if (Execute(loop.Body, loopFrame, output) == Flow.Break)
            {
                break;
            }
        }
    }

    /// <summary>The items a for loop or filter iterates: a list's items, a dict's keys, a string's characters.</summary>
    internal static List<object?> Iterate(object? value, Node at) => value switch
    {
        Undefined => [],
        List<object?> list => [.. list],
        PyTuple tuple => [.. tuple.Items],
        OrderedDictionary<object, object?> dict => [.. dict.Keys],
        string s => Py.CodePoints(s),
        _ => throw Fail(at, $"'{Py.TypeName(value)}' object is not iterable."),
    };

    private static void Assign(AssignTarget target, object? value, Frame frame)
    {
        if (target.Attribute is not null)
        {
            var ns = Lookup(target.Names[0], frame);
            if (ns is not Namespace space)
            {
                throw Fail(target, $"Cannot assign attribute '{target.Attribute}' on '{target.Names[0]}', which is not a namespace() object.");
            }

            space.Attributes[target.Attribute] = value;
            return;
        }

        if (!target.Unpack)
        {
            frame.Variables[target.Names[0]] = value;
            return;
        }

        var items = value switch
        {
            List<object?> or PyTuple => Py.Items(value),
            string s => Py.CodePoints(s),
            _ => throw Fail(target, $"Cannot unpack a '{Py.TypeName(value)}' into {target.Names.Count} names."),
        };
        if (items.Count != target.Names.Count)
        {
            throw Fail(target, $"Cannot unpack {items.Count} values into {target.Names.Count} names.");
        }

        for (var i = 0; i < items.Count; i++)
        {
            frame.Variables[target.Names[i]] = items[i];
        }
    }

    private static object? Lookup(string name, Frame frame)
    {
        for (var f = frame; f is not null; f = f.Parent)
        {
            if (f.Variables.TryGetValue(name, out var value))
            {
                return value;
            }
        }

        return Undefined.Named(name);
    }

    private object? Evaluate(Expr expr, Frame frame)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return Lookup(name.Name, frame);
            case ListExpr list:
                var items = new List<object?>(list.Items.Count);
                foreach (var item in list.Items)
                {
                    items.Add(Evaluate(item, frame));
                }

                return list.IsTuple ? new PyTuple(items) : items;
            case DictExpr dict:
                var result = Py.NewDict();
                foreach (var (k, v) in dict.Pairs)
                {
                    var key = Evaluate(k, frame);
                    if (key is null or Undefined or List<object?> or OrderedDictionary<object, object?> or Namespace)
                    {
                        throw Fail(k, $"A '{Py.TypeName(key)}' cannot be a dict key.");
                    }

                    result[key!] = Evaluate(v, frame);
                }

                return result;
            case AttrExpr attr:
                return Builtins.GetAttribute(Evaluate(attr.Target, frame), attr.Name, attr);
            case ItemExpr item:
                return Builtins.GetItem(Evaluate(item.Target, frame), Evaluate(item.Index, frame), item);
            case SliceExpr slice:
                return Builtins.Slice(
                    Evaluate(slice.Target, frame),
                    slice.Start is null ? null : Evaluate(slice.Start, frame),
                    slice.Stop is null ? null : Evaluate(slice.Stop, frame),
                    slice.Step is null ? null : Evaluate(slice.Step, frame),
                    slice);
            case CallExpr call:
                var callee = Evaluate(call.Callee, frame);
                var (positional, named) = EvaluateArguments(call.Arguments, frame);
                return callee switch
                {
                    PyFunction fn => Builtins.Invoke(fn, positional, named, call),
                    Undefined u => throw Fail(call, u.Description + "; it cannot be called."),
                    _ => throw Fail(call, $"'{Py.TypeName(callee)}' object is not callable."),
                };
            case FilterExpr filter:
                var (fargs, fnamed) = EvaluateArguments(filter.Arguments, frame);
                return Builtins.ApplyFilter(filter.Name, Evaluate(filter.Value, frame), fargs, fnamed, filter);
            case TestExpr test:
                var (targs, _) = EvaluateArguments(test.Arguments, frame);
                return Builtins.ApplyTest(test.Name, Evaluate(test.Value, frame), targs, test);
            case UnaryExpr unary:
                var operand = Evaluate(unary.Operand, frame);
                return unary.Op switch
                {
                    "not" => !Py.Truthy(operand),
                    "-" => Builtins.Negate(operand, unary),
                    _ => Py.IsNumber(operand) ? (operand is bool b ? (object)(b ? 1L : 0L) : operand) : throw Fail(unary, $"bad operand type for unary +: '{Py.TypeName(operand)}'"),
                };
            case BinaryExpr { Op: "and" } and:
                var left = Evaluate(and.Left, frame);
                return Py.Truthy(left) ? Evaluate(and.Right, frame) : left;
            case BinaryExpr { Op: "or" } or:
                var first = Evaluate(or.Left, frame);
                return Py.Truthy(first) ? first : Evaluate(or.Right, frame);
            case BinaryExpr binary:
                return Builtins.Arithmetic(binary.Op, Evaluate(binary.Left, frame), Evaluate(binary.Right, frame), binary);
            case CompareExpr compare:
                var a = Evaluate(compare.First, frame);
                foreach (var (op, operandExpr) in compare.Rest)
                {
                    var b = Evaluate(operandExpr, frame);
                    if (!Builtins.Compare(op, a, b, compare))
                    {
                        return false;
                    }

                    a = b;
                }

                return true;
            case ConditionalExpr conditional:
                if (Py.Truthy(Evaluate(conditional.Condition, frame)))
                {
                    return Evaluate(conditional.Then, frame);
                }

                return conditional.Otherwise is null
                    ? new Undefined("the conditional expression has no else branch")
                    : Evaluate(conditional.Otherwise, frame);
            default:
                throw Fail(expr, $"Unknown expression {expr.GetType().Name}.");
        }
    }

    private (List<object?> Positional, Dictionary<string, object?> Named) EvaluateArguments(CallArguments arguments, Frame frame)
    {
        var positional = new List<object?>(arguments.Positional.Count);
        foreach (var p in arguments.Positional)
        {
            positional.Add(Evaluate(p, frame));
        }

        var named = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in arguments.Named)
        {
            named[name] = Evaluate(value, frame);
        }

        return (positional, named);
    }
}
