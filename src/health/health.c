/*
 * health.c: /proc and /sys readers. Each file is read whole into a small
 * stack buffer (they are tiny, and a /sys file can grow no bigger than a
 * page); a file that cannot be opened leaves the figure absent.
 */
#include "health/health.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static size_t read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n;
}

static void copy_value(const char *line, char *out, size_t size)
{
    const char *c = strchr(line, ':');
    if (!c)
        return;
    c++;
    while (*c == ' ' || *c == '\t')
        c++;
    snprintf(out, size, "%s", c);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

/* Features llama.cpp's CPU backend picks kernels by (x86 and ARM names). */
static const char *const interesting[] = {
    "sse3", "ssse3", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "sve",
    "i8mm", "fphp", "asimdhp", NULL};

static void pick_flags(const char *flags, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; interesting[i]; i++) {
        size_t w = strlen(interesting[i]);
        for (const char *p = flags; (p = strstr(p, interesting[i])) != NULL; p += w) {
            bool start = p == flags || p[-1] == ' ' || p[-1] == '\t';
            bool end = p[w] == '\0' || p[w] == ' ' || p[w] == '\n';
            if (start && end) {
                int n = snprintf(out + len, size - len, "%s%s", len ? " " : "", interesting[i]);
                if (n > 0 && (size_t)n < size - len)
                    len += (size_t)n;
                break;
            }
        }
    }
}

void al_health_machine(struct al_machine *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (f) {
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            if (!out->cpu_model[0] && (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0 ||
                                       strncmp(line, "Hardware", 8) == 0))
                copy_value(line, out->cpu_model, sizeof out->cpu_model);
            else if (!out->cpu_flags[0] && (strncmp(line, "flags", 5) == 0 || strncmp(line, "Features", 8) == 0))
                pick_flags(line, out->cpu_flags, sizeof out->cpu_flags);
        }
        fclose(f);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->n_cpus = n > 0 ? (int)n : 1;
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(out->kernel, sizeof out->kernel, "%.40s %.60s %.16s", u.sysname, u.release, u.machine);
        snprintf(out->hostname, sizeof out->hostname, "%.63s", u.nodename);
    }
    f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                out->mem_total = (uint64_t)kb * 1024;
        fclose(f);
    }
}

static void add_temp(struct al_health *h, const char *name, const char *path)
{
    char buf[64];
    if (h->n_temps >= AL_HEALTH_TEMPS_MAX || !read_small(path, buf, sizeof buf))
        return;
    char *end = NULL;
    long milli = strtol(buf, &end, 10);
    if (end == buf || milli <= -100000 || milli > 200000)
        return; /* "not available" sensors report nonsense */
    struct al_temp *t = &h->temps[h->n_temps++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->celsius = (double)milli / 1000.0;
}

static void read_thermal(struct al_health *h)
{
    DIR *d = opendir("/sys/class/thermal");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "thermal_zone", 12) != 0)
            continue;
        char path[512], type[40] = "", name[64];
        snprintf(path, sizeof path, "/sys/class/thermal/%.200s/type", e->d_name);
        if (!read_small(path, type, sizeof type))
            snprintf(type, sizeof type, "%.30s", e->d_name);
        snprintf(name, sizeof name, "thermal:%.39s", type);
        snprintf(path, sizeof path, "/sys/class/thermal/%.200s/temp", e->d_name);
        add_temp(h, name, path);
    }
    closedir(d);
}

static void read_hwmon(struct al_health *h)
{
    DIR *d = opendir("/sys/class/hwmon");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512], chip[24] = "";
        snprintf(path, sizeof path, "/sys/class/hwmon/%.200s/name", e->d_name);
        read_small(path, chip, sizeof chip);
        for (int i = 1; i <= 16; i++) {
            char label[24] = "", name[64];
            snprintf(path, sizeof path, "/sys/class/hwmon/%.200s/temp%d_label", e->d_name, i);
            if (!read_small(path, label, sizeof label))
                snprintf(label, sizeof label, "temp%d", i);
            snprintf(name, sizeof name, "hwmon:%.24s/%.24s", chip[0] ? chip : e->d_name, label);
            snprintf(path, sizeof path, "/sys/class/hwmon/%.200s/temp%d_input", e->d_name, i);
            add_temp(h, name, path);
        }
    }
    closedir(d);
}

void al_health_read(struct al_health *out)
{
    memset(out, 0, sizeof *out);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    out->t_ms = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
    char buf[512];
    if (read_small("/proc/stat", buf, sizeof buf)) {
        unsigned long long v[10] = {0};
        if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) >= 4) {
            uint64_t total = 0;
            for (int i = 0; i < 8; i++)
                total += v[i];
            out->cpu_total = total;
            out->cpu_busy = total - v[3] - v[4]; /* idle and iowait */
        }
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        out->proc_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        out->rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    }
    if (read_small("/proc/self/statm", buf, sizeof buf)) {
        unsigned long long size, res;
        if (sscanf(buf, "%llu %llu", &size, &res) == 2)
            out->rss = (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
    }
    read_thermal(out);
    read_hwmon(out);
}

double al_health_cpu_util(const struct al_health *a, const struct al_health *b)
{
    if (b->cpu_total <= a->cpu_total)
        return -1;
    return 100.0 * (double)(b->cpu_busy - a->cpu_busy) / (double)(b->cpu_total - a->cpu_total);
}

double al_health_proc_util(const struct al_health *a, const struct al_health *b)
{
    double wall = (b->t_ms - a->t_ms) / 1e3;
    if (wall <= 0)
        return -1;
    return 100.0 * (b->proc_cpu_s - a->proc_cpu_s) / wall;
}

double al_health_max_temp(const struct al_health *h)
{
    double mx = -1;
    for (int i = 0; i < h->n_temps; i++)
        if (h->temps[i].celsius > mx)
            mx = h->temps[i].celsius;
    return mx;
}

void al_health_prometheus(const struct al_health *h, struct al_buf *b)
{
    al_buf_addf(b, "# TYPE airlock_rss_bytes gauge\nairlock_rss_bytes %llu\n", (unsigned long long)h->rss);
    al_buf_addf(b, "# TYPE airlock_rss_peak_bytes gauge\nairlock_rss_peak_bytes %llu\n",
                (unsigned long long)h->rss_peak);
    al_buf_addf(b, "# TYPE airlock_process_cpu_seconds_total counter\nairlock_process_cpu_seconds_total %.3f\n",
                h->proc_cpu_s);
    if (h->n_temps)
        al_buf_addstr(b, "# TYPE airlock_temperature_celsius gauge\n");
    for (int i = 0; i < h->n_temps; i++) {
        al_buf_addstr(b, "airlock_temperature_celsius{sensor=\"");
        for (const char *p = h->temps[i].name; *p; p++) {
            if (*p == '"' || *p == '\\')
                al_buf_addch(b, '\\');
            al_buf_addch(b, *p == '\n' ? ' ' : *p);
        }
        al_buf_addf(b, "\"} %.1f\n", h->temps[i].celsius);
    }
}
