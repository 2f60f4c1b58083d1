/*
 * report_html.c: the bench report as one self-contained HTML page. Charts are
 * inline SVG drawn here (no script library, no external font, no image), so
 * the page opens offline in any browser and prints. Every chart is an
 * <svg class="chart" id="..."> whose plotted marks carry class "mark"; a tiny
 * inline script (optional to the page, needed by nothing) writes each
 * chart's rendered size into data-rendered, which tests read back from a
 * headless browser.
 */
#include "bench/bench_int.h"

#include <math.h>

#define W 900 /* the viewBox; the chart is drawn at the page's width (CSS) */
#define H 320
#define ML 64 /* margins */
#define MR 150
#define MT 20
#define MB 44

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                                      "#e377c2"};

static void esc(struct al_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': al_buf_addstr(b, "&lt;"); break;
        case '>': al_buf_addstr(b, "&gt;"); break;
        case '&': al_buf_addstr(b, "&amp;"); break;
        case '"': al_buf_addstr(b, "&quot;"); break;
        default: al_buf_addch(b, *s);
        }
    }
}

static double get(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }
static double sum_get(json_t *cell, const char *metric, const char *q)
{
    json_t *s = json_object_get(cell, "summary");
    return q ? get(json_object_get(s, metric), q) : get(s, metric);
}

/* An axis label people read at a glance: 16k, 5.4k, 750, 37.5, 0.25; never
 * the exponent form %g gives (1.073e+04). */
static void tick(struct al_buf *b, double v)
{
    double a = fabs(v);
    if (a >= 10000)
        al_buf_addf(b, "%.0fk", v / 1000);
    else if (a >= 1000)
        al_buf_addf(b, "%.1fk", v / 1000);
    else if (a >= 100 || a == 0)
        al_buf_addf(b, "%.0f", v);
    else
        al_buf_addf(b, "%.3g", v);
}

/* A round axis maximum: 1, 2 or 5 times a power of ten, at least v. */
static double nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double p = pow(10, floor(log10(v)));
    for (int i = 0; i < 3; i++) {
        double m = p * (i == 0 ? 1 : i == 1 ? 2 : 5);
        if (m >= v)
            return m;
    }
    return p * 10;
}

static double py(double v, double ymax) { return MT + (H - MT - MB) * (1 - v / ymax); }
static double px(int i, int n) { return ML + (W - ML - MR) * (n > 1 ? (double)i / (n - 1) : 0.5); }

static void chart_open(struct al_buf *b, const char *id, const char *title, const char *xlabel, const char *ylabel,
                       double ymax)
{
    al_buf_addf(b, "<figure><figcaption>%s</figcaption>\n<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
                   "viewBox=\"0 0 %d %d\" role=\"img\">\n",
                title, id, W, H);
    al_buf_addf(b, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/><line class=\"axis\" x1=\"%d\" "
                   "y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
                ML, H - MB, W - MR, H - MB, ML, MT, ML, H - MB);
    for (int t = 0; t <= 4; t++) {
        double v = ymax * t / 4;
        al_buf_addf(b, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><text x=\"%d\" y=\"%.1f\" "
                       "text-anchor=\"end\">",
                    ML, py(v, ymax), W - MR, py(v, ymax), ML - 6, py(v, ymax) + 4);
        tick(b, v);
        al_buf_addstr(b, "</text>\n");
    }
    al_buf_addf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", (ML + W - MR) / 2, H - 8, xlabel);
    al_buf_addf(b, "<text x=\"14\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 14 %d)\">%s</text>\n",
                (MT + H - MB) / 2, (MT + H - MB) / 2, ylabel);
}

static void chart_close(struct al_buf *b) { al_buf_addstr(b, "</svg></figure>\n"); }

static void legend(struct al_buf *b, int i, const char *color, const char *label, bool dashed)
{
    int y = MT + 8 + i * 18;
    al_buf_addf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>"
                   "<text x=\"%d\" y=\"%d\">%s</text>\n",
                W - MR + 10, y, W - MR + 30, y, color, dashed ? " stroke-dasharray=\"4 3\"" : "", W - MR + 34, y + 4,
                label);
}

