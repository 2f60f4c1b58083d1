/* scan_int.h: what the files of the scan module share. */
#ifndef AL_SCAN_SCAN_INT_H
#define AL_SCAN_SCAN_INT_H

#include "scan/scan.h"

/* Adds a finding to r and raises r->verdict to sev. member and opcode and
 * tensor may be NULL; what is a printf format. Past AL_LIMIT_SCAN_FINDINGS
 * the finding is counted in n_dropped. Text is made printable. */
void al_scan__add(struct al_scan_report *r, enum al_scan_verdict sev, const char *member, uint64_t offset,
                  const char *opcode, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Copies src[0..n) into dst (size > 0) with control and non-ASCII bytes as
 * '?', cut to fit, NUL-terminated. */
void al_scan__printable(char *dst, size_t size, const uint8_t *src, size_t n);

/* The PyTorch zip checkpoint at the open fd: every .pkl member through
 * libarchive (torchzip.c). Returns true when the zip held a .pkl member (it
 * is a checkpoint); false when it is some other zip, left for the caller to
 * name. Findings go to r. */
int al_scan__torch_zip(int fd, struct al_scan_report *r);

/* The GGUF path: the gguf module's structure check, then its tensor-value
 * check (al_gguf_scan_values: NaN, Inf, data past the end: dangerous; a type
 * it cannot check: warn). values: that check's report when it was made as
 * the file was written (al_gguf_value_stream), else NULL. */
struct al_gguf_value_report;
void al_scan__gguf(int fd, const struct al_gguf_value_report *values, struct al_scan_report *r);

#endif
