namespace KvFusion.Cache.Codecs.Entropy;

/// <summary>
/// Decoder for streams written by <see cref="RansEncoder"/> (4 interleaved 32-bit states, byte-wise
/// renormalization at L = 2^23).
/// </summary>
/// <remarks>
/// Every read is bounds-checked against the input span and states are validated on entry, so a truncated or corrupt
/// stream ends in <see cref="EntropyStreamException"/>, never an out-of-range read or a loop that does not end: a
/// state in [2^23, 2^31) stays there after each step and needs at most 2 bytes per symbol. At the end all states
/// must be back at L and every input byte consumed.
/// </remarks>
internal static class RansDecoder
{
    /// <summary>
    /// Decodes exactly <paramref name="destination"/>.Length symbols from <paramref name="encoded"/>, which must be
    /// exactly the stream <see cref="RansEncoder.Encode"/> wrote (no trailing bytes).
    /// </summary>
    /// <exception cref="EntropyStreamException">The stream is truncated, has trailing bytes, carries an invalid
    /// state, or does not end in the encoder's initial states (corruption or a mismatched table or count).</exception>
    /// <remarks>A single-table stream is one run of <see cref="RansRunCoder"/>'s format, decoded by its loop.</remarks>
    public static void Decode(ReadOnlySpan<byte> encoded, SymbolFrequencies table, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(table);
        var states = RansRunCoder.ReadStates(encoded);
        var pos = RansEncoder.HeaderLength;
        RansRunCoder.DecodeRun(encoded, table, destination, 0, 1, destination.Length, ref states, ref pos);
        RansRunCoder.CheckEnd(encoded, pos, states, destination.Length);
    }
}
