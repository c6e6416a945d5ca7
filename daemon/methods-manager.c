/* SPDX-License-Identifier: MIT */
/*
 * The Manager operations of the Avatar Python client, served over the socket: health,
 * compatibility, login and password flows, API keys, jobs and results, runs by name and id,
 * deletion. Semantics follow the Python Manager (see README); reads go through the cache so
 * concurrent callers share one upstream request.
 *
 * Every asynchronous method keeps its state in an Op that owns the pending cache waiter or API
 * request; when the caller disconnects or the daemon stops, the Op's cancel handler stops the
 * upstream work it alone needs and finishes the call.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "build-config.h"
#include "cache.h"
#include "config.h"
#include "core.h"
#include "credential.h"
#include "call.h"
#include "errors.h"
#include "json-util.h"
#include "jsonrpc.h"
#include "log.h"
#include "manager.h"
#include "op.h"
#include "runner.h"
#include "sets.h"

/* Jobs removed per POST /jobs/bulk-delete (the contract's maximum). */
#define BULK_DELETE_MAX 100

static const char deprecation_warning[] =
        "Username/password authentication is deprecated and will be removed in a future release. "
        "Please migrate to API key authentication. To create an API key while you are still logged in, run: "
        "avatarctl apikey create --name my-key --days 365 --store "
        "(or call manager.create_api_key {\"name\": \"my-key\", \"expiration_days\": 365, \"store\": true}). "
        "The daemon then keeps the key as its credential (mode 0600 in its state directory) and uses it from "
        "then on: no more username/password needed. To give the key to a new installation instead, store it "
        "as the systemd credential api-key (LoadCredential=api-key:/etc/avatard/api-key). "
        "For more information, see: https://python.docs.octopize.io/latest/user_guide.html";

/* ---- small helpers ---------------------------------------------------------------- */

/* Adds "stale" and "age_s" to a result object. */
static void mark_freshness(json_object *o, double age_s, bool stale) {
        json_object_object_add(o, "stale", json_object_new_boolean(stale));
        json_object_object_add(o, "age_s", json_new_rounded(age_s, 3));
}

/* Finishes a call with "the upstream answer had an unexpected shape". */
static int reply_bad_shape(Call *c, const char *what) {
        return call_reply_errorf(c, RPC_UPSTREAM_BAD_RESPONSE, NULL,
                                 "The Avatar server's answer to %s does not have the expected shape", what);
}

/* The shared read of the whole job list, used by every method that looks at all jobs. */
static CacheRead read_all_jobs(const Core *s, bool force) {
        CacheRead r = op_read_of(s, "GET /jobs", "/jobs", "GET /jobs", s->config->jobs_ttl_s);

        r.force = force;
        return r;
}

/* ---- manager.get_health ------------------------------------------------------------ */

/* The health result as text, written once per answer: the answer's members (or
 * {"health": answer} for an answer that is not an object) without the closing brace, to
 * which each call adds "stale" and "age_s". The result is byte for byte what
 * health_result_json() gives (tests/daemon/test-health-text). An answer that has a "stale"
 * or "age_s" member of its own (replaced in place by the object path) is not written so. */
typedef struct HealthText {
        json_object *value;   /* the answer the text is of (a reference: its address stays) */
        char *text;           /* NULL: no text for this answer, health_result_json() it is */
        size_t len;
        bool members;         /* the text holds members: a comma before "stale" */
} HealthText;

static HealthText health_text;

/* Frees the text (at exit, for leak checkers). */
static void health_text_done(void) {
        json_object_put(health_text.value);
        free(health_text.text);
        health_text = (HealthText) {};
}

/* The result of manager.get_health as an object (the path of every answer that has no text). */
static json_object *health_result_json(json_object *value, double age_s, bool stale) {
        json_object *o;

        if (json_object_is_type(value, json_type_object))
                o = json_copy(value);
        else {
                o = json_object_new_object();
                if (o)
                        json_object_object_add(o, "health", json_object_get(value));
        }
        if (o)
                mark_freshness(o, age_s, stale);
        return o;
}

/* Writes the text of an answer into health_text (an answer that cannot have one gets none). */
static int health_text_update(json_object *value) {
        static bool registered;
        const char *s;
        size_t n;
        char *t;

        if (value == health_text.value && value)
                return 0;
        if (!registered) {
                (void) atexit(health_text_done);
                registered = true;
        }
        health_text_done();
        health_text.value = json_object_get(value);
        if (json_object_is_type(value, json_type_object)) {
                if (json_object_object_get_ex(value, "stale", NULL) || json_object_object_get_ex(value, "age_s", NULL))
                        return 0;
                s = json_object_to_json_string_length(value, JSONRPC_WIRE_FLAGS, &n);
                if (!s || n < 2 || s[n - 1] != '}')
                        return -ENOMEM;
                t = strndup(s, n - 1);
                if (!t)
                        return -ENOMEM;
                health_text.members = n > 2;
        } else {
                s = value ? json_object_to_json_string_length(value, JSONRPC_WIRE_FLAGS, &n) : "null";
                if (!s)
                        return -ENOMEM;
                if (!value)
                        n = 4;
                if (asprintf(&t, "{\"health\":%.*s", (int) n, s) < 0)
                        return -ENOMEM;
                health_text.members = true;
        }
        health_text.text = t;
        health_text.len = strlen(t);
        return 0;
}

/* The result of manager.get_health: a raw value from the answer's text when it has one, else
 * the object. */
json_object *health_result(json_object *value, double age_s, bool stale) {
        char num[JSON_ROUNDED_TEXT_MAX], buf[512], *p;
        _cleanup_free_ char *heap = NULL;
        size_t need, nl;

        if (health_text_update(value) < 0 || !health_text.text || isnan(age_s) || isinf(age_s) ||
            fabs(age_s) >= 1e15)
                return health_result_json(value, age_s, stale);
        nl = json_rounded_text(age_s, 3, num);
        need = health_text.len + STRLEN(",\"stale\":false,\"age_s\":}") + nl + 1;
        p = buf;
        if (need > sizeof(buf)) {
                p = heap = malloc(need);
                if (!p)
                        return NULL;
        }
        {
                char *q = mempcpy(p, health_text.text, health_text.len);

                if (health_text.members)
                        *q++ = ',';
                q = stpcpy(q, stale ? "\"stale\":true,\"age_s\":" : "\"stale\":false,\"age_s\":");
                q = mempcpy(q, num, nl);
                *q++ = '}';
                return json_raw_new(p, (size_t) (q - p));
        }
}