/* Latency distribution: a histogram of every successful request's latency. */
static void chart_latency(struct al_buf *b, json_t *cells)
{
    double lo = INFINITY, hi = 0;
    size_t i, k, n = 0;
    json_t *cell, *s;
    json_array_foreach(cells, i, cell) json_array_foreach(json_object_get(cell, "samples"), k, s) {
        if (json_string_length(json_object_get(s, "error")))
            continue;
        double v = get(s, "latency_ms");
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        n++;
    }
    enum { BINS = 24 };
    int count[BINS] = {0}, cmax = 1;
    double width = n && hi > lo ? (hi - lo) / BINS : 1;
    if (!n)
        lo = 0;
    json_array_foreach(cells, i, cell) json_array_foreach(json_object_get(cell, "samples"), k, s) {
        if (json_string_length(json_object_get(s, "error")))
            continue;
        int bin = (int)((get(s, "latency_ms") - lo) / width);
        bin = bin < 0 ? 0 : bin >= BINS ? BINS - 1 : bin;
        if (++count[bin] > cmax)
            cmax = count[bin];
    }
    double ymax = nice_max(cmax);
    chart_open(b, "chart-latency", "Request latency distribution (all cells)", "request latency, ms", "requests",
               ymax);
    double bw = (double)(W - ML - MR) / BINS;
    for (int j = 0; j < BINS; j++) {
        if (!count[j])
            continue;
        al_buf_addf(b, "<rect class=\"mark bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%.1f-%.1f ms: "
                       "%d</title></rect>\n",
                    ML + j * bw + 1, py(count[j], ymax), bw - 2, (H - MB) - py(count[j], ymax), lo + j * width,
                    lo + (j + 1) * width, count[j]);
    }
    for (int t = 0; t <= 4; t++) {
        al_buf_addf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ML + t * (W - ML - MR) / 4.0, H - MB + 16);
        tick(b, lo + t * (BINS * width) / 4);
        al_buf_addstr(b, "</text>\n");
    }
    chart_close(b);
}

/* Distinct values of an integer field over the cells, in order of appearance, sorted. */
static int distinct(json_t *cells, const char *key, int *out)
{
    int n = 0;
    size_t i;
    json_t *cell;
    json_array_foreach(cells, i, cell) {
        int v = (int)json_integer_value(json_object_get(cell, key)), j = 0;
        while (j < n && out[j] != v)
            j++;
        if (j == n && n < AL_BENCH_LEVELS_MAX)
            out[n++] = v;
    }
    for (int a = 1; a < n; a++)
        for (int c = a; c > 0 && out[c - 1] > out[c]; c--) {
            int t = out[c];
            out[c] = out[c - 1];
            out[c - 1] = t;
        }
    return n;
}

static json_t *find_cell(json_t *cells, int conc, int len)
{
    size_t i;
    json_t *cell;
    json_array_foreach(cells, i, cell) if (json_integer_value(json_object_get(cell, "concurrency")) == conc &&
                                           json_integer_value(json_object_get(cell, "prompt_length")) == len) return cell;
    return NULL;
}

/* One series: a polyline and its points over the categories 0..n-1. */
static void series(struct al_buf *b, const double *v, int n, double ymax, const char *color, bool dashed,
                   const char *label)
{
    al_buf_addf(b, "<polyline class=\"mark line\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color,
                dashed ? " stroke-dasharray=\"4 3\"" : "");
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            al_buf_addf(b, "%.1f,%.1f ", px(i, n), py(v[i], ymax));
    al_buf_addstr(b, "\"/>\n");
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            al_buf_addf(b, "<circle class=\"mark point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s: %.4g</title>"
                           "</circle>\n",
                        px(i, n), py(v[i], ymax), color, label, v[i]);
}

static void x_labels(struct al_buf *b, const int *x, int n)
{
    for (int i = 0; i < n; i++)
        al_buf_addf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px(i, n), H - MB + 16, x[i]);
}

/* A line chart over the cells: one level (concurrency or prompt length) runs
 * along x, each value of the other is a colour with a solid and a dashed
 * series. */
struct line_chart {
    const char *id, *title, *xlabel, *ylabel;
    bool x_is_concurrency; /* else the prompt length runs along x */
    double (*value)(json_t *cell, bool dashed);
};

