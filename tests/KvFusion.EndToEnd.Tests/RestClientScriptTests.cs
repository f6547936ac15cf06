namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// samples/RestClient/curl.sh against a real <c>kvfusion serve</c> process: every call of the script must answer the
/// status the script expects, and a service that is not there must make it fail.
/// </summary>
[Collection(KeyedServers.Name)]
public sealed class RestClientScriptTests(KeyedServer fixture)
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(3);

    [SkippableFact]
    public async Task The_curl_script_covers_the_api_and_every_call_answers_as_expected()
    {
        var (bash, curl) = Tools();
        var server = fixture.Server;

        var run = await SampleProcess.RunAsync(
            bash, [Script, server.BaseAddress.ToString()], ScriptTimeout, environment: new Dictionary<string, string> { ["KVFUSION_API_KEY"] = KeyedServer.ApiKey, ["PATH"] = PathWith(curl) });

        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Contains("all calls answered as expected", run.StandardOutput, StringComparison.Ordinal);
        foreach (var call in new[]
                 {
                     "200 GET /readyz", "200 POST /v1/chunks ", "201 PUT /v1/chunks/", "204 DELETE /v1/chunks/", "201 POST /v1/documents ",
                     "200 POST /v1/chat/completions (chat, blend)", "200 POST /v1/chat/completions (chat, streamed with usage)",
                     "200 POST /v1/completions ", "404 GET /v1/chunks/", "422 PUT /v1/chunks/",
                 })
        {
            Assert.Contains(call, run.StandardOutput, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("FAIL", run.StandardError, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_curl_script_fails_on_an_unexpected_status()
    {
        var (bash, curl) = Tools();
        var server = fixture.Server;

        // Without the API key the keyed service refuses the first authenticated call, which the script must report.
        var run = await SampleProcess.RunAsync(
            bash, [Script, server.BaseAddress.ToString()], ScriptTimeout, environment: new Dictionary<string, string> { ["KVFUSION_API_KEY"] = "", ["PATH"] = PathWith(curl) });

        Assert.True(run.ExitCode != 0, run.Describe());
        Assert.Contains("FAIL", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("all calls answered as expected", run.StandardOutput, StringComparison.Ordinal);
    }

    private static string Script => RepositoryRoot.Combine("samples", "RestClient", "curl.sh");

    private static (string Bash, string Curl) Tools()
    {
        var bash = SampleProcess.FindOnPath("bash");
        var curl = SampleProcess.FindOnPath("curl");
        Skip.If(bash is null || curl is null, "samples/RestClient/curl.sh needs bash and curl, and one of them is not installed");
        return (bash!, curl!);
    }

    private static string PathWith(string curl) =>
        Path.GetDirectoryName(curl) + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
}
