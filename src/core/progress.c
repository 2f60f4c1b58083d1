#include "core/progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct al_progress {
    char label[40];
    uint64_t total, done;
    double start, last_draw;
    bool drawn; /* something is on the line */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct al_progress *al_progress_new(const char *label, uint64_t total)
{
    if (!isatty(STDERR_FILENO) || getenv("AIRLOCK_NO_PROGRESS") != NULL)
        return NULL;
    struct al_progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start = p->last_draw = now();
    return p;
}

static void human(double bytes, char *out, size_t n)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

/* The time left at the rate so far: "ETA 1h02m", "ETA 3m05s", "ETA 42s". */
static void eta(double secs, char *out, size_t n)
{
    long s = (long)(secs + 0.5);
    if (secs > 99 * 3600.0)
        snprintf(out, n, "ETA >99h");
    else if (s >= 3600)
        snprintf(out, n, "ETA %ldh%02ldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, n, "ETA %ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, n, "ETA %lds", s);
}

/* One line, redrawn in place; "\033[K" clears what a longer line left. */
static void draw(struct al_progress *p, double t)
{
    char done[32], rate[32], left[32] = "";
    double secs = t - p->start > 1e-6 ? t - p->start : 1e-6;
    double bps = (double)p->done / secs;
    human((double)p->done, done, sizeof done);
    human(bps, rate, sizeof rate);
    if (p->total) {
        int width = 30;
        double frac = (double)p->done / (double)p->total;
        if (frac > 1)
            frac = 1;
        if (bps > 0 && p->done < p->total)
            eta((double)(p->total - p->done) / bps, left, sizeof left);
        int fill = (int)(frac * width);
        char bar[64];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(width - fill));
        bar[width] = '\0';
        fprintf(stderr, "\r%-16s [%s] %5.1f%%  %s  %s/s  %s\033[K", p->label, bar, frac * 100, done, rate, left);
    } else {
        fprintf(stderr, "\r%-16s %s  %s/s\033[K", p->label, done, rate);
    }
    p->drawn = true;
    fflush(stderr);
}

void al_progress_add(struct al_progress *p, uint64_t done)
{
    if (p == NULL)
        return;
    p->done += done;
    double t = now();
    if (t - p->last_draw >= 0.1) {
        p->last_draw = t;
        draw(p, t);
    }
}

void al_progress_free(struct al_progress *p)
{
    if (p == NULL)
        return;
    /* Done: the bar's line is cleared, so what is printed next starts on a clean line. */
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    free(p);
}
