namespace LrmNative.Tests;

/// <summary>
/// Host memory that is not there: Linux overcommits, so a 4 GiB grid on a machine with 2 GiB free used to be handed out
/// and the OOM killer ended the process when the grid was filled. Large host tensors and mesh extraction now check
/// what the machine has left first and refuse with <see cref="LrmOutOfMemoryException"/>, leaving everything usable.
/// The machine's numbers are parsed from meminfo and cgroup files written here.
/// </summary>
[NonParallelizable] // sets the process-wide stand-in for the available memory
public sealed class HostMemoryTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = Directory.CreateTempSubdirectory("lrm-host-memory-").FullName;

    [TearDown]
    public void ForgetTheStandIn()
    {
        HostMemory.AvailableOverride = null;
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void MemAvailableIsReadFromMeminfo()
    {
        var path = Path.Combine(_folder, "meminfo");
        File.WriteAllText(path, "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   12345678 kB\nBuffers:  10 kB\n");
        Assert.That(HostMemory.ReadMemInfoAvailable(path), Is.EqualTo(12345678L * 1024));
        File.WriteAllText(path, "MemTotal:       24576000 kB\n");
        Assert.That(HostMemory.ReadMemInfoAvailable(path), Is.Null, "an old kernel without the line");
        Assert.That(HostMemory.ReadMemInfoAvailable(Path.Combine(_folder, "missing")), Is.Null);
    }

    [Test]
    public void TheCgroupRoomIsTheLimitLessTheUsageAndNullWithoutALimit()
    {
        var limit = Path.Combine(_folder, "memory.max");
        var usage = Path.Combine(_folder, "memory.current");
        File.WriteAllText(limit, "4294967296\n");
        File.WriteAllText(usage, "1073741824\n");
        Assert.That(HostMemory.ReadCgroupRoom(limit, usage), Is.EqualTo(3L << 30));
        File.WriteAllText(limit, "max\n");
        Assert.That(HostMemory.ReadCgroupRoom(limit, usage), Is.Null, "cgroup v2 without a limit");
        File.WriteAllText(limit, "9223372036854771712\n");
        Assert.That(HostMemory.ReadCgroupRoom(limit, usage), Is.Null, "cgroup v1's 'unlimited'");
        Assert.That(HostMemory.ReadCgroupRoom(Path.Combine(_folder, "none"), usage), Is.Null);
    }

    [Test]
    public void ThisMachineReportsAPlausibleAvailableAmount()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("reads Linux's /proc/meminfo");
        }
        var available = HostMemory.Available();
        Assert.That(available, Is.Not.Null);
        Assert.That(available!.Value.Bytes, Is.GreaterThan(0).And.LessThanOrEqualTo(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes + (1L << 30)));
    }

    [Test]
    public void ALargeHostTensorBeyondWhatIsAvailableIsRefusedBeforeAllocating()
    {
        HostMemory.AvailableOverride = 300L << 20;
        var before = HostMemory.LiveBytes;
        var error = Assert.Throws<LrmOutOfMemoryException>(() => Tensor.Empty([128, 1024, 1024]));
        Assert.That(error!.Message, Does.Contain("shape (128, 1024, 1024)").And.Contain("512.0 MiB").And.Contain("300.0 MiB is available"));
        Assert.That(HostMemory.LiveBytes, Is.EqualTo(before));
        using var fits = Tensor.Empty([64, 1024, 1024]); // 256 MiB: checked, and fits
        Assert.That(fits.ByteCount, Is.EqualTo(256L << 20));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MeshExtractionBeyondWhatIsAvailableNamesTheGridAndLeavesTheReconstructionUsable(bool coarseToFine)
    {
        using var lrm = Reconstructor.Load(Golden.TinyModelDirectory, Device.Cpu);
        using var result = lrm.Reconstruct(Golden.ExampleImagePath);
        var reference = result.ExtractMesh(48, 0.7f, coarseToFine);
        HostMemory.AvailableOverride = 400_000; // a 64³ grid needs 1 MiB, 32³ 128 KiB
        var error = Assert.Throws<LrmOutOfMemoryException>(() => result.ExtractMesh(64, 0.7f, coarseToFine));
        Assert.That(error!.Message, Does.StartWith("mesh extraction at 64³ (its density grid) needs 1.0 MiB of host memory and 400000 bytes is available")
            .And.Contain("32³: 131072 bytes"));
        Assert.That(result.LastGridQuery?.Resolution, Is.EqualTo(48), "no grid query ran");
        HostMemory.AvailableOverride = null;
        var again = result.ExtractMesh(48, 0.7f, coarseToFine);
        Assert.That(again.TriangleCount, Is.GreaterThan(0));
        Assert.That(again.Positions.ToArray(), Is.EqualTo(reference.Positions.ToArray()));
    }
}
