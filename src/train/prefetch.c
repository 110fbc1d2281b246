/* Micro-batch buffers and the double-buffered reader for streamed datasets. */
#include "train/prefetch.h"

#include <stdlib.h>
#include <string.h>

int cv_batch_alloc(cv_batch *b, const cv_dataset *ds, int max, cv_err *err)
{
    memset(b, 0, sizeof *b);
    b->x = cv_malloc(sizeof(float) * (size_t)max * (size_t)cv_shape_size(ds->shape), "batch", err);
    b->ids = cv_malloc(sizeof(int64_t) * (size_t)max, "batch ids", err);
    if (ds->has_labels) b->labels = cv_malloc(sizeof(int32_t) * (size_t)max, "batch labels", err);
    else b->targets = cv_malloc(sizeof(float) * (size_t)max * (size_t)ds->ydim, "batch targets", err);
    if (ds->weights) b->w = cv_malloc(sizeof(float) * (size_t)max, "batch weights", err);
    return b->x && b->ids && (b->labels || b->targets) && (b->w || !ds->weights) ? 0 : -1;
}

int cv_batch_weigh(cv_batch *b, const float *class_w, int max, cv_err *err)
{
    b->class_w = class_w;
    if (!b->w) b->w = cv_malloc(sizeof(float) * (size_t)max, "batch weights", err);
    return b->w ? 0 : -1;
}

void cv_batch_free(cv_batch *b)
{
    free(b->x);
    free(b->targets);
    free(b->labels);
    free(b->ids);
    free(b->w);
    memset(b, 0, sizeof *b);
}

int cv_batch_fill(cv_batch *b, cv_dataset *ds, const cv_normalizer *nz, int count, cv_err *err)
{
    b->count = count;
    if (cv_dataset_fetch(ds, nz, b->ids, count, b->x, err)) return -1;
    cv_dataset_gather_y(ds, b->ids, count, b->labels, b->targets);
    for (int r = 0; b->w && r < count; r++)
        b->w[r] = (ds->weights ? ds->weights[b->ids[r]] : 1.0f) * (b->class_w && b->labels ? b->class_w[b->labels[r]] : 1.0f);
    return 0;
}

static void *reader(void *arg)
{
    cv_prefetch *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int s = p->state[0] == 1 ? 0 : p->state[1] == 1 ? 1 : -1;
        if (s < 0) {
            if (p->quit) break;
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        int rc = cv_batch_fill(&p->slot[s], p->ds, p->nz, p->slot[s].count, &p->err[s]);
        pthread_mutex_lock(&p->mu);
        p->state[s] = rc ? 3 : 2;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cv_prefetch_start(cv_prefetch *p, cv_dataset *ds, const cv_normalizer *nz, int max, cv_err *err)
{
    memset(p, 0, sizeof *p);
    p->ds = ds;
    p->nz = nz;
    if (cv_batch_alloc(&p->slot[0], ds, max, err) || cv_batch_alloc(&p->slot[1], ds, max, err)) {
        cv_batch_free(&p->slot[0]);
        cv_batch_free(&p->slot[1]);
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, reader, p) != 0) {
        cv_prefetch_free(p);
        return cv_errf(err, "cannot start the data reader thread");
    }
    p->running = true;
    return 0;
}

void cv_prefetch_request(cv_prefetch *p, int slot, int count)
{
    pthread_mutex_lock(&p->mu);
    p->slot[slot].count = count;
    p->state[slot] = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void cv_prefetch_quiet(cv_prefetch *p)
{
    if (!p->running) return;
    pthread_mutex_lock(&p->mu);
    while (p->state[0] == 1 || p->state[1] == 1) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

cv_batch *cv_prefetch_wait(cv_prefetch *p, int slot, cv_err *err)
{
    pthread_mutex_lock(&p->mu);
    while (p->state[slot] == 1) pthread_cond_wait(&p->cv, &p->mu);
    const int st = p->state[slot];
    p->state[slot] = 0;
    pthread_mutex_unlock(&p->mu);
    if (st == 3) {
        cv_errf(err, "%s", p->err[slot].msg);
        return NULL;
    }
    return &p->slot[slot];
}

void cv_prefetch_free(cv_prefetch *p)
{
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->quit = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->running = false;
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    cv_batch_free(&p->slot[0]);
    cv_batch_free(&p->slot[1]);
}
