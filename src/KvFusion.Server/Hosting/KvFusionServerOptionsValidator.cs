using System.ComponentModel.DataAnnotations;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Hosting;

/// <summary>Checks <see cref="KvFusionServerOptions"/> at start; each failure names its configuration path.</summary>
public sealed class KvFusionServerOptionsValidator : IValidateOptions<KvFusionServerOptions>
{
    /// <summary>Shortest API key accepted.</summary>
    public const int MinKeyLength = 16;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, KvFusionServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        const string root = KvFusionServerOptions.SectionName;
        Annotations(options.Limits, $"{root}:Limits", failures);
        Annotations(options.RateLimit, $"{root}:RateLimit", failures);
        Annotations(options.Queue, $"{root}:Queue", failures);
        Annotations(options.Quality, $"{root}:Quality", failures);
        foreach (var (codec, kl) in options.Loading?.CodecKl ?? [])
        {
            if (!KvCodecSpec.TryParse(codec, out _, out var error))
            {
                failures.Add($"{root}:Loading:CodecKl:{codec}: {error}");
            }
            else if (!(kl >= 0) || !double.IsFinite(kl))
            {
                failures.Add($"{root}:Loading:CodecKl:{codec}: a KL is a finite number of at least 0, got {kl.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
            }
        }
        if (options.Limits.DefaultCompletionTokens > options.Limits.MaxCompletionTokens)
        {
            failures.Add($"{root}:Limits:DefaultCompletionTokens ({options.Limits.DefaultCompletionTokens}) is above {root}:Limits:MaxCompletionTokens ({options.Limits.MaxCompletionTokens}).");
        }

        if (!KvNamespace.IsValidTenant(options.Auth.AnonymousTenant))
        {
            failures.Add($"{root}:Auth:AnonymousTenant '{options.Auth.AnonymousTenant}' is not a valid tenant name.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Auth.Keys.Count; i++)
        {
            var key = options.Auth.Keys[i];
            var path = $"{root}:Auth:Keys:{i}";
            if (key is null)
            {
                failures.Add($"{path} is empty.");
                continue;
            }

            if (string.IsNullOrEmpty(key.Key) || key.Key.Length < MinKeyLength || key.Key.Any(char.IsWhiteSpace))
            {
                failures.Add($"{path}:Key must be at least {MinKeyLength} characters without spaces.");
            }
            else if (!seen.Add(key.Key))
            {
                failures.Add($"{path}:Key repeats an earlier key.");
            }

            if (!KvNamespace.IsValidTenant(key.Tenant))
            {
                failures.Add($"{path}:Tenant '{key.Tenant}' is not a valid tenant name: 1-{KvNamespace.MaxTenantLength} of lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Annotations(object section, string path, List<string> failures)
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(section, new ValidationContext(section), results, validateAllProperties: true))
        {
            foreach (var r in results)
            {
                failures.Add($"{path}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}");
            }
        }
    }
}
