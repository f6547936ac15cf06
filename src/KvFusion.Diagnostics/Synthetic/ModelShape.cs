using KvFusion.Engine.Models;

namespace KvFusion.Diagnostics.Synthetic;

/// <summary>What a tensor of a decoder checkpoint is, which decides how synthetic weights initialize it.</summary>
public enum ModelTensorRole
{
    /// <summary>A projection or embedding matrix: random normal.</summary>
    Weight,

    /// <summary>An RMSNorm scale: ones, as in a freshly initialized model.</summary>
    Norm,

    /// <summary>A projection bias: small random normal.</summary>
    Bias,
}

/// <summary>One tensor of a checkpoint in the Hugging Face layout of a <see cref="ModelShape"/>.</summary>
/// <param name="Name">The Hugging Face tensor name.</param>
/// <param name="Shape">Dimensions, row-major (<c>[out, in]</c> for projections).</param>
/// <param name="Role">How it is initialized.</param>
public readonly record struct ModelShapeTensor(string Name, int[] Shape, ModelTensorRole Role)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
            {
                n *= d;
            }

            return n;
        }
    }
}

/// <summary>
/// The architecture hyperparameters of a decoder model (what its <c>config.json</c> says), without weights.
/// <see cref="Known"/> holds the published shapes of real models, so synthetic checkpoints can be written at real
/// sizes; a test can derive a tiny shape with <c>with { ... }</c>.
/// </summary>
public sealed record ModelShape
{
    /// <summary>Catalogue name, e.g. <c>llama-3.2-1b</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The Hugging Face repository whose config this shape copies (for the model card).</summary>
    public string? SourceRepository { get; init; }

    /// <summary>The family.</summary>
    public required ModelArchitecture Architecture { get; init; }

    /// <summary>The transformers class name, <c>architectures[0]</c> in config.json.</summary>
    public string ArchitectureName => Architecture switch
    {
        ModelArchitecture.Llama => "LlamaForCausalLM",
        ModelArchitecture.Mistral => "MistralForCausalLM",
        ModelArchitecture.Qwen2 => "Qwen2ForCausalLM",
        ModelArchitecture.Qwen3 => "Qwen3ForCausalLM",
        _ => throw new InvalidOperationException($"Unknown architecture {Architecture}."),
    };

    /// <summary>The config's <c>model_type</c>.</summary>
    public string ModelType => Architecture switch
    {
        ModelArchitecture.Llama => "llama",
        ModelArchitecture.Mistral => "mistral",
        ModelArchitecture.Qwen2 => "qwen2",
        ModelArchitecture.Qwen3 => "qwen3",
        _ => throw new InvalidOperationException($"Unknown architecture {Architecture}."),
    };

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

    /// <summary>Key/value heads.</summary>
    public required int KvHeadCount { get; init; }

    /// <summary>Dimension of one head.</summary>
    public required int HeadDim { get; init; }

    /// <summary>Longest context.</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>RoPE θ and, for Llama 3, its scaling.</summary>
    public required RopeParameters Rope { get; init; }

    /// <summary>RMSNorm epsilon.</summary>
    public required double RmsNormEps { get; init; }

    /// <summary>Whether lm_head shares the embedding matrix.</summary>
    public required bool TieWordEmbeddings { get; init; }

    /// <summary>The real model's BOS id (informational: synthetic models use their own byte-level tokenizer).</summary>
    public int? BosTokenId { get; init; }

    /// <summary>The real model's EOS id (informational, as <see cref="BosTokenId"/>).</summary>
    public int? EosTokenId { get; init; }

    /// <summary>The config's <c>sliding_window</c> (Qwen2 records one while <c>use_sliding_window</c> is false).</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Query width: heads × head_dim.</summary>
    public int QueryWidth => HeadCount * HeadDim;

    /// <summary>Key/value width: kv_heads × head_dim.</summary>
    public int KvWidth => KvHeadCount * HeadDim;

    /// <summary>Number of parameters in the checkpoint (a tied lm_head is counted once).</summary>
    public long ParameterCount => EnumerateTensors().Sum(t => t.ElementCount);

