namespace KvFusion.Hub.Tests;

public sealed class HubModelReferenceTests
{
    [Fact]
    public void Parse_reads_owner_name_and_default_revision()
    {
        var r = HubModelReference.Parse("hf:HuggingFaceTB/SmolLM2-135M-Instruct");
        Assert.Equal(new HubModelReference("HuggingFaceTB", "SmolLM2-135M-Instruct", "main"), r);
        Assert.Equal("HuggingFaceTB/SmolLM2-135M-Instruct", r.RepoId);
        Assert.False(r.IsCommitSha);
    }

    [Fact]
    public void Parse_reads_a_revision_after_the_at_sign()
    {
        Assert.Equal("refs/pr/1", HubModelReference.Parse("hf:a/b@refs/pr/1").Revision);
        Assert.True(HubModelReference.Parse("hf:a/b@" + new string('a', 40)).IsCommitSha);
    }

    [Theory]
    [InlineData("HuggingFaceTB/SmolLM2", "not a hub model reference")]
    [InlineData("hf:", "exactly OWNER/NAME")]
    [InlineData("hf:name", "exactly OWNER/NAME")]
    [InlineData("hf:a/b/c", "exactly OWNER/NAME")]
    [InlineData("hf:/b", "invalid owner")]
    [InlineData("hf:a/", "invalid name")]
    [InlineData("hf:../b", "invalid owner")]
    [InlineData("hf:a/b c", "invalid name")]
    [InlineData("hf:a/b@", "invalid revision")]
    [InlineData("hf:a/b@x/../../etc", "invalid revision")]
    public void Parse_rejects_a_bad_reference_naming_the_problem(string text, string problem)
    {
        var e = Assert.Throws<FormatException>(() => HubModelReference.Parse(text));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Assert.False(HubModelReference.TryParse(text, out _));
    }

    [Fact]
    public void Options_come_from_the_environment_variables()
    {
        var env = new Dictionary<string, string>
        {
            ["HF_ENDPOINT"] = "http://127.0.0.1:9/",
            ["HF_TOKEN"] = "hf_x",
            ["KVFUSION_CACHE"] = "/tmp/c",
            ["HF_HUB_OFFLINE"] = "1",
        };
        var o = ModelDownloadOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal(new Uri("http://127.0.0.1:9/"), o.Endpoint);
        Assert.Equal("hf_x", o.Token);
        Assert.Equal("/tmp/c", o.CacheDirectory);
        Assert.True(o.Offline);
    }

    [Fact]
    public void Options_default_to_the_public_hub_and_the_home_cache()
    {
        var o = ModelDownloadOptions.FromEnvironment(_ => null);
        Assert.Equal(new Uri("https://huggingface.co"), o.Endpoint);
        Assert.EndsWith(Path.Combine(".cache", "kvfusion"), o.CacheDirectory, StringComparison.Ordinal);
        Assert.False(o.Offline);
        Assert.Null(o.Token);
    }

    [Theory]
    [InlineData("HF_ENDPOINT", "not a url", "HF_ENDPOINT")]
    [InlineData("HF_ENDPOINT", "ftp://x/", "http or https")]
    [InlineData("HF_HUB_OFFLINE", "maybe", "not a boolean")]
    public void Bad_environment_values_are_rejected(string variable, string value, string problem)
    {
        var e = Assert.Throws<ArgumentException>(() => ModelDownloadOptions.FromEnvironment(k => k == variable ? value : null));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_cache_directory_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new ModelDownloadOptions { CacheDirectory = " " }.Validate());
        Assert.Contains("cache directory", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("config.json", true)]
    [InlineData("model-00001-of-00002.safetensors", true)]
    [InlineData("model.safetensors.index.json", true)]
    [InlineData("tokenizer.json", true)]
    [InlineData("special_tokens_map.json", true)]
    [InlineData("pytorch_model.bin", false)]
    [InlineData("README.md", false)]
    [InlineData("onnx/model.safetensors", false)]
    public void Only_the_files_a_model_directory_needs_are_downloaded(string file, bool needed) =>
        Assert.Equal(needed, HubModelDownloader.IsModelFile(file));
}
