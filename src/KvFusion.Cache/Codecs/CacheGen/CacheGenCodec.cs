using System.Buffers;
using System.Buffers.Binary;
using KvFusion.Cache.Codecs.Entropy;
using KvFusion.Cache.Codecs.Lz4;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>
/// The cachegen codec: per-token max-abs quantization with levels by layer group (<see cref="CacheGenParameters"/>),
/// then rANS with one table per channel, from a model profile or from two bytes of parametric statistics per channel.
/// </summary>
/// <remarks>
/// Section payload (little-endian): the scales as fp16 bits (one per token, or one per channel for per-channel
/// scaling); with inline statistics, (center, spread) per channel (<see cref="GeometricTables"/>); then the rANS
/// stream of <see cref="RansRunCoder"/> over channels × runs of tokens rounded up to 4, the padding being the zero
/// symbol. Hidden-state (E-cache) sections are coded losslessly with lz4. The decoder checks the scales (finite, not negative), the statistics, the stream and the padding.
/// </remarks>
internal sealed class CacheGenCodec : KvSectionCodec
{
    private readonly CacheGenParameters _parameters;
    private readonly CacheGenProfile? _profile;

    public CacheGenCodec(CacheGenParameters parameters, CacheGenProfile? profile)
    {
        _parameters = parameters;
        _profile = profile;
    }

    public override KvCodecSpec Spec => KvCodecSpec.CacheGen(_parameters.Level);

    public override int ParametersLength => _parameters.Length;

    public override void WriteParameters(Span<byte> destination) => _parameters.Write(destination);

    public override long MaxEncodedLength(in KvSectionShape shape)
    {
        if (shape.Kind == KvSectionKind.HiddenStates)
            return Lz4Codec.Instance.MaxEncodedLength(shape);
        var run = CacheGenQuantizer.RunLength(shape.Tokens);
        return HeadLength(shape) + RansRunCoder.GetMaxEncodedLength(checked(shape.Channels * run));
    }

    public override KvSectionEncoding Encode(ReadOnlySpan<Half> values, in KvSectionShape shape, Span<byte> destination)
    {
        // Hidden states feed recomputation directly, so they stay lossless (lz4) in a cachegen container.
        if (shape.Kind == KvSectionKind.HiddenStates)
            return Lz4Codec.Instance.Encode(values, shape, destination);
        CheckSection(shape);
        if (values.Length != shape.ValueCount)
            throw new ArgumentException($"The section holds {values.Length} values, its shape {shape.ValueCount}.", nameof(values));
        var (levels, alphabet, scaling, channels, run, scaleCount) = Layout(shape);
        var symbols = ArrayPool<byte>.Shared.Rent(channels * run);
        var scales = ArrayPool<Half>.Shared.Rent(scaleCount);
        var tables = ArrayPool<RansRunTable>.Shared.Rent(channels);
        try
        {
            CacheGenQuantizer.Quantize(values, shape, scaling, levels, run, scales, symbols);
            var p = 0;
            for (var i = 0; i < scaleCount; i++, p += 2)
                BinaryPrimitives.WriteUInt16LittleEndian(destination[p..], BitConverter.HalfToUInt16Bits(scales[i]));
            var statisticsBytes = 0;
            for (var c = 0; c < channels; c++)
            {
                if (_profile is not null)
                {
                    tables[c] = _profile.Table(shape.Layer, shape.Kind, c);
                }
                else
                {
                    var (center, spread) = GeometricTables.Fit(symbols.AsSpan(0, shape.Tokens * channels), c, channels, alphabet);
                    destination[p++] = center;
                    destination[p++] = spread;
                    statisticsBytes += 2;
                    tables[c] = GeometricTables.Get(alphabet, center, spread);
                }
            }

            var written = RansRunCoder.Encode(symbols.AsSpan(0, channels * run), run, tables.AsSpan(0, channels), destination[p..]);
            return new KvSectionEncoding(p + written, statisticsBytes);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(symbols);
            ArrayPool<Half>.Shared.Return(scales);
            ArrayPool<RansRunTable>.Shared.Return(tables, clearArray: true);
        }
    }

