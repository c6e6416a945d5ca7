/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json-util.h"
#include "jsonc-helpers.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "sets.h"
#include "state.h"

#define SET_FILE_VERSION 1

struct SetOwners {
        char *dir;               /* STATE_DIRECTORY/sets */
        json_object *records;    /* lower-case set name → {"owner", ...} */
        json_object *damaged;    /* names of files moved aside */
        json_object *unsaved;    /* keys of the records whose save failed → true */
        uint64_t save_errors;
};

/* Whether a set name can name a file: 1..SET_NAME_MAX letters, digits and '-' (a UUID). */
static bool set_name_ok(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > SET_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) name[i]) && name[i] != '-')
                        return false;
        return true;
}

/* The key of a set: its name in lower case (a UUID is case-insensitive). Malloc'd. */
static char *set_key(const char *name) {
        char *k = strdup(name);

        for (char *p = k; p && *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return k;
}

/* A record in memory. Takes nothing; returns 0 or -ENOMEM. */
static int remember(SetOwners *s, const char *key, uid_t owner, json_object *rec) {
        json_object *o = rec ? json_object_get(rec) : json_object_new_object();

        if (!o)
                return -ENOMEM;
        if (!rec)
                json_object_object_add(o, "owner", json_object_new_int64(owner == SET_OWNER_UNKNOWN ? -1 : (int64_t) owner));
        json_object_object_add(s->records, key, o);
        return 0;
}

/* The owner a record names. */
static uid_t record_owner(json_object *rec) {
        int64_t v = json_object_get_int64(json_object_object_get(rec, "owner"));

        return v < 0 ? SET_OWNER_UNKNOWN : (uid_t) v;
}

/* Loader callback: one record. */
static int on_set_file(const char *name, json_object *o, void *userdata) {
        SetOwners *s = userdata;
        _cleanup_free_ char *key = NULL;
        const char *set = json_str(o, "set_name");
        json_object *v;

        if (!set_name_ok(set) || !json_object_object_get_ex(o, "owner", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 0 || json_object_get_int64(v) >= (int64_t) SET_OWNER_UNKNOWN) {
                log_error("Set file '%s' lacks set_name or owner.", name);
                return -EBADMSG;
        }
        key = set_key(set);
        if (!key)
                return -ENOMEM;
        /* the file is named after its set: another name is a file that was tampered with */
        if (!startswith(name, key) || !streq(name + strlen(key), ".json")) {
                log_error("Set file '%s' names set %s.", name, set);
                return -EBADMSG;
        }
        return remember(s, key, 0, o);
}

/* Loads the records. */
int set_owners_new(const char *state_directory, SetOwners **ret) {
        SetOwners *s = calloc(1, sizeof(SetOwners));
        int q;

        if (!s)
                return -ENOMEM;
        s->records = json_object_new_object();
        s->damaged = json_object_new_array();
        s->unsaved = json_object_new_object();
        if (!s->records || !s->damaged || !s->unsaved || asprintf(&s->dir, "%s/sets", state_directory) < 0) {
                s->dir = NULL;
                set_owners_free(s);
                return -ENOMEM;
        }
        q = state_mkdir(s->dir);
        if (q >= 0)
                (void) state_remove_temp_files(s->dir);
        if (q >= 0)
                q = state_load_dir(s->dir, on_set_file, s, s->damaged);
        if (q < 0) {
                log_error_errno(q, "Cannot read the set directory '%s': %m", s->dir);
                set_owners_free(s);
                return q;
        }
        /* a record that cannot be read leaves its set to admins: never to whoever asks first */
        for (size_t i = 0; i < json_array_len(s->damaged); i++) {
                const char *f = json_object_get_string(json_object_array_get_idx(s->damaged, i));
                const char *dot = f ? strstr(f, ".json.damaged-") : NULL;
                _cleanup_free_ char *name = dot ? strndup(f, (size_t) (dot - f)) : NULL,
                                    *set = name ? set_key(name) : NULL;

                if (set && set_name_ok(set) && !json_object_object_get_ex(s->records, set, NULL)) {
                        log_warning("Set %s: its owner is unknown (damaged record); only admins may load or delete it.",
                                    set);
                        (void) remember(s, set, SET_OWNER_UNKNOWN, NULL);
                }
        }
        if (q > 0)
                log_debug("Loaded %d set owner record(s) from '%s'.", q, s->dir);
        *ret = s;
        return 0;
}

/* Frees the registry. */
SetOwners *set_owners_free(SetOwners *s) {
        if (!s)
                return NULL;
        json_object_put(s->records);
        json_object_put(s->damaged);
        json_object_put(s->unsaved);
        free(s->dir);
        free(s);
        return NULL;
}

/* Writes the record of key; a failure is kept in s->unsaved for set_owners_save_pending(). */
static int save_record(SetOwners *s, const char *key, json_object *rec) {
        _cleanup_free_ char *file = NULL;
        int q;

        if (asprintf(&file, "%s.json", key) < 0)
                q = -ENOMEM;
        else
                q = state_write_json(s->dir, file, rec);
        if (q < 0) {
                s->save_errors++;
                if (!json_object_object_get_ex(s->unsaved, key, NULL))
                        json_object_object_add(s->unsaved, key, json_object_new_boolean(true));
                return log_error_errno(q, "Failed to save the owner of set %s in '%s': %m", key, s->dir);
        }
        if (json_object_object_get_ex(s->unsaved, key, NULL)) {
                json_object_object_del(s->unsaved, key);
                log_info("The owner of set %s is saved again.", key);
        }
        return 0;
}

/* Records the owner of a set. */
int set_owners_record(SetOwners *s, const char *set_name, uid_t owner, const char *how, const char *runner_id,
                      const char *display_name) {
        _cleanup_free_ char *key = NULL;
        json_object *rec, *old;
        int q;

        if (isempty(set_name))
                return -EINVAL;
        key = set_key(set_name);
        if (!key)
                return -ENOMEM;
        if (json_object_object_get_ex(s->records, key, &old))
                return record_owner(old) == owner ? 0 : -EEXIST;
        rec = json_object_new_object();
        if (!rec)
                return -ENOMEM;
        json_object_object_add(rec, "version", json_object_new_int(SET_FILE_VERSION));
        json_object_object_add(rec, "set_name", json_object_new_string(key));
        json_object_object_add(rec, "owner", json_object_new_int64(owner));
        json_object_object_add(rec, "how", json_object_new_string(how ?: "created"));
        json_object_object_add(rec, "runner_id", runner_id ? json_object_new_string(runner_id) : NULL);
        json_object_object_add(rec, "display_name", display_name ? json_object_new_string(display_name) : NULL);
        json_object_object_add(rec, "recorded_at", json_object_new_int64((int64_t) time(NULL)));
        /* in memory first: the decision holds even when the disk fails */
        q = remember(s, key, owner, rec);
        if (q < 0) {
                json_object_put(rec);
                return q;
        }
        if (!set_name_ok(key)) {
                json_object_put(rec);
                return -EINVAL;
        }
        q = save_record(s, key, rec);
        json_object_put(rec);
        return q;
}

/* How many records wait to be saved again. */
size_t set_owners_unsaved(const SetOwners *s) {
        return (size_t) json_object_object_length(s->unsaved);
}

/* Saves the records whose save failed. */
size_t set_owners_save_pending(SetOwners *s) {
        _cleanup_(json_object_putp) json_object *keys = json_object_new_array();

        if (!keys)
                return (size_t) json_object_object_length(s->unsaved);
        json_object_object_foreach(s->unsaved, k, v) {
                (void) v;
                json_object_array_add(keys, json_object_new_string(k));
        }
        for (size_t i = 0; i < json_array_len(keys); i++) {
                const char *key = json_object_get_string(json_object_array_get_idx(keys, i));
                json_object *rec;

                if (!json_object_object_get_ex(s->records, key, &rec))
                        json_object_object_del(s->unsaved, key);
                else if (save_record(s, key, rec) < 0)
                        break;
        }
        return (size_t) json_object_object_length(s->unsaved);
}

/* The recorded owner of a set. */
bool set_owners_get(const SetOwners *s, const char *set_name, uid_t *ret_owner) {
        _cleanup_free_ char *key = set_name ? set_key(set_name) : NULL;
        json_object *rec;

        if (!key || !json_object_object_get_ex(s->records, key, &rec))
                return false;
        *ret_owner = record_owner(rec);
        return true;
}

/* What uid may do with a set. */
SetAccess set_owners_check(const SetOwners *s, const char *set_name, uid_t uid, bool admin) {
        uid_t owner;

        if (!set_owners_get(s, set_name, &owner))
                return SET_UNOWNED;
        if (owner == uid)
                return SET_OWN;
        return admin ? SET_ADMIN : SET_REFUSED;
}

/* Whether some set belongs to another uid. */
bool set_owners_others(const SetOwners *s, uid_t uid) {
        json_object_object_foreach(s->records, k, rec) {
                (void) k;
                if (record_owner(rec) != uid)
                        return true;
        }
        return false;
}

/* Statistics. */
json_object *set_owners_stats_json(const SetOwners *s) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "sets", json_object_new_int64(json_object_object_length(s->records)));
        json_object_object_add(o, "damaged_files", json_object_get(s->damaged));
        json_object_object_add(o, "save_errors", json_object_new_uint64(s->save_errors));
        json_object_object_add(o, "unsaved", json_object_new_int64(json_object_object_length(s->unsaved)));
        return o;
}

void set_owners_stats_text(const SetOwners *s, JsonText *t) {
        json_text_add_literal(t, "{\"sets\":");
        json_text_add_i64(t, json_object_object_length(s->records));
        json_text_add_literal(t, ",\"damaged_files\":");
        json_text_add_value(t, s->damaged);
        json_text_add_literal(t, ",\"save_errors\":");
        json_text_add_u64(t, s->save_errors);
        json_text_add_literal(t, ",\"unsaved\":");
        json_text_add_i64(t, json_object_object_length(s->unsaved));
        json_text_add_literal(t, "}");
}
