/*
 * Unit tests of src/health: the machine and process figures read from /proc
 * and /sys of this machine, the utilization arithmetic on hand-made readings,
 * and the Prometheus text for /metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "testutil.h"
#include "health/health.h"

/* The SIMD features health.h may report (its list, as llama.cpp names them). */
static const char *const known_flags[] = {
    "sse3", "ssse3", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "sve",
    "i8mm", "fphp", "asimdhp", NULL};

static bool known_flag(const char *w)
{
    for (int i = 0; known_flags[i]; i++)
        if (strcmp(known_flags[i], w) == 0)
            return true;
    return false;
}

/* True when /proc/cpuinfo's first flags line lists the word w. */
static bool cpu_has(const char *w)
{
    static char line[8192];
    if (!line[0]) {
        FILE *f = fopen("/proc/cpuinfo", "r");
        assert_non_null(f);
        while (fgets(line + 1, sizeof line - 2, f))
            if (strncmp(line + 1, "flags", 5) == 0 || strncmp(line + 1, "Features", 8) == 0)
                break;
        fclose(f);
        line[0] = ' ';
        for (char *p = line; *p; p++)
            if (*p == '\t' || *p == '\n')
                *p = ' ';
        size_t n = strlen(line);
        if (n + 1 < sizeof line)
            line[n] = ' ', line[n + 1] = '\0';
    }
    char want[64];
    snprintf(want, sizeof want, " %s ", w);
    return strstr(line, want) != NULL;
}

static void test_machine(void **state)
{
    struct al_machine m;
    memset(&m, 0x5a, sizeof m); /* every field is written, none left from before */
    al_health_machine(&m);
    assert_int_equal(m.n_cpus, (int)sysconf(_SC_NPROCESSORS_ONLN));
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    assert_int_equal(strncmp(m.kernel, u.sysname, strlen(u.sysname)), 0);
    assert_non_null(strstr(m.kernel, u.machine));
    assert_string_equal(m.hostname, u.nodename);
    assert_true(m.mem_total > (64ull << 20));
    assert_true(memchr(m.cpu_model, '\0', sizeof m.cpu_model) != NULL);
    if (tu_system("grep -q '^model name' /proc/cpuinfo") == 0) {
        assert_true(m.cpu_model[0] != '\0');
        assert_true(m.cpu_model[strlen(m.cpu_model) - 1] != '\n');
    }
    /* cpu_flags: known features only, each once, each one the CPU has */
    char flags[sizeof m.cpu_flags];
    snprintf(flags, sizeof flags, "%s", m.cpu_flags);
    const char *seen[64];
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(flags, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (!known_flag(w))
            fail_msg("'%s' is not a feature health.h reports", w);
        if (!cpu_has(w))
            fail_msg("'%s' reported, but /proc/cpuinfo does not list it", w);
        for (int i = 0; i < n; i++)
            if (strcmp(seen[i], w) == 0)
                fail_msg("'%s' reported twice", w);
        assert_true(n < 64);
        seen[n++] = w;
    }
    /* and every listed one the CPU has is there (x86: sse3 at least) */
    for (int i = 0; known_flags[i]; i++) {
        if (!cpu_has(known_flags[i]))
            continue;
        char pad[600];
        snprintf(pad, sizeof pad, " %s ", m.cpu_flags);
        char want[40];
        snprintf(want, sizeof want, " %s ", known_flags[i]);
        if (!strstr(pad, want))
            fail_msg("the CPU has '%s' but cpu_flags '%s' misses it", known_flags[i], m.cpu_flags);
    }
}

static void test_read_process(void **state)
{
    struct al_health a, b;
    al_health_read(&a);
    assert_true(a.t_ms > 0);
    assert_true(a.cpu_total > 0);
    assert_true(a.cpu_busy <= a.cpu_total);
    assert_true(a.rss > 0);
    assert_true(a.rss_peak > 0);
    assert_true(a.n_temps >= 0 && a.n_temps <= AL_HEALTH_TEMPS_MAX);
    for (int i = 0; i < a.n_temps; i++) {
        const struct al_temp *t = &a.temps[i];
        assert_true(strncmp(t->name, "thermal:", 8) == 0 || strncmp(t->name, "hwmon:", 6) == 0);
        assert_true(t->celsius > -100 && t->celsius <= 200);
    }
    /* 64 MiB touched: the resident set and its peak grow by about as much */
    size_t big = 64u << 20;
    char *p = malloc(big);
    assert_non_null(p);
    memset(p, 1, big);
    al_health_read(&b);
    assert_true(b.t_ms >= a.t_ms);
    assert_true(b.cpu_total >= a.cpu_total);
    assert_true(b.rss >= a.rss + big / 2);
    assert_true(b.rss_peak >= a.rss + big / 2);
    /* burn a measured amount of CPU (not of time): this process's share shows */
    struct al_health c;
    do {
        for (volatile int i = 0; i < 100000; i++)
            p[i & 4095]++;
        al_health_read(&c);
    } while (c.proc_cpu_s < b.proc_cpu_s + 0.05);
    assert_true(al_health_proc_util(&b, &c) > 0);
    double u = al_health_cpu_util(&a, &c);
    assert_true(u == -1 || (u >= 0 && u <= 100)); /* -1 only if no jiffy passed */
    free(p);
}

