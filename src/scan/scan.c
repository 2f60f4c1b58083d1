/* scan.c: reports, and which reader a file gets. The kind of a file is
 * decided by its bytes first (magic numbers), by its extension second: a
 * pickle renamed .safetensors is still walked as a pickle. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "scan/scan_int.h"

const char *al_scan_verdict_name(enum al_scan_verdict v)
{
    return v == AL_SCAN_DANGEROUS ? "dangerous" : v == AL_SCAN_WARN ? "warn" : "ok";
}

struct al_scan_report *al_scan_report_new(const char *file)
{
    struct al_scan_report *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    al_scan__printable(r->file, sizeof r->file, (const uint8_t *)file, strlen(file));
    snprintf(r->kind, sizeof r->kind, "data");
    return r;
}

void al_scan_report_free(struct al_scan_report *r)
{
    free(r);
}

void al_scan__printable(char *dst, size_t size, const uint8_t *src, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < size; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
    dst[i] = '\0';
}

void al_scan__add(struct al_scan_report *r, enum al_scan_verdict sev, const char *member, uint64_t offset,
                  const char *opcode, const char *tensor, const char *fmt, ...)
{
    if (sev > r->verdict)
        r->verdict = sev;
    if (r->n_findings >= AL_LIMIT_SCAN_FINDINGS) {
        r->n_dropped++;
        return;
    }
    struct al_scan_finding *f = &r->findings[r->n_findings++];
    f->severity = sev;
    f->offset = offset;
    al_scan__printable(f->member, sizeof f->member, (const uint8_t *)(member ? member : ""),
                       member ? strlen(member) : 0);
    al_scan__printable(f->opcode, sizeof f->opcode, (const uint8_t *)(opcode ? opcode : ""),
                       opcode ? strlen(opcode) : 0);
    al_scan__printable(f->tensor, sizeof f->tensor, (const uint8_t *)(tensor ? tensor : ""),
                       tensor ? strlen(tensor) : 0);
    char what[sizeof f->what];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    al_scan__printable(f->what, sizeof f->what, (const uint8_t *)what, strlen(what));
}

/* Jinja that reaches outside the template: Python object internals (the
 * way out of a sandbox: ''.__class__.__mro__[1].__subclasses__()), the attr
 * filter that reaches them by name, loading other templates, and the
 * template's own context object. A chat template needs none of them (the
 * pinned llama.cpp's models/templates, every one, uses none: test_scan). */
static const char *const template_reach[] = {
    "__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__", "__import__", "__init__",
    "__base__", "__dict__", "__getattribute__", "|attr", "| attr", "{% include", "{%- include", "{% import",
    "{%- import", "{% extends", "{%- extends", "{% from", "{%- from", "self._TemplateReference",
};

static void check_template(void *ud, const char *key, const char *text, size_t len)
{
    struct al_scan_report *r = ud;
    if (len > AL_LIMIT_CHAT_TEMPLATE)
        al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                     "chat template %s is %zu bytes, over the cap of %u: review it before serving", key, len,
                     AL_LIMIT_CHAT_TEMPLATE);
    for (size_t i = 0; i < sizeof template_reach / sizeof template_reach[0]; i++) {
        const char *at = strstr(text, template_reach[i]);
        if (at)
            al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                         "chat template %s uses '%s' (at character %zu): Jinja that reaches outside the "
                         "template, a sandbox-escape pattern",
                         key, template_reach[i], (size_t)(at - text));
    }
}

