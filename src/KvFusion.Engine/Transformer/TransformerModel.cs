using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Engine.Transformer;

/// <summary>
/// A loaded decoder model: config, tokenizer, fingerprints and weights on a compute backend. Thread-safe for
/// concurrent sessions (weights are read-only); a backend runs one operation at a time.
/// </summary>
public sealed class TransformerModel : IDisposable
{
    private readonly SafeTensorsCheckpoint _checkpoint;
    private readonly LayerWeights[] _layers;
    private readonly SessionMemoryPool _sessionMemory;

    private TransformerModel(
        string directory, ModelConfig config, ModelTokenizer? tokenizer, ModelFingerprint fingerprint, SafeTensorsCheckpoint checkpoint,
        ComputeBackend backend, DeviceTensor embedding, DeviceTensor finalNorm, DeviceTensor lmHead, LayerWeights[] layers,
        DeviceTensor inverseFrequencies, TensorDType weightDType, long parameterCount)
    {
        Directory = directory;
        Config = config;
        Tokenizer = tokenizer;
        Fingerprint = fingerprint;
        _checkpoint = checkpoint;
        Backend = backend;
        Embedding = embedding;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        _layers = layers;
        InverseFrequencies = inverseFrequencies;
        WeightDType = weightDType;
        ParameterCount = parameterCount;
        _sessionMemory = new SessionMemoryPool(backend, config);
    }

    /// <summary>The model directory.</summary>
    public string Directory { get; }

    /// <summary>The parsed config.</summary>
    public ModelConfig Config { get; }

    /// <summary>The tokenizer, when the directory has tokenizer.json (the zoo models have none).</summary>
    public ModelTokenizer? Tokenizer { get; }

    /// <summary>BLAKE3 fingerprints of weights and tokenizer.</summary>
    public ModelFingerprint Fingerprint { get; }

    /// <summary>The backend the weights live on.</summary>
    public ComputeBackend Backend { get; }

    /// <summary>Token embedding [vocab, hidden].</summary>
    internal DeviceTensor Embedding { get; }

    /// <summary>Final RMSNorm.</summary>
    internal DeviceTensor FinalNorm { get; }

    /// <summary>lm_head [vocab, hidden] (the embedding when tied).</summary>
    internal DeviceTensor LmHead { get; }

    /// <summary>RoPE inverse frequencies [head_dim/2].</summary>
    internal DeviceTensor InverseFrequencies { get; }

    /// <summary>The weights' stored dtype (of the embedding).</summary>
    public TensorDType WeightDType { get; }

    /// <summary>Number of parameters in the checkpoint (tied weights counted once).</summary>
    public long ParameterCount { get; }

    /// <summary>Layer weights.</summary>
    internal IReadOnlyList<LayerWeights> Layers => _layers;

    /// <summary>Loads a Hugging Face model directory onto a backend.</summary>
    /// <exception cref="ModelLoadException">A file is missing, malformed, inconsistent or unsupported.</exception>
    public static TransformerModel Load(string directory, ComputeBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!System.IO.Directory.Exists(directory))
        {
            throw new ModelLoadException($"Model directory not found: {directory}") { FilePath = directory };
        }

