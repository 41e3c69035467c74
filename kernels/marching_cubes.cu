/*
 * marching_cubes.cu — iso-surface extraction on the GPU with the CPU's exact output order
 * (native/src/marching_cubes.cpp): vertices by their edge's lower grid point (z, y, x), then
 * axis (x, y, z); triangles by cell (z, y, x), then table order. Tables, case index and edge
 * interpolation are kernels/marching_cubes.cuh, shared with the CPU. Forward only.
 *
 *   field (D, H, W) [z][y][x] · vertices (V, 3) (x, y, z) · triangles (T, 3) int32
 *
 * Classify → scan → emit, with shared vertices:
 *   mc_count_kernel           per grid point: crossing edges starting there (0–3, x/y/z);
 *                             per cell: its triangle count (0–5)
 *   scan.cu                   exclusive prefix sums → first vertex id per point, first
 *                             triangle per cell; the totals size the outputs
 *   mc_emit_vertices_kernel   per point: its crossing edges' positions
 *   mc_emit_triangles_kernel  per cell: table triangles; edge e of the cell is the edge
 *                             (origin point, axis) → vertex id = first id of the point + the
 *                             number of crossing axes before this one at that point
 * Placement: v = origin + step·(grid coordinate), origin/step as computed by the host exactly as
 * the CPU does (identity without bounds).
 */
#include "lrm_prelude.cuh"
#include "marching_cubes.cuh"

static __device__ __forceinline__ float lrm_mc_at(const float* field, int height, int width, int z, int y, int x) {
    return field[((long long)z * height + y) * width + x];
}

/* Bit a set when the grid edge from (x, y, z) along axis a crosses the level. */
static __device__ __forceinline__ int lrm_mc_crossings(const float* field, int depth, int height, int width,
                                                       float level, int z, int y, int x) {
    const bool inside = lrm_mc_inside(lrm_mc_at(field, height, width, z, y, x), level);
    int bits = 0;
    if (x + 1 < width && inside != lrm_mc_inside(lrm_mc_at(field, height, width, z, y, x + 1), level)) bits |= 1;
    if (y + 1 < height && inside != lrm_mc_inside(lrm_mc_at(field, height, width, z, y + 1, x), level)) bits |= 2;
    if (z + 1 < depth && inside != lrm_mc_inside(lrm_mc_at(field, height, width, z + 1, y, x), level)) bits |= 4;
    return bits;
}

static __device__ __forceinline__ int lrm_mc_cell_case(const float* field, int height, int width, float level, int z,
                                                       int y, int x) {
    float corner[8];
    for (int i = 0; i < 8; ++i)
        corner[i] = lrm_mc_at(field, height, width, z + lrm_mc_corner_offset[i][2], y + lrm_mc_corner_offset[i][1],
                              x + lrm_mc_corner_offset[i][0]);
    return lrm_mc_case(corner, level);
}

extern "C" __global__ void mc_count_kernel(int* vertex_counts,    // (D, H, W)
                                           int* triangle_counts,  // (D−1, H−1, W−1)
                                           const float* field,    // (D, H, W)
                                           int depth, int height, int width, float level) {
    LRM_GRID_STRIDE(i, (long long)depth * height * width) {
        const int x = (int)(i % width), y = (int)(i / width % height), z = (int)(i / ((long long)width * height));
        vertex_counts[i] = __popc((unsigned int)lrm_mc_crossings(field, depth, height, width, level, z, y, x));
        if (x + 1 < width && y + 1 < height && z + 1 < depth) {
            const long long cell = ((long long)z * (height - 1) + y) * (width - 1) + x;
            triangle_counts[cell] = lrm_mc_triangle_count(lrm_mc_cell_case(field, height, width, level, z, y, x));
        }
    }
}

extern "C" __global__ void mc_emit_vertices_kernel(float* vertices,           // (V, 3)
                                                   const int* vertex_offsets, // (D, H, W) exclusive scan
                                                   const float* field,        // (D, H, W)
                                                   int depth, int height, int width, float level, float origin_x,
                                                   float origin_y, float origin_z, float step_x, float step_y,
                                                   float step_z) {
    const float origin[3] = {origin_x, origin_y, origin_z};
    const float step[3] = {step_x, step_y, step_z};
    LRM_GRID_STRIDE(i, (long long)depth * height * width) {
        const int x = (int)(i % width), y = (int)(i / width % height), z = (int)(i / ((long long)width * height));
        const int bits = lrm_mc_crossings(field, depth, height, width, level, z, y, x);
        if (bits == 0) continue;
        const float value = lrm_mc_at(field, height, width, z, y, x);
        const int point[3] = {x, y, z};
        long long next = vertex_offsets[i];
        for (int axis = 0; axis < 3; ++axis) {
            if (!(bits & (1 << axis))) continue;
            const float other = lrm_mc_at(field, height, width, z + (axis == 2), y + (axis == 1), x + (axis == 0));
            const float t = lrm_mc_edge_t(value, other, level);
            float* v = vertices + 3 * next;
            for (int k = 0; k < 3; ++k) {
                const float coordinate = (float)point[k] + (k == axis ? t : 0.0f);
                v[k] = origin[k] + step[k] * coordinate;
            }
            ++next;
        }
    }
}

extern "C" __global__ void mc_emit_triangles_kernel(int* triangles,               // (T, 3)
                                                    const int* triangle_offsets,  // (D−1, H−1, W−1) exclusive scan
                                                    const int* vertex_offsets,    // (D, H, W) exclusive scan
                                                    const float* field,           // (D, H, W)
                                                    int depth, int height, int width, float level) {
    const long long cells = (long long)(depth - 1) * (height - 1) * (width - 1);
    LRM_GRID_STRIDE(cell, cells) {
        const int x = (int)(cell % (width - 1)), y = (int)(cell / (width - 1) % (height - 1));
        const int z = (int)(cell / ((long long)(width - 1) * (height - 1)));
        const int index = lrm_mc_cell_case(field, height, width, level, z, y, x);
        int* out = triangles + 3LL * triangle_offsets[cell];
        for (int j = 0; j < 3 * LRM_MC_MAX_TRIANGLES && lrm_mc_triangle_table[index][j] >= 0; ++j) {
            const int edge = lrm_mc_triangle_table[index][j];
            const int px = x + lrm_mc_edge_origin[edge][0], py = y + lrm_mc_edge_origin[edge][1];
            const int pz = z + lrm_mc_edge_origin[edge][2];
            const int axis = lrm_mc_edge_axis[edge];
            const int bits = lrm_mc_crossings(field, depth, height, width, level, pz, py, px);
            const int rank = __popc((unsigned int)(bits & ((1 << axis) - 1)));
            out[j] = vertex_offsets[((long long)pz * height + py) * width + px] + rank;
        }
    }
}
