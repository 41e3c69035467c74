namespace LrmNative.Model;

/// <summary>
/// Camera feature vectors in OpenLRM's conventions: camera-to-world matrices in the OpenGL/Blender
/// convention (the camera looks along its −Z axis, +Y up), intrinsics normalised by the image size.
/// </summary>
internal static class Cameras
{
    /// <summary>Distance of OpenLRM's canonical source camera from the origin.</summary>
    public const float CanonicalDistance = 2.0f;

    /// <summary>Normalised focal length of the canonical source camera.</summary>
    public const float CanonicalFocal = 0.75f;

    /// <summary>Normalised principal point of the canonical source camera.</summary>
    public const float CanonicalPrincipal = 0.5f;

    /// <summary>
    /// The 16-value source camera LRM is conditioned on: the canonical camera at (0, −d, 0) looking at the
    /// origin along +Y with +Z up (LRM §3.2: training cameras are normalised to it), as the 3×4
    /// camera-to-world matrix row-major, then fx, fy, cx, cy.
    /// </summary>
    public static float[] CanonicalSource(float distance = CanonicalDistance, float focal = CanonicalFocal, float principal = CanonicalPrincipal)
    {
        var pose = LookAtOrigin(0, -distance, 0);
        return [.. pose.AsSpan(0, 12), focal, focal, principal, principal];
    }

    /// <summary>
    /// The canonical source camera as a <paramref name="inputDim"/>-value feature: 16 as
    /// <see cref="CanonicalSource(float, float, float)"/> (OpenLRM), or 20 = the full 4×4 camera-to-world
    /// matrix row-major, then fx, fy, cx, cy (the paper's camera feature).
    /// </summary>
    public static float[] CanonicalSourceFor(int inputDim, float distance = CanonicalDistance, float focal = CanonicalFocal, float principal = CanonicalPrincipal)
    {
        return inputDim switch
        {
            ModelConfig.CameraRawDim => CanonicalSource(distance, focal, principal),
            ModelConfig.CameraRawDimFull => [.. LookAtOrigin(0, -distance, 0), focal, focal, principal, principal],
            _ => throw new LrmInvalidArgumentException($"a source camera feature has {ModelConfig.CameraRawDim} or {ModelConfig.CameraRawDimFull} values, not {inputDim}"),
        };
    }

    /// <summary>
    /// A 25-value render camera: the 4×4 camera-to-world matrix row-major, then the 3×3 normalised
    /// intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] row-major.
    /// </summary>
    public static float[] Render(ReadOnlySpan<float> cameraToWorld, float focal = CanonicalFocal, float principal = CanonicalPrincipal)
    {
        if (cameraToWorld.Length != 16)
        {
            throw new LrmInvalidArgumentException($"a camera-to-world matrix has 16 values, got {cameraToWorld.Length}");
        }
        return [.. cameraToWorld, focal, 0, principal, 0, focal, principal, 0, 0, 1];
    }

    /// <summary>
    /// Camera-to-world (4×4, row-major, OpenGL convention) of a camera at (x, y, z) looking at the origin
    /// with world +Z up: −Z_cam points at the origin, +X_cam = forward × up, +Y_cam = X × forward.
    /// </summary>
    public static float[] LookAtOrigin(float x, float y, float z)
    {
        var position = new double[] { x, y, z };
        var distance = Math.Sqrt(x * (double)x + y * (double)y + z * (double)z);
        if (distance == 0)
        {
            throw new LrmInvalidArgumentException("a camera at the origin cannot look at the origin");
        }
        double[] forward = [-x / distance, -y / distance, -z / distance];
        double[] up = [0, 0, 1];
        var right = Normalize(Cross(forward, up));
        var trueUp = Cross(right, forward);
        double[] back = [-forward[0], -forward[1], -forward[2]];
        var matrix = new float[16];
        for (var row = 0; row < 3; row++)
        {
            matrix[4 * row] = (float)right[row];
            matrix[4 * row + 1] = (float)trueUp[row];
            matrix[4 * row + 2] = (float)back[row];
            matrix[4 * row + 3] = (float)position[row];
        }
        matrix[15] = 1;
        return matrix;
    }

    private static double[] Cross(double[] a, double[] b) =>
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

    private static double[] Normalize(double[] v)
    {
        var length = Math.Sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        if (length == 0)
        {
            throw new LrmInvalidArgumentException("the camera looks straight up or down; the +Z up vector is undefined");
        }
        return [v[0] / length, v[1] / length, v[2] / length];
    }
}
