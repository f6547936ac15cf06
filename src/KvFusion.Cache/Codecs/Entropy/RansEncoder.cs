using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace KvFusion.Cache.Codecs.Entropy;

/// <summary>
/// Interleaved rANS encoder over byte symbols (the entropy stage of the CacheGen-style codec).
/// </summary>
/// <remarks>
/// <para>Design: <see cref="Interleave"/> = 4 independent 32-bit states, symbol i coded by state i mod 4, so the
/// decoder's four dependency chains overlap in the pipeline. Renormalization is byte-wise with the lower bound
/// L = 2^23: every state stays in [2^23, 2^31), a symbol moves at most 2 bytes, and all arithmetic fits in
/// <see cref="uint"/>. All states share one byte stream; the decoder reads it forward, so the encoder walks the
/// symbols backward and writes the stream from the end of a buffer, then moves it to the front. Division by the
/// frequency is a multiply by a precomputed reciprocal (exact for states below 2^31).</para>
/// <para>Stream layout: the four final states (state 0 first, 4 bytes little-endian each), then the renormalization
/// bytes. The states start at L, so the decoder can check that it ends on L in all four and consumed every byte,
/// which catches nearly all corruption. The symbol count is not stored; the container keeps it.</para>
/// </remarks>
internal static class RansEncoder
{
    /// <summary>The number of interleaved states.</summary>
    public const int Interleave = 4;

    /// <summary>The renormalization lower bound L of every state.</summary>
    public const uint StateLowerBound = 1u << 23;

    /// <summary>The bytes taken by the flushed states at the start of every stream.</summary>
    public const int HeaderLength = Interleave * sizeof(uint);

    /// <summary>The largest stream <see cref="Encode"/> can produce for <paramref name="symbolCount"/> symbols.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is negative or the bound exceeds <see cref="int.MaxValue"/>.</exception>
    public static int GetMaxEncodedLength(int symbolCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(symbolCount);
        // Each symbol shifts out at most 2 bytes: a state below 2^31 is brought under freq << (31 - scaleBits) >= 2^16.
        var bound = HeaderLength + (2L * symbolCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bound, int.MaxValue, nameof(symbolCount));
        return (int)bound;
    }

