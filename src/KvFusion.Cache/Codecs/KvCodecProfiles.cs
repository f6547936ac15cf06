using KvFusion.Cache.Codecs.CacheGen;

namespace KvFusion.Cache.Codecs;

/// <summary>
/// The codec profiles a process knows: per model and cachegen level, the entropy statistics measured once, so that
/// containers need not carry them. Writers code with the profile of the entry's model and level when there is one
/// (else the container carries its own statistics); readers find a container's profile by its id. Thread-safe.
/// </summary>
public sealed class KvCodecProfiles
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, CacheGenProfile> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Model, int Level), CacheGenProfile> _byModel = [];

    /// <summary>A set with no profiles: every container carries its own statistics.</summary>
    public static KvCodecProfiles None { get; } = new();

    /// <summary>Profiles held.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _byId.Count;
        }
    }

    /// <summary>Adds a profile; it becomes the one writers use for its model and level.</summary>
    public void Add(CacheGenProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (ReferenceEquals(this, None))
            throw new InvalidOperationException("The empty profile set cannot be changed; create a KvCodecProfiles.");
        lock (_lock)
        {
            _byId[profile.Id] = profile;
            _byModel[(profile.ModelFingerprint, profile.Level)] = profile;
        }
    }

    /// <summary>The profile writers use for a model and cachegen level, or null.</summary>
    public CacheGenProfile? Find(string modelFingerprint, int level)
    {
        lock (_lock)
            return _byModel.GetValueOrDefault((modelFingerprint, level));
    }

    /// <summary>The profile with this id (lowercase hex), or null.</summary>
    public CacheGenProfile? FindById(string id)
    {
        lock (_lock)
            return _byId.GetValueOrDefault(id);
    }

    /// <summary>Loads every <c>*.kvprof</c> file of a directory (none when it does not exist).</summary>
    /// <exception cref="KvCodecException">A file is not a valid profile (the message names it).</exception>
    public static KvCodecProfiles LoadDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var profiles = new KvCodecProfiles();
        if (!Directory.Exists(directory))
            return profiles;
        var files = Directory.GetFiles(directory, "*" + CacheGenProfile.FileExtension);
        Array.Sort(files, StringComparer.Ordinal);
        foreach (var file in files)
        {
            try
            {
                profiles.Add(CacheGenProfile.Read(File.ReadAllBytes(file)));
            }
            catch (KvCodecException e)
            {
                throw new KvCodecException($"{file}: {e.Message}", e);
            }
        }

        return profiles;
    }

    /// <summary>Writes a profile into a directory as <c>{model}-cachegen-{level}.kvprof</c> (atomically) and returns the path.</summary>
    public static string Save(CacheGenProfile profile, string directory)
    {
        ArgumentNullException.ThrowIfNull(profile);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"{profile.ModelFingerprint[..Math.Min(16, profile.ModelFingerprint.Length)]}-cachegen-{profile.Level}{CacheGenProfile.FileExtension}");
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, profile.ToMemory().ToArray());
        File.Move(temp, path, overwrite: true);
        return path;
    }
}
