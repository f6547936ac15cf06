using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvFusion.Storage.Hosting;

/// <summary>Where the storage settings come from, and their registration with dependency injection.</summary>
public static class KvStorageConfiguration
{
    /// <summary>The prefix of the environment variables read (<c>KVFUSION_Storage__Tiers=rocksdb,redis</c>).</summary>
    public const string EnvironmentPrefix = "KVFUSION_";

    /// <summary>
    /// The configuration a process starts with: <c>appsettings.json</c> in <paramref name="directory"/> (the current
    /// folder when null; optional), then environment variables with <see cref="EnvironmentPrefix"/>, then
    /// <paramref name="overrides"/> (command-line options), each over the one before.
    /// </summary>
    public static IConfigurationRoot Build(string? directory = null, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    {
        var builder = new ConfigurationBuilder()
            .SetBasePath(Path.GetFullPath(directory ?? Directory.GetCurrentDirectory()))
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables(EnvironmentPrefix);
        if (overrides is not null)
        {
            builder.AddInMemoryCollection(overrides);
        }

        return builder.Build();
    }

    /// <summary>Binds and validates the <c>Storage</c> section of <paramref name="configuration"/>.</summary>
    /// <exception cref="OptionsValidationException">A setting is invalid or cannot be read (each named by its path).</exception>
    public static KvStorageOptions Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new KvStorageOptions();
        try
        {
            configuration.GetSection(KvStorageOptions.SectionName).Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            // The binder's message names the key and the value it could not convert, or the unknown key.
            throw new OptionsValidationException(KvStorageOptions.SectionName, typeof(KvStorageOptions), [e.InnerException is { } inner ? $"{e.Message} {inner.Message}" : e.Message]);
        }

        var result = new KvStorageOptionsValidator().Validate(null, options);
        return result.Failed ? throw new OptionsValidationException(KvStorageOptions.SectionName, typeof(KvStorageOptions), result.Failures) : options;
    }

    /// <summary>
    /// Registers <see cref="KvStorageOptions"/> bound from <paramref name="configuration"/>'s <c>Storage</c> section,
    /// validated by <see cref="KvStorageOptionsValidator"/> (at start, when the host validates on start).
    /// </summary>
    public static IServiceCollection AddKvFusionStorageOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<KvStorageOptions>()
            .Bind(configuration.GetSection(KvStorageOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<KvStorageOptions>, KvStorageOptionsValidator>();
        return services;
    }
}
