using KvFusion.SemanticKernel.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel.ChatCompletion;

// Semantic Kernel's own namespace, as its connectors' Add* extensions.
namespace Microsoft.SemanticKernel;

/// <summary>Registers KvFusion in a Semantic Kernel <see cref="IKernelBuilder"/>.</summary>
public static class KvFusionKernelBuilderExtensions
{
    /// <summary>
    /// Registers the in-process KvFusion <see cref="IChatClient"/> (keyed by <paramref name="serviceId"/> when given),
    /// with <paramref name="pipeline"/> adding middleware such as <c>UseKvFusionRetrieval</c>.
    /// </summary>
    public static IKernelBuilder AddKvFusionChatClient(this IKernelBuilder builder, Action<KvFusionOptions>? configure = null, Action<ChatClientBuilder>? pipeline = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var clients = serviceId is null
            ? builder.Services.AddKvFusionChatClient(configure)
            : builder.Services.AddKeyedKvFusionChatClient(serviceId, configure);
        pipeline?.Invoke(clients);
        return builder;
    }

    /// <summary>
    /// Registers KvFusion as the kernel's <see cref="IChatCompletionService"/> (the chat client through
    /// <c>AsChatCompletionService</c>), keyed by <paramref name="serviceId"/> when given.
    /// </summary>
    public static IKernelBuilder AddKvFusionChatCompletion(this IKernelBuilder builder, Action<KvFusionOptions>? configure = null, Action<ChatClientBuilder>? pipeline = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddKvFusionChatClient(configure, pipeline, serviceId);
        if (serviceId is null)
        {
            builder.Services.AddSingleton<IChatCompletionService>(sp => sp.GetRequiredService<IChatClient>().AsChatCompletionService(sp));
        }
        else
        {
            builder.Services.AddKeyedSingleton<IChatCompletionService>(serviceId, (sp, key) => sp.GetRequiredKeyedService<IChatClient>(key).AsChatCompletionService(sp));
        }

        return builder;
    }
}
