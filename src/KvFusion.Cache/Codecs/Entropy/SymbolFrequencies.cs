namespace KvFusion.Cache.Codecs.Entropy;

/// <summary>
/// A normalized frequency table over byte symbols for <see cref="RansEncoder"/> and <see cref="RansDecoder"/>:
/// frequencies sum to exactly 2^<see cref="ScaleBits"/>, every symbol that occurs in the counts gets at least 1,
/// and symbols that never occur get 0 (they cannot be encoded; there is no escape symbol).
/// </summary>
/// <remarks>
/// ScaleBits is limited to 12..15: 2^12 is the smallest total that still gives all 256 symbols a slot with room to
/// spare, and 2^15 keeps <c>freq &lt;&lt; (31 - ScaleBits)</c> and the decoder's state arithmetic inside 32 bits with
/// the byte-wise renormalization bound L = 2^23. 14 is the default: finer quantization than 12 for skewed data,
/// with a decode table (slot to symbol) of 16 KiB that stays in L1.
/// Normalization uses integer arithmetic only, so the same counts give the same table on every machine.
/// </remarks>
internal sealed class SymbolFrequencies
{
    /// <summary>The smallest supported scale (total 4096).</summary>
    public const int MinScaleBits = 10;

    /// <summary>The largest supported scale (total 32768).</summary>
    public const int MaxScaleBits = 15;

    /// <summary>The default scale (total 16384).</summary>
    public const int DefaultScaleBits = 14;

    /// <summary>The number of symbols in the alphabet (byte symbols).</summary>
    public const int AlphabetSize = 256;

    /// <summary>The longest serialized table: scale byte, presence bitmap, and a 3-byte varint per symbol.</summary>
    public const int MaxSerializedLength = 1 + (AlphabetSize / 8) + (AlphabetSize * 3);

    private readonly uint[] _frequencies;
    private readonly uint[] _cumulative;
    private readonly byte[] _slotToSymbol;
    private readonly uint[] _packed;

    private SymbolFrequencies(int scaleBits, uint[] frequencies)
    {
        ScaleBits = scaleBits;
        _frequencies = frequencies;
        _cumulative = new uint[AlphabetSize];
        _slotToSymbol = new byte[1 << scaleBits];
        _packed = new uint[AlphabetSize];
        uint cum = 0;
        for (var s = 0; s < AlphabetSize; s++)
        {
            _cumulative[s] = cum;
            // Frequency (at most 2^15) and cumulative (below 2^15) share one word, so a decoder short of registers
            // holds one table address instead of two.
            _packed[s] = (frequencies[s] << 16) | cum;
            _slotToSymbol.AsSpan((int)cum, (int)frequencies[s]).Fill((byte)s);
            cum += frequencies[s];
        }
    }

    /// <summary>log2 of the total the frequencies sum to.</summary>
    public int ScaleBits { get; }

    /// <summary>The total the frequencies sum to (2^<see cref="ScaleBits"/>).</summary>
    public int Total => 1 << ScaleBits;

    internal ReadOnlySpan<uint> Frequencies => _frequencies;

    internal ReadOnlySpan<uint> Cumulative => _cumulative;

    internal byte[] SlotToSymbol => _slotToSymbol;

    /// <summary>Per symbol: frequency in the high 16 bits, cumulative frequency in the low 16.</summary>
    internal ReadOnlySpan<uint> PackedFrequencies => _packed;

    /// <summary>The normalized frequency of a symbol (0 when it cannot be encoded).</summary>
    public int Frequency(byte symbol) => (int)_frequencies[symbol];

    /// <summary>The sum of the frequencies of all smaller symbols.</summary>
    public int CumulativeFrequency(byte symbol) => (int)_cumulative[symbol];

    /// <summary>The symbol that owns a slot of the decode table.</summary>
    public byte SymbolAt(int slot) => _slotToSymbol[slot];

    /// <summary>Builds the table from the histogram of <paramref name="symbols"/>.</summary>
    /// <exception cref="ArgumentException">The span is empty (no symbol occurs).</exception>
    public static SymbolFrequencies FromSymbols(ReadOnlySpan<byte> symbols, int scaleBits = DefaultScaleBits)
    {
        Span<long> counts = stackalloc long[AlphabetSize];
        foreach (var s in symbols)
            counts[s]++;
        return FromCounts(counts, scaleBits);
    }