/* The health answer arrived (or the cache had it). */
static void on_health(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        Call *c = op_finish(userdata);
        json_object *o;

        if (err) {
                reply_api_error(c, err);
                return;
        }
        o = health_result(value, age_s, stale);
        if (!o) {
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        call_reply(c, o);
}

/* The object form of the result, for the tests that hold the text to it. */
json_object *health_result_object(json_object *value, double age_s, bool stale) {
        return health_result_json(value, age_s, stale);
}

/* manager.get_health: GET /health through the cache. */
static int method_get_health(Call *c, json_object *params) {
        CacheRead r;
        json_object *value, *o;
        double age_s;
        Op *op;

        (void) params;
        r = op_read_of(c->core, "GET /health", "/health", "GET /health", c->core->config->health_ttl_s);
        /* /health is public (the server's own healthcheck calls it without a key), and the
         * published client's get_health passes no gate: an operator diagnoses a bad key or an
         * incompatible answer with it, so it needs neither */
        r.call.flags = API_NO_AUTH | API_NO_COMPAT;
        /* a fresh answer is the common case: answered at once, without an Op to wait in */
        if (cache_peek(c->core->cache, &r, &value, &age_s)) {
                o = health_result(value, age_s, false);
                if (!o)
                        return -ENOMEM;
                return call_reply(c, o);
        }
        op = op_new(c, sizeof(Op));
        if (!op)
                return -ENOMEM;
        return op_cache_get(op, &r, on_health);
}

/* ---- manager.verify_compatibility --------------------------------------------------- */

/* Builds the compatibility result. */
static json_object *compat_result(const Core *s, CompatStatus st, json_object *answer) {
        json_object *o = json_object_new_object(), *v;

        if (!o)
                return NULL;
        json_object_object_add(o, "status", json_object_new_string(compat_status_to_string(st)));
        json_object_object_add(o, "compatible", json_object_new_boolean(st == COMPAT_COMPATIBLE));
        json_object_object_add(o, "message", json_object_object_get_ex(answer, "message", &v) ?
                               json_object_get(v) : NULL);
        json_object_object_add(o, "most_recent_compatible_client",
                               json_object_object_get_ex(answer, "most_recent_compatible_client", &v) ?
                               json_object_get(v) : NULL);
        json_object_object_add(o, "daemon_version", json_object_new_string(AVATARD_VERSION));
        json_object_object_add(o, "user_agent", json_object_new_string(config_user_agent(s->config)));
        json_object_object_add(o, "verification", json_object_new_boolean(s->config->verify_compatibility));
        json_object_object_add(o, "age_s", json_new_rounded(api_compat_age_s(s->api), 3));
        return o;
}

/* The compatibility answer arrived. */
static void on_compat(CompatStatus st, json_object *answer, const ApiError *err, void *userdata) {
        Op *op = userdata;
        Core *s = op->core;
        Call *c;
        json_object *o;

        op->req = NULL;
        c = op_finish(op);
        core_status_changed(s);
        if (err) {
                reply_api_error(c, err);
                return;
        }
        o = compat_result(s, st, answer);
        if (!o) {
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        if (st == COMPAT_INCOMPATIBLE || st == COMPAT_UNKNOWN) {
                _cleanup_free_ char *m = api_compat_message(s->api, st, answer);

                call_reply_error(c, RPC_INCOMPATIBLE, m, o);
                return;
        }
        call_reply(c, o);
}

/* manager.verify_compatibility: GET /check_client (cached unless refresh). */
static int method_verify_compatibility(Call *c, json_object *params) {
        Op *op = op_new(c, sizeof(Op));
        json_object *v;
        bool refresh = json_object_object_get_ex(params, "refresh", &v) && json_object_get_boolean(v);

        int r;

        if (!op)
                return -ENOMEM;
        r = api_compat_verify(c->core->api, refresh, on_compat, op, &op->req);
        return r < 0 ? op_start_failed(op, r) : 0;
}

/* ---- manager.authenticate ---------------------------------------------------------- */

typedef struct LoginOp {
        Op op;
        char *username;
        char *password;
} LoginOp;

/* Releases the login state, erasing the password. */
static void login_cleanup(Op *op) {
        LoginOp *l = (LoginOp *) op;

        free(l->username);
        erase_and_free(l->password);
}

/* Erases a string member of the params in place (the password must not linger). */
static void erase_param(json_object *params, const char *key) {
        json_object *v;

        if (json_object_object_get_ex(params, key, &v) && json_object_is_type(v, json_type_string))
                explicit_bzero((char *) json_object_get_string(v), (size_t) json_object_get_string_len(v));
}

/* The login answer arrived: keep the session. */
static void on_login(const ApiResponse *resp, const ApiError *err, void *userdata) {
        LoginOp *l = userdata;
        Core *s = l->op.core;
        _cleanup_free_ char *username = TAKE_PTR(l->username);
        Credential *cred = NULL;
        const char *at, *rt;
        json_object *o;
        Call *c;

        l->op.req = NULL;
        c = op_finish(&l->op);
        if (err) {
                reply_api_error(c, err);
                return;
        }
        at = json_str(resp->json, "access_token");
        rt = json_str(resp->json, "refresh_token");
        if (!at || credential_new_login(username, at, rt, &cred) < 0) {
                reply_bad_shape(c, "POST /login");
                return;
        }
        explicit_bzero((char *) resp->body, resp->body_len);
        if (resp->json) {
                json_object *v;

                if (json_object_object_get_ex(resp->json, "access_token", &v))
                        explicit_bzero((char *) json_object_get_string(v), (size_t) json_object_get_string_len(v));
                if (json_object_object_get_ex(resp->json, "refresh_token", &v) && v)
                        explicit_bzero((char *) json_object_get_string(v), (size_t) json_object_get_string_len(v));
        }
        api_set_credential(s->api, cred);
        log_ctx(LOG_NOTICE, &c->log, "Logged in to the Avatar server as %s (deprecated username/password session).",
                username);
        core_status_changed(s);
        o = json_object_new_object();
        if (!o) {
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        json_object_object_add(o, "authenticated", json_object_new_boolean(true));
        json_object_object_add(o, "username", json_object_new_string(username));
        json_object_object_add(o, "warning", json_object_new_string(deprecation_warning));
        call_reply(c, o);
}

/* Sends POST /login (after the compatibility check, when one was asked for). */
static void login_send(LoginOp *l) {
        _cleanup_free_ char *u = api_escape(l->username);
        _cleanup_(erase_and_freep) char *p = api_escape(l->password), *body = NULL;
        ApiCall call;
        int r;

        if (!u || !p || asprintf(&body, "grant_type=password&username=%s&password=%s&scope=", u, p) < 0) {
                Call *c = op_finish(&l->op);
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        call = (ApiCall){
                .method = UPSTREAM_POST,
                .path = "/login",
                .body = body,
                .body_len = strlen(body),
                .content_type = "application/x-www-form-urlencoded",
                .flags = API_NO_AUTH | API_NO_COMPAT | API_SECRET_ANSWER,
                .label = "POST /login",
        };
        r = api_start(l->op.core->api, &call, on_login, l, &l->op.req);
        if (r < 0) {
                Call *c = op_finish(&l->op);
                call_reply_errno(c, r, "Cannot send the login request: %m");
        }
}

/* The compatibility answer before a login arrived. */
static void on_login_compat(CompatStatus st, json_object *answer, const ApiError *err, void *userdata) {
        LoginOp *l = userdata;

        l->op.req = NULL;
        if (err || st == COMPAT_INCOMPATIBLE || st == COMPAT_UNKNOWN) {
                /* reuse verify_compatibility's error reporting */
                on_compat(st, answer, err, &l->op);
                return;
        }
        login_send(l);
}

/* manager.authenticate: legacy username/password login (refused while an API key is in use). */
static int method_authenticate(Call *c, json_object *params) {
        Core *s = c->core;
        const Credential *cur = api_get_credential(s->api);
        json_object *v;
        bool verify = s->config->verify_compatibility;
        LoginOp *l;
        int r;

        if (cur && cur->kind == CREDENTIAL_API_KEY) {
                json_object *data = json_object_new_object();

                if (data)
                        json_object_object_add(data, "credential_source", json_object_new_string(strna(cur->source)));
                erase_param(params, "password");
                return call_reply_errorf(c, RPC_CONFLICT, data,
                                         "Cannot log in with a username and password: the daemon already uses an API key "
                                         "(from %s). API key authentication is already active.", strna(cur->source));
        }
        if (json_object_object_get_ex(params, "should_verify_compatibility", &v) && v)
                verify = json_object_get_boolean(v);
        l = op_new(c, sizeof(LoginOp));
        if (!l)
                return -ENOMEM;
        l->op.cleanup = login_cleanup;
        l->username = strdup(json_str(params, "username"));
        l->password = strdup(json_str(params, "password"));
        erase_param(params, "password");
        if (!l->username || !l->password)
                return op_start_failed(&l->op, -ENOMEM);
        if (!verify) {
                login_send(l);
                return 0;
        }
        r = api_compat_verify(s->api, false, on_login_compat, l, &l->op.req);
        return r < 0 ? op_start_failed(&l->op, r) : 0;
}

/* ---- simple POST/GET/DELETE passthroughs -------------------------------------------- */

typedef json_object *(*shape_fn)(const ApiResponse *resp, json_object *params);

typedef struct PassOp {
        Op op;
        shape_fn shape;
        json_object *params;
} PassOp;

/* Releases a passthrough's params reference. */
static void pass_cleanup(Op *op) {
        json_object_put(((PassOp *) op)->params);
}

/* The answer of a passthrough arrived: shape it into the result. */
static void on_pass(const ApiResponse *resp, const ApiError *err, void *userdata) {
        PassOp *p = userdata;
        shape_fn shape = p->shape;
        json_object *params = json_object_get(p->params), *o;
        Call *c;

        p->op.req = NULL;
        c = op_finish(&p->op);
        if (err) {
                json_object_put(params);
                reply_api_error(c, err);
                return;
        }
        o = shape(resp, params);
        json_object_put(params);
        if (!o) {
                reply_bad_shape(c, "the request");
                return;
        }
        call_reply(c, o);
}

/* Starts a passthrough request whose answer `shape` turns into the result. */
static int pass_start(Call *c, const ApiCall *call, shape_fn shape, json_object *params) {
        PassOp *p = op_new(c, sizeof(PassOp));

        if (!p)
                return -ENOMEM;
        p->op.cleanup = pass_cleanup;
        p->shape = shape;
        p->params = json_object_get(params);
        return op_api_start(&p->op, call, on_pass);
}

/* {"<key>": true} */
static json_object *shape_flag(const char *key) {
        json_object *o = json_object_new_object();

        if (o)
                json_object_object_add(o, key, json_object_new_boolean(true));
        return o;
}

/* Result of forgotten_password. */
static json_object *shape_sent(const ApiResponse *resp, json_object *params) {
        (void) resp;
        (void) params;
        return shape_flag("sent");
}

/* manager.forgotten_password: POST /login/forgotten_password. */
static int method_forgotten_password(Call *c, json_object *params) {
        json_object *body = json_object_new_object();
        ApiCall call;
        int r;

        if (!body)
                return -ENOMEM;
        json_object_object_add(body, "email", json_object_new_string(json_str(params, "email")));
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/login/forgotten_password", .json = body,
                          .flags = API_NO_AUTH, .label = "POST /login/forgotten_password" };
        r = pass_start(c, &call, shape_sent, params);
        json_object_put(body);
        return r;
}

/* Result of reset_password. */
static json_object *shape_reset(const ApiResponse *resp, json_object *params) {
        (void) resp;
        (void) params;
        return shape_flag("reset");
}

/* manager.reset_password: POST /login/reset_password (token checked as a UUID by the schema). */
static int method_reset_password(Call *c, json_object *params) {
        json_object *body = json_object_new_object();
        static const char *const keys[] = { "email", "new_password", "new_password_repeated", "token" };
        ApiCall call;
        int r;

        if (!body)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                json_object_object_add(body, keys[i], json_object_new_string(json_str(params, keys[i])));
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/login/reset_password", .json = body,
                          .flags = API_NO_AUTH, .label = "POST /login/reset_password" };
        r = pass_start(c, &call, shape_reset, params);
        /* the body was serialized by api_start: erase the passwords from both copies */
        erase_param(body, "new_password");
        erase_param(body, "new_password_repeated");
        erase_param(params, "new_password");
        erase_param(params, "new_password_repeated");
        json_object_put(body);
        return r;
}

/* ---- API keys ---------------------------------------------------------------------- */

typedef struct KeyOp {
        Op op;
        bool store;
} KeyOp;

/* The new key arrived: store it and switch to it, or hand it over. */
static void on_key_created(const ApiResponse *resp, const ApiError *err, void *userdata) {
        KeyOp *k = userdata;
        Core *s = k->op.core;
        bool store = k->store;
        json_object *key = NULL, *o, *msg = NULL, *plain = NULL;
        Credential *cred = NULL;
        Call *c;
        int r;

        k->op.req = NULL;
        c = op_finish(&k->op);
        if (err) {
                reply_api_error(c, err);
                return;
        }
        if (!json_object_object_get_ex(resp->json, "api_key", &key) || !json_object_is_type(key, json_type_object) ||
            !json_object_object_get_ex(key, "plaintext", &plain) || !json_object_is_type(plain, json_type_string)) {
                reply_bad_shape(c, "POST /api-keys");
                return;
        }
        o = json_object_new_object();
        if (!o) {
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        json_object_object_add(o, "api_key", json_copy(key));
        /* the server's message tells to store the plaintext: only true when it is shown */
        json_object_object_get_ex(resp->json, "message", &msg);
        json_object_object_add(o, "message", store ? NULL : json_object_get(msg));
        if (store) {
                const char *secret = json_object_get_string(plain);

                r = credential_store_api_key(s->config->state_directory, secret);
                if (r >= 0)
                        r = credential_new_api_key(secret, "state directory", &cred);
                explicit_bzero((char *) secret, strlen(secret));
                explicit_bzero((char *) resp->body, resp->body_len);
                json_object_object_del(json_object_object_get(o, "api_key"), "plaintext");
                if (r < 0) {
                        json_object_put(o);
                        call_reply_errno(c, r, "The key was created upstream but could not be stored in '%s': %m; "
                                         "revoke it with manager.revoke_api_key",
                                         s->config->state_directory);
                        return;
                }
                api_set_credential(s->api, cred);
                core_status_changed(s);
                log_ctx(LOG_NOTICE, &c->log, "Switched to a new API key, stored in the state directory.");
                json_object_object_add(o, "stored", json_object_new_boolean(true));
                json_object_object_add(o, "note", json_object_new_string(
                        "The new key is now the daemon's credential (kept with mode 0600 in its state directory); "
                        "it is not shown."));
        } else {
                json_object_object_add(o, "stored", json_object_new_boolean(false));
                json_object_object_add(o, "note", json_object_new_string(
                        "Save the plaintext key now: it is shown only once."));
        }
        call_reply(c, o);
}

/* manager.create_api_key: POST /api-keys, optionally keeping the key as the daemon's own. */
static int method_create_api_key(Call *c, json_object *params) {
        json_object *body = json_object_new_object(), *v;
        KeyOp *k;
        ApiCall call;
        int r;

        if (!body)
                return -ENOMEM;
        json_object_object_add(body, "name", json_object_new_string(json_str(params, "name")));
        json_object_object_get_ex(params, "expiration_days", &v);
        json_object_object_add(body, "expiration_days", json_object_get(v));
        k = op_new(c, sizeof(KeyOp));
        if (!k) {
                json_object_put(body);
                return -ENOMEM;
        }
        k->store = json_object_object_get_ex(params, "store", &v) && json_object_get_boolean(v);
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/api-keys", .json = body, .label = "POST /api-keys" };
        r = op_api_start(&k->op, &call, on_key_created);
        json_object_put(body);
        return r;
}

/* Result of list_api_keys: {"api_keys": [...]}. */
static json_object *shape_key_list(const ApiResponse *resp, json_object *params) {
        json_object *o;

        (void) params;
        if (!json_object_is_type(resp->json, json_type_array))
                return NULL;
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "api_keys", json_copy(resp->json));
        return o;
}

/* manager.list_api_keys: GET /api-keys. */
static int method_list_api_keys(Call *c, json_object *params) {
        ApiCall call = { .method = UPSTREAM_GET, .path = "/api-keys", .label = "GET /api-keys" };

        return pass_start(c, &call, shape_key_list, params);
}

/* Result of revoke_api_key. */
static json_object *shape_revoked(const ApiResponse *resp, json_object *params) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "revoked", json_object_new_boolean(true));
        json_object_object_add(o, "api_key_id", json_object_new_string(json_str(params, "api_key_id")));
        json_object_object_add(o, "response", resp->json ? json_copy(resp->json) : NULL);
        return o;
}

