using System.Globalization;
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
            throw new ModelLoadException($"tokenizer.json not found: {tokenizerJsonPath}") { FilePath = tokenizerJsonPath };
        }

        var (vocabSize, specials) = Inspect(tokenizerJsonPath);
        Tokenizers.DotNet.Tokenizer native;
        try
        {
            native = new Tokenizers.DotNet.Tokenizer(tokenizerJsonPath);
        }
        catch (Exception e) when (e is Tokenizers.DotNet.TokenizerException or InvalidOperationException)
        {
            throw ModelLoadException.InFile(tokenizerJsonPath, $"could not be loaded by the tokenizers library: {e.Message}", e);
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

    /// <summary>
    /// Reads what the engine needs beyond the native library (vocabulary size, special tokens) and checks it, so
    /// a malformed file fails here with the field named rather than later with a negative size or a duplicate key.
    /// </summary>
    private static (int VocabSize, Dictionary<string, int> Specials) Inspect(string path)
    {
        using var doc = ModelJson.ParseFile(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw ModelLoadException.InFile(path, $"must be a JSON object, got {ModelJson.Describe(root)}.");
        }

        var maxId = -1;
        if (ModelJson.OptionalObject(root, "model", path) is { } model && ModelJson.TryGet(model, "vocab", out var vocab))
        {
            if (vocab.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in vocab.EnumerateObject())
                {
                    maxId = Math.Max(maxId, TokenId(p.Value, path, $"model.vocab.{p.Name}"));
                }
            }
            else if (vocab.ValueKind == JsonValueKind.Array)
            {
                // Unigram models list [piece, score] pairs; the ids are the positions.
                maxId = vocab.GetArrayLength() - 1;
            }
            else
            {
                throw ModelJson.WrongKind(path, "model.vocab", "an object of token ids", vocab);
            }
        }

        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        var specialById = new Dictionary<int, string>();
        if (ModelJson.TryGet(root, "added_tokens", out var added))
        {
            if (added.ValueKind != JsonValueKind.Array)
            {
                throw ModelJson.WrongKind(path, "added_tokens", "an array", added);
            }

            var i = 0;
            foreach (var t in added.EnumerateArray())
            {
                var at = string.Create(CultureInfo.InvariantCulture, $"added_tokens[{i++}]");
                if (t.ValueKind != JsonValueKind.Object)
                {
                    throw ModelJson.WrongKind(path, at, "an object", t);
                }

                var id = TokenId(t.TryGetProperty("id", out var idEl) ? idEl : default, path, at + ".id");
                var content = t.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String
                    ? c.GetString()!
                    : throw ModelJson.WrongKind(path, at + ".content", "the token's text", c);
                maxId = Math.Max(maxId, id);
                if (ModelJson.OptionalBool(t, "special", path, at + ".") == true)
                {
                    if (specialById.TryGetValue(id, out var other) && other != content)
                    {
                        throw ModelLoadException.InJson(path, at + ".id", $"{id} is also the id of special token '{other}'; a special token needs its own id.");
                    }

                    specialById[id] = content;
                    specials[content] = id;
                }
            }
        }

        if (maxId < 0)
        {
            throw ModelLoadException.InFile(path, "has no vocabulary.");
        }

        return (maxId + 1, specials);
    }

    /// <summary>A token id: an integer from 0 to <c>int.MaxValue - 1</c>, so the vocabulary size (largest id + 1) fits.</summary>
    private static int TokenId(JsonElement e, string path, string jsonPath) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id is >= 0 and < int.MaxValue
            ? id
            : throw ModelJson.WrongKind(path, jsonPath, $"a token id from 0 to {int.MaxValue - 1}", e);
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

    /// <summary>
    /// Adds a token; returns the newly complete text (possibly empty). An id past the tokenizer's vocabulary (models pad
    /// their embedding beyond it, and a sampler can pick a padding row) has no text, as in Hugging Face's decode.
    /// </summary>
    public string Add(int id)
    {
        if ((uint)id >= (uint)_tokenizer.VocabSize)
        {
            return string.Empty;
        }

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
