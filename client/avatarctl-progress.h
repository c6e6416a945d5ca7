/* SPDX-License-Identifier: MIT */
/*
 * avatarctl progress display: what a runner's upload, jobs and downloads are doing while a
 * call is in flight, fed by the daemon's runner.progress notifications.
 *
 * Glossary:
 *   terminal mode  stderr is a terminal: the upload (bytes, percentage, rate) and a download
 *                  are one line redrawn in place; the jobs are a block of lines, one per job
 *                  ("standard         pending   40%"), redrawn in place as they change.
 *   plain mode     stderr is a file or a pipe: one line per event ("upload 1048576/10485760
 *                  bytes", "job standard pending 0.4", "downloaded shuffled -> DIR/x.csv
 *                  (1234 bytes)"), an upload line at most once a second.
 *   off            nothing is printed (-q).
 *   live region    the line or block that the next update redraws. Anything else printed on
 *                  stderr must first end it (progress_break(); avatarctl's message hook does
 *                  it for errors and warnings), so that it is not drawn over.
 *
 * Everything the daemon sends is untrusted text: names are sanitized before they reach the
 * terminal.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "avatarctl.h"

typedef enum ProgressMode {
        PROGRESS_OFF,
        PROGRESS_PLAIN,
        PROGRESS_TERMINAL,
        _PROGRESS_MODE_MAX,
        _PROGRESS_MODE_INVALID = -EINVAL,
} ProgressMode;

typedef struct Progress Progress;

/* The mode for a command: off with -q, terminal when stderr is a terminal (and TERM is not
 * "dumb"), plain otherwise, whatever the output format. */
ProgressMode progress_mode_for(const Ctl *ctl);

/* Creates a display writing to f (borrowed; stderr in avatarctl) in `mode`. In terminal mode
 * it registers itself as avatarctl's message hook (ctl_set_message_hook()) until freed.
 * Returns 0 or -ENOMEM. */
int progress_new(FILE *f, ProgressMode mode, Progress **ret);

/* Ends the live region, unregisters the hook and frees. NULL-safe; returns NULL. */
Progress *progress_free(Progress *p);

/* Only notifications about this runner are shown (NULL: any). The id is copied. Returns 0
 * or -ENOMEM. Like every function below, does nothing for a NULL display (progress off). */
int progress_set_runner(Progress *p, const char *runner_id);

/* An upload of `file` (a display name, copied) begins; `total` is its size when known, else
 * 0. Starts the rate clock. */
void progress_upload_begin(Progress *p, const char *file, uint64_t total);

/* The daemon stored `bytes` of `total` (0: unknown). */
void progress_upload(Progress *p, uint64_t bytes, uint64_t total);

/* The upload finished with `bytes` stored: draws it complete and ends its line. */
void progress_upload_end(Progress *p, uint64_t bytes);

/* Jobs changed: `jobs` (borrowed) is an array of RunnerJob or Job objects (parameters_name,
 * status, progress, exception). Jobs not seen before are added below the others. */
void progress_jobs(Progress *p, json_object *jobs);

/* A download of result `result` into `path` (both copied) begins. */
void progress_download_begin(Progress *p, const char *result, const char *path);

/* The daemon wrote `bytes` of `total` (0: unknown) of the current download. */
void progress_download(Progress *p, uint64_t bytes, uint64_t total);

/* The current download finished: "downloaded RESULT -> PATH (N bytes)". */
void progress_download_end(Progress *p, uint64_t bytes);

/* Ends the live region: what is printed next starts on a line of its own, and the next
 * update draws below it. */
void progress_break(Progress *p);

/* avatar_client_notification_cb: feeds runner.progress notifications (events "upload",
 * "download" and "jobs") of the runner set with progress_set_runner() to the display.
 * userdata is the Progress. */
void progress_on_notification(const char *method, json_object *params, void *userdata);

/* Writes a byte count for people ("512 B", "1.5 KiB", "10.0 MiB") into buf. */
void progress_format_bytes(uint64_t bytes, char *buf, size_t size);
