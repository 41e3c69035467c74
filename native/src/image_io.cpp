// image_io.cpp — PNG and JPEG decoding to float RGBA, PNG encoding, with limits.
//
//   lrm_image_probe   header only: size, alpha, format; limits checked here
//   lrm_image_decode  pixels (height, width, 4) fp32 in [0, 1], row-major, RGBA
//   lrm_image_write_png  (height, width, 3 or 4) fp32 → 8-bit PNG, atomically
//
// Decoding reads from memory (the caller reads the file) and names the file in
// every message through `name`. Both codecs report errors by longjmp from their
// error callbacks, so each libpng/libjpeg call sequence lives in a small phase
// function (png_*_phase, jpeg_*_phase) that sets the jump point, holds only
// plain C locals (no destructors skipped, no locals modified after setjmp) and
// returns false on failure with the codec's message in its context. The C++
// wrapper around the phases owns every allocation (RAII) and throws lrm::Error.
// Nothing is ever printed: libpng warnings are dropped, libjpeg's output_message
// is a no-op, and libjpeg warnings that mean damaged data (premature end of file,
// bad Huffman code, ...) are promoted to errors instead of silently yielding a
// grey-padded image.
//
// Limits (decompression bombs): width and height are read from the header and
// checked against max_side and max_pixels before any pixel buffer exists, so a
// 40-byte PNG that claims 100000 x 100000 costs nothing. Progressive JPEGs are
// limited to kMaxJpegScans scans (libjpeg-turbo's advice against scan bombs).
//
// Conversions: 8-bit samples v → v/255, 16-bit v → v/65535. Grey is replicated
// to RGB; palette and tRNS are expanded (tRNS becomes alpha); images without
// alpha get alpha = 1. CMYK / YCCK JPEGs are converted with
// r = (1 − c)(1 − k) (Adobe files store inverted values, as Photoshop writes them;
// this is also what PIL's convert('RGB') does). No colour management: gAMA, sRGB,
// iCCP are ignored (values are taken as stored). Pixels come out in stored order; EXIF
// orientation is read and applied by the C# Image (bindings/LrmNative/Imaging/ExifOrientation.cs).
#include "common.hpp"
#include "errors.hpp"
#include "lrm_native.h"

#include <cerrno>
#include <cinttypes>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <png.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>

#include <atomic>

