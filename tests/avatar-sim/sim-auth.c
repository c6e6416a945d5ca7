/* SPDX-License-Identifier: MIT */
#include <strings.h>

#include "sim-auth.h"

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define UPPER_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define SEED_ORG "avatar-sim/organization"

/* Frees a user, zeroing its secrets. Returns NULL. */
static User *user_free(User *u) {
        if (!u)
                return NULL;
        free(u->email);
        free(u->username);
        erase_and_free(u->password);
        free(u->s3_key_id);
        erase_and_free(u->s3_secret);
        free(u);
        return NULL;
}

/* Frees an API key, zeroing its plaintext. Returns NULL. */
static ApiKey *apikey_free(ApiKey *k) {
        if (!k)
                return NULL;
        free(k->name);
        erase_and_free(k->plaintext);
        free(k);
        return NULL;
}

/* Frees a token pair, zeroing both. Returns NULL. */
static Token *token_free(Token *t) {
        if (!t)
                return NULL;
        erase_and_free(t->access);
        erase_and_free(t->refresh);
        free(t);
        return NULL;
}

/* Appends a user (keeps command-line order). */
static void user_append(Sim *sim, User *u) {
        User **p = &sim->users;

        while (*p)
                p = &(*p)->next;
        *p = u;
}

/* Adds a key to the list (newest first). */
static void apikey_link(Sim *sim, ApiKey *k) {
        k->next = sim->keys;
        sim->keys = k;
        sim->n_keys++;
}

/* Creates the user of one --api-key and its key. */
static int auth_add_key_user(Sim *sim, const char *key) {
        _cleanup_free_ char *seed = NULL;
        User *u;
        ApiKey *k;

        for (k = sim->keys; k; k = k->next)
                if (streq(k->plaintext, key))
                        return 0;
        seed = strprintf("avatar-sim/api-key/%s", key);
        u = calloc(1, sizeof(User));
        k = calloc(1, sizeof(ApiKey));
        if (!seed || !u || !k) {
                free(u);
                free(k);
                return -ENOMEM;
        }
        uuid_from_seed(seed, u->id);
        uuid_from_seed(SEED_ORG, u->org_id);
        u->email = strprintf("user-%.8s@avatar-sim.local", u->id);
        uuid_from_seed(u->id, k->id);
        k->name = strdup("avatar-sim command line");
        k->plaintext = strdup(key);
        k->owner = u;
        k->created_at = now_usec();
        k->expires_at = k->created_at + (int64_t) 3650 * 86400 * 1000000;
        if (!u->email || !k->name || !k->plaintext) {
                user_free(u);
                apikey_free(k);
                return -ENOMEM;
        }
        user_append(sim, u);
        apikey_link(sim, k);
        return 0;
}

/* Creates the user of one --user USER:PASSWORD. */
static int auth_add_login_user(Sim *sim, const char *spec) {
        const char *colon = strchr(spec, ':');
        _cleanup_free_ char *seed = NULL;
        User *u;

        if (!colon || colon == spec)
                return -EINVAL;
        u = calloc(1, sizeof(User));
        if (!u)
                return -ENOMEM;
        u->username = strndup(spec, (size_t) (colon - spec));
        u->password = strdup(colon + 1);
        if (!u->username || !u->password) {
                user_free(u);
                return -ENOMEM;
        }
        for (User *o = sim->users; o; o = o->next)
                if (streq_ptr(o->username, u->username)) {
                        user_free(u);
                        return -EEXIST;
                }
        seed = strprintf("avatar-sim/user/%s", u->username);
        if (!seed) {
                user_free(u);
                return -ENOMEM;
        }
        uuid_from_seed(seed, u->id);
        uuid_from_seed(SEED_ORG, u->org_id);
        u->email = strchr(u->username, '@') ? strdup(u->username)
                                            : strprintf("%s@avatar-sim.local", u->username);
        if (!u->email) {
                user_free(u);
                return -ENOMEM;
        }
        user_append(sim, u);
        return 0;
}

