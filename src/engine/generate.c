/*
 * generate.c: al_engine_generate(), the synchronous wrapper over
 * al_engine_submit(): it collects the streamed text in a buffer capped at
 * AL_LIMIT_PROMPT_BYTES and waits on a condition variable for on_done.
 */
#include "engine/engine_int.h"

#include "core/buf.h"
#include "core/limits.h"

struct gen_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    struct al_buf text;
    struct al_engine_gen_result res;
    char error[256];
};

static bool gen_on_token(void *ud, const char *piece, size_t len, int32_t token)
{
    struct gen_wait *w = ud;
    al_buf_add(&w->text, piece, len);
    return !al_buf_failed(&w->text);
}

static void gen_on_done(void *ud, const struct al_engine_gen_result *res)
{
    struct gen_wait *w = ud;
    pthread_mutex_lock(&w->mu);
    w->res = *res;
    if (res->error)
        snprintf(w->error, sizeof w->error, "%s", res->error);
    w->res.error = NULL;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

enum al_rc al_engine_generate(struct al_engine_model *m, const char *prompt,
                              const struct al_engine_gen_params *p, char **text,
                              struct al_engine_gen_result *res, struct al_err *err)
{
    if (!text || *text)
        return al_err_set(err, AL_ERR_USAGE, "al_engine_generate: bad arguments");
    struct gen_wait w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    al_buf_init(&w.text, AL_LIMIT_PROMPT_BYTES);
    enum al_rc rc = al_engine_submit(m, prompt, p, gen_on_token, gen_on_done, &w, NULL, err);
    if (rc == AL_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        if (al_buf_failed(&w.text))
            rc = al_err_set(err, AL_ERR_LIMIT, "the generated text is over the cap of %u bytes", AL_LIMIT_PROMPT_BYTES);
        else if (w.res.finish == AL_ENGINE_FINISH_ERROR)
            rc = al_err_set(err, AL_ERR_INTERNAL, "generation failed: %s", w.error);
        if (res) {
            *res = w.res;
            res->error = NULL;
        }
        if (rc == AL_OK) {
            *text = al_buf_take(&w.text);
            if (!*text) {
                *text = strdup("");
                if (!*text)
                    rc = al_err_set(err, AL_ERR_NOMEM, "out of memory");
            }
        }
    }
    al_buf_release(&w.text);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
