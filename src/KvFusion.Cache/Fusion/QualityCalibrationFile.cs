using System.Text.Json;
using KvFusion.Engine.Models;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// The JSON file of a <see cref="QualityCalibration"/>, keyed by the fingerprint of the model it was fitted on: a
/// calibration maps that model's signal, and is refused for another.
/// </summary>
public static class QualityCalibrationFile
{
    /// <summary>The format version written and read.</summary>
    public const int FormatVersion = 1;

    /// <summary>Writes <paramref name="calibration"/>, fitted on <paramref name="cases"/> cases of <paramref name="model"/>.</summary>
    public static void Save(string path, QualityCalibration calibration, string model, ModelFingerprint fingerprint, int cases)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(fingerprint);
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteNumber("format", FormatVersion);
        w.WriteString("model", model);
        w.WriteString("model_fingerprint", fingerprint.Model);
        w.WriteString("tokenizer_fingerprint", fingerprint.Tokenizer);
        w.WriteNumber("cases", cases);
        w.WriteNumber("scale", calibration.Scale);
        w.WriteNumber("exponent", calibration.Exponent);
        w.WriteEndObject();
    }

    /// <summary>Reads a calibration; with <paramref name="expected"/>, refuses one fitted on another model.</summary>
    /// <exception cref="FusionException">Missing, malformed, of another format or model (<see cref="FusionError.InvalidRequest"/>).</exception>
    public static QualityCalibration Load(string path, ModelFingerprint? expected = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        QualityCalibration calibration;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            var format = root.GetProperty("format").GetInt32();
            if (format != FormatVersion)
            {
                throw new FusionException(FusionError.InvalidRequest, $"{path}: quality calibration format {format} is not the supported {FormatVersion}.");
            }

            if (expected is not null)
            {
                var fitted = new ModelFingerprint(root.GetProperty("model_fingerprint").GetString() ?? string.Empty, root.GetProperty("tokenizer_fingerprint").GetString() ?? string.Empty);
                if (fitted != expected)
                {
                    throw new FusionException(FusionError.InvalidRequest,
                        $"{path}: the quality calibration was fitted on {root.GetProperty("model").GetString()} ({fitted.Model}), not this model ({expected.Model}); fit one with kvfusion eval fusion --calibrate.");
                }
            }

            calibration = new QualityCalibration(root.GetProperty("scale").GetDouble(), root.GetProperty("exponent").GetDouble());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new FusionException(FusionError.InvalidRequest, $"{path}: not a readable quality calibration ({e.Message}).");
        }

        try
        {
            calibration.Validate();
        }
        catch (InvalidOperationException e)
        {
            throw new FusionException(FusionError.InvalidRequest, $"{path}: {e.Message}");
        }

        return calibration;
    }
}
