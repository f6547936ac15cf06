using KvFusion.Cache.Fusion;
using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>
/// The typed result of an in-process chat call: the <c>RawRepresentation</c> of <see cref="KvFusionChatClient"/>'s
/// <see cref="ChatResponse"/>, of its message and of its last streaming update.
/// </summary>
/// <param name="Text">The generated text, cut at a stop sequence.</param>
/// <param name="FinishReason">Stop (end of sequence or a stop sequence) or Length (the token limit or the context).</param>
/// <param name="Report">The client's report (also in the additional properties).</param>
/// <param name="Fusion">The engine's own report of the fusion: stage times, selection, per-layer counts.</param>
public sealed record KvFusionChatResult(string Text, ChatFinishReason FinishReason, KvFusionReport Report, FusionReport Fusion);
