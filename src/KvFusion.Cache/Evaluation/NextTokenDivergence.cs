namespace KvFusion.Cache.Evaluation;

/// <summary>Next-token distributions from logits and the KL divergence between two of them.</summary>
public static class NextTokenDivergence
{
    /// <summary>Writes softmax(<paramref name="logits"/>) into <paramref name="output"/>.</summary>
    public static void Softmax(ReadOnlySpan<float> logits, Span<double> output)
    {
        double max = double.NegativeInfinity;
        foreach (var x in logits)
        {
            max = Math.Max(max, x);
        }

        double sum = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            output[i] = Math.Exp(logits[i] - max);
            sum += output[i];
        }

        for (var i = 0; i < logits.Length; i++)
        {
            output[i] /= sum;
        }
    }

    /// <summary>KL(reference ‖ other) in nats of the distributions the two logit vectors give.</summary>
    public static double Kl(ReadOnlySpan<float> referenceLogits, ReadOnlySpan<float> logits)
    {
        if (referenceLogits.Length != logits.Length)
        {
            throw new ArgumentException($"Logits of {referenceLogits.Length} and {logits.Length} entries cannot be compared.", nameof(logits));
        }

        var p = new double[logits.Length];
        var q = new double[logits.Length];
        Softmax(referenceLogits, p);
        Softmax(logits, q);
        double kl = 0;
        for (var i = 0; i < p.Length; i++)
        {
            if (p[i] > 0)
            {
                kl += p[i] * Math.Log(p[i] / Math.Max(q[i], 1e-300));
            }
        }

        return Math.Max(0, kl);
    }
}
