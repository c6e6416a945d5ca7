/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4 for the Authorization header ("AWS4-HMAC-SHA256 Credential=…,
 * SignedHeaders=…, Signature=…"), computed over exactly the header lines the caller hands in:
 * the caller passes the headers it puts on the wire and nothing else.
 */
#pragma once

#include <stddef.h>
#include <time.h>

/* "YYYYMMDDTHHMMSSZ" plus NUL */
#define SIGV4_DATE_SIZE 17
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

typedef struct SigV4Request {
        const char *method;              /* "GET", "PUT", … */
        const char *path;                /* as sent (percent-encoded or not); "" means "/" */
        const char *query;               /* as sent, without '?'; NULL or "" for none */
        const char *const *headers;      /* "Name: value" lines, all of them signed */
        size_t n_headers;
        const char *payload_hash;        /* lower-case hex SHA-256 or UNSIGNED-PAYLOAD */
        const char *amz_date;            /* the x-amz-date value, "YYYYMMDDTHHMMSSZ" */
        const char *region;              /* e.g. "us-east-1" */
        const char *service;             /* e.g. "s3" */
        const char *access_key_id;
        const char *secret_access_key;
} SigV4Request;

/* Formats t (UTC) as an x-amz-date value. */
void sigv4_format_date(time_t t, char out[static SIGV4_DATE_SIZE]);

/* Computes the Authorization header value (without "Authorization: "). -EINVAL when the
 * request cannot be signed as given: a header line without a name or colon, no "host" or
 * "x-amz-date" header among the lines, an x-amz-date that differs from amz_date, for the
 * "s3" service no x-amz-content-sha256 equal to payload_hash, a date that is not
 * "YYYYMMDDTHHMMSSZ", an empty key id, or a region, service or key id holding '/', ',', '='
 * or whitespace. -ENOMEM. ret_canonical (may be NULL) receives the canonical request, for
 * tests and debugging. */
int sigv4_authorization(const SigV4Request *rq, char **ret_authorization, char **ret_canonical);

/* SigV4 URI encoding of len bytes: RFC 3986 unreserved characters bare, everything else
 * %XX (upper-case hex); '/' too unless keep_slash. Returns malloc'd or NULL on OOM. */
char *sigv4_uri_encode(const char *s, size_t len, int keep_slash);
