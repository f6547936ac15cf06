using System.Text.RegularExpressions;

namespace KvFusion.Hub;

/// <summary>A Hugging Face model named as <c>hf:OWNER/NAME[@REVISION]</c>.</summary>
/// <param name="Owner">The user or organisation that owns the repository.</param>
/// <param name="Name">The repository's name.</param>
/// <param name="Revision">A branch, tag or commit sha; <c>main</c> when the reference names none.</param>
public sealed partial record HubModelReference(string Owner, string Name, string Revision)
{
    /// <summary>The prefix that marks a model argument as a hub reference.</summary>
    public const string Prefix = "hf:";

    /// <summary>The revision used when the reference names none.</summary>
    public const string DefaultRevision = "main";

    /// <summary>The repository id, <c>OWNER/NAME</c>.</summary>
    public string RepoId => $"{Owner}/{Name}";

    /// <summary>Whether <see cref="Revision"/> is a full commit sha (then a cached snapshot never needs the network).</summary>
    public bool IsCommitSha => CommitSha().IsMatch(Revision);

    /// <summary>Parses <c>hf:OWNER/NAME[@REVISION]</c>; throws <see cref="FormatException"/> naming what is wrong.</summary>
    public static HubModelReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (!reference.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FormatException($"'{reference}' is not a hub model reference: write {Prefix}OWNER/NAME[@REVISION].");
        }

        var body = reference[Prefix.Length..];
        var revision = DefaultRevision;
        var at = body.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            revision = body[(at + 1)..];
            body = body[..at];
            if (!RevisionPattern().IsMatch(revision) || revision.Contains("..", StringComparison.Ordinal))
            {
                throw new FormatException($"'{reference}' has an invalid revision '{revision}': use a branch, tag or commit sha (letters, digits, '.', '_', '-', '/').");
            }
        }

        var slash = body.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || body.IndexOf('/', slash + 1) >= 0)
        {
            throw new FormatException($"'{reference}' must name exactly OWNER/NAME after '{Prefix}' (for example {Prefix}HuggingFaceTB/SmolLM2-135M-Instruct).");
        }

        var owner = body[..slash];
        var name = body[(slash + 1)..];
        foreach (var (part, what) in new[] { (owner, "owner"), (name, "name") })
        {
            if (!Segment().IsMatch(part) || part.Contains("..", StringComparison.Ordinal) || part.Length > 96)
            {
                throw new FormatException($"'{reference}' has an invalid {what} '{part}': use letters, digits, '.', '_' and '-', starting with a letter or digit.");
            }
        }

        return new HubModelReference(owner, name, revision);
    }

    /// <summary>Parses like <see cref="Parse"/>, returning false instead of throwing.</summary>
    public static bool TryParse(string? reference, out HubModelReference? result)
    {
        result = null;
        if (reference is null)
        {
            return false;
        }

        try
        {
            result = Parse(reference);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Prefix}{Owner}/{Name}@{Revision}";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex Segment();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
    private static partial Regex RevisionPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitSha();
}
