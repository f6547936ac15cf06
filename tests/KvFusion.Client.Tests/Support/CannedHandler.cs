using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace KvFusion.Client.Tests.Support;

/// <summary>
/// A transport fake for the protocol-level tests: answers every request with a canned response and keeps what was
/// sent. It is not a server: the round trips against the real one are in the server tests.
/// </summary>
internal sealed class CannedHandler(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
{
    public List<SentRequest> Requests { get; } = [];

    public SentRequest Last => Requests[^1];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? null : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        Requests.Add(new SentRequest(request.Method, request.RequestUri!, request.Headers.Authorization, request.Headers.Accept.ToString(), request.Content?.Headers.ContentType?.ToString(), body));
        var response = respond(request);
        response.RequestMessage = request;
        return response;
    }

    /// <summary>A client over a handler that always answers the same way.</summary>
    public static (KvFusionClient Client, CannedHandler Handler) Client(Func<HttpRequestMessage, HttpResponseMessage> respond, string? apiKey = null)
    {
        var handler = new CannedHandler(respond);
        var http = new HttpClient(handler) { BaseAddress = new Uri("http://kvfusion.test/") };
        return (new KvFusionClient(http, new KvFusionClientOptions { ApiKey = apiKey }), handler);
    }

    public static HttpResponseMessage Json(HttpStatusCode status, string json, string mediaType = "application/json") => new(status)
    {
        Content = new StringContent(json, Encoding.UTF8, mediaType),
    };

    public static HttpResponseMessage Problem(HttpStatusCode status, string json, TimeSpan? retryAfter = null)
    {
        var response = Json(status, json, "application/problem+json");
        if (retryAfter is { } delay)
        {
            response.Headers.RetryAfter = new RetryConditionHeaderValue(delay);
        }

        return response;
    }

    /// <summary>An event stream whose body arrives in the given pieces, one per read.</summary>
    public static HttpResponseMessage EventStream(params string[] pieces) => new(HttpStatusCode.OK)
    {
        Content = new StreamContent(new SegmentedStream(pieces.Select(Encoding.UTF8.GetBytes)))
        {
            Headers = { ContentType = new MediaTypeHeaderValue("text/event-stream") },
        },
    };

    public static HttpResponseMessage EventStreamBytes(IEnumerable<byte[]> pieces) => new(HttpStatusCode.OK)
    {
        Content = new StreamContent(new SegmentedStream(pieces))
        {
            Headers = { ContentType = new MediaTypeHeaderValue("text/event-stream") },
        },
    };
}

internal sealed record SentRequest(HttpMethod Method, Uri Uri, AuthenticationHeaderValue? Authorization, string Accept, string? ContentType, byte[]? Body)
{
    public string BodyText => Body is null ? "" : Encoding.UTF8.GetString(Body);
}

/// <summary>A read-only stream that hands out its bytes in fixed pieces, at most one piece per read.</summary>
internal sealed class SegmentedStream(IEnumerable<byte[]> pieces) : Stream
{
    private readonly Queue<byte[]> _pieces = new(pieces);
    private byte[] _current = [];
    private int _offset;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public int Reads { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        Reads++;
        while (_offset == _current.Length)
        {
            if (!_pieces.TryDequeue(out var next))
            {
                return 0;
            }

            _current = next;
            _offset = 0;
        }

        var n = Math.Min(buffer.Length, _current.Length - _offset);
        _current.AsSpan(_offset, n).CopyTo(buffer);
        _offset += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