        var config = ModelConfig.Load(directory);
        var tokenizerPath = Path.Combine(directory, "tokenizer.json");
        ModelTokenizer? tokenizer = File.Exists(tokenizerPath) ? ModelTokenizer.Load(tokenizerPath) : null;
        SafeTensorsCheckpoint? checkpoint = null;
        var owned = new List<DeviceTensor>();
        try
        {
            if (tokenizer is not null && tokenizer.VocabSize > config.VocabSize)
            {
                throw new ModelLoadException(
                    $"Vocabulary mismatch in {directory}: tokenizer.json produces ids up to {tokenizer.VocabSize - 1} but the model's vocab_size is {config.VocabSize}.");
            }

            checkpoint = SafeTensorsCheckpoint.Open(directory);
            var ck = checkpoint;
            long parameters = 0;
            DeviceTensor W(string name, params int[] shape)
            {
                var t = ck.Get(name);
                t.EnsureShape(shape);
                parameters += t.ElementCount;
                var rows = shape.Length == 1 ? 1 : shape[0];
                var cols = shape.Length == 1 ? shape[0] : shape[1];
                var d = backend.CreateWeight(t, rows, cols);
                owned.Add(d);
                return d;
            }

            DeviceTensor? Optional(bool present, string name, params int[] shape) => present ? W(name, shape) : null;

            var h = config.HiddenSize;
            var embedding = W("model.embed_tokens.weight", config.VocabSize, h);
            var weightDType = ck.Get("model.embed_tokens.weight").DType;
            var finalNorm = W("model.norm.weight", h);
            DeviceTensor lmHead;
            if (config.TieWordEmbeddings || !ck.Contains("lm_head.weight"))
            {
                if (!config.TieWordEmbeddings)
                {
                    throw new ModelLoadException($"{directory}: tie_word_embeddings is false but lm_head.weight is missing.");
                }

                lmHead = embedding;
            }
            else
            {
                lmHead = W("lm_head.weight", config.VocabSize, h);
            }

            // Checked before the layer array is allocated: a config that claims billions of layers fails here, by name.
            var lastLayerNorm = $"model.layers.{config.LayerCount - 1}.input_layernorm.weight";
            if (!ck.Contains(lastLayerNorm))
            {
                throw new ModelLoadException($"{directory}: num_hidden_layers is {config.LayerCount} but tensor '{lastLayerNorm}' is missing from the checkpoint.")
                {
                    FilePath = Path.Combine(directory, "config.json"),
                    JsonPath = "num_hidden_layers",
                    TensorName = lastLayerNorm,
                };
            }

            var layers = new LayerWeights[config.LayerCount];
            for (var i = 0; i < config.LayerCount; i++)
            {
                var p = $"model.layers.{i}.";
                layers[i] = new LayerWeights
                {
                    InputNorm = W(p + "input_layernorm.weight", h),
                    PostAttentionNorm = W(p + "post_attention_layernorm.weight", h),
                    Query = W(p + "self_attn.q_proj.weight", config.QueryWidth, h),
                    Key = W(p + "self_attn.k_proj.weight", config.KvWidth, h),
                    Value = W(p + "self_attn.v_proj.weight", config.KvWidth, h),
                    Output = W(p + "self_attn.o_proj.weight", h, config.QueryWidth),
                    QueryBias = Optional(config.QkvBias, p + "self_attn.q_proj.bias", config.QueryWidth),
                    KeyBias = Optional(config.QkvBias, p + "self_attn.k_proj.bias", config.KvWidth),
                    ValueBias = Optional(config.QkvBias, p + "self_attn.v_proj.bias", config.KvWidth),
                    OutputBias = Optional(config.OutputBias, p + "self_attn.o_proj.bias", h),
                    QueryNorm = Optional(config.QkNorm, p + "self_attn.q_norm.weight", config.HeadDim),
                    KeyNorm = Optional(config.QkNorm, p + "self_attn.k_norm.weight", config.HeadDim),
                    Gate = W(p + "mlp.gate_proj.weight", config.IntermediateSize, h),
                    Up = W(p + "mlp.up_proj.weight", config.IntermediateSize, h),
                    Down = W(p + "mlp.down_proj.weight", h, config.IntermediateSize),
                    GateBias = Optional(config.MlpBias, p + "mlp.gate_proj.bias", config.IntermediateSize),
                    UpBias = Optional(config.MlpBias, p + "mlp.up_proj.bias", config.IntermediateSize),
                    DownBias = Optional(config.MlpBias, p + "mlp.down_proj.bias", h),
                };
            }

            var inv = backend.Allocate(TensorDType.F32, 1, config.HeadDim / 2);
            owned.Add(inv);
            backend.Upload(config.Rope.ComputeInverseFrequencies(config.HeadDim), inv, 0);
            var fingerprint = ModelFingerprint.Get(directory, ck.FilePaths, tokenizer is null ? null : tokenizerPath);
            return new TransformerModel(directory, config, tokenizer, fingerprint, ck, backend, embedding, finalNorm, lmHead, layers, inv, weightDType, parameters);
        }
        catch
        {
            foreach (var t in owned)
            {
                t.Dispose();
            }

            checkpoint?.Dispose();
            tokenizer?.Dispose();
            throw;
        }
    }

    /// <summary>KV caches and pass scratch of ended sessions, reused by new ones.</summary>
    internal SessionMemoryPool SessionMemory => _sessionMemory;

    /// <summary>Sessions open now (each holds a KV cache until disposed).</summary>
    public int OpenSessions => _sessionMemory.LiveCaches;

    /// <summary>Bytes of the KV caches of the open sessions.</summary>
    public long SessionKvBytes => _sessionMemory.LiveCacheBytes;

    /// <summary>Bytes of the KV cache a session of <paramref name="tokens"/> tokens holds (its capacity is rounded up).</summary>
    public long SessionKvBytesFor(int tokens) => KvCacheMemory.BytesFor(Config, _sessionMemory.CacheCapacity(tokens));

    /// <summary>
    /// Creates an inference session with a KV cache of at least <paramref name="capacity"/> slots (default: the
    /// model's context; rounded up to a multiple of <see cref="SessionMemoryPool.Granularity"/> within it, so ended
    /// sessions' memory serves new ones).
    /// </summary>
    public InferenceSession CreateSession(int? capacity = null) => new(this, capacity ?? Config.MaxPositionEmbeddings);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var l in _layers)
        {
            l.Dispose();
        }

        Embedding.Dispose();
        FinalNorm.Dispose();
        if (!ReferenceEquals(LmHead, Embedding))
        {
            LmHead.Dispose();
        }

        InverseFrequencies.Dispose();
        _sessionMemory.Dispose();
        _checkpoint.Dispose();
        Tokenizer?.Dispose();
    }
}
