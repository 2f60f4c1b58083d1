/*
 * blake2b_int.h: private to src/sign. One-shot unkeyed BLAKE2b (RFC 7693)
 * with any output length from 1 to 64 bytes.
 *
 * OpenSSL 3.0 offers BLAKE2b only with a 64-byte output (EVP_blake2b512); a
 * shorter BLAKE2b is a different function, not a truncation, because the
 * length is mixed into the initial state. minisign checks its secret keys with
 * a 32-byte BLAKE2b, so this small implementation exists for that checksum
 * alone; bulk hashing (the prehash of signed files) stays with OpenSSL.
 */
#ifndef AL_SIGN_BLAKE2B_INT_H
#define AL_SIGN_BLAKE2B_INT_H

#include <stddef.h>
#include <stdint.h>

#define AL_BLAKE2B_OUT_MAX 64

/* Writes BLAKE2b(in) of outlen bytes (1..64) to out; does nothing when outlen
 * is out of range. Never fails otherwise. */
void al_blake2b(uint8_t *out, size_t outlen, const void *in, size_t inlen);

#endif
