using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
    private const int Interleave = RansEncoder.Interleave;
    private const uint L = RansEncoder.StateLowerBound;

    // The fast path's 4-byte peek may read this many bytes past the 2 a state can consume.
    private const int PeekSlack = sizeof(uint) - 2;

    /// <summary>
    /// Decodes exactly <paramref name="destination"/>.Length symbols from <paramref name="encoded"/>, which must be
    /// exactly the stream <see cref="RansEncoder.Encode"/> wrote (no trailing bytes).
    /// </summary>
    /// <exception cref="EntropyStreamException">The stream is truncated, has trailing bytes, carries an invalid
    /// state, or does not end in the encoder's initial states (corruption or a mismatched table or count).</exception>
    // Called once per stream, so tiering would leave the hot loop in on-stack-replacement code; compile it fully now.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(ReadOnlySpan<byte> encoded, SymbolFrequencies table, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (encoded.Length < RansEncoder.HeaderLength)
            throw new EntropyStreamException($"The entropy-coded stream is truncated: {encoded.Length} bytes, the states alone need {RansEncoder.HeaderLength}.");

        Span<uint> states = [ReadState(encoded, 0), ReadState(encoded, 1), ReadState(encoded, 2), ReadState(encoded, 3)];
        var scaleBits = table.ScaleBits;
        var mask = (uint)table.Total - 1;
        ref var freqs = ref MemoryMarshal.GetReference(table.Frequencies);
        ref var cums = ref MemoryMarshal.GetReference(table.Cumulative);
        // The slot table has exactly 2^scaleBits entries and slots are masked to that range, so lookups need no check.
        ref var slots = ref table.SlotToSymbol[0];
        ref var input = ref MemoryMarshal.GetReference(encoded);
        ref var output = ref MemoryMarshal.GetReference(destination);
        var pos = RansEncoder.HeaderLength;
        var end = encoded.Length;
        var n = destination.Length;
        var i = DecodeUnchecked(encoded, table, destination, states, ref pos);

        // Checked path for the rest of the stream: every byte read is tested against the end.
        for (; i < n; i++)
        {
            ref var x = ref states[i & (Interleave - 1)];
            var slot = x & mask;
            nuint symbol = Unsafe.Add(ref slots, (nint)slot);
            x = (Unsafe.Add(ref freqs, symbol) * (x >> scaleBits)) + slot - Unsafe.Add(ref cums, symbol);
            while (x < L)
            {
                if (pos >= end)
                    throw new EntropyStreamException($"The entropy-coded stream is truncated: it ends at byte {end} while decoding symbol {i} of {n}.");
                x = (x << 8) | Unsafe.Add(ref input, pos++);
            }
            Unsafe.Add(ref output, i) = (byte)symbol;
        }

        if (pos != end)
            throw new EntropyStreamException($"The entropy-coded stream has {end - pos} bytes left after {n} symbols; it is corrupt or the symbol count is wrong.");
        if (states[0] != L || states[1] != L || states[2] != L || states[3] != L)
            throw new EntropyStreamException("The entropy-coded stream does not end in the encoder's initial states; it is corrupt, or the table or symbol count does not match.");
    }

    /// <summary>
    /// Decodes groups of four symbols while the input left guarantees every read, advancing <paramref name="states"/>
    /// and <paramref name="pos"/>; returns the number of symbols decoded.
    /// </summary>
    // A method of its own so that the four states, the tables and both cursors all stay in registers.
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static int DecodeUnchecked(ReadOnlySpan<byte> encoded, SymbolFrequencies table, Span<byte> destination, Span<uint> states, ref int pos)
    {
        uint x0 = states[0], x1 = states[1], x2 = states[2], x3 = states[3];
        var scaleBits = table.ScaleBits;
        var mask = (uint)table.Total - 1;
        ref var freqs = ref MemoryMarshal.GetReference(table.Frequencies);
        ref var cums = ref MemoryMarshal.GetReference(table.Cumulative);
        ref var slots = ref table.SlotToSymbol[0];
        ref var input = ref MemoryMarshal.GetReference(encoded);
        ref var output = ref MemoryMarshal.GetReference(destination);
        var end = encoded.Length;
        var n = destination.Length;
        var i = 0;

        // Fast path: a group of four symbols reads at most 8 bytes (a state here is at least
        // 2^(23 - scaleBits) * freq >= 2^8, so two bytes restore it to [L, 2^31)), and the last state's 4-byte peek
        // reaches 2 bytes further, so each pass runs as many groups as the remaining input guarantees with no per-byte
        // check; highly compressed data takes several passes.
        // Renormalization is branch-free: a state x in [2^8, 2^31) needs (lzcnt(x) - 1) / 8 bytes (0, 1 or 2), the
        // same count as the checked loop's "while (x < L)", and takes them from a 4-byte big-endian peek at the read
        // position. The only chain between the four states is then one add on the read position, where a branch per
        // state mispredicts every few symbols on KV symbol streams (1.5-4 bits each).
        // Frequency and cumulative frequency come from two independent loads rather than one word split by shifts,
        // fewer instructions in a loop whose limit is instruction throughput. Input and output are walked by
        // reference rather than base plus index, which keeps the loop's variables in registers.
        ref var inp = ref Unsafe.Add(ref input, pos);
        ref var outp = ref output;
        for (var groups = Math.Min(n / Interleave, (end - pos - PeekSlack) / (2 * Interleave)); groups > 0;
             groups = Math.Min((n - i) / Interleave, (end - pos - PeekSlack) / (2 * Interleave)))
        {
            ref var passEnd = ref Unsafe.Add(ref outp, groups * Interleave);
            while (Unsafe.IsAddressLessThan(ref outp, ref passEnd))
            {
                {
                    var slot = x0 & mask;
                    nuint symbol = Unsafe.Add(ref slots, (nint)slot);
                    x0 = (Unsafe.Add(ref freqs, symbol) * (x0 >> scaleBits)) + slot - Unsafe.Add(ref cums, symbol);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x0) - 1) & ~7u;
                    x0 = (uint)(((((ulong)x0) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    Unsafe.Add(ref outp, 0) = (byte)symbol;
                }
                {
                    var slot = x1 & mask;
                    nuint symbol = Unsafe.Add(ref slots, (nint)slot);
                    x1 = (Unsafe.Add(ref freqs, symbol) * (x1 >> scaleBits)) + slot - Unsafe.Add(ref cums, symbol);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x1) - 1) & ~7u;
                    x1 = (uint)(((((ulong)x1) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    Unsafe.Add(ref outp, 1) = (byte)symbol;
                }
                {
                    var slot = x2 & mask;
                    nuint symbol = Unsafe.Add(ref slots, (nint)slot);
                    x2 = (Unsafe.Add(ref freqs, symbol) * (x2 >> scaleBits)) + slot - Unsafe.Add(ref cums, symbol);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x2) - 1) & ~7u;
                    x2 = (uint)(((((ulong)x2) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    Unsafe.Add(ref outp, 2) = (byte)symbol;
                }
                {
                    var slot = x3 & mask;
                    nuint symbol = Unsafe.Add(ref slots, (nint)slot);
                    x3 = (Unsafe.Add(ref freqs, symbol) * (x3 >> scaleBits)) + slot - Unsafe.Add(ref cums, symbol);
                    var shift = ((uint)BitOperations.LeadingZeroCount(x3) - 1) & ~7u;
                    x3 = (uint)(((((ulong)x3) << 32) | BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref inp))) << (int)shift >> 32);
                    inp = ref Unsafe.Add(ref inp, (nuint)(shift >> 3));
                    Unsafe.Add(ref outp, 3) = (byte)symbol;
                }
                outp = ref Unsafe.Add(ref outp, Interleave);
            }
            pos = (int)Unsafe.ByteOffset(ref input, ref inp);
            i = (int)Unsafe.ByteOffset(ref output, ref outp);
        }

        states[0] = x0;
        states[1] = x1;
        states[2] = x2;
        states[3] = x3;
        return i;
    }

    private static uint ReadState(ReadOnlySpan<byte> encoded, int index)
    {
        var x = BinaryPrimitives.ReadUInt32LittleEndian(encoded.Slice(index * sizeof(uint)));
        if (x < L || x >= L << 8)
            throw new EntropyStreamException($"State {index} of the entropy-coded stream is 0x{x:X8}, outside [2^23, 2^31).");
        return x;
    }
}
