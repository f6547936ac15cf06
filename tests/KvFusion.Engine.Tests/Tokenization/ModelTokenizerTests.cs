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
}
