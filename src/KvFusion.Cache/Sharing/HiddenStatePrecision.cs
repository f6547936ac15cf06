using System.Buffers;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.Fp8;
using KvFusion.Cache.Container;

namespace KvFusion.Cache.Sharing;

/// <summary>The precision an E-cache is kept at, for measuring what recomputation from it needs.</summary>
public enum HiddenStatePrecision
{
    /// <summary>As computed (fp16): what the lossless codecs (raw, lz4, and cachegen's E-cache sections) keep.</summary>
    Fp16,

    /// <summary>bfloat16: 8 bits of mantissa fewer than fp16's 11, with fp32's range.</summary>
    Bf16,

    /// <summary>fp8 E4M3 with a scale per token, as the fp8 codec stores it.</summary>
    Fp8,
}

/// <summary>Rounds E-caches to a <see cref="HiddenStatePrecision"/>.</summary>
public static class HiddenStateRounding
{
    /// <summary>Parses <c>fp16</c>, <c>bf16</c> or <c>fp8</c>.</summary>
    /// <exception cref="FormatException">Another name (the message lists the valid ones).</exception>
    public static HiddenStatePrecision Parse(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "fp16" => HiddenStatePrecision.Fp16,
        "bf16" => HiddenStatePrecision.Bf16,
        "fp8" => HiddenStatePrecision.Fp8,
        _ => throw new FormatException($"Unknown E-cache precision '{text}' (fp16, bf16, fp8)."),
    };

    /// <summary>The E-cache with every value rounded to <paramref name="precision"/> (and stored back as fp16).</summary>
    public static KvHiddenStates Round(KvHiddenStates states, HiddenStatePrecision precision)
    {
        ArgumentNullException.ThrowIfNull(states);
        if (precision == HiddenStatePrecision.Fp16)
        {
            return states;
        }

        var rounded = new Half[states.Layers.Count][];
        for (var i = 0; i < rounded.Length; i++)
        {
            var source = states.State(i);
            rounded[i] = new Half[source.Length];
            if (precision == HiddenStatePrecision.Bf16)
            {
                for (var j = 0; j < source.Length; j++)
                {
                    rounded[i][j] = (Half)ToBf16((float)source[j]);
                }
            }
            else
            {
                var shape = new KvSectionShape(states.Layers[i], KvSectionKind.HiddenStates, 1, states.TokenCount, states.HiddenSize);
                var buffer = ArrayPool<byte>.Shared.Rent(checked((int)Fp8Codec.Instance.MaxEncodedLength(shape)));
                try
                {
                    var written = Fp8Codec.Instance.Encode(source, shape, buffer).BytesWritten;
                    Fp8Codec.Instance.Decode(buffer.AsSpan(0, written), shape, rounded[i]);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }

        return new KvHiddenStates(states.TokenCount, states.HiddenSize, states.Layers, rounded);
    }

    /// <summary>Rounds to the nearest bfloat16 (ties to even).</summary>
    private static float ToBf16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return value;
        }

        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
    }
}
