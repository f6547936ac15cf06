namespace KvFusion.Cache.Codecs;

/// <summary>What a container section holds. The numeric values are written in containers: never renumber.</summary>
public enum KvSectionKind : byte
{
    /// <summary>One layer's K (before RoPE), [kv_head][token][head_dim].</summary>
    Keys = 0,

    /// <summary>One layer's V, [kv_head][token][head_dim].</summary>
    Values = 1,

    /// <summary>The hidden state entering a layer (E-cache for cross-model sharing), [token][hidden].</summary>
    HiddenStates = 2,
}
