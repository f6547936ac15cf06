namespace KvFusion.Hub;

/// <summary>How far a model download has come.</summary>
/// <param name="File">The file being downloaded (relative to the model directory).</param>
/// <param name="FileBytes">Bytes of that file on disk.</param>
/// <param name="FileLength">That file's size on the hub.</param>
/// <param name="TotalBytes">Bytes of all the model's files on disk.</param>
/// <param name="TotalLength">The size of all the model's files.</param>
public readonly record struct ModelDownloadProgress(string File, long FileBytes, long FileLength, long TotalBytes, long TotalLength);
