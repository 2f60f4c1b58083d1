/*
 * hashpipe.c: SHA-256 on a helper thread (al_hash_stream) and the one-pass
 * copy built on it (al_sha256_copy).
 *
 * SHA-256 is sequential, so one stream's hash runs on one core at full speed
 * while the caller's system calls (read, write, decompression) run on
 * another. Invariant: a slot belongs to exactly one side at a time: free
 * slots and the one being filled to the caller, full slots and the one being
 * hashed to the hasher; slots change hands in ring order, so blocks are
 * hashed in the order they were submitted.
 */
#include "core/hash.h"

#include <pthread.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/progress.h"

#define STREAM_BLOCK (1u << 20)
#define STREAM_SLOTS 4

struct slot {
    unsigned char *data;
    size_t len;
    bool full; /* owned by the hasher */
};

struct al_hash_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot slots[STREAM_SLOTS];
    size_t next;      /* the caller's next slot */
    bool eof;         /* no slot will become full again */
    bool threaded;
    pthread_t thread;
    struct al_sha256 *hash;
};

static void *hasher(void *arg)
{
    struct al_hash_stream *s = arg;
    for (size_t i = 0;; i = (i + 1) % STREAM_SLOTS) {
        pthread_mutex_lock(&s->mu);
        while (!s->slots[i].full && !s->eof)
            pthread_cond_wait(&s->cv, &s->mu);
        bool have = s->slots[i].full;
        pthread_mutex_unlock(&s->mu);
        if (!have)
            return NULL;
        al_sha256_update(s->hash, s->slots[i].data, s->slots[i].len);
        pthread_mutex_lock(&s->mu);
        s->slots[i].full = false;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

struct al_hash_stream *al_hash_stream_new(void)
{
    struct al_hash_stream *s = calloc(1, sizeof *s);
    if (s == NULL || (s->hash = al_sha256_new()) == NULL)
        goto fail;
    /* Page-aligned, so a full slot can go to disk with O_DIRECT (al_fs_sink). */
    for (int i = 0; i < STREAM_SLOTS; i++)
        if (posix_memalign((void **)&s->slots[i].data, AL_FS_DIRECT_ALIGN, STREAM_BLOCK) != 0)
            goto fail;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->threaded = pthread_create(&s->thread, NULL, hasher, s) == 0;
    return s;
fail:
    if (s) {
        for (int i = 0; i < STREAM_SLOTS; i++)
            free(s->slots[i].data);
        al_sha256_free(s->hash);
        free(s);
    }
    return NULL;
}

unsigned char *al_hash_stream_slot(struct al_hash_stream *s, size_t *cap)
{
    struct slot *sl = &s->slots[s->next];
    if (s->threaded) {
        pthread_mutex_lock(&s->mu);
        while (sl->full)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
    }
    *cap = STREAM_BLOCK;
    return sl->data;
}

void al_hash_stream_submit(struct al_hash_stream *s, size_t len)
{
    struct slot *sl = &s->slots[s->next];
    s->next = (s->next + 1) % STREAM_SLOTS;
    if (len == 0)
        return;
    sl->len = len;
    if (!s->threaded) {
        al_sha256_update(s->hash, sl->data, len);
        return;
    }
    pthread_mutex_lock(&s->mu);
    sl->full = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void stop(struct al_hash_stream *s)
{
    if (s->threaded) {
        pthread_mutex_lock(&s->mu);
        s->eof = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        s->threaded = false;
    }
}

void al_hash_stream_final(struct al_hash_stream *s, char digest[AL_DIGEST_SIZE])
{
    stop(s);
    uint8_t raw[AL_SHA256_BYTES];
    al_sha256_final(s->hash, raw);
    al_digest_format(raw, digest);
    /* A finished stream keeps no buffers: ingest holds many finished writers. */
    for (int i = 0; i < STREAM_SLOTS; i++) {
        free(s->slots[i].data);
        s->slots[i].data = NULL;
    }
}

void al_hash_stream_free(struct al_hash_stream *s)
{
    if (s == NULL)
        return;
    stop(s);
    for (int i = 0; i < STREAM_SLOTS; i++)
        free(s->slots[i].data);
    al_sha256_free(s->hash);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

enum al_rc al_sha256_copy(int src, int dst, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                          struct al_progress *progress, struct al_err *err)
{
    struct al_hash_stream *hs = al_hash_stream_new();
    if (hs == NULL)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory while hashing");
    enum al_rc rc = AL_OK;
    uint64_t total = 0;
    struct al_fs_sink sink;
    if (dst >= 0)
        al_fs_sink_init(&sink, dst);
    for (;;) {
        size_t cap = 0;
        unsigned char *buf = al_hash_stream_slot(hs, &cap);
        ssize_t n;
        do
            n = read(src, buf, cap);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            rc = al_err_sys(err, AL_ERR_IO, "cannot read while hashing");
            break;
        }
        if (n == 0)
            break;
        /* The hasher and the disk read the slot at the same time. */
        al_hash_stream_submit(hs, (size_t)n);
        if (dst >= 0 && (rc = al_fs_sink_write(&sink, buf, (size_t)n, err)))
            break;
        total += (uint64_t)n;
        al_progress_add(progress, (uint64_t)n);
    }
    if (!rc) {
        al_hash_stream_final(hs, digest);
        if (size_out)
            *size_out = total;
    }
    al_hash_stream_free(hs);
    return rc;
}
