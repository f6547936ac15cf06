using KvFusion.Engine.Models;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Engine.Tests.Tokenization;

public sealed class ModelTokenizerTests
{
    [SkippableFact]
    public void Encodes_all_golden_texts_exactly_like_huggingface_tokenizers_and_round_trips()
    {
        using var tokenizer = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        using var golden = SharedModels.Golden("tiny-pydocs", "tokenizer_golden.json");
        var count = 0;
        foreach (var c in golden.RootElement.EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var expected = SharedModels.Ints(c.GetProperty("ids"));
            var ids = tokenizer.Encode(text);
            Assert.Equal(expected, ids);
            Assert.Equal(text, tokenizer.Decode(ids));
            count++;
        }

        Assert.Equal(12, count);
    }

    [SkippableFact]
    public void Reports_vocabulary_size_and_special_tokens()
    {
        using var tokenizer = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        Assert.Equal(4096, tokenizer.VocabSize);
        Assert.Equal(0, tokenizer.SpecialTokens["<|endoftext|>"]);
    }

    [SkippableFact]
    public void Incremental_decoder_never_splits_a_multibyte_character()
    {
        using var tokenizer = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        const string text = "naïve café → 日本語 ✓ done";
        var ids = tokenizer.Encode(text);
        var decoder = new IncrementalDecoder(tokenizer);
        var pieces = new List<string>();
        foreach (var id in ids)
        {
            pieces.Add(decoder.Add(id));
        }

        pieces.Add(decoder.Flush());
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD', StringComparison.Ordinal));
        Assert.Equal(text, string.Concat(pieces));
    }

    [SkippableFact]
    public void Incremental_decoder_gives_no_text_for_an_id_past_the_vocabulary_and_keeps_decoding()
    {
        using var tokenizer = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        var ids = tokenizer.Encode("import json");
        var decoder = new IncrementalDecoder(tokenizer);
        var pieces = new List<string> { decoder.Add(ids[0]), decoder.Add(tokenizer.VocabSize + 7) };
        Assert.Equal(string.Empty, pieces[1]);
        foreach (var id in ids.Skip(1))
        {
            pieces.Add(decoder.Add(id));
        }

        pieces.Add(decoder.Flush());
        Assert.Equal("import json", string.Concat(pieces));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize + 7]));
    }

    [Fact]
    public void Missing_or_malformed_tokenizer_file_fails_with_a_model_load_error()
    {
        using var temp = new TempDirectory();
        var dir = temp.Path;
        var missing = Assert.Throws<KvFusion.Engine.Models.ModelLoadException>(() => ModelTokenizer.Load(Path.Combine(dir, "tokenizer.json")));
        Assert.Contains("not found", missing.Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{ not json");
        var bad = Assert.Throws<KvFusion.Engine.Models.ModelLoadException>(() => ModelTokenizer.Load(Path.Combine(dir, "tokenizer.json")));
        Assert.Contains("tokenizer.json", bad.Message, StringComparison.Ordinal);
    }

    /// <summary>A WordLevel tokenizer.json with the given added_tokens and vocabulary entries.</summary>
    private static string Tokenizer(string addedTokens, string vocab = "\"a\":0,\"b\":1") =>
        "{\"version\":\"1.0\",\"added_tokens\":" + addedTokens + ",\"model\":{\"type\":\"WordLevel\",\"vocab\":{" + vocab + "},\"unk_token\":\"a\"}}";

    private static ModelLoadException LoadFails(string json)
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("tokenizer.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<ModelLoadException>(() => ModelTokenizer.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        return e;
    }

    [Fact]
    public void Added_token_with_null_content_is_named()
    {
        var e = LoadFails(Tokenizer("[{\"id\":2,\"content\":null,\"special\":true}]"));
        Assert.Equal("added_tokens[0].content", e.JsonPath);
        Assert.Contains("got null", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_special_tokens_with_one_id_are_rejected()
    {
        // Complete entries, so the native library accepts them and only the shared id is wrong.
        const string Flags = ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}";
        var e = LoadFails(Tokenizer("[{\"id\":2,\"content\":\"<s>\"" + Flags + ",{\"id\":2,\"content\":\"</s>\"" + Flags + "]"));
        Assert.Equal("added_tokens[1].id", e.JsonPath);
        Assert.Contains("'<s>'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Vocabulary_id_of_int_max_is_rejected_instead_of_a_negative_vocabulary_size()
    {
        var e = LoadFails(Tokenizer("[]", "\"a\":0,\"b\":2147483647"));
        Assert.Equal("model.vocab.b", e.JsonPath);
        Assert.Contains("2147483647", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"added_tokens\":[],\"model\":{\"vocab\":{\"a\":-1}}}", "model.vocab.a")]
    [InlineData("{\"added_tokens\":[],\"model\":{\"vocab\":{\"a\":\"0\"}}}", "model.vocab.a")]
    [InlineData("{\"added_tokens\":[],\"model\":{\"vocab\":\"a\"}}", "model.vocab")]
    [InlineData("{\"added_tokens\":[],\"model\":[1]}", "model")]
    [InlineData("{\"added_tokens\":{},\"model\":{\"vocab\":{\"a\":0}}}", "added_tokens")]
    [InlineData("{\"added_tokens\":[1],\"model\":{\"vocab\":{\"a\":0}}}", "added_tokens[0]")]
    [InlineData("{\"added_tokens\":[{\"content\":\"x\"}],\"model\":{\"vocab\":{\"a\":0}}}", "added_tokens[0].id")]
    [InlineData("{\"added_tokens\":[{\"id\":1.5,\"content\":\"x\"}],\"model\":{\"vocab\":{\"a\":0}}}", "added_tokens[0].id")]
    [InlineData("{\"added_tokens\":[{\"id\":1,\"content\":\"x\",\"special\":\"yes\"}],\"model\":{\"vocab\":{\"a\":0}}}", "added_tokens[0].special")]
    public void Field_of_the_wrong_type_or_value_is_named(string json, string jsonPath) =>
        Assert.Equal(jsonPath, LoadFails(json).JsonPath);

    [Fact]
    public void Tokenizer_that_is_not_an_object_is_rejected() =>
        Assert.Contains("must be a JSON object", LoadFails("[1]").Message, StringComparison.Ordinal);

    // Review: JsonDocument.Parse accepts strings that are not valid Unicode and GetString/Name then threw
    // InvalidOperationException ("Cannot transcode invalid UTF-8") out of the loader.
    [Theory]
    [InlineData("model.vocab key", "{\"added_tokens\":[],\"model\":{\"vocab\":{\"a\u00FF\":0}}}")]
    [InlineData("added token content", "{\"added_tokens\":[{\"id\":0,\"content\":\"\u00C3\",\"special\":true}],\"model\":{\"vocab\":{\"a\":0}}}")]
    [InlineData("escaped lone surrogate", "{\"added_tokens\":[{\"id\":0,\"content\":\"\\ud800\",\"special\":true}],\"model\":{\"vocab\":{\"a\":0}}}")]
    public void Text_that_is_not_valid_unicode_names_the_file(string where, string json)
    {
        _ = where;
        using var temp = new TempDirectory();
        var path = temp.Combine("tokenizer.json");
        File.WriteAllBytes(path, json.Select(c => (byte)c).ToArray()); // Latin-1: each \u00NN is that raw byte.
        var e = Assert.Throws<ModelLoadException>(() => ModelTokenizer.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("not valid U", e.Message, StringComparison.Ordinal);
    }
}
