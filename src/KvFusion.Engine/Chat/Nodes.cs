namespace KvFusion.Engine.Chat;

/// <summary>A node of a parsed template, with its position in the source for error messages.</summary>
internal abstract class Node(int line, int column)
{
    public int Line { get; } = line;

    public int Column { get; } = column;
}

internal abstract class Expr(int line, int column) : Node(line, column);

internal sealed class LiteralExpr(object? value, int line, int column) : Expr(line, column)
{
    public object? Value { get; } = value;
}

internal sealed class NameExpr(string name, int line, int column) : Expr(line, column)
{
    public string Name { get; } = name;
}

internal sealed class ListExpr(List<Expr> items, bool isTuple, int line, int column) : Expr(line, column)
{
    public List<Expr> Items { get; } = items;

    public bool IsTuple { get; } = isTuple;
}

internal sealed class DictExpr(List<(Expr Key, Expr Value)> pairs, int line, int column) : Expr(line, column)
{
    public List<(Expr Key, Expr Value)> Pairs { get; } = pairs;
}

internal sealed class AttrExpr(Expr target, string name, int line, int column) : Expr(line, column)
{
    public Expr Target { get; } = target;

    public string Name { get; } = name;
}

internal sealed class ItemExpr(Expr target, Expr index, int line, int column) : Expr(line, column)
{
    public Expr Target { get; } = target;

    public Expr Index { get; } = index;
}

internal sealed class SliceExpr(Expr target, Expr? start, Expr? stop, Expr? step, int line, int column) : Expr(line, column)
{
    public Expr Target { get; } = target;

    public Expr? Start { get; } = start;

    public Expr? Stop { get; } = stop;

    public Expr? Step { get; } = step;
}

internal sealed class CallArguments
{
    public List<Expr> Positional { get; } = [];

    public List<(string Name, Expr Value)> Named { get; } = [];
}

internal sealed class CallExpr(Expr callee, CallArguments arguments, int line, int column) : Expr(line, column)
{
    public Expr Callee { get; } = callee;

    public CallArguments Arguments { get; } = arguments;
}

internal sealed class FilterExpr(Expr value, string name, CallArguments arguments, int line, int column) : Expr(line, column)
{
    public Expr Value { get; } = value;

    public string Name { get; } = name;

    public CallArguments Arguments { get; } = arguments;
}

internal sealed class TestExpr(Expr value, string name, CallArguments arguments, int line, int column) : Expr(line, column)
{
    public Expr Value { get; } = value;

    public string Name { get; } = name;

    public CallArguments Arguments { get; } = arguments;
}

internal sealed class UnaryExpr(string op, Expr operand, int line, int column) : Expr(line, column)
{
    public string Op { get; } = op;

    public Expr Operand { get; } = operand;
}

internal sealed class BinaryExpr(string op, Expr left, Expr right, int line, int column) : Expr(line, column)
{
    public string Op { get; } = op;

    public Expr Left { get; } = left;

    public Expr Right { get; } = right;
}

internal sealed class CompareExpr(Expr first, List<(string Op, Expr Operand)> rest, int line, int column) : Expr(line, column)
{
    public Expr First { get; } = first;

    public List<(string Op, Expr Operand)> Rest { get; } = rest;
}

internal sealed class ConditionalExpr(Expr condition, Expr then, Expr? otherwise, int line, int column) : Expr(line, column)
{
    public Expr Condition { get; } = condition;

    public Expr Then { get; } = then;

    public Expr? Otherwise { get; } = otherwise;
}

internal abstract class Statement(int line, int column) : Node(line, column);

internal sealed class TextStatement(string text, int line, int column) : Statement(line, column)
{
    public string Text { get; } = text;
}

internal sealed class OutputStatement(Expr value, int line, int column) : Statement(line, column)
{
    public Expr Value { get; } = value;
}

internal sealed class IfStatement(List<(Expr Condition, List<Statement> Body)> branches, List<Statement>? otherwise, int line, int column)
    : Statement(line, column)
{
    public List<(Expr Condition, List<Statement> Body)> Branches { get; } = branches;

    public List<Statement>? Otherwise { get; } = otherwise;
}

/// <summary>What a <c>set</c> or <c>for</c> assigns to: one name, several (tuple unpacking), or a namespace attribute.</summary>
internal sealed class AssignTarget(List<string> names, string? attribute, bool unpack, int line, int column) : Node(line, column)
{
    public List<string> Names { get; } = names;

    /// <summary>For <c>ns.attr</c>: the attribute; <see cref="Names"/> then holds the namespace variable.</summary>
    public string? Attribute { get; } = attribute;

    public bool Unpack { get; } = unpack;
}

internal sealed class ForStatement(AssignTarget target, Expr iterable, Expr? filter, List<Statement> body, List<Statement>? otherwise, int line, int column)
    : Statement(line, column)
{
    public AssignTarget Target { get; } = target;

    public Expr Iterable { get; } = iterable;

    public Expr? Filter { get; } = filter;

    public List<Statement> Body { get; } = body;

    public List<Statement>? Otherwise { get; } = otherwise;
}

internal sealed class SetStatement(AssignTarget target, Expr? value, List<Statement>? body, int line, int column) : Statement(line, column)
{
    public AssignTarget Target { get; } = target;

    /// <summary>The value, or null for a block set whose <see cref="Body"/> renders the value.</summary>
    public Expr? Value { get; } = value;

    public List<Statement>? Body { get; } = body;
}

internal sealed class LoopControlStatement(bool isBreak, int line, int column) : Statement(line, column)
{
    public bool IsBreak { get; } = isBreak;
}
