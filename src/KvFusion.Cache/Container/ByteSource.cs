using System.Buffers;
using System.IO.Pipelines;

namespace KvFusion.Cache.Container;

/// <summary>Sequential bytes from a stream or a pipe, with the position read so far (for error offsets).</summary>
internal abstract class ByteSource
{
    /// <summary>First size of a growing read: a frame's claimed length costs memory only as its bytes arrive.</summary>
    private const int InitialChunk = 64 * 1024;

    /// <summary>Bytes read so far.</summary>
    public long Position { get; private set; }

    /// <summary>Fills <paramref name="buffer"/> unless the source ends first; returns the bytes read.</summary>
    public async ValueTask<int> ReadAtMostAsync(Memory<byte> buffer, CancellationToken ct)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = await ReadSomeAsync(buffer[filled..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            filled += n;
            Position += n;
        }

        return filled;
    }

    /// <summary>
    /// Reads up to <paramref name="length"/> bytes (after <paramref name="prefix"/>, which counts towards them) into a
    /// pooled buffer that grows as bytes arrive; returns it and how many bytes it holds (fewer when the source ended).
    /// The caller returns the buffer to <see cref="ArrayPool{T}.Shared"/>.
    /// </summary>
    public async ValueTask<(byte[] Buffer, int Count)> ReadGrowingAsync(ReadOnlyMemory<byte> prefix, int length, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(prefix.Length, Math.Min(length, InitialChunk)));
        prefix.CopyTo(buffer);
        var filled = prefix.Length;
        try
        {
            while (filled < length)
            {
                if (filled == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, 2L * buffer.Length));
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var n = await ReadAtMostAsync(buffer.AsMemory(filled, Math.Min(buffer.Length, length) - filled), ct).ConfigureAwait(false);
                filled += n;
                if (filled < Math.Min(buffer.Length, length))
                {
                    break;
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        return (buffer, filled);
    }

    /// <summary>Reads at least one byte into <paramref name="buffer"/> (non-empty), or returns 0 at the end.</summary>
    protected abstract ValueTask<int> ReadSomeAsync(Memory<byte> buffer, CancellationToken ct);
}

/// <summary>A stream as a byte source.</summary>
internal sealed class StreamByteSource(Stream stream) : ByteSource
{
    protected override ValueTask<int> ReadSomeAsync(Memory<byte> buffer, CancellationToken ct) => stream.ReadAsync(buffer, ct);
}

/// <summary>A pipe as a byte source: copies out of its buffers and advances past what it copied.</summary>
internal sealed class PipeByteSource(PipeReader reader) : ByteSource
{
    protected override async ValueTask<int> ReadSomeAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException("The pipe read was canceled.");
            }

            var available = result.Buffer;
            if (!available.IsEmpty)
            {
                var n = (int)Math.Min(available.Length, buffer.Length);
                available.Slice(0, n).CopyTo(buffer.Span);
                reader.AdvanceTo(available.GetPosition(n));
                return n;
            }

            reader.AdvanceTo(available.End);
            if (result.IsCompleted)
            {
                return 0;
            }
        }
    }
}
