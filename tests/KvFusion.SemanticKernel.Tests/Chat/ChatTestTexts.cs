namespace KvFusion.SemanticKernel.Tests.Chat;

/// <summary>Chunks and questions in the style of the Python docs tiny-pydocs was trained on.</summary>
internal static class ChatTestTexts
{
    public const string SystemPrompt = "You answer questions about the Python standard library.";

    public const string Len = "len(s) returns the length (the number of items) of an object. The argument may be a sequence such as a string, bytes, tuple, list, or range, or a collection such as a dictionary, set, or frozen set.";

    public const string Sorted = "sorted(iterable, /, *, key=None, reverse=False) returns a new sorted list from the items in iterable. key specifies a function of one argument that is used to extract a comparison key from each element.";

    public const string Zip = "zip(*iterables, strict=False) iterates over several iterables in parallel, producing tuples with an item from each one. By default, zip stops when the shortest iterable is exhausted.";

    public const string Question = "What does len return for a dictionary?";
}
