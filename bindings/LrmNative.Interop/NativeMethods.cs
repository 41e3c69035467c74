using System.Runtime.InteropServices;

namespace LrmNative.Interop;

/// <summary>Status codes of <c>lrm_native.h</c> (append-only).</summary>
internal enum LrmStatus
{
    Ok = 0,
    InvalidArgument = 1,
    ShapeMismatch = 2,
    OutOfMemory = 3,
    IoError = 4,
    Unsupported = 5,
    Internal = 6,
}

/// <summary><c>lrm_resize_mode</c>.</summary>
internal enum LrmResizeMode
{
    Bilinear = 0,
    Bicubic = 1,
}

/// <summary><c>lrm_activation</c>.</summary>
internal enum LrmActivation
{
    None = 0,
    Relu = 1,
    Gelu = 2,
    Silu = 3,
}

/// <summary>Exact C signatures of <c>native/include/lrm_native.h</c>. No logic.</summary>
internal static unsafe partial class NativeMethods
{
    private const string Lib = LibraryResolver.LrmNative;

    [LibraryImport(Lib)] internal static partial byte* lrm_last_error();
    [LibraryImport(Lib)] internal static partial void lrm_clear_error();
    [LibraryImport(Lib)] internal static partial byte* lrm_version();
    [LibraryImport(Lib)] internal static partial byte* lrm_build_info();
    [LibraryImport(Lib)] internal static partial byte* lrm_blas_info();
    [LibraryImport(Lib)] internal static partial int lrm_get_num_threads();
    [LibraryImport(Lib)] internal static partial LrmStatus lrm_set_num_threads(int n);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_gemm_forward(float* @out, float* a, float* b, float* bias, float* residual,
        long m, long n, long k, int transpose_a, int transpose_b);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_gemm_backward(float* da, float* db, float* dbias, float* dout, float* a,
        float* b, long m, long n, long k, int transpose_a, int transpose_b);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_layernorm_forward(float* @out, float* mean, float* rstd, float* inp,
        float* weight, float* bias, long rows, long channels, float eps);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_modln_forward(float* @out, float* mean, float* rstd, float* inp,
        float* weight, float* bias, float* shift, float* scale, long batch, long tokens, long channels, float eps);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_layernorm_backward(float* dinp, float* dweight, float* dbias, float* dout,
        float* mean, float* rstd, float* inp, float* weight, long rows, long channels);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_modln_backward(float* dinp, float* dweight, float* dbias, float* dshift,
        float* dscale, float* dout, float* mean, float* rstd, float* inp, float* weight, float* bias, float* scale,
        long batch, long tokens, long channels);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_attention_forward(float* @out, float* lse, float* q, float* k, float* v,
        long batch, long heads, long q_len, long kv_len, long head_dim, long q_row_stride, long kv_row_stride,
        float scale);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_attention_backward(float* dq, float* dk, float* dv, float* dout, float* @out,
        float* lse, float* q, float* k, float* v, long batch, long heads, long q_len, long kv_len, long head_dim,
        long q_row_stride, long kv_row_stride, long dq_row_stride, long dkv_row_stride, float scale);

    [LibraryImport(Lib)] internal static partial LrmStatus lrm_gelu_forward(float* @out, float* inp, long n);
    [LibraryImport(Lib)] internal static partial LrmStatus lrm_silu_forward(float* @out, float* inp, long n);
    [LibraryImport(Lib)] internal static partial LrmStatus lrm_relu_forward(float* @out, float* inp, long n);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_softmax_forward(float* @out, float* inp, long rows, long cols);

    [LibraryImport(Lib)] internal static partial LrmStatus lrm_gelu_backward(float* dinp, float* dout, float* inp, long n);
    [LibraryImport(Lib)] internal static partial LrmStatus lrm_silu_backward(float* dinp, float* dout, float* inp, long n);
    [LibraryImport(Lib)] internal static partial LrmStatus lrm_relu_backward(float* dinp, float* dout, float* inp, long n);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_softmax_backward(float* dinp, float* dout, float* @out, long rows, long cols);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_patch_embed_forward(float* @out, float* image, float* weight, float* bias,
        long batch, long in_channels, long height, long width, long out_channels, long patch);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_deconv_forward(float* @out, float* inp, float* weight, float* bias,
        long batch, long in_channels, long height, long width, long out_channels, long kernel);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_patch_embed_backward(float* dimage, float* dweight, float* dbias, float* dout,
        float* image, float* weight, long batch, long in_channels, long height, long width, long out_channels, long patch);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_deconv_backward(float* dinp, float* dweight, float* dbias, float* dout,
        float* inp, float* weight, long batch, long in_channels, long height, long width, long out_channels, long kernel);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_resize_forward(float* @out, float* inp, long planes, long in_height,
        long in_width, long out_height, long out_width, int mode, float cubic_a, int antialias);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_triplane_sample_forward(float* @out, float* planes, float* points,
        long batch, long num_points, long channels, long height, long width);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_triplane_sample_sum_forward(float* @out, float* planes, float* points, float* bias,
        long batch, long num_points, long channels, long height, long width, int activation);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_triplane_sample_backward(float* dplanes, float* dpoints, float* dout, float* planes,
        float* points, long batch, long num_points, long channels, long height, long width, int deterministic);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_mlp_forward(float* @out, float* inp, float** weights, float** biases,
        long* dims, int num_layers, long rows, int hidden_activation, int output_activation);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_mlp_backward(float* dinp, float** dweights, float** dbiases, float* dout, float* inp,
        float** weights, float** biases, long* dims, int num_layers, long rows, int hidden_activation, int output_activation);

