using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

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
/// interleaved 32-bit states flushed first, byte-wise renormalization at L = 2^23, symbol i in state i mod 4; the
/// stream holds run 0's symbols, then run 1's, and so on. The run length must be a multiple of 4, so that every group
/// of four symbols shares one table.
/// </summary>
/// <remarks>
/// <para>In memory the symbols are a matrix [runLength][runs]: symbol j of run r is at j · runs + r. For the cachegen
/// codec that is token-major ([token][channel]), the layout the quantizer reads and the dequantizer writes with
/// contiguous vector loads, while the stream stays channel-major for the per-channel tables.</para>
/// <para>Decoding has the single-table decoder's guarantees: every read is bounds-checked, a state stays in
/// [2^23, 2^31), and the stream must end in the initial states with every byte consumed, else
/// <see cref="EntropyStreamException"/>.</para>
/// </remarks>
internal static class RansRunCoder
{
    private const int Interleave = RansEncoder.Interleave;
    private const uint L = RansEncoder.StateLowerBound;

    // A group of four symbols reads at most 8 bytes; the last state's 4-byte peek reaches 2 bytes further.
    private const int GroupInput = 2 * Interleave;
    private const int PeekSlack = sizeof(uint) - 2;

    /// <summary>The largest stream for <paramref name="symbolCount"/> symbols.</summary>
    public static int GetMaxEncodedLength(int symbolCount) => RansEncoder.GetMaxEncodedLength(symbolCount);

