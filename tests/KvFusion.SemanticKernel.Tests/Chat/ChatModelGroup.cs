namespace KvFusion.SemanticKernel.Tests.Chat;

/// <summary>The chat client tests share one CPU backend and tiny-pydocs, loaded once.</summary>
[CollectionDefinition(Name)]
public sealed class ChatModelGroup : ICollectionFixture<CpuModelFixture>
{
    public const string Name = "chat clients on tiny-pydocs";
}
