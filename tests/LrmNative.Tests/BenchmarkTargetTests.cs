using LrmNative.Backends;
using LrmNative.Benchmarks;

namespace LrmNative.Tests;

/// <summary>
/// The kernel suites' targets: which are offered on this machine, that a device target's measured region reaches
/// <see cref="DeviceTimings"/> under the bound case, and that the CUDA target refuses to open without a device.
/// </summary>
[TestFixture]
public sealed class BenchmarkTargetTests
{
    // A device-clocked target over the CPU that "measures" a fixed time per region.
    private sealed class FakeDeviceTarget(double seconds) : BenchmarkTarget
    {
        private readonly CpuBackend _backend = new();

        public int Begun { get; private set; }

        public override string Name => "fake";

        public override IBackend Backend => _backend;

        public override bool HasDeviceClock => true;

        public override Tensor Place(Tensor host) => host;

        protected override void BeginMeasure() => Begun++;

        protected internal override void EndMeasure() => RecordDeviceTime(seconds);
    }

    [Test]
    public void TargetsOfferedMatchTheMachine()
    {
        var available = BenchmarkTargets.Available.ToList();
        Assert.That(available[0], Is.EqualTo("cpu"));
        Assert.That(available.Contains("cuda"), Is.EqualTo(CudaBackend.IsAvailable(out _)), "cuda is offered exactly when a CUDA backend can run");
        if (!CudaBackend.IsAvailable(out _))
        {
            Assert.Throws<LrmCudaUnavailableException>(() => BenchmarkTargets.Create("cuda").Dispose());
        }
        Assert.Throws<LrmInvalidArgumentException>(() => BenchmarkTargets.Create("tpu"));
    }

    [Test]
    public void DeviceClockedRegionsAreKeptPerCase()
    {
        using var target = new FakeDeviceTarget(0.25);
        var key = "case-" + Guid.NewGuid().ToString("N");
        target.BindCase(key);
        for (var i = 0; i < 3; i++)
        {
            using (target.Measure())
            {
            }
        }
        Assert.That(target.Begun, Is.EqualTo(3));
        Assert.That(DeviceTimings.Last(DeviceTimings.Key(key, "fake"), 2), Is.EqualTo(new[] { 0.25, 0.25 }));
        Assert.That(DeviceTimings.Last(DeviceTimings.Key(key, "cpu"), 2), Is.Null, "another target's times are its own");
        using var cpu = BenchmarkTargets.Create("cpu");
        Assert.That(cpu.HasDeviceClock, Is.False);
        using (cpu.Measure())
        {
        }
    }
}
