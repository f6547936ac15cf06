namespace KvFusion.Diagnostics.Rag;

/// <summary>A question of the demo and the corpus page that answers it.</summary>
/// <param name="Text">The question.</param>
/// <param name="Page">The page (path inside the corpus) whose text answers it.</param>
public sealed record RagQuestion(string Text, string Page);

/// <summary>
/// The fixed part of <c>../shared/corpus/pydocs.tar.xz</c> the demo ingests, and its questions: ten short library
/// pages (about 36 KB of text, some 40 chunks of 256 tokens) and one question about each. The whole corpus (497 files,
/// 11 MB) takes far longer than a demo should on two cores; these pages keep ingest to seconds while retrieval
/// still has to pick the right page out of ten.
/// </summary>
public static class RagDemoSet
{
    /// <summary>The shared corpus, relative to the repository's parent (CI lays ../shared beside the checkout).</summary>
    public const string SharedCorpus = "shared/corpus/pydocs.tar.xz";

    /// <summary>
    /// The corpus: <paramref name="explicitPath"/>, else <c>../shared/corpus/pydocs.tar.xz</c> found from the working
    /// directory or the program's directory upwards (as the default model is found).
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing found; the message says how to point at a corpus.</exception>
    public static string FindCorpus(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            return File.Exists(explicitPath) || Directory.Exists(explicitPath)
                ? Path.GetFullPath(explicitPath)
                : throw new FileNotFoundException($"Corpus not found: {explicitPath} (expected a .tar.xz/.tar archive or a directory of .txt/.rst files).", explicitPath);
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, SharedCorpus);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new FileNotFoundException($"No corpus given and ../{SharedCorpus} was not found above the working directory: pass the corpus archive or folder.", SharedCorpus);
    }

    /// <summary>The pages ingested, as paths inside the corpus archive.</summary>
    public static IReadOnlyList<string> Pages { get; } =
    [
        "library/atexit.rst.txt",
        "library/colorsys.rst.txt",
        "library/copy.rst.txt",
        "library/fnmatch.rst.txt",
        "library/getpass.rst.txt",
        "library/glob.rst.txt",
        "library/keyword.rst.txt",
        "library/linecache.rst.txt",
        "library/secrets.rst.txt",
        "library/tomllib.rst.txt",
    ];

    /// <summary>The questions, in the order they are asked; each names the page that answers it.</summary>
    public static IReadOnlyList<RagQuestion> Questions { get; } =
    [
        new("What is the difference between copy.copy() and copy.deepcopy()?", "library/copy.rst.txt"),
        new("How do I convert an RGB color to HSV with colorsys?", "library/colorsys.rst.txt"),
        new("How does fnmatch.fnmatch() compare a filename with a pattern?", "library/fnmatch.rst.txt"),
        new("What does glob.glob() return for a pathname pattern?", "library/glob.rst.txt"),
        new("How do I generate a secure URL-safe token with the secrets module?", "library/secrets.rst.txt"),
        new("When are the functions registered with atexit.register() called?", "library/atexit.rst.txt"),
        new("How does getpass.getpass() prompt for a password?", "library/getpass.rst.txt"),
        new("What does linecache.getline() return?", "library/linecache.rst.txt"),
        new("How do I parse a TOML file with tomllib.load()?", "library/tomllib.rst.txt"),
        new("How can I test whether a string is a Python keyword?", "library/keyword.rst.txt"),
    ];
}