/* manager.revoke_api_key: DELETE /api-keys/{id}. */
static int method_revoke_api_key(Call *c, json_object *params) {
        _cleanup_free_ char *path = NULL, *id = api_escape(json_str(params, "api_key_id"));
        ApiCall call;

        if (!id || asprintf(&path, "/api-keys/%s", id) < 0)
                return -ENOMEM;
        call = (ApiCall){ .method = UPSTREAM_DELETE, .path = path, .label = "DELETE /api-keys/{id}" };
        return pass_start(c, &call, shape_revoked, params);
}

/* ---- paged job lists --------------------------------------------------------------- */

/* Pages of one job listing followed at most: the contract's /jobs is one answer, but a server
 * that pages it must neither make us miss jobs nor keep us asking forever. */
#define JOBS_PAGES_MAX 100

/* Reads a job list through the cache and, when the server pages it, the pages after the first
 * (fetched each time: only the first page is cached). Embedded in the Op that uses it; the
 * callback gets the Op and a JobResponseList of every page. */
typedef struct JobsPager {
        Op *op;
        cache_done_cb cb;
        char *path;            /* the first page's path */
        char *current;         /* the page being fetched */
        json_object *list;     /* {"jobs": [...]} of the pages so far */
        unsigned pages;
        double age_s;
        bool stale;
} JobsPager;

