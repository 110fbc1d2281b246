/* PNG files (libpng): writing with the simplified API (png_image), atomically; reading with the
 * classic API so every colour type keeps its values as Pillow reads them: palette images become
 * RGB (RGBA with a transparency chunk), 1/2/4-bit grey becomes 8-bit, and 16-bit samples keep
 * their high byte (no gamma conversion). */
#include "convoy/image.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static png_uint_32 png_format(int c)
{
    switch (c) {
    case 1: return PNG_FORMAT_GRAY;
    case 2: return PNG_FORMAT_GA;
    case 3: return PNG_FORMAT_RGB;
    default: return PNG_FORMAT_RGBA;
    }
}

int cv_png_write(const char *path, const cv_image *img, cv_err *err)
{
    if (!img->px || img->w <= 0 || img->h <= 0 || img->c < 1 || img->c > 4)
        return cv_errf(err, "%s: nothing to write (empty image)", path);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cv_errf(err, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return cv_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return cv_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    }
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->w;
    pi.height = (png_uint_32)img->h;
    pi.format = png_format(img->c);
    int ok = png_image_write_to_stdio(&pi, f, 0, img->px, 0, NULL);
    char why[96] = "";
    if (!ok) snprintf(why, sizeof why, "%s", pi.message);
    png_image_free(&pi);
    if (ok && fflush(f) != 0) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (ok && fsync(fileno(f)) != 0) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (fclose(f) != 0 && ok) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (ok && rename(tmp, path) != 0) ok = 0, snprintf(why, sizeof why, "%s", strerror(errno));
    if (!ok) {
        unlink(tmp);
        return cv_errf(err, "%s: cannot write PNG (%s)", path, why[0] ? why : "write failed");
    }
    return 0;
}


/* libpng's errors jump back here with their message */
typedef struct {
    jmp_buf jump;
    char msg[160];
} png_failure;

static void png_fail(png_structp png, png_const_charp msg)
{
    png_failure *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg);
    longjmp(f->jump, 1);
}

static void png_warn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

int cv_png_read(const char *path, cv_image *img, cv_err *err)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return cv_errf(err, "%s: not a PNG file", path);
    }
    /* volatile: they change between setjmp and a longjmp back to it */
    png_failure fail = {.msg = ""};
    png_structp volatile png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &fail, png_fail, png_warn);
    png_infop volatile info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_structp p = png;
        png_destroy_read_struct(p ? &p : NULL, NULL, NULL);
        fclose(f);
        return cv_errf(err, "%s: out of memory reading it", path);
    }
    if (setjmp(fail.jump)) {
        png_structp p = png;
        png_infop i = info;
        png_destroy_read_struct(&p, &i, NULL);
        free(px);
        free(rows);
        fclose(f);
        return cv_errf(err, "%s: damaged PNG (%s)", path, fail.msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, CV_IMAGE_MAX_SIDE, CV_IMAGE_MAX_SIDE);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* fuzzing only (tests/fuzz): a mutated chunk keeps its old CRC, and a checksum failure would
     * stop almost every input before the chunk's contents are read */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    png_read_info(png, info);
    const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    const int c = png_get_channels(png, info);
    if (c < 1 || c > 4 || (int64_t)w * h > CV_IMAGE_MAX_PIXELS) {
        snprintf(fail.msg, sizeof fail.msg, "%dx%d pixels of %d channels: more than convoy reads", w, h, c);
        longjmp(fail.jump, 1);
    }
    px = malloc((size_t)w * (size_t)h * (size_t)c);
    rows = malloc(sizeof *rows * (size_t)h);
    if (!px || !rows) {
        snprintf(fail.msg, sizeof fail.msg, "out of memory for %dx%d pixels", w, h);
        longjmp(fail.jump, 1);
    }
    for (int y = 0; y < h; y++) rows[y] = px + (size_t)y * w * c;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_structp p = png;
    png_infop i = info;
    png_destroy_read_struct(&p, &i, NULL);
    free(rows);
    fclose(f);
    *img = (cv_image){w, h, c, px};
    return 0;
}
