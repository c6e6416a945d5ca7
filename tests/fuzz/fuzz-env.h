/* SPDX-License-Identifier: MIT */
/*
 * The daemon in a box, for the harnesses that drive requests into the method handlers
 * (fuzz-dispatch.c, fuzz-client.c): the daemon's own services — configuration, API client,
 * cache, poller, storage client, runners, dispatcher — on one event loop, over the fake
 * Upstream (fake-upstream.h) that answers from a script taken from the input. Nothing goes to
 * the network, and the state directory is a private temporary one.
 *
 * Time: the monotonic clock (clock_gettime for CLOCK_MONOTONIC and its variants, which the
 * daemon and libevent read) is the harness's: it stands still while an input runs, so a pass
 * of the loop either has something due or nothing, and fuzz_env_advance() moves it to the
 * next timer (a poll, a backoff, a deadline) as if that time had passed. The wall clock, which
 * libFuzzer's own timing uses, is untouched.
 *
 * Each input starts from the same state: three runners loaded from their files —
 *   FUZZ_RUNNER_CONFIGURING  owner 1000, two linked tables, one uploaded, no run yet;
 *   FUZZ_RUNNER_RUNNING      owner 1000, a set with a finished standard job, a failed
 *                            privacy_metrics job and a report job never created;
 *   FUZZ_RUNNER_OTHER        owner 1001, a finished run (for the ownership checks);
 * and the credential FUZZ_API_KEY (unless the input says nokey). The roles: uid 0 and 1 admin, 1000 and 1001 operate, 2000
 * read, any other uid none.
 *
 * Input: text. The part before the first line that starts with "%%% " is the harness's own
 * (requests); each "%%% " line then starts a section that lasts to the next one:
 *   %%% 200 [Name:value ...]   an answer of the upstream script: the status, headers (no
 *                              spaces in them), and the section's text as the body; a
 *                              header Delay:S makes the answer come S seconds later;
 *   %%% !refused | !reset | !timeout | !toolarge | !other
 *                              a transport failure of the script;
 *   %%% file                   the content of descriptor 0 (a file), then of 1 (a pipe) and
 *                              4 (a socket) for a second one; a plain CSV table otherwise;
 *   %%% compat                 (anywhere) run this input with upstream.verify_compatibility
 *                              on, so every API request first needs a GET /check_client;
 *   %%% nokey                  (anywhere) run it without a credential (for
 *                              manager.authenticate and the legacy login session).
 *
 * The descriptors every request line carries (see fuzz_env_fds()): 0 a file, 1 a pipe, 2
 * /dev/null, 3 a directory, 4 a socket, 5 an empty file (a download target), 6 a 6 MiB file
 * (a multipart upload), 7 a procfs file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core.h"
#include "dispatch.h"
#include "fake-upstream.h"

#define FUZZ_API_KEY "fuzz-api-key-5ec7e7-do-not-show"
#define FUZZ_RUNNER_CONFIGURING "11111111-1111-4111-8111-111111111111"
#define FUZZ_RUNNER_RUNNING "22222222-2222-4222-8222-222222222222"
#define FUZZ_RUNNER_OTHER "33333333-3333-4333-8333-333333333333"
/* Replaced in a request by the id of the runner created last in this input. */
#define FUZZ_RUNNER_PLACEHOLDER "$RUNNER"

#define FUZZ_FDS 8

/* Sets up what lives for the whole run (the loop, the configurations, the dispatcher). */
void fuzz_env_init(void);

/* Starts an input: parses its sections, builds the services and loads the runners. Returns
 * the harness's part of the input (borrowed until fuzz_env_end()). */
const char *fuzz_env_begin(const char *data, size_t size, size_t *ret_len);

/* Whether the input under way runs with the credential FUZZ_API_KEY (not "nokey"): without
 * it the daemon cannot know the key, and a server echoing its text leaks nothing. */
bool fuzz_env_has_key(void);

/* The services and the dispatcher of the input under way. */
Core *fuzz_env_core(void);
Dispatch *fuzz_env_dispatch(void);
struct event_base *fuzz_env_base(void);

/* The descriptors for a request (FUZZ_FDS of them). */
const int *fuzz_env_fds(void);

/* A request line with the placeholder replaced. Malloc'd; *ret_len its length. */
char *fuzz_env_substitute(const char *line, size_t len, size_t *ret_len);

/* Runs the loop until nothing is due at the present time. */
void fuzz_env_settle(void);

/* Moves the clock to the next timer and runs what is then due. Returns false when no timer
 * is pending (advancing cannot change anything). */
bool fuzz_env_advance(void);

/* Ends an input: frees the services (every call must have finished) and the descriptors. */
void fuzz_env_end(void);
