using System.Text;
using SharpCompress.Readers;

namespace KvFusion.Cache.Evaluation;

/// <summary>One text document of a corpus.</summary>
/// <param name="Path">Path inside the archive or directory, with '/' separators and no leading "./".</param>
/// <param name="Text">The document's text (UTF-8 decoded, without a byte order mark).</param>
public sealed record CorpusDocument(string Path, string Text);

/// <summary>
/// Reads the text documents (.txt and .rst files) of a corpus: a tar archive, optionally compressed (the shared
/// ../shared/corpus/pydocs.tar.xz), or a directory. Documents come ordered by path (ordinal), whatever the order in
/// the archive or file system, so everything built from them is deterministic.
/// </summary>
public sealed class CorpusReader
{
    // Strict decoding: a file that is not UTF-8 is reported, not silently turned into U+FFFD that would then leak
    // into chunks and evaluation cases.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Creates a reader of an archive file or a directory.</summary>
    public CorpusReader(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = path;
    }

    /// <summary>The archive or directory.</summary>
    public string Path { get; }

    /// <summary>Whether a file name is a text document: .txt or .rst (which includes the corpus's *.rst.txt).</summary>
    public static bool IsTextDocument(string name) =>
        name.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".rst", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads every text document, ordered by path.</summary>
    /// <exception cref="FileNotFoundException">The path is neither a file nor a directory.</exception>
    /// <exception cref="CorpusException">The archive cannot be read, or a document is not UTF-8.</exception>
    public IReadOnlyList<CorpusDocument> ReadAll(CancellationToken cancellationToken = default)
    {
        var documents = Directory.Exists(Path) ? ReadDirectory(cancellationToken)
            : File.Exists(Path) ? ReadArchive(cancellationToken)
            : throw new FileNotFoundException($"Corpus not found: {Path} (expected a .tar.xz/.tar archive or a directory of .txt/.rst files).", Path);
        documents.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return documents;
    }

    private List<CorpusDocument> ReadDirectory(CancellationToken cancellationToken)
    {
        var root = System.IO.Path.GetFullPath(Path);
        var documents = new List<CorpusDocument>();
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!IsTextDocument(file))
            {
                continue;
            }

            var relative = System.IO.Path.GetRelativePath(root, file).Replace('\\', '/');
            documents.Add(new CorpusDocument(relative, Decode(File.ReadAllBytes(file), relative)));
        }

        return documents;
    }

    private List<CorpusDocument> ReadArchive(CancellationToken cancellationToken)
    {
        var documents = new List<CorpusDocument>();
        try
        {
            using var stream = File.OpenRead(Path);
            using var reader = ReaderFactory.OpenReader(stream);
            while (reader.MoveToNextEntry())
            {
                cancellationToken.ThrowIfCancellationRequested();
                var entry = reader.Entry;
                if (entry.IsDirectory || entry.Key is not { } key || !IsTextDocument(key))
                {
                    continue;
                }

                using var entryStream = reader.OpenEntryStream();
                using var buffer = new MemoryStream();
                entryStream.CopyTo(buffer);
                var name = NormalizeEntryPath(key);
                documents.Add(new CorpusDocument(name, Decode(buffer.ToArray(), name)));
            }
        }
        catch (Exception e) when (e is not (CorpusException or OperationCanceledException or IOException))
        {
            // SharpCompress reports damaged or unknown archives with its own exception types.
            throw new CorpusException($"{Path} could not be read as an archive: {e.Message}", e) { FilePath = Path };
        }

        return documents;
    }

    private static string NormalizeEntryPath(string key)
    {
        var name = key.Replace('\\', '/');
        while (name.StartsWith("./", StringComparison.Ordinal))
        {
            name = name[2..];
        }

        return name.TrimStart('/');
    }

    private static string Decode(byte[] bytes, string name)
    {
        ReadOnlySpan<byte> span = bytes;
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            span = span[3..];
        }

        try
        {
            return StrictUtf8.GetString(span);
        }
        catch (DecoderFallbackException e)
        {
            throw new CorpusException($"Corpus document {name} is not valid UTF-8: {e.Message}", e);
        }
    }
}
