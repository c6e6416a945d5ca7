/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 as FIPS 180-4 §6.2 describes it, HMAC as RFC 2104 does. Small and portable rather
 * than fast: it hashes canonical requests and keys of a few hundred bytes per S3 request.
 */
#include <string.h>

#include "macro.h"
#include "sha256.h"

static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, unsigned n) {
        return (x >> n) | (x << (32 - n));
}

/* Processes one 64-byte block (§6.2.2). */
static void sha256_block(Sha256 *c, const uint8_t *p) {
        uint32_t w[64], a, b, cc, d, e, f, g, h;

        for (unsigned i = 0; i < 16; i++)
                w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 |
                       (uint32_t) p[4 * i + 2] << 8 | (uint32_t) p[4 * i + 3];
        for (unsigned i = 16; i < 64; i++) {
                uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);

                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }

        a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
        e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
        for (unsigned i = 0; i < 64; i++) {
                uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                              K[i] + w[i];
                uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) +
                              ((a & b) ^ (a & cc) ^ (b & cc));

                h = g, g = f, f = e, e = d + t1;
                d = cc, cc = b, b = a, a = t1 + t2;
        }
        c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
        c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
        explicit_bzero_safe(w, sizeof(w));
}

void sha256_init(Sha256 *c) {
        *c = (Sha256) {
                .h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                       0x1f83d9ab, 0x5be0cd19 },
        };
}

void sha256_update(Sha256 *c, const void *data, size_t len) {
        const uint8_t *p = data;

        c->length += len;
        if (c->fill > 0) {
                size_t n = MIN(len, SHA256_BLOCK_SIZE - c->fill);

                memcpy(c->buf + c->fill, p, n);
                c->fill += n;
                p += n;
                len -= n;
                if (c->fill < SHA256_BLOCK_SIZE)
                        return;
                sha256_block(c, c->buf);
                c->fill = 0;
        }
        for (; len >= SHA256_BLOCK_SIZE; p += SHA256_BLOCK_SIZE, len -= SHA256_BLOCK_SIZE)
                sha256_block(c, p);
        if (len > 0) {
                memcpy(c->buf, p, len);
                c->fill = len;
        }
}

void sha256_final(Sha256 *c, uint8_t out[static SHA256_DIGEST_SIZE]) {
        uint64_t bits = c->length * 8;
        uint8_t pad[SHA256_BLOCK_SIZE + 8] = { 0x80 };
        size_t n;

        /* §5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, then the length in bits. */
        n = c->fill < 56 ? 56 - c->fill : 120 - c->fill;
        for (unsigned i = 0; i < 8; i++)
                pad[n + i] = (uint8_t) (bits >> (56 - 8 * i));
        sha256_update(c, pad, n + 8);
        for (unsigned i = 0; i < 8; i++) {
                out[4 * i] = (uint8_t) (c->h[i] >> 24);
                out[4 * i + 1] = (uint8_t) (c->h[i] >> 16);
                out[4 * i + 2] = (uint8_t) (c->h[i] >> 8);
                out[4 * i + 3] = (uint8_t) c->h[i];
        }
        explicit_bzero_safe(c, sizeof(*c));
}

void sha256(const void *data, size_t len, uint8_t out[static SHA256_DIGEST_SIZE]) {
        Sha256 c;

        sha256_init(&c);
        sha256_update(&c, data, len);
        sha256_final(&c, out);
}

void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                 uint8_t out[static SHA256_DIGEST_SIZE]) {
        uint8_t k[SHA256_BLOCK_SIZE] = {}, pad[SHA256_BLOCK_SIZE], inner[SHA256_DIGEST_SIZE];
        Sha256 c;

        /* A key longer than a block is hashed first (RFC 2104 §2). */
        if (key_len > SHA256_BLOCK_SIZE)
                sha256(key, key_len, k);
        else if (key_len > 0)
                memcpy(k, key, key_len);

        for (unsigned i = 0; i < SHA256_BLOCK_SIZE; i++)
                pad[i] = k[i] ^ 0x36;
        sha256_init(&c);
        sha256_update(&c, pad, sizeof(pad));
        sha256_update(&c, msg, msg_len);
        sha256_final(&c, inner);

        for (unsigned i = 0; i < SHA256_BLOCK_SIZE; i++)
                pad[i] = k[i] ^ 0x5c;
        sha256_init(&c);
        sha256_update(&c, pad, sizeof(pad));
        sha256_update(&c, inner, sizeof(inner));
        sha256_final(&c, out);

        explicit_bzero_safe(k, sizeof(k));
        explicit_bzero_safe(pad, sizeof(pad));
        explicit_bzero_safe(inner, sizeof(inner));
}

void sha256_hex(const uint8_t digest[static SHA256_DIGEST_SIZE], char out[static SHA256_HEX_SIZE]) {
        static const char hex[] = "0123456789abcdef";

        for (unsigned i = 0; i < SHA256_DIGEST_SIZE; i++) {
                out[2 * i] = hex[digest[i] >> 4];
                out[2 * i + 1] = hex[digest[i] & 15];
        }
        out[SHA256_HEX_SIZE - 1] = '\0';
}
