namespace KvFusion.Cache.Loading;

/// <summary>What the loading controller chose for a request, per chunk, and what it predicted.</summary>
public sealed record LoadReport
{
    /// <summary>Per chunk in prompt order: <c>text</c>, or the level read (<c>cachegen:3@redis</c>); empty when no plan was made.</summary>
    public required IReadOnlyList<string> Choices { get; init; }

    /// <summary>The predicted TTFT of the plan.</summary>
    public TimeSpan? PredictedTtft { get; init; }

    /// <summary>The predicted mean KL the chosen codecs add.</summary>
    public double? PredictedMeanKl { get; init; }

    /// <summary>Whether the plan meets the request's deadline and budget.</summary>
    public bool MeetsGoal { get; init; }

    /// <summary>Why no plan was made (costs not measured yet), or null when one was.</summary>
    public string? Skipped { get; init; }
}
