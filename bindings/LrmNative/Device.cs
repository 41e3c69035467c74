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
/// <param name="Kind">CPU or CUDA.</param>
/// <param name="Ordinal">Which GPU for CUDA (cuda:N, from 0); 0 for the CPU.</param>
/// <param name="IsAuto">True for <see cref="Auto"/>: the first usable GPU is wanted and the CPU accepted, so loading
/// falls back instead of failing (the kind and ordinal are then placeholders).</param>
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

    /// <summary>"auto", "cpu" or "cuda:N", as the <c>lrm</c> command line's <c>--device</c> spells it.</summary>
    public override string ToString() => IsAuto ? "auto" : Kind == DeviceKind.Cpu ? "cpu" : $"cuda:{Ordinal}";
}