/* Creates the users of --api-key and --user. */
int auth_init(Sim *sim) {
        int r;

        for (size_t i = 0; i < sim->cfg.n_api_keys; i++) {
                r = auth_add_key_user(sim, sim->cfg.api_keys[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < sim->cfg.n_users; i++) {
                r = auth_add_login_user(sim, sim->cfg.users[i]);
                if (r < 0)
                        return r;
        }
        if (!sim->users)
                return auth_add_key_user(sim, SIM_DEFAULT_API_KEY);
        return 0;
}

/* Frees users, keys and tokens. */
void auth_done(Sim *sim) {
        while (sim->tokens) {
                Token *t = sim->tokens;
                sim->tokens = t->next;
                token_free(t);
        }
        while (sim->keys) {
                ApiKey *k = sim->keys;
                sim->keys = k->next;
                apikey_free(k);
        }
        while (sim->users) {
                User *u = sim->users;
                sim->users = u->next;
                user_free(u);
        }
        sim->n_tokens = sim->n_keys = 0;
}

/* Returns the credential after "scheme " when header uses that scheme (case-insensitive). */
static const char *auth_scheme(const char *header, const char *scheme) {
        size_t l = strlen(scheme);

        if (strncasecmp(header, scheme, l) != 0 || (header[l] != ' ' && header[l] != '\t'))
                return NULL;
        header += l;
        while (*header == ' ' || *header == '\t')
                header++;
        return header;
}

/* Authenticates an Authorization header value. */
int auth_check(Sim *sim, const char *authorization, User **ret_user, const char **ret_kind) {
        const char *cred;
        int64_t now = now_usec();

        *ret_kind = "none";
        if (isempty(authorization))
                return -ENOKEY;
        cred = auth_scheme(authorization, "api-key-v1");
        if (cred) {
                *ret_kind = "invalid";
                for (ApiKey *k = sim->keys; k; k = k->next) {
                        if (!streq(k->plaintext, cred))
                                continue;
                        if (k->revoked_at != 0 || k->expires_at <= now)
                                return -EACCES;
                        k->last_used_at = now;
                        *ret_kind = "api-key";
                        *ret_user = k->owner;
                        return 0;
                }
                return -EACCES;
        }
        cred = auth_scheme(authorization, "Bearer");
        if (cred && sim->cfg.legacy_auth) {
                *ret_kind = "invalid";
                for (Token *t = sim->tokens; t; t = t->next) {
                        if (!streq(t->access, cred))
                                continue;
                        if (t->access_expired ||
                            (t->access_expires_at != 0 && t->access_expires_at <= now)) {
                                *ret_kind = "expired";
                                return -EKEYEXPIRED;
                        }
                        *ret_kind = "bearer";
                        *ret_user = t->user;
                        return 0;
                }
                return -EACCES;
        }
        *ret_kind = "invalid";
        return -EACCES;
}

/* Finds a user by id. */
User *user_find_by_id(Sim *sim, const char *id) {
        for (User *u = sim->users; u; u = u->next)
                if (strcasecmp(u->id, id) == 0)
                        return u;
        return NULL;
}

/* Finds a user by email. */
User *user_find_by_email(Sim *sim, const char *email) {
        for (User *u = sim->users; u; u = u->next)
                if (strcasecmp(u->email, email) == 0)
                        return u;
        return NULL;
}

/* The MeUser/User JSON of a user. */
json_object *user_to_json(const User *u, bool me) {
        json_object *o = json_object_new_object(), *env;

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(u->id));
        json_object_object_add(o, "organization_id", json_object_new_string(u->org_id));
        json_object_object_add(o, "email", json_object_new_string(u->email));
        json_object_object_add(o, "role", json_object_new_string("user"));
        if (!me)
                return o;
        env = json_object_new_object();
        if (!env) {
                json_object_put(o);
                return NULL;
        }
        json_object_object_add(env, "dataset_expiration_days",
                               json_object_new_int(SIM_UPLOAD_PREFIX_DAYS));
        json_object_object_add(env, "max_allowed_dimensions_per_dataset",
                               json_object_new_int(200));
        json_object_object_add(env, "max_allowed_lines_per_dataset",
                               json_object_new_int(2000000));
        json_object_object_add(o, "environment", env);
        return o;
}

/* Creates an API key for owner. */
int apikey_create(Sim *sim, User *owner, const char *name, int days, ApiKey **ret) {
        char secret[41];
        ApiKey *k;
        int r;

        if (sim->n_keys >= SIM_MAX_KEYS)
                return -E2BIG;
        r = random_string(secret, 40, ALNUM);
        if (r < 0)
                return r;
        k = calloc(1, sizeof(ApiKey));
        if (!k)
                return -ENOMEM;
        uuid4(k->id);
        k->name = strdup(name);
        k->plaintext = strprintf("avk-%s", secret);
        explicit_bzero_safe(secret, sizeof(secret));
        if (!k->name || !k->plaintext) {
                apikey_free(k);
                return -ENOMEM;
        }
        k->owner = owner;
        k->created_at = now_usec();
        k->expires_at = k->created_at + (int64_t) days * 86400 * 1000000;
        apikey_link(sim, k);
        *ret = k;
        return 0;
}

/* Finds a key of owner by id. */
ApiKey *apikey_find(Sim *sim, User *owner, const char *id) {
        for (ApiKey *k = sim->keys; k; k = k->next)
                if (k->owner == owner && strcasecmp(k->id, id) == 0)
                        return k;
        return NULL;
}

/* The ApiKey JSON. */
json_object *apikey_to_json(const ApiKey *k, bool with_plaintext) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(k->id));
        json_object_object_add(o, "name", json_object_new_string(k->name));
        json_object_object_add(o, "created_at", json_time_or_null(k->created_at));
        json_object_object_add(o, "expires_at", json_time_or_null(k->expires_at));
        json_object_object_add(o, "revoked_at", json_time_or_null(k->revoked_at));
        json_object_object_add(o, "last_used_at", json_time_or_null(k->last_used_at));
        if (with_plaintext)
                json_object_object_add(o, "plaintext", json_object_new_string(k->plaintext));
        return o;
}

