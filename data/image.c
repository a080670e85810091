#include "data/image.h"

#include <errno.h>
#include <stdbool.h>
#include <jerror.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
// jpeglib.h needs FILE and size_t before it.
#include <jpeglib.h>

sslc_status sslc_image_alloc(sslc_image *img, int64_t height, int64_t width, int64_t channels)
{
    *img = (sslc_image){0};
    if (height <= 0 || width <= 0 || channels <= 0)
        return sslc_error(SSLC_ERR_INVALID, "image: bad size %lldx%lldx%lld", (long long)height,
                          (long long)width, (long long)channels);
    img->data = sslc_malloc((size_t)height * (size_t)width * (size_t)channels);
    if (!img->data)
        return SSLC_ERR_NOMEM;
    img->height = img->full_height = height;
    img->width = img->full_width = width;
    img->channels = channels;
    return SSLC_OK;
}

void sslc_image_free(sslc_image *img)
{
    if (!img)
        return;
    free(img->data);
    *img = (sslc_image){0};
}

sslc_image_format sslc_image_sniff(const uint8_t *b, size_t size)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(b, png_sig, 8) == 0)
        return SSLC_IMAGE_PNG;
    if (size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return SSLC_IMAGE_JPEG;
    return SSLC_IMAGE_UNKNOWN;
}

void sslc_rgb_to_luma(uint8_t *restrict luma, const uint8_t *restrict rgb, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = rgb[3 * i] * 19595u + rgb[3 * i + 1] * 38470u + rgb[3 * i + 2] * 7471u +
                     0x8000u;
        luma[i] = (uint8_t)(v >> 16);
    }
}

static void gray_to_rgb(uint8_t *restrict rgb, const uint8_t *restrict gray, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
}

static sslc_status check_limit(const char *name, int64_t h, int64_t w, const sslc_decode_options *opt)
{
    if (h <= 0 || w <= 0)
        return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': image has no pixels", name);
    if (opt && opt->max_pixels > 0 && h * w > opt->max_pixels)
        return sslc_error(SSLC_ERR_FORMAT,
                          "cannot decode '%s': %lldx%lld = %lld pixels is over the limit of %lld "
                          "(raise it with --max-pixels)",
                          name, (long long)w, (long long)h, (long long)(h * w),
                          (long long)opt->max_pixels);
    return SSLC_OK;
}

// ---------------------------------------------------------------- JPEG

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level >= 0)
        return; // trace messages
    int code = c->err->msg_code;
    // Harmless oddities that lose no pixels; anything else (premature end
    // of file, corrupt entropy data, resync) means libjpeg would invent
    // pixels, so the image is refused.
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR ||
        code == JWRN_BOGUS_ICC || code == JWRN_TOO_MUCH_DATA)
        return;
    jpeg_on_error(c);
}

// Pixels of margin around a decoded window: libjpeg-turbo's "fancy"
// chroma upsampling treats the edges of a cropped row as image edges, so
// the outermost column of a cropped decode can differ from a whole decode
// (tests/data: jpeg_window_matches_whole_decode fails with no margin).
enum { JPEG_WINDOW_MARGIN = 2 };

