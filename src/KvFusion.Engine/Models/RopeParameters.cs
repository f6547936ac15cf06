namespace KvFusion.Engine.Models;

/// <summary>Rotary position embedding settings, from <c>rope_theta</c>/<c>rope_scaling</c> or <c>rope_parameters</c>.</summary>
public sealed record RopeParameters
{
    /// <summary>The base θ.</summary>
    public required double Theta { get; init; }

    /// <summary>"default" or "llama3".</summary>
    public string RopeType { get; init; } = "default";

    /// <summary>Llama 3: scaling factor.</summary>
    public double Factor { get; init; } = 1.0;

    /// <summary>Llama 3: low-frequency factor.</summary>
    public double LowFreqFactor { get; init; } = 1.0;

    /// <summary>Llama 3: high-frequency factor.</summary>
    public double HighFreqFactor { get; init; } = 4.0;

    /// <summary>Llama 3: the context length the base model was trained with.</summary>
    public int OriginalMaxPositionEmbeddings { get; init; } = 8192;

    /// <summary>
    /// The inverse frequencies for a rotary dimension of <paramref name="headDim"/> (headDim/2 values), as
    /// transformers computes them.
    /// </summary>
    public float[] ComputeInverseFrequencies(int headDim)
    {
        var half = headDim / 2;
        var inv = new float[half];
        for (var i = 0; i < half; i++)
        {
            // transformers computes these in float32: base ** (2i/dim) then the reciprocal.
            var exponent = (float)(2 * i) / headDim;
            inv[i] = 1.0f / (float)Math.Pow(Theta, exponent);
        }

        if (RopeType == "llama3")
        {
            var lowWavelen = OriginalMaxPositionEmbeddings / LowFreqFactor;
            var highWavelen = OriginalMaxPositionEmbeddings / HighFreqFactor;
            for (var i = 0; i < half; i++)
            {
                double f = inv[i];
                var wavelen = 2 * Math.PI / f;
                double scaled = wavelen > lowWavelen ? f / Factor : f;
                if (!(wavelen < highWavelen) && !(wavelen > lowWavelen))
                {
                    var smooth = ((OriginalMaxPositionEmbeddings / wavelen) - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                    scaled = ((1 - smooth) * scaled / Factor) + (smooth * scaled);
                }

                inv[i] = (float)scaled;
            }
        }

        return inv;
    }
}
