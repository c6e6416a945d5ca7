/* SPDX-License-Identifier: MIT */
/*
 * The daemon's credential for the Avatar API: an API key (sent as "Authorization:
 * api-key-v1 <key>") or, for servers that still serve it, a legacy login session (Bearer
 * access token plus refresh token).
 *
 * Where the key comes from, first found wins:
 *   1. a key the daemon stored itself (manager.create_api_key with store: true), kept as
 *      STATE_DIRECTORY/api-key, mode 0600;
 *   2. the systemd credential "api-key" ($CREDENTIALS_DIRECTORY/api-key);
 *   3. the file named by upstream.api_key_file (refused when group- or world-readable);
 *   4. the AVATAR_API_KEY environment variable (erased from the environment once read).
 *
 * Secret hygiene: key and tokens live in memory that is zeroed before it is freed; nothing
 * here logs a secret, and functions that fail name the source, never the value. The client
 * that uses a credential (api_set_credential()) registers its secrets with scrub.h, which
 * keeps them out of every text the daemon passes on, in any form a server may echo them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Config Config;

typedef enum CredentialKind {
        CREDENTIAL_NONE,
        CREDENTIAL_API_KEY,
        CREDENTIAL_LOGIN,     /* legacy username/password session */
        _CREDENTIAL_KIND_MAX,
        _CREDENTIAL_KIND_INVALID = -EINVAL,
} CredentialKind;

typedef struct Credential {
        CredentialKind kind;
        char *secret;          /* API key, or access token; zeroed on free */
        char *refresh_token;   /* login only; zeroed on free */
        char *source;          /* "state directory", "systemd credential", "api_key_file /x", "AVATAR_API_KEY", "login as NAME" */
        char *username;        /* login only */
} Credential;

const char *credential_kind_to_string(CredentialKind k);

/* Loads the key from the sources above (envp may be NULL). Returns 0 with *ret of kind
 * CREDENTIAL_NONE when no source has a key, -EPERM when api_key_file is readable by others,
 * -EINVAL when a source holds an empty or multi-line key, or another -errno; *ret_error
 * (static or malloc'd via ret_error_buf) describes the problem without the secret. */
int credential_load(const Config *c, char *const *envp, Credential **ret, char **ret_error);

/* Creates a credential from a login session. Copies the strings. */
int credential_new_login(const char *username, const char *access_token,
                         const char *refresh_token, Credential **ret);

/* Creates an API-key credential from a key. */
int credential_new_api_key(const char *key, const char *source, Credential **ret);

/* Frees, zeroing the secrets. NULL-safe; returns NULL. */
Credential *credential_free(Credential *c);

/* Writes `key` as STATE_DIRECTORY/api-key (mode 0600, atomically: temp file, fsync, rename,
 * fsync of the directory). Returns 0 or -errno. */
int credential_store_api_key(const char *state_directory, const char *key);

/* The Authorization header line ("Authorization: api-key-v1 <key>" or "Authorization:
 * Bearer <token>") in a malloc'd buffer the caller must free with erase_and_free(), or NULL
 * for CREDENTIAL_NONE / OOM. */
char *credential_header(const Credential *c);
