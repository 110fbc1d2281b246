/* Inputs and outputs as files (issue 23): an output that is an input, by any name, is refused;
 * FIFOs, devices and directories are refused where a regular file is needed, before an open that
 * would block or a read that would never end; model files are read with a size limit, with a
 * byte-order mark and CR line ends understood; a file that cannot be created says why; one run
 * at a time holds an output's lock; devices are never renamed over. Each
 * bad input is one named case (a comment "case:" above its assertion). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convoy/checkpoint.h"
#include "convoy/files.h"
#include "convoy/model.h"
#include "io/h5io.h"

static char dir[512];

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/test_files.%ld", CONVOY_TEST_TMP, (long)getpid());
    mkdir(dir, 0777);
    cr_assert_eq(chdir(dir), 0); /* each test runs in its own process: names are relative to dir */
}
TestSuite(files, .init = setup);

static void put(const char *path, const char *text)
{
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const ssize_t n = (ssize_t)strlen(text);
    cr_assert(fd >= 0 && write(fd, text, (size_t)n) == n && close(fd) == 0, "writing %s", path);
}

#define MLP "input shape=4\ndense units=3 activation=softmax\ncompile loss=sparse_categorical_crossentropy\n"

Test(files, same_file_by_identity_not_name)
{
    const char *a = "a.h5", *l = "link.h5";
    put(a, "x");
    unlink(l);
    cr_assert_eq(symlink(a, l), 0);
    const char *dotted = "./sub/../a.h5";
    mkdir("sub", 0777);
    cr_assert(cv_same_file(a, l));
    cr_assert(cv_same_file(a, dotted));
    put("b.h5", "x");
    cr_assert(!cv_same_file(a, "b.h5"));
    cr_assert(!cv_same_file(a, "missing.h5"), "a path that does not exist is no input");
    cr_assert(!cv_same_file(NULL, a));
}

Test(files, outputs_over_inputs_refused)
{
    const char *data = "d.h5", *val = "v.h5", *model = "m.model";
    put(data, "d"), put(val, "v"), put(model, MLP);
    unlink("alias.h5");
    cr_assert_eq(link(data, "alias.h5"), 0); /* a hard link: another name, one file */
    const cv_path_role ins[] = {{"--data", data}, {"--val", val}, {"MODEL", model}, {"--init-from", NULL}};
    cv_err err;
    /* case: --checkpoint is the --data file under another name (a hard link) */
    cv_path_role outs[] = {{"--checkpoint", "alias.h5"}, {"--log", NULL}};
    cr_assert_eq(cv_check_outputs(outs, 2, ins, 4, &err), -1);
    cr_assert(strstr(err.msg, "--checkpoint ") && strstr(err.msg, "alias.h5 is also the --data file; choose another path"),
              "%s", err.msg);
    /* case: --log is the --val file */
    outs[0] = (cv_path_role){"--log", val};
    cr_assert_eq(cv_check_outputs(outs, 1, ins, 4, &err), -1);
    cr_assert(strstr(err.msg, "is also the --val file"), "%s", err.msg);
    /* case: --checkpoint is the MODEL file */
    outs[0] = (cv_path_role){"--checkpoint", model};
    cr_assert_eq(cv_check_outputs(outs, 1, ins, 4, &err), -1);
    cr_assert(strstr(err.msg, "is also the MODEL file"), "%s", err.msg);
    /* case: two outputs one path not yet written (--log and --plot both new.csv) */
    const cv_path_role two[] = {{"--log", "new.csv"}, {"--plot", "new.csv"}};
    unlink("new.csv");
    cr_assert_eq(cv_check_outputs(two, 2, ins, 4, &err), -1);
    cr_assert(strstr(err.msg, "--plot ") && strstr(err.msg, "is also the --log file"), "%s", err.msg);
    /* fine: new files, and no outputs at all */
    const cv_path_role fresh[] = {{"--checkpoint", "fresh.h5"}, {"--log", "fresh.csv"}};
    cr_assert_eq(cv_check_outputs(fresh, 2, ins, 4, &err), 0);
    cr_assert_eq(cv_check_outputs(NULL, 0, ins, 4, &err), 0);
}

Test(files, regular_file_check)
{
    cv_err err;
    const char *fifo = "fifo";
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* case: a FIFO where a file is read */
    cr_assert_eq(cv_require_regular(fifo, &err), -1);
    cr_assert(strstr(err.msg, "fifo: not a regular file"), "%s", err.msg);
    /* case: a character device */
    cr_assert_eq(cv_require_regular("/dev/null", &err), -1);
    cr_assert_str_eq(err.msg, "/dev/null: not a regular file");
    /* case: a directory */
    cr_assert_eq(cv_require_regular(dir, &err), -1);
    cr_assert(strstr(err.msg, "not a regular file (a directory)"), "%s", err.msg);
    put("plain", "x");
    cr_assert_eq(cv_require_regular("plain", &err), 0);
    cr_assert_eq(cv_require_regular("absent", &err), 0, "the open reports a missing file");
}

