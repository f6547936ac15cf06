using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvFusion.Cache.Codecs.Entropy;

/// <summary>
/// The table of one run in a <see cref="RansRunCoder"/> stream: a frequency table with its encoder constants
/// computed once (tables are shared by many streams, so they are built once and cached by their users).
/// </summary>
internal sealed class RansRunTable
{
    private readonly RansEncoder.EncodeSymbol[] _encode;

    public RansRunTable(SymbolFrequencies frequencies)
    {
        ArgumentNullException.ThrowIfNull(frequencies);
        Frequencies = frequencies;
        _encode = new RansEncoder.EncodeSymbol[SymbolFrequencies.AlphabetSize];
        for (var s = 0; s < _encode.Length; s++)
            _encode[s] = RansEncoder.EncodeSymbol.Create(frequencies.Frequencies[s], frequencies.Cumulative[s], frequencies.ScaleBits);
    }

    public SymbolFrequencies Frequencies { get; }

    internal ReadOnlySpan<RansEncoder.EncodeSymbol> Encode => _encode;
}

/// <summary>
/// rANS over a stream cut into runs of equal length, each run coded with its own table (for the cachegen codec: one
/// run per channel, coded with that channel's statistics). The stream format is <see cref="RansEncoder"/>'s: four
/// interleaved 32-bit states flushed first, byte-wise renormalization at L = 2^23, symbol i in state i mod 4. The run
/// length must be a multiple of 4, so that every group of four symbols shares one table.
/// </summary>
/// <remarks>
/// Decoding has the single-table decoder's guarantees: every read is bounds-checked, a state stays in [2^23, 2^31),
/// and the stream must end in the initial states with every byte consumed, else <see cref="EntropyStreamException"/>.
/// </remarks>
internal static class RansRunCoder
{
    private const int Interleave = RansEncoder.Interleave;
    private const uint L = RansEncoder.StateLowerBound;

    /// <summary>The largest stream for <paramref name="symbolCount"/> symbols.</summary>
    public static int GetMaxEncodedLength(int symbolCount) => RansEncoder.GetMaxEncodedLength(symbolCount);

