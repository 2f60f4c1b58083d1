/*
 * hash.h: SHA-256 through OpenSSL (SHA-NI where the CPU has it), digests as
 * text, and hashing an open file with progress.
 *
 * A digest string is "sha256:" followed by 64 lowercase hex digits
 * (AL_DIGEST_LEN characters, AL_DIGEST_SIZE with the NUL).
 */
#ifndef AL_CORE_HASH_H
#define AL_CORE_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AL_SHA256_BYTES 32
#define AL_SHA256_HEX   64
#define AL_DIGEST_LEN   (7 + AL_SHA256_HEX)
#define AL_DIGEST_SIZE  (AL_DIGEST_LEN + 1)

struct al_sha256; /* opaque */

struct al_sha256 *al_sha256_new(void);
void al_sha256_free(struct al_sha256 *h);
void al_sha256_update(struct al_sha256 *h, const void *data, size_t len);
/* Writes the raw digest; then only al_sha256_free may follow. */
void al_sha256_final(struct al_sha256 *h, uint8_t out[AL_SHA256_BYTES]);

/* One-shot hash of a memory range. */
void al_sha256_buf(const void *data, size_t len, uint8_t out[AL_SHA256_BYTES]);

void al_hex(const uint8_t *raw, size_t len, char *out /* 2*len+1 */);
/* "sha256:<hex>" into out[AL_DIGEST_SIZE]. */
void al_digest_format(const uint8_t raw[AL_SHA256_BYTES], char out[AL_DIGEST_SIZE]);
/* True when s is exactly "sha256:" and 64 lowercase hex digits. */
bool al_digest_valid(const char *s);
/* True when s is exactly 64 lowercase hex digits. */
bool al_hex64_valid(const char *s);
/* The 64 hex digits of a digest string: a pointer into digest, valid as long
 * as digest is; NULL when digest is NULL or not exactly "sha256:" and 64
 * lowercase hex digits. Use it instead of skipping the prefix by hand. */
const char *al_digest_hex(const char *digest);
/* True when digest is a digest string whose hex digits are hex: the check
 * "does this listed hex match that content digest" (false for a malformed
 * digest, never a crash). */
bool al_digest_hex_eq(const char *digest, const char *hex);
/* "sha256:<hex>" into out[AL_DIGEST_SIZE] when hex is 64 lowercase hex
 * digits; false (out "") otherwise. */
bool al_digest_from_hex(const char *hex, char out[AL_DIGEST_SIZE]);

struct al_progress;

/* An SHA-256 computed on a helper thread while the caller goes on: a ring of
 * page-aligned 1 MiB slots handed over in order. Fill a slot in place
 * (al_hash_stream_slot), then hand it over (al_hash_stream_submit). A
 * submitted slot is reused only after three more slots have been taken, so a
 * reader may keep using the last one it filled (libarchive does) until it
 * asks for the next. Without a thread (creation failed) it hashes inline. */
struct al_hash_stream;
struct al_hash_stream *al_hash_stream_new(void);
/* Waits for a free slot; returns it and its capacity. */
unsigned char *al_hash_stream_slot(struct al_hash_stream *s, size_t *cap);
void al_hash_stream_submit(struct al_hash_stream *s, size_t len);
/* Waits for the hasher, writes the digest; the stream is then spent. */
void al_hash_stream_final(struct al_hash_stream *s, char digest[AL_DIGEST_SIZE]);
void al_hash_stream_free(struct al_hash_stream *s);

/* Reads src from its current offset to EOF, hashing every byte and, when
 * dst >= 0, writing it to dst: one read pass. Reading and writing run on the
 * calling thread while a helper thread hashes, so on two cores the copy costs
 * little more than the hash. *size_out gets the byte count when non-NULL. */
enum al_rc al_sha256_copy(int src, int dst, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                          struct al_progress *progress, struct al_err *err);

/* Hashes fd from its current offset to EOF, reading in large blocks; adds
 * the bytes to *size_out when non-NULL; reports to progress when non-NULL. */
enum al_rc al_sha256_fd(int fd, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                        struct al_progress *progress, struct al_err *err);

/* Opens path and hashes it. */
enum al_rc al_sha256_path(const char *path, char digest[AL_DIGEST_SIZE], uint64_t *size_out,
                          struct al_progress *progress, struct al_err *err);

#endif
