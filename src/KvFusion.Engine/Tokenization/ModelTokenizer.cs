using System.Text;
using System.Text.Json;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Tokenization;

/// <summary>
/// The model's own tokenizer (Hugging Face <c>tokenizer.json</c>, run by the tokenizers library through
/// Tokenizers.DotNet), so ids match what transformers produces.
/// </summary>
public sealed class ModelTokenizer : IDisposable
{
    private readonly Tokenizers.DotNet.Tokenizer _tokenizer;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _specialTokens;
    private readonly Dictionary<int, string> _specialById;

    private ModelTokenizer(string path, Tokenizers.DotNet.Tokenizer tokenizer, int vocabSize, Dictionary<string, int> specialTokens)
    {
        Path = path;
        _tokenizer = tokenizer;
        VocabSize = vocabSize;
        _specialTokens = specialTokens;
        _specialById = specialTokens.ToDictionary(p => p.Value, p => p.Key);
    }

    /// <summary>Path of tokenizer.json.</summary>
    public string Path { get; }

    /// <summary>Number of token ids the tokenizer can produce (largest id + 1).</summary>
    public int VocabSize { get; }

    /// <summary>The special (added) tokens by content.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _specialTokens;

    /// <summary>Loads <c>tokenizer.json</c>.</summary>
    /// <exception cref="ModelLoadException">Missing or malformed.</exception>
    public static ModelTokenizer Load(string tokenizerJsonPath)
    {
        if (!File.Exists(tokenizerJsonPath))
        {
            throw new ModelLoadException($"tokenizer.json not found: {tokenizerJsonPath}");
        }

        var (vocabSize, specials) = Inspect(tokenizerJsonPath);
        Tokenizers.DotNet.Tokenizer native;
        try
        {
            native = new Tokenizers.DotNet.Tokenizer(tokenizerJsonPath);
        }
        catch (Exception e) when (e is Tokenizers.DotNet.TokenizerException or InvalidOperationException)
        {
            throw new ModelLoadException($"{tokenizerJsonPath} could not be loaded by the tokenizers library: {e.Message}", e);
        }

        return new ModelTokenizer(tokenizerJsonPath, native, vocabSize, specials);
    }

    /// <summary>Encodes text as the model's tokenizer does (with its own special-token rules).</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        uint[] ids;
        lock (_gate)
        {
            ids = _tokenizer.Encode(text);
        }

        var result = new int[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            result[i] = (int)ids[i];
        }

        return result;
    }

    /// <summary>
    /// Decodes ids to text. Special tokens are written as their content (the native decoder would drop them), so
    /// decode(encode(text)) == text also for text that contains them.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty)
        {
            return string.Empty;
        }

        StringBuilder? sb = null;
        var runStart = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            if (_specialById.TryGetValue(ids[i], out var content))
            {
                sb ??= new StringBuilder();
                sb.Append(DecodeRun(ids[runStart..i]));
                sb.Append(content);
                runStart = i + 1;
            }
        }

        if (sb is null)
        {
            return DecodeRun(ids);
        }

        sb.Append(DecodeRun(ids[runStart..]));
        return sb.ToString();
    }

    private string DecodeRun(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty)
        {
            return string.Empty;
        }

        var u = new uint[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {ids[i]} is outside the tokenizer's vocabulary of {VocabSize}.");
            }

            u[i] = (uint)ids[i];
        }

        lock (_gate)
        {
            return _tokenizer.Decode(u);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _tokenizer.Dispose();

    private static (int VocabSize, Dictionary<string, int> Specials) Inspect(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            var maxId = -1;
            if (root.TryGetProperty("model", out var model) && model.TryGetProperty("vocab", out var vocab) && vocab.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in vocab.EnumerateObject())
                {
                    maxId = Math.Max(maxId, p.Value.GetInt32());
                }
            }

            var specials = new Dictionary<string, int>(StringComparer.Ordinal);
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            {
                foreach (var t in added.EnumerateArray())
                {
                    var id = t.GetProperty("id").GetInt32();
                    maxId = Math.Max(maxId, id);
                    if (t.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True)
                    {
                        specials[t.GetProperty("content").GetString()!] = id;
                    }
                }
            }

            if (maxId < 0)
            {
                throw new ModelLoadException($"{path} has no vocabulary.");
            }

            return (maxId + 1, specials);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ModelLoadException($"{path} is not a valid tokenizer.json: {e.Message}", e);
        }
    }
}

/// <summary>
/// Turns a growing list of generated ids into text pieces without splitting multi-byte characters: a piece is
/// emitted only once its bytes decode completely.
/// </summary>
public sealed class IncrementalDecoder
{
    private readonly ModelTokenizer _tokenizer;
    private readonly List<int> _ids = [];
    private int _prefixStart;
    private int _readStart;

    /// <summary>Creates a decoder over the tokenizer.</summary>
    public IncrementalDecoder(ModelTokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Adds a token; returns the newly complete text (possibly empty).</summary>
    public string Add(int id)
    {
        _ids.Add(id);
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        var prefix = _tokenizer.Decode(span[_prefixStart.._readStart]);
        var full = _tokenizer.Decode(span[_prefixStart..]);
        if (full.Length > prefix.Length && !full.EndsWith('\uFFFD') && full.StartsWith(prefix, StringComparison.Ordinal))
        {
            var piece = full[prefix.Length..];
            _prefixStart = _readStart;
            _readStart = _ids.Count;
            return piece;
        }

        return string.Empty;
    }

    /// <summary>Whatever is still held back (an incomplete character at the end).</summary>
    public string Flush()
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        var prefix = _tokenizer.Decode(span[_prefixStart.._readStart]);
        var full = _tokenizer.Decode(span[_prefixStart..]);
        _prefixStart = _readStart = _ids.Count;
        return full.Length > prefix.Length ? full[prefix.Length..] : string.Empty;
    }
}
