namespace LrmNative;

/// <summary>Kinds of compute device.</summary>
public enum DeviceKind
{
    /// <summary>The host CPU (OpenMP + OpenBLAS).</summary>
    Cpu = 0,
    /// <summary>An NVIDIA GPU through the CUDA driver API.</summary>
    Cuda = 1,
}

/// <summary>Where tensors live and ops run. <see cref="Auto"/> picks a GPU when one is usable.</summary>
public readonly record struct Device(DeviceKind Kind, int Ordinal, bool IsAuto = false)
{
    /// <summary>The host CPU.</summary>
    public static Device Cpu { get; } = new(DeviceKind.Cpu, 0);

    /// <summary>The first usable CUDA GPU, else the CPU.</summary>
    public static Device Auto { get; } = new(DeviceKind.Cpu, 0, IsAuto: true);

    /// <summary>A CUDA GPU by ordinal.</summary>
    public static Device Cuda(int ordinal = 0) => ordinal >= 0
        ? new Device(DeviceKind.Cuda, ordinal)
        : throw new LrmInvalidArgumentException($"CUDA device ordinal must be >= 0, got {ordinal}");

    /// <inheritdoc />
    public override string ToString() => IsAuto ? "auto" : Kind == DeviceKind.Cpu ? "cpu" : $"cuda:{Ordinal}";
}