static void test_util_arithmetic(void **state)
{
    struct al_health a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.cpu_busy = 100, a.cpu_total = 1000;
    b.cpu_busy = 600, b.cpu_total = 2000;
    assert_true(al_health_cpu_util(&a, &b) == 50.0);
    /* the same reading twice, or readings out of order: not computable */
    assert_true(al_health_cpu_util(&a, &a) == -1);
    assert_true(al_health_cpu_util(&b, &a) == -1);
    a.t_ms = 1000, a.proc_cpu_s = 1.0;
    b.t_ms = 3000, b.proc_cpu_s = 4.0; /* 3 CPU seconds in 2 s: 150 % of one CPU */
    assert_true(al_health_proc_util(&a, &b) == 150.0);
    assert_true(al_health_proc_util(&a, &a) == -1);
    assert_true(al_health_proc_util(&b, &a) == -1);
}

static void test_max_temp(void **state)
{
    struct al_health h;
    memset(&h, 0, sizeof h);
    assert_true(al_health_max_temp(&h) == -1);
    h.n_temps = 3;
    h.temps[0].celsius = 41.5;
    h.temps[1].celsius = 85.0;
    h.temps[2].celsius = 60.25;
    assert_true(al_health_max_temp(&h) == 85.0);
}

static void test_prometheus(void **state)
{
    struct al_health h;
    memset(&h, 0, sizeof h);
    h.rss = 12345678;
    h.rss_peak = 23456789;
    h.proc_cpu_s = 1.5;
    struct al_buf b;
    al_buf_init(&b, 1 << 16);
    al_health_prometheus(&h, &b);
    assert_false(al_buf_failed(&b));
    assert_string_equal(al_buf_str(&b), "# TYPE airlock_rss_bytes gauge\nairlock_rss_bytes 12345678\n"
                                        "# TYPE airlock_rss_peak_bytes gauge\nairlock_rss_peak_bytes 23456789\n"
                                        "# TYPE airlock_process_cpu_seconds_total counter\n"
                                        "airlock_process_cpu_seconds_total 1.500\n");
    /* sensor names are label values: quote and backslash escaped, no raw newline */
    al_buf_reset(&b);
    h.n_temps = 2;
    snprintf(h.temps[0].name, sizeof h.temps[0].name, "hwmon:chip/Package id 0");
    h.temps[0].celsius = 47.04;
    snprintf(h.temps[1].name, sizeof h.temps[1].name, "thermal:a\"b\\c\nd");
    h.temps[1].celsius = -3.0;
    al_health_prometheus(&h, &b);
    const char *s = al_buf_str(&b);
    assert_non_null(strstr(s, "# TYPE airlock_temperature_celsius gauge\n"
                              "airlock_temperature_celsius{sensor=\"hwmon:chip/Package id 0\"} 47.0\n"
                              "airlock_temperature_celsius{sensor=\"thermal:a\\\"b\\\\c d\"} -3.0\n"));
    /* every line is a comment or "name{labels} value": nothing else */
    for (const char *l = s; *l; l = strchr(l, '\n') + 1)
        assert_true(l[0] == '#' || strncmp(l, "airlock_", 8) == 0);
    al_buf_release(&b);

    /* a capped buffer fails (sticky), without writing past its cap */
    struct al_buf small;
    al_buf_init(&small, 16);
    al_health_prometheus(&h, &small);
    assert_true(al_buf_failed(&small));
    assert_true(small.len <= 16);
    al_buf_release(&small);
}

/* Live readings feed the text: the figures of a real reading appear. */
static void test_prometheus_live(void **state)
{
    struct al_health h;
    al_health_read(&h);
    struct al_buf b;
    al_buf_init(&b, 1 << 16);
    al_health_prometheus(&h, &b);
    char want[64];
    snprintf(want, sizeof want, "airlock_rss_bytes %llu\n", (unsigned long long)h.rss);
    assert_non_null(strstr(al_buf_str(&b), want));
    int lines = 0;
    for (const char *p = al_buf_str(&b); *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6 + (h.n_temps ? 1 + h.n_temps : 0));
    al_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_machine),
        cmocka_unit_test(test_read_process),
        cmocka_unit_test(test_util_arithmetic),
        cmocka_unit_test(test_max_temp),
        cmocka_unit_test(test_prometheus),
        cmocka_unit_test(test_prometheus_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
