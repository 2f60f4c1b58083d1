/*
 * facts.c: what a version's config says about its weights, read from the
 * GGUF header through the gguf module (ggml's own reader).
 */
#include "repo/repo_int.h"

#include <strings.h>
#include <unistd.h>

#include "core/fs.h"
#include "gguf/gguf.h"

void al_format_count(uint64_t n, char *out, size_t size);

void al_format_count(uint64_t n, char *out, size_t size)
{
    if (n >= 1000000000ull)
        snprintf(out, size, "%.1fB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, size, "%.1fM", (double)n / 1e6);
    else if (n >= 1000ull)
        snprintf(out, size, "%.1fK", (double)n / 1e3);
    else
        snprintf(out, size, "%" PRIu64, n);
}

/* The one rule for a weight's first bytes: a file named .gguf is loaded as
 * GGUF by the engine, so it must be one; other weight files (safetensors,
 * bin) are read only when they are. */
enum al_rc al_repo_facts_head(const char *name, const void *head, size_t len, struct al_err *err)
{
    if (!al_gguf_is_magic(head, len) && al_gguf_named(name))
        return al_err_set(err, AL_ERR_INVALID,
                          "'%s' is not a valid GGUF file: it does not start with the GGUF magic (empty, truncated "
                          "or another format); add the model's real .gguf file",
                          name);
    return AL_OK;
}

enum al_rc al_repo_facts_named(const char *path, const char *name, struct al_model_facts *facts, struct al_err *err)
{
    memset(facts, 0, sizeof *facts);
    /* Opened without blocking first: a FIFO or device is refused, not waited on. */
    int fd = -1;
    enum al_rc rc = al_fs_open_regular(path, &fd, err);
    if (rc)
        return rc;
    unsigned char head[4];
    ssize_t got = pread(fd, head, sizeof head, 0);
    bool magic = got > 0 && al_gguf_is_magic(head, (size_t)got);
    if ((rc = al_repo_facts_head(name, head, got > 0 ? (size_t)got : 0, err)) || !magic) {
        close(fd);
        return rc;
    }
    struct al_gguf_info info;
    rc = al_gguf_inspect_fd(fd, name, &info, err);
    close(fd);
    if (rc)
        return rc;
    snprintf(facts->architecture, sizeof facts->architecture, "%s", info.arch);
    al_format_count(info.n_params, facts->param_size, sizeof facts->param_size);
    /* The dominant tensor type by parameters is the precision people mean. */
    uint64_t best = 0;
    for (int i = 0; i < info.n_types; i++)
        if (info.types[i].elements > best) {
            best = info.types[i].elements;
            snprintf(facts->precision, sizeof facts->precision, "%s", info.types[i].type);
        }
    snprintf(facts->quantization, sizeof facts->quantization, "%s",
             info.file_type[0] ? info.file_type : facts->precision);
    return AL_OK;
}

enum al_rc al_repo__facts(const char *path, struct al_model_facts *facts, struct al_err *err)
{
    return al_repo_facts_named(path, path, facts, err);
}

enum al_rc al_repo_facts(const char *path, struct al_model_facts *facts, struct al_err *err)
{
    return al_repo__facts(path, facts, err);
}