/* Releases a pager's members (from the Op's cleanup). */
static void pager_done(JobsPager *p) {
        free(p->path);
        free(p->current);
        json_object_put(p->list);
        p->path = p->current = NULL;
        p->list = NULL;
}

/* Hands the result to the Op's callback. */
static void pager_deliver(JobsPager *p, json_object *value, const ApiError *err) {
        /* the callback finishes the Op, which frees the pager: keep the merged list alive */
        json_object *own = value && value == p->list ? TAKE_PTR(p->list) : NULL;

        p->cb(value, p->age_s, p->stale, err, p->op);
        json_object_put(own);
}

/* Fails the read with a bad-answer error naming the page. */
static void pager_fail(JobsPager *p, const char *why) {
        ApiError e = { .retry_after_ms = -1 };

        api_error_setf(&e, RPC_UPSTREAM_BAD_RESPONSE, "GET %s: %s", p->current ?: p->path, why);
        pager_deliver(p, NULL, &e);
        api_error_done(&e);
}

static void on_jobs_page(const ApiResponse *resp, const ApiError *err, void *userdata);

/* Merges one page and asks for the next, or delivers. */
static void pager_take(JobsPager *p, json_object *page) {
        _cleanup_free_ char *next = NULL;
        json_object *jobs = manager_jobs_array(page), *all;
        ApiCall call;
        int r;

        if (!jobs) {
                pager_fail(p, "the answer is not a job list");
                return;
        }
        if (!p->list) {
                p->list = json_object_new_object();
                if (!p->list || json_object_object_add(p->list, "jobs", json_object_new_array()) < 0) {
                        call_reply_errno(op_finish(p->op), -ENOMEM, NULL);
                        return;
                }
        }
        all = json_object_object_get(p->list, "jobs");
        for (size_t i = 0; i < json_array_len(jobs); i++)
                json_object_array_add(all, json_object_get(json_object_array_get_idx(jobs, i)));
        p->pages++;
        r = manager_next_page(page, p->path, p->op->core->config->api_url, &next);
        if (r == -ENOMEM) {
                call_reply_errno(op_finish(p->op), r, NULL);
                return;
        }
        if (r == -EBADMSG) {
                pager_fail(p, "the next page is not under the API root");
                return;
        }
        /* an empty page ends the listing too: a server that keeps pointing on must not loop */
        if (r == 0 || json_array_len(jobs) == 0 || streq_ptr(next, p->current) || streq(next, p->path)) {
                pager_deliver(p, p->list, NULL);
                return;
        }
        if (p->pages >= JOBS_PAGES_MAX) {
                pager_fail(p, "the job list has more than 100 pages");
                return;
        }
        free(p->current);
        p->current = TAKE_PTR(next);
        call = (ApiCall){ .method = UPSTREAM_GET, .path = p->current, .label = "GET /jobs (page)" };
        r = api_start(p->op->core->api, &call, on_jobs_page, p, &p->op->req);
        if (r < 0)
                call_reply_errno(op_finish(p->op), r, NULL);
}

/* A page after the first arrived. */
static void on_jobs_page(const ApiResponse *resp, const ApiError *err, void *userdata) {
        JobsPager *p = userdata;

        p->op->req = NULL;
        if (err) {
                pager_deliver(p, NULL, err);
                return;
        }
        pager_take(p, resp->json);
}

/* The first page arrived (maybe from the cache). */
static void on_jobs_first_page(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        JobsPager *p = userdata;
        _cleanup_free_ char *next = NULL;

        p->op->waiter = NULL;
        p->age_s = age_s;
        p->stale = stale;
        /* the common case, one answer: passed on as is */
        if (err || manager_next_page(value, p->path, p->op->core->config->api_url, &next) == 0) {
                pager_deliver(p, value, err);
                return;
        }
        pager_take(p, value);
}

/* Starts a paged read for op; on failure to start, undoes the Op. */
static int jobs_get(Op *op, JobsPager *p, const CacheRead *read, cache_done_cb cb) {
        int r;

        p->op = op;
        p->cb = cb;
        p->path = strdup(read->call.path);
        if (!p->path)
                return op_start_failed(op, -ENOMEM);
        r = cache_get(op->core->cache, read, on_jobs_first_page, p, &op->waiter);
        return r < 0 ? op_start_failed(op, r) : 0;
}

/* ---- jobs -------------------------------------------------------------------------- */

typedef struct JobsOp {
        Op op;
        JobsPager pager;
        json_object *params;   /* the filters, checked again on the answer */
} JobsOp;

/* Releases a JobsOp's members. */
static void jobs_op_cleanup(Op *op) {
        JobsOp *k = (JobsOp *) op;

        pager_done(&k->pager);
        json_object_put(k->params);
}

/* The job list arrived for get_jobs. */
static void on_jobs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        JobsOp *k = userdata;
        json_object *jobs, *o, *filtered, *params = json_object_get(k->params), *limit = NULL;
        Call *c = op_finish(&k->op);

        if (err) {
                json_object_put(params);
                reply_api_error(c, err);
                return;
        }
        jobs = manager_jobs_array(value);
        if (!jobs) {
                json_object_put(params);
                reply_bad_shape(c, "GET /jobs");
                return;
        }
        /* never trust that the server filtered: older ones ignore filters they do not know */
        json_object_object_get_ex(params, "limit", &limit);
        filtered = manager_filter_jobs(jobs, json_str(params, "set_name"), json_str(params, "display_name"),
                                       json_object_object_get(params, "kind"),
                                       limit ? json_object_get_int64(limit) : -1);
        json_object_put(params);
        o = json_object_new_object();
        if (!o || !filtered) {
                json_object_put(o);
                json_object_put(filtered);
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        json_object_object_add(o, "jobs", filtered);
        mark_freshness(o, age_s, stale);
        call_reply(c, o);
}

/* Appends "&name=value" (value escaped) to a query being built. */
static int query_add(char **q, const char *name, const char *value) {
        _cleanup_free_ char *v = api_escape(value), *old = *q;
        char *n = NULL;

        if (!v || asprintf(&n, "%s%s%s=%s", old ? old : "", old ? "&" : "?", name, v) < 0) {
                *q = TAKE_PTR(old);
                return -ENOMEM;
        }
        *q = n;
        return 0;
}