void al_scan__gguf(int fd, const struct al_gguf_value_report *values, struct al_scan_report *r)
{
    struct al_gguf_info info;
    struct al_err err = AL_ERR_INIT;
    snprintf(r->kind, sizeof r->kind, "gguf");
    if (al_gguf_inspect_fd(fd, r->file, &info, &err)) {
        al_scan__add(r, AL_SCAN_DANGEROUS, NULL, AL_SCAN_NO_OFFSET, NULL, NULL, "%s", err.msg);
        return;
    }
    /* Tensor values: NaN or Inf, or data past the end, is what llama.cpp's
     * --check-tensors refuses to load: dangerous. A type ggml cannot check
     * is only a warning: nothing wrong was seen. */
    struct al_gguf_value_report *v = malloc(sizeof *v);
    if (!v) {
        al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL, "tensor values not checked: out of memory");
        return;
    }
    if (values)
        *v = *values;
    else if (al_gguf_scan_values(fd, r->file, v, &err)) {
        al_scan__add(r, AL_SCAN_DANGEROUS, NULL, AL_SCAN_NO_OFFSET, NULL, NULL, "%s", err.msg);
        free(v);
        return;
    }
    for (int i = 0; i < v->n_listed; i++) {
        const struct al_gguf_finding *f = &v->findings[i];
        enum al_scan_verdict sev = strcmp(f->what, "bad type") == 0 ? AL_SCAN_WARN : AL_SCAN_DANGEROUS;
        al_scan__add(r, sev, NULL, f->offset, NULL, f->tensor, "%s tensor: %s", f->type,
                     strcmp(f->what, "bad type") == 0 ? "a type whose values cannot be checked" : f->what);
    }
    if (v->n_findings > (uint64_t)v->n_listed)
        al_scan__add(r, AL_SCAN_DANGEROUS, NULL, AL_SCAN_NO_OFFSET, NULL, NULL,
                     "%" PRIu64 " more tensors with bad values", v->n_findings - (uint64_t)v->n_listed);
    free(v);
    /* Chat templates are rendered by Jinja engines (llama.cpp's, and
     * Python's where a site re-exports the model): over a size cap or
     * reaching outside the template is a warning, with where. */
    if (al_gguf_chat_templates_fd(fd, r->file, check_template, r, &err))
        al_scan__add(r, AL_SCAN_WARN, NULL, AL_SCAN_NO_OFFSET, NULL, NULL, "chat templates not checked: %s", err.msg);
}

static int has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcasecmp(path + n - k, suffix) == 0;
}

static int pickle_name(const char *path)
{
    static const char *const ext[] = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (has_suffix(path, ext[i]))
            return 1;
    return 0;
}

