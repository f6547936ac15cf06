#pragma warning disable MEVD9001 // The provider services are the abstractions' own helpers for reading record definitions.
using System.Linq.Expressions;
using System.Reflection;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>
/// Turns a LINQ filter over a record into a predicate over a stored record's decoded values, so filtering never builds a
/// record. Supported: ==, !=, &lt;, &lt;=, &gt;, &gt;=, &amp;&amp;, ||, !, constants and captured variables, property access on key and
/// data properties, Contains (a collection property containing a value, a captured collection containing a property, a
/// string property containing a substring). Anything else throws <see cref="NotSupportedException"/> naming it.
/// </summary>
internal static class RecordFilterCompiler
{
    private const string Supported =
        "==, !=, <, <=, >, >=, &&, ||, !, constants, captured variables, key and data properties, and Contains";

    private static readonly MethodInfo EnumerableContains = typeof(Enumerable).GetMethods(BindingFlags.Public | BindingFlags.Static)
        .Single(m => m.Name == nameof(Enumerable.Contains) && m.GetParameters().Length == 2);

    private static readonly MethodInfo StringContains = typeof(string).GetMethod(nameof(string.Contains), [typeof(string)])!;

    /// <summary>Compiles the filter; values are indexed as <see cref="CollectionModel.Properties"/>.</summary>
    public static Func<object?[], bool> Compile(LambdaExpression filter, CollectionModel model)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var values = Expression.Parameter(typeof(object?[]), "values");
        var body = new Rewriter(filter.Parameters[0], values, model).Visit(filter.Body)!;
        if (body.Type != typeof(bool))
        {
            throw new NotSupportedException($"The filter '{filter}' must be a bool expression.");
        }
        return Expression.Lambda<Func<object?[], bool>>(body, values).Compile(preferInterpretation: false);
    }

    private sealed class Rewriter(ParameterExpression record, ParameterExpression values, CollectionModel model) : ExpressionVisitor
    {
        public override Expression? Visit(Expression? node)
        {
            if (node is null)
            {
                return null;
            }
            return node.NodeType switch
            {
                ExpressionType.AndAlso or ExpressionType.OrElse or ExpressionType.Not or ExpressionType.Equal
                    or ExpressionType.NotEqual or ExpressionType.LessThan or ExpressionType.LessThanOrEqual
                    or ExpressionType.GreaterThan or ExpressionType.GreaterThanOrEqual or ExpressionType.Constant
                    or ExpressionType.MemberAccess or ExpressionType.Convert or ExpressionType.ConvertChecked
                    or ExpressionType.Call or ExpressionType.Parameter or ExpressionType.NewArrayInit
                    or ExpressionType.ListInit or ExpressionType.New or ExpressionType.Quote => base.Visit(node),
                _ => throw Unsupported(node),
            };
        }

        protected override Expression VisitParameter(ParameterExpression node)
            => node == record
                ? throw new NotSupportedException($"The filter uses the record '{node.Name}' itself; compare its properties instead. Supported: {Supported}.")
                : node;

        protected override Expression VisitMember(MemberExpression node)
        {
            if (node.Expression == record)
            {
                return Bind(node.Member.Name, node.Type, node);
            }
            if (node.Expression is not null && References(node.Expression))
            {
                throw Unsupported(node);
            }
            return base.VisitMember(node);
        }

        protected override Expression VisitMethodCall(MethodCallExpression node)
        {
            // A dynamic record's value: record["Name"].
            if (node.Object == record && node.Method.Name == "get_Item" && node.Arguments is [ConstantExpression { Value: string name }])
            {
                return Bind(name, node.Type, node);
            }
            if (node.Method.Name == nameof(Enumerable.Contains))
            {
                return RewriteContains(node);
            }
            if (References(node))
            {
                throw Unsupported(node);
            }
            // A call over captured values only (for example a helper computing a constant) is evaluated as written.
            return base.VisitMethodCall(node);
        }

        private BinaryExpression RewriteContains(MethodCallExpression node)
        {
            Expression source;
            Expression item;
            if (node.Object is null && node.Arguments.Count == 2)
            {
                // Enumerable.Contains(source, item) or, with C# 14's first-class spans, MemoryExtensions.Contains(span, item).
                source = Unspan(node.Arguments[0]);
                item = node.Arguments[1];
            }
            else if (node.Object is not null && node.Arguments.Count == 1)
            {
                source = node.Object;
                item = node.Arguments[0];
            }
            else
            {
                throw Unsupported(node);
            }

            var visitedSource = Visit(source)!;
            var visitedItem = Visit(item)!;
            if (visitedSource.Type == typeof(string))
            {
                if (visitedItem.Type != typeof(string))
                {
                    throw Unsupported(node);
                }
                // A missing string contains nothing.
                return Expression.AndAlso(
                    Expression.NotEqual(visitedSource, Expression.Constant(null, typeof(string))),
                    Expression.Call(visitedSource, StringContains, visitedItem));
            }
            var elementType = ElementType(visitedSource.Type) ?? throw Unsupported(node);
            var sequence = Expression.Convert(visitedSource, typeof(IEnumerable<>).MakeGenericType(elementType));
            var element = visitedItem.Type == elementType ? visitedItem : Expression.Convert(visitedItem, elementType);
            return Expression.AndAlso(
                Expression.NotEqual(sequence, Expression.Constant(null, sequence.Type)),
                Expression.Call(EnumerableContains.MakeGenericMethod(elementType), sequence, element));
        }

        private static Expression Unspan(Expression argument)
        {
            // op_Implicit(array) to ReadOnlySpan<T> or Span<T>: the array itself is the sequence.
            while (true)
            {
                switch (argument)
                {
                    case MethodCallExpression { Method.Name: "op_Implicit", Arguments: [var inner] }:
                        argument = inner;
                        continue;
                    case UnaryExpression { NodeType: ExpressionType.Convert, Type.IsByRefLike: true } convert:
                        argument = convert.Operand;
                        continue;
                    default:
                        return argument;
                }
            }
        }

        private static Type? ElementType(Type type)
        {
            if (type.IsArray)
            {
                return type.GetElementType();
            }
            var enumerable = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IEnumerable<>)
                ? type
                : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
            return enumerable?.GetGenericArguments()[0];
        }

        private UnaryExpression Bind(string name, Type type, Expression node)
        {
            var properties = model.Properties;
            for (var i = 0; i < properties.Count; i++)
            {
                if (properties[i].ModelName != name)
                {
                    continue;
                }
                if (properties[i] is VectorPropertyModel)
                {
                    throw new NotSupportedException($"The filter '{node}' reads vector property '{name}'; filters can read key and data properties only.");
                }
                return Expression.Convert(Expression.ArrayIndex(values, Expression.Constant(i)), type);
            }
            throw new InvalidOperationException($"The filter '{node}' reads '{name}', which is not a property of the collection's record definition.");
        }

        private bool References(Expression expression) => new RecordFinder(record).Finds(expression);

        private static NotSupportedException Unsupported(Expression node)
            => new($"The filter construct '{node}' ({node.NodeType}) is not supported by ChunkVectorStore. Supported: {Supported}.");
    }

    private sealed class RecordFinder(ParameterExpression record) : ExpressionVisitor
    {
        private bool _found;

        public bool Finds(Expression expression)
        {
            Visit(expression);
            return _found;
        }

        protected override Expression VisitParameter(ParameterExpression node)
        {
            _found |= node == record;
            return node;
        }
    }

}