/* manager.get_jobs: GET /jobs with the contract's filters, through the cache. */
static int method_get_jobs(Call *c, json_object *params) {
        _cleanup_free_ char *q = NULL, *path = NULL, *key = NULL;
        json_object *v;
        const char *dn = json_str(params, "display_name"), *sn = json_str(params, "set_name");
        JobsOp *k;
        CacheRead read;
        int r = 0;

        if (dn && sn)
                return call_reply_errorf(c, RPC_INVALID_PARAMS, NULL,
                                         "Invalid params: display_name and set_name are mutually exclusive");
        if (json_object_object_get_ex(params, "kind", &v))
                for (size_t i = 0; r >= 0 && i < json_array_len(v); i++)
                        r = query_add(&q, "kind", json_object_get_string(json_object_array_get_idx(v, i)));
        if (r >= 0 && dn)
                r = query_add(&q, "display_name", dn);
        if (r >= 0 && sn)
                r = query_add(&q, "set_name", sn);
        if (r >= 0 && json_object_object_get_ex(params, "limit", &v))
                r = query_add(&q, "limit", json_object_get_string(v));
        if (r >= 0 && json_object_object_get_ex(params, "include_deleted", &v))
                r = query_add(&q, "include_deleted", json_object_get_boolean(v) ? "true" : "false");
        if (r < 0 || asprintf(&path, "/jobs%s", q ?: "") < 0 || asprintf(&key, "GET %s", path) < 0)
                return -ENOMEM;
        k = op_new(c, sizeof(JobsOp));
        if (!k)
                return -ENOMEM;
        k->op.cleanup = jobs_op_cleanup;
        k->params = json_object_get(params);
        read = op_read_of(c->core, key, path, "GET /jobs", c->core->config->jobs_ttl_s);
        return jobs_get(&k->op, &k->pager, &read, on_jobs);
}

/* One job arrived for get_job. */
static void on_job(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        Call *c = op_finish(userdata);
        json_object *o;

        if (err) {
                reply_api_error(c, err);
                return;
        }
        if (!json_object_is_type(value, json_type_object)) {
                reply_bad_shape(c, "GET /jobs/{name}");
                return;
        }
        o = json_copy(value);
        if (!o) {
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        mark_freshness(o, age_s, stale);
        call_reply(c, o);
}

/* manager.get_job: GET /jobs/{name}; finished jobs are kept for good. */
static int method_get_job(Call *c, json_object *params) {
        _cleanup_free_ char *path = api_job_path(json_str(params, "name")), *key = NULL;
        Op *op;
        CacheRead read;

        if (!path || asprintf(&key, "GET %s", path) < 0)
                return -ENOMEM;
        op = op_new(c, sizeof(Op));
        if (!op)
                return -ENOMEM;
        read = op_read_of(c->core, key, path, "GET /jobs/{name}", c->core->config->jobs_ttl_s);
        read.is_final = job_done; /* a done job's status can no longer change */
        return op_cache_get(op, &read, on_job);
}

typedef struct CountOp {
        Op op;
        JobsPager pager;
        int64_t count;
} CountOp;

/* Releases a CountOp's members. */
static void count_op_cleanup(Op *op) {
        pager_done(&((CountOp *) op)->pager);
}

/* The job list arrived for get_last_jobs: the most recent `count`, newest first. */
static void on_last_jobs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        CountOp *k = userdata;
        int64_t count = k->count;
        Call *c = op_finish(&k->op);
        json_object *jobs, *sorted, *map, *o;

        if (err) {
                reply_api_error(c, err);
                return;
        }
        jobs = manager_jobs_array(value);
        if (!jobs) {
                reply_bad_shape(c, "GET /jobs");
                return;
        }
        sorted = manager_sorted_jobs(jobs);
        map = json_object_new_object();
        o = json_object_new_object();
        if (!sorted || !map || !o) {
                json_object_put(sorted);
                json_object_put(map);
                json_object_put(o);
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        for (size_t i = 0; i < json_array_len(sorted) && (int64_t) i < count; i++) {
                json_object *job = json_object_array_get_idx(sorted, i);
                const char *name = json_str(job, "name");

                if (name)
                        json_object_object_add(map, name, json_copy(job));
        }
        json_object_put(sorted);
        json_object_object_add(o, "jobs", map);
        mark_freshness(o, age_s, stale);
        call_reply(c, o);
}

/* manager.get_last_jobs: the most recent `count` jobs by creation time, name → job. */
static int method_get_last_jobs(Call *c, json_object *params) {
        CountOp *k = op_new(c, sizeof(CountOp));
        CacheRead read = read_all_jobs(c->core, false);

        if (!k)
                return -ENOMEM;
        k->op.cleanup = count_op_cleanup;
        k->count = json_object_get_int64(json_object_object_get(params, "count"));
        return jobs_get(&k->op, &k->pager, &read, on_last_jobs);
}

/* ---- get_last_results -------------------------------------------------------------- */

typedef struct ResultsOp ResultsOp;

typedef struct ResultSlot {
        ResultsOp *parent;
        CacheWaiter *waiter;
        json_object *entry;    /* {"job", "display_name", "kind", "results"|"error"} */
        bool done;
} ResultSlot;

struct ResultsOp {
        Op op;
        JobsPager pager;
        int64_t count;
        ResultSlot *slots;
        size_t n_slots, n_pending;
        double age_s;
        bool stale;
};

/* Releases the slots (cancelling their waiters). */
static void results_cleanup(Op *op) {
        ResultsOp *r = (ResultsOp *) op;

        pager_done(&r->pager);
        for (size_t i = 0; i < r->n_slots; i++) {
                cache_waiter_cancel(r->slots[i].waiter);
                json_object_put(r->slots[i].entry);
        }
        free(r->slots);
}

/* Replies once every slot is done. */
static void results_maybe_finish(ResultsOp *r) {
        json_object *list, *o;
        Call *c;

        if (r->n_pending > 0)
                return;
        list = json_object_new_array();
        o = json_object_new_object();
        for (size_t i = 0; list && i < r->n_slots; i++) {
                json_object_array_add(list, r->slots[i].entry);
                r->slots[i].entry = NULL;
        }
        if (o && list) {
                json_object_object_add(o, "results", list);
                mark_freshness(o, r->age_s, r->stale);
        } else {
                json_object_put(list);
                json_object_put(o);
                o = NULL;
        }
        c = op_finish(&r->op);
        if (!o)
                call_reply_errno(c, -ENOMEM, NULL);
        else
                call_reply(c, o);
}

/* The results of one job arrived. */
static void on_job_results(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        ResultSlot *slot = userdata;
        ResultsOp *r = slot->parent;

        (void) age_s;
        slot->waiter = NULL;
        slot->done = true;
        r->stale = r->stale || stale;
        if (err) {
                json_object *e = json_object_new_object();

                json_object_object_add(e, "code", json_object_new_int(err->code));
                json_object_object_add(e, "name", json_object_new_string(rpc_error_info(err->code)->name));
                json_object_object_add(e, "message", json_object_new_string(strna(err->message)));
                if (err->status > 0)
                        json_object_object_add(e, "status", json_object_new_int64(err->status));
                json_object_object_add(slot->entry, "error", e);
        } else
                json_object_object_add(slot->entry, "results", json_copy(value));
        r->n_pending--;
        results_maybe_finish(r);
}

/* Results of a finished job never change. */
static bool always_final(json_object *value) {
        (void) value;
        return true;
}

/* The job list arrived for get_last_results: fetch each job's results. */
static void on_last_results_jobs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        ResultsOp *r = userdata;
        json_object *jobs, *sorted;
        size_t n;

        r->op.waiter = NULL;
        if (err) {
                reply_api_error(op_finish(&r->op), err);
                return;
        }
        jobs = manager_jobs_array(value);
        if (!jobs) {
                reply_bad_shape(op_finish(&r->op), "GET /jobs");
                return;
        }
        r->age_s = age_s;
        r->stale = stale;
        sorted = manager_sorted_jobs(jobs);
        n = sorted ? MIN(json_array_len(sorted), (size_t) r->count) : 0;
        r->slots = calloc(n ? n : 1, sizeof(ResultSlot));
        if (!sorted || !r->slots) {
                json_object_put(sorted);
                call_reply_errno(op_finish(&r->op), -ENOMEM, NULL);
                return;
        }
        r->n_slots = n;
        r->n_pending = 1; /* held until every request is started */
        for (size_t i = 0; i < n; i++) {
                json_object *job = json_object_array_get_idx(sorted, i);
                const char *name = json_str(job, "name");
                _cleanup_free_ char *esc = api_escape(name ?: ""), *path = NULL, *key = NULL;
                ResultSlot *slot = &r->slots[i];
                CacheRead read;
                int q;

                slot->parent = r;
                slot->entry = json_object_new_object();
                json_object_object_add(slot->entry, "job", json_object_new_string(name ?: ""));
                json_object_object_add(slot->entry, "display_name",
                                       json_object_get(json_object_object_get(job, "display_name")));
                json_object_object_add(slot->entry, "kind", json_object_get(json_object_object_get(job, "kind")));
                json_object_object_add(slot->entry, "status", json_object_get(json_object_object_get(job, "status")));
                if (!esc || asprintf(&path, "/results/%s", esc) < 0 || asprintf(&key, "GET %s", path) < 0) {
                        slot->done = true;
                        json_object_object_add(slot->entry, "error", json_object_new_string("out of memory"));
                        continue;
                }
                r->n_pending++;
                read = op_read_of(r->op.core, key, path, "GET /results/{job}", 0);
                read.is_final = always_final;
                q = cache_get(r->op.core->cache, &read, on_job_results, slot, &slot->waiter);
                if (q < 0) {
                        r->n_pending--;
                        slot->done = true;
                        json_object_object_add(slot->entry, "error", json_object_new_string(strerror(-q)));
                }
        }
        json_object_put(sorted);
        r->n_pending--;
        results_maybe_finish(r);
}

