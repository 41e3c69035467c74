// marching_cubes.cpp — iso-surface extraction from a scalar grid (Lorensen & Cline 1987).
//
//   field     (depth, height, width)   indexed [z][y][x], x fastest
//   vertices  (V, 3)                   (x, y, z): grid coordinates, or world coordinates when a
//                                      bounding box maps grid corner (0,0,0) to min and
//                                      (width−1, height−1, depth−1) to max
//   triangles (T, 3) int32             counter-clockwise seen from outside
//
// Inside is value > level (density convention). Tables and edge interpolation live in
// kernels/marching_cubes.cuh. Each grid edge that crosses the level makes exactly one vertex,
// shared by the up to four cells around it; the case table resolves ambiguous faces the same
// way in every cell, so closed level sets give watertight, manifold meshes.
//
// Order, independent of the thread count: vertices by their edge's lower grid point
// (z, y, x), then axis (x, y, z); triangles by cell (z, y, x), then table order. Three passes,
// OpenMP over z-planes: count vertices per plane and triangles per cell slab, prefix sums,
// then each slab numbers the crossing edges of its two bounding planes (the same numbering
// whichever thread does it), writes its own plane's vertices and its triangles. Forward only.
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "marching_cubes.cuh"

struct lrm_mesh {
    std::vector<float> vertices;     // (V, 3)
    std::vector<int32_t> triangles;  // (T, 3)
};

namespace lrm {
namespace {

struct Grid {
    const float* field;
    int64_t depth, height, width;
    float level;

    float at(int64_t z, int64_t y, int64_t x) const { return field[(z * height + y) * width + x]; }

