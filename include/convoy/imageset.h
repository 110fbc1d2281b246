/* Module data (its preamble: convoy/data.h). Image sets: a folder of class folders of PNG and
 * JPEG files made into a dataset file (`convoy convert images`), and the preparation every image
 * gets on its way into a network (channels, then size), the same for training data and for the
 * photos `convoy predict` is given.
 *
 * Channels: grey to RGB repeats the grey value; RGB to grey is ITU-R 601 luma,
 * (19595 R + 38470 G + 7471 B + 2^15) >> 16, as Pillow's convert("L"); alpha is dropped (no
 * compositing, as Pillow's convert("RGB")). Size: Pillow's Image.resize(size, Image.BILINEAR),
 * bit for bit: a triangle filter whose support widens by the shrink factor (so shrinking
 * averages every covered pixel: antialiased, what tf.image.resize(..., "bilinear",
 * antialias=True) computes in floats), horizontal pass first, 22-bit fixed-point weights, 8-bit
 * rounding between the passes. */
#ifndef CONVOY_IMAGESET_H
#define CONVOY_IMAGESET_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "convoy/data.h"
#include "convoy/dist.h"
#include "convoy/error.h"
#include "convoy/image.h"

/** Converts img to c channels (1 grey or 3 RGB), in place. */
int cv_image_channels(cv_image *img, int c, cv_err *err);
/** out = in resized to w x h (a new image; in is kept). */
int cv_image_resize(const cv_image *in, int w, int h, cv_image *out, cv_err *err);
/** What training data is made of: img converted to c channels, then resized to w x h, in place. */
int cv_image_prepare(cv_image *img, int w, int h, int c, cv_err *err);

/** Whether a file name is an image's by its extension: .png, .jpg, .jpeg, .jpe, any case. */
bool cv_image_file_name(const char *name);
/** The image files under dir, any depth, in Keras's order (by folder path, then file name;
 *  symlinked folders not followed): *paths (n malloc'd strings in a malloc'd
 *  array) for the caller to free. */
int cv_image_files(const char *dir, char ***paths, int64_t *n, cv_err *err);

#define CV_IMAGESET_FILTER "bilinear-antialias (Pillow Image.BILINEAR)"
/* the image_filter of --draft conversions: predict then decodes JPEGs the same way */
#define CV_IMAGESET_FILTER_DRAFT "bilinear-antialias (Pillow Image.BILINEAR) after JPEG draft"
/** Whether an image_filter says the JPEGs were decoded with draft (cv_jpeg_read's shrink). */
static inline bool cv_imageset_filter_draft(const char *filter) { return strstr(filter, "JPEG draft") != NULL; }

typedef struct {
    int w, h;          /* output size; 0: the first image's */
    int channels;      /* 1 or 3; 0: the first image's (1 for grey, else 3) */
    double val_split;  /* fraction of each class for val_out (0: none) */
    uint64_t seed;     /* which files of a class go to validation */
    bool skip_bad;     /* skip files that cannot be read (counted) instead of failing */
    bool draft;        /* let JPEGs decode at 1/2, 1/4 or 1/8 size when that still covers w x h */
} cv_imageset_opts;

typedef struct {
    int n_classes;
    int64_t found;     /* image files found (by name: .png .jpg .jpeg .jpe, any case) */
    int64_t ignored;   /* other files in the class folders */
    int64_t written, val_written;
    int64_t skipped;   /* unreadable, with skip_bad */
    char first_skipped[512];
    int w, h, channels;
} cv_imageset_report;

/** Called on rank 0 after each batch of files: done of total. */
typedef void (*cv_progress_fn)(void *ctx, int64_t done, int64_t total);

/** Makes the dataset out (and val_out when o->val_split > 0) from dir: one folder per class,
 *  classes the folder names in sorted (byte) order, as Keras's class_names; inside each the image
 *  files of any depth, in sorted order (symlinked subfolders are not followed, as Keras's
 *  follow_links=False), by folder path then file name as Keras sorts them. /x uint8 (N,H,W,C) in chunks, /y int32, attributes `classes`,
 *  `image_size` (H,W), `image_channels`, `image_filter`. Validation takes round(val_split x n)
 *  files of each class with n >= 2, chosen by seed; both files keep the sorted order. Memory stays
 *  bounded by a batch of images per rank. Under MPI the ranks decode disjoint files and rank 0
 *  writes: the files are the same at any rank count. Collective. */
int cv_convert_images(const char *dir, const char *out, const char *val_out, const cv_imageset_opts *o,
                      const cv_dist *d, cv_progress_fn progress, void *ctx, cv_imageset_report *rep, cv_err *err);

/** An image folder (as cv_convert_images reads it) as a dataset in memory, on one process:
 *  o's size, channels, draft and skip_bad apply, val_split does not. */
int cv_dataset_from_images(const char *dir, const cv_imageset_opts *o, cv_dataset *ds, cv_err *err);

#endif