/* manager.get_last_results: the results of the most recent `count` jobs. */
static int method_get_last_results(Call *c, json_object *params) {
        ResultsOp *r = op_new(c, sizeof(ResultsOp));
        CacheRead read = read_all_jobs(c->core, false);

        if (!r)
                return -ENOMEM;
        r->op.cleanup = results_cleanup;
        r->count = json_object_get_int64(json_object_object_get(params, "count"));
        return jobs_get(&r->op, &r->pager, &read, on_last_results_jobs);
}

/* ---- runs by name ------------------------------------------------------------------ */

typedef struct NameOp {
        Op op;
        JobsPager pager;
        char *name;
} NameOp;

/* Releases the name and the pages. */
static void name_cleanup(Op *op) {
        free(((NameOp *) op)->name);
        pager_done(&((NameOp *) op)->pager);
}

/* The job list arrived for find_ids_by_name. */
static void on_find_runs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        NameOp *k = userdata;
        _cleanup_free_ char *name = TAKE_PTR(k->name);
        Call *c = op_finish(&k->op);
        json_object *jobs, *runs, *o;

        if (err) {
                reply_api_error(c, err);
                return;
        }
        jobs = manager_jobs_array(value);
        if (!jobs) {
                reply_bad_shape(c, "GET /jobs");
                return;
        }
        runs = manager_find_runs(jobs, name);
        o = json_object_new_object();
        if (!runs || !o) {
                json_object_put(runs);
                json_object_put(o);
                call_reply_errno(c, -ENOMEM, NULL);
                return;
        }
        json_object_object_add(o, "runs", runs);
        mark_freshness(o, age_s, stale);
        call_reply(c, o);
}

/* manager.find_ids_by_name: runs with that display name, newest first. */
static int method_find_ids_by_name(Call *c, json_object *params) {
        NameOp *k = op_new(c, sizeof(NameOp));
        CacheRead read = read_all_jobs(c->core, false);

        if (!k)
                return -ENOMEM;
        k->op.cleanup = name_cleanup;
        k->name = strdup(json_str(params, "set_name"));
        if (!k->name)
                return op_start_failed(&k->op, -ENOMEM);
        return jobs_get(&k->op, &k->pager, &read, on_find_runs);
}

/* ---- who may act on a set ------------------------------------------------------------ */

/* What the caller may do with a set. */
SetAccess set_access(const Call *c, const char *set_name) {
        const Runners *rs = c->core->runners;

        if (!rs || !rs->sets || !set_name)
                return SET_UNOWNED;
        return set_owners_check(rs->sets, set_name, c->peer->uid, call_role(c) >= ROLE_ADMIN);
}

/* error.data of a refusal by the set rule: who asked, the rule, and `what` (taken) as member `key`. */
static json_object *set_refusal_data(const Call *c, const char *key, json_object *what) {
        json_object *data = json_object_new_object();

        if (data) {
                json_object_object_add(data, "required_role", json_object_new_string("admin"));
                json_object_object_add(data, "role", json_object_new_string(role_to_string(call_role(c))));
                json_object_object_add(data, "uid", json_object_new_int64(c->peer->uid));
                json_object_object_add(data, "rule", json_object_new_string("set_owner_or_admin"));
                json_object_object_add(data, key, json_object_get(what));
        }
        json_object_put(what);
        return data;
}

/* Finishes the call with permission_denied for another user's set. */
int set_refused_reply(Call *c, const char *set_name, const char *what) {
        json_object *data = set_refusal_data(c, "set_name", json_object_new_string(set_name));

        log_ctx(LOG_NOTICE, &c->log, "Denied uid %u to %s: set %s belongs to another user.", (unsigned) c->peer->uid,
                what, set_name);
        return call_reply_errorf(c, RPC_PERMISSION_DENIED, data,
                                 "Set %s belongs to another user of this daemon: only its owner or an admin may %s",
                                 set_name, what);
}

/* ---- deletion ---------------------------------------------------------------------- */

typedef struct DeleteOp {
        Op op;
        char **names;
        size_t n_names, next;
        json_object *deleted;    /* [JobResponse] */
        json_object *failed;     /* [name] */
        json_object *errors;     /* [{"job_names", "error"}] */
        size_t batches;
} DeleteOp;

/* Releases the deletion state. */
static void delete_cleanup(Op *op) {
        DeleteOp *d = (DeleteOp *) op;

        for (size_t i = 0; i < d->n_names; i++)
                free(d->names[i]);
        free(d->names);
        json_object_put(d->deleted);
        json_object_put(d->failed);
        json_object_put(d->errors);
}

static void delete_next_batch(DeleteOp *d);

/* One bulk-delete answer arrived: merge it, go on with the next batch. */
static void on_bulk_deleted(const ApiResponse *resp, const ApiError *err, void *userdata) {
        DeleteOp *d = userdata;
        size_t start = d->next, end = MIN(d->next + BULK_DELETE_MAX, d->n_names);
        json_object *dj, *fj;

        d->op.req = NULL;
        d->batches++;
        if (err || !json_object_object_get_ex(resp->json, "deleted_jobs", &dj) ||
            !json_object_object_get_ex(resp->json, "failed_jobs", &fj) ||
            !json_object_is_type(dj, json_type_array) || !json_object_is_type(fj, json_type_array)) {
                /* the batch failed as a whole: its names are failed, with the reason */
                json_object *e = json_object_new_object(), *names = json_object_new_array();

                for (size_t i = start; i < end; i++) {
                        json_object_array_add(d->failed, json_object_new_string(d->names[i]));
                        json_object_array_add(names, json_object_new_string(d->names[i]));
                }
                json_object_object_add(e, "job_names", names);
                json_object_object_add(e, "code", json_object_new_int(err ? err->code : RPC_UPSTREAM_BAD_RESPONSE));
                json_object_object_add(e, "name", json_object_new_string(
                                               rpc_error_info(err ? err->code : RPC_UPSTREAM_BAD_RESPONSE)->name));
                json_object_object_add(e, "message", json_object_new_string(
                                               err ? strna(err->message) : "unexpected answer to POST /jobs/bulk-delete"));
                if (err && err->status > 0)
                        json_object_object_add(e, "status", json_object_new_int64(err->status));
                json_object_array_add(d->errors, e);
                log_ctx(LOG_WARNING, &d->op.call->log, "Bulk deletion of %zu job(s) failed: %s", end - start,
                        err ? strna(err->message) : "unexpected answer");
        } else {
                for (size_t i = 0; i < json_array_len(dj); i++)
                        json_object_array_add(d->deleted, json_copy(json_object_array_get_idx(dj, i)));
                for (size_t i = 0; i < json_array_len(fj); i++)
                        json_object_array_add(d->failed, json_copy(json_object_array_get_idx(fj, i)));
        }
        d->next = end;
        delete_next_batch(d);
}

