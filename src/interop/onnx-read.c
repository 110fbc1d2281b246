/* Reading ONNX files: a model or a single tensor (the test data's .pb files) parsed by
 * protobuf-c, and the values of tensors (raw_data or the typed fields) and node attributes.
 * Every count is checked against the dims before anything is read. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convoy/files.h"
#include "convoy/interop.h"
#include "interop/onnx-impl.h"

int cv_onnx_read_file(const char *path, uint8_t **buf, size_t *n, cv_err *err)
{
    *buf = NULL;
    *n = 0;
    if (cv_require_regular(path, err)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size > ((int64_t)1 << 31)) {
        fclose(f);
        return cv_errf(err, "%s: more than the 2 GiB a protobuf file may hold", path);
    }
    const size_t size = (size_t)st.st_size;
    uint8_t *b = cv_malloc(size ? size : 1, "the ONNX file", err);
    if (!b) return fclose(f), -1;
    const size_t got = fread(b, 1, size, f);
    const int bad = ferror(f) || got != size;
    fclose(f);
    if (bad) return free(b), cv_errf(err, "%s: read failed", path);
    *buf = b;
    *n = size;
    return 0;
}

/* protobuf-c leaves an absent optional string NULL: the names and op types the import reads
 * become "" (malloc'd, so the message's free releases them as its own) */
static bool fill(char **s)
{
    return *s || (*s = strdup(""));
}

static bool fill_names(Onnx__GraphProto *g)
{
    bool ok = fill(&g->name);
    for (size_t i = 0; i < g->n_node; i++)
        ok = ok && fill(&g->node[i]->op_type) && fill(&g->node[i]->name) && fill(&g->node[i]->domain);
    for (size_t i = 0; i < g->n_input; i++) ok = ok && fill(&g->input[i]->name);
    for (size_t i = 0; i < g->n_output; i++) ok = ok && fill(&g->output[i]->name);
    for (size_t i = 0; i < g->n_initializer; i++) ok = ok && fill(&g->initializer[i]->name);
    return ok;
}

Onnx__ModelProto *cv_onnx_model_read(const char *path, cv_err *err)
{
    uint8_t *buf;
    size_t n;
    if (cv_onnx_read_file(path, &buf, &n, err)) return NULL;
    Onnx__ModelProto *m = n ? onnx__model_proto__unpack(NULL, n, buf) : NULL;
    free(buf);
    if (!m || !m->graph)
        cv_errf(err, "%s: not an ONNX model (%s)", path,
                !n ? "the file is empty" : !m ? "not a protobuf ModelProto: truncated or another kind of file" : "it has no graph");
    if (m && !m->graph) onnx__model_proto__free_unpacked(m, NULL), m = NULL;
    if (m && !fill_names(m->graph)) onnx__model_proto__free_unpacked(m, NULL), m = NULL, cv_errf(err, "out of memory");
    return m;
}

Onnx__TensorProto *cv_onnx_tensor_file(const char *path, cv_err *err)
{
    uint8_t *buf;
    size_t n;
    if (cv_onnx_read_file(path, &buf, &n, err)) return NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, n, buf);
    free(buf);
    if (!t) cv_errf(err, "%s: not an ONNX TensorProto (truncated or another kind of file)", path);
    return t;
}

int64_t cv_onnx_tensor_count(const Onnx__TensorProto *t)
{
    int64_t c = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || (t->dims[i] && c > INT64_MAX / 4 / t->dims[i])) return -1;
        c *= t->dims[i];
    }
    return c;
}

static int external(const Onnx__TensorProto *t, const char *what, cv_err *err)
{
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return cv_errf(err, "%s: its data is in an external file, which convoy does not read (save the model with "
                       "its tensors inside: onnx.save(m, f, save_as_external_data=False))", what);
    return 0;
}

