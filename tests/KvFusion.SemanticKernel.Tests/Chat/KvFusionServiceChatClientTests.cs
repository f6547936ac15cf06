using System.Net;
using System.Text;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Client;
using KvFusion.Client.Contracts;
using KvFusion.SemanticKernel.Chat;
using KvFusion.SemanticKernel.Retrieval;
using Microsoft.Extensions.AI;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;
using static KvFusion.SemanticKernel.Tests.Chat.ChatTestTexts;
using static KvFusion.SemanticKernel.Tests.Chat.KvFusionChatClientTests;

namespace KvFusion.SemanticKernel.Tests.Chat;

/// <summary>One real service (in process, on tiny-pydocs) for the service chat client's tests, started on first use.</summary>
public sealed class ChatServerFixture : IDisposable
{
    private readonly Lazy<KvFusionServerFactory> _factory = new(() => new KvFusionServerFactory());

    public KvFusionServerFactory Factory => _factory.Value;

    public void Dispose()
    {
        if (_factory.IsValueCreated)
        {
            _factory.Value.Dispose();
        }
    }
}

[Collection(ChatModelGroup.Name)]
public sealed class KvFusionServiceChatClientTests(ChatServerFixture server, CpuModelFixture models) : IClassFixture<ChatServerFixture>
{
    private static readonly ChatOptions Greedy = new() { Temperature = 0, MaxOutputTokens = 24 };

    [SkippableFact]
    public async Task Stored_chunks_travel_by_id_and_their_tokens_are_the_cached_input()
    {
        using var service = NewService();
        var stored = await service.Rest.CreateChunksAsync(new CreateChunksRequest { Chunks = [new ChunkSource { Text = Len }, new ChunkSource { Text = Zip }] });
        var (len, zip) = (stored.Chunks[0], stored.Chunks[1]);

        var response = await service.Client.GetResponseAsync(Conversation((Len, len.Id), (Zip, zip.Id)), Greedy);

        var report = ReportOf(response);
        Assert.Equal(new[] { len.Id, zip.Id }, report.ChunkIds);
        Assert.Equal(0, report.ChunksPrecomputed);
        Assert.Equal(len.Tokens + zip.Tokens, response.Usage!.CachedInputTokenCount);
        Assert.Equal(report.ReusedTokens, response.Usage.CachedInputTokenCount);
        Assert.Equal(report.PrefillTokens, response.Usage.InputTokenCount);
        Assert.InRange(response.Usage.CachedInputTokenCount!.Value, 1, response.Usage.InputTokenCount!.Value);
        Assert.Equal(report.RecomputedTokens, response.Usage.AdditionalCounts![KvFusionReport.RecomputedTokensCount]);
        Assert.Equal(report.OutputTokens, response.Usage.OutputTokenCount);
        Assert.IsType<ChatCompletion>(response.RawRepresentation);
        Assert.Same(report, Assert.Single(response.Messages).AdditionalProperties![KvFusionReport.PropertyName]);
        Assert.NotEmpty(response.Text);
    }

    [SkippableFact]
    public async Task A_chunk_without_id_is_created_from_its_text_first_and_found_next_time()
    {
        using var service = NewService();
        var text = Sorted + " (no id)";

        var first = await service.Client.GetResponseAsync(Conversation((text, null)), Greedy);
        var second = await service.Client.GetResponseAsync(Conversation((text, null)), Greedy);

        var id = Assert.Single(ReportOf(first).ChunkIds);
        var info = await service.Rest.GetChunkAsync(id);
        Assert.Equal(id, info.Id);
        Assert.Equal(1, ReportOf(first).ChunksPrecomputed);
        Assert.Equal(0, ReportOf(second).ChunksPrecomputed);
        Assert.Equal(new[] { id }, ReportOf(second).ChunkIds);
        Assert.Equal(info.Tokens, second.Usage!.CachedInputTokenCount);
    }

    [SkippableFact]
    public async Task A_named_chunk_the_service_answers_404_for_is_created_from_its_text()
    {
        using var service = NewService();
        var unknown = new string('e', 64);
        var text = Zip + " (unknown to the service)";

        var response = await service.Client.GetResponseAsync(Conversation((text, unknown)), Greedy);

        var id = Assert.Single(ReportOf(response).ChunkIds);
        Assert.NotEqual(unknown, id);
        Assert.Equal(id, (await service.Rest.GetChunkAsync(id)).Id);
        Assert.Equal(1, ReportOf(response).ChunksPrecomputed);
        Assert.True(response.Usage!.CachedInputTokenCount > 0);
    }

