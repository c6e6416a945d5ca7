/* SPDX-License-Identifier: MIT */
/*
 * Echo faults: a server that sends the credential it was given back in its answer, in one of
 * the shapes a real one might (an error message quoting the request, a field holding it, a
 * URL with it in the query, a header dump in base64). The daemon must keep it from its
 * callers, its log and its state (tests/security/test-key-echo.sh).
 *
 * The credential echoed is the request's own: the key of "Authorization: api-key-v1 KEY", the
 * token of "Authorization: Bearer TOKEN", else the string "no-credential".
 *
 *   error shapes (the answer is an error, status 400 unless the rule gives one):
 *     message   {"message": "avatar-sim echoes the credential: KEY"}
 *     escaped   the same, every character of KEY written \u00XX
 *     percent   the same, KEY percent-encoded byte by byte (%XX)
 *     base64    the same, with base64 of the whole Authorization value ("api-key-v1 KEY")
 *     text      text/plain "avatar-sim echoes the credential: KEY"
 *   2xx shapes (the normal answer, every JSON object of it given a member "echo"):
 *     ok-raw      "echo": "KEY"
 *     ok-escaped  "echo": "\u00XX..."
 *     ok-percent  "echo": "https://echo.invalid/?key=%XX..."
 *     ok-base64   "echo": URL-safe base64 of KEY, without padding
 */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include <event2/buffer.h>

typedef struct Req Req;

typedef enum EchoShape {
        ECHO_NONE,
        ECHO_MESSAGE,
        ECHO_ESCAPED,
        ECHO_PERCENT,
        ECHO_BASE64,
        ECHO_TEXT,
        ECHO_OK_RAW,
        ECHO_OK_ESCAPED,
        ECHO_OK_PERCENT,
        ECHO_OK_BASE64,
        _ECHO_SHAPE_MAX,
        _ECHO_SHAPE_INVALID = -EINVAL,
} EchoShape;

/* The name of a shape, and back (_ECHO_SHAPE_INVALID for an unknown name). */
const char *echo_shape_to_string(EchoShape s);
EchoShape echo_shape_from_string(const char *s);

/* Whether the shape answers with an error (else it changes a 2xx answer). */
static inline bool echo_shape_is_error(EchoShape s) {
        return s >= ECHO_MESSAGE && s <= ECHO_TEXT;
}

/* Answers r with the error of an error shape and `status`. */
void echo_reply_error(Req *r, EchoShape s, int status);

/* Gives every JSON object of a 2xx answer the member "echo" (a 2xx shape). Returns the new
 * body (the old one is freed), or the old one when it cannot. */
struct evbuffer *echo_body(Req *r, EchoShape s, struct evbuffer *body);
