using System.Text;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Prompts;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Generation;
using KvFusion.SemanticKernel.Chat;
using KvFusion.SemanticKernel.Retrieval;
using Microsoft.Extensions.AI;
using static KvFusion.SemanticKernel.Tests.Chat.ChatTestTexts;
using QualityUsage = KvFusion.Client.Contracts.QualityUsage;

namespace KvFusion.SemanticKernel.Tests.Chat;

[Collection(ChatModelGroup.Name)]
public sealed class KvFusionChatClientTests(CpuModelFixture models)
{
    private static readonly ChatOptions Greedy = new() { Temperature = 0, MaxOutputTokens = 24 };

    [SkippableFact]
    public async Task Greedy_answer_equals_the_engines_own_fused_generation_of_the_same_prompt()
    {
        using var chat = NewChat();
        var response = await chat.Client.GetResponseAsync(Conversation((Len, null), (Sorted, null)), Greedy);

        var prompt = ChatPromptLayout.ForModel(models.Tiny).Lay(
        [
            PromptMessage.Text(PromptRole.System, SystemPrompt),
            new PromptMessage(PromptRole.User, [new ChunkPart(ChunkInput.FromText(Len)), new ChunkPart(ChunkInput.FromText(Sorted))]),
            PromptMessage.Text(PromptRole.User, Question),
        ]);
        using var reference = new FusionEngine(models.Tiny, new InMemoryKvStore());
        using var context = await reference.FuseAsync(prompt.ToRequest(FusionMode.Blend, new BlendOptions { Ratio = BlendOptions.DefaultRatio }, 24));
        var expected = new StringBuilder();
        await foreach (var token in context.GenerateAsync(new SamplingOptions { Temperature = 0, MaxTokens = 24 }))
        {
            expected.Append(token.Text);
        }

        Assert.NotEmpty(expected.ToString());
        Assert.Equal(expected.ToString(), response.Text);
        Assert.Equal(context.Report.TotalTokens, response.Usage!.InputTokenCount);
        Assert.Equal(context.Report.ReusedTokens, response.Usage.CachedInputTokenCount);
    }

