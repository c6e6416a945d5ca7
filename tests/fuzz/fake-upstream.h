/* SPDX-License-Identifier: MIT */
/*
 * A fake Upstream for the harnesses that run the daemon's services in-process: the contract of
 * daemon/upstream.h (start, cancel, resume, completion from a fresh libevent callback, stream
 * callbacks for request and response bodies) with no network. Each request is answered, in
 * the order requests start, with the next answer of a script the harness sets from its input;
 * once the script is used up every request fails at once as a refused connection does.
 *
 * Linked before the daemon's objects, its definitions of the upstream.h functions take the
 * place of daemon/upstream*.c (which are then never linked in; a duplicate definition would
 * fail the link, not go unnoticed). upstream_method_to_string() and upstream_check_url() stay
 * the daemon's (daemon/upstream-url.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "upstream.h"

#define FAKE_HEADERS_MAX 8

/* One scripted answer. The strings are borrowed for as long as the script is set. */
typedef struct FakeAnswer {
        int error;                 /* 0: an HTTP answer; else the transport error (-errno) */
        long status;
        struct {
                const char *name;  /* NUL-terminated */
                const char *value;
        } headers[FAKE_HEADERS_MAX];
        size_t n_headers;
        const char *body;          /* not NUL-terminated; the fake copies it */
        size_t body_len;
} FakeAnswer;

/* Sets the answers for the requests that start from now on (borrowed until replaced). */
void fake_upstream_set_script(Upstream *u, const FakeAnswer *answers, size_t n);

/* Requests answered so far (all scripts), and requests started and not yet completed. */
unsigned long fake_upstream_answered(const Upstream *u);
unsigned fake_upstream_pending(const Upstream *u);