    int cell_case(int64_t z, int64_t y, int64_t x) const {
        float corner[8];
        for (int i = 0; i < 8; ++i)
            corner[i] = at(z + lrm_mc_corner_offset[i][2], y + lrm_mc_corner_offset[i][1],
                           x + lrm_mc_corner_offset[i][0]);
        return lrm_mc_case(corner, level);
    }
};

// Maps grid coordinates to output coordinates: identity, or the bounding box.
struct Placement {
    float origin[3] = {0.0f, 0.0f, 0.0f};
    float step[3] = {1.0f, 1.0f, 1.0f};
};

// Number of grid edges starting at a point of plane z (axes x, y, z) that cross the level.
int64_t count_plane_vertices(const Grid& grid, int64_t z) {
    int64_t count = 0;
    for (int64_t y = 0; y < grid.height; ++y)
        for (int64_t x = 0; x < grid.width; ++x) {
            const bool inside = lrm_mc_inside(grid.at(z, y, x), grid.level);
            if (x + 1 < grid.width) count += inside != lrm_mc_inside(grid.at(z, y, x + 1), grid.level);
            if (y + 1 < grid.height) count += inside != lrm_mc_inside(grid.at(z, y + 1, x), grid.level);
            if (z + 1 < grid.depth) count += inside != lrm_mc_inside(grid.at(z + 1, y, x), grid.level);
        }
    return count;
}

int64_t count_slab_triangles(const Grid& grid, int64_t z) {
    int64_t count = 0;
    for (int64_t y = 0; y + 1 < grid.height; ++y)
        for (int64_t x = 0; x + 1 < grid.width; ++x) count += lrm_mc_triangle_count(grid.cell_case(z, y, x));
    return count;
}

// Numbers the crossing edges starting in plane z from first_id on, in output order, into
// ids (height, width, 3); with vertices, also writes their positions (at first_id on).
void number_plane(int32_t* ids, float* vertices, const Grid& grid, const Placement& placement, int64_t z,
                  int64_t first_id) {
    int64_t next = first_id;
    for (int64_t y = 0; y < grid.height; ++y)
        for (int64_t x = 0; x < grid.width; ++x) {
            const float value = grid.at(z, y, x);
            const bool inside = lrm_mc_inside(value, grid.level);
            const int64_t size[3] = {grid.width, grid.height, grid.depth};
            const int64_t point[3] = {x, y, z};
            for (int axis = 0; axis < 3; ++axis) {
                if (point[axis] + 1 >= size[axis]) continue;
                const float other = grid.at(z + (axis == 2), y + (axis == 1), x + (axis == 0));
                if (inside == lrm_mc_inside(other, grid.level)) continue;
                ids[(y * grid.width + x) * 3 + axis] = static_cast<int32_t>(next);
                if (vertices != nullptr) {
                    const float t = lrm_mc_edge_t(value, other, grid.level);
                    float* v = vertices + 3 * next;
                    for (int k = 0; k < 3; ++k) {
                        const float coordinate = static_cast<float>(point[k]) + (k == axis ? t : 0.0f);
                        v[k] = placement.origin[k] + placement.step[k] * coordinate;
                    }
                }
                ++next;
            }
        }
}

void emit_slab_triangles(int32_t* triangles, const int32_t* ids_low, const int32_t* ids_high, const Grid& grid,
                         int64_t z) {
    int32_t* out = triangles;
    for (int64_t y = 0; y + 1 < grid.height; ++y)
        for (int64_t x = 0; x + 1 < grid.width; ++x) {
            const int index = grid.cell_case(z, y, x);
            const signed char* row = lrm_mc_triangle_table[index];
            for (int i = 0; i < 3 * LRM_MC_MAX_TRIANGLES && row[i] >= 0; ++i) {
                const int edge = row[i];
                const int* origin = lrm_mc_edge_origin[edge];
                const int32_t* ids = origin[2] == 0 ? ids_low : ids_high;
                *out++ = ids[((y + origin[1]) * grid.width + (x + origin[0])) * 3 + lrm_mc_edge_axis[edge]];
            }
        }
}

void marching_cubes_forward(lrm_mesh& mesh, const Grid& grid, const Placement& placement, const Args& args) {
    const int64_t depth = grid.depth;
    std::vector<int64_t> vertex_offset(depth + 1, 0), triangle_offset(depth, 0);
    const int threads = num_threads();
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t z = 0; z < depth; ++z) {
        vertex_offset[z + 1] = count_plane_vertices(grid, z);
        if (z + 1 < depth) triangle_offset[z + 1] = count_slab_triangles(grid, z);
    }
    for (int64_t z = 0; z < depth; ++z) vertex_offset[z + 1] += vertex_offset[z];
    for (int64_t z = 1; z < depth; ++z) triangle_offset[z] += triangle_offset[z - 1];
    // vertex_offset[z]: first vertex of plane z; triangle_offset[z]: first triangle of
    // slab z (cells between planes z and z + 1); the last entries hold the totals.
    const int64_t vertex_count = vertex_offset[depth];
    const int64_t triangle_count = triangle_offset[depth - 1];
    if (vertex_count > std::numeric_limits<int32_t>::max())
        args.fail(LRM_STATUS_UNSUPPORTED, "%lld vertices do not fit int32 triangle indices",
                  static_cast<long long>(vertex_count));
    mesh.vertices.resize(static_cast<size_t>(3 * vertex_count));
    mesh.triangles.resize(static_cast<size_t>(3 * triangle_count));
    const int64_t plane = grid.height * grid.width * 3;
    // One pair of id planes per thread; no more threads than planes.
    const int team = static_cast<int>(std::min<int64_t>(threads, depth));
    std::vector<int32_t> scratch(static_cast<size_t>(2 * plane * team));
#pragma omp parallel num_threads(team)
    {
        int32_t* ids_low = scratch.data() + 2 * plane * omp_get_thread_num();
        int32_t* ids_high = ids_low + plane;
#pragma omp for schedule(dynamic)
        for (int64_t z = 0; z < depth; ++z) {
            number_plane(ids_low, mesh.vertices.data(), grid, placement, z, vertex_offset[z]);
            if (z + 1 < depth) {
                number_plane(ids_high, nullptr, grid, placement, z + 1, vertex_offset[z + 1]);
                emit_slab_triangles(mesh.triangles.data() + 3 * triangle_offset[z], ids_low, ids_high, grid, z);
            }
        }
    }
}

}  // namespace
}  // namespace lrm

