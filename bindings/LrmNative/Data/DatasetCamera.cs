using LrmNative.Model;

namespace LrmNative.Data;

/// <summary>
/// A pinhole camera of a multi-view dataset, in OpenLRM's conventions (the same ones the model's renderer uses,
/// <c>kernels/render.cuh</c>): a camera-to-world matrix in the OpenGL convention (the camera looks down its −Z axis,
/// +Y is up in the image, +X to the right), world +Z up, and intrinsics normalised by the image size (fx = fy = 0.75,
/// cx = cy = 0.5 for OpenLRM). Pixel (row i, column j) has its centre at image coordinates (j + ½, i + ½); its ray
/// direction in camera space is ((x − cx)/fx, −(y − cy)/fy, −1) with x = (j + ½)/W, y = (i + ½)/H.
/// </summary>
internal sealed class DatasetCamera
{
    /// <summary>Range of camera distances from the origin (LRM §4.1 / OpenLRM's Objaverse renders).</summary>
    public const double MinDistance = 1.5, MaxDistance = 3.0;

    /// <summary>Range of camera heights (world z).</summary>
    public const double MinHeight = -0.75, MaxHeight = 1.6;

    /// <summary>Cameras steeper than this elevation (|z|/distance above sin 80°) are redrawn: straight up or down the z-up look-at is undefined.</summary>
    public const double MaxSinElevation = 0.98480775301220802; // sin(80°)

    private readonly double[] _rotation = new double[9];

    /// <summary>A camera from its camera-to-world matrix (16 values row-major, rounded to float as it is stored on disk).</summary>
    public DatasetCamera(ReadOnlySpan<float> cameraToWorld, int width, int height, double focal = Cameras.CanonicalFocal,
        double principal = Cameras.CanonicalPrincipal)
    {
        if (cameraToWorld.Length != 16)
        {
            throw new LrmInvalidArgumentException($"a camera-to-world matrix has 16 values, got {cameraToWorld.Length}");
        }
        if (width <= 0 || height <= 0)
        {
            throw new LrmInvalidArgumentException($"camera image size must be positive, got {width}×{height}");
        }
        CameraToWorld = cameraToWorld.ToArray();
        Width = width;
        Height = height;
        FocalX = FocalY = focal;
        PrincipalX = PrincipalY = principal;
        for (var row = 0; row < 3; row++)
        {
            for (var column = 0; column < 3; column++)
            {
                _rotation[3 * row + column] = cameraToWorld[4 * row + column];
            }
        }
        Origin = new Vec3(cameraToWorld[3], cameraToWorld[7], cameraToWorld[11]);
    }

    /// <summary>The camera-to-world matrix, 16 floats row-major (what <c>pose/NNN.npy</c> holds).</summary>
    public float[] CameraToWorld { get; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; }

    /// <summary>Image height in pixels.</summary>
    public int Height { get; }

    /// <summary>Focal lengths normalised by the image width / height.</summary>
    public double FocalX { get; }

    /// <inheritdoc cref="FocalX"/>
    public double FocalY { get; }

    /// <summary>Principal point normalised by the image width / height.</summary>
    public double PrincipalX { get; }

    /// <inheritdoc cref="PrincipalX"/>
    public double PrincipalY { get; }

    /// <summary>The camera centre in world coordinates.</summary>
    public Vec3 Origin { get; }

    /// <summary>
    /// A camera at <paramref name="position"/> looking at the origin with world +Z up (<see cref="Cameras.LookAtOrigin"/>,
    /// the convention of the model's canonical source camera).
    /// </summary>
    public static DatasetCamera LookAtOrigin(Vec3 position, int width, int height, double focal = Cameras.CanonicalFocal) =>
        new(Cameras.LookAtOrigin((float)position.X, (float)position.Y, (float)position.Z), width, height, focal);

    /// <summary>
    /// A random camera as in LRM's training renders: distance from the origin uniform in [1.5, 3.0], height (world z)
    /// uniform in [−0.75, 1.6], azimuth uniform; drawn again when the elevation would exceed 80° (|z| &gt; 0.985·d,
    /// only possible for d &lt; 1.63), since looking straight down has no defined up direction.
    /// </summary>
    public static DatasetCamera SampleOrbit(DeterministicRandom random, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(random);
        while (true)
        {
            var distance = random.Uniform(MinDistance, MaxDistance);
            var z = random.Uniform(MinHeight, MaxHeight);
            var azimuth = random.Uniform(0, 2 * Math.PI);
            if (Math.Abs(z) > MaxSinElevation * distance)
            {
                continue;
            }
            var horizontal = Math.Sqrt(distance * distance - z * z);
            return LookAtOrigin(new Vec3(horizontal * Math.Cos(azimuth), horizontal * Math.Sin(azimuth), z), width, height);
        }
    }

    /// <summary>The same viewing direction from <paramref name="distance"/> away from the origin (a look-at camera moved along its ray to the origin).</summary>
    public DatasetCamera AtDistance(double distance)
    {
        var length = Math.Sqrt(Origin.X * Origin.X + Origin.Y * Origin.Y + Origin.Z * Origin.Z);
        var scale = distance / length;
        return LookAtOrigin(new Vec3(Origin.X * scale, Origin.Y * scale, Origin.Z * scale), Width, Height, FocalX);
    }

    /// <summary>Unit world direction of the ray through image point (x, y) in pixels ((j + ½, i + ½) is pixel (i, j)'s centre).</summary>
    public Vec3 RayDirection(double pixelX, double pixelY)
    {
        var x = (pixelX / Width - PrincipalX) / FocalX;
        var y = -(pixelY / Height - PrincipalY) / FocalY;
        var r = _rotation;
        return new Vec3(r[0] * x + r[1] * y - r[2], r[3] * x + r[4] * y - r[5], r[6] * x + r[7] * y - r[8]).Normalized();
    }

    /// <summary>
    /// Projects a world point: image coordinates in pixels (x to the right, y down; pixel (i, j) covers [j, j+1) × [i, i+1))
    /// and the depth along the viewing axis (positive in front of the camera).
    /// </summary>
    public (double X, double Y, double Depth) Project(Vec3 point)
    {
        var d = point - Origin;
        var r = _rotation;
        // Camera coordinates: Rᵀ (p − o).
        var cx = r[0] * d.X + r[3] * d.Y + r[6] * d.Z;
        var cy = r[1] * d.X + r[4] * d.Y + r[7] * d.Z;
        var cz = r[2] * d.X + r[5] * d.Y + r[8] * d.Z;
        var depth = -cz;
        return ((cx / depth * FocalX + PrincipalX) * Width, (-cy / depth * FocalY + PrincipalY) * Height, depth);
    }

    /// <summary>
    /// OpenLRM's intrinsics.npy: (3, 2) float32 [[fx, fy], [cx, cy], [width, height]] in pixels (its loader divides by
    /// width and height to get the normalised values).
    /// </summary>
    public float[] IntrinsicsArray() =>
        [(float)(FocalX * Width), (float)(FocalY * Height), (float)(PrincipalX * Width), (float)(PrincipalY * Height), Width, Height];
}