// Whether the window of opt asks for less than the whole H x W image and
// the file is whole: it ends with the end-of-image marker, so a partial
// decode cannot hide a truncation (other damage below the window can go
// unnoticed; see sslc_decode_options).
static bool jpeg_use_window(const sslc_decode_options *opt, const uint8_t *bytes, size_t size,
                            int64_t H, int64_t W)
{
    if (!opt || opt->window_bottom <= opt->window_top || opt->window_right <= opt->window_left)
        return false;
    if (opt->window_top <= 0 && opt->window_left <= 0 && opt->window_bottom >= H &&
        opt->window_right >= W)
        return false;
    return size >= 2 && bytes[size - 2] == 0xff && bytes[size - 1] == 0xd9;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static sslc_status jpeg_decode(sslc_image *out, const uint8_t *bytes, size_t size, const char *name,
                               const sslc_decode_options *opt, int *scale_out, bool header_only,
                               int64_t *ph, int64_t *pw, int64_t *pc)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    uint8_t *volatile raw = NULL; // CMYK / gray rows before conversion
    sslc_image *volatile result = out;
    if (result)
        memset(result, 0, sizeof *result);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.emit_message = jpeg_on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(raw);
        if (result)
            sslc_image_free(result);
        return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': %s", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int64_t H = cinfo.image_height, W = cinfo.image_width;
    int native = cinfo.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    sslc_status st = check_limit(name, H, W, opt);
    if (st != SSLC_OK || header_only) {
        jpeg_destroy_decompress(&cinfo);
        if (ph)
            *ph = H, *pw = W, *pc = native;
        return st;
    }
    int want = opt && opt->channels ? opt->channels : native;
    int denom = 1;
    if (opt && opt->choose_scale) {
        denom = opt->choose_scale(opt->ctx, H, W);
        if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
            denom = 1;
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)denom;
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk)
        cinfo.out_color_space = JCS_CMYK;
    else if (native == 1)
        cinfo.out_color_space = JCS_GRAYSCALE;
    else
        cinfo.out_color_space = JCS_RGB; // gray output from colour goes through PIL's luma
    jpeg_start_decompress(&cinfo);
    int64_t top = 0, left = 0, oh = cinfo.output_height;
    // Progressive files decode whole: every scan must be read anyway, and on
    // corrupt scans a windowed decode was found to differ from a whole one
    // (tests/fuzz/regressions/jpeg/progressive-window).
    bool window = denom == 1 && !cinfo.progressive_mode && jpeg_use_window(opt, bytes, size, H, W);
    if (window) {
        // Brought near the image before the margin is added, so that any
        // int64 (INT64_MIN, INT64_MAX) is safe; the result is the same.
        const int64_t m = JPEG_WINDOW_MARGIN;
        top = clamp64(clamp64(opt->window_top, -m, H + m) - m, 0, H - 1);
        int64_t bottom = clamp64(clamp64(opt->window_bottom, -m, H + m) + m, top + 1, H);
        left = clamp64(clamp64(opt->window_left, -m, W + m) - m, 0, W - 1);
        int64_t right = clamp64(clamp64(opt->window_right, -m, W + m) + m, left + 1, W);
        JDIMENSION x = (JDIMENSION)left, w = (JDIMENSION)(right - left);
        jpeg_crop_scanline(&cinfo, &x, &w); // moves x left to an iMCU boundary
        left = x;
        if (top > 0)
            jpeg_skip_scanlines(&cinfo, (JDIMENSION)top);
        oh = bottom - top;
    }
    int64_t ow = cinfo.output_width, oc = cinfo.output_components;
    st = sslc_image_alloc(result, oh, ow, want);
    if (st != SSLC_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    if (window) {
        result->top = top, result->left = left;
        result->full_height = H, result->full_width = W;
    }
    bool direct = oc == want;
    if (!direct) {
        raw = sslc_malloc((size_t)(oh * ow * oc));
        if (!raw) {
            jpeg_destroy_decompress(&cinfo);
            sslc_image_free(result);
            return SSLC_ERR_NOMEM;
        }
    }
    uint8_t *dst = direct ? result->data : raw;
    for (int64_t y = 0; y < oh;) {
        JSAMPROW row = dst + (size_t)y * (size_t)(ow * oc);
        y += jpeg_read_scanlines(&cinfo, &row, 1);
    }
    bool adobe = cinfo.saw_Adobe_marker;
    // A window that stops above the last row ends here: finishing would
    // decode the rest.
    if (cinfo.output_scanline == cinfo.output_height)
        jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    int64_t n = oh * ow;
    if (cmyk) {
        // Adobe writes CMYK inverted; then PIL's cmyk2rgb:
        // R = nk - c*nk/255 with nk = 255 - K, in its MULDIV255 rounding.
        uint8_t *rgb = want == 3 ? result->data : raw;
        for (int64_t i = 0; i < n; i++) {
            int px[4];
            for (int j = 0; j < 4; j++)
                px[j] = adobe ? 255 - raw[4 * i + j] : raw[4 * i + j];
            int nk = 255 - px[3];
            uint8_t v[3];
            for (int j = 0; j < 3; j++) {
                int t = px[j] * nk + 128;
                int r = nk - (((t >> 8) + t) >> 8);
                v[j] = (uint8_t)(r < 0 ? 0 : r);
            }
            // In place when want == 1: entry i is written at 3i..3i+2,
            // after entries up to i were read from 4i..4i+3.
            rgb[3 * i] = v[0], rgb[3 * i + 1] = v[1], rgb[3 * i + 2] = v[2];
        }
        if (want == 1)
            sslc_rgb_to_luma(result->data, raw, n);
    } else if (!direct) {
        if (want == 3)
            gray_to_rgb(result->data, raw, n);
        else
            sslc_rgb_to_luma(result->data, raw, n);
    }
    free(raw);
    if (scale_out)
        *scale_out = denom;
    return SSLC_OK;
}