    /// <summary>Encodes <paramref name="symbols"/> with <paramref name="table"/> into <paramref name="destination"/>.</summary>
    /// <returns>The number of bytes written at the start of <paramref name="destination"/>.</returns>
    /// <exception cref="ArgumentException">A symbol has frequency 0 in the table, or the destination is too small
    /// (a destination of <see cref="GetMaxEncodedLength"/> bytes always suffices). The destination's contents are
    /// then unspecified.</exception>
    public static int Encode(ReadOnlySpan<byte> symbols, SymbolFrequencies table, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(table);
        var bound = GetMaxEncodedLength(symbols.Length);
        if (destination.Length >= bound)
            return EncodeUnchecked(symbols, table, destination);

        // The hot loop writes without checks, which needs the worst case in hand; a smaller destination gets the
        // stream through a pooled buffer.
        var rented = ArrayPool<byte>.Shared.Rent(bound);
        try
        {
            var written = EncodeUnchecked(symbols, table, rented.AsSpan(0, bound));
            if (written > destination.Length)
                throw new ArgumentException($"The destination of {destination.Length} bytes is too small for the encoded stream of {written} bytes; GetMaxEncodedLength({symbols.Length}) bytes always suffice.", nameof(destination));
            rented.AsSpan(0, written).CopyTo(destination);
            return written;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // destination.Length >= GetMaxEncodedLength(symbols.Length), so no write can fall below index 0: before each
    // symbol at least HeaderLength + 2 * (symbols left) bytes lie below pos, which also covers the speculative
    // store one byte below a single shed byte (later bytes or the header overwrite it).
    // Called once per stream, so tiering would leave the hot loop in on-stack-replacement code; compile it fully now.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int EncodeUnchecked(ReadOnlySpan<byte> symbols, SymbolFrequencies table, Span<byte> destination)
    {
        Span<EncodeSymbol> infos = stackalloc EncodeSymbol[SymbolFrequencies.AlphabetSize];
        var scaleBits = table.ScaleBits;
        var freqs = table.Frequencies;
        var cums = table.Cumulative;
        for (var s = 0; s < infos.Length; s++)
            infos[s] = EncodeSymbol.Create(freqs[s], cums[s], scaleBits);

        ref var info = ref MemoryMarshal.GetReference(infos);
        ref var src = ref MemoryMarshal.GetReference(symbols);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        nint pos = destination.Length;
        uint x0 = StateLowerBound, x1 = StateLowerBound, x2 = StateLowerBound, x3 = StateLowerBound;

        // The last n mod 4 symbols go first (walking backward), each into state i mod 4, all below state 3.
        var n = symbols.Length;
        var full = n & ~(Interleave - 1);
        for (var i = n - 1; i >= full; i--)
        {
            var symbol = symbols[i];
            ref readonly var e = ref infos[symbol];
            if (e.Limit == 0)
                throw ZeroFrequency(symbol, i, nameof(symbols));
            var x = (i & (Interleave - 1)) switch { 0 => x0, 1 => x1, _ => x2 };
            while (x >= e.Limit)
            {
                Unsafe.Add(ref dst, --pos) = (byte)x;
                x >>= 8;
            }
            x += e.Bias + ((uint)(((ulong)x * e.Reciprocal) >> 32) >> e.ReciprocalShift) * e.ComplementFrequency;
            switch (i & (Interleave - 1))
            {
                case 0: x0 = x; break;
                case 1: x1 = x; break;
                default: x2 = x; break;
            }
        }

        for (var i = full - Interleave; i >= 0; i -= Interleave)
        {
            {
                var symbol = Unsafe.Add(ref src, i + 3);
                ref readonly var e = ref Unsafe.Add(ref info, symbol);
                if (e.Limit == 0)
                    throw ZeroFrequency(symbol, i + 3, nameof(symbols));
                // Branch-free renormalization: both candidate bytes are stored, the shed count moves pos.
                var shed3 = Unsafe.BitCast<bool, byte>(x3 >= e.Limit) + Unsafe.BitCast<bool, byte>((x3 >> 8) >= e.Limit);
                Unsafe.Add(ref dst, pos - 1) = (byte)x3;
                Unsafe.Add(ref dst, pos - 2) = (byte)(x3 >> 8);
                pos -= shed3;
                x3 >>= shed3 << 3;
                x3 += e.Bias + ((uint)(((ulong)x3 * e.Reciprocal) >> 32) >> e.ReciprocalShift) * e.ComplementFrequency;
            }
            {
                var symbol = Unsafe.Add(ref src, i + 2);
                ref readonly var e = ref Unsafe.Add(ref info, symbol);
                if (e.Limit == 0)
                    throw ZeroFrequency(symbol, i + 2, nameof(symbols));
                // Branch-free renormalization: both candidate bytes are stored, the shed count moves pos.
                var shed2 = Unsafe.BitCast<bool, byte>(x2 >= e.Limit) + Unsafe.BitCast<bool, byte>((x2 >> 8) >= e.Limit);
                Unsafe.Add(ref dst, pos - 1) = (byte)x2;
                Unsafe.Add(ref dst, pos - 2) = (byte)(x2 >> 8);
                pos -= shed2;
                x2 >>= shed2 << 3;
                x2 += e.Bias + ((uint)(((ulong)x2 * e.Reciprocal) >> 32) >> e.ReciprocalShift) * e.ComplementFrequency;
            }
            {
                var symbol = Unsafe.Add(ref src, i + 1);
                ref readonly var e = ref Unsafe.Add(ref info, symbol);
                if (e.Limit == 0)
                    throw ZeroFrequency(symbol, i + 1, nameof(symbols));
                // Branch-free renormalization: both candidate bytes are stored, the shed count moves pos.
                var shed1 = Unsafe.BitCast<bool, byte>(x1 >= e.Limit) + Unsafe.BitCast<bool, byte>((x1 >> 8) >= e.Limit);
                Unsafe.Add(ref dst, pos - 1) = (byte)x1;
                Unsafe.Add(ref dst, pos - 2) = (byte)(x1 >> 8);
                pos -= shed1;
                x1 >>= shed1 << 3;
                x1 += e.Bias + ((uint)(((ulong)x1 * e.Reciprocal) >> 32) >> e.ReciprocalShift) * e.ComplementFrequency;
            }
            {
                var symbol = Unsafe.Add(ref src, i + 0);
                ref readonly var e = ref Unsafe.Add(ref info, symbol);
                if (e.Limit == 0)
                    throw ZeroFrequency(symbol, i + 0, nameof(symbols));
                // Branch-free renormalization: both candidate bytes are stored, the shed count moves pos.
                var shed0 = Unsafe.BitCast<bool, byte>(x0 >= e.Limit) + Unsafe.BitCast<bool, byte>((x0 >> 8) >= e.Limit);
                Unsafe.Add(ref dst, pos - 1) = (byte)x0;
                Unsafe.Add(ref dst, pos - 2) = (byte)(x0 >> 8);
                pos -= shed0;
                x0 >>= shed0 << 3;
                x0 += e.Bias + ((uint)(((ulong)x0 * e.Reciprocal) >> 32) >> e.ReciprocalShift) * e.ComplementFrequency;
            }
        }

        pos -= HeaderLength;
        var header = destination.Slice((int)pos, HeaderLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header, x0);
        BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(4), x1);
        BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(8), x2);
        BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(12), x3);

        var written = destination.Length - (int)pos;
        destination.Slice((int)pos).CopyTo(destination);
        return written;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ArgumentException ZeroFrequency(byte symbol, int index, string paramName) =>
        new($"Symbol {symbol} at index {index} has frequency 0 in the table and cannot be encoded.", paramName);

    /// <summary>Per-symbol encoder constants (the reciprocal scheme of ryg_rans' rans_byte.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal readonly struct EncodeSymbol
    {
        /// <summary>States at or above this shed a byte first; 0 marks a symbol that cannot be encoded.</summary>
        public readonly uint Limit;
        public readonly uint Reciprocal;
        public readonly uint Bias;
        public readonly uint ComplementFrequency;
        public readonly int ReciprocalShift;

        private EncodeSymbol(uint limit, uint reciprocal, uint bias, uint complementFrequency, int reciprocalShift)
        {
            Limit = limit;
            Reciprocal = reciprocal;
            Bias = bias;
            ComplementFrequency = complementFrequency;
            ReciprocalShift = reciprocalShift;
        }

        public static EncodeSymbol Create(uint freq, uint cum, int scaleBits)
        {
            if (freq == 0)
                return default;
            var total = 1u << scaleBits;
            // A state at or above freq << (31 - scaleBits) would leave [L, 2^31) once coded.
            var limit = freq << (31 - scaleBits);
            if (freq == 1)
            {
                // q = x - 1 from the all-ones reciprocal; the bias folds the missing (total - 1) back in.
                return new EncodeSymbol(limit, uint.MaxValue, cum + total - 1, total - 1, 0);
            }
            var shift = 0;
            while (freq > (1u << shift))
                shift++;
            var reciprocal = (uint)(((1ul << (shift + 31)) + freq - 1) / freq);
            return new EncodeSymbol(limit, reciprocal, cum, total - freq, shift - 1);
        }
    }
}