    /// <summary>The catalogue of real model shapes (published config values).</summary>
    public static IReadOnlyList<ModelShape> Known { get; } =
    [
        new ModelShape
        {
            Name = "smollm2-135m",
            SourceRepository = "HuggingFaceTB/SmolLM2-135M",
            Architecture = ModelArchitecture.Llama,
            VocabSize = 49152,
            HiddenSize = 576,
            IntermediateSize = 1536,
            LayerCount = 30,
            HeadCount = 9,
            KvHeadCount = 3,
            HeadDim = 64,
            MaxPositionEmbeddings = 8192,
            Rope = new RopeParameters { Theta = 100000 },
            RmsNormEps = 1e-5,
            TieWordEmbeddings = true,
            BosTokenId = 0,
            EosTokenId = 0,
        },
        new ModelShape
        {
            Name = "qwen2.5-0.5b",
            SourceRepository = "Qwen/Qwen2.5-0.5B",
            Architecture = ModelArchitecture.Qwen2,
            VocabSize = 151936,
            HiddenSize = 896,
            IntermediateSize = 4864,
            LayerCount = 24,
            HeadCount = 14,
            KvHeadCount = 2,
            HeadDim = 64,
            MaxPositionEmbeddings = 32768,
            Rope = new RopeParameters { Theta = 1000000 },
            RmsNormEps = 1e-6,
            TieWordEmbeddings = true,
            BosTokenId = 151643,
            EosTokenId = 151643,
            SlidingWindow = 32768,
        },
        new ModelShape
        {
            Name = "qwen3-0.6b",
            SourceRepository = "Qwen/Qwen3-0.6B",
            Architecture = ModelArchitecture.Qwen3,
            VocabSize = 151936,
            HiddenSize = 1024,
            IntermediateSize = 3072,
            LayerCount = 28,
            HeadCount = 16,
            KvHeadCount = 8,
            HeadDim = 128,
            MaxPositionEmbeddings = 40960,
            Rope = new RopeParameters { Theta = 1000000 },
            RmsNormEps = 1e-6,
            TieWordEmbeddings = true,
            BosTokenId = 151643,
            EosTokenId = 151645,
        },
        new ModelShape
        {
            Name = "llama-3.2-1b",
            SourceRepository = "meta-llama/Llama-3.2-1B",
            Architecture = ModelArchitecture.Llama,
            VocabSize = 128256,
            HiddenSize = 2048,
            IntermediateSize = 8192,
            LayerCount = 16,
            HeadCount = 32,
            KvHeadCount = 8,
            HeadDim = 64,
            MaxPositionEmbeddings = 131072,
            Rope = new RopeParameters
            {
                Theta = 500000,
                RopeType = "llama3",
                Factor = 32,
                LowFreqFactor = 1,
                HighFreqFactor = 4,
                OriginalMaxPositionEmbeddings = 8192,
            },
            RmsNormEps = 1e-5,
            TieWordEmbeddings = true,
            BosTokenId = 128000,
            EosTokenId = 128001,
        },
        new ModelShape
        {
            Name = "llama-3.1-8b",
            SourceRepository = "meta-llama/Llama-3.1-8B",
            Architecture = ModelArchitecture.Llama,
            VocabSize = 128256,
            HiddenSize = 4096,
            IntermediateSize = 14336,
            LayerCount = 32,
            HeadCount = 32,
            KvHeadCount = 8,
            HeadDim = 128,
            MaxPositionEmbeddings = 131072,
            Rope = new RopeParameters
            {
                Theta = 500000,
                RopeType = "llama3",
                Factor = 8,
                LowFreqFactor = 1,
                HighFreqFactor = 4,
                OriginalMaxPositionEmbeddings = 8192,
            },
            RmsNormEps = 1e-5,
            TieWordEmbeddings = false,
            BosTokenId = 128000,
            EosTokenId = 128001,
        },
        new ModelShape
        {
            // v0.2 is the Mistral 7B with rope_theta 1e6, a 32k context and no sliding window (v0.1: 1e4 and a
            // 4096 window; v0.3: a 32768 vocabulary).
            Name = "mistral-7b",
            SourceRepository = "mistralai/Mistral-7B-Instruct-v0.2",
            Architecture = ModelArchitecture.Mistral,
            VocabSize = 32000,
            HiddenSize = 4096,
            IntermediateSize = 14336,
            LayerCount = 32,
            HeadCount = 32,
            KvHeadCount = 8,
            HeadDim = 128,
            MaxPositionEmbeddings = 32768,
            Rope = new RopeParameters { Theta = 1000000 },
            RmsNormEps = 1e-5,
            TieWordEmbeddings = false,
            BosTokenId = 1,
            EosTokenId = 2,
        },
    ];