/* The kind of an executable or archive from its first bytes; NULL for none. */
static const char *magic_kind(const uint8_t *d, size_t n)
{
    static const struct {
        const char *kind;
        size_t off, len;
        const char *magic;
    } m[] = {
        {"elf", 0, 4, "\x7f" "ELF"}, {"mach-o", 0, 4, "\xfe\xed\xfa\xce"}, {"mach-o", 0, 4, "\xfe\xed\xfa\xcf"},
        {"mach-o", 0, 4, "\xce\xfa\xed\xfe"}, {"mach-o", 0, 4, "\xcf\xfa\xed\xfe"},
        {"mach-o-universal", 0, 4, "\xca\xfe\xba\xbe"}, {"pe", 0, 2, "MZ"}, {"script", 0, 2, "#!"},
        {"zip", 0, 4, "PK\x03\x04"}, {"zip", 0, 4, "PK\x05\x06"}, {"gzip", 0, 2, "\x1f\x8b"},
        {"zstd", 0, 4, "\x28\xb5\x2f\xfd"}, {"xz", 0, 6, "\xfd" "7zXZ\0"}, {"bzip2", 0, 3, "BZh"},
        {"7z", 0, 6, "7z\xbc\xaf\x27\x1c"}, {"tar", 257, 5, "ustar"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (n >= m[i].off + m[i].len && memcmp(d + m[i].off, m[i].magic, m[i].len) == 0)
            return m[i].kind;
    return NULL;
}

/* safetensors: an 8-byte length that fits the file, then '{'. */
static int looks_safetensors(const uint8_t *d, size_t n)
{
    if (n < 10 || d[8] != '{')
        return 0;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | d[i];
    return h <= n - 8;
}

/* ELF, PE, Mach-O, scripts and archives: warn with the kind; an executable
 * bit is named, and dangerous under AL_SCAN_EXEC_DANGEROUS. */
static void scan_other(const char *kind, const uint8_t *d, size_t n, mode_t mode, unsigned flags,
                       struct al_scan_report *r)
{
    static const char *const archives[] = {"zip", "gzip", "zstd", "xz", "bzip2", "7z", "tar"};
    int archive = 0;
    for (size_t i = 0; i < sizeof archives / sizeof archives[0]; i++)
        archive |= strcmp(kind, archives[i]) == 0;
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    int exec = (mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
    enum al_scan_verdict sev = exec && (flags & AL_SCAN_EXEC_DANGEROUS) ? AL_SCAN_DANGEROUS : AL_SCAN_WARN;
    const char *x = exec ? ", with an executable bit set" : "";
    if (archive) {
        al_scan__add(r, sev, NULL, 0, NULL, NULL, "a nested %s archive%s: its contents are not scanned", kind, x);
    } else if (strcmp(kind, "script") == 0) {
        const uint8_t *nl = memchr(d, '\n', n < 256 ? n : 256);
        char interp[128];
        al_scan__printable(interp, sizeof interp, d + 2, nl ? (size_t)(nl - d) - 2 : (n < 256 ? n : 256) - 2);
        al_scan__add(r, sev, NULL, 0, NULL, NULL, "a script for '%s'%s", interp, x);
    } else {
        al_scan__add(r, sev, NULL, 0, NULL, NULL, "a native executable (%s)%s", kind, x);
    }
}

/* Safetensors before the pickle magic: a header length of 0x2?80 starts
 * with \x80 and a small byte. A file that also has a pickle's name is walked
 * as a pickle too, since that is how a loader would open it. */
static void scan_safetensors(const uint8_t *d, size_t n, struct al_scan_report *r)
{
    al_scan_safetensors(d, n, r);
    if (pickle_name(r->file))
        al_scan_pickle(d, n, NULL, r);
}

/* Dispatch on the mapped bytes of an open regular file. */
static void scan_bytes(int fd, const uint8_t *d, size_t n, mode_t mode, unsigned flags,
                       const struct al_gguf_value_report *values, struct al_scan_report *r)
{
    const char *kind = magic_kind(d, n);
    if (n >= 4 && memcmp(d, "GGUF", 4) == 0)
        al_scan__gguf(fd, values, r);
    else if (kind && strcmp(kind, "zip") == 0 && al_scan__torch_zip(fd, r))
        return;
    else if (kind)
        scan_other(kind, d, n, mode, flags, r);
    else if (has_suffix(r->file, ".safetensors") || looks_safetensors(d, n))
        scan_safetensors(d, n, r);
    else if ((n >= 2 && d[0] == 0x80 && d[1] <= 5) || pickle_name(r->file))
        al_scan_pickle(d, n, NULL, r);
}

enum al_rc al_scan_file(const char *path, unsigned flags, struct al_scan_report **out, struct al_err *err)
{
    return al_scan_file_named(path, path, flags, out, err);
}

enum al_rc al_scan_file_named(const char *path, const char *name, unsigned flags, struct al_scan_report **out,
                              struct al_err *err)
{
    return al_scan_file_values(path, name, flags, NULL, out, err);
}

enum al_rc al_scan_file_values(const char *path, const char *name, unsigned flags,
                               const struct al_gguf_value_report *values, struct al_scan_report **out,
                               struct al_err *err)
{
    enum al_rc rc = AL_OK;
    struct al_scan_report *r = NULL;
    void *map = MAP_FAILED;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return al_err_sys(err, errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "cannot open '%s'", path);
    struct stat st;
    if (fstat(fd, &st)) {
        rc = al_err_sys(err, AL_ERR_IO, "cannot stat '%s'", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = al_err_set(err, AL_ERR_IO, "cannot scan '%s': not a regular file", path);
        goto out;
    }
    r = al_scan_report_new(name);
    if (!r) {
        rc = al_err_set(err, AL_ERR_NOMEM, "out of memory scanning '%s'", path);
        goto out;
    }
    /* Mapped whole: only what a reader touches is read (a pickle walk stops
     * at AL_LIMIT_PICKLE_STREAM, safetensors reads its header). */
    n = (size_t)st.st_size;
    if (n) {
        map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            rc = al_err_sys(err, AL_ERR_IO, "cannot map '%s'", path);
            goto out;
        }
    }
    /* A bundle's entry sits in a temporary file without its tar mode: the
     * caller says whether the entry had an executable bit. */
    mode_t mode = (flags & AL_SCAN_EXEC_BIT) ? st.st_mode | S_IXUSR : st.st_mode;
    scan_bytes(fd, n ? map : (const uint8_t *)"", n, mode, flags, values, r);
    *out = r;
    r = NULL;
out:
    if (map != MAP_FAILED)
        munmap(map, n);
    al_scan_report_free(r);
    close(fd);
    return rc;
}
