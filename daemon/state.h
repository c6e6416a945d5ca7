/* SPDX-License-Identifier: MIT */
/*
 * The state directory: small JSON files written atomically (temporary file, fsync, rename,
 * fsync of the directory) so a crash leaves either the old or the new version, never a torn
 * one. A file that does not parse is moved aside as NAME.damaged-<unix time> and reported,
 * never silently dropped.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

typedef struct JsonText JsonText;

struct event_base;

/* Creates `dir` (and its parent) with mode 0700 when missing. Returns 0 or -errno. */
int state_mkdir(const char *dir);

/* Writes `o` as dir/name atomically and durably with mode 0600: a temporary file .NAME.XXXXXX
 * written and fsync'd, renamed over dir/name, then the directory fsync'd. Returns 0 only when
 * all of it succeeded, else -errno (the temporary file removed). *ret_replaced (may be NULL)
 * tells whether dir/name was replaced (the rename happened: a failure after it, of the
 * directory's fsync, leaves the new content in place but perhaps not durable). */
int state_write_json_ext(const char *dir, const char *name, json_object *o, bool *ret_replaced);
int state_write_json(const char *dir, const char *name, json_object *o);

/* Whether a failed write of the state directory (a negative errno) may succeed when simply
 * tried again later: a full disk or quota, an I/O error, a lack of memory or descriptors. Not
 * a read-only file system, a missing directory or a permission (only the operator helps). */
bool state_error_retryable(int error);

/* Removes the temporary files (.NAME.XXXXXX, as state_write_json() makes them) that a daemon
 * stopped in the middle of a write left in dir. For the start, before anything writes there.
 * Returns how many were removed, or -errno for the directory itself (a missing one: 0). */
int state_remove_temp_files(const char *dir);

/* ---- writing off the event loop ----
 * A StateWriter writes state files with state_write_json_ext()'s steps on a thread of its
 * own, so that the fsyncs of a save never stall the event loop (and the other clients). The
 * writes happen one at a time, in the order they were asked for; a write of a file not begun
 * yet is replaced by a newer one of the same file (its callbacks are kept: each hears of the
 * write that carried its content). Callbacks run on the event loop. */

typedef struct StateWriter StateWriter;

/* error: 0 or -errno of the write; replaced: whether the file was replaced (see
 * state_write_json_ext()). -ECANCELED: the write was dropped (state_writer_forget()). */
typedef void (*state_written_cb)(int error, bool replaced, void *userdata);

/* Starts the writer's thread; its completions reach `base`. Returns 0 or -errno. */
int state_writer_new(struct event_base *base, StateWriter **ret);

/* Writes what is still queued, runs the callbacks that are due, stops the thread. */
StateWriter *state_writer_free(StateWriter *w);

/* Queues text (taken, also on failure) to be written as dir/name; cb (may be NULL) runs on
 * the event loop once it is written or failed, never before this returns. Returns 0 or
 * -ENOMEM. */
int state_writer_submit(StateWriter *w, const char *dir, const char *name, char *text, state_written_cb cb,
                        void *userdata);

/* Writes text (borrowed) as dir/name now, after every write queued before it, waiting for it
 * (for the few writes that must be on disk before the caller goes on). w may be NULL: the
 * write is made here. Returns as state_write_json_ext(). */
int state_writer_write_now(StateWriter *w, const char *dir, const char *name, const char *text,
                           bool *ret_replaced);

/* Drops the queued writes of dir/name (their callbacks get -ECANCELED) and waits for one in
 * progress to end: for a file about to be removed. */
void state_writer_forget(StateWriter *w, const char *dir, const char *name);

/* {"written": n, "failed": n, "queued": n, "slowest_ms": n}. New reference. */
json_object *state_writer_stats_json(StateWriter *w);
/* Its text, byte for byte, appended to t (daemon.status). */
void state_writer_stats_text(StateWriter *w, JsonText *t);

/* The text state_write_json() writes for o (malloc'd), or NULL on OOM. */
char *state_json_text(json_object *o);

/* Removes dir/name; a missing file is fine. Returns 0 or -errno. */
int state_remove(const char *dir, const char *name);

/* Reads a whole regular file from a descriptor (from offset 0) into a malloc'd,
 * NUL-terminated buffer. Returns 0, -EBADFD when it is not a regular file, -EFBIG beyond
 * max bytes, or -errno. */
int state_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* Called for each NAME.json of a directory with its parsed content (borrowed). Returning a
 * negative errno marks the file damaged (it is moved aside). */
typedef int (*state_load_cb)(const char *name, json_object *o, void *userdata);

/* Loads every *.json file of dir in name order. Files that cannot be read or parsed, or that
 * the callback rejects, are moved aside; their new names are appended to `damaged` (an array,
 * may be NULL). A missing directory loads nothing. Returns the number of files loaded or
 * -errno for the directory itself. */
int state_load_dir(const char *dir, state_load_cb cb, void *userdata, json_object *damaged);
