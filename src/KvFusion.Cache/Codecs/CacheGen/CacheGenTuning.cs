using System.Globalization;
using System.Text.RegularExpressions;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>
/// A cachegen quantization other than a level's: the levels B of K and V (2B + 1 symbols), optionally more K levels in
/// CacheGen's early layer group (the first third), and per-channel instead of per-token scales. For measurements
/// (<c>kvfusion bench codec --variants</c>): a container records its quantization, so any reader decodes a tuned one,
/// and a profile applies only to the quantization it was built for.
/// </summary>
/// <param name="KeyLevels">Levels of K, 1..127.</param>
/// <param name="ValueLevels">Levels of V, 1..127.</param>
public sealed partial record CacheGenTuning(int KeyLevels, int ValueLevels)
{
    /// <summary>K levels in the early layer group (the first third of the layers), or null for <see cref="KeyLevels"/>.</summary>
    public int? EarlyKeyLevels { get; init; }

    /// <summary>One K scale per channel over the tokens (KIVI) instead of one per token.</summary>
    public bool KeyPerChannel { get; init; }

    /// <summary>One V scale per channel instead of one per token.</summary>
    public bool ValuePerChannel { get; init; }

    /// <summary>The short name: <c>k8v3</c>, <c>k4v3:early8</c>, <c>k8v3:kch</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"k{KeyLevels}v{ValueLevels}") +
        (EarlyKeyLevels is { } e ? string.Create(CultureInfo.InvariantCulture, $":early{e}") : string.Empty) +
        (KeyPerChannel ? ":kch" : string.Empty) + (ValuePerChannel ? ":vch" : string.Empty);

    /// <summary>Parses the short name <see cref="ToString"/> writes.</summary>
    /// <exception cref="FormatException">It is not one, or a level is outside 1..127.</exception>
    public static CacheGenTuning Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = ShortName().Match(text.Trim());
        if (!m.Success)
            throw new FormatException($"'{text}' is not a cachegen variant; write k<K levels>v<V levels>[:early<K levels>][:kch][:vch], e.g. k8v3 or k4v3:early8:kch.");
        var tuning = new CacheGenTuning(Level(m.Groups[1].Value), Level(m.Groups[2].Value))
        {
            EarlyKeyLevels = m.Groups[3].Success ? Level(m.Groups[3].Value) : null,
            KeyPerChannel = m.Groups[4].Success,
            ValuePerChannel = m.Groups[5].Success,
        };
        return tuning;

        int Level(string digits) =>
            int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is >= 1 and <= CacheGenParameters.MaxLevels
                ? v
                : throw new FormatException($"'{text}': levels are 1..{CacheGenParameters.MaxLevels}.");
    }

    internal CacheGenParameters ToParameters(int layerCount)
    {
        var parameters = CacheGenParameters.ForLevel(1, layerCount);
        var early = CacheGenParameters.KeyEarlyLayers(layerCount);
        for (var l = 0; l < layerCount; l++)
        {
            parameters.KeyLevels[l] = (byte)(l < early && EarlyKeyLevels is { } e ? e : KeyLevels);
            parameters.ValueLevels[l] = (byte)ValueLevels;
        }

        return parameters with
        {
            KeyScaling = KeyPerChannel ? CacheGenScaling.PerChannel : CacheGenScaling.PerToken,
            ValueScaling = ValuePerChannel ? CacheGenScaling.PerChannel : CacheGenScaling.PerToken,
        };
    }

    [GeneratedRegex(@"^k(\d{1,3})v(\d{1,3})(?::early(\d{1,3}))?(:kch)?(:vch)?$", RegexOptions.CultureInvariant)]
    private static partial Regex ShortName();
}
