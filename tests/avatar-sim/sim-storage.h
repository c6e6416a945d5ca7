/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim storage: an S3-compatible endpoint under /storage (path-style) whose objects
 * are plain files DIR/<bucket>/<key>, so tests can seed and inspect them. Multipart parts
 * live in DIR/.multipart/<upload id>/, temporary files in DIR/.tmp/. Every request must be
 * signed (sim-sigv4.c) with credentials that /access issued; a user reaches only the bucket
 * named after its UUID.
 *
 * Keys must be 1..1024 bytes of non-empty '/'-separated segments other than "." and "..";
 * a key cannot be both an object and a prefix of another object ("a" and "a/b").
 */
#pragma once

#include <stdio.h>

#include "sim.h"

/* A streaming writer of one object: a temporary file renamed into place on commit. */
typedef struct StorageWriter {
        FILE *f;
        char *tmp_path;
        char *final_path;
} StorageWriter;

/* Creates the storage root (a temporary one without --storage-dir) and user buckets. */
int storage_init(Sim *sim);
/* Frees uploads and caches; removes a temporary storage root. */
void storage_done(Sim *sim);

/* The file of an object. Returns 0 (*ret owned), -EINVAL for a bad bucket or key, -ENOMEM. */
int storage_object_path(Sim *sim, const char *bucket, const char *key, char **ret);
/* Opens an object for reading. Returns an fd, -ENOENT, -EINVAL or -errno. */
int storage_open_object(Sim *sim, const char *bucket, const char *key);
/* Starts writing an object. Returns 0 or -errno. */
int storage_writer_open(Sim *sim, const char *bucket, const char *key, StorageWriter *w);
/* Finishes writing: flushes and renames into place. Returns 0 or -errno. Frees w's contents. */
int storage_writer_commit(StorageWriter *w);
/* Abandons a writer and its temporary file. */
void storage_writer_abort(StorageWriter *w);
/* Removes every object under a directory-like prefix ("results/<set>/<job>") of a bucket. */
int storage_remove_prefix(Sim *sim, const char *bucket, const char *prefix);

/* Routes a /storage request: sets r->route ("PUT /storage/{bucket}/{key}") and r->handler. */
void storage_route(Req *r);
/* The multipart uploads in progress, [{id, bucket, key, parts}], for /_sim/uploads. */
json_object *storage_uploads_json(Sim *sim);