    [SkippableFact]
    public async Task A_stream_recovers_from_a_404_the_same_way()
    {
        using var service = NewService();
        var text = Len + " (streamed)";
        var updates = new List<ChatResponseUpdate>();

        await foreach (var update in service.Client.GetStreamingResponseAsync(Conversation((text, new string('d', 64))), Greedy))
        {
            updates.Add(update);
        }

        var report = Assert.IsType<KvFusionReport>(updates[^1].AdditionalProperties![KvFusionReport.PropertyName]);
        Assert.Equal(1, report.ChunksPrecomputed);
        Assert.NotEqual(new string('d', 64), Assert.Single(report.ChunkIds));
    }

    [SkippableFact]
    public async Task Streaming_text_equals_the_whole_answer_with_usage_and_report_last()
    {
        using var service = NewService();
        var whole = await service.Client.GetResponseAsync(Conversation((Len, null)), Greedy);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in service.Client.GetStreamingResponseAsync(Conversation((Len, null)), Greedy))
        {
            updates.Add(update);
        }

        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        var last = updates[^1];
        Assert.Equal(whole.FinishReason, last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.Equal(whole.Usage!.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(whole.Usage.CachedInputTokenCount, usage.CachedInputTokenCount);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        Assert.Equal(ReportOf(whole).ChunkIds, Assert.IsType<KvFusionReport>(last.AdditionalProperties![KvFusionReport.PropertyName]).ChunkIds);
        Assert.IsType<ChatCompletionChunk>(last.RawRepresentation);
    }

    [SkippableFact]
    public async Task The_service_answers_what_the_in_process_client_answers()
    {
        using var service = NewService();
        using var engine = new FusionEngine(models.Tiny, new InMemoryKvStore());
        using var local = new KvFusionChatClient(engine);

        var remote = await service.Client.GetResponseAsync(Conversation((Len, null), (Zip, null)), Greedy);
        var inProcess = await local.GetResponseAsync(Conversation((Len, null), (Zip, null)), Greedy);

        Assert.Equal(inProcess.Text, remote.Text);
        Assert.Equal(inProcess.Usage!.InputTokenCount, remote.Usage!.InputTokenCount);
        Assert.Equal(inProcess.Usage.CachedInputTokenCount, remote.Usage.CachedInputTokenCount);
        Assert.Equal(ReportOf(inProcess).ChunkIds, ReportOf(remote).ChunkIds);
    }

    [SkippableFact]
    public async Task Stop_sequences_and_max_tokens_reach_the_service()
    {
        using var service = NewService();
        var full = (await service.Client.GetResponseAsync(Conversation((Len, null)), Greedy)).Text;
        var stop = StopWithin(full);

        var cut = await service.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 24, StopSequences = [stop] });
        var shortAnswer = await service.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 3 });

        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
        Assert.Equal(3, shortAnswer.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, shortAnswer.FinishReason);
    }

    [SkippableFact]
    public async Task The_same_seed_samples_the_same_answer_on_the_service()
    {
        using var service = NewService();
        var options = new ChatOptions { Temperature = 1f, MaxOutputTokens = 16, Seed = 11 };

        var first = await service.Client.GetResponseAsync(Conversation((Len, null)), options);
        var second = await service.Client.GetResponseAsync(Conversation((Len, null)), options);

        Assert.Equal(first.Text, second.Text);
    }

    [SkippableFact]
    public async Task The_mode_property_reaches_the_service()
    {
        using var service = NewService();
        var full = new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.ModeProperty] = "full" } };
        var blend = new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.ModeProperty] = "blend:0.3" } };

        var fullResponse = await service.Client.GetResponseAsync(Conversation((Len, null)), full);
        var blendResponse = await service.Client.GetResponseAsync(Conversation((Len, null)), blend);

        Assert.Equal("full", ReportOf(fullResponse).Mode);
        Assert.Equal(0, fullResponse.Usage!.CachedInputTokenCount);
        Assert.Equal("blend:0.3", ReportOf(blendResponse).Mode);
    }

    [SkippableFact]
    public async Task The_quality_floor_reaches_the_service_and_its_decision_comes_back_in_the_report()
    {
        using var service = NewService();
        var plain = await service.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 2 });
        var gated = await service.Client.GetResponseAsync(
            Conversation((Len, null)),
            new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.QualityFloorProperty] = 0.0 } });

        Assert.Equal("unchecked", ReportOf(plain).Quality!.Decision);
        Assert.True(ReportOf(plain).Quality!.EstimatedKl > 0);
        var quality = ReportOf(gated).Quality!;
        Assert.Equal("fell_back_to_full", quality.Decision);
        Assert.Equal(0, quality.Floor);
        Assert.Equal(1, quality.Ratio);
        Assert.Equal(0, gated.Usage!.CachedInputTokenCount);
    }

    [SkippableFact]
    public async Task A_loading_goal_reaches_the_service_and_its_choices_come_back_in_the_report()
    {
        using var service = NewService();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.MaxMeanKlProperty] = 0.0 } };
        LoadingUsage? loading = null;
        for (var attempt = 0; attempt < 4 && loading is not { Choices.Count: > 0 }; attempt++)
        {
            loading = ReportOf(await service.Client.GetResponseAsync(Conversation((Len, null)), options)).Loading;
            Assert.NotNull(loading);
        }

        Assert.NotEmpty(loading!.Choices);
        Assert.True(loading.MeetsGoal);
        Assert.Equal(0, loading.PredictedMeanKl);
    }

    [SkippableFact]
    public async Task A_chunk_named_by_id_only_that_the_service_lacks_surfaces_its_404()
    {
        using var service = NewService();
        var idOnly = new TextContent("") { AdditionalProperties = new() { [KvFusionContent.ChunkIdProperty] = new string('c', 64) } };
        var context = new ChatMessage(ChatRole.User, [idOnly]) { AdditionalProperties = new() { [KvFusionContent.RetrievedContextProperty] = true } };

        var e = await Assert.ThrowsAsync<KvFusionApiException>(() => service.Client.GetResponseAsync([context, new ChatMessage(ChatRole.User, Question)], Greedy));

        Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
        Assert.Contains(new string('c', 64), e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Service_errors_surface_with_their_status()
    {
        using var service = NewService();

        var model = await Assert.ThrowsAsync<KvFusionApiException>(() => service.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { ModelId = "another-model" }));
        var stops = await Assert.ThrowsAsync<KvFusionApiException>(() => service.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { StopSequences = ["a", "b", "c", "d", "e"] }));
        var streamed = await Assert.ThrowsAsync<KvFusionApiException>(async () =>
        {
            await foreach (var update in service.Client.GetStreamingResponseAsync(Conversation((Len, null)), new ChatOptions { ModelId = "another-model" }))
            {
                Assert.Fail($"no update expected, got '{update.Text}'");
            }
        });

        Assert.Equal(HttpStatusCode.NotFound, model.StatusCode);
        Assert.Contains("another-model", model.Message, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, stops.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, streamed.StatusCode);
    }

    [SkippableFact]
    public async Task Bad_input_is_refused_before_anything_is_sent()
    {
        using var service = NewService();

        var topK = await Assert.ThrowsAsync<ArgumentException>(() => service.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { TopK = 5 }));
        var noUser = await Assert.ThrowsAsync<ArgumentException>(() => service.Client.GetResponseAsync([new ChatMessage(ChatRole.System, SystemPrompt)], Greedy));
        var mode = await Assert.ThrowsAsync<ArgumentException>(() => service.Client.GetResponseAsync(
            Conversation((Len, null)), new ChatOptions { AdditionalProperties = new() { [KvFusionReport.ModeProperty] = "blend:0.2:qattn" } }));
        var badId = new TextContent(Len) { AdditionalProperties = new() { [KvFusionContent.ChunkIdProperty] = "xyz" } };
        var id = await Assert.ThrowsAsync<ArgumentException>(() => service.Client.GetResponseAsync([new ChatMessage(ChatRole.User, [badId]), new ChatMessage(ChatRole.User, Question)], Greedy));

        Assert.Contains("TopK", topK.Message, StringComparison.Ordinal);
        Assert.Contains("user message", noUser.Message, StringComparison.Ordinal);
        Assert.Contains("variant", mode.Message, StringComparison.Ordinal);
        Assert.Contains("xyz", id.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Cancelling_before_the_call_throws()
    {
        using var service = NewService();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => service.Client.GetResponseAsync(Conversation((Len, null)), Greedy, cts.Token));
    }

    [SkippableFact]
    public void GetService_gives_the_metadata_and_the_rest_client()
    {
        using var service = NewService(new KvFusionChatClientOptions { ModelId = "tiny-pydocs" });

        var metadata = service.Client.GetService<ChatClientMetadata>()!;

        Assert.Equal("kvfusion", metadata.ProviderName);
        Assert.Equal(service.Rest.BaseAddress, metadata.ProviderUri);
        Assert.Equal("tiny-pydocs", metadata.DefaultModelId);
        Assert.Same(service.Rest, service.Client.GetService<KvFusionClient>());
        Assert.Same(service.Client, service.Client.GetService<IChatClient>());
    }

    private ServiceSetup NewService(KvFusionChatClientOptions? options = null)
    {
        var http = server.Factory.CreateHttpClient();
        var rest = new KvFusionClient(http);
        return new ServiceSetup(http, rest, new KvFusionServiceChatClient(rest, options));
    }

    private sealed record ServiceSetup(HttpClient Http, KvFusionClient Rest, KvFusionServiceChatClient Client) : IDisposable
    {
        public void Dispose()
        {
            Client.Dispose();
            Rest.Dispose();
            Http.Dispose();
        }
    }
}
