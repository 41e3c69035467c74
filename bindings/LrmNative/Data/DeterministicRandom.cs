namespace LrmNative.Data;

/// <summary>
/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64: a small, fast generator whose sequence is fixed by
/// its seed on every platform and .NET version (System.Random makes no such promise). Datasets derive one stream per
/// object from (seed, object index), so objects can be generated in any order or in parallel with the same bytes.
/// </summary>
internal sealed class DeterministicRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A generator for one stream of a seed: streams of the same seed are independent sequences.</summary>
    public DeterministicRandom(ulong seed, ulong stream = 0)
    {
        var state = seed ^ (0x9E3779B97F4A7C15UL * (stream + 1));
        // Mix the stream in twice so that neighbouring (seed, stream) pairs start far apart.
        state = SplitMix(ref state) ^ stream;
        _s0 = SplitMix(ref state);
        _s1 = SplitMix(ref state);
        _s2 = SplitMix(ref state);
        _s3 = SplitMix(ref state);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var result = RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1), 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [low, high).</summary>
    public double Uniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Uniform integer in [0, count).</summary>
    public int NextInt(int count)
    {
        if (count <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "must be positive");
        }
        return (int)(NextDouble() * count);
    }

    /// <summary>Uniform integer in [low, high] (both ends included).</summary>
    public int NextInt(int low, int high) => low + NextInt(high - low + 1);

    /// <summary>True with probability <paramref name="probability"/>.</summary>
    public bool Chance(double probability) => NextDouble() < probability;

    /// <summary>A standard normal sample (Box–Muller).</summary>
    public double NextGaussian()
    {
        var u = 1.0 - NextDouble();
        var v = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
    }

    /// <summary>A uniformly distributed rotation (a normalised Gaussian quaternion).</summary>
    public Mat3 NextRotation()
    {
        double w = NextGaussian(), x = NextGaussian(), y = NextGaussian(), z = NextGaussian();
        var norm = Math.Sqrt(w * w + x * x + y * y + z * z);
        if (norm < 1e-12)
        {
            return Mat3.Identity;
        }
        return Mat3.FromQuaternion(w / norm, x / norm, y / norm, z / norm);
    }

    /// <summary>A uniformly distributed unit vector.</summary>
    public Vec3 NextDirection()
    {
        while (true)
        {
            var v = new Vec3(NextGaussian(), NextGaussian(), NextGaussian());
            var length = v.Length;
            if (length > 1e-9)
            {
                return v / length;
            }
        }
    }

    private static ulong SplitMix(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
