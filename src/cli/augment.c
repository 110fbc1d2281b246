/* convoy augment: writes augmented images of a dataset or an image folder as PNG or JPEG files
 * (Keras's flow(save_to_dir=..., save_format=...)) and a contact sheet, to see what training
 * will be shown. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "convoy/augment.h"
#include "convoy/data.h"
#include "convoy/imageset.h"
#include "convoy/model.h"

int cmd_augment(const cv_dist *d, int argc, char **argv)
{
    const char *data = NULL, *config = NULL, *count = NULL, *dir = NULL, *prefix = "aug", *format = "png",
               *seed = NULL;
    const cli_flag flags[] = {
        {"data", "F.h5|DIR", "image dataset (N, H, W, C) with 1-4 channels, or a folder of class folders of images (required)",
         &data, NULL},
        {"config", "MODEL|AUGFILE", "a model file, or a file of only an augment line (required)", &config, NULL},
        {"count", "N", "number of augmented images to write (required)", &count, NULL},
        {"save-to-dir", "D", "output directory, created if missing (required)", &dir, NULL},
        {"save-prefix", "P", "file names P_ROW_HASH.png (default aug)", &prefix, NULL},
        {"save-format", "png|jpeg", "image format (default png)", &format, NULL},
        {"seed", "S", "seed (default: the model file's fit seed, 42): the same images training draws", &seed, NULL},
    };
    const cli_command c = {"augment", "--data F.h5 --config MODEL|AUGFILE --count N --save-to-dir D",
                           "Writes --count augmented images of --data to --save-to-dir as PNG files, image j being "
                           "row j mod N as training epoch j div N augments it, plus P_contact_sheet.png "
                           "(originals beside 8 variants).",
                           flags, (int)(sizeof flags / sizeof flags[0]), 0, 0};
    int npos, rc = cli_parse(&c, argc, argv, NULL, &npos);
    if (rc) return rc < 0 ? CLI_OK : CLI_BAD_INPUT;
    if (!data || !config || !count || !dir)
        return cli_usage_fail(d, "augment: --data, --config, --count and --save-to-dir are required");
    const bool jpeg = strcmp(format, "jpeg") == 0 || strcmp(format, "jpg") == 0;
    if (!jpeg && strcmp(format, "png") != 0)
        return cli_usage_fail(d, "--save-format: unsupported format '%s' (png or jpeg)", format);
    if (!*prefix || strchr(prefix, '/'))
        return cli_usage_fail(d, "--save-prefix: '%s' must be a non-empty name without '/'", prefix);
    long n, s = 0;
    if (cli_int("--count", count, 1, 10000000, &n) || (seed && cli_int("--seed", seed, 0, 0x7fffffffL, &s)))
        return CLI_BAD_INPUT;
    if (d->rank != 0) return CLI_OK; /* one writer */
    char sheet_path[4200]; /* the one file name known before writing; the images' names hold a hash */
    snprintf(sheet_path, sizeof sheet_path, "%s/%s_contact_sheet.png", dir, prefix);
    const cv_path_role outs[] = {{"--save-to-dir's", sheet_path}}, ins[] = {{"--data", data}, {"--config", config}};
    if ((rc = cli_check_outputs(d, CLI_ROLES(outs), CLI_ROLES(ins)))) return rc;

    cv_model_spec spec;
    cv_dataset ds = {0};
    cv_normalizer nz = {0};
    cv_err err;
    if (cv_augment_file_load(&spec, config, &err)) return cli_fail(d, "%s", err.msg);
    char sheet[1100];
    const cv_norm mode = spec.n_layers ? spec.layers[0].normalize : CV_NORM_AUTO;
    struct stat st;
    const cv_imageset_opts images = {0}; /* a folder: every image at the first one's size and channels */
    if ((stat(data, &st) == 0 && S_ISDIR(st.st_mode) ? cv_dataset_from_images(data, &images, &ds, &err)
                                                    : cv_dataset_load(&ds, data, &err)) ||
        cv_normalizer_fit(&nz, mode, &ds, NULL, ds.n, &err) ||
        cv_augment_save_as(&spec.augment, &ds, &nz, seed ? (uint64_t)s : spec.fit.seed, n, dir, prefix, jpeg, 8, 8,
                           sheet, sizeof sheet, &err))
        rc = cli_fail(d, "%s", err.msg);
    else
        printf("wrote %ld augmented image%s to %s/ and the contact sheet %s\n", n, n > 1 ? "s" : "", dir, sheet);
    cv_normalizer_free(&nz);
    cv_dataset_free(&ds);
    cv_model_spec_free(&spec);
    return rc;
}