    /// <summary>Finds a shape of <see cref="Known"/> by name, ignoring case.</summary>
    /// <exception cref="ArgumentException">No such shape; the message lists the known names.</exception>
    public static ModelShape Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var s in Known)
        {
            if (string.Equals(s.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                return s;
            }
        }

        throw new ArgumentException($"Unknown model shape '{name}'. Known shapes: {string.Join(", ", Known.Select(s => s.Name))}.", nameof(name));
    }

    /// <summary>
    /// Checks the hyperparameters the way <see cref="ModelConfig"/> will when the model is loaded.
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive, heads are not a multiple of KV heads, or
    /// head_dim is odd.</exception>
    public void Validate()
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || IntermediateSize <= 0 || LayerCount <= 0 || HeadCount <= 0 || KvHeadCount <= 0 || HeadDim <= 0 || MaxPositionEmbeddings <= 0)
        {
            throw new ArgumentException($"Model shape '{Name}': sizes must be positive.");
        }

        if (HeadCount % KvHeadCount != 0)
        {
            throw new ArgumentException($"Model shape '{Name}': {HeadCount} heads is not a multiple of {KvHeadCount} KV heads.");
        }

        if (HeadDim % 2 != 0)
        {
            throw new ArgumentException($"Model shape '{Name}': head_dim {HeadDim} must be even for RoPE.");
        }

        if (!(RmsNormEps > 0) || !(Rope.Theta > 0))
        {
            throw new ArgumentException($"Model shape '{Name}': rms_norm_eps and rope_theta must be positive.");
        }
    }

    /// <summary>
    /// The checkpoint's tensors with their Hugging Face names and shapes, in the order synthetic checkpoints store
    /// them: embedding, layers 0..n-1, final norm, then lm_head when untied.
    /// </summary>
    public IReadOnlyList<ModelShapeTensor> EnumerateTensors()
    {
        var h = HiddenSize;
        var list = new List<ModelShapeTensor>((LayerCount * 14) + 3)
        {
            new("model.embed_tokens.weight", [VocabSize, h], ModelTensorRole.Weight),
        };
        for (var i = 0; i < LayerCount; i++)
        {
            var p = $"model.layers.{i}.";
            list.Add(new(p + "input_layernorm.weight", [h], ModelTensorRole.Norm));
            list.Add(new(p + "self_attn.q_proj.weight", [QueryWidth, h], ModelTensorRole.Weight));
            list.Add(new(p + "self_attn.k_proj.weight", [KvWidth, h], ModelTensorRole.Weight));
            list.Add(new(p + "self_attn.v_proj.weight", [KvWidth, h], ModelTensorRole.Weight));
            if (Architecture == ModelArchitecture.Qwen2)
            {
                list.Add(new(p + "self_attn.q_proj.bias", [QueryWidth], ModelTensorRole.Bias));
                list.Add(new(p + "self_attn.k_proj.bias", [KvWidth], ModelTensorRole.Bias));
                list.Add(new(p + "self_attn.v_proj.bias", [KvWidth], ModelTensorRole.Bias));
            }

            if (Architecture == ModelArchitecture.Qwen3)
            {
                list.Add(new(p + "self_attn.q_norm.weight", [HeadDim], ModelTensorRole.Norm));
                list.Add(new(p + "self_attn.k_norm.weight", [HeadDim], ModelTensorRole.Norm));
            }

            list.Add(new(p + "self_attn.o_proj.weight", [h, QueryWidth], ModelTensorRole.Weight));
            list.Add(new(p + "post_attention_layernorm.weight", [h], ModelTensorRole.Norm));
            list.Add(new(p + "mlp.gate_proj.weight", [IntermediateSize, h], ModelTensorRole.Weight));
            list.Add(new(p + "mlp.up_proj.weight", [IntermediateSize, h], ModelTensorRole.Weight));
            list.Add(new(p + "mlp.down_proj.weight", [h, IntermediateSize], ModelTensorRole.Weight));
        }

        list.Add(new("model.norm.weight", [h], ModelTensorRole.Norm));
        if (!TieWordEmbeddings)
        {
            list.Add(new("lm_head.weight", [VocabSize, h], ModelTensorRole.Weight));
        }

        return list;
    }
}
