using System.Diagnostics;
using System.Text;
using KvFusion.Cache.Container;
using KvFusion.Cache.Tiers;
using static KvFusion.Storage.RocksDb.Tests.TestData;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>
/// The index is the database: entries are found again after a close, after another process wrote them, and after
/// that process was killed with SIGKILL in the middle of its writes.
/// </summary>
public sealed class RocksDbTierRestartTests
{
    [Fact]
    public async Task Reopening_the_same_folder_finds_every_entry_of_every_model_and_tenant()
    {
        using var temp = new TempDirectory();
        var written = new Dictionary<TierKey, byte[]>();
        await using (var tier = Open(temp))
        {
            foreach (var ns in new[] { AliceA, BobA, AliceB })
            {
                for (var i = 0; i < 10; i++)
                {
                    var key = At(ns, i);
                    written[key] = Container(i + (ns.Tenant.Length * 100), model: ns.ModelFingerprint);
                    await tier.PutAsync(key, written[key]);
                }
            }

            await tier.RemoveAsync(At(BobA, 3));
            written.Remove(At(BobA, 3));
        }

        await using var reopened = Open(temp);

        Assert.Equal(written.Keys.ToHashSet(), (await ListAsync(reopened)).ToHashSet());
        foreach (var (key, blob) in written)
        {
            Assert.Equal(blob, (await reopened.GetAsync(key))!.Value.ToArray());
        }

        var stats = await reopened.GetStatisticsAsync();
        Assert.Equal(written.Count, stats.Entries);
        Assert.Equal(written.Values.Sum(b => (long)b.Length), stats.Bytes);
    }

    [Fact]
    public async Task Entries_another_process_wrote_are_found_after_it_exits()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("db");
        using var writer = new CrashWriter(path, count: 25, sync: false);
        var acked = await writer.ReadAcksUntilExitAsync();

        Assert.Equal(25, acked.Count);
        await using var tier = new RocksDbTier(new RocksDbTierOptions { Path = path });
        await AssertAllIntactAsync(tier, acked);
        Assert.Equal(25, (await tier.GetStatisticsAsync()).Entries);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_acknowledged_write_survives_a_SIGKILL_and_nothing_stored_is_corrupt(bool syncWrites)
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("db");
        List<TierKey> acked;
        using (var writer = new CrashWriter(path, count: 0, sync: syncWrites))
        {
            acked = await writer.ReadAcksThenKillAsync(acks: 40);
        }

        Assert.True(acked.Count >= 40);
        await using var tier = new RocksDbTier(new RocksDbTierOptions { Path = path });
        await AssertAllIntactAsync(tier, acked);
    }

    /// <summary>Every acknowledged key is there and verifies, and so does everything else stored; the totals agree.</summary>
    private static async Task AssertAllIntactAsync(RocksDbTier tier, List<TierKey> acked)
    {
        foreach (var key in acked)
        {
            var blob = await tier.GetAsync(key);
            Assert.True(blob is not null, $"acknowledged {key} is missing");
            Assert.Equal(key.Key, KvContainerReader.Verify(blob.Value.Span).Key);
        }

        var listed = await ListAsync(tier);
        Assert.Superset(acked.ToHashSet(), listed.ToHashSet());
        long bytes = 0;
        foreach (var key in listed)
        {
            var blob = await tier.GetAsync(key);
            Assert.Equal(key.Key, KvContainerReader.Verify(blob!.Value.Span).Key);
            bytes += blob.Value.Length;
        }

        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(listed.Count, stats.Entries);
        Assert.Equal(bytes, stats.Bytes);
    }

    /// <summary>The crash writer (tests/KvFusion.Storage.RocksDb.CrashWriter) as a child process.</summary>
    private sealed class CrashWriter : IDisposable
    {
        // A guard against a hung child, not a measurement: the writer needs a few seconds at most.
        private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

        private readonly Process _process;
        private readonly StringBuilder _errors = new();
        private readonly CancellationTokenSource _patience = new(Patience);

        public CrashWriter(string path, int count, bool sync)
        {
            var start = new ProcessStartInfo(DotnetHost())
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { CrashWriterPath, path, AliceA.Tenant, AliceA.ModelFingerprint, count.ToString(System.Globalization.CultureInfo.InvariantCulture), "7", sync ? "true" : "false" })
            {
                start.ArgumentList.Add(arg);
            }

            _process = Process.Start(start) ?? throw new InvalidOperationException("The crash writer did not start.");
            _process.ErrorDataReceived += (_, e) =>
            {
                lock (_errors)
                {
                    _errors.AppendLine(e.Data);
                }
            };
            _process.BeginErrorReadLine();
        }

        public async Task<List<TierKey>> ReadAcksUntilExitAsync()
        {
            var acked = new List<TierKey>();
            await ReadAsync(acked, int.MaxValue);
            await _process.WaitForExitAsync(_patience.Token);
            Assert.True(_process.ExitCode == 0, $"the writer exited with {_process.ExitCode}: {Errors}");
            return acked;
        }

        public async Task<List<TierKey>> ReadAcksThenKillAsync(int acks)
        {
            var acked = new List<TierKey>();
            await ReadAsync(acked, acks);
            Assert.True(acked.Count >= acks, $"the writer stopped after {acked.Count} acks: {Errors}");
            // SIGKILL on Linux: no finalizers, no flush, no close of the database.
            _process.Kill();
            await _process.WaitForExitAsync(_patience.Token);
            // Acks printed before the kill but not read yet were acknowledged all the same.
            await ReadAsync(acked, int.MaxValue);
            return acked;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            _process.Dispose();
            _patience.Dispose();
        }

        private string Errors
        {
            get
            {
                lock (_errors)
                {
                    return _errors.ToString();
                }
            }
        }

        private async Task ReadAsync(List<TierKey> acked, int until)
        {
            while (acked.Count < until && await _process.StandardOutput.ReadLineAsync(_patience.Token) is { } line)
            {
                if (line == "done")
                {
                    continue;
                }

                Assert.StartsWith("ack ", line, StringComparison.Ordinal);
                acked.Add(ParseKey(line["ack ".Length..]));
            }
        }

        private static TierKey ParseKey(string text)
        {
            var parts = text.Split('/', 3);
            Assert.True(KvEntryName.TryParse(parts[2], out var key), $"unparsable ack '{text}'");
            return new TierKey(new KvNamespace(parts[0], parts[1]), key.Value);
        }

        private static string DotnetHost()
        {
            var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(host) && File.Exists(host))
            {
                return host;
            }

            var self = Environment.ProcessPath;
            return self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
        }
    }
}
