/*
 * hashpipe.c: al_sha256_copy, a two-stage pipeline over a ring of blocks.
 *
 * The calling thread reads a block into a free slot (and writes it to dst),
 * then hands the slot to the hashing thread, which returns it when hashed.
 * SHA-256 is sequential, so the hash runs on one core at full speed while
 * the system calls that copy the data run on the other.
 *
 * Invariant: a slot is owned by exactly one side at a time: FREE slots and
 * the one being filled by the reader, FULL slots and the one being hashed by
 * the hasher. Slots are handed over in ring order, so blocks are hashed in
 * the order they were read.
 */
#include "core/hash.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/progress.h"

#define PIPE_BLOCK (1u << 20)
#define PIPE_SLOTS 4

struct slot {
    unsigned char *data;
    size_t len;
    bool full; /* owned by the hasher */
};

struct pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot slots[PIPE_SLOTS];
    bool eof; /* the reader is done: no slot will become full again */
    struct al_sha256 *hash;
};

static void *hasher(void *arg)
{
    struct pipe *p = arg;
    for (size_t i = 0;; i = (i + 1) % PIPE_SLOTS) {
        pthread_mutex_lock(&p->mu);
        while (!p->slots[i].full && !p->eof)
            pthread_cond_wait(&p->cv, &p->mu);
        bool have = p->slots[i].full;
        pthread_mutex_unlock(&p->mu);
        if (!have)
            return NULL; /* eof and nothing left in ring order */
        al_sha256_update(p->hash, p->slots[i].data, p->slots[i].len);
        pthread_mutex_lock(&p->mu);
        p->slots[i].full = false;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

enum al_rc al_sha256_copy(int src, int dst, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                          struct al_progress *progress, struct al_err *err)
{
    struct pipe p;
    memset(&p, 0, sizeof p);
    enum al_rc rc = AL_OK;
    uint64_t total = 0;
    p.hash = al_sha256_new();
    for (int i = 0; i < PIPE_SLOTS; i++)
        if ((p.slots[i].data = malloc(PIPE_BLOCK)) == NULL)
            rc = AL_ERR_NOMEM;
    if (p.hash == NULL || rc) {
        for (int i = 0; i < PIPE_SLOTS; i++)
            free(p.slots[i].data);
        al_sha256_free(p.hash);
        return al_err_set(err, AL_ERR_NOMEM, "out of memory while hashing");
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, hasher, &p) == 0;
    for (size_t i = 0;; i = (i + 1) % PIPE_SLOTS) {
        struct slot *s = &p.slots[i];
        if (threaded) {
            pthread_mutex_lock(&p.mu);
            while (s->full)
                pthread_cond_wait(&p.cv, &p.mu);
            pthread_mutex_unlock(&p.mu);
        }
        ssize_t n;
        do
            n = read(src, s->data, PIPE_BLOCK);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            rc = al_err_sys(err, AL_ERR_IO, "cannot read while hashing");
            break;
        }
        if (n == 0)
            break;
        if (dst >= 0 && (rc = al_fs_write_all(dst, s->data, (size_t)n, err)))
            break;
        s->len = (size_t)n;
        total += (uint64_t)n;
        al_progress_add(progress, (uint64_t)n);
        if (!threaded) {
            al_sha256_update(p.hash, s->data, s->len);
            continue;
        }
        pthread_mutex_lock(&p.mu);
        s->full = true;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    if (threaded) {
        pthread_mutex_lock(&p.mu);
        p.eof = true;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(th, NULL);
    }
    if (!rc) {
        uint8_t raw[AL_SHA256_BYTES];
        al_sha256_final(p.hash, raw);
        al_digest_format(raw, digest);
        if (size_out)
            *size_out = total;
    }
    for (int i = 0; i < PIPE_SLOTS; i++)
        free(p.slots[i].data);
    al_sha256_free(p.hash);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
