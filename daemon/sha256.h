/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for SigV4 signing: the daemon has no
 * crypto library, and these two are all it needs. Not constant-time beyond what the
 * algorithm is by itself; no secret-dependent branches.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64
#define SHA256_HEX_SIZE (SHA256_DIGEST_SIZE * 2 + 1)

typedef struct Sha256 {
        uint32_t h[8];
        uint64_t length;                    /* bytes hashed so far */
        uint8_t buf[SHA256_BLOCK_SIZE];
        size_t fill;                        /* bytes waiting in buf */
} Sha256;

void sha256_init(Sha256 *c);
void sha256_update(Sha256 *c, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void sha256_final(Sha256 *c, uint8_t out[static SHA256_DIGEST_SIZE]);

/* One-shot digest. */
void sha256(const void *data, size_t len, uint8_t out[static SHA256_DIGEST_SIZE]);
/* HMAC-SHA256 of msg under key (any length). */
void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                 uint8_t out[static SHA256_DIGEST_SIZE]);
/* Lower-case hex of a digest, NUL-terminated. */
void sha256_hex(const uint8_t digest[static SHA256_DIGEST_SIZE], char out[static SHA256_HEX_SIZE]);
