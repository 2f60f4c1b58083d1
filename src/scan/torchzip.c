/* torchzip.c: PyTorch zip checkpoints (torch.save since 1.6): a zip whose
 * `<name>/data.pkl` is the pickle torch.load runs, next to raw storages.
 * Every member named *.pkl is walked (TorchScript archives add
 * constants.pkl). libarchive reads the zip from its central directory, as
 * torch's own reader (miniz) does, so the members scanned are the ones torch
 * would load. This is the scan module's one use of archive.h
 * (docs/ARCHITECTURE.md, "Third-party headers"). */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan_int.h"

/* Reads the current member into a new buffer, at most AL_LIMIT_PICKLE_MEMBER
 * bytes; returns its length, or -1 (read error, *over set when too big). */
static long long read_member(struct archive *a, uint8_t **out, int *over)
{
    size_t cap = 64 << 10, n = 0;
    uint8_t *buf = malloc(cap);
    *over = 0;
    while (buf) {
        if (n == cap) {
            if (cap > AL_LIMIT_PICKLE_MEMBER) {
                *over = 1;
                break;
            }
            uint8_t *b = realloc(buf, cap * 2);
            if (!b)
                break;
            buf = b, cap *= 2;
        }
        la_ssize_t k = archive_read_data(a, buf + n, cap - n);
        if (k < 0)
            break;
        if (k == 0) {
            if (n > AL_LIMIT_PICKLE_MEMBER) {
                *over = 1;
                break;
            }
            *out = buf;
            return (long long)n;
        }
        n += (size_t)k;
    }
    free(buf);
    return -1;
}

static int is_pkl(const char *name)
{
    size_t n = strlen(name);
    return n >= 4 && strcmp(name + n - 4, ".pkl") == 0;
}

int al_scan__torch_zip(int fd, struct al_scan_report *r)
{
    int found = 0;
    size_t entries = 0;
    struct archive *a = archive_read_new();
    if (!a)
        return 0;
    archive_read_support_format_zip_seekable(a);
    if (archive_read_open_fd(a, fd, 64 << 10) != ARCHIVE_OK)
        goto fail;
    for (;;) {
        struct archive_entry *e;
        int hr = archive_read_next_header(a, &e);
        if (hr == ARCHIVE_EOF)
            break;
        if (hr != ARCHIVE_OK && hr != ARCHIVE_WARN)
            goto fail;
        if (++entries > AL_LIMIT_SCAN_ZIP_ENTRIES) {
            al_scan__add(r, AL_SCAN_DANGEROUS, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                         "the zip has more members than AL_LIMIT_SCAN_ZIP_ENTRIES (%u): not scanned past them",
                         AL_LIMIT_SCAN_ZIP_ENTRIES);
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (!name || !is_pkl(name))
            continue;
        if (!found)
            snprintf(r->kind, sizeof r->kind, "pytorch-zip");
        found = 1;
        uint8_t *buf = NULL;
        int over;
        long long n = read_member(a, &buf, &over);
        if (n < 0 && over) {
            al_scan__add(r, AL_SCAN_DANGEROUS, name, AL_SCAN_NO_OFFSET, NULL, NULL,
                         "the member is over AL_LIMIT_PICKLE_MEMBER (%u bytes): not scanned",
                         AL_LIMIT_PICKLE_MEMBER);
            continue;
        }
        if (n < 0)
            goto fail;
        al_scan_pickle(buf, (size_t)n, name, r);
        free(buf);
    }
    archive_read_free(a);
    return found;
fail:
    /* A zip that cannot be read: a checkpoint not fully scanned is
     * dangerous; any other zip is left to the caller's warning. */
    al_scan__add(r, found ? AL_SCAN_DANGEROUS : AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                 "the zip cannot be read: %s", archive_error_string(a) ? archive_error_string(a) : "unknown error");
    archive_read_free(a);
    return found;
}
