/*
 * fuzz_audit.c: the audit log read back by `airlock audit verify` (each line's
 * JSON and hash, the chain, the sequence, anchors, HEAD) and the last-line
 * parser the writer resumes from (al_audit__line_state).
 *
 * Input: the first byte is a mode, the rest is split at form feeds into day
 * files audit-2026-01-0N.jsonl (at most 3). Mode bit 0: each line that looks
 * like a record body is sealed with its correct hash first, as the writer
 * would, so the fuzzer gets past the hash check to the chain logic. Mode
 * bit 1: the last part is the HEAD file instead of a day file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "core/buf.h"
#include "fuzzutil.h"

#define PARTS 3

static char home[256], dir[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_quiet();
    snprintf(home, sizeof home, "%s", fz_tmpdir());
    snprintf(dir, sizeof dir, "%s/audit", home);
    if (mkdir(dir, 0700) != 0)
        abort();
    return 0;
}

/* The part's lines, each sealed when it is a record body ({...} without NUL). */
static void seal_lines(struct al_buf *out, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}' && !memchr(p, 0, len)) {
            char *body = fz_strndup(p, len), hash[AL_SHA256_HEX + 1];
            char *line = al_audit__seal(body, hash);
            if (line == NULL)
                abort();
            al_buf_add(out, line, strlen(line) - (nl ? 0 : 1));
            free(line);
            free(body);
        } else {
            al_buf_add(out, p, len);
            if (nl)
                al_buf_addch(out, '\n');
        }
        p += len + (nl ? 1 : 0);
    }
}

static void problem(void *ud, const char *file, size_t line, const char *msg)
{
    (void)file, (void)line;
    if (msg == NULL || msg[0] == '\0')
        abort();
    ++*(size_t *)ud;
}

static void each_line_state(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *line = fz_strndup((const uint8_t *)p, ll);
        int64_t seq = 0;
        char hash[AL_SHA256_HEX + 1];
        struct al_err err = AL_ERR_INIT;
        if (al_audit__line_state("audit-fuzz.jsonl", line, ll, &seq, hash, &err) == AL_OK &&
            (seq < 0 || !al_hex64_valid(hash)))
            abort();
        free(line);
        p += ll + (nl ? 1 : 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    char path[400];
    for (int i = 0; i < PARTS; i++) {
        snprintf(path, sizeof path, "%s/audit-2026-01-0%d.jsonl", dir, i + 1);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/HEAD", dir);
    unlink(path);
    for (int i = 0; i < PARTS && p <= end; i++) {
        const uint8_t *ff = memchr(p, '\f', (size_t)(end - p));
        size_t n = ff && i + 1 < PARTS ? (size_t)(ff - p) : (size_t)(end - p);
        bool last = ff == NULL || i + 1 == PARTS;
        struct al_buf b;
        al_buf_init(&b, AL_LIMIT_AUDIT_LINE * 4);
        if (mode & 1)
            seal_lines(&b, p, n);
        else
            al_buf_add(&b, p, n);
        if (al_buf_failed(&b))
            abort();
        if (last && (mode & 2))
            snprintf(path, sizeof path, "%s/HEAD", dir);
        else
            snprintf(path, sizeof path, "%s/audit-2026-01-0%d.jsonl", dir, i + 1);
        fz_write_file(path, (const uint8_t *)(b.data ? b.data : ""), b.len);
        each_line_state(b.data ? b.data : "", b.len);
        al_buf_release(&b);
        if (last)
            break;
        p += n + 1;
    }
    size_t records = 0, problems = 0;
    struct al_err err = AL_ERR_INIT;
    enum al_rc rc = al_audit_verify(home, problem, &problems, &records, &err);
    if (rc == AL_OK && problems != 0)
        abort(); /* intact means no problem was reported */
    if (rc != AL_OK && err.msg[0] == '\0')
        abort();
    return 0;
}