extern "C" LRM_API lrm_status lrm_marching_cubes_forward(lrm_mesh** mesh, const float* field, const float* bounds,
                                                         int64_t depth, int64_t height, int64_t width, float level) {
    if (mesh != nullptr) *mesh = nullptr;
    return lrm::guarded("lrm_marching_cubes_forward", [&](const lrm::Args& args) {
        args.not_null(mesh, "mesh").not_null(field, "field");
        const int64_t sizes[3] = {depth, height, width};
        const char* names[3] = {"depth", "height", "width"};
        for (int i = 0; i < 3; ++i)
            if (sizes[i] < 2)
                args.fail(LRM_STATUS_INVALID_ARGUMENT, "%s must be >= 2 (one cell needs two grid points), got %lld",
                          names[i], static_cast<long long>(sizes[i]));
        args.finite(level, "level");
        args.elements({depth, height, width, 3}, "field (depth x height x width) edges");
        lrm::Placement placement;
        if (bounds != nullptr) {
            const int64_t points[3] = {width, height, depth};  // along x, y, z
            for (int k = 0; k < 3; ++k) {
                const float low = bounds[k], high = bounds[3 + k];
                if (!std::isfinite(low) || !std::isfinite(high) || !(high > low))
                    args.fail(LRM_STATUS_INVALID_ARGUMENT,
                              "bounds must be finite with max > min on every axis, got [%g, %g] on axis %c",
                              static_cast<double>(low), static_cast<double>(high), "xyz"[k]);
                placement.origin[k] = low;
                placement.step[k] = (high - low) / static_cast<float>(points[k] - 1);
                // high − low can overflow float (bounds near ±FLT_MAX): the vertices would be inf/NaN.
                const float far = low + placement.step[k] * static_cast<float>(points[k] - 1);
                if (!std::isfinite(placement.step[k]) || !std::isfinite(far))
                    args.fail(LRM_STATUS_INVALID_ARGUMENT,
                              "bounds [%g, %g] on axis %c span more than a float can hold (grid step %g)",
                              static_cast<double>(low), static_cast<double>(high), "xyz"[k],
                              static_cast<double>(placement.step[k]));
            }
        }
        const lrm::Grid grid{field, depth, height, width, level};
        auto result = std::make_unique<lrm_mesh>();
        lrm::marching_cubes_forward(*result, grid, placement, args);
        *mesh = result.release();
    });
}

extern "C" LRM_API lrm_status lrm_mesh_size(int64_t* vertex_count, int64_t* triangle_count, const lrm_mesh* mesh) {
    return lrm::guarded("lrm_mesh_size", [&](const lrm::Args& args) {
        args.not_null(vertex_count, "vertex_count").not_null(triangle_count, "triangle_count").not_null(mesh, "mesh");
        *vertex_count = static_cast<int64_t>(mesh->vertices.size() / 3);
        *triangle_count = static_cast<int64_t>(mesh->triangles.size() / 3);
    });
}

extern "C" LRM_API lrm_status lrm_mesh_copy(float* vertices, int32_t* triangles, const lrm_mesh* mesh,
                                            int64_t vertex_count, int64_t triangle_count) {
    return lrm::guarded("lrm_mesh_copy", [&](const lrm::Args& args) {
        args.not_null(mesh, "mesh");
        const int64_t has_vertices = static_cast<int64_t>(mesh->vertices.size() / 3);
        const int64_t has_triangles = static_cast<int64_t>(mesh->triangles.size() / 3);
        if (vertex_count != has_vertices || triangle_count != has_triangles)
            args.fail(LRM_STATUS_SHAPE_MISMATCH, "buffers for %lld vertices and %lld triangles, the mesh has %lld and %lld",
                      static_cast<long long>(vertex_count), static_cast<long long>(triangle_count),
                      static_cast<long long>(has_vertices), static_cast<long long>(has_triangles));
        if (has_vertices > 0) args.not_null(vertices, "vertices");
        if (has_triangles > 0) args.not_null(triangles, "triangles");
        if (has_vertices > 0) std::memcpy(vertices, mesh->vertices.data(), mesh->vertices.size() * sizeof(float));
        if (has_triangles > 0)
            std::memcpy(triangles, mesh->triangles.data(), mesh->triangles.size() * sizeof(int32_t));
    });
}

extern "C" LRM_API void lrm_mesh_free(lrm_mesh* mesh) { delete mesh; }
