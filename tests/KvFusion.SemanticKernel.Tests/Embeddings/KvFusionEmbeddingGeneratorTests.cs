using System.Numerics.Tensors;
using KvFusion.SemanticKernel.Embeddings;
using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Tests.Embeddings;

public sealed class KvFusionEmbeddingGeneratorTests(EmbeddingGeneratorFixture fixture) : IClassFixture<EmbeddingGeneratorFixture>
{
    private readonly KvFusionEmbeddingGenerator _generator = fixture.Generator;

    private async Task<float[]> Embed(string text) => (await _generator.GenerateVectorAsync(text)).ToArray();

    [Fact]
    public async Task Embeddings_have_384_dimensions_and_unit_length()
    {
        var embeddings = await _generator.GenerateAsync(["The cache is reused.", "Short."]);

        Assert.Equal(2, embeddings.Count);
        foreach (var embedding in embeddings)
        {
            Assert.Equal(KvFusionEmbeddingGenerator.Dimensions, embedding.Vector.Length);
            Assert.Equal(1.0, TensorPrimitives.Norm(embedding.Vector.Span), 3);
            Assert.Equal(KvFusionEmbeddingGenerator.ModelName, embedding.ModelId);
        }
    }

    [Fact]
    public async Task Similar_texts_are_closer_than_unrelated_ones()
    {
        var cat = await Embed("A cat is sleeping on the sofa.");
        var kitten = await Embed("A kitten naps on the couch.");
        var finance = await Embed("The central bank raised interest rates by half a percent.");

        var similar = TensorPrimitives.Dot(cat, kitten);
        var unrelated = TensorPrimitives.Dot(cat, finance);

        Assert.True(similar > unrelated + 0.2f, $"similar {similar}, unrelated {unrelated}");
    }

    [Fact]
    public async Task A_batch_gives_the_same_vectors_as_single_calls()
    {
        string[] texts = ["first text about caches", "second text about vectors", "third: attention layers", "fourth"];
        using var smallBatches = new KvFusionEmbeddingGenerator(new KvFusionEmbeddingGeneratorOptions { BatchSize = 3 });

        var batch = await smallBatches.GenerateAsync(texts);

        for (var i = 0; i < texts.Length; i++)
        {
            var single = await Embed(texts[i]);
            Assert.Equal(1.0, TensorPrimitives.CosineSimilarity(single, batch[i].Vector.Span), 4);
        }
    }

    [Fact]
    public async Task A_cancelled_token_cancels_generation()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _generator.GenerateAsync(["text"], cancellationToken: cancelled.Token));
    }

    [Fact]
    public async Task Null_and_empty_inputs_are_rejected_naming_the_problem()
    {
        await Assert.ThrowsAsync<ArgumentNullException>(() => _generator.GenerateAsync(null!));
        var empty = await Assert.ThrowsAsync<ArgumentException>(() => _generator.GenerateAsync(["fine", "  "]));
        var missing = await Assert.ThrowsAsync<ArgumentException>(() => _generator.GenerateAsync(["fine", null!]));

        Assert.Contains("Text 1", empty.Message, StringComparison.Ordinal);
        Assert.Contains("null", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_list_gives_no_embeddings()
    {
        var embeddings = await _generator.GenerateAsync([]);

        Assert.Empty(embeddings);
    }

    [Fact]
    public async Task Asking_for_other_dimensions_is_rejected()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            _generator.GenerateAsync(["text"], new EmbeddingGenerationOptions { Dimensions = 768 }));

        Assert.Contains("768", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_names_the_provider_model_and_dimensions()
    {
        var metadata = _generator.GetService<EmbeddingGeneratorMetadata>();

        Assert.NotNull(metadata);
        Assert.Equal("kvfusion", metadata.ProviderName);
        Assert.Equal("all-MiniLM-L6-v2", metadata.DefaultModelId);
        Assert.Equal(384, metadata.DefaultModelDimensions);
        Assert.Same(_generator, _generator.GetService<IEmbeddingGenerator<string, Embedding<float>>>());
        Assert.Null(_generator.GetService(typeof(EmbeddingGeneratorMetadata), "some key"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(KvFusionEmbeddingGeneratorOptions.MaxBatchSize + 1)]
    public void An_invalid_batch_size_is_rejected(int batchSize)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new KvFusionEmbeddingGenerator(new KvFusionEmbeddingGeneratorOptions { BatchSize = batchSize }));

        Assert.Contains("BatchSize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_disposed_generator_refuses_work()
    {
        var generator = new KvFusionEmbeddingGenerator();
        generator.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => generator.GenerateAsync(["text"]));
    }

    [Fact]
    public async Task Parallel_calls_give_the_same_vectors_as_sequential_ones()
    {
        string[] texts = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"];
        var expected = new List<float[]>();
        foreach (var text in texts)
        {
            expected.Add(await Embed(text));
        }

        var parallel = await Task.WhenAll(texts.Select(t => Task.Run(() => Embed(t))));

        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(1.0, TensorPrimitives.CosineSimilarity(expected[i], parallel[i]), 5);
        }
    }
}
