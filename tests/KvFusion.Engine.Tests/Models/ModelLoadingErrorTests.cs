using System.Text;
using System.Text.Json.Nodes;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;
using KvFusion.Engine.Transformer;

namespace KvFusion.Engine.Tests.Models;

/// <summary>Every way a model directory can be wrong ends in a ModelLoadException that names the problem.</summary>
public sealed class ModelLoadingErrorTests : IDisposable
{
    private readonly CpuBackend _backend = new(1);

    public void Dispose() => _backend.Dispose();

    private ModelLoadException LoadFails(string dir) => Assert.Throws<ModelLoadException>(() =>
    {
        using var m = TransformerModel.Load(dir, _backend);
    });

    private static TempDirectory MistralCopy() => TempDirectory.CopyOf(SharedModels.Path("zoo/mistral"));

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    private static string WriteSafeTensors(string dir, string header, int dataBytes, long? declaredHeaderLength = null)
    {
        var path = Path.Combine(dir, "model.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(declaredHeaderLength ?? h.LongLength));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
        return path;
    }

    [Fact]
    public void Missing_directory_is_named()
    {
        var e = LoadFails("/nonexistent/kvfusion-model");
        Assert.Contains("/nonexistent/kvfusion-model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_config_is_named()
    {
        using var temp = new TempDirectory();
        var e = LoadFails(temp.Path);
        Assert.Contains("config.json not found", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Missing_weights_file_is_named()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        File.Delete(Path.Combine(dir, "model.safetensors"));
        var e = LoadFails(dir);
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Truncated_weights_file_is_detected_before_any_read()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        var path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = LoadFails(dir);
        Assert.Contains("outside", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_shorter_than_the_header_length_field_is_rejected()
    {
        using var temp = new TempDirectory();
        var dir = temp.Path;
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), [1, 2, 3]);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")));
        Assert.Contains("shorter than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_length_beyond_the_file_is_rejected()
    {
        using var temp = new TempDirectory();
        var dir = temp.Path;
        var path = WriteSafeTensors(dir, "{}", 0, declaredHeaderLength: 1L << 40);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("header length", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_that_is_not_json_is_rejected()
    {
        using var temp = new TempDirectory();
        var path = WriteSafeTensors(temp.Path, "{\"a\": [1, 2", 0);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Offsets_outside_the_data_section_are_rejected()
    {
        using var temp = new TempDirectory();
        var path = WriteSafeTensors(temp.Path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("outside", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Byte_count_that_disagrees_with_the_shape_is_rejected()
    {
        using var temp = new TempDirectory();
        var path = WriteSafeTensors(temp.Path, "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("needs 8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Overlapping_tensors_are_rejected()
    {
        using var temp = new TempDirectory();
        var path = WriteSafeTensors(temp.Path,
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("overlap", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_dtype_is_named()
    {
        using var temp = new TempDirectory();
        var path = WriteSafeTensors(temp.Path, "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
        var e = Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("F64", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Negative_dimension_is_rejected()
    {
        using var temp = new TempDirectory();
        var path = WriteSafeTensors(temp.Path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
        Assert.Throws<ModelLoadException>(() => SafeTensorsFile.Open(path));
    }

    [SkippableFact]
    public void Unknown_architecture_is_named()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        EditConfig(dir, c =>
        {
            c["architectures"] = new JsonArray("GPT2LMHeadModel");
            c["model_type"] = "gpt2";
        });
        var e = LoadFails(dir);
        Assert.Contains("GPT2LMHeadModel", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Unsupported_rope_type_is_named()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        EditConfig(dir, c => c["rope_parameters"] = new JsonObject { ["rope_type"] = "yarn", ["rope_theta"] = 10000.0, ["factor"] = 4.0 });
        var e = LoadFails(dir);
        Assert.Contains("yarn", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Tensor_with_the_wrong_shape_is_named()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        EditConfig(dir, c => c["intermediate_size"] = 96);
        var e = LoadFails(dir);
        Assert.Contains("mlp.gate_proj.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("[96, 64]", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Missing_tensor_is_named()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        EditConfig(dir, c => c["num_hidden_layers"] = 3);
        var e = LoadFails(dir);
        Assert.Contains("model.layers.2.", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Untied_model_without_lm_head_is_rejected()
    {
        using var temp = TempDirectory.CopyOf(SharedModels.Path("zoo/qwen3-qknorm"));
        var dir = temp.Path;
        EditConfig(dir, c => c["tie_word_embeddings"] = false);
        var e = LoadFails(dir);
        Assert.Contains("lm_head.weight", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Tokenizer_larger_than_the_model_vocabulary_is_a_vocabulary_mismatch()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        File.Copy(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        EditConfig(dir, c => c["vocab_size"] = 1000);
        var e = LoadFails(dir);
        Assert.Contains("Vocabulary mismatch", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Sharded_checkpoint_with_a_missing_shard_is_named()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        File.Move(Path.Combine(dir, "model.safetensors"), Path.Combine(dir, "model-00001-of-00002.safetensors"));
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
            "{\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00002.safetensors\",\"lm_head.weight\":\"model-00002-of-00002.safetensors\"}}");
        var e = LoadFails(dir);
        Assert.Contains("model-00002-of-00002.safetensors", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Sharded_checkpoint_loads_like_the_single_file()
    {
        using var temp = MistralCopy();
        var dir = temp.Path;
        File.Move(Path.Combine(dir, "model.safetensors"), Path.Combine(dir, "model-00001-of-00001.safetensors"));
        using (var f = SafeTensorsFile.Open(Path.Combine(dir, "model-00001-of-00001.safetensors")))
        {
            var map = new JsonObject();
            foreach (var name in f.TensorNames)
            {
                map[name] = "model-00001-of-00001.safetensors";
            }

            File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = map }.ToJsonString());
        }

        using var m = TransformerModel.Load(dir, _backend);
        Assert.Equal(2, m.Config.LayerCount);
    }

    [Fact]
    public void Model_resolution_without_any_model_says_how_to_point_at_one()
    {
        var e = Assert.Throws<ModelLoadException>(() => ModelDirectory.Resolve("/nonexistent/dir"));
        Assert.Contains("not found", e.Message, StringComparison.Ordinal);
    }
}
