using System.Text.Json;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.SafeTensors;

/// <summary>
/// The weights of a model directory: <c>model.safetensors</c>, or the shards named by
/// <c>model.safetensors.index.json</c>. Every file is memory-mapped; nothing is copied.
/// </summary>
internal sealed class SafeTensorsCheckpoint : IDisposable
{
    /// <summary>Name of the single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>Name of the sharded checkpoint index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, SafeTensorsFile> _byTensor;

    private SafeTensorsCheckpoint(List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> byTensor)
    {
        _files = files;
        _byTensor = byTensor;
    }

    /// <summary>The weight files in a stable order (for fingerprinting).</summary>
    public IReadOnlyList<string> FilePaths => _files.Select(f => f.Path).ToList();

    /// <summary>Opens the checkpoint of a model directory.</summary>
    /// <exception cref="ModelLoadException">No weights, a missing shard, or a corrupt file.</exception>
    public static SafeTensorsCheckpoint Open(string directory)
    {
        var single = Path.Combine(directory, SingleFileName);
        var index = Path.Combine(directory, IndexFileName);
        var files = new List<SafeTensorsFile>();
        try
        {
            if (File.Exists(index))
            {
                foreach (var shard in ReadShardNames(index))
                {
                    files.Add(SafeTensorsFile.Open(Path.Combine(directory, shard)));
                }
            }
            else if (File.Exists(single))
            {
                files.Add(SafeTensorsFile.Open(single));
            }
            else
            {
                throw new ModelLoadException($"No weights in {directory}: expected {SingleFileName} or {IndexFileName}.") { FilePath = directory };
            }

            var byTensor = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var f in files)
            {
                foreach (var name in f.TensorNames)
                {
                    if (!byTensor.TryAdd(name, f))
                    {
                        throw new ModelLoadException($"Tensor '{name}' appears in both {byTensor[name].Path} and {f.Path}.") { FilePath = f.Path, TensorName = name };
                    }
                }
            }

            return new SafeTensorsCheckpoint(files, byTensor);
        }
        catch
        {
            foreach (var f in files)
            {
                f.Dispose();
            }

            throw;
        }
    }

    /// <summary>Whether a tensor of that name exists.</summary>
    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <summary>Gets a tensor by name.</summary>
    /// <exception cref="ModelLoadException">The tensor is missing.</exception>
    public SafeTensor Get(string name) => _byTensor.TryGetValue(name, out var f)
        ? f.Get(name)
        : throw new ModelLoadException($"Tensor '{name}' is missing from the checkpoint ({string.Join(", ", _files.Select(x => Path.GetFileName(x.Path)))}).") { TensorName = name };

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var f in _files)
        {
            f.Dispose();
        }
    }

    private static List<string> ReadShardNames(string indexPath)
    {
        using var doc = ModelJson.ParseFile(indexPath);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw ModelLoadException.InFile(indexPath, $"must be a JSON object, got {ModelJson.Describe(doc.RootElement)}.");
        }

        var map = ModelJson.OptionalObject(doc.RootElement, "weight_map", indexPath)
            ?? throw ModelLoadException.InJson(indexPath, "weight_map", "is missing; it maps each tensor to its shard.");
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
        {
            var where = $"weight_map.{p.Name}";
            var shard = p.Value.ValueKind == JsonValueKind.String
                ? p.Value.GetString()!
                : throw ModelJson.WrongKind(indexPath, where, "a shard file name", p.Value);
            if (shard.Length == 0 || shard.Contains('/', StringComparison.Ordinal) || shard.Contains('\\', StringComparison.Ordinal) || shard.Contains("..", StringComparison.Ordinal))
            {
                throw ModelLoadException.InJson(indexPath, where, $"names shard '{shard}'; it must be a file name in the model directory.");
            }

            shards.Add(shard);
        }

        return [.. shards];
    }
}
