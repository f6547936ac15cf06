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
            throw new ModelLoadException($"config.json not found in {directory}.");
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return Parse(doc.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Parses a config object; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{source}: the config is not a JSON object.");
        }

        var archName = root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array && archs.GetArrayLength() > 0
            ? archs[0].GetString() ?? ""
            : GetString(root, "model_type") ?? "";
        var modelType = GetString(root, "model_type") ?? "";
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
                    $"{source}: unsupported architecture '{(archName.Length > 0 ? archName : modelType)}'. Supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM."),
            },
        };

        var act = GetString(root, "hidden_act") ?? "silu";
        if (act != "silu")
        {
            throw new ModelLoadException($"{source}: hidden_act '{act}' is not supported (only silu).");
        }

        var hidden = RequireInt(root, "hidden_size", source);
        var heads = RequireInt(root, "num_attention_heads", source);
        var kvHeads = GetInt(root, "num_key_value_heads") ?? heads;
        var headDim = GetInt(root, "head_dim") ?? (heads > 0 ? hidden / heads : 0);
        var layers = RequireInt(root, "num_hidden_layers", source);
        var vocab = RequireInt(root, "vocab_size", source);
        var inter = RequireInt(root, "intermediate_size", source);
        var maxPos = GetInt(root, "max_position_embeddings") ?? 2048;
        if (hidden <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || layers <= 0 || vocab <= 0 || inter <= 0 || maxPos <= 0)
        {
            throw new ModelLoadException($"{source}: sizes must be positive.");
        }

        if (heads % kvHeads != 0)
        {
            throw new ModelLoadException($"{source}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}.");
        }

        if (headDim % 2 != 0)
        {
            throw new ModelLoadException($"{source}: head_dim {headDim} must be even for RoPE.");
        }

        if (GetDouble(root, "partial_rotary_factor") is { } prf && prf != 1.0)
        {
            throw new ModelLoadException($"{source}: partial_rotary_factor {prf} is not supported.");
        }

        var sliding = GetInt(root, "sliding_window");
        var useSliding = arch == ModelArchitecture.Mistral || (root.TryGetProperty("use_sliding_window", out var us) && us.ValueKind == JsonValueKind.True);
        if (useSliding && sliding is > 0 && sliding < maxPos)
        {
            // Within the window, sliding-window attention equals full attention; the engine never goes beyond it.
            maxPos = sliding.Value;
        }

        var attentionBias = root.TryGetProperty("attention_bias", out var ab) && ab.ValueKind == JsonValueKind.True;
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
            RmsNormEps = (float)(GetDouble(root, "rms_norm_eps") ?? 1e-6),
            TieWordEmbeddings = root.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.True,
            QkvBias = arch == ModelArchitecture.Qwen2 || attentionBias,
            OutputBias = arch is ModelArchitecture.Llama or ModelArchitecture.Qwen3 && attentionBias,
            MlpBias = root.TryGetProperty("mlp_bias", out var mb) && mb.ValueKind == JsonValueKind.True,
            QkNorm = arch == ModelArchitecture.Qwen3,
            Rope = ParseRope(root, source),
            BosTokenId = GetInt(root, "bos_token_id"),
            EosTokenIds = ParseIds(root, "eos_token_id"),
            DeclaredDType = GetString(root, "torch_dtype") ?? GetString(root, "dtype"),
        };
    }

    private static RopeParameters ParseRope(JsonElement root, string source)
    {
        var theta = GetDouble(root, "rope_theta");
        JsonElement scaling = default;
        if (root.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind == JsonValueKind.Object)
        {
            scaling = rp;
            theta = GetDouble(rp, "rope_theta") ?? theta;
        }
        else if (root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object)
        {
            scaling = rs;
        }

        var rope = new RopeParameters { Theta = theta ?? 10000.0 };
        if (scaling.ValueKind != JsonValueKind.Object)
        {
            return rope;
        }

        var type = GetString(scaling, "rope_type") ?? GetString(scaling, "type") ?? "default";
        return type switch
        {
            "default" => rope,
            "llama3" => rope with
            {
                RopeType = "llama3",
                Factor = GetDouble(scaling, "factor") ?? throw new ModelLoadException($"{source}: llama3 RoPE needs 'factor'."),
                LowFreqFactor = GetDouble(scaling, "low_freq_factor") ?? 1.0,
                HighFreqFactor = GetDouble(scaling, "high_freq_factor") ?? 4.0,
                OriginalMaxPositionEmbeddings = GetInt(scaling, "original_max_position_embeddings") ?? 8192,
            },
            _ => throw new ModelLoadException($"{source}: RoPE type '{type}' is not supported (supported: default, llama3)."),
        };
    }

    private static List<int> ParseIds(JsonElement root, string name)
    {
        var ids = new List<int>();
        if (root.TryGetProperty(name, out var e))
        {
            if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var one))
            {
                ids.Add(one);
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var x in e.EnumerateArray())
                {
                    if (x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var v))
                    {
                        ids.Add(v);
                    }
                }
            }
        }

        return ids;
    }

    private static string? GetString(JsonElement o, string name) =>
        o.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    private static int? GetInt(JsonElement o, string name) =>
        o.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v) ? v : null;

    private static double? GetDouble(JsonElement o, string name) =>
        o.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Number ? e.GetDouble() : null;

    private static int RequireInt(JsonElement o, string name, string source) =>
        GetInt(o, name) ?? throw new ModelLoadException($"{source}: '{name}' is missing or not an integer.");
}
