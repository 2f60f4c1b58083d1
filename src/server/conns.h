/*
 * conns.h: the server's connections while they wait for a request, and the
 * deadline that request has to arrive whole.
 *
 * libmicrohttpd's idle timeout is reset by every byte, so a client that sends
 * a header line every few seconds keeps its connection (and its thread) as
 * long as it likes; a couple of hundred such clients take every connection
 * the daemon allows, /health included. So each request gets a deadline:
 * its headers and body must be in within receive_timeout_s of the
 * connection's accept, or of the end of the previous response on a kept-alive
 * connection (which is then waiting for its next request). A connection
 * whose request is being handled (generating, streaming) has no deadline
 * here: limits.timeout_s bounds that.
 *
 * And a reserve: while fewer than cap/4 of the daemon's connections are free,
 * the connections that have been receiving longest, past a grace of
 * AL_SERVER_CONNS_GRACE_S (a request on a working link arrives in milliseconds), are
 * closed first, so a new client finds room long before the deadline has
 * cleared the slow ones.
 *
 * Closing is shutdown(2) on the connection's socket: libmicrohttpd's thread
 * for it reads the end of its input and closes it as it would any client that
 * left. The descriptor stays libmicrohttpd's; it reports the close
 * (MHD_CONNECTION_NOTIFY_CLOSED, where the server calls al_server_conns_remove)
 * before it closes the descriptor, and al_server_conns_remove takes the mutex a
 * sweep holds while it shuts connections down, so a shutdown never reaches
 * a descriptor that was closed and reused.
 *
 * A watchdog thread sweeps every AL_SERVER_CONNS_TICK_MS. Thread-safe: one mutex.
 */
#ifndef AL_SERVER_CONNS_H
#define AL_SERVER_CONNS_H

#include <stdint.h>

#include "core/err.h"

#define AL_SERVER_CONNS_TICK_MS 100
#define AL_SERVER_CONNS_GRACE_S 1.0

struct al_server_conns;
struct al_server_conn;

struct al_server_conns_stats {
    int open;           /* connections tracked (not yet closed by us) */
    int receiving;      /* of which waiting for (the rest of) a request */
    uint64_t timed_out; /* closed past receive_timeout_s */
    uint64_t shed;      /* closed to keep the reserve free */
};

/* cap: the daemon's connection limit; receive_timeout_s > 0. */
enum al_rc al_server_conns_new(int cap, double receive_timeout_s, struct al_server_conns **out, struct al_err *err);
/* Starts the watchdog thread. */
enum al_rc al_server_conns_start(struct al_server_conns *cs, struct al_err *err);
/* Stops the watchdog and frees; connections not removed are forgotten
 * (their descriptors are libmicrohttpd's). NULL: no-op. */
void al_server_conns_free(struct al_server_conns *cs);
/* A new deadline for requests that start receiving from now on (SIGHUP). */
void al_server_conns_set_timeout(struct al_server_conns *cs, double receive_timeout_s);

/* A connection accepted at now (monotonic seconds), receiving; NULL when out
 * of memory (the connection is then not watched). */
struct al_server_conn *al_server_conns_add(struct al_server_conns *cs, int fd, double now);
/* Before its descriptor is closed. NULL: no-op. */
void al_server_conns_remove(struct al_server_conns *cs, struct al_server_conn *c);
/* Its request is in whole: no deadline while it is handled. */
void al_server_conn_handling(struct al_server_conns *cs, struct al_server_conn *c);
/* Its response is done: the next request's deadline runs from now. */
void al_server_conn_receiving(struct al_server_conns *cs, struct al_server_conn *c, double now);

/* One pass at time now: closes the connections past their deadline, then,
 * oldest first, receiving ones past the grace until the reserve is free.
 * Returns how many it closed. The watchdog calls it; tests may too. */
int al_server_conns_sweep(struct al_server_conns *cs, double now);

void al_server_conns_stats(struct al_server_conns *cs, struct al_server_conns_stats *st);

#endif
