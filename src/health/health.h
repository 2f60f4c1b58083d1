/*
 * health.h: what the machine is and how it is doing, read from /proc and
 * /sys without any dependency: CPU model and features, CPU utilization,
 * temperatures (thermal zones and hwmon sensors, where the machine exposes
 * them), the process's resident memory. Used by `airlock bench` and meant for
 * the server's /metrics (al_health_prometheus), so that a machine that
 * throttles (a Raspberry Pi at 85 C) is visible next to its figures.
 *
 * Every reader tolerates a missing file: a container without /sys/class/hwmon
 * simply reports no temperatures. Nothing here fails; absent figures are
 * negative (or n_temps 0).
 */
#ifndef AL_HEALTH_HEALTH_H
#define AL_HEALTH_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

#define AL_HEALTH_TEMPS_MAX 32

struct al_machine {
    char cpu_model[128];   /* /proc/cpuinfo "model name" (or "Model"/"Hardware" on ARM) */
    char cpu_flags[512];   /* the SIMD features that matter to llama.cpp, space separated */
    int n_cpus;            /* online CPUs */
    char kernel[128];      /* uname: sysname release machine */
    char hostname[64];
    uint64_t mem_total;    /* bytes, /proc/meminfo */
};

void al_health_machine(struct al_machine *out);

struct al_temp {
    char name[64];         /* "thermal:x86_pkg_temp", "hwmon:coretemp/Package id 0" */
    double celsius;
};

/* One reading. CPU utilization needs two readings: see al_health_cpu_util. */
struct al_health {
    double t_ms;           /* monotonic clock of the reading */
    uint64_t cpu_busy;     /* jiffies, all CPUs (/proc/stat) */
    uint64_t cpu_total;
    double proc_cpu_s;     /* this process's user + system seconds */
    uint64_t rss;          /* bytes resident now (/proc/self/statm) */
    uint64_t rss_peak;     /* bytes, the process's peak (getrusage) */
    struct al_temp temps[AL_HEALTH_TEMPS_MAX];
    int n_temps;
};

void al_health_read(struct al_health *out);

/* Machine-wide CPU utilization between two readings, 0..100 (all CPUs
 * together), and this process's, in percent of one CPU (200 = two busy CPUs).
 * -1 when the readings do not allow it. */
double al_health_cpu_util(const struct al_health *a, const struct al_health *b);
double al_health_proc_util(const struct al_health *a, const struct al_health *b);

/* The hottest temperature of a reading, or -1 when none. */
double al_health_max_temp(const struct al_health *h);

/* Appends Prometheus text-format lines for a reading (airlock_rss_bytes,
 * airlock_rss_peak_bytes, airlock_process_cpu_seconds_total,
 * airlock_temperature_celsius{sensor="..."}) to b. */
void al_health_prometheus(const struct al_health *h, struct al_buf *b);

#endif