namespace lrm {
namespace {

constexpr int kMaxJpegScans = 500;
constexpr size_t kMessageSize = 512;

const unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

lrm_image_format detect_format(const uint8_t* data, int64_t size) {
    if (size >= 8 && std::memcmp(data, kPngSignature, 8) == 0) return LRM_IMAGE_FORMAT_PNG;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return LRM_IMAGE_FORMAT_JPEG;
    return LRM_IMAGE_FORMAT_UNKNOWN;
}

struct Header {
    int64_t height = 0;
    int64_t width = 0;
    bool has_alpha = false;
    lrm_image_format format = LRM_IMAGE_FORMAT_UNKNOWN;
};

// Refuses sizes over the limits before anything is allocated.
void check_limits(const Args& args, const char* name, const char* kind, int64_t height, int64_t width, int64_t max_side,
                  int64_t max_pixels) {
    if (height <= 0 || width <= 0)
        args.fail(LRM_STATUS_IO_ERROR, "%s: corrupt %s: header gives an empty image (%" PRId64 " x %" PRId64 ")", name, kind,
                  width, height);
    if (width > max_side || height > max_side)
        args.fail(LRM_STATUS_IO_ERROR,
                  "%s: %s header claims %" PRId64 " x %" PRId64 " pixels, over the limit of %" PRId64
                  " pixels per side; refusing to decode (a decompression bomb or a huge image; raise the limit to accept it)",
                  name, kind, width, height, max_side);
    if (height > max_pixels / width)
        args.fail(LRM_STATUS_IO_ERROR,
                  "%s: %s header claims %" PRId64 " x %" PRId64 " = %" PRId64 " pixels, over the limit of %" PRId64
                  " pixels; refusing to decode (a decompression bomb or a huge image; raise the limit to accept it)",
                  name, kind, width, height, width * height, max_pixels);
}

// ---- PNG --------------------------------------------------------------------

struct PngContext {
    const uint8_t* data = nullptr;
    size_t size = 0;
    size_t position = 0;
    char message[kMessageSize] = "";
    png_structp png = nullptr;
    png_infop info = nullptr;
    // Header fields (phase 1).
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    bool has_alpha = false;
};

void png_on_error(png_structp png, png_const_charp message) {
    auto* context = static_cast<PngContext*>(png_get_error_ptr(png));
    std::snprintf(context->message, kMessageSize, "%s", message != nullptr ? message : "unknown libpng error");
    png_longjmp(png, 1);
}

// Warnings (unknown chunks, bad ancillary CRCs, known-bad sRGB profiles) do not stop a decode; never printed.
void png_on_warning(png_structp, png_const_charp) {}

void png_read_memory(png_structp png, png_bytep out, png_size_t length) {
    auto* context = static_cast<PngContext*>(png_get_io_ptr(png));
    if (length > context->size - context->position) png_error(png, "unexpected end of file (truncated)");
    std::memcpy(out, context->data + context->position, length);
    context->position += length;
}

// Phase 1: IHDR and the chunks before the first IDAT.
bool png_header_phase(PngContext* context) {
    context->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, context, png_on_error, png_on_warning);
    if (context->png == nullptr) {
        std::snprintf(context->message, kMessageSize, "cannot create a libpng reader (out of memory?)");
        return false;
    }
    context->info = png_create_info_struct(context->png);
    if (context->info == nullptr) {
        std::snprintf(context->message, kMessageSize, "cannot create a libpng info struct (out of memory?)");
        return false;
    }
    if (setjmp(png_jmpbuf(context->png))) return false;
    png_set_read_fn(context->png, context, png_read_memory);
    // Our own limits are checked (with a clearer message) right after this phase.
    png_set_user_limits(context->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(context->png, context->info);
    png_get_IHDR(context->png, context->info, &context->width, &context->height, &context->bit_depth,
                 &context->color_type, &context->interlace, nullptr, nullptr);
    context->has_alpha = (context->color_type & PNG_COLOR_MASK_ALPHA) != 0 ||
                         png_get_valid(context->png, context->info, PNG_INFO_tRNS) != 0;
    return true;
}

// One decoded row of 8-bit or big-endian 16-bit samples → floats in [0, 1].
void png_row_to_float(float* out, png_const_bytep row, size_t values, bool sixteen) {
    if (sixteen)
        for (size_t i = 0; i < values; ++i) out[i] = static_cast<float>((row[2 * i] << 8) | row[2 * i + 1]) / 65535.0f;
    else
        for (size_t i = 0; i < values; ++i) out[i] = static_cast<float>(row[i]) / 255.0f;
}

// Phase 2: transforms to RGBA 8/16-bit, then rows → floats. `raw` holds one row
// (non-interlaced) or the whole image (interlaced), `rows` the row pointers then.
bool png_pixels_phase(PngContext* context, float* pixels, png_bytep raw, png_bytepp rows, size_t row_bytes) {
    png_structp png = context->png;
    png_infop info = context->info;
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_expand(png);  // palette → RGB, grey < 8 bits → 8 bits, tRNS → alpha
    if ((context->color_type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
    if (!context->has_alpha) png_set_add_alpha(png, 0xFFFF, PNG_FILLER_AFTER);
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != row_bytes || png_get_channels(png, info) != 4)
        png_error(png, "internal: unexpected row layout after transforms");

    const size_t width = context->width;
    const bool sixteen = context->bit_depth == 16;
    if (passes == 1) {
        for (png_uint_32 y = 0; y < context->height; ++y) {
            png_read_row(png, raw, nullptr);
            png_row_to_float(pixels + static_cast<size_t>(y) * width * 4, raw, width * 4, sixteen);
        }
    } else {
        png_read_image(png, rows);
        for (png_uint_32 y = 0; y < context->height; ++y)
            png_row_to_float(pixels + static_cast<size_t>(y) * width * 4, rows[y], width * 4, sixteen);
    }
    // The chunks after the image up to IEND: a file cut after its pixels is still truncated.
    png_read_end(png, nullptr);
    return true;
}

class PngReader {
public:
    PngReader(const uint8_t* data, int64_t size) {
        context_.data = data;
        context_.size = static_cast<size_t>(size);
    }
    ~PngReader() {
        if (context_.png != nullptr) png_destroy_read_struct(&context_.png, context_.info != nullptr ? &context_.info : nullptr, nullptr);
    }
    PngReader(const PngReader&) = delete;
    PngReader& operator=(const PngReader&) = delete;

    PngContext& context() { return context_; }

private:
    PngContext context_;
};

[[noreturn]] void fail_codec(const Args& args, const char* name, const char* kind, const char* message) {
    args.fail(LRM_STATUS_IO_ERROR, "%s: corrupt or truncated %s file (%s)", name, kind, message);
}

Header png_header(const Args& args, PngReader& reader, const char* name) {
    PngContext& context = reader.context();
    if (!png_header_phase(&context)) fail_codec(args, name, "PNG", context.message);
    Header header;
    header.height = context.height;
    header.width = context.width;
    header.has_alpha = context.has_alpha;
    header.format = LRM_IMAGE_FORMAT_PNG;
    return header;
}

void png_decode(const Args& args, PngReader& reader, const char* name, float* pixels) {
    PngContext& context = reader.context();
    const size_t width = context.width, height = context.height;
    const size_t row_bytes = width * 4 * (context.bit_depth == 16 ? 2 : 1);
    const bool interlaced = context.interlace != PNG_INTERLACE_NONE;
    std::vector<png_byte> raw(interlaced ? row_bytes * height : row_bytes);
    std::vector<png_bytep> rows(interlaced ? height : 0);
    for (size_t y = 0; y < rows.size(); ++y) rows[y] = raw.data() + y * row_bytes;
    if (!png_pixels_phase(&context, pixels, raw.data(), rows.data(), row_bytes))
        fail_codec(args, name, "PNG", context.message);
}

// ---- JPEG -------------------------------------------------------------------

struct JpegContext {
    jpeg_decompress_struct info;
    jpeg_error_mgr error;
    jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[kMessageSize] = "";
    bool created = false;
};

// libjpeg keeps client_data through jpeg_create_decompress; it points at the context.
JpegContext* jpeg_context_of(j_common_ptr info) { return static_cast<JpegContext*>(info->client_data); }

[[noreturn]] void jpeg_on_error(j_common_ptr info) {
    JpegContext* context = jpeg_context_of(info);
    char buffer[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, buffer);
    std::snprintf(context->message, kMessageSize, "%s", buffer);
    std::longjmp(context->jump, 1);
}

// Warnings that mean the image data is damaged become errors; others (unknown JFIF
// revision, extraneous bytes between markers, bad thumbnails) are ignored. Trace
// messages (level > 0) are ignored. Nothing is printed.
void jpeg_on_message(j_common_ptr info, int level) {
    if (level >= 0) return;
    switch (info->err->msg_code) {
        case JWRN_JPEG_EOF:
        case JWRN_HIT_MARKER:
        case JWRN_HUFF_BAD_CODE:
        case JWRN_ARITH_BAD_CODE:
        case JWRN_MUST_RESYNC:
        case JWRN_NOT_SEQUENTIAL:
        case JWRN_BOGUS_PROGRESSION:
            jpeg_on_error(info);
        default:
            info->err->num_warnings++;
            return;
    }
}

void jpeg_no_output(j_common_ptr) {}

void jpeg_on_progress(j_common_ptr info) {
    auto decompress = reinterpret_cast<j_decompress_ptr>(info);
    if (decompress->input_scan_number > kMaxJpegScans) {
        JpegContext* context = jpeg_context_of(info);
        std::snprintf(context->message, kMessageSize,
                      "progressive JPEG with more than %d scans; refusing to decode (a scan bomb)", kMaxJpegScans);
        std::longjmp(context->jump, 1);
    }
}

bool jpeg_header_phase(JpegContext* context, const uint8_t* data, size_t size) {
    context->info.err = jpeg_std_error(&context->error);
    context->error.error_exit = jpeg_on_error;
    context->error.emit_message = jpeg_on_message;
    context->error.output_message = jpeg_no_output;
    context->info.client_data = context;
    if (setjmp(context->jump)) return false;
    jpeg_create_decompress(&context->info);
    context->created = true;
    context->progress.progress_monitor = jpeg_on_progress;
    context->info.progress = &context->progress;
    jpeg_mem_src(&context->info, data, static_cast<unsigned long>(size));
    jpeg_read_header(&context->info, TRUE);
    return true;
}

// Scanlines of `components` bytes per pixel → RGBA floats (alpha 1).
bool jpeg_pixels_phase(JpegContext* context, float* pixels, JSAMPLE* row, bool inverted_cmyk) {
    j_decompress_ptr info = &context->info;
    if (setjmp(context->jump)) return false;
    switch (info->jpeg_color_space) {
        case JCS_GRAYSCALE: info->out_color_space = JCS_GRAYSCALE; break;
        case JCS_CMYK:
        case JCS_YCCK: info->out_color_space = JCS_CMYK; break;
        default: info->out_color_space = JCS_RGB; break;
    }
    jpeg_start_decompress(info);
    const int components = info->output_components;
    const size_t width = info->output_width;
    const int expected = info->out_color_space == JCS_GRAYSCALE ? 1 : info->out_color_space == JCS_CMYK ? 4 : 3;
    if (components != expected || info->output_width != info->image_width || info->output_height != info->image_height) {
        std::snprintf(context->message, kMessageSize, "internal: unexpected decoder output layout");
        return false;
    }
    while (info->output_scanline < info->output_height) {
        const size_t y = info->output_scanline;
        JSAMPROW rows[1] = {row};
        if (jpeg_read_scanlines(info, rows, 1) != 1) {
            std::snprintf(context->message, kMessageSize, "decoder returned no scanline %zu", y);
            return false;
        }
        float* out = pixels + y * width * 4;
        for (size_t x = 0; x < width; ++x) {
            const JSAMPLE* p = row + x * components;
            float r, g, b;
            if (components == 1) {
                r = g = b = static_cast<float>(p[0]) / 255.0f;
            } else if (components == 3) {
                r = static_cast<float>(p[0]) / 255.0f;
                g = static_cast<float>(p[1]) / 255.0f;
                b = static_cast<float>(p[2]) / 255.0f;
            } else {
                // Adobe (inverted) CMYK stores 255 − ink: r = c'·k'/255²; plain CMYK r = (255 − c)(255 − k)/255².
                const float c = inverted_cmyk ? p[0] : 255 - p[0];
                const float m = inverted_cmyk ? p[1] : 255 - p[1];
                const float yy = inverted_cmyk ? p[2] : 255 - p[2];
                const float k = inverted_cmyk ? p[3] : 255 - p[3];
                r = c * k * (1.0f / (255.0f * 255.0f));
                g = m * k * (1.0f / (255.0f * 255.0f));
                b = yy * k * (1.0f / (255.0f * 255.0f));
            }
            out[4 * x] = r;
            out[4 * x + 1] = g;
            out[4 * x + 2] = b;
            out[4 * x + 3] = 1.0f;
        }
    }
    jpeg_finish_decompress(info);
    return true;
}

class JpegReader {
public:
    JpegReader() = default;
    ~JpegReader() {
        if (context_.created) jpeg_destroy_decompress(&context_.info);
    }
    JpegReader(const JpegReader&) = delete;
    JpegReader& operator=(const JpegReader&) = delete;

    JpegContext& context() { return context_; }

private:
    JpegContext context_{};
};

Header jpeg_header(const Args& args, JpegReader& reader, const char* name, const uint8_t* data, int64_t size) {
    JpegContext& context = reader.context();
    if (!jpeg_header_phase(&context, data, static_cast<size_t>(size))) fail_codec(args, name, "JPEG", context.message);
    Header header;
    header.height = context.info.image_height;
    header.width = context.info.image_width;
    header.has_alpha = false;
    header.format = LRM_IMAGE_FORMAT_JPEG;
    return header;
}

void jpeg_decode(const Args& args, JpegReader& reader, const char* name, float* pixels) {
    JpegContext& context = reader.context();
    const size_t components = context.info.jpeg_color_space == JCS_GRAYSCALE ? 1
                              : (context.info.jpeg_color_space == JCS_CMYK || context.info.jpeg_color_space == JCS_YCCK)
                                  ? 4
                                  : 3;
    std::vector<JSAMPLE> row(static_cast<size_t>(context.info.image_width) * components);
    const bool inverted = context.info.saw_Adobe_marker != 0;
    if (!jpeg_pixels_phase(&context, pixels, row.data(), inverted)) fail_codec(args, name, "JPEG", context.message);
}

// ---- shared entry logic ----------------------------------------------------------

const char* display_name(const char* name) { return name != nullptr && name[0] != '\0' ? name : "<memory>"; }

void check_decode_args(const Args& args, const uint8_t* data, int64_t size, int64_t max_side, int64_t max_pixels) {
    args.not_null(data, "data").positive(size, "size").positive(max_side, "max_side").positive(max_pixels, "max_pixels");
}

[[noreturn]] void fail_unknown_format(const Args& args, const char* name, const uint8_t* data, int64_t size) {
    char head[3 * 8 + 1] = "";
    const int64_t shown = size < 8 ? size : 8;
    for (int64_t i = 0; i < shown; ++i) std::snprintf(head + 3 * i, sizeof head - 3 * i, "%02X ", data[i]);
    if (shown > 0) head[3 * shown - 1] = '\0';
    args.fail(LRM_STATUS_IO_ERROR, "%s: not a PNG or JPEG file (first bytes: %s)", name, head);
}

// ---- PNG writing --------------------------------------------------------------

struct PngWriteContext {
    FILE* file = nullptr;
    char message[kMessageSize] = "";
    png_structp png = nullptr;
    png_infop info = nullptr;
};

void png_on_write_error(png_structp png, png_const_charp message) {
    auto* context = static_cast<PngWriteContext*>(png_get_error_ptr(png));
    std::snprintf(context->message, kMessageSize, "%s", message != nullptr ? message : "unknown libpng error");
    png_longjmp(png, 1);
}

inline png_byte to_byte(float value) {
    // Clamped to [0, 1] and rounded to nearest; NaN → 0.
    if (!(value > 0.0f)) return 0;
    if (value >= 1.0f) return 255;
    return static_cast<png_byte>(value * 255.0f + 0.5f);
}

bool png_write_phase(PngWriteContext* context, const float* pixels, png_bytep row, png_uint_32 height, png_uint_32 width,
                     int channels) {
    context->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, context, png_on_write_error, png_on_warning);
    if (context->png == nullptr) {
        std::snprintf(context->message, kMessageSize, "cannot create a libpng writer (out of memory?)");
        return false;
    }
    context->info = png_create_info_struct(context->png);
    if (context->info == nullptr) {
        std::snprintf(context->message, kMessageSize, "cannot create a libpng info struct (out of memory?)");
        return false;
    }
    if (setjmp(png_jmpbuf(context->png))) return false;
    png_init_io(context->png, context->file);
    png_set_IHDR(context->png, context->info, width, height, 8, channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(context->png, context->info);
    const size_t values = static_cast<size_t>(width) * channels;
    for (png_uint_32 y = 0; y < height; ++y) {
        const float* in = pixels + static_cast<size_t>(y) * values;
        for (size_t i = 0; i < values; ++i) row[i] = to_byte(in[i]);
        png_write_row(context->png, row);
    }
    png_write_end(context->png, context->info);
    return true;
}

// A temporary file next to the target, removed unless committed by rename.
class TemporaryFile {
public:
    TemporaryFile(const Args& args, const std::string& target) {
        static std::atomic<uint64_t> counter{0};
        const size_t slash = target.find_last_of('/');
        const std::string directory = slash == std::string::npos ? std::string() : target.substr(0, slash + 1);
        const std::string base = slash == std::string::npos ? target : target.substr(slash + 1);
        for (int attempt = 0; attempt < 100; ++attempt) {
            path_ = directory + "." + base + "." + std::to_string(getpid()) + "." +
                    std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + ".tmp";
            const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd >= 0) {
                file_ = ::fdopen(fd, "wb");
                if (file_ == nullptr) {
                    const int error = errno;
                    ::close(fd);
                    ::unlink(path_.c_str());
                    args.fail(LRM_STATUS_IO_ERROR, "%s: cannot open a temporary file for writing: %s", target.c_str(),
                              std::strerror(error));
                }
                return;
            }
            if (errno != EEXIST)
                args.fail(LRM_STATUS_IO_ERROR, "%s: cannot create a temporary file next to it: %s", target.c_str(),
                          std::strerror(errno));
        }
        args.fail(LRM_STATUS_IO_ERROR, "%s: cannot create a unique temporary file next to it", target.c_str());
    }
    ~TemporaryFile() {
        if (file_ != nullptr) std::fclose(file_);
        if (!committed_) ::unlink(path_.c_str());
    }
    TemporaryFile(const TemporaryFile&) = delete;
    TemporaryFile& operator=(const TemporaryFile&) = delete;

    FILE* file() { return file_; }

    // Flushes to disk, closes and renames over the target.
    void commit(const Args& args, const std::string& target) {
        if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
            const int error = errno;
            std::fclose(file_);
            file_ = nullptr;
            args.fail(LRM_STATUS_IO_ERROR, "%s: cannot write: %s", target.c_str(), std::strerror(error));
        }
        const int closed = std::fclose(file_);
        file_ = nullptr;
        if (closed != 0) args.fail(LRM_STATUS_IO_ERROR, "%s: cannot write: %s", target.c_str(), std::strerror(errno));
        if (::rename(path_.c_str(), target.c_str()) != 0)
            args.fail(LRM_STATUS_IO_ERROR, "%s: cannot replace it with the written file: %s", target.c_str(),
                      std::strerror(errno));
        committed_ = true;
    }

private:
    std::string path_;
    FILE* file_ = nullptr;
    bool committed_ = false;
};

}  // namespace
}  // namespace lrm

