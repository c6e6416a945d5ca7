/* SPDX-License-Identifier: MIT */
/*
 * avatar-sim identities: users, API keys (api-key-v1), legacy login tokens (Bearer, with
 * expiry and refresh) and the per-user storage credentials that /access hands out.
 * Secrets are zeroed when freed and never logged.
 */
#pragma once

#include "sim.h"

struct User {
        char id[UUID_STR_LEN];
        char org_id[UUID_STR_LEN];
        char *email;
        char *username;  /* legacy login name, NULL for key-only users */
        char *password;  /* legacy password, secret */
        char *s3_key_id; /* storage credentials, made at the first /access */
        char *s3_secret; /* secret */
        User *next;
};

struct ApiKey {
        char id[UUID_STR_LEN];
        char *name;
        char *plaintext; /* secret */
        User *owner;
        int64_t created_at;
        int64_t expires_at;
        int64_t revoked_at;   /* 0: not revoked */
        int64_t last_used_at; /* 0: never */
        ApiKey *next;
};

struct Token {
        char *access;  /* secret */
        char *refresh; /* secret */
        User *user;
        int64_t issued_at;
        int64_t access_expires_at; /* 0: no expiry */
        bool access_expired;       /* forced by /_sim/expire-tokens */
        bool refresh_used;
        Token *next;
};

/* Creates the users of --api-key and --user (or the default key). Returns 0 or -errno. */
int auth_init(Sim *sim);
/* Frees users, keys and tokens, zeroing secrets. */
void auth_done(Sim *sim);

/*
 * Authenticates an Authorization header value. Returns 0 with *ret_user set (borrowed),
 * -ENOKEY when absent, -EACCES when invalid, -EKEYEXPIRED for an expired Bearer token.
 * *ret_kind is always set to the log name of the scheme ("api-key", "bearer", ...).
 */
int auth_check(Sim *sim, const char *authorization, User **ret_user, const char **ret_kind);

/* Finds a user by id or by email; NULL when absent. Borrowed. */
User *user_find_by_id(Sim *sim, const char *id);
User *user_find_by_email(Sim *sim, const char *email);
/* The MeUser/User JSON of a user; NULL on OOM. */
json_object *user_to_json(const User *u, bool me);

/* Creates an API key for owner. Returns 0 (*ret borrowed) or -errno (-E2BIG: too many). */
int apikey_create(Sim *sim, User *owner, const char *name, int days, ApiKey **ret);
/* Finds a key of owner by id; NULL when absent. Borrowed. */
ApiKey *apikey_find(Sim *sim, User *owner, const char *id);
/* The ApiKey JSON, with "plaintext" when asked. NULL on OOM. */
json_object *apikey_to_json(const ApiKey *k, bool with_plaintext);

/* The user whose legacy username and password match, else NULL. Borrowed. */
User *auth_login(Sim *sim, const char *username, const char *password);
/* Issues a new access/refresh token pair. Returns 0 (*ret borrowed) or -errno. */
int token_issue(Sim *sim, User *u, Token **ret);
/* Exchanges a refresh token for a new pair. Returns 0 or -EACCES. */
int token_refresh(Sim *sim, const char *refresh, Token **ret);
/* Marks every access token (and refresh token when asked) as expired. Returns the count. */
size_t tokens_expire(Sim *sim, bool refresh_too);
/* The LoginResponse JSON of a token pair. */
json_object *token_to_json(const Token *t);

/* Storage credentials for u (made on first use, or the forced pair). Returns 0 or -errno. */
int user_storage_credentials(Sim *sim, User *u, const char **ret_id, const char **ret_secret);
/*
 * Looks up the secret of a storage access key id. Returns 0 with *ret_user set to the owner,
 * or to NULL for the forced --storage-credentials pair (access to every bucket); -ENOKEY
 * when unknown.
 */
int storage_credentials_lookup(Sim *sim, const char *key_id, User **ret_user,
                               const char **ret_secret);
