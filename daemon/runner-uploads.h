/* SPDX-License-Identifier: MIT */
/*
 * The write-ahead of a runner's multipart uploads. A table above
 * runners.multipart_threshold_bytes goes up as a multipart upload, which lives upstream
 * until it is completed or aborted: a daemon killed in the middle would leave it there for
 * good. So the runner records each such upload in its file (`uploads`, saved off the event
 * loop, the upload waiting for the save): its intent before CreateMultipartUpload is sent
 * ({table, url}: the object, whose key holds 128 random bits, so no other upload has it),
 * then its id as soon as the answer names it, before the first part. The record goes with
 * the table's commit once the upload completed, or once an abort is confirmed.
 *
 * The records of an upload the daemon did not see end are aborted (runners_abort_uploads()):
 * at start for every runner, and when runner.add_table is called again for the table. With
 * the id: AbortMultipartUpload; for an intent without one: every upload in progress of
 * exactly that key (storage_abort_uploads()); the credentials come from GET /access. The
 * record then goes (a save off the event loop); a failure leaves it for the next time,
 * logged.
 */
#pragma once

#include <json-c/json.h>

#include "api.h"
#include "runner.h"
#include "storage.h"

/* Records the multipart upload of `table` to `url` (s3://bucket/key) in the runner: its
 * intent (upload_id NULL), or its id (the intent's record updated), and saves the runner off
 * the event loop (runner_save_async(): cb with the outcome, may be NULL). Returns 0 (cb will
 * run), or -ENOMEM (cb will not; nothing recorded). */
int runner_upload_record(Runner *r, const char *table, const char *url, const char *upload_id,
                         runner_saved_cb cb, void *userdata);

/* Drops the record of `url` from memory (the runner's next save writes it). */
void runner_upload_forget(Runner *r, const char *url);

/* Whether the runner records uploads. */
bool runner_has_uploads(const Runner *r);

/* Aborts what the upload records name, without waiting (nothing blocks the loop): those of
 * runner `only` (NULL: of every runner), of `table` (NULL: every table), of `url` (NULL:
 * every object). A record whose abort is in flight already is not asked again. Api and
 * Storage are borrowed and must outlive the registry's end (runners_free() ends the aborts
 * first); api_url names the API in the envelope GET /access is asked for. Returns the
 * number of aborts started, or -ENOMEM. */
int runners_abort_uploads(Runners *rs, Api *api, Storage *storage, const char *api_url, Runner *only,
                          const char *table, const char *url);
