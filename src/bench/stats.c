/* stats.c: order statistics for the bench. */
#include "bench/bench.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double al_stat_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = (size_t)ceil(pos);
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

double al_stat_mad(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    double med = al_stat_quantile(v, n, 0.5);
    for (size_t i = 0; i < n; i++)
        v[i] = fabs(v[i] - med);
    return al_stat_quantile(v, n, 0.5);
}