// ---------------------------------------------------------------- PNG

typedef struct png_src {
    const uint8_t *bytes;
    size_t size, pos;
    char msg[256];
    jmp_buf jump;
} png_src;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; // ancillary-chunk complaints (bad iCCP, gamma): pixels are intact
}

static void png_read_mem(png_structp png, png_bytep data, size_t length)
{
    png_src *s = png_get_io_ptr(png);
    if (length > s->size - s->pos)
        png_error(png, "file is truncated");
    memcpy(data, s->bytes + s->pos, length);
    s->pos += length;
}

static sslc_status png_decode(sslc_image *out, const uint8_t *bytes, size_t size, const char *name,
                              const sslc_decode_options *opt, bool header_only, int64_t *ph,
                              int64_t *pw, int64_t *pc)
{
    png_src src = {.bytes = bytes, .size = size, .pos = 0, .msg = ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                             png_on_warning);
    if (!png)
        return sslc_error(SSLC_ERR_NOMEM, "cannot decode '%s': libpng out of memory", name);
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    sslc_image *volatile result = out;
    if (result)
        memset(result, 0, sizeof *result);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return sslc_error(SSLC_ERR_NOMEM, "cannot decode '%s': libpng out of memory", name);
    }
    if (setjmp(src.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(raw);
        free(rows);
        if (result)
            sslc_image_free(result);
        return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': %s", name, src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    int64_t H = png_get_image_height(png, info), W = png_get_image_width(png, info);
    int color = png_get_color_type(png, info);
    int native = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1; // palette has the colour bit
    sslc_status st = check_limit(name, H, W, opt);
    if (st != SSLC_OK || header_only) {
        png_destroy_read_struct(&png, &info, NULL);
        if (ph)
            *ph = H, *pw = W, *pc = native;
        return st;
    }
    int want = opt && opt->channels ? opt->channels : native;
    // palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha (then dropped, as
    // PIL's convert("RGB") drops alpha without compositing); 16 -> 8 bits
    // by the high byte, as PIL's RGB;16B unpacker.
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int64_t oc = png_get_channels(png, info);
    if (oc != native)
        png_error(png, "unexpected channel count after conversion");
    st = sslc_image_alloc(result, H, W, want);
    if (st != SSLC_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    bool direct = oc == want;
    if (!direct) {
        raw = sslc_malloc((size_t)(H * W * oc));
        if (!raw)
            png_error(png, "out of memory");
    }
    rows = sslc_malloc((size_t)H * sizeof(png_bytep));
    if (!rows)
        png_error(png, "out of memory");
    uint8_t *dst = direct ? result->data : raw;
    for (int64_t y = 0; y < H; y++)
        rows[y] = dst + (size_t)(y * W * oc);
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    if (!direct) {
        if (want == 3)
            gray_to_rgb(result->data, raw, H * W);
        else
            sslc_rgb_to_luma(result->data, raw, H * W);
    }
    free(raw);
    free(rows);
    return SSLC_OK;
}

// ---------------------------------------------------------------- entry points

static sslc_status unknown_format(const char *name, size_t size)
{
    if (size == 0)
        return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': empty file", name);
    return sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': not a PNG or JPEG file", name);
}

sslc_status sslc_image_probe(const uint8_t *bytes, size_t size, const char *name,
                             const sslc_decode_options *opt, int64_t *height, int64_t *width,
                             int64_t *channels)
{
    int64_t h = 0, w = 0, c = 0;
    sslc_status st;
    switch (sslc_image_sniff(bytes, size)) {
    case SSLC_IMAGE_PNG: st = png_decode(NULL, bytes, size, name, opt, true, &h, &w, &c); break;
    case SSLC_IMAGE_JPEG:
        st = jpeg_decode(NULL, bytes, size, name, opt, NULL, true, &h, &w, &c);
        break;
    default: return unknown_format(name, size);
    }
    if (height)
        *height = h;
    if (width)
        *width = w;
    if (channels)
        *channels = c;
    return st;
}

sslc_status sslc_image_decode(sslc_image *out, const uint8_t *bytes, size_t size,
                              const char *name, const sslc_decode_options *opt, int *scale_out)
{
    if (opt && opt->channels != 0 && opt->channels != 1 && opt->channels != 3)
        return sslc_error(SSLC_ERR_INVALID, "decode: channels must be 1 or 3, not %d",
                          opt->channels);
    if (scale_out)
        *scale_out = 1;
    switch (sslc_image_sniff(bytes, size)) {
    case SSLC_IMAGE_PNG: return png_decode(out, bytes, size, name, opt, false, NULL, NULL, NULL);
    case SSLC_IMAGE_JPEG:
        return jpeg_decode(out, bytes, size, name, opt, scale_out, false, NULL, NULL, NULL);
    default: memset(out, 0, sizeof *out); return unknown_format(name, size);
    }
}

sslc_status sslc_file_read(const char *path, uint8_t **bytes, size_t *size)
{
    *bytes = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    sslc_status st = SSLC_OK;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        st = sslc_error(SSLC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = sslc_error(SSLC_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (len == 0) {
        st = sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s': empty file", path);
        goto fail;
    }
    buf = sslc_malloc((size_t)len);
    if (!buf) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        st = sslc_error(SSLC_ERR_IO, "cannot read '%s': %s", path,
                        ferror(f) ? strerror(errno) : "file shrank while reading");
        goto fail;
    }
    fclose(f);
    *bytes = buf;
    *size = (size_t)len;
    return SSLC_OK;
fail:
    free(buf);
    fclose(f);
    return st;
}

sslc_status sslc_image_load(sslc_image *out, const char *path, const sslc_decode_options *opt,
                            int *scale_out)
{
    uint8_t *bytes;
    size_t size;
    memset(out, 0, sizeof *out);
    sslc_status st = sslc_file_read(path, &bytes, &size);
    if (st != SSLC_OK)
        return st;
    st = sslc_image_decode(out, bytes, size, path, opt, scale_out);
    free(bytes);
    return st;
}

sslc_status sslc_png_write(const char *path, const uint8_t *pixels, int64_t height, int64_t width,
                           int64_t channels)
{
    if (channels != 1 && channels != 3)
        return sslc_error(SSLC_ERR_INVALID, "png: cannot write %lld channels",
                          (long long)channels);
    FILE *f = fopen(path, "wb");
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    png_src ctx = {.msg = ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return sslc_error(SSLC_ERR_NOMEM, "cannot write '%s': libpng out of memory", path);
    }
    if (setjmp(ctx.jump)) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, ctx.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)(y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return SSLC_OK;
}