    /// <summary>Encodes <paramref name="symbols"/> ([runLength][runs]), run r (symbols j · runs + r) with tables[r].</summary>
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
        var runs = tables.Length;
        Span<uint> x = [L, L, L, L];
        for (var r = runs - 1; r >= 0; r--)
        {
            var encode = tables[r].Encode;
            for (var j = runLength - 1; j >= 0; j--)
            {
                var symbol = symbols[(j * runs) + r];
                ref readonly var e = ref encode[symbol];
                if (e.Limit == 0)
                    throw new ArgumentException($"Symbol {symbol} at position {j} of run {r} has frequency 0 in its run's table.", nameof(symbols));
                ref var xs = ref x[j & (Interleave - 1)];
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

    /// <summary>Decodes exactly <paramref name="destination"/>.Length symbols into [runLength][runs], run r with
    /// tables[r].</summary>
    /// <exception cref="EntropyStreamException">The stream is truncated, has trailing bytes, carries an invalid state
    /// or does not end in the initial states.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(ReadOnlySpan<byte> encoded, int runLength, ReadOnlySpan<RansRunTable> tables, Span<byte> destination)
    {
        CheckShape(destination.Length, runLength, tables.Length);
        var states = ReadStates(encoded);
        var pos = RansEncoder.HeaderLength;
        var runs = tables.Length;
        for (var r = 0; r < runs; r++)
            DecodeRun(encoded, tables[r].Frequencies, destination, r, runs, runLength, ref states, ref pos);
        CheckEnd(encoded, pos, states, destination.Length);
    }

    /// <summary>The four initial states at the start of a stream, each checked to be in [2^23, 2^31).</summary>
    /// <exception cref="EntropyStreamException">The stream is shorter than the states or a state is out of range.</exception>
    internal static RansStates ReadStates(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < RansEncoder.HeaderLength)
            throw new EntropyStreamException($"The entropy-coded stream is truncated: {encoded.Length} bytes, the states alone need {RansEncoder.HeaderLength}.");
        return new RansStates(ReadState(encoded, 0), ReadState(encoded, 1), ReadState(encoded, 2), ReadState(encoded, 3));
    }

    /// <summary>
    /// Decodes <paramref name="count"/> symbols with one table, symbol j into destination[start + j · stride] and
    /// state j mod 4 (a run starts at a multiple of 4 in the stream), advancing the states and the read position.
    /// </summary>
    /// <exception cref="EntropyStreamException">The stream ends before the run does.</exception>
    internal static void DecodeRun(ReadOnlySpan<byte> encoded, SymbolFrequencies table, Span<byte> destination, int start, int stride, int count, ref RansStates states, ref int pos)
    {
        if (count == 0)
            return;
        if (start < 0 || stride < 1 || start + ((long)(count - 1) * stride) >= destination.Length)
            throw new ArgumentException($"A run of {count} symbols from {start} every {stride} does not fit {destination.Length} bytes.", nameof(destination));
        var j = DecodeUnchecked(encoded, table, ref Unsafe.Add(ref MemoryMarshal.GetReference(destination), start), stride, count, ref states, ref pos);
        for (; j < count; j++)
            destination[start + (j * stride)] = CheckedStep(ref states.At(j & (Interleave - 1)), table, encoded, ref pos, j);
    }

    /// <summary>Checks that a decoded stream was consumed exactly and ended in the encoder's initial states.</summary>
    /// <exception cref="EntropyStreamException">It was not.</exception>
    internal static void CheckEnd(ReadOnlySpan<byte> encoded, int pos, in RansStates states, int symbolCount)
    {
        if (pos != encoded.Length)
            throw new EntropyStreamException($"The entropy-coded stream has {encoded.Length - pos} bytes left after {symbolCount} symbols; it is corrupt or the symbol count is wrong.");
        if (states.X0 != L || states.X1 != L || states.X2 != L || states.X3 != L)
            throw new EntropyStreamException("The entropy-coded stream does not end in the encoder's initial states; it is corrupt, or the tables or symbol count do not match.");
    }

    /// <summary>
    /// Decodes groups of four symbols of one run while the input left guarantees every read, writing symbol j at
    /// <paramref name="output"/> + j · stride; returns the number of symbols decoded.
    /// </summary>
    /// <remarks>
    /// Renormalization is branch-free: after a step a state is in [2^8, 2^31) (it is at least
    /// 2^(23 − scaleBits) · frequency), and it needs (lzcnt(x) − 1) / 8 bytes (0, 1 or 2), the count of the checked
    /// loop's <c>while (x &lt; L)</c>, taken from a 4-byte big-endian peek. The only chain between the four states is
    /// then one add on the read position; a branch per state mispredicts every few symbols at 1.5-4 bits a symbol.
    /// </remarks>
    // A method of its own so that the four states, the table and both cursors stay in registers. Everything the
    // inner loop holds (four states, two tables, the scale, two cursors, the stride and the pass end) fits the
    // registers: the mask is a bzhi, frequency and cumulative share one table, the loop ends on an address; the four
    // steps are written out, since a helper taking the read cursor by reference would keep it in memory.
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static int DecodeUnchecked(ReadOnlySpan<byte> encoded, SymbolFrequencies table, ref byte output, int runStride, int runLength, ref RansStates states, ref int pos)
    {
        uint x0 = states.X0, x1 = states.X1, x2 = states.X2, x3 = states.X3;
        var scaleBits = table.ScaleBits;
        ref var packed = ref MemoryMarshal.GetReference(table.PackedFrequencies);
        // The slot table has exactly 2^scaleBits entries and slots are masked to that range, so lookups need no check.
        ref var slots = ref table.SlotToSymbol[0];
        ref var input = ref MemoryMarshal.GetReference(encoded);
        ref var inp = ref Unsafe.Add(ref input, pos);
        ref var outp = ref output;
        var stride = (nint)runStride;
        var remaining = runLength / Interleave;
        // Each pass runs as many groups as the input left guarantees, so highly compressed runs take several passes.
        while (true)
        {
            var groups = Math.Min(remaining, (encoded.Length - (int)Unsafe.ByteOffset(ref input, ref inp) - PeekSlack) / GroupInput);
            if (groups <= 0)
                break;
            remaining -= groups;
            ref var passEnd = ref Unsafe.Add(ref outp, groups * Interleave * stride);
            do
            {
                {
                    var slot = Slot(x0, scaleBits);
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x0 = ((fc >> 16) * (x0 >> scaleBits)) + slot - (fc & 0xFFFF);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x0) - 1) & ~7u;
                    x0 = (uint)(((((ulong)x0) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    outp = symbol;
                    outp = ref Unsafe.Add(ref outp, stride);
                }
                {
                    var slot = Slot(x1, scaleBits);
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x1 = ((fc >> 16) * (x1 >> scaleBits)) + slot - (fc & 0xFFFF);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x1) - 1) & ~7u;
                    x1 = (uint)(((((ulong)x1) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    outp = symbol;
                    outp = ref Unsafe.Add(ref outp, stride);
                }
                {
                    var slot = Slot(x2, scaleBits);
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x2 = ((fc >> 16) * (x2 >> scaleBits)) + slot - (fc & 0xFFFF);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x2) - 1) & ~7u;
                    x2 = (uint)(((((ulong)x2) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    outp = symbol;
                    outp = ref Unsafe.Add(ref outp, stride);
                }
                {
                    var slot = Slot(x3, scaleBits);
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x3 = ((fc >> 16) * (x3 >> scaleBits)) + slot - (fc & 0xFFFF);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x3) - 1) & ~7u;
                    x3 = (uint)(((((ulong)x3) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    outp = symbol;
                    outp = ref Unsafe.Add(ref outp, stride);
                }
            }
            while (!Unsafe.AreSame(ref outp, ref passEnd));
        }

        pos = (int)Unsafe.ByteOffset(ref input, ref inp);
        states = new RansStates(x0, x1, x2, x3);
        return ((runLength / Interleave) - remaining) * Interleave;
    }

    /// <summary>The low <paramref name="scaleBits"/> bits of a state: its slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Slot(uint x, int scaleBits) =>
        Bmi2.IsSupported ? Bmi2.ZeroHighBits(x, (uint)scaleBits) : x & ((1u << scaleBits) - 1);

    private static byte CheckedStep(ref uint x, SymbolFrequencies table, ReadOnlySpan<byte> encoded, ref int pos, int index)
    {
        var slot = x & ((uint)table.Total - 1);
        var symbol = table.SlotToSymbol[slot];
        x = (table.Frequencies[symbol] * (x >> table.ScaleBits)) + slot - table.Cumulative[symbol];
        while (x < L)
        {
            if (pos >= encoded.Length)
                throw new EntropyStreamException($"The entropy-coded stream is truncated: it ends at byte {encoded.Length} while decoding symbol {index} of a run.");
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

    /// <summary>The four interleaved states of a stream being decoded.</summary>
    internal struct RansStates(uint x0, uint x1, uint x2, uint x3)
    {
        public uint X0 = x0;
        public uint X1 = x1;
        public uint X2 = x2;
        public uint X3 = x3;

        /// <summary>State <paramref name="k"/> (0..3).</summary>
        [UnscopedRef]
        public ref uint At(int k)
        {
            switch (k)
            {
                case 0: return ref X0;
                case 1: return ref X1;
                case 2: return ref X2;
                default: return ref X3;
            }
        }
    }
}
