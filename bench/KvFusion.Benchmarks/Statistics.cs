using KvFusion.Diagnostics.Benchmarks;

namespace KvFusion.Benchmarks;

/// <summary>Small numeric helpers; the median is the engine's, so both CLIs summarize the same way.</summary>
internal static class Statistics
{
    public static double Median(IReadOnlyCollection<double> values) => EngineBenchmark.Median(values);

    /// <summary>a / b, or null when either side is missing or b is not a positive number.</summary>
    public static double? Ratio(double? a, double? b) =>
        a is { } x && b is { } y && y > 0 && double.IsFinite(x) && double.IsFinite(y) ? x / y : null;
}
