using System.Globalization;
using System.Text.Json;

namespace KvFusion.Engine.Models;

/// <summary>
/// The parts of a Hugging Face <c>config.json</c> that define the forward pass. Everything the engine does not
/// support is rejected here, at load, with a message that names it.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The family.</summary>
    public required ModelArchitecture Architecture { get; init; }

    /// <summary>The <c>architectures[0]</c> class name (or model_type when absent).</summary>
    public required string ArchitectureName { get; init; }

    /// <summary>Vocabulary size (rows of the embedding).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Model width.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>MLP width.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Decoder layers.</summary>
    public required int LayerCount { get; init; }

    /// <summary>Query heads.</summary>
    public required int HeadCount { get; init; }

    /// <summary>Key/value heads (GQA when fewer than <see cref="HeadCount"/>).</summary>
    public required int KvHeadCount { get; init; }

    /// <summary>Dimension of one head.</summary>
    public required int HeadDim { get; init; }

    /// <summary>Longest context the model supports (the sliding window when that is shorter).</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>RMSNorm epsilon.</summary>
    public required float RmsNormEps { get; init; }

    /// <summary>Whether lm_head shares the embedding matrix.</summary>
    public required bool TieWordEmbeddings { get; init; }

    /// <summary>Whether q/k/v projections have a bias (Qwen2, or Llama with attention_bias).</summary>
    public required bool QkvBias { get; init; }

    /// <summary>Whether the output projection has a bias (Llama attention_bias).</summary>
    public required bool OutputBias { get; init; }

    /// <summary>Whether the MLP projections have biases.</summary>
    public required bool MlpBias { get; init; }

    /// <summary>Whether q and k get a per-head RMSNorm (Qwen3).</summary>
    public required bool QkNorm { get; init; }

    /// <summary>RoPE settings.</summary>
    public required RopeParameters Rope { get; init; }

    /// <summary>BOS token id, when the config names one.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence token ids.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Dtype the config declares (torch_dtype or dtype), informational.</summary>
    public string? DeclaredDType { get; init; }

    /// <summary>Query width: heads × head_dim.</summary>
    public int QueryWidth => HeadCount * HeadDim;

    /// <summary>Key/value width: kv_heads × head_dim.</summary>
    public int KvWidth => KvHeadCount * HeadDim;

    /// <summary>Reads and validates <c>config.json</c> in a model directory.</summary>
    /// <exception cref="ModelLoadException">Missing, malformed or unsupported.</exception>
    public static ModelConfig Load(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"config.json not found in {directory}.") { FilePath = path };
        }

        using var doc = ModelJson.ParseFile(path);
        return Parse(doc.RootElement, path);
    }

    /// <summary>Parses a config object; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="ModelLoadException">A field has the wrong type or value, or the model is unsupported.</exception>
    public static ModelConfig Parse(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw ModelLoadException.InFile(source, $"the config must be a JSON object, got {ModelJson.Describe(root)}.");
        }

        var modelType = ModelJson.OptionalString(root, "model_type", source) ?? "";
        var archName = ReadArchitectureName(root, source) ?? modelType;
        var arch = archName switch
        {
            "LlamaForCausalLM" => ModelArchitecture.Llama,
            "MistralForCausalLM" => ModelArchitecture.Mistral,
            "Qwen2ForCausalLM" => ModelArchitecture.Qwen2,
            "Qwen3ForCausalLM" => ModelArchitecture.Qwen3,
            _ => modelType switch
            {
                "llama" when archName is "" or "llama" => ModelArchitecture.Llama,
                "mistral" when archName is "" or "mistral" => ModelArchitecture.Mistral,
                "qwen2" when archName is "" or "qwen2" => ModelArchitecture.Qwen2,
                "qwen3" when archName is "" or "qwen3" => ModelArchitecture.Qwen3,
                _ => throw new ModelLoadException(
                    $"{source}: unsupported architecture '{(archName.Length > 0 ? archName : modelType)}'. Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.")
                {
                    FilePath = source,
                    JsonPath = "architectures",
                },
            },
        };

        var act = ModelJson.OptionalString(root, "hidden_act", source) ?? "silu";
        if (act != "silu")
        {
            throw ModelLoadException.InJson(source, "hidden_act", $"'{act}' is not supported (only silu).");
        }

        var hidden = RequirePositive(root, "hidden_size", source);
        var heads = RequirePositive(root, "num_attention_heads", source);
        var kvHeads = OptionalPositive(root, "num_key_value_heads", source) ?? heads;
        var headDim = OptionalPositive(root, "head_dim", source) ?? hidden / heads;
        var layers = RequirePositive(root, "num_hidden_layers", source);
        var vocab = RequirePositive(root, "vocab_size", source);
        var inter = RequirePositive(root, "intermediate_size", source);
        var maxPos = OptionalPositive(root, "max_position_embeddings", source) ?? 2048;
        if (headDim <= 0)
        {
            throw ModelLoadException.InJson(source, "head_dim", $"is missing and hidden_size {hidden} / num_attention_heads {heads} is 0.");
        }

        if (heads % kvHeads != 0)
        {
            throw ModelLoadException.InJson(source, "num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}.");
        }

        if (headDim % 2 != 0)
        {
            throw ModelLoadException.InJson(source, "head_dim", $"{headDim} must be even for RoPE.");
        }

        // Projection widths are tensor dimensions (int); a product beyond that would wrap to a negative width.
        if ((long)heads * headDim > int.MaxValue)
        {
            throw ModelLoadException.InJson(source, "num_attention_heads", $"{heads} × head_dim {headDim} overflows the largest tensor dimension ({int.MaxValue}).");
        }

        if (ModelJson.OptionalDouble(root, "partial_rotary_factor", source) is { } prf && prf != 1.0)
        {
            throw ModelLoadException.InJson(source, "partial_rotary_factor", $"{prf} is not supported.");
        }

        var sliding = ModelJson.OptionalInt(root, "sliding_window", source);
        var useSliding = arch == ModelArchitecture.Mistral || ModelJson.OptionalBool(root, "use_sliding_window", source) == true;
        if (useSliding && sliding is > 0 && sliding < maxPos)
        {
            // Within the window, sliding-window attention equals full attention; the engine never goes beyond it.
            maxPos = sliding.Value;
        }

        var eps = ModelJson.OptionalDouble(root, "rms_norm_eps", source) ?? 1e-6;
        if (!(eps > 0) || (float)eps == 0)
        {
            throw ModelLoadException.InJson(source, "rms_norm_eps", $"{eps} must be positive.");
        }

        var attentionBias = ModelJson.OptionalBool(root, "attention_bias", source) == true;
        return new ModelConfig
        {
            Architecture = arch,
            ArchitectureName = archName.Length > 0 ? archName : modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = inter,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            MaxPositionEmbeddings = maxPos,
            RmsNormEps = (float)eps,
            TieWordEmbeddings = ModelJson.OptionalBool(root, "tie_word_embeddings", source) == true,
            QkvBias = arch == ModelArchitecture.Qwen2 || attentionBias,
            OutputBias = arch is ModelArchitecture.Llama or ModelArchitecture.Qwen3 && attentionBias,
            MlpBias = ModelJson.OptionalBool(root, "mlp_bias", source) == true,
            QkNorm = arch == ModelArchitecture.Qwen3,
            Rope = ParseRope(root, source),
            BosTokenId = ModelJson.OptionalInt(root, "bos_token_id", source),
            EosTokenIds = ParseIds(root, "eos_token_id", source),
            DeclaredDType = ModelJson.OptionalString(root, "torch_dtype", source) ?? ModelJson.OptionalString(root, "dtype", source),
        };
    }

    /// <summary><c>architectures[0]</c>, or null when the list is absent or empty.</summary>
    private static string? ReadArchitectureName(JsonElement root, string source)
    {
        if (!ModelJson.TryGet(root, "architectures", out var archs))
        {
            return null;
        }

        if (archs.ValueKind != JsonValueKind.Array)
        {
            throw ModelJson.WrongKind(source, "architectures", "an array of class names", archs);
        }

        if (archs.GetArrayLength() == 0)
        {
            return null;
        }

        var first = archs[0];
        return first.ValueKind == JsonValueKind.String
            ? first.GetString()!
            : throw ModelJson.WrongKind(source, "architectures[0]", "a class name string", first);
    }

    private static RopeParameters ParseRope(JsonElement root, string source)
    {
        var theta = ModelJson.OptionalDouble(root, "rope_theta", source);
        var prefix = "rope_parameters.";
        var scaling = ModelJson.OptionalObject(root, "rope_parameters", source);
        if (scaling is { } rp)
        {
            theta = ModelJson.OptionalDouble(rp, "rope_theta", source, prefix) ?? theta;
        }
        else
        {
            prefix = "rope_scaling.";
            scaling = ModelJson.OptionalObject(root, "rope_scaling", source);
        }

        if (theta is { } t && !(t > 0))
        {
            throw ModelLoadException.InJson(source, "rope_theta", $"{t} must be positive.");
        }

        var rope = new RopeParameters { Theta = theta ?? 10000.0 };
        if (scaling is not { } s)
        {
            return rope;
        }

        var type = ModelJson.OptionalString(s, "rope_type", source, prefix) ?? ModelJson.OptionalString(s, "type", source, prefix) ?? "default";
        return type switch
        {
            "default" => rope,
            "llama3" => rope with
            {
                RopeType = "llama3",
                Factor = Positive(ModelJson.OptionalDouble(s, "factor", source, prefix) ?? throw ModelLoadException.InJson(source, prefix + "factor", "is required by llama3 RoPE."), source, prefix + "factor"),
                LowFreqFactor = Positive(ModelJson.OptionalDouble(s, "low_freq_factor", source, prefix) ?? 1.0, source, prefix + "low_freq_factor"),
                HighFreqFactor = Positive(ModelJson.OptionalDouble(s, "high_freq_factor", source, prefix) ?? 4.0, source, prefix + "high_freq_factor"),
                OriginalMaxPositionEmbeddings = (int)Positive(ModelJson.OptionalInt(s, "original_max_position_embeddings", source, prefix) ?? 8192, source, prefix + "original_max_position_embeddings"),
            },
            _ => throw ModelLoadException.InJson(source, prefix + "rope_type", $"'{type}' is not supported (supported: default, llama3)."),
        };
    }

    private static double Positive(double value, string source, string path) =>
        value > 0 ? value : throw ModelLoadException.InJson(source, path, $"{value} must be positive.");

    private static List<int> ParseIds(JsonElement root, string name, string source)
    {
        var ids = new List<int>();
        if (!ModelJson.TryGet(root, name, out var e))
        {
            return ids;
        }

        if (e.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var x in e.EnumerateArray())
            {
                ids.Add(ModelJson.Int(x, source, string.Create(CultureInfo.InvariantCulture, $"{name}[{i++}]")));
            }
        }
        else
        {
            ids.Add(ModelJson.Int(e, source, name));
        }

        return ids;
    }

    private static int? OptionalPositive(JsonElement o, string name, string source) =>
        ModelJson.OptionalInt(o, name, source) is { } v
            ? v > 0 ? v : throw ModelLoadException.InJson(source, name, $"is {v}; sizes must be positive.")
            : null;

    private static int RequirePositive(JsonElement o, string name, string source) =>
        OptionalPositive(o, name, source) ?? throw ModelLoadException.InJson(source, name, "is missing; the engine needs it.");
}
