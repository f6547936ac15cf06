using KvFusion.Engine.Errors;

namespace KvFusion.Engine.Models;

/// <summary>
/// A model directory or one of its files (config.json, the safetensors weights and index, tokenizer.json) that
/// cannot be used: missing, malformed, inconsistent or unsupported. The message names the file and the problem;
/// <see cref="KvFusionException.FilePath"/>, <see cref="JsonPath"/> and <see cref="TensorName"/> carry the
/// location where it is known.
/// </summary>
public sealed class ModelLoadException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public ModelLoadException(string message) : base(message) { }

    /// <summary>Creates the exception with the error that caused it.</summary>
    public ModelLoadException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without a message (prefer the other constructors).</summary>
    public ModelLoadException() : base("The model could not be loaded.") { }

    /// <summary>The JSON field that is wrong (e.g. <c>architectures[0]</c>, <c>added_tokens[3].content</c>), or null.</summary>
    public string? JsonPath { get; init; }

    /// <summary>The tensor the error is about, or null.</summary>
    public string? TensorName { get; init; }

    /// <summary>An error in a JSON file: the message is <c>FILE: 'PATH' problem</c> (the problem reads on from the field).</summary>
    public static ModelLoadException InJson(string filePath, string jsonPath, string problem, Exception? innerException = null) =>
        innerException is null
            ? new($"{filePath}: '{jsonPath}' {problem}") { FilePath = filePath, JsonPath = jsonPath }
            : new($"{filePath}: '{jsonPath}' {problem}", innerException) { FilePath = filePath, JsonPath = jsonPath };

    /// <summary>An error about one tensor of a weights file: the message is <c>FILE: tensor 'NAME' problem</c>.</summary>
    public static ModelLoadException InTensor(string filePath, string tensorName, string problem) =>
        new($"{filePath}: tensor '{tensorName}' {problem}") { FilePath = filePath, TensorName = tensorName };

    /// <summary>An error about a whole file: the message is <c>FILE: problem</c>.</summary>
    public static ModelLoadException InFile(string filePath, string problem, Exception? innerException = null) =>
        innerException is null
            ? new($"{filePath}: {problem}") { FilePath = filePath }
            : new($"{filePath}: {problem}", innerException) { FilePath = filePath };
}
