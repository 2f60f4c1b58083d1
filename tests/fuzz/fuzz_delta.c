/*
 * fuzz_delta.c: a delta patch (src/delta), applied to a fixed 64 KiB base.
 * The first 8 bytes of the input are the result size the caller trusts (as
 * the signed manifest gives it, capped at 1 MiB here); the rest is the patch.
 * Every byte written must stay within that size, and a refusal must say why.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta/delta.h"
#include "fuzzutil.h"

struct out {
    uint64_t n, cap;
};

static enum al_rc count(void *ud, const void *data, size_t len, struct al_err *err)
{
    struct out *o = ud;
    (void)data;
    (void)err;
    o->n += len;
    if (o->n > o->cap)
        abort(); /* apply wrote past the result size it was given */
    return AL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t base[64 << 10];
    static int base_fd = -1;
    if (base_fd < 0) {
        for (size_t i = 0; i < sizeof base; i++)
            base[i] = (uint8_t)(i * 131u + (i >> 8));
        base_fd = fz_memfd("base", base, sizeof base);
    }
    if (size < 8)
        return 0;
    uint64_t result = 0;
    memcpy(&result, data, 8);
    result %= (1u << 20) + 1;
    int pfd = fz_memfd("patch", data + 8, size - 8);
    struct al_err err = AL_ERR_INIT;
    struct out o = {0, result};
    enum al_rc rc = al_delta_apply(base_fd, pfd, result, count, &o, NULL, &err);
    if (rc == AL_OK && o.n != result)
        abort(); /* success means exactly the result */
    if (rc != AL_OK && err.msg[0] == '\0')
        abort();
    close(pfd);
    return 0;
}
