using System.Net;

namespace KvFusion.Client.Internal;

/// <summary>
/// A request body read from a caller's stream, from its position to its end, that leaves the stream open (a
/// <see cref="StreamContent"/> disposes it with the request).
/// </summary>
internal sealed class LeaveOpenStreamContent(Stream source, int bufferSize) : HttpContent
{
    /// <inheritdoc />
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        source.CopyToAsync(stream, bufferSize);

    /// <inheritdoc />
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        source.CopyToAsync(stream, bufferSize, cancellationToken);

    /// <inheritdoc />
    protected override bool TryComputeLength(out long length)
    {
        if (source.CanSeek)
        {
            length = Math.Max(0, source.Length - source.Position);
            return true;
        }

        length = 0;
        return false;
    }
}
