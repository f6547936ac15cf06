using KvFusion.Cache.Fusion;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Options;

namespace KvFusion.SemanticKernel.Hosting;

/// <summary>Checks <see cref="KvFusionOptions"/>, naming each bad setting.</summary>
public sealed class KvFusionOptionsValidator : IValidateOptions<KvFusionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, KvFusionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.Model is { } model && (string.IsNullOrWhiteSpace(model) || !File.Exists(Path.Combine(model, "config.json"))))
        {
            failures.Add($"KvFusion:Model '{model}' is not a model directory (no config.json there).");
        }

        if (options.Threads is { } threads && threads < 1)
        {
            failures.Add($"KvFusion:Threads must be at least 1, got {threads}.");
        }

        if (!Enum.IsDefined(options.Mode))
        {
            failures.Add($"KvFusion:Mode {(int)options.Mode} is not one of Full, Prefix, Reuse, Blend.");
        }

        if (!(options.RecomputeRatio > 0 && options.RecomputeRatio <= 1))
        {
            failures.Add($"KvFusion:RecomputeRatio must be in (0, 1], got {options.RecomputeRatio}.");
        }

        if (options.DefaultMaxOutputTokens < 1)
        {
            failures.Add($"KvFusion:DefaultMaxOutputTokens must be at least 1, got {options.DefaultMaxOutputTokens}.");
        }

        if (options.Storage is null)
        {
            failures.Add("KvFusion:Storage must be set.");
        }
        else
        {
            var storage = new KvStorageOptionsValidator().Validate(name, options.Storage);
            if (storage.Failed)
            {
                foreach (var failure in storage.Failures)
                {
                    failures.Add("KvFusion:" + failure);
                }
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
