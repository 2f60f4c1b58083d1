/* model_ref.c: see model_ref.h. */
#include "cli/model_ref.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_util.h"
#include "gguf/gguf.h"

int al_cli_model_ref(const char *ref, struct al_model_ref *out)
{
    struct al_err err = AL_ERR_INIT;
    struct stat st;
    memset(out, 0, sizeof *out);
    if ((strchr(ref, '/') || strstr(ref, ".gguf")) && stat(ref, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(out->path, sizeof out->path, "%s", ref);
        if (al_sha256_path(ref, out->digest, NULL, NULL, &err))
            return al_cli_fail(&err);
    } else {
        struct al_repo *r = NULL;
        int status = al_cli_open_repo(false, &r);
        if (status)
            return status;
        struct al_version v;
        enum al_rc rc = al_index_resolve(al_repo_index(r), ref, &v, &err);
        if (!rc)
            rc = al_repo_weight_path(r, &v, out->path, sizeof out->path, &err);
        al_repo_free(r);
        if (rc)
            return al_cli_fail(&err);
        /* Store blobs are named by their digest: blobs/sha256/<hex>. */
        const char *hex = strrchr(out->path, '/');
        snprintf(out->digest, sizeof out->digest, "sha256:%s", hex ? hex + 1 : "");
        if (!al_digest_valid(out->digest)) {
            al_err_set(&err, AL_ERR_CORRUPT, "'%s' is not a store blob path", out->path);
            return al_cli_fail(&err);
        }
    }
    struct al_gguf_info info;
    if (al_gguf_inspect(out->path, &info, &err) == AL_OK)
        out->n_ctx_train = (int)info.context_length;
    return 0;
}

int al_cli_model_load(const struct al_model_ref *ref, int threads, int n_seq, int n_ctx,
                      struct al_engine_model **out)
{
    struct al_model_params mp = al_model_params_default();
    mp.threads = threads;
    mp.n_seq = n_seq;
    mp.queue_max = n_seq * 4 + 64;
    mp.n_ctx = ref->n_ctx_train > 0 && ref->n_ctx_train < n_ctx ? ref->n_ctx_train : n_ctx;
    struct al_err err = AL_ERR_INIT;
    if (al_engine_model_load(ref->path, ref->digest, &mp, out, &err))
        return al_cli_fail(&err);
    return 0;
}
