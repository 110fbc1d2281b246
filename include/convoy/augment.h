/* Module data (its preamble: convoy/data.h). Data augmentation (the model file's `augment` line): Keras ImageDataGenerator's random affine
 * transform per sample (rotation, shifts, shear, zoom, flips) with bilinear sampling and its
 * fill modes, then brightness and gaussian noise. Every random number comes from
 * (seed, epoch, global sample index), so a sample is augmented the same way at any rank count,
 * thread count or batch composition, and after a resume (docs/exactness.md). docs/model-file.md "Augmentation"
 * gives the exact definitions. */
#ifndef CONVOY_AUGMENT_H
#define CONVOY_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convoy/data.h"
#include "convoy/error.h"

typedef enum { CV_FILL_NEAREST, CV_FILL_CONSTANT, CV_FILL_REFLECT, CV_FILL_WRAP } cv_fill_mode;

/** The augment line's values (defaults: everything off, zoom 1,1, fill nearest, cval 0). */
typedef struct {
    float rotation_range;       /* degrees: theta ~ U(-r, r) */
    float width_shift_range;    /* < 1: fraction of the width, else pixels */
    float height_shift_range;   /* < 1: fraction of the height, else pixels */
    float shear_range;          /* degrees */
    float zoom_lo, zoom_hi;     /* zx, zy ~ U(lo, hi) independently; > 1 shrinks the content */
    bool horizontal_flip, vertical_flip;
    bool brightness;            /* brightness_range given */
    float brightness_lo, brightness_hi;
    float noise_stddev;         /* added to the normalised network input */
    cv_fill_mode fill_mode;
    float cval;                 /* constant fill, in stored pixel units (0..255 for uint8 data) */
} cv_augment_config;

cv_augment_config cv_augment_defaults(void);
const char *cv_fill_mode_name(cv_fill_mode m);

/** One sample's transform, as Keras's apply_affine_transform arguments. */
typedef struct {
    double theta;       /* rotation, degrees */
    double tx, ty;      /* shift in pixels along rows (height) and columns (width) */
    double shear;       /* degrees */
    double zx, zy;      /* zoom along rows and columns */
    bool flip_h, flip_v;
    double brightness;  /* factor (1: unchanged) */
} cv_augment_params;

/** The identity transform. */
cv_augment_params cv_augment_identity(void);

/** Key of sample `index`'s randomness in `epoch`. */
uint64_t cv_augment_key(uint64_t seed, int64_t epoch, int64_t index);

/** Draws one sample's transform for an h x w image from key (the noise follows from the same
 *  key; see cv_augment_sample). */
void cv_augment_draw(const cv_augment_config *c, int h, int w, uint64_t key, cv_augment_params *p);

/** Applies p to one h x w x ch image `in` (HWC floats) into `out` (not aliasing in): affine
 *  transform with bilinear sampling and c's fill mode, flips, then brightness. Values are
 *  stored pixel units times `unit` (1/255 for scaled uint8 data, 1 for raw values): cval is
 *  multiplied by unit, and brightness clips to [0, max_value * unit] when max_value > 0. */
void cv_augment_apply(const cv_augment_config *c, const cv_augment_params *p, const float *in,
                      float *out, int h, int w, int ch, float unit, float max_value);

/** How the batch's floats relate to stored pixels: normalised = (stored - shift[j]) * scale[j]
 *  per feature (shift NULL: 0; scale NULL: `unit` for every feature). max_value as above
 *  (255 for uint8 data, 0 for float data: no clip). */
typedef struct {
    float unit;
    const float *mean, *std; /* standardize: normalised = (stored - mean[j]) / std[j] */
    float max_value;
} cv_augment_units;

/** The units of batches normalised by nz from data of type xtype. */
cv_augment_units cv_augment_units_for(const cv_normalizer *nz, cv_dtype xtype);

/** Augments one sample (h x w x ch, normalised as u) in place with key's transform, then adds
 *  gaussian noise of c->noise_stddev to each normalised value. tmp holds h*w*ch floats. */
void cv_augment_sample(const cv_augment_config *c, float *x, int h, int w, int ch,
                       const cv_augment_units *u, uint64_t key, float *tmp);

/** Augments the B samples of x (B, h, w, ch) in place, sample i with the key of
 *  (seed, epoch, ids[i]); OpenMP-parallel over samples. Fails only when out of memory. */
int cv_augment_batch(const cv_augment_config *c, float *x, int B, int h, int w, int ch,
                     const int64_t *ids, uint64_t seed, int64_t epoch, const cv_augment_units *u,
                     cv_err *err);

/** The file name of an augmented image, as Keras's flow(save_to_dir): DIR/PREFIX_ROW_HASH.png,
 *  ROW the dataset row and HASH a number below 10^7 from the image's key. */
void cv_augment_png_name(char *buf, size_t size, const char *dir, const char *prefix, int64_t row, uint64_t key);
/** The same with the extension ext ("png", "jpeg"). */
void cv_augment_file_name(char *buf, size_t size, const char *dir, const char *prefix, int64_t row, uint64_t key,
                          const char *ext);

/** Normalised sample x (n values, units u) as 8-bit pixels: uint8 data back to its stored
 *  values (rounded, clamped to 0..255); float data min..max of the image to 0..255 (Keras's
 *  array_to_img). tmp holds n floats. */
void cv_augment_to_pixels(const float *x, int64_t n, const cv_augment_units *u, float *tmp, uint8_t *out);

/** Writes `count` augmented images of ds (an image dataset, 1-4 channels) to dir (created if
 *  missing) as PNG files: image j is row j mod N augmented as training epoch j div N does with
 *  this seed. Then the contact sheet DIR/PREFIX_contact_sheet.png (its path in sheet_path): the
 *  first sheet_rows rows, each original followed by its variants of epochs 0..sheet_variants-1,
 *  on a grey grid. */
int cv_augment_save(const cv_augment_config *c, cv_dataset *ds, const cv_normalizer *nz, uint64_t seed,
                    int64_t count, const char *dir, const char *prefix, int sheet_rows, int sheet_variants,
                    char *sheet_path, size_t sheet_size, cv_err *err);
/** cv_augment_save writing the images as JPEG (quality 95; grey or RGB datasets) when jpeg,
 *  as Keras's save_format="jpeg"; the contact sheet stays PNG. */
int cv_augment_save_as(const cv_augment_config *c, cv_dataset *ds, const cv_normalizer *nz, uint64_t seed,
                       int64_t count, const char *dir, const char *prefix, bool jpeg, int sheet_rows, int sheet_variants,
                       char *sheet_path, size_t sheet_size, cv_err *err);

#endif
