using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace KvFusion.Engine.Tokenization;

/// <summary>
/// Writes a Hugging Face <c>tokenizer.json</c> (and <c>tokenizer_config.json</c>) for the smallest tokenizer that
/// encodes any text: GPT-2 style byte-level BPE without merges, so every UTF-8 byte is one token. Synthetic models
/// use it: 257 ids fit every real vocabulary, and encoding is lossless, so benchmarks can feed real text.
/// </summary>
internal static class ByteLevelTokenizerWriter
{
    /// <summary>The one special token, used as BOS, EOS and padding.</summary>
    public const string EndOfTextToken = "<|endoftext|>";

    /// <summary>Id of <see cref="EndOfTextToken"/>, right after the 256 byte tokens.</summary>
    public const int EndOfTextId = 256;

    /// <summary>Number of ids the tokenizer produces.</summary>
    public const int VocabSize = 257;

    /// <summary>File name of the tokenizer.</summary>
    public const string TokenizerFileName = "tokenizer.json";

    /// <summary>File name of the transformers tokenizer settings.</summary>
    public const string TokenizerConfigFileName = "tokenizer_config.json";

    // HF writes these files with literal Unicode (Ġ, Ā...); the relaxed encoder keeps them readable. The files are
    // never embedded in HTML, which is all the stricter default guards against.
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// GPT-2's <c>bytes_to_unicode</c> in its own order: entry <c>i</c> is the byte whose token has id <c>i</c>, and
    /// the character that stands for it in the vocabulary. Printable bytes map to themselves and come first; the
    /// rest (controls, space, DEL, NBSP, soft hyphen) map to U+0100 onwards.
    /// </summary>
    public static IReadOnlyList<(byte Byte, char Symbol)> ByteSymbols { get; } = BuildByteSymbols();

    /// <summary>Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c> into <paramref name="directory"/>.</summary>
    /// <param name="directory">An existing directory; files of the same name are replaced.</param>
    /// <param name="modelMaxLength">The model's context length, recorded as <c>model_max_length</c>.</param>
    public static void Write(string directory, int modelMaxLength)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        File.WriteAllBytes(Path.Combine(directory, TokenizerFileName), CreateTokenizerJson());
        File.WriteAllBytes(Path.Combine(directory, TokenizerConfigFileName), CreateTokenizerConfigJson(modelMaxLength));
    }

    /// <summary>The UTF-8 bytes of <c>tokenizer.json</c>.</summary>
    public static byte[] CreateTokenizerJson()
    {
        var buffer = new ArrayBufferWriter<byte>(16 * 1024);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            w.WriteStartObject();
            w.WriteNumber("id", EndOfTextId);
            w.WriteString("content", EndOfTextToken);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteNull("normalizer");

            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();

            w.WriteNull("post_processor");

            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();

            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            var symbols = ByteSymbols;
            for (var id = 0; id < symbols.Count; id++)
            {
                w.WriteNumber(symbols[id].Symbol.ToString(), id);
            }

            // GPT-2 also lists its special token in the vocabulary; the added_tokens entry is what makes it special.
            w.WriteNumber(EndOfTextToken, EndOfTextId);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The UTF-8 bytes of <c>tokenizer_config.json</c> (what transformers' AutoTokenizer reads).</summary>
    /// <param name="modelMaxLength">The model's context length.</param>
    public static byte[] CreateTokenizerConfigJson(int modelMaxLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(modelMaxLength);
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteBoolean("add_bos_token", false);
            w.WriteBoolean("add_eos_token", false);
            w.WriteBoolean("add_prefix_space", false);
            w.WriteStartObject("added_tokens_decoder");
            w.WriteStartObject(EndOfTextId.ToString(CultureInfo.InvariantCulture));
            w.WriteString("content", EndOfTextToken);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteString("bos_token", EndOfTextToken);
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            w.WriteString("eos_token", EndOfTextToken);
            w.WriteNumber("model_max_length", modelMaxLength);
            w.WriteString("pad_token", EndOfTextToken);
            w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            w.WriteNull("unk_token");
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static (byte, char)[] BuildByteSymbols()
    {
        // Exactly GPT-2's bytes_to_unicode(): the printable ranges keep their code points, in order; the remaining
        // bytes follow in byte order and take 256, 257, ...
        var result = new List<(byte, char)>(256);
        var printable = new bool[256];
        foreach (var (lo, hi) in new[] { ('!', '~'), ('\u00A1', '\u00AC'), ('\u00AE', '\u00FF') })
        {
            for (int c = lo; c <= hi; c++)
            {
                printable[c] = true;
                result.Add(((byte)c, (char)c));
            }
        }

        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            if (!printable[b])
            {
                result.Add(((byte)b, (char)next++));
            }
        }

        return [.. result];
    }
}