/* Sends the next batch, or replies when all were sent. */
static void delete_next_batch(DeleteOp *d) {
        Core *s = d->op.core;
        json_object *body, *names, *o;
        ApiCall call;
        Call *c;
        int r;

        if (d->next >= d->n_names) {
                cache_invalidate(s->cache, "GET /jobs");
                cache_invalidate(s->cache, "GET /results/");
                o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "deleted_jobs", TAKE_PTR(d->deleted));
                        json_object_object_add(o, "failed_jobs", TAKE_PTR(d->failed));
                        json_object_object_add(o, "errors", TAKE_PTR(d->errors));
                        json_object_object_add(o, "batches", json_object_new_int64((int64_t) d->batches));
                }
                c = op_finish(&d->op);
                if (!o)
                        call_reply_errno(c, -ENOMEM, NULL);
                else
                        call_reply(c, o);
                return;
        }
        body = json_object_new_object();
        names = json_object_new_array();
        for (size_t i = d->next; names && i < MIN(d->next + BULK_DELETE_MAX, d->n_names); i++)
                json_object_array_add(names, json_object_new_string(d->names[i]));
        json_object_object_add(body, "job_names", names);
        call = (ApiCall){ .method = UPSTREAM_POST, .path = "/jobs/bulk-delete", .json = body,
                          .label = "POST /jobs/bulk-delete" };
        r = api_start(s->api, &call, on_bulk_deleted, d, &d->op.req);
        json_object_put(body);
        if (r < 0) {
                c = op_finish(&d->op);
                call_reply_errno(c, r, "Cannot send the deletion: %m");
        }
}

/* Starts deleting `names` (borrowed strings) for the call, in batches of 100. */
static int delete_start(Call *c, DeleteOp *d, json_object *names_array) {
        size_t n = json_array_len(names_array);

        if (!d->op.cleanup)
                d->op.cleanup = delete_cleanup; /* keep a wider cleanup (delete_job, delete_job_by_id) */
        d->names = calloc(n ? n : 1, sizeof(char *));
        d->deleted = json_object_new_array();
        d->failed = json_object_new_array();
        d->errors = json_object_new_array();
        if (!d->names || !d->deleted || !d->failed || !d->errors)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                d->names[i] = strdup(json_object_get_string(json_object_array_get_idx(names_array, i)));
                if (!d->names[i])
                        return -ENOMEM;
                d->n_names++;
        }
        (void) c;
        delete_next_batch(d);
        return 0;
}

/* A deletion that looks the jobs up first: those of a run (delete_job, delete_job_by_id),
 * or the owners of named jobs (delete_jobs). */
typedef struct DeleteByOp {
        DeleteOp del;
        JobsPager pager;
        char *key;            /* display name or set id */
        json_object *names;   /* the job names asked for (delete_jobs) */
} DeleteByOp;

/* Releases the lookup key, the names, the pages and the deletion state. */
static void delete_by_cleanup(Op *op) {
        free(((DeleteByOp *) op)->key);
        json_object_put(((DeleteByOp *) op)->names);
        pager_done(&((DeleteByOp *) op)->pager);
        delete_cleanup(op);
}

static void delete_names(Call *c, DeleteOp *d, json_object *names);

/* The fresh job list arrived for a delete_jobs whose names may be other users' jobs: any job
 * of another user's set refuses the whole call (nothing is deleted), else all go. A name the
 * list does not show is sent: the server reports it as failed. */
static void on_delete_jobs_owners(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        DeleteByOp *k = userdata;
        Call *c = k->del.op.call;
        json_object *jobs, *sets, *refused, *data;
        size_t n;

        (void) age_s;
        k->del.op.waiter = NULL;
        if (err || stale) {
                if (err)
                        reply_api_error(op_finish(&k->del.op), err);
                else
                        call_reply_errorf(op_finish(&k->del.op), RPC_UPSTREAM_UNREACHABLE, NULL,
                                          "The Avatar server is unreachable; nothing was deleted");
                return;
        }
        jobs = manager_jobs_array(value);
        sets = json_object_new_object();
        refused = json_object_new_array();
        if (!jobs || !sets || !refused) {
                json_object_put(sets);
                json_object_put(refused);
                if (!jobs)
                        reply_bad_shape(op_finish(&k->del.op), "GET /jobs");
                else
                        call_reply_errno(op_finish(&k->del.op), -ENOMEM, NULL);
                return;
        }
        for (size_t i = 0; i < json_array_len(jobs); i++) {
                json_object *job = json_object_array_get_idx(jobs, i);

                if (json_str(job, "name") && json_str(job, "set_name"))
                        json_object_object_add(sets, json_str(job, "name"),
                                               json_object_new_string(json_str(job, "set_name")));
        }
        for (size_t i = 0; i < json_array_len(k->names); i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(k->names, i));
                json_object *set;

                if (json_object_object_get_ex(sets, name, &set) &&
                    set_access(c, json_object_get_string(set)) == SET_REFUSED)
                        json_object_array_add(refused, json_object_new_string(name));
        }
        json_object_put(sets);
        n = json_array_len(refused);
        if (n == 0) {
                json_object_put(refused);
                delete_names(c, &k->del, json_object_get(k->names));
                return;
        }
        data = set_refusal_data(c, "job_names", refused);
        log_ctx(LOG_NOTICE, &c->log, "Denied uid %u to delete %zu job(s) of another user's sets.",
                (unsigned) c->peer->uid, n);
        call_reply_errorf(op_finish(&k->del.op), RPC_PERMISSION_DENIED, data,
                          "%zu of the jobs named belong to sets of another user of this daemon: only their owner or "
                          "an admin may delete them; nothing was deleted", n);
}

/* manager.delete_jobs: bulk deletion in batches of 100, results merged. A caller who is not
 * an admin may not delete the jobs of another user's sets: when other users own sets, the
 * names are looked up in a fresh job list first. */
static int method_delete_jobs(Call *c, json_object *params) {
        json_object *names = json_object_object_get(params, "job_names");
        const Runners *rs = c->core->runners;
        DeleteOp *d;
        int r;

        if (call_role(c) < ROLE_ADMIN && rs && rs->sets && set_owners_others(rs->sets, c->peer->uid)) {
                DeleteByOp *k = op_new(c, sizeof(DeleteByOp));
                CacheRead read = read_all_jobs(c->core, true);

                if (!k)
                        return -ENOMEM;
                k->del.op.cleanup = delete_by_cleanup;
                k->names = json_object_get(names);
                return jobs_get(&k->del.op, &k->pager, &read, on_delete_jobs_owners);
        }
        d = op_new(c, sizeof(DeleteOp));
        if (!d)
                return -ENOMEM;
        r = delete_start(c, d, names);
        return r < 0 ? op_start_failed(&d->op, r) : 0;
}

/* Collects the names of a run's jobs into a new array. */
static json_object *job_names(json_object *jobs) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < json_array_len(jobs); i++) {
                const char *n = json_str(json_object_array_get_idx(jobs, i), "name");

                if (n)
                        json_object_array_add(a, json_object_new_string(n));
        }
        return a;
}

/* Deletes the jobs named in `names` (taken; NULL means out of memory) for a lookup that found
 * them; any failure to start finishes the call. */
static void delete_names(Call *c, DeleteOp *d, json_object *names) {
        int r;

        if (!names) {
                call_reply_errno(op_finish(&d->op), -ENOMEM, NULL);
                return;
        }
        r = delete_start(c, d, names);
        json_object_put(names);
        if (r < 0)
                call_reply_errno(op_finish(&d->op), r, NULL);
}

