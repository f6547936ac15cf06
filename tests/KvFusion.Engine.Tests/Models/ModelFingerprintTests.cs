using KvFusion.Engine.Models;

namespace KvFusion.Engine.Tests.Models;

public sealed class ModelFingerprintTests
{
    [SkippableFact]
    public void Fingerprint_is_blake3_of_the_files_and_is_cached_beside_a_writable_model()
    {
        using var temp = TempDirectory.CopyOf(SharedModels.Path("zoo/mistral"));
        var dir = temp.Path;
        var weights = Path.Combine(dir, "model.safetensors");
        var first = ModelFingerprint.Get(dir, [weights], null);
        Assert.Equal(ModelFingerprint.HashFiles([weights]), first.Model);
        Assert.Matches("^[0-9a-f]{64}$", first.Model);
        Assert.True(File.Exists(Path.Combine(dir, ModelFingerprint.CacheFileName)));
        Assert.Equal(first, ModelFingerprint.Get(dir, [weights], null));
    }

    [SkippableFact]
    public void A_changed_weight_file_invalidates_the_cached_fingerprint()
    {
        using var temp = TempDirectory.CopyOf(SharedModels.Path("zoo/mistral"));
        var dir = temp.Path;
        var weights = Path.Combine(dir, "model.safetensors");
        var first = ModelFingerprint.Get(dir, [weights], null);
        using (var fs = new FileStream(weights, FileMode.Append))
        {
            fs.WriteByte(7);
        }

        var second = ModelFingerprint.Get(dir, [weights], null);
        Assert.NotEqual(first.Model, second.Model);
    }

    // `b3sum zoo/mistral/model.safetensors tiny-pydocs/tokenizer.json` (b3sum 1.2.0, Debian) in /work/shared/models.
    private const string MistralWeightsB3sum = "2941e45ff9f59596780d13a8883eb157375c0f214a6f363e871b6dea6316dfa3";
    private const string TinyPydocsTokenizerB3sum = "4a1b18747bd5fac34ebb3eb947c1d7609cace9c732f39348359df95f013bbc8c";

    // `cat zoo/mistral/model.safetensors zoo/qwen2-bias/model.safetensors | b3sum`: a sharded checkpoint's fingerprint
    // is BLAKE3 of its files' bytes concatenated in ordinal path order, not a hash of per-file hashes.
    private const string MistralThenQwen2ConcatenatedB3sum = "9145342fee88aa209c2b493f5ffcca35d3c0143f7e4fc1a508f96f5009bfb99a";

    [SkippableFact]
    public void Fingerprints_of_real_files_equal_b3sum_of_their_bytes()
    {
        using var temp = TempDirectory.CopyOf(SharedModels.Path("zoo/mistral"));
        var tokenizer = temp.Combine("tokenizer.json");
        File.Copy(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"), tokenizer);

        var fp = ModelFingerprint.Get(temp.Path, [temp.Combine("model.safetensors")], tokenizer);

        Assert.Equal(MistralWeightsB3sum, fp.Model);
        Assert.Equal(TinyPydocsTokenizerB3sum, fp.Tokenizer);
    }

    [SkippableFact]
    public void A_multi_file_fingerprint_is_b3sum_of_the_files_concatenated_in_ordinal_order()
    {
        using var temp = new TempDirectory();
        var a = temp.Combine("model-00001-of-00002.safetensors");
        var b = temp.Combine("model-00002-of-00002.safetensors");
        File.Copy(Path.Combine(SharedModels.Path("zoo/mistral"), "model.safetensors"), a);
        File.Copy(Path.Combine(SharedModels.Path("zoo/qwen2-bias"), "model.safetensors"), b);

        // Given out of order: Get sorts the paths, so the digest does not depend on the order the checkpoint lists them.
        var fp = ModelFingerprint.Get(temp.Path, [b, a], null);

        Assert.Equal(MistralThenQwen2ConcatenatedB3sum, fp.Model);
        Assert.Equal(new string('0', 64), fp.Tokenizer);
    }

    [Fact]
    public void Blake3_of_known_input_matches_the_reference_vector()
    {
        // BLAKE3("") from the reference implementation's test vectors.
        using var temp = new TempDirectory();
        var dir = temp.Path;
        var empty = Path.Combine(dir, "empty");
        File.WriteAllBytes(empty, []);
        Assert.Equal("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", ModelFingerprint.HashFiles([empty]));
    }
}
