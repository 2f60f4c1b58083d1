/*
 * metrics.c: see metrics.h. Requests are counted per (route, status) pair in
 * a small fixed table: routes are the server's own labels and statuses a
 * handful of codes, so the table cannot be grown by clients.
 */
#include "server/metrics.h"

#include <pthread.h>

#define MAX_PAIRS 128
#define MAX_LORAS 64

static const double ttft_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double tok_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
static const double req_bounds[] = {0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

struct hist {
    const double *bounds;
    int n;
    uint64_t counts[16];
    uint64_t count;
    double sum;
};

struct pair {
    const char *route;
    int status;
    uint64_t n;
};

struct al_server_metrics {
    pthread_mutex_t mu;
    struct pair pairs[MAX_PAIRS];
    int n_pairs;
    uint64_t tokens_in, tokens_out, cancelled, client_gone;
    struct hist ttft, tok, req;
    struct {
        char name[129], digest[72];
        uint64_t n;
    } loras[MAX_LORAS];
    int n_loras;
};

enum al_rc al_server_metrics_new(struct al_server_metrics **out, struct al_err *err)
{
    struct al_server_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return al_err_set(err, AL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    m->ttft = (struct hist){.bounds = ttft_bounds, .n = (int)(sizeof ttft_bounds / sizeof *ttft_bounds)};
    m->tok = (struct hist){.bounds = tok_bounds, .n = (int)(sizeof tok_bounds / sizeof *tok_bounds)};
    m->req = (struct hist){.bounds = req_bounds, .n = (int)(sizeof req_bounds / sizeof *req_bounds)};
    *out = m;
    return AL_OK;
}

void al_server_metrics_free(struct al_server_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void observe(struct hist *h, double v)
{
    for (int i = 0; i < h->n; i++)
        if (v <= h->bounds[i])
            h->counts[i]++;
    h->count++;
    h->sum += v;
}

void al_server_metrics_request(struct al_server_metrics *m, const char *route, int status, double seconds)
{
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_pairs && !(m->pairs[i].status == status && strcmp(m->pairs[i].route, route) == 0))
        i++;
    if (i == m->n_pairs && m->n_pairs < MAX_PAIRS)
        m->pairs[m->n_pairs++] = (struct pair){route, status, 0};
    if (i < m->n_pairs)
        m->pairs[i].n++;
    observe(&m->req, seconds);
    pthread_mutex_unlock(&m->mu);
}

void al_server_metrics_tokens(struct al_server_metrics *m, int in, int out)
{
    pthread_mutex_lock(&m->mu);
    m->tokens_in += (uint64_t)(in > 0 ? in : 0);
    m->tokens_out += (uint64_t)(out > 0 ? out : 0);
    pthread_mutex_unlock(&m->mu);
}

void al_server_metrics_ttft(struct al_server_metrics *m, double s)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->ttft, s);
    pthread_mutex_unlock(&m->mu);
}

void al_server_metrics_token_latency(struct al_server_metrics *m, double s)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->tok, s);
    pthread_mutex_unlock(&m->mu);
}

void al_server_metrics_cancelled(struct al_server_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->cancelled++;
    pthread_mutex_unlock(&m->mu);
}

void al_server_metrics_client_gone(struct al_server_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->client_gone++;
    pthread_mutex_unlock(&m->mu);
}

void al_server_metrics_lora(struct al_server_metrics *m, const char *name, const char *digest)
{
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_loras && !(strcmp(m->loras[i].name, name) == 0 && strcmp(m->loras[i].digest, digest) == 0))
        i++;
    if (i == m->n_loras && m->n_loras < MAX_LORAS) {
        snprintf(m->loras[i].name, sizeof m->loras[i].name, "%s", name);
        snprintf(m->loras[i].digest, sizeof m->loras[i].digest, "%s", digest);
        m->n_loras++;
    }
    if (i < m->n_loras)
        m->loras[i].n++;
    pthread_mutex_unlock(&m->mu);
}

static void render_hist(struct al_buf *b, const char *name, const char *help, const struct hist *h)
{
    al_buf_addf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < h->n; i++)
        al_buf_addf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], h->counts[i]);
    al_buf_addf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n", name, h->count, name,
                h->sum, name, h->count);
}

void al_server_metrics_render(struct al_server_metrics *m, struct al_buf *b)
{
    pthread_mutex_lock(&m->mu);
    al_buf_addstr(b, "# HELP airlock_requests_total HTTP requests by route and status.\n"
                     "# TYPE airlock_requests_total counter\n");
    for (int i = 0; i < m->n_pairs; i++)
        al_buf_addf(b, "airlock_requests_total{route=\"%s\",status=\"%d\"} %" PRIu64 "\n", m->pairs[i].route,
                    m->pairs[i].status, m->pairs[i].n);
    al_buf_addf(b,
                "# HELP airlock_prompt_tokens_total Prompt tokens of finished requests.\n"
                "# TYPE airlock_prompt_tokens_total counter\nairlock_prompt_tokens_total %" PRIu64 "\n"
                "# HELP airlock_generated_tokens_total Tokens generated.\n"
                "# TYPE airlock_generated_tokens_total counter\nairlock_generated_tokens_total %" PRIu64 "\n"
                "# HELP airlock_requests_cancelled_total Generations cancelled (client gone, timeout, drain).\n"
                "# TYPE airlock_requests_cancelled_total counter\nairlock_requests_cancelled_total %" PRIu64 "\n"
                "# HELP airlock_client_disconnects_total Requests whose client went away before the response ended "
                "(unanswered ones have status 499).\n"
                "# TYPE airlock_client_disconnects_total counter\nairlock_client_disconnects_total %" PRIu64 "\n",
                m->tokens_in, m->tokens_out, m->cancelled, m->client_gone);
    render_hist(b, "airlock_time_to_first_token_seconds", "Arrival of a request to its first generated token.",
                &m->ttft);
    render_hist(b, "airlock_time_per_output_token_seconds", "Mean time between generated tokens, per request.",
                &m->tok);
    render_hist(b, "airlock_request_duration_seconds", "Arrival to the end of the response.", &m->req);
    al_buf_addstr(b, "# HELP airlock_lora_requests_total Requests answered with a LoRA adapter.\n"
                     "# TYPE airlock_lora_requests_total counter\n");
    for (int i = 0; i < m->n_loras; i++)
        al_buf_addf(b, "airlock_lora_requests_total{adapter=\"%s\",digest=\"%s\"} %" PRIu64 "\n", m->loras[i].name,
                    m->loras[i].digest, m->loras[i].n);
    pthread_mutex_unlock(&m->mu);
}
