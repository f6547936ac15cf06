using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// The official OpenAI .NET SDK against <c>kvfusion serve</c>: what an existing OpenAI application sees when its
/// endpoint is pointed here, with the service's API key as the SDK's bearer token.
/// </summary>
[Collection(KeyedServers.Name)]
public sealed class OpenAiSdkTests(KeyedServer fixture)
{
    private const int MaxTokens = 8;

    [SkippableFact]
    public async Task A_chat_completion_answers_with_text_a_finish_reason_and_usage()
    {
        var chat = Client(KeyedServer.ApiKey);

        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage("You answer questions about Python."), new UserChatMessage("How do I sort a list?")],
            Options());

        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.False(string.IsNullOrEmpty(completion.Content[0].Text), "no text came back");
        Assert.Contains(completion.FinishReason, new[] { ChatFinishReason.Stop, ChatFinishReason.Length });
        Assert.Equal(KeyedServer.ModelId, completion.Model);
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.InRange(completion.Usage.OutputTokenCount, 1, MaxTokens);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
        if (completion.FinishReason == ChatFinishReason.Length)
        {
            Assert.Equal(MaxTokens, completion.Usage.OutputTokenCount);
        }

        // Nothing was fused, so nothing came from a stored cache.
        Assert.Equal(0, completion.Usage.InputTokenDetails.CachedTokenCount);
    }

    [SkippableFact]
    public async Task A_streamed_chat_completion_sends_text_in_updates_then_the_finish_reason_and_the_usage_last()
    {
        var chat = Client(KeyedServer.ApiKey);
        var text = new StringBuilder();
        var updates = new List<StreamingChatCompletionUpdate>();

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("What does len() return?")], Options()))
        {
            updates.Add(update);
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.True(updates.Count >= 3, $"only {updates.Count} updates");
        Assert.True(text.Length > 0, "no text came back");
        var finish = Assert.Single(updates, u => u.FinishReason is not null).FinishReason;
        Assert.Contains(finish, new ChatFinishReason?[] { ChatFinishReason.Stop, ChatFinishReason.Length });

        // The SDK asks for stream_options.include_usage itself; the usage arrives in the last update, after the finish.
        var usage = updates[^1].Usage;
        Assert.NotNull(usage);
        Assert.True(usage.InputTokenCount > 0);
        Assert.InRange(usage.OutputTokenCount, 1, MaxTokens);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        Assert.All(updates.Take(updates.Count - 1), u => Assert.Null(u.Usage));
        Assert.All(updates, u => Assert.Equal(updates[0].CompletionId, u.CompletionId));
    }

    [SkippableFact]
    public async Task The_kvfusion_object_goes_through_the_sdk_as_a_json_patch_and_the_fused_chunk_counts_as_cached_tokens()
    {
        using var http = fixture.Server.CreateHttpClient(KeyedServer.ApiKey);
        var chunk = await Http.CreateChunkAsync(http, Http.UniqueText("Sorting in Python."));
        var chat = Client(KeyedServer.ApiKey);
        var options = Options();

        // OpenAI 2.x has no typed extension point; JsonPatch adds a property the SDK does not know to the request body.
#pragma warning disable SCME0001 // JsonPatch is marked experimental in System.ClientModel.
        options.Patch.Set("$.kvfusion"u8, BinaryData.FromString(JsonSerializer.Serialize(new { chunks = new[] { chunk.Id }, mode = "blend" })));
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Summarize the text above.")], options);

        // The answer's own kvfusion object is kept in the response model's patch, as JSON the SDK does not parse.
        Assert.True(completion.Patch.TryGetJson("$.kvfusion"u8, out var fusionJson), "the answer has no kvfusion object");
#pragma warning restore SCME0001
        using var fusion = JsonDocument.Parse(fusionJson);

        Assert.Equal(chunk.Tokens, completion.Usage.InputTokenDetails.CachedTokenCount);
        Assert.True(completion.Usage.InputTokenCount > chunk.Tokens, "the prompt holds the chunk and the question");
        Assert.Equal(chunk.Tokens, fusion.RootElement.GetProperty("reused_tokens").GetInt32());
        Assert.Equal(0, fusion.RootElement.GetProperty("chunks_precomputed").GetInt32());
        Assert.StartsWith("blend", fusion.RootElement.GetProperty("mode").GetString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_wrong_api_key_is_the_sdks_401()
    {
        var chat = Client("not-the-key-0123456789abcdef");

        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("Hello")], Options()));

        Assert.Equal(401, e.Status);
    }

    [SkippableFact]
    public async Task A_model_that_is_not_served_is_the_sdks_404()
    {
        var chat = new ChatClient("gpt-4o", new ApiKeyCredential(KeyedServer.ApiKey), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "v1") });

        var e = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("Hello")], Options()));

        Assert.Equal(404, e.Status);
        Assert.Contains("tiny-pydocs", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_sdks_model_list_names_the_served_model()
    {
        var models = new OpenAIModelClient(new ApiKeyCredential(KeyedServer.ApiKey), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "v1") });

        OpenAIModelCollection list = await models.GetModelsAsync();

        var model = Assert.Single(list);
        Assert.Equal(KeyedServer.ModelId, model.Id);
        Assert.Equal("kvfusion", model.OwnedBy);
        Assert.True(model.CreatedAt > DateTimeOffset.UnixEpoch);
    }

    private ChatClient Client(string apiKey) =>
        new(KeyedServer.ModelId, new ApiKeyCredential(apiKey), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "v1") });

    private static ChatCompletionOptions Options() => new() { MaxOutputTokenCount = MaxTokens, Temperature = 0 };
}