/* The user whose legacy username and password match. */
User *auth_login(Sim *sim, const char *username, const char *password) {
        for (User *u = sim->users; u; u = u->next)
                if (u->username && (streq(u->username, username) ||
                                    strcasecmp(u->email, username) == 0))
                        return streq(u->password, password) ? u : NULL;
        return NULL;
}

/* Drops the oldest token pair when the list is full. */
static void tokens_trim(Sim *sim) {
        Token **p;

        if (sim->n_tokens < SIM_MAX_TOKENS)
                return;
        for (p = &sim->tokens; *p && (*p)->next; p = &(*p)->next)
                ;
        if (*p) {
                *p = token_free(*p);
                sim->n_tokens--;
        }
}

/* Issues a new access/refresh token pair. */
int token_issue(Sim *sim, User *u, Token **ret) {
        char a[41], b[41];
        Token *t;
        int r;

        r = random_string(a, 40, ALNUM);
        if (r >= 0)
                r = random_string(b, 40, ALNUM);
        if (r < 0)
                return r;
        tokens_trim(sim);
        t = calloc(1, sizeof(Token));
        if (!t)
                return -ENOMEM;
        t->access = strprintf("sim-at-%s", a);
        t->refresh = strprintf("sim-rt-%s", b);
        explicit_bzero_safe(a, sizeof(a));
        explicit_bzero_safe(b, sizeof(b));
        if (!t->access || !t->refresh) {
                token_free(t);
                return -ENOMEM;
        }
        t->user = u;
        t->issued_at = now_usec();
        if (sim->token_ttl_usec > 0)
                t->access_expires_at = t->issued_at + sim->token_ttl_usec;
        t->next = sim->tokens;
        sim->tokens = t;
        sim->n_tokens++;
        *ret = t;
        return 0;
}

/* Exchanges a refresh token for a new pair. */
int token_refresh(Sim *sim, const char *refresh, Token **ret) {
        for (Token *t = sim->tokens; t; t = t->next)
                if (!t->refresh_used && streq(t->refresh, refresh)) {
                        t->refresh_used = true;
                        return token_issue(sim, t->user, ret);
                }
        return -EACCES;
}

/* Marks every access token (and refresh token when asked) as expired. */
size_t tokens_expire(Sim *sim, bool refresh_too) {
        size_t n = 0;

        for (Token *t = sim->tokens; t; t = t->next) {
                if (!t->access_expired)
                        n++;
                t->access_expired = true;
                if (refresh_too)
                        t->refresh_used = true;
        }
        return n;
}

/* The LoginResponse JSON of a token pair. */
json_object *token_to_json(const Token *t) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "access_token", json_object_new_string(t->access));
        json_object_object_add(o, "refresh_token", json_object_new_string(t->refresh));
        json_object_object_add(o, "token_type", json_object_new_string("bearer"));
        return o;
}

/* Storage credentials for u. */
int user_storage_credentials(Sim *sim, User *u, const char **ret_id, const char **ret_secret) {
        char id[21], secret[41];
        int r;

        if (sim->cfg.storage_key_id) {
                *ret_id = sim->cfg.storage_key_id;
                *ret_secret = sim->cfg.storage_secret;
                return 0;
        }
        if (!u->s3_key_id) {
                memcpy(id, "SIMK", 4);
                r = random_string(id + 4, 16, UPPER_ALNUM);
                if (r >= 0)
                        r = random_string(secret, 40, ALNUM);
                if (r < 0)
                        return r;
                u->s3_key_id = strdup(id);
                u->s3_secret = strdup(secret);
                explicit_bzero_safe(secret, sizeof(secret));
                if (!u->s3_key_id || !u->s3_secret) {
                        u->s3_key_id = mfree(u->s3_key_id);
                        u->s3_secret = erase_and_free(u->s3_secret);
                        return -ENOMEM;
                }
        }
        *ret_id = u->s3_key_id;
        *ret_secret = u->s3_secret;
        return 0;
}

/* Looks up the secret of a storage access key id. */
int storage_credentials_lookup(Sim *sim, const char *key_id, User **ret_user,
                               const char **ret_secret) {
        if (sim->cfg.storage_key_id) {
                if (!streq(sim->cfg.storage_key_id, key_id))
                        return -ENOKEY;
                *ret_user = NULL;
                *ret_secret = sim->cfg.storage_secret;
                return 0;
        }
        for (User *u = sim->users; u; u = u->next)
                if (u->s3_key_id && streq(u->s3_key_id, key_id)) {
                        *ret_user = u;
                        *ret_secret = u->s3_secret;
                        return 0;
                }
        return -ENOKEY;
}
