namespace LrmNative.Training;

/// <summary>
/// SplitMix64 (Steele, Lea &amp; Flood 2014): a small, fast generator whose whole state is one 64-bit word, so a
/// checkpoint stores it exactly and a resumed run draws the same numbers. Not for cryptography.
/// </summary>
internal sealed class TrainingRandom
{
    /// <summary>A generator with the given state.</summary>
    public TrainingRandom(ulong state) => State = state;

    /// <summary>The full state (save it to resume the sequence).</summary>
    public ulong State { get; private set; }

    /// <summary>A generator for a derived stream: deterministic in the seed and the labels, independent across labels.</summary>
    public static TrainingRandom For(ulong seed, params ReadOnlySpan<long> labels)
    {
        var state = Mix(seed ^ 0x4C524D4E61746976UL);
        foreach (var label in labels)
        {
            state = Mix(state ^ Mix((ulong)label + 0x9E3779B97F4A7C15UL));
        }
        return new TrainingRandom(state);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        State += 0x9E3779B97F4A7C15UL;
        return Mix(State);
    }

    /// <summary>Uniform integer in [0, <paramref name="count"/>) (rejection sampling, no modulo bias).</summary>
    public int Next(int count)
    {
        if (count <= 0)
        {
            throw new LrmInvalidArgumentException($"random range must be positive, got {count}");
        }
        var bound = (ulong)count;
        var limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong value;
        do
        {
            value = NextUInt64();
        }
        while (value >= limit);
        return (int)(value % bound);
    }

    /// <summary>Uniform integer in [<paramref name="minimum"/>, <paramref name="maximum"/>], both included.</summary>
    public int NextInclusive(int minimum, int maximum) => minimum + Next(maximum - minimum + 1);

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates).</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