    [LibraryImport(Lib)] internal static partial LrmStatus lrm_convert_f32_to_bf16(ushort* @out, float* inp, long n);
    [LibraryImport(Lib)] internal static partial LrmStatus lrm_convert_bf16_to_f32(float* @out, ushort* inp, long n);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_resize_scaled_forward(float* @out, float* inp, long planes, long in_height,
        long in_width, long out_height, long out_width, int mode, float cubic_a, int antialias,
        double scale_factor_h, double scale_factor_w);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_resize_backward(float* dinp, float* dout, long planes, long in_height,
        long in_width, long out_height, long out_width, int mode, float cubic_a, int antialias);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_resize_scaled_backward(float* dinp, float* dout, long planes, long in_height,
        long in_width, long out_height, long out_width, int mode, float cubic_a, int antialias,
        double scale_factor_h, double scale_factor_w);

    [LibraryImport(Lib)] internal static partial LrmStatus lrm_add_forward(float* @out, float* a, float* b, long n);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_layerscale_forward(float* @out, float* inp, float* gamma, float* residual,
        long rows, long channels);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_layerscale_backward(float* dinp, float* dgamma, float* dresidual, float* dout,
        float* inp, float* gamma, long rows, long channels);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_transpose_forward(float* @out, float* inp, long batch, long rows, long cols);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_nerf_decode_forward(float* sigma, float* rgb, float* raw, long rows);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_nerf_decode_backward(float* draw, float* dsigma, float* drgb, float* raw, long rows);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_rays_forward(float* origins, float* directions, float* depths,
        float* depth_range, float* cameras, long batch, long height, long width, long samples);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_points_forward(float* points, float* origins, float* directions,
        float* depths, long batch, long rays, long samples);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_decode_forward(float* decoded, float* raw, float* points, long rows);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_decode_backward(float* draw, float* ddecoded, float* raw, float* points, long rows);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_importance_forward(float* fine_depths, float* coarse_depths,
        float* coarse_weights, long batch, long rays, long coarse_samples, long fine_samples);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_march_forward(float* rgb, float* depth, float* opacity, float* weights,
        float* depths_a, float* decoded_a, long samples_a, float* depths_b, float* decoded_b, long samples_b,
        float* background, float* depth_range, long batch, long rays);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_render_march_backward(float* ddecoded_a, float* ddecoded_b, float* drgb, float* ddepth,
        float* dopacity, float* depths_a, float* decoded_a, long samples_a, float* depths_b, float* decoded_b, long samples_b,
        float* background, float* depth_range, long batch, long rays);
}

/// <summary><c>lrm_image_format</c>.</summary>
internal enum LrmImageFormat
{
    Unknown = 0,
    Png = 1,
    Jpeg = 2,
}

/// <summary>Image codecs of <c>lrm_native.h</c> (strings are NUL-terminated UTF-8).</summary>
internal static unsafe partial class NativeMethods
{
    /// <summary><c>LRM_IMAGE_DEFAULT_MAX_SIDE</c>.</summary>
    internal const long LRM_IMAGE_DEFAULT_MAX_SIDE = 16384;

    /// <summary><c>LRM_IMAGE_DEFAULT_MAX_PIXELS</c>.</summary>
    internal const long LRM_IMAGE_DEFAULT_MAX_PIXELS = 67108864;

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_image_probe(long* height, long* width, int* has_alpha, int* format,
        byte* data, long size, byte* name, long max_side, long max_pixels);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_image_decode(float* pixels, int* has_alpha, byte* data, long size, byte* name,
        long height, long width, long max_side, long max_pixels);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_image_write_png(byte* path, float* pixels, long height, long width, long channels);
}

/// <summary>Marching cubes of <c>lrm_native.h</c>; <c>lrm_mesh*</c> is an opaque handle (<see cref="nint"/>).</summary>
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_marching_cubes_forward(nint* mesh, float* field, float* bounds,
        long depth, long height, long width, float level);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_mesh_size(long* vertex_count, long* triangle_count, nint mesh);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_mesh_copy(float* vertices, int* triangles, nint mesh,
        long vertex_count, long triangle_count);

    [LibraryImport(Lib)] internal static partial void lrm_mesh_free(nint mesh);
}

/// <summary>Optimizer of <c>lrm_native.h</c> (training).</summary>
internal static unsafe partial class NativeMethods
{
    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_adamw_step(float* param, float* exp_avg, float* exp_avg_sq, float* grad, float lr,
        float beta1, float beta2, float eps, float weight_decay, float grad_scale, long step, long n);

    [LibraryImport(Lib)]
    internal static partial LrmStatus lrm_sum_squares(double* sum, long* nonfinite, float* x, long n);
}
