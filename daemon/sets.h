/* SPDX-License-Identifier: MIT */
/*
 * Who owns a set. The upstream account is shared by every local user of the daemon, so the
 * daemon keeps, for each set (an upstream resource set, named by a UUID) that it created or
 * that a local user adopted, the uid it belongs to:
 *
 *   - a set created through the daemon (runner.run, runner.advise_parameters) belongs to the
 *     owner of the runner that created it;
 *   - a set the daemon did not create (another client of the account made it) has no record
 *     until an operate user loads it into a runner (manager.create_runner_from_id/_name):
 *     that user adopts it and owns it from then on;
 *   - a record that cannot be read back (a damaged file) leaves the set to admins only.
 *
 * Only the owner and admins may load a set into a runner or delete its jobs; a set without a
 * record is open to operate users (see README.md "Security notes" and daemon/SECURITY.md).
 *
 * Each record is STATE_DIRECTORY/sets/<set>.json, written atomically (state.h), so it
 * outlives restarts and its runner (close, delete): the set stays upstream, and so does its
 * owner here. Records are never removed.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct JsonText JsonText;

typedef struct SetOwners SetOwners;

/* The owner of a set whose record was damaged: nobody (admins only). */
#define SET_OWNER_UNKNOWN ((uid_t) -1)
/* Longest set name recorded (a UUID has 36 characters). */
#define SET_NAME_MAX 64u

typedef enum SetAccess {
        SET_UNOWNED,  /* no record: not created through the daemon, nobody adopted it */
        SET_OWN,      /* the caller's */
        SET_ADMIN,    /* another user's, and the caller is an admin */
        SET_REFUSED,  /* another user's */
} SetAccess;

/* Loads the records of state_directory/sets (created 0700 when missing). Returns 0 or
 * -errno (the directory cannot be made or read). */
int set_owners_new(const char *state_directory, SetOwners **ret);
SetOwners *set_owners_free(SetOwners *s);

/* Records that set_name belongs to owner (`how`: "created", "adopted", "restored"; runner_id
 * and display_name for the record, may be NULL). A set already recorded keeps its owner:
 * 0 when it is owner's, -EEXIST when it is another uid's. The record holds in memory at once;
 * -EINVAL (a name that is no UUID-like word: kept in memory only) or the write's -errno
 * says it is not on disk. */
int set_owners_record(SetOwners *s, const char *set_name, uid_t owner, const char *how, const char *runner_id,
                      const char *display_name);

/* Saves again the records whose save failed (set_owners_record() keeps them in memory, and
 * returns the error). Returns how many are still unsaved. */
size_t set_owners_save_pending(SetOwners *s);

/* How many records wait to be saved again. */
size_t set_owners_unsaved(const SetOwners *s);

/* The recorded owner of a set: true with *ret_owner, or false when there is no record. */
bool set_owners_get(const SetOwners *s, const char *set_name, uid_t *ret_owner);

/* What uid (an admin or not) may do with set_name. */
SetAccess set_owners_check(const SetOwners *s, const char *set_name, uid_t uid, bool admin);

/* Whether some set belongs to a uid other than `uid` (when none does, no job of the account
 * can be another local user's). */
bool set_owners_others(const SetOwners *s, uid_t uid);

/* {"sets": n, "damaged_files": [...], "save_errors": n}. New reference. */
json_object *set_owners_stats_json(const SetOwners *s);
/* Its text, byte for byte, appended to t (daemon.status). */
void set_owners_stats_text(const SetOwners *s, JsonText *t);