    [SkippableFact]
    public async Task Streaming_text_equals_the_whole_answer_and_the_last_update_carries_usage_and_report()
    {
        using var chat = NewChat();
        var whole = await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in chat.Client.GetStreamingResponseAsync(Conversation((Len, null)), Greedy))
        {
            updates.Add(update);
        }

        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.True(updates.Count > 2, "the answer streams in several updates");
        var last = updates[^1];
        Assert.Equal(whole.FinishReason, last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.Equal(whole.Usage!.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        var report = Assert.IsType<KvFusionReport>(last.AdditionalProperties![KvFusionReport.PropertyName]);
        Assert.Equal(whole.Text, Assert.IsType<KvFusionChatResult>(last.RawRepresentation).Text);
        Assert.Equal(ReportOf(whole).ChunkIds, report.ChunkIds);
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.FinishReason));
    }

    [SkippableFact]
    public async Task A_stream_gathered_with_ToChatResponse_keeps_the_usage_and_the_report_on_its_message()
    {
        using var chat = NewChat();
        var whole = await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy);

        var gathered = await chat.Client.GetStreamingResponseAsync(Conversation((Len, null)), Greedy).ToChatResponseAsync();

        Assert.Equal(whole.Text, gathered.Text);
        Assert.Equal(whole.Usage!.CachedInputTokenCount, gathered.Usage!.CachedInputTokenCount);
        // ToChatResponse moves an update's properties onto the message it builds, where SK reads them too.
        var report = Assert.IsType<KvFusionReport>(Assert.Single(gathered.Messages).AdditionalProperties![KvFusionReport.PropertyName]);
        Assert.Equal(ReportOf(whole).PrefillTokens, report.PrefillTokens);
        Assert.Equal(whole.FinishReason, gathered.FinishReason);
    }

    [SkippableFact]
    public async Task The_report_is_on_the_response_and_on_its_message_and_the_raw_result_is_typed()
    {
        using var chat = NewChat();
        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy);

        var onResponse = ReportOf(response);
        var message = Assert.Single(response.Messages);
        Assert.Same(onResponse, message.AdditionalProperties![KvFusionReport.PropertyName]);
        var raw = Assert.IsType<KvFusionChatResult>(response.RawRepresentation);
        Assert.Same(onResponse, raw.Report);
        Assert.Equal(response.Text, raw.Text);
        Assert.Equal(raw.Fusion.TotalTokens, onResponse.PrefillTokens);
        Assert.Equal("tiny-pydocs", response.ModelId);
        Assert.Equal(ChatRole.Assistant, message.Role);
    }

    [SkippableFact]
    public async Task Usage_counts_reused_tokens_as_cached_input_inside_the_input_count()
    {
        using var chat = NewChat();
        var response = await chat.Client.GetResponseAsync(Conversation((Len, null), (Zip, null)), Greedy);

        var usage = response.Usage!;
        var report = ReportOf(response);
        var chunkTokens = chat.Engine.Tokenize(Len).Length + chat.Engine.Tokenize(Zip).Length;
        Assert.Equal(report.ReusedTokens, usage.CachedInputTokenCount);
        Assert.InRange(usage.CachedInputTokenCount!.Value, 1, usage.InputTokenCount!.Value);
        Assert.Equal(chunkTokens, usage.CachedInputTokenCount);
        Assert.Equal(report.PrefillTokens, usage.InputTokenCount);
        Assert.Equal(report.OutputTokens, usage.OutputTokenCount);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        Assert.Equal(report.RecomputedTokens, usage.AdditionalCounts![KvFusionReport.RecomputedTokensCount]);
        Assert.InRange(report.RecomputedTokens, 1, usage.InputTokenCount.Value - 1);
    }

    [SkippableFact]
    public async Task MaxOutputTokens_limits_the_answer_and_finishes_with_length()
    {
        using var chat = NewChat();
        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 3 });

        Assert.Equal(3, response.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        var longer = await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy);
        Assert.StartsWith(response.Text, longer.Text, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task DefaultMaxOutputTokens_applies_when_the_call_sets_none()
    {
        using var chat = NewChat(new KvFusionChatClientOptions { DefaultMaxOutputTokens = 4 });
        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0 });

        Assert.Equal(4, response.Usage!.OutputTokenCount);
    }

    [SkippableFact]
    public async Task A_stop_sequence_cuts_the_answer_before_it_in_both_paths()
    {
        using var chat = NewChat();
        var full = (await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy)).Text;
        var stop = StopWithin(full);

        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 24, StopSequences = [stop] };
        var cut = await chat.Client.GetResponseAsync(Conversation((Len, null)), options);
        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.Client.GetStreamingResponseAsync(Conversation((Len, null)), options))
        {
            streamed.Append(update.Text);
            finish = update.FinishReason ?? finish;
        }

        var expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        Assert.Equal(expected, cut.Text);
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    [SkippableFact]
    public async Task The_same_seed_samples_the_same_answer_and_other_seeds_differ()
    {
        using var chat = NewChat();
        async Task<string> Sample(long seed) =>
            (await chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 1f, TopP = 0.95f, TopK = 50, MaxOutputTokens = 24, Seed = seed })).Text;

        var first = await Sample(7);
        Assert.Equal(first, await Sample(7));
        var others = new[] { await Sample(8), await Sample(9), await Sample(10) };
        Assert.Contains(others, o => o != first);
    }

    [SkippableTheory]
    [InlineData("full", "full")]
    [InlineData("reuse", "reuse")]
    [InlineData("blend:0.3", "blend:0.3")]
    [InlineData("blend", "blend:0.25")]
    public async Task The_mode_property_overrides_the_clients_mode_for_one_call(string given, string used)
    {
        using var chat = NewChat(new KvFusionChatClientOptions { RecomputeRatio = 0.25 });
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.ModeProperty] = given } };

        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), options);

        var report = ReportOf(response);
        Assert.Equal(used, report.Mode);
        if (used == "full")
        {
            Assert.Equal(0, report.ReusedTokens);
            Assert.Equal(report.PrefillTokens, report.RecomputedTokens);
        }

        var plain = await chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 2 });
        Assert.Equal("blend:0.25", ReportOf(plain).Mode);
    }

    [SkippableFact]
    public async Task A_blend_call_reports_its_quality_estimate_and_a_floor_property_gates_it()
    {
        using var chat = NewChat();
        var plain = await chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 2 });
        var estimate = Assert.IsType<QualityUsage>(ReportOf(plain).Quality);
        Assert.Equal("unchecked", estimate.Decision);
        Assert.True(estimate.EstimatedKl > 0);

        var gated = await chat.Client.GetResponseAsync(
            Conversation((Len, null)),
            new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.QualityFloorProperty] = 0.0 } });

        var report = ReportOf(gated);
        Assert.Equal("fell_back_to_full", report.Quality!.Decision);
        Assert.Equal(0, report.Quality.Floor);
        Assert.Equal(0, report.ReusedTokens);
        Assert.Contains("fell_back_to_full", report.ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_clients_floor_applies_to_calls_that_set_none()
    {
        using var chat = NewChat(new KvFusionChatClientOptions { QualityFloor = 1000 });

        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 2 });

        Assert.Equal("passed", ReportOf(response).Quality!.Decision);
        Assert.Equal(1000, ReportOf(response).Quality!.Floor);
    }

    [SkippableTheory]
    [InlineData(-1.0)]
    [InlineData("low")]
    public async Task A_floor_that_is_not_a_kl_is_refused_naming_the_property(object floor)
    {
        using var chat = NewChat();
        var options = new ChatOptions { AdditionalProperties = new() { [KvFusionReport.QualityFloorProperty] = floor } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), options));

        Assert.Contains(KvFusionReport.QualityFloorProperty, e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_loading_goal_reaches_the_engine_and_its_report_says_what_the_controller_did()
    {
        using var chat = NewChat();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.MaxMeanKlProperty] = 0.0, [KvFusionReport.TtftDeadlineProperty] = 5000 } };

        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), options);

        // This engine has no loading controller configured, and says so rather than ignoring the goal.
        var loading = ReportOf(response).Loading!;
        Assert.Empty(loading.Choices);
        Assert.Contains("no loading controller", loading.Skipped, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData("kvfusion.ttft_deadline_ms", 0)]
    [InlineData("kvfusion.max_mean_kl", -0.5)]
    [InlineData("kvfusion.ttft_slack", "lots")]
    public async Task A_loading_goal_out_of_range_is_refused_naming_the_property(string property, object value)
    {
        using var chat = NewChat();
        var options = new ChatOptions { AdditionalProperties = new() { [property] = value } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), options));

        Assert.Contains(property, e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_floor_with_a_mode_other_than_blend_is_refused()
    {
        using var chat = NewChat();
        var options = new ChatOptions { AdditionalProperties = new() { [KvFusionReport.QualityFloorProperty] = 0.2, [KvFusionReport.ModeProperty] = "reuse" } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), options));

        Assert.Contains("blend only", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_FusionMode_value_overrides_the_mode_too()
    {
        using var chat = NewChat();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 2, AdditionalProperties = new() { [KvFusionReport.ModeProperty] = FusionMode.Full } };

        var response = await chat.Client.GetResponseAsync(Conversation((Len, null)), options);

        Assert.Equal("full", ReportOf(response).Mode);
        Assert.Equal(0, response.Usage!.CachedInputTokenCount);
    }

    [SkippableTheory]
    [InlineData("bogus")]
    [InlineData("blend:7")]
    public async Task An_unknown_mode_is_refused_naming_it(string mode)
    {
        using var chat = NewChat();
        var options = new ChatOptions { AdditionalProperties = new() { [KvFusionReport.ModeProperty] = mode } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), options));

        Assert.Contains(KvFusionReport.ModeProperty, e.Message, StringComparison.Ordinal);
        Assert.Contains(mode, e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_mode_of_another_type_is_refused_naming_it()
    {
        using var chat = NewChat();
        var options = new ChatOptions { AdditionalProperties = new() { [KvFusionReport.ModeProperty] = 42 } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), options));

        Assert.Contains("42", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Stored_chunks_named_by_id_are_read_from_the_store_and_not_recomputed()
    {
        using var chat = NewChat();
        var len = await chat.Engine.PutChunkAsync(ChunkInput.FromText(Len));
        var zip = await chat.Engine.PutChunkAsync(ChunkInput.FromText(Zip));
        chat.Store.Reset();

        var response = await chat.Client.GetResponseAsync(Conversation((Len, len.ToString()), (Zip, zip.ToString())), Greedy);

        var report = ReportOf(response);
        Assert.Equal(new[] { len.ToString(), zip.ToString() }, report.ChunkIds);
        Assert.Equal(0, report.ChunksPrecomputed);
        Assert.Empty(chat.Store.ChunkWrites);
        Assert.Equal(new Dictionary<string, int> { [len.ToString()] = 1, [zip.ToString()] = 1 }, chat.Store.ChunkReads);
    }

    [SkippableFact]
    public async Task A_chunk_given_as_text_is_precomputed_once_and_reused_on_the_next_call()
    {
        using var chat = NewChat();
        var expectedId = chat.Engine.ChunkIdOf(chat.Engine.Tokenize(Sorted)).ToString();

        var first = await chat.Client.GetResponseAsync(Conversation((Sorted, null)), Greedy);
        var writesAfterFirst = chat.Store.ChunkWrites.ToDictionary();
        chat.Store.Reset();
        var second = await chat.Client.GetResponseAsync(Conversation((Sorted, null)), Greedy);

        Assert.Equal(new[] { expectedId }, ReportOf(first).ChunkIds);
        Assert.Equal(1, ReportOf(first).ChunksPrecomputed);
        Assert.Equal(new Dictionary<string, int> { [expectedId] = 1 }, writesAfterFirst);
        Assert.Equal(0, ReportOf(second).ChunksPrecomputed);
        Assert.Empty(chat.Store.ChunkWrites);
        Assert.Equal(1, chat.Store.ChunkReads[expectedId]);
        Assert.Equal(first.Text, second.Text);
    }

    [SkippableFact]
    public async Task A_named_chunk_missing_from_the_store_is_computed_from_its_text_and_then_found_by_id()
    {
        using var chat = NewChat();
        var id = chat.Engine.ChunkIdOf(chat.Engine.Tokenize(Zip)).ToString();

        var first = await chat.Client.GetResponseAsync(Conversation((Zip, id)), Greedy);
        chat.Store.Reset();
        var second = await chat.Client.GetResponseAsync(Conversation((Zip, id)), Greedy);

        Assert.Equal(1, ReportOf(first).ChunksPrecomputed);
        Assert.Equal(new[] { id }, ReportOf(second).ChunkIds);
        Assert.Equal(0, ReportOf(second).ChunksPrecomputed);
        Assert.Empty(chat.Store.ChunkWrites);
    }

    [SkippableFact]
    public async Task A_stored_id_is_fused_even_when_the_items_text_differs()
    {
        using var chat = NewChat();
        var len = await chat.Engine.PutChunkAsync(ChunkInput.FromText(Len));
        chat.Store.Reset();

        var byId = await chat.Client.GetResponseAsync(Conversation((Zip, len.ToString())), Greedy);
        var byText = await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy);

        Assert.Equal(new[] { len.ToString() }, ReportOf(byId).ChunkIds);
        Assert.Equal(chat.Engine.Tokenize(Len).Length, byId.Usage!.CachedInputTokenCount);
        Assert.Empty(chat.Store.ChunkWrites);
        Assert.Equal(byText.Text, byId.Text);
    }

    [SkippableFact]
    public async Task Instructions_are_read_as_a_system_message()
    {
        using var chat = NewChat();
        var withSystem = await chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy);

        var messages = Conversation((Len, null)).Skip(1).ToList();
        var withInstructions = await chat.Client.GetResponseAsync(messages, new ChatOptions { Temperature = 0, MaxOutputTokens = 24, Instructions = SystemPrompt });

        Assert.Equal(withSystem.Text, withInstructions.Text);
        Assert.Equal(withSystem.Usage!.InputTokenCount, withInstructions.Usage!.InputTokenCount);
    }

    [SkippableFact]
    public async Task Chunk_markers_in_a_user_message_are_fused_as_their_chunks()
    {
        using var chat = NewChat();
        var len = await chat.Engine.PutChunkAsync(ChunkInput.FromText(Len));
        chat.Store.Reset();
        var text = "Use this information:\n" + KvFusionChunkMarkers.Wrap(Len, len.ToString()) + KvFusionChunkMarkers.Wrap(Zip, null) + "\n" + Question;

        var response = await chat.Client.GetResponseAsync([new ChatMessage(ChatRole.System, SystemPrompt), new ChatMessage(ChatRole.User, text)], Greedy);

        var zip = chat.Engine.ChunkIdOf(chat.Engine.Tokenize(Zip)).ToString();
        Assert.Equal(new[] { len.ToString(), zip }, ReportOf(response).ChunkIds);
        Assert.Equal(new Dictionary<string, int> { [zip] = 1 }, chat.Store.ChunkWrites);
        Assert.Equal(chat.Engine.Tokenize(Len).Length + chat.Engine.Tokenize(Zip).Length, response.Usage!.CachedInputTokenCount);
    }

    [SkippableFact]
    public async Task Cancelling_before_the_call_throws_and_computes_nothing()
    {
        using var chat = NewChat();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), Greedy, cts.Token));

        Assert.Empty(chat.Store.ChunkWrites);
    }

    [SkippableFact]
    public async Task Cancelling_a_stream_stops_it_between_tokens()
    {
        using var chat = NewChat();
        using var cts = new CancellationTokenSource();
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in chat.Client.GetStreamingResponseAsync(Conversation((Len, null)), new ChatOptions { Temperature = 0, MaxOutputTokens = 200 }, cts.Token))
            {
                received++;
                await cts.CancelAsync();
            }
        });

        Assert.Equal(1, received);
    }

    [SkippableFact]
    public async Task A_chat_without_a_user_message_is_refused()
    {
        using var chat = NewChat();

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync([new ChatMessage(ChatRole.System, SystemPrompt)], Greedy));

        Assert.Contains("user message", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_malformed_chunk_id_is_refused_naming_it()
    {
        using var chat = NewChat();
        var item = new TextContent(Len) { AdditionalProperties = new() { [KvFusionContent.ChunkIdProperty] = "12ab-not-hex" } };
        var context = new ChatMessage(ChatRole.User, [item]) { AdditionalProperties = new() { [KvFusionContent.RetrievedContextProperty] = true } };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync([context, new ChatMessage(ChatRole.User, Question)], Greedy));

        Assert.Contains("12ab-not-hex", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_unknown_role_and_unreadable_content_are_refused()
    {
        using var chat = NewChat();

        var role = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync([new ChatMessage(new ChatRole("narrator"), "x"), new ChatMessage(ChatRole.User, Question)], Greedy));
        var image = new ChatMessage(ChatRole.User, [new DataContent(new byte[] { 1, 2, 3 }, "image/png")]);
        var content = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync([image, new ChatMessage(ChatRole.User, Question)], Greedy));

        Assert.Contains("narrator", role.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(DataContent), content.Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData(3f, null, null, "Temperature")]
    [InlineData(null, 0f, null, "TopP")]
    [InlineData(null, null, 0, "MaxOutputTokens")]
    public async Task Out_of_range_options_are_refused_naming_them(float? temperature, float? topP, int? max, string name)
    {
        using var chat = NewChat();
        var options = new ChatOptions { Temperature = temperature, TopP = topP, MaxOutputTokens = max };

        var e = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), options));

        Assert.Contains(name, e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Another_model_id_is_refused_and_empty_stop_sequences_too()
    {
        using var chat = NewChat();

        var model = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { ModelId = "gpt-4o" }));
        var stop = await Assert.ThrowsAsync<ArgumentException>(() => chat.Client.GetResponseAsync(Conversation((Len, null)), new ChatOptions { StopSequences = [""] }));

        Assert.Contains("gpt-4o", model.Message, StringComparison.Ordinal);
        Assert.Contains("StopSequences", stop.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void GetService_gives_the_metadata_the_engine_and_the_client()
    {
        using var chat = NewChat();

        var metadata = chat.Client.GetService<ChatClientMetadata>();

        Assert.Equal("kvfusion", metadata!.ProviderName);
        Assert.Equal("tiny-pydocs", metadata.DefaultModelId);
        Assert.Same(chat.Engine, chat.Client.GetService<FusionEngine>());
        Assert.Same(chat.Client, chat.Client.GetService<KvFusionChatClient>());
        Assert.Null(chat.Client.GetService<ChatClientMetadata>("a key"));
        Assert.Null(chat.Client.GetService<string>());
    }

    [SkippableFact]
    public void Options_out_of_range_are_refused_at_construction()
    {
        using var chat = NewChat();

        var ratio = Assert.Throws<ArgumentOutOfRangeException>(() => new KvFusionChatClient(chat.Engine, new KvFusionChatClientOptions { RecomputeRatio = 0 }));
        var max = Assert.Throws<ArgumentOutOfRangeException>(() => new KvFusionChatClient(chat.Engine, new KvFusionChatClientOptions { DefaultMaxOutputTokens = 0 }));

        Assert.Equal(nameof(KvFusionChatClientOptions.RecomputeRatio), ratio.ParamName);
        Assert.Equal(nameof(KvFusionChatClientOptions.DefaultMaxOutputTokens), max.ParamName);
    }

    internal static List<ChatMessage> Conversation(params (string Text, string? ChunkId)[] chunks) =>
    [
        new ChatMessage(ChatRole.System, SystemPrompt),
        KvFusionContent.RetrievedContext(chunks),
        new ChatMessage(ChatRole.User, Question),
    ];

    internal static KvFusionReport ReportOf(ChatResponse response) =>
        Assert.IsType<KvFusionReport>(response.AdditionalProperties![KvFusionReport.PropertyName]);

    /// <summary>A piece of the answer after its start, to stop at (a word, or a few characters).</summary>
    internal static string StopWithin(string text)
    {
        Assert.True(text.Length >= 8, $"the answer '{text}' is long enough to cut");
        var from = text.Length / 2;
        return text.Substring(from, Math.Min(3, text.Length - from));
    }

    private ChatSetup NewChat(KvFusionChatClientOptions? options = null)
    {
        var store = new CountingKvStore(new InMemoryKvStore());
        var engine = new FusionEngine(models.Tiny, store);
        return new ChatSetup(engine, store, new KvFusionChatClient(engine, options));
    }

    private sealed record ChatSetup(FusionEngine Engine, CountingKvStore Store, KvFusionChatClient Client) : IDisposable
    {
        public void Dispose()
        {
            Client.Dispose();
            Engine.Dispose();
        }
    }
}
