using System.Text;
using System.Text.Json;
using KvFusion.Diagnostics.Synthetic;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Diagnostics.Tests.Synthetic;

public sealed class ByteLevelTokenizerWriterTests
{
    [Theory]
    [InlineData("Hello, wörld! \n\tdef f(x): return x")]
    [InlineData("  leading spaces, emoji 🦀, CJK 漢字, a\u00A0nbsp and a soft\u00ADhyphen\r\n")]
    [InlineData("x")]
    public void Encodes_every_byte_as_one_token_and_decodes_back(string text)
    {
        using var dir = new TempDirectory();
        ByteLevelTokenizerWriter.Write(dir.Path, 1024);
        using var tokenizer = ModelTokenizer.Load(Path.Combine(dir.Path, ByteLevelTokenizerWriter.TokenizerFileName));

        Assert.Equal(ByteLevelTokenizerWriter.VocabSize, tokenizer.VocabSize);
        Assert.Equal(ByteLevelTokenizerWriter.EndOfTextId, tokenizer.SpecialTokens[ByteLevelTokenizerWriter.EndOfTextToken]);
        var ids = tokenizer.Encode(text);
        Assert.Equal(Encoding.UTF8.GetByteCount(text), ids.Length);
        Assert.All(ids, id => Assert.InRange(id, 0, 255));
        Assert.Equal(text, tokenizer.Decode(ids));

        // Ids follow GPT-2's byte order: id i is the i-th byte of bytes_to_unicode().
        var bytes = Encoding.UTF8.GetBytes(text);
        for (var i = 0; i < ids.Length; i++)
        {
            Assert.Equal(bytes[i], ByteLevelTokenizerWriter.ByteSymbols[ids[i]].Byte);
        }
    }

    [Fact]
    public void The_special_token_is_one_id_and_round_trips()
    {
        using var dir = new TempDirectory();
        ByteLevelTokenizerWriter.Write(dir.Path, 1024);
        using var tokenizer = ModelTokenizer.Load(Path.Combine(dir.Path, ByteLevelTokenizerWriter.TokenizerFileName));
        var ids = tokenizer.Encode("a<|endoftext|>b");
        Assert.Equal([ByteLevelTokenizerWriter.ByteSymbols.Select(s => s.Byte).ToList().IndexOf((byte)'a'), 256, ByteLevelTokenizerWriter.ByteSymbols.Select(s => s.Byte).ToList().IndexOf((byte)'b')], ids);
    }

    [Fact]
    public void Byte_symbols_are_gpt2_bytes_to_unicode()
    {
        var symbols = ByteLevelTokenizerWriter.ByteSymbols;
        Assert.Equal(256, symbols.Count);
        Assert.Equal(256, symbols.Select(s => s.Byte).Distinct().Count());
        Assert.Equal(('!', '!'), ((char)symbols[0].Byte, symbols[0].Symbol));
        Assert.Equal(((byte)' ', 'Ġ'), symbols[220]);
        Assert.Equal(((byte)0, 'Ā'), symbols[188]);
        Assert.Equal(((byte)'\n', 'Ċ'), symbols[198]);
    }

    [Fact]
    public void Tokenizer_config_names_the_special_token_and_the_context()
    {
        using var doc = JsonDocument.Parse(ByteLevelTokenizerWriter.CreateTokenizerConfigJson(8192));
        var root = doc.RootElement;
        Assert.Equal("<|endoftext|>", root.GetProperty("eos_token").GetString());
        Assert.Equal("<|endoftext|>", root.GetProperty("bos_token").GetString());
        Assert.Equal(8192, root.GetProperty("model_max_length").GetInt32());
        Assert.True(root.GetProperty("added_tokens_decoder").GetProperty("256").GetProperty("special").GetBoolean());
    }

    [Fact]
    public void Fits_every_known_model_vocabulary()
    {
        Assert.All(ModelShape.Known, s => Assert.True(s.VocabSize >= ByteLevelTokenizerWriter.VocabSize));
    }
}
