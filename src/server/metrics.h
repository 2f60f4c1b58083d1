/*
 * metrics.h: the server's counters and histograms, rendered in Prometheus's
 * text format. Thread-safe (one mutex; every update is a few additions).
 */
#ifndef AL_SERVER_METRICS_H
#define AL_SERVER_METRICS_H

#include "core/buf.h"
#include "core/err.h"

struct al_server_metrics;

enum al_rc al_server_metrics_new(struct al_server_metrics **out, struct al_err *err);
void al_server_metrics_free(struct al_server_metrics *m);

/* One finished request: route label (a fixed string), HTTP status, seconds. */
void al_server_metrics_request(struct al_server_metrics *m, const char *route, int status, double seconds);
void al_server_metrics_tokens(struct al_server_metrics *m, int in, int out);
void al_server_metrics_ttft(struct al_server_metrics *m, double seconds);
void al_server_metrics_token_latency(struct al_server_metrics *m, double seconds);
void al_server_metrics_cancelled(struct al_server_metrics *m);
/* A request whose client went away before its response ended. */
void al_server_metrics_client_gone(struct al_server_metrics *m);

/* One request answered with the LoRA adapter name@digest (a store's
 * version, so the table stays small: at most 64 adapters are counted). */
void al_server_metrics_lora(struct al_server_metrics *m, const char *name, const char *digest);

/* Appends every metric in the text format. */
void al_server_metrics_render(struct al_server_metrics *m, struct al_buf *out);

#endif
