using System.Buffers.Binary;
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

        var x0 = ReadState(encoded, 0);
        var x1 = ReadState(encoded, 1);
        var x2 = ReadState(encoded, 2);
        var x3 = ReadState(encoded, 3);

        var scaleBits = table.ScaleBits;
        var mask = (uint)table.Total - 1;
        ref var packed = ref MemoryMarshal.GetReference(table.PackedFrequencies);
        // The slot table has exactly 2^scaleBits entries and slots are masked to that range, so lookups need no check.
        ref var slots = ref table.SlotToSymbol[0];
        ref var input = ref MemoryMarshal.GetReference(encoded);
        ref var output = ref MemoryMarshal.GetReference(destination);
        var pos = RansEncoder.HeaderLength;
        var end = encoded.Length;
        var n = destination.Length;
        var i = 0;

        // Fast path: a group of four symbols reads at most 8 bytes (a state here is at least
        // 2^(23 - scaleBits) * freq >= 2^8, so two bytes restore it to [L, 2^31)), so each pass runs as many groups as
        // the remaining input guarantees with no per-byte check; highly compressed data takes several passes.
        // Renormalization branches on purpose: a predicted branch lets the CPU run ahead of the read position all four
        // states share, where a branch-free form measured slower. Input and output are walked by reference rather
        // than base plus index, which keeps the loop's variables in registers.
        ref var inp = ref Unsafe.Add(ref input, pos);
        ref var outp = ref output;
        for (var groups = Math.Min(n / Interleave, (end - pos) / (2 * Interleave)); groups > 0;
             groups = Math.Min((n - i) / Interleave, (end - pos) / (2 * Interleave)))
        {
            ref var passEnd = ref Unsafe.Add(ref outp, groups * Interleave);
            while (Unsafe.IsAddressLessThan(ref outp, ref passEnd))
            {
                {
                    var slot = x0 & mask;
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x0 = ((fc >> 16) * (x0 >> scaleBits)) + slot - (fc & 0xFFFF);
                    if (x0 < L)
                    {
                        x0 = (x0 << 8) | inp;
                        inp = ref Unsafe.Add(ref inp, 1);
                        if (x0 < L)
                        {
                            x0 = (x0 << 8) | inp;
                            inp = ref Unsafe.Add(ref inp, 1);
                        }
                    }
                    Unsafe.Add(ref outp, 0) = symbol;
                }
                {
                    var slot = x1 & mask;
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x1 = ((fc >> 16) * (x1 >> scaleBits)) + slot - (fc & 0xFFFF);
                    if (x1 < L)
                    {
                        x1 = (x1 << 8) | inp;
                        inp = ref Unsafe.Add(ref inp, 1);
                        if (x1 < L)
                        {
                            x1 = (x1 << 8) | inp;
                            inp = ref Unsafe.Add(ref inp, 1);
                        }
                    }
                    Unsafe.Add(ref outp, 1) = symbol;
                }
                {
                    var slot = x2 & mask;
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x2 = ((fc >> 16) * (x2 >> scaleBits)) + slot - (fc & 0xFFFF);
                    if (x2 < L)
                    {
                        x2 = (x2 << 8) | inp;
                        inp = ref Unsafe.Add(ref inp, 1);
                        if (x2 < L)
                        {
                            x2 = (x2 << 8) | inp;
                            inp = ref Unsafe.Add(ref inp, 1);
                        }
                    }
                    Unsafe.Add(ref outp, 2) = symbol;
                }
                {
                    var slot = x3 & mask;
                    var symbol = Unsafe.Add(ref slots, (nint)slot);
                    var fc = Unsafe.Add(ref packed, symbol);
                    x3 = ((fc >> 16) * (x3 >> scaleBits)) + slot - (fc & 0xFFFF);
                    if (x3 < L)
                    {
                        x3 = (x3 << 8) | inp;
                        inp = ref Unsafe.Add(ref inp, 1);
                        if (x3 < L)
                        {
                            x3 = (x3 << 8) | inp;
                            inp = ref Unsafe.Add(ref inp, 1);
                        }
                    }
                    Unsafe.Add(ref outp, 3) = symbol;
                }
                outp = ref Unsafe.Add(ref outp, Interleave);
            }
            pos = (int)Unsafe.ByteOffset(ref input, ref inp);
            i = (int)Unsafe.ByteOffset(ref output, ref outp);
        }

        // Checked path for the rest of the stream: every byte read is tested against the end.
        Span<uint> states = [x0, x1, x2, x3];
        for (; i < n; i++)
        {
            ref var x = ref states[i & (Interleave - 1)];
            var slot = x & mask;
            var symbol = Unsafe.Add(ref slots, (nint)slot);
            var fc = Unsafe.Add(ref packed, symbol);
            x = ((fc >> 16) * (x >> scaleBits)) + slot - (fc & 0xFFFF);
            while (x < L)
            {
                if (pos >= end)
                    throw new EntropyStreamException($"The entropy-coded stream is truncated: it ends at byte {end} while decoding symbol {i} of {n}.");
                x = (x << 8) | Unsafe.Add(ref input, pos++);
            }
            Unsafe.Add(ref output, i) = symbol;
        }

        if (pos != end)
            throw new EntropyStreamException($"The entropy-coded stream has {end - pos} bytes left after {n} symbols; it is corrupt or the symbol count is wrong.");
        if (states[0] != L || states[1] != L || states[2] != L || states[3] != L)
            throw new EntropyStreamException("The entropy-coded stream does not end in the encoder's initial states; it is corrupt, or the table or symbol count does not match.");
    }

    private static uint ReadState(ReadOnlySpan<byte> encoded, int index)
    {
        var x = BinaryPrimitives.ReadUInt32LittleEndian(encoded.Slice(index * sizeof(uint)));
        if (x < L || x >= L << 8)
            throw new EntropyStreamException($"State {index} of the entropy-coded stream is 0x{x:X8}, outside [2^23, 2^31).");
        return x;
    }
}
