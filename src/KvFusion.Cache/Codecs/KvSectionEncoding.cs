namespace KvFusion.Cache.Codecs;

/// <summary>What encoding one section wrote.</summary>
/// <param name="BytesWritten">Payload bytes.</param>
/// <param name="StatisticsBytes">Of those, the bytes that are entropy statistics (tables or their parameters), for
/// the bench's statistics share; 0 for codecs without entropy coding.</param>
internal readonly record struct KvSectionEncoding(int BytesWritten, int StatisticsBytes);