int cv_onnx_tensor_floats(const Onnx__TensorProto *t, const char *what, float **out, int64_t *count, cv_err *err)
{
    *out = NULL;
    if (external(t, what, err)) return -1;
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cv_errf(err, "%s: data type %d, not float32 (1): convoy reads float32 tensors", what, (int)t->data_type);
    const int64_t c = cv_onnx_tensor_count(t);
    if (c < 0) return cv_errf(err, "%s: bad dims", what);
    const int64_t have = t->has_raw_data ? (int64_t)(t->raw_data.len / 4) : (int64_t)t->n_float_data;
    if (have != c || (t->has_raw_data && t->raw_data.len % 4))
        return cv_errf(err, "%s: %lld values for dims holding %lld", what, (long long)have, (long long)c);
    float *v = cv_malloc(sizeof(float) * (size_t)(c ? c : 1), "an ONNX tensor", err);
    if (!v) return -1;
    if (c) memcpy(v, t->has_raw_data ? (const void *)t->raw_data.data : (const void *)t->float_data, sizeof(float) * (size_t)c);
    *out = v;
    *count = c;
    return 0;
}

int cv_onnx_tensor_ints(const Onnx__TensorProto *t, const char *what, int64_t *out, int max, int *count, cv_err *err)
{
    if (external(t, what, err)) return -1;
    const int is64 = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (!is64 && t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        return cv_errf(err, "%s: data type %d, not int64 (7) or int32 (6)", what, (int)t->data_type);
    const int64_t c = cv_onnx_tensor_count(t);
    if (c < 0 || c > max) return cv_errf(err, "%s: %lld values, at most %d expected", what, (long long)c, max);
    const size_t w = is64 ? 8 : 4;
    const int64_t have = t->has_raw_data ? (int64_t)(t->raw_data.len / w) : is64 ? (int64_t)t->n_int64_data : (int64_t)t->n_int32_data;
    if (have != c) return cv_errf(err, "%s: %lld values for dims holding %lld", what, (long long)have, (long long)c);
    for (int64_t i = 0; i < c; i++) {
        if (t->has_raw_data && is64) {
            int64_t v;
            memcpy(&v, t->raw_data.data + 8 * i, 8);
            out[i] = v;
        } else if (t->has_raw_data) {
            int32_t v;
            memcpy(&v, t->raw_data.data + 4 * i, 4);
            out[i] = v;
        } else {
            out[i] = is64 ? t->int64_data[i] : t->int32_data[i];
        }
    }
    *count = (int)c;
    return 0;
}

const Onnx__AttributeProto *cv_onnx_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    return NULL;
}

int64_t cv_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = cv_onnx_attr(n, name);
    return a && a->has_i ? a->i : def;
}

float cv_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = cv_onnx_attr(n, name);
    return a && a->has_f ? a->f : def;
}

void cv_onnx_attr_str(const Onnx__NodeProto *n, const char *name, char *buf, size_t size)
{
    const Onnx__AttributeProto *a = cv_onnx_attr(n, name);
    const size_t len = a && a->has_s ? a->s.len : 0;
    snprintf(buf, size, "%.*s", (int)len, len ? (const char *)a->s.data : "");
}

int cv_onnx_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *a = cv_onnx_attr(n, name);
    if (!a) return 0;
    for (size_t i = 0; i < a->n_ints && (int)i < max; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

int cv_onnx_tensor_load(const char *path, float **data, int64_t dims[8], int *rank, cv_err *err)
{
    *data = NULL;
    Onnx__TensorProto *t = cv_onnx_tensor_file(path, err);
    if (!t) return -1;
    int64_t n;
    int rc = t->n_dims > CV_ONNX_MAX_RANK ? cv_errf(err, "%s: rank %zu", path, t->n_dims)
                                          : cv_onnx_tensor_floats(t, path, data, &n, err);
    *rank = (int)t->n_dims;
    for (int i = 0; !rc && i < *rank; i++) dims[i] = t->dims[i];
    onnx__tensor_proto__free_unpacked(t, NULL);
    return rc;
}
