using LrmNative.Data;
using LrmNative.Model;

namespace LrmNative.Training;

/// <summary>
/// Camera normalisation of LRM training data (LRM §3.2; OpenLRM's camera_normalization with 'auto' distance): the
/// source view's camera is moved to the canonical pose at its own distance d from the origin — (0, −d, 0) looking
/// at the origin along +Y with +Z up (<see cref="Cameras.LookAtOrigin"/>) — and every view of the object is moved by
/// the same rigid transform M = canonical · source⁻¹, so the views keep their poses relative to each other and to
/// the source. Matrices are 4×4 camera-to-world, row-major, OpenGL convention; the math runs in double.
/// </summary>
internal static class CameraNormalization
{
    /// <summary>
    /// The normalised 4×4 poses (row-major, 16 values each) of <paramref name="poses"/>; pose 0 is the source.
    /// Every pose must be rigid (<see cref="RigidError"/>); the source must not sit at the origin (the dataset reader
    /// refuses both for every view, <see cref="DatasetLayout.PoseProblem"/>).
    /// </summary>
    public static double[][] Normalize(IReadOnlyList<double[]> poses)
    {
        ArgumentNullException.ThrowIfNull(poses);
        if (poses.Count == 0)
        {
            throw new LrmInvalidArgumentException("camera normalisation needs at least the source pose");
        }
        var transform = Transform(poses[0]);
        var canonical = Canonical(Distance(poses[0]));
        var result = new double[poses.Count][];
        for (var v = 0; v < poses.Count; v++)
        {
            result[v] = v == 0 ? canonical : Multiply(transform, poses[v]);
        }
        return result;
    }

    /// <summary>The source camera's distance d from the origin (at least <see cref="DatasetLayout.MinCameraDistance"/>).</summary>
    public static double Distance(ReadOnlySpan<double> source)
    {
        var distance = DatasetLayout.CameraDistance(source);
        if (!(distance >= DatasetLayout.MinCameraDistance))
        {
            throw new LrmInvalidArgumentException("the source camera sits at the origin; it has no distance to normalise to");
        }
        return distance;
    }

    /// <summary>
    /// The rigid world transform M = C(d) · source⁻¹ that <see cref="Normalize"/> applies to every pose (4×4 row-major);
    /// applied to points of the object's world (e.g. its ground-truth mesh) it gives them in the normalised frame.
    /// </summary>
    public static double[] Transform(ReadOnlySpan<double> source) => Multiply(Canonical(Distance(source)), InverseRigid(source));

    /// <summary>The canonical source pose at <paramref name="distance"/>: [1,0,0,0; 0,0,−1,−d; 0,1,0,0; 0,0,0,1].</summary>
    public static double[] Canonical(double distance) =>
    [
        1, 0, 0, 0,
        0, 0, -1, -distance,
        0, 1, 0, 0,
        0, 0, 0, 1,
    ];

    /// <summary>
    /// How far a 4×4 pose is from a rigid transform: the largest of |RᵀR − I|, |det R − 1| and |bottom row − (0,0,0,1)|;
    /// +∞ when any value is NaN/±inf (the dataset reader's measure, <see cref="DatasetLayout.RigidError"/>).
    /// </summary>
    public static double RigidError(ReadOnlySpan<double> pose) => DatasetLayout.RigidError(pose);

    /// <summary>Inverse of a rigid 4×4 transform [R t; 0 1]: [Rᵀ −Rᵀt; 0 1].</summary>
    public static double[] InverseRigid(ReadOnlySpan<double> pose)
    {
        var inverse = new double[16];
        for (var r = 0; r < 3; r++)
        {
            for (var c = 0; c < 3; c++)
            {
                inverse[4 * r + c] = pose[4 * c + r];
            }
            inverse[4 * r + 3] = -(pose[r] * pose[3] + pose[4 + r] * pose[7] + pose[8 + r] * pose[11]);
        }
        inverse[15] = 1;
        return inverse;
    }

    /// <summary>Product of two 4×4 row-major matrices.</summary>
    public static double[] Multiply(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        var product = new double[16];
        for (var r = 0; r < 4; r++)
        {
            for (var c = 0; c < 4; c++)
            {
                double sum = 0;
                for (var k = 0; k < 4; k++)
                {
                    sum += a[4 * r + k] * b[4 * k + c];
                }
                product[4 * r + c] = sum;
            }
        }
        return product;
    }
}