static void chart_lines(struct al_buf *b, json_t *cells, const struct line_chart *ch)
{
    int conc[AL_BENCH_LEVELS_MAX], lens[AL_BENCH_LEVELS_MAX];
    int nc = distinct(cells, "concurrency", conc), nl = distinct(cells, "prompt_length", lens);
    const int *x = ch->x_is_concurrency ? conc : lens, *grp = ch->x_is_concurrency ? lens : conc;
    int nx = ch->x_is_concurrency ? nc : nl, ng = ch->x_is_concurrency ? nl : nc;
    double v[2][AL_BENCH_LEVELS_MAX][AL_BENCH_LEVELS_MAX], ymax = 0;
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < nx; i++) {
            json_t *cell = ch->x_is_concurrency ? find_cell(cells, x[i], grp[g]) : find_cell(cells, grp[g], x[i]);
            for (int d = 0; d < 2; d++) {
                v[d][g][i] = cell ? ch->value(cell, d) : NAN;
                ymax = fmax(ymax, isfinite(v[d][g][i]) ? v[d][g][i] : 0);
            }
        }
    ymax = nice_max(ymax);
    chart_open(b, ch->id, ch->title, ch->xlabel, ch->ylabel, ymax);
    x_labels(b, x, nx);
    for (int g = 0; g < ng && g < 8; g++) {
        char label[64];
        snprintf(label, sizeof label, ch->x_is_concurrency ? "prompt %d" : "%d in flight", grp[g]);
        series(b, v[0][g], nx, ymax, palette[g], false, label);
        series(b, v[1][g], nx, ymax, palette[g], true, label);
        legend(b, g, palette[g], label, false);
    }
    chart_close(b);
}

/* Solid: aggregate tokens/s; dashed: per stream, a gap where a cell has none. */
static double tps_value(json_t *cell, bool dashed)
{
    if (!dashed)
        return sum_get(cell, "aggregate_tps", NULL);
    json_t *dec = json_object_get(json_object_get(cell, "summary"), "decode_tps");
    return json_is_number(dec) ? json_number_value(dec) : NAN;
}

static double ttft_value(json_t *cell, bool dashed) { return sum_get(cell, "ttft_ms", dashed ? "p95" : "p50"); }

static const struct line_chart tps_chart = {
    .id = "chart-tps", .title = "Generated tokens/s against concurrency (solid: aggregate, dashed: per stream)",
    .xlabel = "requests in flight", .ylabel = "tokens/s", .x_is_concurrency = true, .value = tps_value};

/* p50 <= p95, so the dashed series alone sets the axis. */
static const struct line_chart ttft_chart = {
    .id = "chart-ttft", .title = "Time to first token against prompt length (solid: p50, dashed: p95)",
    .xlabel = "prompt tokens", .ylabel = "TTFT, ms", .x_is_concurrency = false, .value = ttft_value};

static void kv_row(struct al_buf *b, const char *k, json_t *v)
{
    al_buf_addf(b, "<tr><th>%s</th><td>", k);
    if (json_is_string(v))
        esc(b, json_string_value(v));
    else if (json_is_integer(v))
        al_buf_addf(b, "%lld", json_integer_value(v));
    else if (json_is_number(v))
        al_buf_addf(b, "%.4g", json_number_value(v));
    else
        al_buf_addstr(b, "-");
    al_buf_addstr(b, "</td></tr>\n");
}

static void fmt_num(struct al_buf *b, json_t *v)
{
    if (json_is_number(v))
        al_buf_addf(b, "<td>%.1f</td>", json_number_value(v));
    else
        al_buf_addstr(b, "<td>-</td>");
}

