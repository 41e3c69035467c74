using System.Numerics;
using LrmNative.Model;

namespace LrmNative;

/// <summary>
/// A pinhole camera for rendering a reconstruction, in the engine's world: <b>z up</b>, the object inside the box
/// [−1, 1]³ centred at the origin. The pose is a camera-to-world matrix in the OpenGL/Blender convention (the camera
/// looks along its −Z axis, +Y up in the image); intrinsics are normalised by the image size (focal length in image
/// widths, principal point in [0, 1]), so one camera renders at any resolution. LRM's input view is <see cref="Input"/>.
/// </summary>
public sealed class Camera
{
    /// <summary>OpenLRM's normalised focal length (0.75 image widths, about 67° field of view).</summary>
    public const float DefaultFocal = Cameras.CanonicalFocal;

    /// <summary>OpenLRM's turntable radius: the distance from the camera to the origin.</summary>
    public const float TurntableRadius = 2.0f;

    /// <summary>OpenLRM's turntable height: the camera's z.</summary>
    public const float TurntableHeight = 0.8f;

    private readonly float[] _cameraToWorld;

    private Camera(float[] cameraToWorld, float focal, float principalX, float principalY)
    {
        if (!(focal > 0 && float.IsFinite(focal)))
        {
            throw new LrmInvalidArgumentException($"camera: the focal length must be positive and finite, got {focal}");
        }
        if (!float.IsFinite(principalX) || !float.IsFinite(principalY))
        {
            throw new LrmInvalidArgumentException($"camera: the principal point must be finite, got ({principalX}, {principalY})");
        }
        _cameraToWorld = cameraToWorld;
        Focal = focal;
        PrincipalX = principalX;
        PrincipalY = principalY;
    }

    /// <summary>LRM's canonical input camera: at (0, −2, 0) looking at the origin, +Z up, focal 0.75 (LRM §3.2).</summary>
    public static Camera Input { get; } = LookAt(new Vector3(0, -Cameras.CanonicalDistance, 0));

    /// <summary>The camera-to-world matrix, 4×4 row-major (16 values).</summary>
    public ReadOnlySpan<float> CameraToWorld => _cameraToWorld;

    /// <summary>Where the camera is, in world coordinates.</summary>
    public Vector3 Position => new(_cameraToWorld[3], _cameraToWorld[7], _cameraToWorld[11]);

    /// <summary>Focal length in image widths (fx = fy).</summary>
    public float Focal { get; }

    /// <summary>Principal point x as a fraction of the image width (0.5: the centre).</summary>
    public float PrincipalX { get; }

    /// <summary>Principal point y as a fraction of the image height (0.5: the centre).</summary>
    public float PrincipalY { get; }

    /// <summary>A camera at <paramref name="position"/> looking at the origin with world +Z up.</summary>
    /// <exception cref="LrmInvalidArgumentException">The position is the origin, on the z axis (up undefined) or not finite.</exception>
    public static Camera LookAt(Vector3 position, float focal = DefaultFocal)
    {
        if (!float.IsFinite(position.X) || !float.IsFinite(position.Y) || !float.IsFinite(position.Z))
        {
            throw new LrmInvalidArgumentException($"camera: position must be finite, got {position}");
        }
        return new Camera(Cameras.LookAtOrigin(position.X, position.Y, position.Z), focal, Cameras.CanonicalPrincipal, Cameras.CanonicalPrincipal);
    }

    /// <summary>A camera from a camera-to-world matrix (16 values, row-major, OpenGL convention) and normalised intrinsics.</summary>
    public static Camera FromCameraToWorld(ReadOnlySpan<float> cameraToWorld, float focal = DefaultFocal, float principalX = 0.5f, float principalY = 0.5f)
    {
        if (cameraToWorld.Length != 16)
        {
            throw new LrmInvalidArgumentException($"camera: a camera-to-world matrix has 16 values, got {cameraToWorld.Length}");
        }
        foreach (var value in cameraToWorld)
        {
            if (!float.IsFinite(value))
            {
                throw new LrmInvalidArgumentException("camera: the camera-to-world matrix must be finite");
            }
        }
        return new Camera(cameraToWorld.ToArray(), focal, principalX, principalY);
    }

    /// <summary>The most frames <see cref="Turntable"/> makes (a turntable of 100,000 frames is over an hour of video at 24 fps).</summary>
    public const int MaxTurntableFrames = 100_000;

    /// <summary>
    /// OpenLRM's turntable (surrounding_views_linspace): <paramref name="frames"/> cameras on a horizontal circle at
    /// height <paramref name="height"/> whose distance from the origin is <paramref name="radius"/> (so the circle's
    /// radius is √(radius² − height²)), all looking at the origin with +Z up; angles evenly spaced from −90° (in front,
    /// where the input camera is) to 270°, both ends included as OpenLRM does.
    /// </summary>
    /// <exception cref="LrmInvalidArgumentException">No frames or more than <see cref="MaxTurntableFrames"/>, or radius ≤ |height|.</exception>
    public static IReadOnlyList<Camera> Turntable(int frames, float radius = TurntableRadius, float height = TurntableHeight, float focal = DefaultFocal)
    {
        if (frames is < 1 or > MaxTurntableFrames)
        {
            throw new LrmInvalidArgumentException($"turntable: frames must be in 1..{MaxTurntableFrames}, got {frames}");
        }
        if (!(radius > Math.Abs(height)) || !float.IsFinite(radius))
        {
            throw new LrmInvalidArgumentException($"turntable: the radius must exceed |height| ({Math.Abs(height)}), got {radius}");
        }
        var circle = Math.Sqrt((double)radius * radius - (double)height * height);
        var cameras = new Camera[frames];
        for (var i = 0; i < frames; i++)
        {
            // torch.linspace(−π/2, 3π/2, n): the first and last angles coincide.
            var theta = frames == 1 ? -Math.PI / 2 : -Math.PI / 2 + 2 * Math.PI * i / (frames - 1);
            cameras[i] = LookAt(new Vector3((float)(Math.Cos(theta) * circle), (float)(Math.Sin(theta) * circle), height), focal);
        }
        return cameras;
    }

    /// <summary>The 25-value render camera the volume renderer reads: the 4×4 pose, then the 3×3 normalised intrinsics.</summary>
    internal float[] RenderVector() =>
        [.. _cameraToWorld, Focal, 0, PrincipalX, 0, Focal, PrincipalY, 0, 0, 1];

    /// <summary>Position and focal length, e.g. "Camera at (0, -2, 0), focal 0.75".</summary>
    public override string ToString() => $"Camera at ({Position.X:G4}, {Position.Y:G4}, {Position.Z:G4}), focal {Focal:G4}";
}