    /// <summary>
    /// Normalizes symbol counts (index = symbol, at most 256 entries) to a total of 2^<paramref name="scaleBits"/>.
    /// </summary>
    /// <exception cref="ArgumentException">No symbol occurs, a count is negative, or there are more than 256 counts.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="scaleBits"/> is outside 12..15.</exception>
    public static SymbolFrequencies FromCounts(ReadOnlySpan<long> counts, int scaleBits = DefaultScaleBits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(scaleBits, MinScaleBits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(scaleBits, MaxScaleBits);
        if (counts.Length > AlphabetSize)
            throw new ArgumentException($"At most {AlphabetSize} symbol counts are supported, got {counts.Length}.", nameof(counts));

        UInt128 total = 0;
        for (var s = 0; s < counts.Length; s++)
        {
            if (counts[s] < 0)
                throw new ArgumentException($"The count of symbol {s} is negative ({counts[s]}).", nameof(counts));
            total += (ulong)counts[s];
        }
        if (total == 0)
            throw new ArgumentException("No symbol occurs; a frequency table needs at least one.", nameof(counts));

        var m = 1u << scaleBits;
        var freq = new uint[AlphabetSize];
        var remainder = new UInt128[AlphabetSize];
        long sum = 0;
        for (var s = 0; s < counts.Length; s++)
        {
            if (counts[s] == 0)
                continue;
            var scaled = (UInt128)(ulong)counts[s] * m;
            var f = (uint)(scaled / total);
            remainder[s] = scaled % total;
            if (f == 0)
            {
                // Every occurring symbol must be encodable; its rounding credit is spent by the bump itself.
                f = 1;
                remainder[s] = 0;
            }
            freq[s] = f;
            sum += f;
        }

        if (sum < m)
        {
            // Largest-remainder rounding: the floors lose less than 1 per symbol, so the deficit is below the
            // number of occurring symbols and one pass over them in remainder order covers it.
            var order = new int[AlphabetSize];
            for (var s = 0; s < AlphabetSize; s++)
                order[s] = s;
            Array.Sort(order, (a, b) =>
            {
                var byRemainder = remainder[b].CompareTo(remainder[a]);
                return byRemainder != 0 ? byRemainder : a.CompareTo(b);
            });
            var deficit = m - sum;
            for (var i = 0; deficit > 0; i = (i + 1) % AlphabetSize)
            {
                var s = order[i];
                if (freq[s] == 0)
                    continue;
                freq[s]++;
                deficit--;
            }
        }
        else
        {
            // Bumping rare symbols to 1 overshoots by at most 255; take it back one unit at a time from the largest
            // frequency (lowest symbol on ties), where a unit costs the least. It always fits: with m >= 4096 the
            // symbols above 1 hold far more than 255 spare units.
            for (var excess = sum - m; excess > 0; excess--)
            {
                var best = -1;
                for (var s = 0; s < AlphabetSize; s++)
                {
                    if (freq[s] > 1 && (best < 0 || freq[s] > freq[best]))
                        best = s;
                }
                freq[best]--;
            }
        }
        return new SymbolFrequencies(scaleBits, freq);
    }

    /// <summary>The number of bytes <see cref="Write"/> produces for this table.</summary>
    public int SerializedLength
    {
        get
        {
            var length = 1 + (AlphabetSize / 8);
            foreach (var f in _frequencies)
            {
                if (f != 0)
                    length += VarintLength(f - 1);
            }
            return length;
        }
    }

    /// <summary>
    /// Writes the table: one byte of scale bits, a 32-byte presence bitmap (bit s of byte s/8), then for each
    /// present symbol in order its frequency minus one as an LEB128 varint (1 to 3 bytes).
    /// </summary>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="SerializedLength"/>.</exception>
    public int Write(Span<byte> destination)
    {
        var length = SerializedLength;
        if (destination.Length < length)
            throw new ArgumentException($"The destination holds {destination.Length} bytes; the table needs {length}.", nameof(destination));
        destination[0] = (byte)ScaleBits;
        var bitmap = destination.Slice(1, AlphabetSize / 8);
        bitmap.Clear();
        var pos = 1 + (AlphabetSize / 8);
        for (var s = 0; s < AlphabetSize; s++)
        {
            var f = _frequencies[s];
            if (f == 0)
                continue;
            bitmap[s >> 3] |= (byte)(1 << (s & 7));
            var v = f - 1;
            while (v >= 0x80)
            {
                destination[pos++] = (byte)(v | 0x80);
                v >>= 7;
            }
            destination[pos++] = (byte)v;
        }
        return pos;
    }

    /// <summary>Reads a table written by <see cref="Write"/>, validating every field.</summary>
    /// <param name="source">Bytes that start with a serialized table (trailing bytes are left alone).</param>
    /// <param name="bytesRead">The length of the table within <paramref name="source"/>.</param>
    /// <exception cref="EntropyStreamException">The bytes are truncated, the scale is out of range, a varint is
    /// overlong or out of range, no symbol is present, or the frequencies do not sum to the total.</exception>
    public static SymbolFrequencies Read(ReadOnlySpan<byte> source, out int bytesRead)
    {
        const int header = 1 + (AlphabetSize / 8);
        if (source.Length < header)
            throw new EntropyStreamException($"The frequency table is truncated: {source.Length} bytes, the header alone needs {header}.");
        int scaleBits = source[0];
        if (scaleBits is < MinScaleBits or > MaxScaleBits)
            throw new EntropyStreamException($"The frequency table's scale is {scaleBits} bits; {MinScaleBits}..{MaxScaleBits} are supported.");
        var m = 1u << scaleBits;
        var bitmap = source.Slice(1, AlphabetSize / 8);
        var freq = new uint[AlphabetSize];
        var pos = header;
        ulong sum = 0;
        for (var s = 0; s < AlphabetSize; s++)
        {
            if ((bitmap[s >> 3] & (1 << (s & 7))) == 0)
                continue;
            uint v = 0;
            for (var shift = 0; ; shift += 7)
            {
                if (pos >= source.Length)
                    throw new EntropyStreamException($"The frequency table is truncated at symbol {s}.");
                if (shift > 14)
                    throw new EntropyStreamException($"The frequency of symbol {s} is longer than 3 bytes.");
                var b = source[pos++];
                v |= (uint)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    if (b == 0 && shift != 0)
                        throw new EntropyStreamException($"The frequency of symbol {s} is not minimally encoded.");
                    break;
                }
            }
            if (v >= m)
                throw new EntropyStreamException($"The frequency of symbol {s} is {(ulong)v + 1}, above the total {m}.");
            freq[s] = v + 1;
            sum += v + 1;
        }
        if (sum != m)
            throw new EntropyStreamException($"The frequency table sums to {sum}; it must sum to 2^{scaleBits} = {m}.");
        bytesRead = pos;
        return new SymbolFrequencies(scaleBits, freq);
    }

    private static int VarintLength(uint v) => v < 0x80 ? 1 : v < 0x4000 ? 2 : 3;
}