    public override void Decode(ReadOnlySpan<byte> payload, in KvSectionShape shape, Span<Half> destination)
    {
        if (shape.Kind == KvSectionKind.HiddenStates)
        {
            Lz4Codec.Instance.Decode(payload, shape, destination);
            return;
        }

        CheckSection(shape);
        var (levels, alphabet, scaling, channels, run, scaleCount) = Layout(shape);
        var head = HeadLength(shape);
        if (payload.Length < head + RansEncoder.HeaderLength)
            throw new KvCodecException($"A cachegen section of layer {shape.Layer} {shape.Kind} is {payload.Length} bytes; its scales and statistics alone take {head}.");
        var symbols = ArrayPool<byte>.Shared.Rent(channels * run);
        var scales = ArrayPool<Half>.Shared.Rent(scaleCount);
        var tables = ArrayPool<RansRunTable>.Shared.Rent(channels);
        try
        {
            var p = 0;
            for (var i = 0; i < scaleCount; i++, p += 2)
            {
                var scale = BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(payload[p..]));
                if (!Half.IsFinite(scale) || Half.IsNegative(scale))
                    throw new KvCodecException($"Scale {i} of the cachegen section of layer {shape.Layer} {shape.Kind} is {scale}; scales are finite and not negative.");
                scales[i] = scale;
            }

            for (var c = 0; c < channels; c++)
            {
                if (_profile is not null)
                {
                    tables[c] = _profile.Table(shape.Layer, shape.Kind, c);
                }
                else
                {
                    tables[c] = GeometricTables.Get(alphabet, payload[p], payload[p + 1]);
                    p += 2;
                }
            }

            try
            {
                RansRunCoder.Decode(payload[p..], run, tables.AsSpan(0, channels), symbols.AsSpan(0, channels * run));
            }
            catch (EntropyStreamException e)
            {
                throw new KvCodecException($"The cachegen section of layer {shape.Layer} {shape.Kind} is corrupt: {e.Message}", e);
            }

            if (symbols.AsSpan(shape.Tokens * channels, (run - shape.Tokens) * channels).IndexOfAnyExcept((byte)levels) >= 0)
                throw new KvCodecException($"The cachegen section of layer {shape.Layer} {shape.Kind} is corrupt: its padding is not the zero symbol.");

            // Every table covers exactly the 2B + 1 symbols of its level (profiles are checked when read, inline tables
            // are built over the alphabet), so every decoded symbol is a valid one.

            CacheGenQuantizer.Dequantize(symbols, scales, shape, scaling, levels, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(symbols);
            ArrayPool<Half>.Shared.Return(scales);
            ArrayPool<RansRunTable>.Shared.Return(tables, clearArray: true);
        }
    }

    /// <summary>A section's quantization and symbol layout: levels B, alphabet 2B + 1, scaling, channels, run length
    /// (tokens rounded up to 4) and scale count.</summary>
    private (int Levels, int Alphabet, CacheGenScaling Scaling, int Channels, int Run, int ScaleCount) Layout(in KvSectionShape shape)
    {
        var levels = _parameters.Levels(shape.Layer, shape.Kind);
        var scaling = Scaling(shape.Kind);
        return (levels, (2 * levels) + 1, scaling, shape.Channels, CacheGenQuantizer.RunLength(shape.Tokens), CacheGenQuantizer.ScaleCount(shape, scaling));
    }

    private int HeadLength(in KvSectionShape shape) =>
        (2 * CacheGenQuantizer.ScaleCount(shape, Scaling(shape.Kind))) + (_profile is null ? 2 * shape.Channels : 0);

    private CacheGenScaling Scaling(KvSectionKind kind) => kind == KvSectionKind.Keys ? _parameters.KeyScaling : _parameters.ValueScaling;

    private void CheckSection(in KvSectionShape shape)
    {
        if (shape.Kind is not (KvSectionKind.Keys or KvSectionKind.Values))
            throw new KvCodecException($"The cachegen codec quantizes K and V sections; this one holds {shape.Kind}.");
        if ((uint)shape.Layer >= (uint)_parameters.LayerCount)
            throw new KvCodecException($"Layer {shape.Layer} is outside the {_parameters.LayerCount} layers of the cachegen parameters.");
        if (_profile is not null && _profile.Channels != shape.Channels)
            throw new KvCodecException($"The cachegen profile has {_profile.Channels} channels per token; the section has {shape.Channels}.");
    }
}