/* The fresh job list arrived for delete_job: exactly one run, or an explanation. */
static void on_delete_job_runs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        DeleteByOp *k = userdata;
        _cleanup_free_ char *key = TAKE_PTR(k->key); /* op_finish() frees k: keep the name */
        json_object *jobs, *runs, *names;
        Call *c = k->del.op.call;
        size_t n;

        (void) age_s;
        k->del.op.waiter = NULL;
        if (err) {
                reply_api_error(op_finish(&k->del.op), err);
                return;
        }
        if (stale) {
                /* never delete from a stale picture */
                call_reply_errorf(op_finish(&k->del.op), RPC_UPSTREAM_UNREACHABLE, NULL,
                                  "The Avatar server is unreachable; nothing was deleted");
                return;
        }
        jobs = manager_jobs_array(value);
        runs = jobs ? manager_find_runs(jobs, key) : NULL;
        if (!runs) {
                reply_bad_shape(op_finish(&k->del.op), "GET /jobs");
                return;
        }
        n = json_array_len(runs);
        if (n == 0) {
                json_object_put(runs);
                call_reply_errorf(op_finish(&k->del.op), RPC_NOT_FOUND, NULL,
                                  "No jobs found for display name '%s'", key);
                return;
        }
        if (n > 1) {
                json_object *data = json_object_new_object(), *cands = json_object_new_array();
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);

                for (size_t i = 0; i < n; i++) {
                        json_object *run = json_object_array_get_idx(runs, i), *cand = json_object_new_object(),
                                    *callobj = json_object_new_object(), *p = json_object_new_object();
                        const char *set = json_str(run, "set_name");

                        json_object_object_add(cand, "set_name", json_object_new_string(set));
                        json_object_object_add(cand, "created_at", json_object_get(json_object_object_get(run, "created_at")));
                        json_object_object_add(cand, "jobs", json_object_new_int64(
                                                       (int64_t) json_array_len(json_object_object_get(run, "jobs"))));
                        json_object_object_add(p, "id", json_object_new_string(set));
                        json_object_object_add(callobj, "method", json_object_new_string("manager.delete_job_by_id"));
                        json_object_object_add(callobj, "params", p);
                        json_object_object_add(cand, "call", callobj);
                        json_object_array_add(cands, cand);
                        if (f)
                                fprintf(f, "\n  manager.delete_job_by_id {\"id\": \"%s\"}  (avatarctl runs delete --id %s)",
                                        set, set);
                }
                if (f)
                        fclose(f);
                json_object_object_add(data, "candidates", cands);
                json_object_put(runs);
                call_reply_errorf(op_finish(&k->del.op), RPC_AMBIGUOUS, data,
                                  "Multiple runs found for display name '%s'. Delete the desired run by id:%s",
                                  key, strna(text));
                return;
        }
        if (set_access(c, json_str(json_object_array_get_idx(runs, 0), "set_name")) == SET_REFUSED) {
                _cleanup_free_ char *set = strdup(strna(json_str(json_object_array_get_idx(runs, 0), "set_name")));

                json_object_put(runs);
                set_refused_reply(op_finish(&k->del.op), strna(set), "delete its jobs");
                return;
        }
        names = job_names(json_object_object_get(json_object_array_get_idx(runs, 0), "jobs"));
        json_object_put(runs);
        delete_names(c, &k->del, names);
}

/* manager.delete_job: delete all jobs of the one run with that display name. */
static int method_delete_job(Call *c, json_object *params) {
        DeleteByOp *k = op_new(c, sizeof(DeleteByOp));
        CacheRead read = read_all_jobs(c->core, true);

        if (!k)
                return -ENOMEM;
        k->del.op.cleanup = delete_by_cleanup;
        k->key = strdup(json_str(params, "name"));
        if (!k->key)
                return op_start_failed(&k->del.op, -ENOMEM);
        return jobs_get(&k->del.op, &k->pager, &read, on_delete_job_runs);
}

/* The run's jobs arrived for delete_job_by_id (every page). */
static void on_delete_by_id_jobs(json_object *value, double age_s, bool stale, const ApiError *err, void *userdata) {
        DeleteByOp *k = userdata;
        Call *c = k->del.op.call;
        json_object *jobs, *names, *filtered;

        (void) age_s;
        k->del.op.waiter = NULL;
        if (err) {
                reply_api_error(op_finish(&k->del.op), err);
                return;
        }
        if (stale) {
                /* never delete from a stale picture */
                call_reply_errorf(op_finish(&k->del.op), RPC_UPSTREAM_UNREACHABLE, NULL,
                                  "The Avatar server is unreachable; nothing was deleted");
                return;
        }
        jobs = manager_jobs_array(value);
        if (!jobs) {
                reply_bad_shape(op_finish(&k->del.op), "GET /jobs");
                return;
        }
        /* the server filters by set_name; filter again so a lenient server cannot widen it */
        filtered = json_object_new_array();
        for (size_t i = 0; filtered && i < json_array_len(jobs); i++) {
                json_object *job = json_object_array_get_idx(jobs, i);
                const char *set = json_str(job, "set_name");

                if (set && strcasecmp(set, k->key) == 0)
                        json_object_array_add(filtered, json_object_get(job));
        }
        names = filtered ? job_names(filtered) : NULL;
        json_object_put(filtered);
        delete_names(c, &k->del, names);
}

/* manager.delete_job_by_id: delete all jobs of a run id (another user's set is refused before
 * anything is asked upstream). */
static int method_delete_job_by_id(Call *c, json_object *params) {
        DeleteByOp *k;
        _cleanup_free_ char *path = NULL, *id = NULL, *key = NULL;
        CacheRead read;

        if (set_access(c, json_str(params, "id")) == SET_REFUSED)
                return set_refused_reply(c, json_str(params, "id"), "delete its jobs");
        k = op_new(c, sizeof(DeleteByOp));
        if (!k)
                return -ENOMEM;
        k->del.op.cleanup = delete_by_cleanup;
        k->key = strdup(json_str(params, "id"));
        id = k->key ? api_escape(k->key) : NULL;
        if (!id || asprintf(&path, "/jobs?set_name=%s", id) < 0 || asprintf(&key, "GET %s", path) < 0)
                return op_start_failed(&k->del.op, -ENOMEM);
        /* always asked fresh (force): never delete from a cached picture */
        read = op_read_of(c->core, key, path, "GET /jobs", c->core->config->jobs_ttl_s);
        read.force = true;
        return jobs_get(&k->del.op, &k->pager, &read, on_delete_by_id_jobs);
}

const MethodDef methods_manager[] = {
        { "manager.get_health", method_get_health, METHOD_NO_PARAMS },
        { "manager.verify_compatibility", method_verify_compatibility, 0 },
        { "manager.authenticate", method_authenticate, METHOD_MUTATING },
        { "manager.forgotten_password", method_forgotten_password, METHOD_MUTATING },
        { "manager.reset_password", method_reset_password, METHOD_MUTATING },
        { "manager.create_api_key", method_create_api_key, METHOD_MUTATING },
        { "manager.list_api_keys", method_list_api_keys, 0 },
        { "manager.revoke_api_key", method_revoke_api_key, METHOD_MUTATING },
        { "manager.get_jobs", method_get_jobs, 0 },
        { "manager.get_job", method_get_job, 0 },
        { "manager.get_last_jobs", method_get_last_jobs, 0 },
        { "manager.get_last_results", method_get_last_results, 0 },
        { "manager.find_ids_by_name", method_find_ids_by_name, 0 },
        { "manager.delete_job", method_delete_job, METHOD_MUTATING },
        { "manager.delete_job_by_id", method_delete_job_by_id, METHOD_MUTATING },
        { "manager.delete_jobs", method_delete_jobs, METHOD_MUTATING },
        {}
};