    /// <summary>Encodes <paramref name="symbols"/>, run r (symbols [r·runLength, (r+1)·runLength)) with tables[r].</summary>
    /// <returns>Bytes written at the start of <paramref name="destination"/>, which holds at least
    /// <see cref="GetMaxEncodedLength"/> bytes.</returns>
    /// <exception cref="ArgumentException">The shapes do not agree, the destination is too small, or a symbol has
    /// frequency 0 in its run's table.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Encode(ReadOnlySpan<byte> symbols, int runLength, ReadOnlySpan<RansRunTable> tables, Span<byte> destination)
    {
        CheckShape(symbols.Length, runLength, tables.Length);
        if (destination.Length < GetMaxEncodedLength(symbols.Length))
            throw new ArgumentException($"The destination of {destination.Length} bytes is below the bound of {GetMaxEncodedLength(symbols.Length)}.", nameof(destination));
        ref var dst = ref MemoryMarshal.GetReference(destination);
        nint pos = destination.Length;
        Span<uint> x = [L, L, L, L];
        for (var r = tables.Length - 1; r >= 0; r--)
        {
            var encode = tables[r].Encode;
            var start = r * runLength;
            for (var i = start + runLength - 1; i >= start; i--)
            {
                var symbol = symbols[i];
                ref readonly var e = ref encode[symbol];
                if (e.Limit == 0)
                    throw new ArgumentException($"Symbol {symbol} at index {i} has frequency 0 in the table of run {r}.", nameof(symbols));
                ref var xs = ref x[i & (Interleave - 1)];
                var s = xs;
                while (s >= e.Limit)
                {
                    Unsafe.Add(ref dst, --pos) = (byte)s;
                    s >>= 8;
                }

                xs = s + e.Bias + ((uint)(((ulong)s * e.Reciprocal) >> 32) >> e.ReciprocalShift) * e.ComplementFrequency;
            }
        }

        pos -= RansEncoder.HeaderLength;
        var header = destination.Slice((int)pos, RansEncoder.HeaderLength);
        for (var k = 0; k < Interleave; k++)
            BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(k * sizeof(uint)), x[k]);
        var written = destination.Length - (int)pos;
        destination.Slice((int)pos).CopyTo(destination);
        return written;
    }

    /// <summary>Decodes exactly <paramref name="destination"/>.Length symbols, run r with tables[r].</summary>
    /// <exception cref="EntropyStreamException">The stream is truncated, has trailing bytes, carries an invalid state
    /// or does not end in the initial states.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(ReadOnlySpan<byte> encoded, int runLength, ReadOnlySpan<RansRunTable> tables, Span<byte> destination)
    {
        CheckShape(destination.Length, runLength, tables.Length);
        if (encoded.Length < RansEncoder.HeaderLength)
            throw new EntropyStreamException($"The entropy-coded stream is truncated: {encoded.Length} bytes, the states alone need {RansEncoder.HeaderLength}.");
        var x0 = ReadState(encoded, 0);
        var x1 = ReadState(encoded, 1);
        var x2 = ReadState(encoded, 2);
        var x3 = ReadState(encoded, 3);
        ref var input = ref MemoryMarshal.GetReference(encoded);
        ref var output = ref MemoryMarshal.GetReference(destination);
        var pos = RansEncoder.HeaderLength;
        var end = encoded.Length;
        var o = 0;
        for (var r = 0; r < tables.Length; r++)
        {
            var table = tables[r].Frequencies;
            var scaleBits = table.ScaleBits;
            var mask = (uint)table.Total - 1;
            ref var packed = ref MemoryMarshal.GetReference(table.PackedFrequencies);
            // The slot table has exactly 2^scaleBits entries and slots are masked to that range.
            ref var slots = ref table.SlotToSymbol[0];
            for (var runEnd = o + runLength; o < runEnd; o += Interleave)
            {
                // A group of four reads at most 8 bytes; near the end every byte is checked.
                if (end - pos >= 2 * Interleave)
                {
                    Unsafe.Add(ref output, o) = Step(ref x0, ref slots, ref packed, mask, scaleBits, ref input, ref pos);
                    Unsafe.Add(ref output, o + 1) = Step(ref x1, ref slots, ref packed, mask, scaleBits, ref input, ref pos);
                    Unsafe.Add(ref output, o + 2) = Step(ref x2, ref slots, ref packed, mask, scaleBits, ref input, ref pos);
                    Unsafe.Add(ref output, o + 3) = Step(ref x3, ref slots, ref packed, mask, scaleBits, ref input, ref pos);
                }
                else
                {
                    Unsafe.Add(ref output, o) = CheckedStep(ref x0, ref slots, ref packed, mask, scaleBits, encoded, ref pos, o);
                    Unsafe.Add(ref output, o + 1) = CheckedStep(ref x1, ref slots, ref packed, mask, scaleBits, encoded, ref pos, o + 1);
                    Unsafe.Add(ref output, o + 2) = CheckedStep(ref x2, ref slots, ref packed, mask, scaleBits, encoded, ref pos, o + 2);
                    Unsafe.Add(ref output, o + 3) = CheckedStep(ref x3, ref slots, ref packed, mask, scaleBits, encoded, ref pos, o + 3);
                }
            }
        }

        if (pos != end)
            throw new EntropyStreamException($"The entropy-coded stream has {end - pos} bytes left after {destination.Length} symbols; it is corrupt or the symbol count is wrong.");
        if (x0 != L || x1 != L || x2 != L || x3 != L)
            throw new EntropyStreamException("The entropy-coded stream does not end in the encoder's initial states; it is corrupt, or the tables or symbol count do not match.");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Step(ref uint x, ref byte slots, ref uint packed, uint mask, int scaleBits, ref byte input, ref int pos)
    {
        var slot = x & mask;
        var symbol = Unsafe.Add(ref slots, (nint)slot);
        var fc = Unsafe.Add(ref packed, symbol);
        x = ((fc >> 16) * (x >> scaleBits)) + slot - (fc & 0xFFFF);
        if (x < L)
        {
            x = (x << 8) | Unsafe.Add(ref input, pos++);
            if (x < L)
                x = (x << 8) | Unsafe.Add(ref input, pos++);
        }

        return symbol;
    }

    private static byte CheckedStep(ref uint x, ref byte slots, ref uint packed, uint mask, int scaleBits, ReadOnlySpan<byte> encoded, ref int pos, int index)
    {
        var slot = x & mask;
        var symbol = Unsafe.Add(ref slots, (nint)slot);
        var fc = Unsafe.Add(ref packed, symbol);
        x = ((fc >> 16) * (x >> scaleBits)) + slot - (fc & 0xFFFF);
        while (x < L)
        {
            if (pos >= encoded.Length)
                throw new EntropyStreamException($"The entropy-coded stream is truncated: it ends at byte {encoded.Length} while decoding symbol {index}.");
            x = (x << 8) | encoded[pos++];
        }

        return symbol;
    }

    private static void CheckShape(int symbolCount, int runLength, int runs)
    {
        if (runLength <= 0 || runLength % Interleave != 0)
            throw new ArgumentException($"The run length must be a positive multiple of {Interleave}; it is {runLength}.", nameof(runLength));
        if ((long)runLength * runs != symbolCount)
            throw new ArgumentException($"{runs} runs of {runLength} symbols are {(long)runLength * runs} symbols, not {symbolCount}.", nameof(symbolCount));
    }

    private static uint ReadState(ReadOnlySpan<byte> encoded, int index)
    {
        var x = BinaryPrimitives.ReadUInt32LittleEndian(encoded.Slice(index * sizeof(uint)));
        if (x < L || x >= L << 8)
            throw new EntropyStreamException($"State {index} of the entropy-coded stream is 0x{x:X8}, outside [2^23, 2^31).");
        return x;
    }
}
