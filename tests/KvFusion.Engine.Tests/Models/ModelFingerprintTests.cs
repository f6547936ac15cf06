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
