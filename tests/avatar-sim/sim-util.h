/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim helpers: time and identifiers, hex and percent coding, query strings, file
 * system helpers and small json-c conveniences. Nothing here knows about HTTP or the model.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "jsonrpc.h"
#include "macro.h"

#define UUID_STR_LEN 37
#define ISO8601_LEN 40
#define SHA256_LEN 32
#define SHA256_HEX_LEN 65

/* One decoded query parameter; both strings are owned by the array. */
typedef struct QueryParam {
        char *name;
        char *value;
} QueryParam;

/* Wall-clock time in microseconds since the epoch. */
int64_t now_usec(void);
/* Monotonic time in microseconds. */
uint64_t mono_usec(void);
/* Writes "2026-05-01T09:12:03.120000+00:00" for usec into buf. */
void format_iso8601(int64_t usec, char buf[static ISO8601_LEN]);
/* Writes an HTTP date ("Fri, 01 May 2026 09:12:03 GMT") for a time_t into buf (>= 32 bytes). */
void format_http_date(int64_t sec, char *buf, size_t size);

/* Fills p with n random bytes from getrandom(). Returns 0 or -errno. */
int random_bytes(void *p, size_t n);
/* Writes a random UUID4 string into out. */
void uuid4(char out[static UUID_STR_LEN]);
/* Writes a UUID-shaped string derived from SHA-256 of seed (stable across runs). */
void uuid_from_seed(const char *seed, char out[static UUID_STR_LEN]);
/* True when s is a UUID in canonical 8-4-4-4-12 hex form (either case). */
bool uuid_is_valid(const char *s);
/* Writes 2n lowercase hex digits and a NUL. */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* Writes n random characters from alphabet into out and a NUL. Returns 0 or -errno. */
int random_string(char *out, size_t n, const char *alphabet);

/* SHA-256 of a buffer. */
void sha256_buf(const void *p, size_t n, uint8_t out[static SHA256_LEN]);
/* Lowercase hex SHA-256 of a buffer. */
void sha256_hex(const void *p, size_t n, char out[static SHA256_HEX_LEN]);

/* The digest (EVP_sha256(), EVP_md5()) of an evbuffer's contents, without draining it.
 * Returns 0 or a negative errno. */
int evbuffer_digest(struct evbuffer *b, const EVP_MD *type, uint8_t *d, unsigned *len);

/* Lowercase hex SHA-256 of an evbuffer's contents, without draining it (zeros on failure). */
void evbuffer_sha256_hex(struct evbuffer *b, char out[static SHA256_HEX_LEN]);

/*
 * Percent-decodes n bytes of s into a new NUL-terminated string; '+' becomes a space when
 * plus_is_space. Returns NULL on a malformed escape, an embedded NUL or OOM.
 */
char *url_decode(const char *s, size_t n, bool plus_is_space);
/*
 * Percent-encodes s the way SigV4 and S3 do: unreserved characters (A-Z a-z 0-9 - . _ ~) stay,
 * '/' stays when keep_slash, everything else becomes %XX with uppercase hex. Returns a new
 * string or NULL on OOM.
 */
char *url_encode(const char *s, bool keep_slash);

/* Parses a raw query string ("a=1&b&c=%20") into decoded pairs. Returns 0 or -errno. */
int query_parse(const char *q, bool plus_is_space, QueryParam **ret, size_t *ret_n);
/* Frees an array from query_parse(). */
void query_free(QueryParam *p, size_t n);
/* Returns the value of the first parameter called name, or NULL. */
const char *query_get(const QueryParam *p, size_t n, const char *name);
/* True when a parameter called name is present (with or without a value). */
bool query_has(const QueryParam *p, size_t n, const char *name);

/* mkdir -p with mode 0700. Returns 0 or -errno. */
int mkdir_p(const char *path);
/* Removes a directory tree without following symlinks. Returns 0 or -errno. */
int rm_rf(const char *path);
/* Writes len bytes to fd, retrying on short writes. Returns 0 or -errno. */
int write_all(int fd, const void *p, size_t len);
/* Writes data to path atomically (temp file in the same directory, then rename). */
int write_file_atomic(const char *path, const void *data, size_t len);

/* Returns a json string, or json null when s is NULL. */
json_object *json_string_or_null(const char *s);
/* Returns an ISO-8601 string for usec, or json null when usec is 0. */
json_object *json_time_or_null(int64_t usec);
/* Serializes obj in the wire form (plain, no slash escaping). Borrowed result, valid with obj. */
const char *json_wire(json_object *obj, size_t *ret_len);

/* Moves the contents of b into a new NUL-terminated string and frees b. NULL on OOM. */
char *evbuffer_take_string(struct evbuffer *b);
/* Appends s escaped for XML text and attribute values. */
void xml_escape(struct evbuffer *b, const char *s);
/* 64-bit FNV-1a of a string, continuing from h (start with FNV1A_INIT). */
#define FNV1A_INIT UINT64_C(1469598103934665603)
uint64_t fnv1a(uint64_t h, const char *s);

/* Returns strdup(s) for a non-NULL s, NULL otherwise. */
char *strdup_or_null(const char *s);
/* Returns a new string made with printf-style formatting, or NULL on OOM. */
char *strprintf(const char *fmt, ...) _printf_(1, 2);
/* The Content-Type of an object, from its key's extension. */
const char *content_type_of(const char *key);
/* Parses a Range header "bytes=a-b", "bytes=a-", "bytes=-n" against a size. 0: range set;
 * 1: no usable range (serve it all); -ERANGE: not satisfiable. */
int parse_range(const char *h, off_t size, off_t *ret_start, off_t *ret_len);
