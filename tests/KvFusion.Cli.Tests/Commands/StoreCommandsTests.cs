using KvFusion.Cache.Tiers;
using KvFusion.Storage.RocksDb;

namespace KvFusion.Cli.Tests.Commands;

/// <summary>
/// <c>ingest</c>, <c>store stats</c> and <c>store verify</c> as a user runs them: the embedded default (RocksDB under
/// ./data), resuming, verification that finds a bad entry, and settings that are refused by name.
/// </summary>
[Collection(ConsoleCommands.Name)]
public sealed class StoreCommandsTests
{
    [SkippableFact]
    public async Task Ingest_stores_every_chunk_under_data_and_a_second_run_skips_them_all()
    {
        using var work = new TempDirectory();
        var docs = Documents(work);
        var first = await Run(work, "ingest", docs, "--chunk-tokens", "64", "--model", SharedModels.Path("tiny-pydocs"));
        Assert.True(first.ExitCode == 0, first.StandardError);
        var chunks = Column(first.StandardOutput, "chunks");
        Assert.True(chunks >= 4, first.StandardOutput);
        Assert.Equal(chunks, Column(first.StandardOutput, "computed now"));
        Assert.True(Directory.Exists(work.Combine("data")));

        var again = await Run(work, "ingest", docs, "--chunk-tokens", "64", "--model", SharedModels.Path("tiny-pydocs"));
        Assert.True(again.ExitCode == 0, again.StandardError);
        Assert.Equal(0, Column(again.StandardOutput, "computed now"));
        Assert.Equal(chunks, Column(again.StandardOutput, "already stored"));

        var stats = await Run(work, "store", "stats");
        Assert.True(stats.ExitCode == 0, stats.StandardError);
        Assert.Contains("rocksdb", stats.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("default", stats.StandardOutput, StringComparison.Ordinal);

        var verify = await Run(work, "store", "verify");
        Assert.True(verify.ExitCode == 0, verify.StandardError);
        Assert.Contains($"verified {chunks} entries", verify.StandardOutput, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_ingest_of_more_documents_computes_only_the_chunks_not_stored_yet()
    {
        using var work = new TempDirectory();
        var docs = Documents(work);
        var one = Directory.GetFiles(docs).Order(StringComparer.Ordinal).First();
        var part = await Run(work, "ingest", one, "--chunk-tokens", "64", "--model", SharedModels.Path("tiny-pydocs"));
        Assert.True(part.ExitCode == 0, part.StandardError);
        var stored = Column(part.StandardOutput, "computed now");

        var all = await Run(work, "ingest", docs, "--chunk-tokens", "64", "--model", SharedModels.Path("tiny-pydocs"));
        Assert.True(all.ExitCode == 0, all.StandardError);
        Assert.Equal(stored, Column(all.StandardOutput, "already stored"));
        Assert.Equal(Column(all.StandardOutput, "chunks") - stored, Column(all.StandardOutput, "computed now"));
    }

    [SkippableFact]
    public async Task An_ingest_killed_mid_run_resumes_and_leaves_nothing_corrupt()
    {
        using var work = new TempDirectory();
        var docs = Documents(work, count: 12);
        var model = SharedModels.Path("tiny-pydocs");
        var start = new System.Diagnostics.ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = work.Path,
        };
        foreach (var a in new[] { "exec", Path.Combine(AppContext.BaseDirectory, "kvfusion.dll"), "ingest", docs, "--chunk-tokens", "64", "--model", model })
        {
            start.ArgumentList.Add(a);
        }

        using (var process = System.Diagnostics.Process.Start(start)!)
        {
            // Killed (SIGKILL) once the progress line shows some chunks computed: hundreds of chunks take many seconds.
            var progress = new System.Text.RegularExpressions.Regex(@"(\d+) computed");
            var killed = false;
            _ = process.StandardOutput.ReadToEndAsync();
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                if (progress.Match(line) is { Success: true } m && int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 10)
                {
                    process.Kill();
                    killed = true;
                    break;
                }
            }

            await process.WaitForExitAsync();
            Assert.True(killed, $"ingest exited with {process.ExitCode} before its progress showed 10 chunks computed");
        }

        var resumed = await Run(work, "ingest", docs, "--chunk-tokens", "64", "--model", model);
        Assert.True(resumed.ExitCode == 0, resumed.StandardError);
        var chunks = Column(resumed.StandardOutput, "chunks");
        Assert.Equal(chunks, Column(resumed.StandardOutput, "computed now") + Column(resumed.StandardOutput, "already stored"));
        var verify = await Run(work, "store", "verify");
        Assert.True(verify.ExitCode == 0, verify.StandardError);
        Assert.Contains($"verified {chunks} entries", verify.StandardOutput, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Verify_names_a_bad_entry_exits_1_and_removes_it_when_asked()
    {
        using var work = new TempDirectory();
        var docs = Documents(work);
        var ingest = await Run(work, "ingest", docs, "--chunk-tokens", "64", "--model", SharedModels.Path("tiny-pydocs"), "--store", work.Combine("kv"));
        Assert.True(ingest.ExitCode == 0, ingest.StandardError);
        TierKey victim;
        await using (var tier = new RocksDbTier(new RocksDbTierOptions { Path = work.Combine("kv") }))
        {
            victim = await tier.ListAsync().FirstAsync();
            var blob = (await tier.GetAsync(victim))!.Value.ToArray();
            blob[blob.Length / 2] ^= 0x40;
            await tier.PutAsync(victim, blob);
        }

        var verify = await Run(work, "store", "verify", "--store", work.Combine("kv"));
        Assert.Equal(1, verify.ExitCode);
        Assert.Contains(victim.Key.Id, verify.StandardError, StringComparison.Ordinal);
        Assert.Contains("1 of", verify.StandardError, StringComparison.Ordinal);

        var repair = await Run(work, "store", "verify", "--store", work.Combine("kv"), "--remove-bad");
        Assert.Equal(1, repair.ExitCode);
        var after = await Run(work, "store", "verify", "--store", work.Combine("kv"));
        Assert.True(after.ExitCode == 0, after.StandardError);
    }

    [SkippableFact]
    public async Task Ingest_into_a_redis_cluster_is_found_by_stats_and_verify_and_a_second_run_skips_it()
    {
        const string variable = "KVF_TEST_REDIS_CLUSTER";
        var address = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } set ? set : "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103";
        Skip.IfNot(await RedisServerProcess.AnswersPingAsync(address.Split(',')[0], TimeSpan.FromSeconds(2)),
            $"{variable}: no Redis answers at {address} (start the servers with scripts/ci/redis-up.sh, or set {variable})");
        using var work = new TempDirectory();
        var docs = Documents(work);
        var prefix = "kvcli-" + Guid.NewGuid().ToString("N")[..10];
        var env = new Dictionary<string, string> { ["KVFUSION_Storage__Redis__KeyPrefix"] = prefix };
        var store = "redis://" + address;
        try
        {
            var ingest = await Kvfusion.RunInAsync(work.Path, env, "ingest", docs, "--chunk-tokens", "64", "--store", store, "--model", SharedModels.Path("tiny-pydocs"));
            Assert.True(ingest.ExitCode == 0, ingest.StandardError);
            var chunks = Column(ingest.StandardOutput, "computed now");
            Assert.False(Directory.Exists(work.Combine("data")));

            var stats = await Kvfusion.RunInAsync(work.Path, env, "store", "stats", "--store", store);
            Assert.True(stats.ExitCode == 0, stats.StandardError);
            Assert.Contains("redis", stats.StandardOutput, StringComparison.Ordinal);
            var verify = await Kvfusion.RunInAsync(work.Path, env, "store", "verify", "--store", store);
            Assert.True(verify.ExitCode == 0, verify.StandardError);
            Assert.Contains($"verified {chunks} entries", verify.StandardOutput, StringComparison.Ordinal);

            var again = await Kvfusion.RunInAsync(work.Path, env, "ingest", docs, "--chunk-tokens", "64", "--store", store, "--model", SharedModels.Path("tiny-pydocs"));
            Assert.True(again.ExitCode == 0, again.StandardError);
            Assert.Equal(chunks, Column(again.StandardOutput, "already stored"));
        }
        finally
        {
            await using var tier = await KvFusion.Storage.Redis.RedisTier.ConnectAsync(new KvFusion.Storage.Redis.RedisTierOptions { Configuration = address, KeyPrefix = prefix });
            await foreach (var key in tier.ListAsync())
            {
                await tier.RemoveAsync(key);
            }
        }
    }

    [Theory]
    [InlineData("""{ "Storage": { "Memory": { "ByteBudget": 0 } } }""", null, "Storage:Memory:ByteBudget")]
    [InlineData("""{ "Storage": { "Tiers": "floppy" } }""", null, "Storage:Tiers")]
    [InlineData("""{ "Storage": { "Tenant": "Not A Tenant" } }""", null, "Storage:Tenant")]
    [InlineData("""{ "Storage": { "Codec": "zip" } }""", null, "Storage:Codec")]
    [InlineData("""{ "Storage": { "Tiers": "redis" } }""", null, "Storage:Redis:Configuration")]
    [InlineData("""{ "Storage": { "Manager": { "OperationTimeout": "soon" } } }""", null, "Storage:Manager:OperationTimeout")]
    [InlineData("""{ "Storage": { "RocksDb": { "Colour": "blue" } } }""", null, "Colour")]
    [InlineData("{}", "KVFUSION_Storage__RocksDb__ByteBudget=-5", "Storage:RocksDb:ByteBudget")]
    public async Task A_bad_setting_is_refused_at_start_by_its_name(string appsettings, string? variable, string named)
    {
        using var work = new TempDirectory();
        File.WriteAllText(work.Combine("appsettings.json"), appsettings);
        var env = new Dictionary<string, string>();
        if (variable is not null)
        {
            var eq = variable.IndexOf('=', StringComparison.Ordinal);
            env[variable[..eq]] = variable[(eq + 1)..];
        }

        var run = await Kvfusion.RunInAsync(work.Path, env, "store", "stats");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains(named, run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(work.Combine("data")));
    }

    [Theory]
    [InlineData("redis://", "--store")]
    [InlineData("redis://host:notaport", "--store")]
    public async Task A_malformed_store_address_is_refused(string store, string named)
    {
        using var work = new TempDirectory();
        var run = await Kvfusion.RunInAsync(work.Path, null, "store", "stats", "--store", store);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains(named, run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ingest_of_a_path_that_does_not_exist_names_it()
    {
        using var work = new TempDirectory();
        var run = await Kvfusion.RunInAsync(work.Path, null, "ingest", work.Combine("absent.txt"));
        run.AssertFailedWith($"{work.Combine("absent.txt")}: not found.");
    }

    private static Task<Kvfusion> Run(TempDirectory work, params string[] args) => Kvfusion.RunInAsync(work.Path, null, args);

    /// <summary>Short documents (three by default) from the shared corpus, as plain files.</summary>
    private static string Documents(TempDirectory work, int count = 3)
    {
        var corpus = SharedData.Path("corpus", "pydocs.tar.xz");
        var docs = work.Combine("docs");
        Directory.CreateDirectory(docs);
        var documents = new Cache.Evaluation.CorpusReader(corpus).ReadAll();
        foreach (var d in documents.Where(d => d.Text.Length is > 1500 and < 4000).Take(count))
        {
            File.WriteAllText(Path.Combine(docs, Path.GetFileName(d.Path)), d.Text);
        }

        return docs;
    }

    /// <summary>The number in the ingest table's <paramref name="column"/> (the first data row).</summary>
    private static int Column(string table, string column)
    {
        var lines = table.Split('\n');
        var header = Array.FindIndex(lines, l => l.Contains(column, StringComparison.Ordinal) && l.Contains('│'));
        Assert.True(header >= 0, $"no column '{column}' in:\n{table}");
        var names = lines[header].Split('│').Select(c => c.Trim()).ToList();
        var row = lines.Skip(header + 1).First(l => l.Contains('│') && !l.Contains('─'));
        var cells = row.Split('│').Select(c => c.Trim()).ToList();
        return int.Parse(cells[names.IndexOf(column)].Replace(",", string.Empty, StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);
    }
}
