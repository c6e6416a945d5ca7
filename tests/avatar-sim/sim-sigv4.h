/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4 verification for the simulated S3 endpoint, header form only
 * ("Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."),
 * canonicalised as S3 does: the path and the query are decoded and re-encoded with only the
 * unreserved characters left bare, query parameters sorted, signed headers sorted, trimmed
 * and joined. Pure code: no event loop, no logging.
 */
#pragma once

#include <event2/keyvalq_struct.h>

#include "sim-util.h"

/* The parts of a request that the signature covers. */
typedef struct SigV4Request {
        const char *method;
        const char *raw_path;  /* as sent, percent-encoded */
        const char *raw_query; /* as sent, NULL when absent */
        const struct evkeyvalq *headers;
        const char *payload_sha256; /* lowercase hex SHA-256 of the body as received */
        int64_t now_sec;
} SigV4Request;

/* Why a request was refused: an S3 error code with its HTTP status. Strings owned. */
typedef struct SigV4Error {
        int status;
        const char *code;
        char *message;
        char *canonical_request; /* for SignatureDoesNotMatch */
        char *string_to_sign;
} SigV4Error;

/* Looks up the secret of an access key id: 0 with *ret_secret (borrowed) or -ENOKEY. */
typedef int (*SigV4SecretLookup)(void *userdata, const char *key_id, const char **ret_secret);

#define SIGV4_MAX_SKEW_SEC (15 * 60)

/*
 * Verifies the signature of rq. Returns 0 with *ret_key_id (owned) set, or a negative errno
 * with *err filled in (free it with sigv4_error_done()).
 */
int sigv4_verify(const SigV4Request *rq, SigV4SecretLookup lookup, void *userdata,
                 char **ret_key_id, SigV4Error *err);
/* Frees the strings of an error. */
void sigv4_error_done(SigV4Error *err);
