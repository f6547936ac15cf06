using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using KvFusion.Client.Contracts;
using KvFusion.Client.Internal;

namespace KvFusion.Client;

/// <summary>
/// Typed client of the KvFusion cache service: chunks and their KV containers, documents, OpenAI-compatible
/// completions with fusion, models and health. Thread-safe; one instance serves any number of concurrent calls.
/// </summary>
/// <remarks>
/// Every call throws <see cref="KvFusionApiException"/> when the service answers with an error status (or an
/// <c>error</c> event in a stream), <see cref="HttpRequestException"/> when it cannot be reached, and
/// <see cref="ArgumentException"/> for an id that is not 64 hex digits.
/// </remarks>
public sealed class KvFusionClient : IDisposable
{
    private const string OctetStream = "application/octet-stream";
    private const string EventStream = "text/event-stream";
    private const int CopyBufferSize = 81920;

    private readonly HttpClient _http;
    private readonly bool _ownsHttpClient;
    private readonly Uri _baseAddress;
    private readonly AuthenticationHeaderValue? _authorization;
    private volatile bool _disposed;

    /// <summary>Creates a client over an <see cref="HttpClient"/> the caller owns (it is not disposed with this one).</summary>
    /// <param name="httpClient">
    /// The client to send with; its <see cref="HttpClient.BaseAddress"/> is the service's address (or, when it has none,
    /// <see cref="KvFusionClientOptions.BaseAddress"/>). Its default headers and timeout are left as they are.
    /// </param>
    /// <param name="options">The API key (and the address when the client has none); its timeout is not used.</param>
    /// <exception cref="ArgumentException">Neither gives an absolute http(s) address, or an option is invalid.</exception>
    public KvFusionClient(HttpClient httpClient, KvFusionClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        options?.Validate(requireBaseAddress: false, nameof(options));
        var address = httpClient.BaseAddress ?? options?.BaseAddress
            ?? throw new ArgumentException("The HttpClient has no BaseAddress and KvFusionClientOptions.BaseAddress is not set: the client needs the service's address.", nameof(httpClient));
        if (httpClient.BaseAddress is not null)
        {
            KvFusionClientOptions.ValidateBaseAddress(address, "HttpClient.BaseAddress", nameof(httpClient));
        }

        _http = httpClient;
        _ownsHttpClient = false;
        _baseAddress = KvFusionClientOptions.WithTrailingSlash(address);
        _authorization = options?.ApiKey is { } key ? new AuthenticationHeaderValue("Bearer", key) : null;
    }