extern "C" {

LRM_API lrm_status lrm_image_probe(int64_t* height, int64_t* width, int32_t* has_alpha, int32_t* format,
                                   const uint8_t* data, int64_t size, const char* name, int64_t max_side,
                                   int64_t max_pixels) {
    return lrm::guarded("lrm_image_probe", [&](const lrm::Args& args) {
        args.not_null(height, "height").not_null(width, "width");
        lrm::check_decode_args(args, data, size, max_side, max_pixels);
        const char* file = lrm::display_name(name);
        lrm::Header header;
        switch (lrm::detect_format(data, size)) {
            case LRM_IMAGE_FORMAT_PNG: {
                lrm::PngReader reader(data, size);
                header = lrm::png_header(args, reader, file);
                break;
            }
            case LRM_IMAGE_FORMAT_JPEG: {
                lrm::JpegReader reader;
                header = lrm::jpeg_header(args, reader, file, data, size);
                break;
            }
            default: lrm::fail_unknown_format(args, file, data, size);
        }
        lrm::check_limits(args, file, header.format == LRM_IMAGE_FORMAT_PNG ? "PNG" : "JPEG", header.height,
                          header.width, max_side, max_pixels);
        *height = header.height;
        *width = header.width;
        if (has_alpha != nullptr) *has_alpha = header.has_alpha ? 1 : 0;
        if (format != nullptr) *format = header.format;
    });
}

LRM_API lrm_status lrm_image_decode(float* pixels, int32_t* has_alpha, const uint8_t* data, int64_t size,
                                    const char* name, int64_t height, int64_t width, int64_t max_side,
                                    int64_t max_pixels) {
    return lrm::guarded("lrm_image_decode", [&](const lrm::Args& args) {
        args.not_null(pixels, "pixels").positive(height, "height").positive(width, "width");
        lrm::check_decode_args(args, data, size, max_side, max_pixels);
        args.elements({height, width, 4}, "pixels (height x width x 4)");
        const char* file = lrm::display_name(name);
        auto check_header = [&](const lrm::Header& header, const char* kind) {
            lrm::check_limits(args, file, kind, header.height, header.width, max_side, max_pixels);
            if (header.height != height || header.width != width)
                args.fail(LRM_STATUS_SHAPE_MISMATCH,
                          "%s: the caller expects %" PRId64 " x %" PRId64 " pixels, the %s file has %" PRId64 " x %" PRId64,
                          file, width, height, kind, header.width, header.height);
            if (has_alpha != nullptr) *has_alpha = header.has_alpha ? 1 : 0;
        };
        switch (lrm::detect_format(data, size)) {
            case LRM_IMAGE_FORMAT_PNG: {
                lrm::PngReader reader(data, size);
                check_header(lrm::png_header(args, reader, file), "PNG");
                lrm::png_decode(args, reader, file, pixels);
                break;
            }
            case LRM_IMAGE_FORMAT_JPEG: {
                lrm::JpegReader reader;
                check_header(lrm::jpeg_header(args, reader, file, data, size), "JPEG");
                lrm::jpeg_decode(args, reader, file, pixels);
                break;
            }
            default: lrm::fail_unknown_format(args, file, data, size);
        }
    });
}

LRM_API lrm_status lrm_image_write_png(const char* path, const float* pixels, int64_t height, int64_t width,
                                       int64_t channels) {
    return lrm::guarded("lrm_image_write_png", [&](const lrm::Args& args) {
        args.not_null(path, "path").not_null(pixels, "pixels").positive(height, "height").positive(width, "width");
        if (path[0] == '\0') args.fail(LRM_STATUS_INVALID_ARGUMENT, "path is empty");
        if (channels != 3 && channels != 4)
            args.fail(LRM_STATUS_INVALID_ARGUMENT, "channels must be 3 (RGB) or 4 (RGBA), got %" PRId64, channels);
        args.elements({height, width, channels}, "pixels (height x width x channels)");
        if (height > PNG_UINT_31_MAX || width > PNG_UINT_31_MAX || width * channels > PNG_UINT_31_MAX)
            args.fail(LRM_STATUS_UNSUPPORTED, "%s: %" PRId64 " x %" PRId64 " pixels exceed what PNG can store", path, width,
                      height);
        const std::string target(path);
        std::vector<png_byte> row(static_cast<size_t>(width * channels));
        lrm::TemporaryFile temporary(args, target);
        lrm::PngWriteContext context;
        context.file = temporary.file();
        const bool written = lrm::png_write_phase(&context, pixels, row.data(), static_cast<png_uint_32>(height),
                                                  static_cast<png_uint_32>(width), static_cast<int>(channels));
        if (context.png != nullptr) png_destroy_write_struct(&context.png, context.info != nullptr ? &context.info : nullptr);
        if (!written) args.fail(LRM_STATUS_IO_ERROR, "%s: cannot write PNG: %s", path, context.message);
        temporary.commit(args, target);
    });
}

}  // extern "C"
