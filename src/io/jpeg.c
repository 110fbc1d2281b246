/* JPEG files (libjpeg-turbo through the libjpeg API). Reading gives grey or RGB (CMYK and YCCK
 * converted to RGB, Adobe's inverted CMYK as Pillow reads it); a warning from the decoder (a
 * truncated or corrupt file, which libjpeg would fill with grey) is an error. The decoder can
 * shrink by 1/2, 1/4 or 1/8 in its inverse DCT: given a smallest wanted size it takes the
 * largest of them that still covers it, by Pillow's Image.draft() rule. Writing is
 * atomic, like every file convoy writes. */
#include "convoy/image.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, f->msg);
    longjmp(f->jump, 1);
}

/* Each scan of a progressive JPEG is a pass over every coefficient of the image, and a valid
 * progression may hold 64 x 11 scans per component: a 2.5 MB 16-megapixel grey file of 695 scans
 * took 10 s to decode (65 scans: 0.3 s). libjpeg-turbo asks decoders of untrusted files to limit
 * them (djpeg -maxscans); encoders write about 10, and jpegtran's scan scripts at most 100. */
#define CV_JPEG_MAX_SCANS 100

static void jpeg_scan_limit(j_common_ptr cinfo)
{
    const j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number <= CV_JPEG_MAX_SCANS) return;
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    snprintf(f->msg, sizeof f->msg, "more than %d progressive scans", CV_JPEG_MAX_SCANS);
    longjmp(f->jump, 1);
}

/* level -1: a warning about corrupt data; a decoder would go on, convoy does not */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    if (level < 0) jpeg_fail(cinfo);
}

int cv_jpeg_read(const char *path, cv_image *img, int min_w, int min_h, cv_err *err)
{
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot open (%s)", path, strerror(errno));
    struct jpeg_decompress_struct d;
    jpeg_failure fail;
    d.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = jpeg_fail;
    fail.pub.emit_message = jpeg_message;
    fail.msg[0] = '\0';
    uint8_t *volatile px = NULL;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&d);
        free(px);
        fclose(f);
        return cv_errf(err, "%s: damaged JPEG (%s)", path, fail.msg);
    }
    jpeg_create_decompress(&d);
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_scan_limit};
    d.progress = &progress;
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    if ((int64_t)d.image_width * d.image_height > CV_IMAGE_MAX_PIXELS || d.image_width > CV_IMAGE_MAX_SIDE ||
        d.image_height > CV_IMAGE_MAX_SIDE) {
        snprintf(fail.msg, sizeof fail.msg, "%ux%u pixels: more than convoy reads", d.image_width, d.image_height);
        longjmp(fail.jump, 1);
    }
    const bool cmyk = d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK;
    d.out_color_space = cmyk ? JCS_CMYK : d.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (min_w > 0 && min_h > 0) { /* Pillow's draft(): 1/s for the largest s of 8, 4, 2 that fits */
        const unsigned fit_w = d.image_width / (unsigned)min_w, fit_h = d.image_height / (unsigned)min_h;
        const unsigned fit = fit_w < fit_h ? fit_w : fit_h;
        d.scale_num = 1;
        d.scale_denom = fit >= 8 ? 8 : fit >= 4 ? 4 : fit >= 2 ? 2 : 1;
    }
    jpeg_start_decompress(&d);
    const int w = (int)d.output_width, h = (int)d.output_height, in_c = d.output_components;
    const int c = cmyk ? 3 : in_c;
    px = malloc((size_t)w * (size_t)h * (size_t)(cmyk ? 4 : c));
    if (!px) {
        snprintf(fail.msg, sizeof fail.msg, "out of memory for %dx%d pixels", w, h);
        longjmp(fail.jump, 1);
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = px + (size_t)d.output_scanline * w * in_c;
        jpeg_read_scanlines(&d, &row, 1);
    }
    /* Adobe's files store CMYK inverted (255 = no ink): R = (255 - C)(255 - K) / 255 on the
     * ink values, as Pillow's convert("RGB") computes it */
    const bool inverted = d.saw_Adobe_marker;
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    fclose(f);
    if (cmyk) {
        for (size_t i = 0; i < (size_t)w * h; i++) {
            const uint8_t *s = px + 4 * i;
            const int k = inverted ? s[3] : 255 - s[3];
            for (int j = 0; j < 3; j++) {
                const int ink = inverted ? s[j] : 255 - s[j];
                px[3 * i + j] = (uint8_t)((ink * k + 127) / 255);
            }
        }
    }
    *img = (cv_image){w, h, c, px};
    return 0;
}

int cv_jpeg_write(const char *path, const cv_image *img, int quality, cv_err *err)
{
    if (!img->px || img->w <= 0 || img->h <= 0 || (img->c != 1 && img->c != 3))
        return cv_errf(err, "%s: JPEG holds grey or RGB images (this one has %d channels)", path, img->c);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cv_errf(err, "%s: path too long", path);
    FILE *volatile f = fopen(tmp, "wb");
    if (!f) return cv_errf(err, "%s: cannot create (%s)", path, strerror(errno));
    struct jpeg_compress_struct c;
    jpeg_failure fail;
    c.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = jpeg_fail;
    fail.msg[0] = '\0';
    if (setjmp(fail.jump)) {
        jpeg_destroy_compress(&c);
        fclose(f);
        unlink(tmp);
        return cv_errf(err, "%s: cannot write JPEG (%s)", path, fail.msg);
    }
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)img->w;
    c.image_height = (JDIMENSION)img->h;
    c.input_components = img->c;
    c.in_color_space = img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = img->px + (size_t)c.next_scanline * img->w * img->c;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    const int e = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return cv_errf(err, "%s: cannot write JPEG (%s)", path, strerror(ok ? errno : e));
    }
    return 0;
}
