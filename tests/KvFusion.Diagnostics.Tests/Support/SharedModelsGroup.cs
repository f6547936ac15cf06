namespace KvFusion.Diagnostics.Tests.Support;

[CollectionDefinition(Name)]
public sealed class SharedModelsGroup : ICollectionFixture<CpuModelFixture>
{
    public const string Name = "shared models";
}
