namespace LrmNative;

/// <summary>Element types a <see cref="Tensor"/> can hold.</summary>
public enum DataType
{
    /// <summary>IEEE-754 binary32.</summary>
    Float32 = 0,
    /// <summary>bfloat16 (the upper 16 bits of a binary32), stored as raw bits.</summary>
    BFloat16 = 1,
    /// <summary>32-bit signed integer.</summary>
    Int32 = 2,
}

/// <summary>Helpers for <see cref="DataType"/>.</summary>
public static class DataTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this DataType type) => type switch
    {
        DataType.Float32 => 4,
        DataType.BFloat16 => 2,
        DataType.Int32 => 4,
        _ => throw new LrmInvalidArgumentException($"unknown data type {(int)type}"),
    };

    /// <summary>Short name as in safetensors headers (F32, BF16, I32).</summary>
    public static string SafeTensorsName(this DataType type) => type switch
    {
        DataType.Float32 => "F32",
        DataType.BFloat16 => "BF16",
        DataType.Int32 => "I32",
        _ => throw new LrmInvalidArgumentException($"unknown data type {(int)type}"),
    };
}
