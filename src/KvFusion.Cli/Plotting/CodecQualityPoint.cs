namespace KvFusion.Cli.Plotting;

/// <summary>One codec's size and fused quality, as plotted by <see cref="FusionCharts.QualityVersusSize"/>.</summary>
/// <param name="Codec">The codec as written (<c>raw</c>, <c>cachegen:2</c>).</param>
/// <param name="BitsPerValue">Container bits per K or V value.</param>
/// <param name="BlendMeanKl">Blend's mean KL against full with the caches through this codec.</param>
/// <param name="ReuseMeanKl">Reuse's mean KL against full with the caches through this codec.</param>
internal readonly record struct CodecQualityPoint(string Codec, double BitsPerValue, double BlendMeanKl, double ReuseMeanKl);