enum al_rc al_bench_html(json_t *r, struct al_buf *b, struct al_err *err)
{
    json_t *cells = json_object_get(r, "cells"), *mach = json_object_get(r, "machine");
    json_t *model = json_object_get(r, "model"), *health = json_object_get(r, "health");
    al_buf_addstr(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>airlock bench: ");
    esc(b, json_string_value(json_object_get(model, "ref")));
    al_buf_addstr(b, "</title>\n<style>\nbody{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}\n"
                     "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px;"
                     "text-align:right;font-size:13px}th{background:#f3f3f3;text-align:left}\n"
                     ".kv td{text-align:left}figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.3em}\n"
                     "svg.chart{width:100%;height:auto}svg text{font-size:13px;fill:#333}.axis{stroke:#333}.grid{stroke:#e5e5e5}"
                     ".bar{fill:#1f77b4}.ok{color:#080}.fail{color:#c00;font-weight:bold}\n</style></head><body>\n");
    al_buf_addstr(b, "<h1>airlock bench</h1>\n<table class=\"kv\">\n");
    kv_row(b, "model", json_object_get(model, "ref"));
    kv_row(b, "digest", json_object_get(model, "digest"));
    kv_row(b, "description", json_object_get(model, "desc"));
    kv_row(b, "kind", json_object_get(r, "kind"));
    kv_row(b, "started", json_object_get(r, "started_at"));
    kv_row(b, "CPU", json_object_get(mach, "cpu_model"));
    kv_row(b, "CPU features", json_object_get(mach, "cpu_flags"));
    kv_row(b, "CPUs", json_object_get(mach, "n_cpus"));
    kv_row(b, "threads", json_object_get(mach, "threads"));
    kv_row(b, "llama.cpp", json_object_get(mach, "llama_commit"));
    kv_row(b, "runs on", json_object_get(model, "runs_on"));
    kv_row(b, "peak RSS, MiB", json_object_get(health, "rss_peak_mb"));
    kv_row(b, "hottest sensor, C", json_object_get(health, "max_temp"));
    al_buf_addstr(b, "</table>\n");
    /* The figures the suite's targets are checked against, said as what they
     * pool, since they are not any one cell's. */
    double dec, ttft, rss;
    al_bench_overall(r, &dec, &ttft, &rss);
    al_buf_addstr(b, "<h2>Summary</h2>\n<table class=\"kv\">\n");
    al_buf_addf(b, "<tr><th>decode, tokens/s per stream</th><td>%.1f: the median of every request at the lowest "
                   "concurrency, all prompt lengths together</td></tr>\n", dec);
    al_buf_addf(b, "<tr><th>TTFT p95, ms</th><td>%.1f: over every request of every cell</td></tr>\n", ttft);
    al_buf_addstr(b, "</table>\n");
    json_t *targets = json_object_get(r, "targets"), *t;
    size_t i;
    if (json_array_size(targets)) {
        al_buf_addstr(b, "<h2>Targets</h2>\n<table><tr><th>target</th><th>limit</th><th>measured</th><th></th></tr>\n");
        json_array_foreach(targets, i, t) {
            bool met = json_is_true(json_object_get(t, "met"));
            al_buf_addstr(b, "<tr><th>");
            esc(b, json_string_value(json_object_get(t, "name")));
            al_buf_addf(b, "</th><td>%.4g</td>", get(t, "target"));
            fmt_num(b, json_object_get(t, "measured"));
            al_buf_addf(b, "<td class=\"%s\">%s</td></tr>\n", met ? "ok" : "fail", met ? "met" : "MISSED");
        }
        al_buf_addstr(b, "</table>\n");
    }
    al_buf_addstr(b, "<h2>Charts</h2>\n");
    chart_latency(b, cells);
    chart_lines(b, cells, &tps_chart);
    chart_lines(b, cells, &ttft_chart);
    al_buf_addstr(b, "<h2>Cells</h2>\n<table><tr><th>in flight</th><th>prompt</th><th>ok</th><th>errors</th>"
                     "<th>pp t/s</th><th>decode t/s/stream</th><th>aggregate t/s</th><th>TTFT p50</th><th>TTFT p95</th>"
                     "<th>TTFT p99</th><th>ITL p50</th><th>ITL p95</th><th>ITL p99</th><th>latency p50</th>"
                     "<th>latency p95</th><th>latency p99</th><th>CPU %</th></tr>\n");
    json_t *cell;
    json_array_foreach(cells, i, cell) {
        json_t *s = json_object_get(cell, "summary");
        al_buf_addf(b, "<tr><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td>",
                    json_integer_value(json_object_get(cell, "concurrency")),
                    json_integer_value(json_object_get(cell, "prompt_length")),
                    json_integer_value(json_object_get(cell, "n_ok")),
                    json_integer_value(json_object_get(cell, "n_errors")));
        fmt_num(b, json_object_get(s, "pp_tps"));
        fmt_num(b, json_object_get(s, "decode_tps"));
        fmt_num(b, json_object_get(s, "aggregate_tps"));
        static const char *const metrics[] = {"ttft_ms", "itl_ms", "latency_ms"};
        for (int m = 0; m < 3; m++) {
            json_t *q = json_object_get(s, metrics[m]);
            fmt_num(b, json_object_get(q, "p50"));
            fmt_num(b, json_object_get(q, "p95"));
            fmt_num(b, json_object_get(q, "p99"));
        }
        fmt_num(b, json_object_get(cell, "cpu_util"));
        al_buf_addstr(b, "</tr>\n");
    }
    al_buf_addstr(b, "</table>\n<p>Times in milliseconds. Every raw sample is in the JSON report.</p>\n"
                     "<script>for(const s of document.querySelectorAll('svg.chart')){let w=0,h=0,n=0;"
                     "for(const m of s.querySelectorAll('.mark')){const r=m.getBBox();if(r.width>0||r.height>0)"
                     "{n++;w=Math.max(w,r.width);h=Math.max(h,r.height);}}"
                     "s.setAttribute('data-rendered',n+' marks '+Math.round(w)+'x'+Math.round(h));}</script>\n"
                     "</body></html>\n");
    if (al_buf_failed(b))
        return al_err_set(err, AL_ERR_LIMIT, "the HTML report is over its cap of %zu bytes", b->max);
    return AL_OK;
}