    /// <summary>Creates a client with its own <see cref="HttpClient"/>, disposed with it.</summary>
    /// <param name="options">The service's address (required), the API key and the timeout.</param>
    /// <exception cref="ArgumentException">An option is missing or invalid.</exception>
    public KvFusionClient(KvFusionClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(requireBaseAddress: true, nameof(options));
        _baseAddress = KvFusionClientOptions.WithTrailingSlash(options.BaseAddress!);
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }, disposeHandler: true)
        {
            BaseAddress = _baseAddress,
            Timeout = options.Timeout,
        };
        _ownsHttpClient = true;
        _authorization = options.ApiKey is { } key ? new AuthenticationHeaderValue("Bearer", key) : null;
    }

    /// <summary>The service's address that request paths are resolved against (ends with a slash).</summary>
    public Uri BaseAddress => _baseAddress;

    // ---------------------------------------------------------------- chunks

    /// <summary>Precomputes and stores chunks (<c>POST /v1/chunks</c>); already stored ones are returned as they are.</summary>
    /// <param name="request">The chunks, each text or token ids, and an optional pin.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored chunks, in request order.</returns>
    public Task<CreateChunksResponse> CreateChunksAsync(CreateChunksRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return SendJsonAsync(HttpMethod.Post, "v1/chunks", request, KvFusionJsonContext.Default.CreateChunksRequest, KvFusionJsonContext.Default.CreateChunksResponse, cancellationToken);
    }

    /// <summary>Precomputes and stores one chunk of text (<c>POST /v1/chunks</c> with one chunk).</summary>
    /// <param name="text">The chunk's text, tokenized by the service's model.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored chunk (<see cref="ChunkInfo.Created"/> false when it was already stored).</returns>
    public Task<ChunkInfo> CreateChunkAsync(string text, CancellationToken cancellationToken = default) => CreateChunkAsync(text, null, cancellationToken);

    /// <summary>Precomputes and stores one chunk of text with one of the served models (an agent).</summary>
    /// <param name="text">The chunk's text, tokenized by that model.</param>
    /// <param name="model">The served model (agent) that computes and stores it; null for the default model.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored chunk (<see cref="ChunkInfo.Created"/> false when it was already stored).</returns>
    public async Task<ChunkInfo> CreateChunkAsync(string text, string? model, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var response = await CreateChunksAsync(new CreateChunksRequest { Chunks = [new ChunkSource { Text = text }], Model = model }, cancellationToken).ConfigureAwait(false);
        return response.Chunks.Count == 1
            ? response.Chunks[0]
            : throw new InvalidDataException($"The service answered {response.Chunks.Count} chunks for a request of one.");
    }

    /// <summary>What the service holds for a chunk (<c>GET /v1/chunks/{id}</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="tenant">Another tenant's chunk (admin keys only); null for the key's own tenant.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The chunk.</returns>
    /// <exception cref="KvFusionApiException">404 when the chunk is not stored.</exception>
    public Task<ChunkInfo> GetChunkAsync(string id, string? tenant = null, CancellationToken cancellationToken = default) =>
        GetChunkAsync(id, tenant, null, cancellationToken);

    /// <summary>What the service holds for a chunk of one of the served models (<c>GET /v1/chunks/{id}?model=</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="tenant">Another tenant's chunk (admin keys only); null for the key's own tenant.</param>
    /// <param name="model">The served model (agent) whose chunk it is; null for the default model.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The chunk.</returns>
    /// <exception cref="KvFusionApiException">404 when the chunk is not stored, or the model is not served.</exception>
    public Task<ChunkInfo> GetChunkAsync(string id, string? tenant, string? model, CancellationToken cancellationToken = default)
    {
        var path = ChunkPath(id, null, tenant, model);
        return SendJsonAsync(HttpMethod.Get, path, KvFusionJsonContext.Default.ChunkInfo, cancellationToken);
    }

    /// <summary>Streams a chunk's KV container into a stream (<c>GET /v1/chunks/{id}/kv</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="destination">Where the container's bytes are written (left open, not rewound).</param>
    /// <param name="codec">The codec to encode it with (<c>raw</c>, <c>lz4</c>, <c>fp8</c>, <c>cachegen:1</c>..<c>3</c>); null for the stored one.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Bytes written to <paramref name="destination"/>.</returns>
    public async Task<long> DownloadChunkKvAsync(string id, Stream destination, string? codec = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (!destination.CanWrite)
        {
            throw new ArgumentException("The destination stream is not writable.", nameof(destination));
        }

        var path = KvPath(id, codec);
        using var response = await SendAsync(HttpMethod.Get, path, null, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        var source = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            return await CopyAsync(source, destination, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A chunk's KV container as bytes (<c>GET /v1/chunks/{id}/kv</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="codec">The codec to encode it with (<c>raw</c>, <c>lz4</c>, <c>fp8</c>, <c>cachegen:1</c>..<c>3</c>); null for the stored one.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The container.</returns>
    public async Task<byte[]> GetChunkKvAsync(string id, string? codec = null, CancellationToken cancellationToken = default)
    {
        var path = KvPath(id, codec);
        using var response = await SendAsync(HttpMethod.Get, path, null, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stores a KV container under a chunk id (<c>PUT /v1/chunks/{id}/kv</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits (the service checks it against the container).</param>
    /// <param name="container">The container's bytes, read from the current position to the end (left open).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored chunk (<see cref="ChunkInfo.Created"/> false when that exact chunk was already stored).</returns>
    public Task<ChunkInfo> UploadChunkKvAsync(string id, Stream container, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(container);
        if (!container.CanRead)
        {
            throw new ArgumentException("The container stream is not readable.", nameof(container));
        }

        var path = KvPath(id, null);
        return UploadAsync(path, new LeaveOpenStreamContent(container, CopyBufferSize), cancellationToken);
    }

    /// <summary>Stores a KV container under a chunk id (<c>PUT /v1/chunks/{id}/kv</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits (the service checks it against the container).</param>
    /// <param name="container">The container's bytes.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored chunk (<see cref="ChunkInfo.Created"/> false when that exact chunk was already stored).</returns>
    public Task<ChunkInfo> UploadChunkKvAsync(string id, ReadOnlyMemory<byte> container, CancellationToken cancellationToken = default)
    {
        var path = KvPath(id, null);
        return UploadAsync(path, new ReadOnlyMemoryContent(container), cancellationToken);
    }

    /// <summary>Deletes a chunk from every tier (<c>DELETE /v1/chunks/{id}</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="tenant">Another tenant's chunk (admin keys only); null for the key's own tenant.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when it was deleted, false when it was not stored (404).</returns>
    public Task<bool> DeleteChunkAsync(string id, string? tenant = null, CancellationToken cancellationToken = default)
    {
        var path = ChunkPath(id, null, tenant);
        return SendExpectingNoContentAsync(HttpMethod.Delete, path, cancellationToken);
    }

    /// <summary>Pins a chunk in host memory, never evicted, for a while (<c>POST /v1/chunks/{id}/pin</c>).</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="ttl">How long it stays pinned: positive, sent in whole seconds (rounded up).</param>
    /// <param name="tenant">Another tenant's chunk (admin keys only); null for the key's own tenant.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The chunk, with <see cref="ChunkInfo.PinnedUntil"/>.</returns>
    public Task<ChunkInfo> PinChunkAsync(string id, TimeSpan ttl, string? tenant = null, CancellationToken cancellationToken = default)
    {
        if (ttl <= TimeSpan.Zero || Math.Ceiling(ttl.TotalSeconds) > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "A pin's time to live must be positive and at most int.MaxValue seconds.");
        }

        var path = ChunkPath(id, "/pin", tenant);
        var body = new PinChunkRequest { TtlSeconds = (int)Math.Ceiling(ttl.TotalSeconds) };
        return SendJsonAsync(HttpMethod.Post, path, body, KvFusionJsonContext.Default.PinChunkRequest, KvFusionJsonContext.Default.ChunkInfo, cancellationToken);
    }

    /// <summary>Ends a chunk's pin (<c>DELETE /v1/chunks/{id}/pin</c>); the chunk stays stored.</summary>
    /// <param name="id">The chunk id: 64 hex digits.</param>
    /// <param name="tenant">Another tenant's chunk (admin keys only); null for the key's own tenant.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when the service released the pin, false when the chunk is not pinned (or not stored): 404.</returns>
    public Task<bool> UnpinChunkAsync(string id, string? tenant = null, CancellationToken cancellationToken = default)
    {
        var path = ChunkPath(id, "/pin", tenant);
        return SendExpectingNoContentAsync(HttpMethod.Delete, path, cancellationToken);
    }

    // ---------------------------------------------------------------- documents

    /// <summary>Chunks a document and precomputes its chunks (<c>POST /v1/documents</c>).</summary>
    /// <param name="request">The document; its <see cref="CreateDocumentRequest.Stream"/> is set by this method.</param>
    /// <param name="progress">
    /// When given, the request is streamed (<c>"stream": true</c>) and each <c>progress</c> event is reported to it as it
    /// arrives; null waits for the whole document.
    /// </param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The stored document and its chunks.</returns>
    public Task<DocumentInfo> CreateDocumentAsync(CreateDocumentRequest request, IProgress<DocumentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return progress is null
            ? SendJsonAsync(HttpMethod.Post, "v1/documents", request with { Stream = false }, KvFusionJsonContext.Default.CreateDocumentRequest, KvFusionJsonContext.Default.DocumentInfo, cancellationToken)
            : CreateDocumentStreamedAsync(request with { Stream = true }, progress, cancellationToken);
    }

    /// <summary>A stored document (<c>GET /v1/documents/{id}</c>).</summary>
    /// <param name="id">The document id: 64 hex digits.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The document and its chunks.</returns>
    /// <exception cref="KvFusionApiException">404 when the document is not stored.</exception>
    public Task<DocumentInfo> GetDocumentAsync(string id, CancellationToken cancellationToken = default) => GetDocumentAsync(id, null, cancellationToken);

    /// <summary>A document of one of the served models, by id (<c>GET /v1/documents/{id}?model=</c>).</summary>
    /// <param name="id">The document id: 64 hex digits.</param>
    /// <param name="model">The served model (agent) that stored it; null for the default model.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The document and its chunks.</returns>
    /// <exception cref="KvFusionApiException">404 when the document is not stored, or the model is not served.</exception>
    public Task<DocumentInfo> GetDocumentAsync(string id, string? model, CancellationToken cancellationToken = default)
    {
        var normalized = ResourceIds.Normalize(id, nameof(id));
        var path = "v1/documents/" + Uri.EscapeDataString(normalized);
        if (model is not null)
        {
            path += "?model=" + Uri.EscapeDataString(CheckQueryValue(model, nameof(model)));
        }

        return SendJsonAsync(HttpMethod.Get, path, KvFusionJsonContext.Default.DocumentInfo, cancellationToken);
    }

    // ---------------------------------------------------------------- completions

    /// <summary>A chat completion, whole (<c>POST /v1/chat/completions</c> with <c>stream</c> false).</summary>
    /// <param name="request">The conversation, settings and fusion; its <c>stream</c> and <c>stream_options</c> are cleared.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The completion, with its usage and what the fusion did.</returns>
    public Task<ChatCompletion> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = request with { Stream = false, StreamOptions = null };
        return SendJsonAsync(HttpMethod.Post, "v1/chat/completions", body, KvFusionJsonContext.Default.ChatCompletionRequest, KvFusionJsonContext.Default.ChatCompletion, cancellationToken);
    }

    /// <summary>A chat completion as it is generated (<c>POST /v1/chat/completions</c> with <c>stream</c> true).</summary>
    /// <param name="request">The conversation, settings and fusion; its <c>stream</c> is set.</param>
    /// <param name="cancellationToken">Cancels the call (as does the enumerator's token).</param>
    /// <returns>The chunks up to <c>[DONE]</c>; stopping the enumeration early ends the request.</returns>
    /// <exception cref="KvFusionApiException">The service failed, before or during the stream.</exception>
    /// <exception cref="IOException">The stream ended before <c>[DONE]</c>.</exception>
    public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var body = request with { Stream = true };
        return StreamAsync("v1/chat/completions", body, KvFusionJsonContext.Default.ChatCompletionRequest, KvFusionJsonContext.Default.ChatCompletionChunk, cancellationToken);
    }

    /// <summary>A text completion, whole (<c>POST /v1/completions</c> with <c>stream</c> false).</summary>
    /// <param name="request">The prompt, settings and fusion; its <c>stream</c> and <c>stream_options</c> are cleared.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The completion, with its usage and what the fusion did.</returns>
    public Task<Completion> CompletionAsync(CompletionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = request with { Stream = false, StreamOptions = null };
        return SendJsonAsync(HttpMethod.Post, "v1/completions", body, KvFusionJsonContext.Default.CompletionRequest, KvFusionJsonContext.Default.Completion, cancellationToken);
    }

    /// <summary>A text completion as it is generated (<c>POST /v1/completions</c> with <c>stream</c> true).</summary>
    /// <param name="request">The prompt, settings and fusion; its <c>stream</c> is set.</param>
    /// <param name="cancellationToken">Cancels the call (as does the enumerator's token).</param>
    /// <returns>The streamed completion objects up to <c>[DONE]</c>; stopping the enumeration early ends the request.</returns>
    /// <exception cref="KvFusionApiException">The service failed, before or during the stream.</exception>
    /// <exception cref="IOException">The stream ended before <c>[DONE]</c>.</exception>
    public IAsyncEnumerable<Completion> StreamCompletionAsync(CompletionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var body = request with { Stream = true };
        return StreamAsync("v1/completions", body, KvFusionJsonContext.Default.CompletionRequest, KvFusionJsonContext.Default.Completion, cancellationToken);
    }

    // ---------------------------------------------------------------- models and health

    /// <summary>The models the service serves (<c>GET /v1/models</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The model list.</returns>
    public Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Get, "v1/models", KvFusionJsonContext.Default.ModelList, cancellationToken);

    /// <summary>Whether the service answers its liveness probe (<c>GET /healthz</c>) with a success status.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when it answered 2xx; false when it answered otherwise, could not be reached or timed out.</returns>
    public async Task<bool> IsAliveAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            using var response = await SendAsync(HttpMethod.Get, "healthz", null, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false; // the HttpClient's timeout
        }
    }

    /// <summary>Whether the model is loaded and the tiers are up (<c>GET /readyz</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The report, for a ready (200) and a not ready (503) service alike.</returns>
    /// <exception cref="KvFusionApiException">Any other status, or a 503 without a readiness report.</exception>
    public async Task<ReadinessReport> GetReadinessAsync(CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Get, "readyz", null, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        var isReport = response.StatusCode == HttpStatusCode.ServiceUnavailable
            && string.Equals(response.Content.Headers.ContentType?.MediaType, "application/json", StringComparison.OrdinalIgnoreCase);
        if (!isReport)
        {
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        }

        return await ReadJsonAsync(response, KvFusionJsonContext.Default.ReadinessReport, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Disposes the <see cref="HttpClient"/> when this client created it; a given one is left alone.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_ownsHttpClient)
        {
            _http.Dispose();
        }
    }

    // ---------------------------------------------------------------- plumbing

    private static string ChunkPath(string id, string? suffix, string? tenant, string? model = null)
    {
        var normalized = ResourceIds.Normalize(id, nameof(id));
        var path = "v1/chunks/" + Uri.EscapeDataString(normalized) + suffix;
        var query = tenant is null ? string.Empty : "tenant=" + Uri.EscapeDataString(CheckQueryValue(tenant, nameof(tenant)));
        if (model is not null)
        {
            query += (query.Length == 0 ? string.Empty : "&") + "model=" + Uri.EscapeDataString(CheckQueryValue(model, nameof(model)));
        }

        return query.Length == 0 ? path : path + "?" + query;
    }

    private static string KvPath(string id, string? codec)
    {
        var normalized = ResourceIds.Normalize(id, nameof(id));
        var path = "v1/chunks/" + Uri.EscapeDataString(normalized) + "/kv";
        return codec is null ? path : path + "?codec=" + Uri.EscapeDataString(CheckQueryValue(codec, nameof(codec)));
    }

    private static string CheckQueryValue(string value, string paramName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value, paramName);
        return value;
    }

    private Task<TResponse> SendJsonAsync<TResponse>(HttpMethod method, string path, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken) =>
        SendJsonCoreAsync(method, path, null, responseType, cancellationToken);

    private Task<TResponse> SendJsonAsync<TRequest, TResponse>(HttpMethod method, string path, TRequest body, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken) =>
        SendJsonCoreAsync(method, path, JsonBody(body, requestType), responseType, cancellationToken);

    private async Task<TResponse> SendJsonCoreAsync<TResponse>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(method, path, content, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return await ReadJsonAsync(response, responseType, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ChunkInfo> UploadAsync(string path, HttpContent content, CancellationToken cancellationToken)
    {
        content.Headers.ContentType = new MediaTypeHeaderValue(OctetStream);
        return await SendJsonCoreAsync(HttpMethod.Put, path, content, KvFusionJsonContext.Default.ChunkInfo, cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> SendExpectingNoContentAsync(HttpMethod method, string path, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(method, path, null, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async Task<DocumentInfo> CreateDocumentStreamedAsync(CreateDocumentRequest request, IProgress<DocumentProgress> progress, CancellationToken cancellationToken)
    {
        var content = JsonBody(request, KvFusionJsonContext.Default.CreateDocumentRequest);
        using var response = await SendAsync(HttpMethod.Post, "v1/documents", content, HttpCompletionOption.ResponseHeadersRead, cancellationToken, acceptEventStream: true).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        if (!IsEventStream(response))
        {
            // A service that answers the whole document at once (e.g. every chunk was stored already).
            return await ReadJsonAsync(response, KvFusionJsonContext.Default.DocumentInfo, cancellationToken).ConfigureAwait(false);
        }

        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            await foreach (var item in ServerSentEventReader.ReadNamedAsync<DocumentStreamItem>(stream, DocumentStreamItem.Parse, cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested(); // events already buffered are not read after a cancel
                var e = item.Data;
                switch (e.Kind)
                {
                    case StreamEventKind.Error:
                        throw KvFusionApiException.FromProblem(e.Problem!, HttpStatusCode.InternalServerError);
                    case StreamEventKind.Item when e.Item!.Document is { } document:
                        return document;
                    case StreamEventKind.Item:
                        progress.Report(e.Item.Progress!);
                        break;
                }
            }
        }

        throw new IOException("The document's event stream ended before its 'document' event.");
    }

    private async IAsyncEnumerable<TItem> StreamAsync<TRequest, TItem>(string path, TRequest body, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TItem> itemType, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Post, path, JsonBody(body, requestType), HttpCompletionOption.ResponseHeadersRead, cancellationToken, acceptEventStream: true).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        if (!IsEventStream(response))
        {
            throw new InvalidDataException($"The service answered a streamed request with '{response.Content.Headers.ContentType}' instead of {EventStream}.");
        }

        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            await foreach (var item in ServerSentEventReader.ReadOpenAIStyleAsync(stream, itemType, cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested(); // events already buffered are not read after a cancel
                var e = item.Data;
                switch (e.Kind)
                {
                    case StreamEventKind.Done:
                        yield break;
                    case StreamEventKind.Error:
                        throw KvFusionApiException.FromProblem(e.Problem!, HttpStatusCode.InternalServerError);
                    case StreamEventKind.Item:
                        yield return e.Item!;
                        break;
                }
            }
        }

        throw new IOException("The event stream ended before [DONE].");
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, HttpCompletionOption completion, CancellationToken cancellationToken, bool acceptEventStream = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var request = new HttpRequestMessage(method, new Uri(_baseAddress, path)) { Content = content };
        if (_authorization is not null)
        {
            request.Headers.Authorization = _authorization;
        }

        if (acceptEventStream)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(EventStream));
        }

        return await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw await KvFusionApiException.FromResponseAsync(response, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            return await JsonSerializer.DeserializeAsync(stream, type, cancellationToken).ConfigureAwait(false)
                ?? throw new JsonException($"The service answered null instead of a {typeof(T).Name}.");
        }
    }

    private static ByteArrayContent JsonBody<T>(T body, JsonTypeInfo<T> type)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, type));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json", "utf-8");
        return content;
    }

    private static bool IsEventStream(HttpResponseMessage response) =>
        string.Equals(response.Content.Headers.ContentType?.MediaType, EventStream, StringComparison.OrdinalIgnoreCase);

    private static async Task<long> CopyAsync(Stream source, Stream destination, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBufferSize);
        try
        {
            long total = 0;
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                total += read;
            }

            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