Test(files, hdf5_inputs_refuse_fifos_before_opening, .timeout = 10)
{
    cv_err err;
    const char *fifo = "data.h5";
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* case: --data (any HDF5 input) naming a FIFO: refused, not a read that waits for a writer */
    cr_assert_lt(cv_h5_open_read(fifo, &err), 0);
    cr_assert(strstr(err.msg, "data.h5: not a regular file"), "%s", err.msg);
    /* case: a checkpoint that is a FIFO (init-from, resume, eval, predict, base lines read it so) */
    cv_normalizer nz = {0};
    cr_assert_null(cv_checkpoint_load(fifo, 32, &nz, &err));
    cr_assert(strstr(err.msg, "not a regular file"), "%s", err.msg);
    /* case: a character device as an HDF5 input */
    cr_assert_lt(cv_h5_open_read("/dev/zero", &err), 0);
    cr_assert_str_eq(err.msg, "/dev/zero: not a regular file");
}

Test(files, text_reads_are_bounded, .timeout = 10)
{
    char *text;
    size_t n;
    cv_err err;
    /* case: a model file that is /dev/zero (no end) */
    cr_assert_eq(cv_read_text_file("/dev/zero", CV_TEXT_FILE_MAX, "model file", &text, &n, &err), -1);
    cr_assert_str_eq(err.msg, "/dev/zero: not a regular file");
    /* case: a model file that is /dev/urandom */
    cv_model_spec spec;
    cr_assert_eq(cv_model_load(&spec, "/dev/urandom", &err), -1);
    cr_assert_str_eq(err.msg, "/dev/urandom: not a regular file");
    /* case: an augment file that is a FIFO (the open would wait for a writer) */
    const char *fifo = "aug.fifo";
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(cv_augment_file_load(&spec, fifo, &err), -1);
    cr_assert(strstr(err.msg, "aug.fifo: not a regular file"), "%s", err.msg);
    /* case: a model file larger than the limit (a sparse file: no disk used) */
    const char *big = "big.model";
    FILE *f = fopen(big, "wb");
    cr_assert(f);
    cr_assert_eq(ftruncate(fileno(f), (off_t)CV_TEXT_FILE_MAX + 1), 0);
    fclose(f);
    cr_assert_eq(cv_model_load(&spec, big, &err), -1);
    cr_assert(strstr(err.msg, "big.model: 16777217 bytes, more than the 16 MB a model file may have"), "%s", err.msg);
    /* the limit itself is fine for the reader */
    cr_assert_eq(truncate(big, 100), 0);
    cr_assert_eq(cv_read_text_file(big, 100, "model file", &text, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 100);
    free(text);
    /* case: a directory as the model file */
    cr_assert_eq(cv_model_load(&spec, dir, &err), -1);
    cr_assert(strstr(err.msg, "not a regular file (a directory)"), "%s", err.msg);
}

static void load_ok(const char *name, const char *text)
{
    cv_model_spec spec;
    cv_err err = {{0}};
    put(name, text);
    cr_assert_eq(cv_model_load(&spec, name, &err), 0, "%s: %s", name, err.msg);
    cr_assert_eq(spec.n_layers, 2, "%s: %d layers", name, spec.n_layers);
    cv_model_spec_free(&spec);
}

Test(files, bom_and_line_ends)
{
    /* case: a UTF-8 byte-order mark before `input` (was "unknown layer '\ufeffinput'") */
    load_ok("bom.model", "\xef\xbb\xbf" MLP);
    /* case: CR-only line ends (old Mac files; were one line) */
    load_ok("cr.model", "input shape=4\rdense units=3 activation=softmax\rcompile loss=sparse_categorical_crossentropy\r");
    /* CRLF as before, and a BOM with CRLF and a comment line */
    load_ok("crlf.model", "\xef\xbb\xbf# c\r\ninput shape=4\r\ndense units=3 activation=softmax\r\n"
                          "compile loss=sparse_categorical_crossentropy\r\n");
    /* case: a BOM in an augment file: still recognised as one */
    cv_model_spec spec;
    cv_err err = {{0}};
    put("bom.aug", "\xef\xbb\xbf# comment\raugment horizontal_flip=true\r");
    cr_assert_eq(cv_augment_file_load(&spec, "bom.aug", &err), 0, "%s", err.msg);
    cr_assert(spec.augment.horizontal_flip);
    cv_model_spec_free(&spec);
    /* case: CR-only lines keep their numbers in messages */
    put("crbad.model", "input shape=4\rdense units=3 activation=softmax\rbogus x=1\r");
    cr_assert_eq(cv_model_load(&spec, "crbad.model", &err), -1);
    cr_assert(strstr(err.msg, "crbad.model:3:"), "%s", err.msg);
}

Test(files, create_says_what_is_wrong)
{
    char tmp[1024];
    cv_err err;
    /* case: a path under /proc, which refuses new files: errno's words, not "directory does not exist" */
    cr_assert_lt(cv_h5_create_tmp("/proc/convoy-test.h5", tmp, sizeof tmp, &err), 0);
    cr_assert_str_eq(err.msg, "/proc/convoy-test.h5: cannot create (No such file or directory)");
    /* a directory that really is missing still says so */
    cr_assert_lt(cv_h5_create_tmp("no/such/x.h5", tmp, sizeof tmp, &err), 0);
    cr_assert(strstr(err.msg, "cannot create (directory does not exist)"), "%s", err.msg);
}

Test(files, output_lock_is_one_run_at_a_time)
{
    cv_err err;
    cv_file_lock a = {0}, b = {0};
    cr_assert_eq(cv_lock_output("run.h5", "--checkpoint", &a, &err), 0, "%s", err.msg);
    cr_assert(a.held);
    char text[32] = "";
    FILE *f = fopen("run.h5.lock", "r");
    cr_assert(f && fgets(text, sizeof text, f), "the lock file holds the pid");
    fclose(f);
    cr_expect_eq(strtol(text, NULL, 10), (long)getpid());
    // case: a second lock on the same output (flock locks each open file description: one process suffices)
    cr_assert_eq(cv_lock_output("./run.h5", "--checkpoint", &b, &err), -1);
    char want[128];
    snprintf(want, sizeof want, "./run.h5 is being written by another run (pid %ld); choose another --checkpoint or wait",
             (long)getpid());
    cr_expect_str_eq(err.msg, want);
    cr_expect(!b.held);
    // case: a lock file left by a run that died (nothing holds it): taken over
    cv_unlock_output(&a);
    cr_expect_neq(access("run.h5.lock", F_OK), 0, "released: the lock file is removed");
    put("run.h5.lock", "99999999\n");
    cr_assert_eq(cv_lock_output("run.h5", "--checkpoint", &b, &err), 0, "a stale lock file: %s", err.msg);
    cv_unlock_output(&b);
    // no lock where the lock file cannot be made: the save reports it
    cr_expect_eq(cv_lock_output("no/such/dir/c.h5", "--checkpoint", &b, &err), 0);
    cr_expect(!b.held);
}

Test(files, devices_as_outputs)
{
    cv_err err;
    // case: a character device as an output renamed into place is refused; written straight otherwise
    cr_expect_eq(cv_output_kind("/dev/null", &err), 1);
    cr_expect_eq(cv_check_renamed_output("/dev/null", &err), -1);
    cr_expect_str_eq(err.msg, "/dev/null: not a regular file (this output is written beside it and renamed over it)");
    cv_file_lock lk = {0};
    cr_expect_eq(cv_lock_output("/dev/null", "--checkpoint", &lk, &err), -1, "a checkpoint on /dev/null");
    // case: a FIFO or a directory as an output
    cr_assert_eq(mkfifo("out.fifo", 0644), 0);
    cr_expect_eq(cv_output_kind("out.fifo", &err), -1);
    cr_expect_str_eq(err.msg, "out.fifo: not a regular file");
    cr_expect_eq(cv_output_kind(".", &err), -1);
    cr_expect_eq(cv_output_kind("new.h5", &err), 0, "nothing there yet");
    put("old.h5", "x");
    cr_expect_eq(cv_output_kind("old.h5", &err), 0);
}

Test(files, path_inside_a_directory)
{
    mkdir("sub", 0777);
    mkdir("sub/deeper", 0777);
    put("sub/deeper/f.png", "x");
    put("subway", "x");
    cr_assert_eq(symlink("sub/deeper/f.png", "link.png"), 0);
    cr_expect(cv_path_inside("sub/deeper/f.png", "sub"));
    cr_expect(cv_path_inside("link.png", "sub"), "through a symlink");
    cr_expect(cv_path_inside("./sub/../sub/deeper/f.png", "./sub/"));
    cr_expect(!cv_path_inside("subway", "sub"), "a name that only starts like the directory");
    cr_expect(!cv_path_inside("sub", "sub"), "the directory itself");
    cr_expect(!cv_path_inside("sub/missing.png", "sub"), "a path that does not exist");
    cr_expect(cv_path_inside("subway", "/"));
}
