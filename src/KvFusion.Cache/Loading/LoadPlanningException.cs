namespace KvFusion.Cache.Loading;

/// <summary>A load request the controller cannot plan: malformed, or with a chunk none of whose options can be costed yet.</summary>
public sealed class LoadPlanningException(string message) : Exception(message);
