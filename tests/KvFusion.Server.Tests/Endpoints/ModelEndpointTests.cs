using System.Net;
using System.Text.Json;

namespace KvFusion.Server.Tests.Endpoints;

public sealed class ModelEndpointTests
{
    [SkippableFact]
    public async Task Models_lists_the_loaded_model_with_its_fingerprint_in_snake_case()
    {
        using var factory = new KvFusionServerFactory();
        using var client = factory.CreateHttpClient();
        using var response = await client.GetAsync(new Uri("/v1/models", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var model = json.RootElement.GetProperty("data")[0];
        Assert.Equal("tiny-pydocs", model.GetProperty("id").GetString());
        Assert.Equal("kvfusion", model.GetProperty("owned_by").GetString());
        Assert.Equal(64, model.GetProperty("fingerprint").GetString()!.Length);
    }
}
