/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <strings.h>

#include "sim-api.h"
#include "sim-auth.h"
#include "sim-jobs.h"
#include "sim-results.h"

/* Answers a JSON object parse of the body; 422 unless it is an object. */
static int body_object(Req *r, json_object **ret) {
        int k = req_json_body(r, ret);

        if (k < 0)
                return k;
        if (!json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                *ret = NULL;
                req_reply_422(r, "body", NULL,
                              "Input should be a valid dictionary or object to extract fields from",
                              "model_attributes_type");
                return -EINVAL;
        }
        return 0;
}

/* Reads a string field of a JSON body. Answers 422 when required and missing, or mistyped. */
static int field_string(Req *r, json_object *body, const char *field, bool required,
                        const char **ret) {
        json_object *v = NULL;

        *ret = NULL;
        if (!json_object_object_get_ex(body, field, &v) || !v) {
                if (!required)
                        return 0;
                req_reply_422(r, "body", field, "Field required", "missing");
                return -EINVAL;
        }
        if (!json_object_is_type(v, json_type_string)) {
                req_reply_422(r, "body", field, "Input should be a valid string", "string_type");
                return -EINVAL;
        }
        *ret = json_object_get_string(v);
        return 0;
}

/* Parses a boolean the way pydantic does. Returns 0/1, or -EINVAL. */
static int parse_bool(const char *s) {
        static const char *const yes[] = { "true", "1", "yes", "on", "t", "y" };
        static const char *const no[] = { "false", "0", "no", "off", "f", "n" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

/* Parses a non-negative decimal integer. */
static int parse_uint(const char *s, unsigned long *ret) {
        char *end;
        unsigned long v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* GET / and GET /api. */
static void on_root(Req *r) {
        req_reply_message(r, 200, "avatar-sim");
}

/* GET /api/health and /api/health/db. */
static void on_health(Req *r) {
        req_reply_message(r, 200, "ok");
}

/* GET /api/openapi.json: a minimal document. */
static void on_openapi(Req *r) {
        json_object *o = json_object_new_object(), *info = json_object_new_object();

        if (o && info) {
                json_object_object_add(o, "openapi", json_object_new_string("3.1.0"));
                json_object_object_add(info, "title", json_object_new_string("avatar-sim"));
                json_object_object_add(info, "version", json_object_new_string("3.6.0"));
                json_object_object_add(o, "info", info);
                info = NULL;
                json_object_object_add(o, "paths", json_object_new_object());
        }
        json_object_put(info);
        req_reply_json(r, 200, o);
}

static bool is_old(const Req *r) {
        return r->sim->cfg.generation == SIM_GENERATION_OLD;
}

/* The JobResponse of the generation simulated. */
static json_object *job_json(Req *r, const Job *j) {
        return job_to_json_gen(j, r->sim->cfg.generation);
}

/*
 * Compares two dotted versions by their numeric components, missing ones being 0 ("1.20" is
 * "1.20.0"). Anything but digits and dots makes them different.
 */
static bool version_equal(const char *a, size_t a_len, const char *b) {
        const char *ae = a + a_len, *be = b + strlen(b);

        while (a < ae || b < be) {
                unsigned long x = 0, y = 0;

                for (; a < ae && *a != '.'; a++) {
                        if (*a < '0' || *a > '9' || x > 1000000)
                                return false;
                        x = x * 10 + (unsigned long) (*a - '0');
                }
                for (; b < be && *b != '.'; b++) {
                        if (*b < '0' || *b > '9' || y > 1000000)
                                return false;
                        y = y * 10 + (unsigned long) (*b - '0');
                }
                if (x != y)
                        return false;
                if (a < ae)
                        a++;
                if (b < be)
                        b++;
        }
        return true;
}

/*
 * Whether an old-generation server knows the client of this User-Agent: it must lead with
 * "avatar-python/<version>" (what the published client sends), the version one of the known
 * releases, followed by the end or a space (more products may follow, as RFC 9110 allows).
 */
static bool user_agent_known(const Sim *sim, const char *ua) {
        static const char *const defaults[] = SIM_DEFAULT_KNOWN_CLIENTS;
        const char *v = ua ? startswith(ua, "avatar-python/") : NULL;
        size_t n;

        if (!v)
                return false;
        n = strcspn(v, " \t");
        if (n == 0)
                return false;
        if (sim->cfg.n_known_clients > 0) {
                for (size_t i = 0; i < sim->cfg.n_known_clients; i++)
                        if (version_equal(v, n, sim->cfg.known_clients[i]))
                                return true;
                return false;
        }
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                if (version_equal(v, n, defaults[i]))
                        return true;
        return false;
}

/* GET /api/check_client. */
static void on_check_client(Req *r) {
        const char *ua = req_header(r, "User-Agent");
        json_object *o = json_object_new_object();
        Compat *c = &r->sim->compat;

        free(r->sim->last_check_client_user_agent);
        r->sim->last_check_client_user_agent = strdup_or_null(ua);
        if (o && is_old(r) && !user_agent_known(r->sim, ua)) {
                /* an old server keys its compatibility mapping on the User-Agent alone */
                json_object_object_add(o, "message",
                                       json_object_new_string("Unknown client version"));
                json_object_object_add(o, "most_recent_compatible_client",
                                       json_string_or_null(c->recent));
                json_object_object_add(o, "status", json_object_new_string("unknown"));
        } else if (o) {
                json_object_object_add(o, "message", json_object_new_string(c->message));
                json_object_object_add(o, "most_recent_compatible_client",
                                       json_string_or_null(c->recent));
                json_object_object_add(o, "status", json_object_new_string(c->status));
        }
        req_reply_json(r, 200, o);
}

/* Routes answered 401 because authentication failed. */
static void on_unauthenticated(Req *r) {
        req_add_header(r, "WWW-Authenticate", "Bearer");
        if (r->auth_error == -EKEYEXPIRED)
                req_reply_detail_message(r, 401, "Credentials expired");
        else
                req_reply_detail(r, 401, "Not authenticated");
}

/* Unknown paths. */
static void on_not_found(Req *r) {
        req_reply_detail(r, 404, "Not Found");
}

/* Known paths, wrong method. */
static void on_method_not_allowed(Req *r) {
        req_reply_detail(r, 405, "Method Not Allowed");
}

/* POST /api/login: OAuth2 password form. */
static void on_login(Req *r) {
        QueryParam *form = NULL;
        size_t n = 0, len;
        const char *body = req_body_str(r, &len), *user, *password, *grant;
        Token *t;
        User *u;

        if (!body || query_parse(body, true, &form, &n) < 0) {
                req_reply_422(r, "body", NULL, "Invalid form data", "value_error");
                return;
        }
        user = query_get(form, n, "username");
        password = query_get(form, n, "password");
        grant = query_get(form, n, "grant_type");
        if (!user)
                req_reply_422(r, "body", "username", "Field required", "missing");
        else if (!password)
                req_reply_422(r, "body", "password", "Field required", "missing");
        else if (grant && !streq(grant, "password"))
                req_reply_422(r, "body", "grant_type", "String should match pattern '^password$'",
                              "string_pattern_mismatch");
        else if (!(u = auth_login(r->sim, user, password)))
                req_reply_detail_message(r, 401, "Incorrect username or password");
        else if (token_issue(r->sim, u, &t) < 0)
                req_reply_message(r, 500, "Cannot issue a token");
        else {
                r->auth = "password";
                req_reply_json(r, 200, token_to_json(t));
        }
        query_free(form, n);
}

/* POST (MID) and GET (OLD) /api/refresh?token=. */
static void on_refresh(Req *r) {
        const char *token = req_query(r, "token");
        Token *t;

        if (!token) {
                req_reply_422(r, "query", "token", "Field required", "missing");
                return;
        }
        if (token_refresh(r->sim, token, &t) < 0) {
                req_reply_detail_message(r, 401, "Invalid refresh token");
                return;
        }
        req_reply_json(r, 200, token_to_json(t));
}

/* POST /api/login/forgotten_password {email}. */
static void on_forgotten_password(Req *r) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *email;

        if (body_object(r, &body) < 0 || field_string(r, body, "email", true, &email) < 0)
                return;
        req_reply_message(r, 200, "If an account exists for this email, a reset link was sent");
}

/* POST /api/login/reset_password {email, new_password, new_password_repeated, token}. */
static void on_reset_password(Req *r) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *email, *pw, *pw2, *token;
        User *u;
        char *copy;

        if (body_object(r, &body) < 0 || field_string(r, body, "email", true, &email) < 0 ||
            field_string(r, body, "new_password", true, &pw) < 0 ||
            field_string(r, body, "new_password_repeated", true, &pw2) < 0 ||
            field_string(r, body, "token", true, &token) < 0)
                return;
        if (!uuid_is_valid(token)) {
                req_reply_422(r, "body", "token", "Input should be a valid UUID", "uuid_parsing");
                return;
        }
        if (!streq(pw, pw2)) {
                req_reply_422(r, "body", "new_password_repeated", "Passwords do not match",
                              "value_error");
                return;
        }
        /* The simulator cannot check the emailed token: any UUID resets a known user. */
        u = user_find_by_email(r->sim, email);
        if (u && u->username && (copy = strdup(pw))) {
                erase_and_free(u->password);
                u->password = copy;
        }
        req_reply_message(r, 200, "Password reset");
}

/* POST /api/logout. */
static void on_logout(Req *r) {
        req_reply_message(r, 200, "Logged out");
}

/* GET /api/users/me. */
static void on_users_me(Req *r) {
        req_reply_json(r, 200, user_to_json(r->user, true));
}

/* GET /api/users?email=. */
static void on_users(Req *r) {
        const char *email = req_query(r, "email");
        json_object *a = json_object_new_array();

        for (User *u = r->sim->users; a && u; u = u->next)
                if (!email || strcasecmp(email, u->email) == 0)
                        json_object_array_add(a, user_to_json(u, false));
        req_reply_json(r, 200, a);
}

/* GET /api/users/{id}. */
static void on_user(Req *r) {
        User *u = user_find_by_id(r->sim, r->segs[2]);

        if (!u) {
                req_reply_message(r, 404, "User %s not found", r->segs[2]);
                return;
        }
        req_reply_json(r, 200, user_to_json(u, false));
}

/* GET /api/users/credits_info. */
static void on_credits_info(Req *r) {
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "credits", NULL);
                json_object_object_add(o, "is_credit_enabled", json_object_new_boolean(false));
        }
        req_reply_json(r, 200, o);
}

/* GET /api/users/features_info. */
static void on_features_info(Req *r) {
        static const char *const scopes[] = {
                "avatar_parameters", "single_table",       "multi_table",
                "time_series",       "report",             "geolocalization",
                "privacy_assessment", "differential_privacy", "data_augmentation",
        };
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; a && i < ELEMENTSOF(scopes); i++)
                json_object_array_add(a, json_object_new_string(scopes[i]));
        if (o && a) {
                json_object_object_add(o, "feature_scopes", a);
                a = NULL;
        }
        json_object_put(a);
        req_reply_json(r, 200, o);
}

/* GET /api/event-logs. */
static void on_event_logs(Req *r) {
        req_reply_json(r, 200, json_object_new_array());
}

/* GET /api/api-keys. */
static void on_api_keys_list(Req *r) {
        json_object *a = json_object_new_array();

        for (ApiKey *k = r->sim->keys; a && k; k = k->next)
                if (k->owner == r->user)
                        json_object_array_add(a, apikey_to_json(k, false));
        req_reply_json(r, 200, a);
}

/* POST /api/api-keys {name, expiration_days}. */
static void on_api_keys_create(Req *r) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *days_v = NULL, *o;
        const char *name;
        ApiKey *k;
        int64_t days;
        int e;

        if (body_object(r, &body) < 0 || field_string(r, body, "name", true, &name) < 0)
                return;
        if (strlen(name) < 1) {
                req_reply_422(r, "body", "name", "String should have at least 1 character",
                              "string_too_short");
                return;
        }
        if (strlen(name) > 255) {
                req_reply_422(r, "body", "name", "String should have at most 255 characters",
                              "string_too_long");
                return;
        }
        if (!json_object_object_get_ex(body, "expiration_days", &days_v) || !days_v) {
                req_reply_422(r, "body", "expiration_days", "Field required", "missing");
                return;
        }
        errno = 0;
        days = json_object_is_type(days_v, json_type_int) ? json_object_get_int64(days_v) : -1;
        if (days != 30 && days != 60 && days != 120 && days != 365 && days != 3650) {
                req_reply_422(r, "body", "expiration_days",
                              "Input should be 30, 60, 120, 365 or 3650", "enum");
                return;
        }
        e = apikey_create(r->sim, r->user, name, (int) days, &k);
        if (e == -E2BIG) {
                req_reply_message(r, 503, "avatar-sim: too many API keys");
                return;
        }
        if (e < 0) {
                req_reply_message(r, 500, "Cannot create the API key");
                return;
        }
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "api_key", apikey_to_json(k, true));
                json_object_object_add(o, "message",
                                       json_object_new_string("API key created. Store the "
                                                              "plaintext now: it is not shown "
                                                              "again."));
        }
        req_reply_json(r, 200, o);
}

/* Looks up the API key named by the path; answers 422/404 itself when it cannot. */
static ApiKey *api_key_of_path(Req *r) {
        const char *id = r->segs[2];
        ApiKey *k;

        if (!uuid_is_valid(id)) {
                req_reply_422(r, "path", "api_key_id", "Input should be a valid UUID",
                              "uuid_parsing");
                return NULL;
        }
        k = apikey_find(r->sim, r->user, id);
        if (!k)
                req_reply_message(r, 404, "API key %s not found", id);
        return k;
}

/* GET /api/api-keys/{id}. */
static void on_api_key_get(Req *r) {
        ApiKey *k = api_key_of_path(r);

        if (k)
                req_reply_json(r, 200, apikey_to_json(k, false));
}

/* DELETE /api/api-keys/{id}: the key stops working at once. */
static void on_api_key_delete(Req *r) {
        ApiKey *k = api_key_of_path(r);

        if (!k)
                return;
        if (k->revoked_at == 0)
                k->revoked_at = now_usec();
        req_reply_json(r, 200, apikey_to_json(k, false));
}

/* DELETE /api/api-keys: revokes every key of the caller. */
static void on_api_keys_delete_all(Req *r) {
        json_object *o = json_object_new_object();
        int64_t now = now_usec(), n = 0;

        for (ApiKey *k = r->sim->keys; k; k = k->next)
                if (k->owner == r->user && k->revoked_at == 0) {
                        k->revoked_at = now;
                        n++;
                }
        if (o) {
                json_object_object_add(o, "message", json_object_new_string("API keys revoked"));
                json_object_object_add(o, "revoked_count", json_object_new_int64(n));
        }
        req_reply_json(r, 200, o);
}

/* DELETE /api/api-keys/admin: no simulated user is an admin. */
static void on_api_keys_admin(Req *r) {
        req_reply_message(r, 403, "Admin privileges required");
}

/* qsort comparator: newest created_at first, then newest creation order. */
static int cmp_job_newest(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;

        if (x->created_at != y->created_at)
                return x->created_at > y->created_at ? -1 : 1;
        return x->seq > y->seq ? -1 : x->seq < y->seq ? 1 : 0;
}

/* Answers {"jobs": [...]} for an array of jobs. */
static void reply_job_list(Req *r, Job **jobs, size_t n) {
        json_object *o = json_object_new_object(), *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, job_json(r, jobs[i]));
        if (o && a) {
                json_object_object_add(o, "jobs", a);
                a = NULL;
        }
        json_object_put(a);
        req_reply_json(r, 200, o);
}

/* Validates the query of GET /api/jobs. Answers 422 itself on failure. */
static int jobs_query(Req *r, const char **ret_display, const char **ret_set,
                      unsigned long *ret_limit, bool *ret_deleted) {
        const char *limit = req_query(r, "limit"), *deleted = req_query(r, "include_deleted");
        int b;

        for (size_t i = 0; i < r->n_query; i++)
                if (streq(r->query[i].name, "kind") && !job_kind_is_valid(r->query[i].value)) {
                        req_reply_422(r, "query", "kind",
                                      "Input should be 'standard', 'privacy_metrics', "
                                      "'signal_metrics', 'report' or 'advice'",
                                      "enum");
                        return -EINVAL;
                }
        *ret_display = req_query(r, "display_name");
        *ret_set = req_query(r, "set_name");
        if (*ret_display && *ret_set) {
                req_reply_422(r, "query", NULL, "display_name and set_name are mutually exclusive",
                              "value_error");
                return -EINVAL;
        }
        if (*ret_set && !uuid_is_valid(*ret_set)) {
                req_reply_422(r, "query", "set_name", "Input should be a valid UUID",
                              "uuid_parsing");
                return -EINVAL;
        }
        *ret_limit = ULONG_MAX;
        if (limit && parse_uint(limit, ret_limit) < 0) {
                req_reply_422(r, "query", "limit",
                              "Input should be a valid integer, unable to parse string as an "
                              "integer",
                              "int_parsing");
                return -EINVAL;
        }
        *ret_deleted = false;
        if (deleted) {
                b = parse_bool(deleted);
                if (b < 0) {
                        req_reply_422(r, "query", "include_deleted",
                                      "Input should be a valid boolean, unable to interpret input",
                                      "bool_parsing");
                        return -EINVAL;
                }
                *ret_deleted = b;
        }
        return 0;
}

/* True when the job's kind is one of the repeated ?kind= values (or none is given). */
static bool job_kind_selected(Req *r, const Job *j) {
        bool any = false;

        for (size_t i = 0; i < r->n_query; i++) {
                if (!streq(r->query[i].name, "kind"))
                        continue;
                any = true;
                if (streq(r->query[i].value, j->kind))
                        return true;
        }
        return !any;
}

/* GET /api/jobs. */
static void on_jobs_list(Req *r) {
        _cleanup_free_ Job **sel = NULL;
        const char *display, *set;
        unsigned long limit;
        bool deleted;
        size_t n = 0;

        if (jobs_query(r, &display, &set, &limit, &deleted) < 0)
                return;
        sel = calloc(r->sim->n_jobs + 1, sizeof(Job *));
        if (!sel) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        for (size_t i = 0; i < r->sim->n_jobs; i++) {
                Job *j = r->sim->jobs[i];
                if (j->owner != r->user || (!deleted && j->deleted_at != 0) ||
                    !job_kind_selected(r, j) || (display && !streq(display, j->set->display_name)) ||
                    (set && strcasecmp(set, j->set->name) != 0))
                        continue;
                sel[n++] = j;
        }
        if (n > 1)
                qsort(sel, n, sizeof(Job *), cmp_job_newest);
        reply_job_list(r, sel, MIN((unsigned long) n, limit));
}

/* GET /api/jobs/last_set: every job of the set of the newest job. */
static void on_jobs_last_set(Req *r) {
        _cleanup_free_ Job **sel = calloc(r->sim->n_jobs + 1, sizeof(Job *));
        const Job *newest = NULL;
        size_t n = 0;

        if (!sel) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        for (size_t i = 0; i < r->sim->n_jobs; i++) {
                const Job *j = r->sim->jobs[i];
                if (j->owner == r->user && j->deleted_at == 0 &&
                    (!newest || cmp_job_newest(&j, &newest) < 0))
                        newest = j;
        }
        for (size_t i = 0; newest && i < r->sim->n_jobs; i++) {
                Job *j = r->sim->jobs[i];
                if (j->owner == r->user && j->deleted_at == 0 && j->set == newest->set)
                        sel[n++] = j;
        }
        if (n > 1)
                qsort(sel, n, sizeof(Job *), cmp_job_newest);
        reply_job_list(r, sel, n);
}

/* POST /api/jobs {set_name, parameters_name, depends_on}. */
static void on_jobs_create(Req *r) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_free_ const char **deps = NULL;
        _cleanup_free_ char *err = NULL, *location = NULL;
        const char *set_name, *params;
        json_object *dv = NULL, *o;
        ResourceSet *set;
        size_t n_deps = 0;
        Job *j;
        int k;

        if (body_object(r, &body) < 0 || field_string(r, body, "set_name", true, &set_name) < 0 ||
            field_string(r, body, "parameters_name", true, &params) < 0)
                return;
        if (!uuid_is_valid(set_name)) {
                req_reply_422(r, "body", "set_name", "Input should be a valid UUID", "uuid_parsing");
                return;
        }
        if (json_object_object_get_ex(body, "depends_on", &dv) && dv) {
                if (!json_object_is_type(dv, json_type_array)) {
                        req_reply_422(r, "body", "depends_on", "Input should be a valid list",
                                      "list_type");
                        return;
                }
                n_deps = json_object_array_length(dv);
                deps = calloc(n_deps + 1, sizeof(char *));
                if (!deps) {
                        req_reply_message(r, 500, "Out of memory");
                        return;
                }
                for (size_t i = 0; i < n_deps; i++) {
                        json_object *e = json_object_array_get_idx(dv, i);
                        if (!json_object_is_type(e, json_type_string)) {
                                req_reply_422(r, "body", "depends_on",
                                              "Input should be a valid string", "string_type");
                                return;
                        }
                        deps[i] = json_object_get_string(e);
                }
        }
        set = set_find(r->sim, r->user, set_name);
        if (!set) {
                req_reply_message(r, 404, "Resource set %s not found", set_name);
                return;
        }
        k = job_create(r->sim, r->user, set, params, deps, n_deps, &j, &err);
        if (k == -EINVAL || k == -ESRCH) {
                req_reply_422(r, "body", k == -EINVAL ? "parameters_name" : "depends_on",
                              err ? err : "Invalid value", "value_error");
                return;
        }
        if (k == -E2BIG) {
                req_reply_message(r, 503, "avatar-sim: too many jobs");
                return;
        }
        location = k >= 0 ? strprintf("/jobs/%s", j->name) : NULL;
        o = location ? json_object_new_object() : NULL;
        if (!o) {
                req_reply_message(r, 500, "Cannot create the job");
                return;
        }
        json_object_object_add(o, "name", json_object_new_string(j->name));
        json_object_object_add(o, "Location", json_object_new_string(location));
        req_add_header(r, "Location", location);
        req_reply_json(r, 201, o);
}

/* Looks up the job named by path segment i; answers 404 itself when unknown. */
static Job *job_of_path(Req *r, size_t i) {
        Job *j = job_find(r->sim, r->user, r->segs[i]);

        if (!j)
                req_reply_message(r, 404, "Job %s not found", r->segs[i]);
        return j;
}

/* GET /api/jobs/{name}. */
static void on_job_get(Req *r) {
        Job *j = job_of_path(r, 2);

        if (j)
                req_reply_json(r, 200, job_json(r, j));
}

/* DELETE /api/jobs/{name}: soft delete. */
static void on_job_delete(Req *r) {
        Job *j = job_of_path(r, 2);

        if (!j)
                return;
        if (j->deleted_at == 0)
                j->deleted_at = now_usec();
        req_reply_json(r, 200, job_json(r, j));
}

/* POST /api/jobs/bulk-delete {job_names}. */
static void on_jobs_bulk_delete(Req *r) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *names = NULL, *o, *deleted, *failed;
        size_t n;

        if (body_object(r, &body) < 0)
                return;
        if (!json_object_object_get_ex(body, "job_names", &names) || !names) {
                req_reply_422(r, "body", "job_names", "Field required", "missing");
                return;
        }
        if (!json_object_is_type(names, json_type_array)) {
                req_reply_422(r, "body", "job_names", "Input should be a valid list", "list_type");
                return;
        }
        n = json_object_array_length(names);
        if (n > SIM_MAX_BULK_DELETE) {
                _cleanup_free_ char *msg = strprintf(
                        "List should have at most %d items after validation, not %zu",
                        SIM_MAX_BULK_DELETE, n);
                req_reply_422(r, "body", "job_names", msg ? msg : "List too long", "too_long");
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (!json_object_is_type(json_object_array_get_idx(names, i), json_type_string)) {
                        req_reply_422(r, "body", "job_names", "Input should be a valid string",
                                      "string_type");
                        return;
                }
        o = json_object_new_object();
        deleted = json_object_new_array();
        failed = json_object_new_array();
        if (!o || !deleted || !failed) {
                json_object_put(o);
                json_object_put(deleted);
                json_object_put(failed);
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(names, i));
                Job *j = job_find(r->sim, r->user, name);

                if (!j) {
                        json_object_array_add(failed, json_object_new_string(name));
                        continue;
                }
                if (j->deleted_at == 0)
                        j->deleted_at = now_usec();
                json_object_array_add(deleted, job_json(r, j));
        }
        json_object_object_add(o, "deleted_jobs", deleted);
        json_object_object_add(o, "failed_jobs", failed);
        req_reply_json(r, 200, o);
}

/* Answers a 413 when the YAML body is too large. */
static bool yaml_body_too_large(Req *r) {
        if (evbuffer_get_length(req_body(r)) <= SIM_MAX_YAML_BODY)
                return false;
        req_reply_detail(r, 413, "Request body too large");
        return true;
}

/* Answers a ResourceSetResponse. */
static void reply_set(Req *r, const ResourceSet *s) {
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "set_name", json_object_new_string(s->name));
                json_object_object_add(o, "display_name", json_object_new_string(s->display_name));
        }
        req_reply_json(r, 200, o);
}

/* PUT /api/resources/{display_name}: a new set from the YAML body. */
static void on_resources_put(Req *r) {
        _cleanup_free_ char *err = NULL;
        ResourceSet *s;
        const char *yaml;
        size_t len;
        int k;

        if (yaml_body_too_large(r))
                return;
        yaml = req_body_str(r, &len);
        if (!yaml) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        k = set_create(r->sim, r->user, r->segs[2], yaml, len, &s, &err);
        if (k == -EINVAL) {
                req_reply_422(r, "body", NULL, err ? err : "Invalid YAML", "value_error");
                return;
        }
        if (k == -E2BIG) {
                req_reply_message(r, 503, "avatar-sim: too many resource sets");
                return;
        }
        if (k < 0) {
                req_reply_message(r, 500, "Cannot store the resources");
                return;
        }
        if (is_old(r)) {
                /*
                 * An old server answers 201 and where the set is, relative to the API base as
                 * the Location of POST /jobs; the client reads it there.
                 */
                _cleanup_free_ char *loc = strprintf("/resources/%s", s->name);

                if (!loc) {
                        req_reply_message(r, 500, "Out of memory");
                        return;
                }
                req_add_header(r, "Location", loc);
                req_reply_message(r, 201, "Resource set created");
                return;
        }
        reply_set(r, s);
}

/* Looks up the set named by path segment 2; answers 422/404 itself. */
static ResourceSet *set_of_path(Req *r) {
        ResourceSet *s;

        if (!uuid_is_valid(r->segs[2])) {
                req_reply_422(r, "path", "set_name", "Input should be a valid UUID", "uuid_parsing");
                return NULL;
        }
        s = set_find(r->sim, r->user, r->segs[2]);
        if (!s)
                req_reply_message(r, 404, "Resource set %s not found", r->segs[2]);
        return s;
}

/* POST /api/resources/{set_name}: append documents to a set. */
static void on_resources_post(Req *r) {
        _cleanup_free_ char *err = NULL;
        ResourceSet *s;
        const char *yaml;
        size_t len;
        int k;

        if (yaml_body_too_large(r) || !(s = set_of_path(r)))
                return;
        yaml = req_body_str(r, &len);
        if (!yaml) {
                req_reply_message(r, 500, "Out of memory");
                return;
        }
        k = set_append(r->sim, s, yaml, len, &err);
        if (k == -EINVAL || k == -E2BIG) {
                req_reply_422(r, "body", NULL, err ? err : "Resources too large", "value_error");
                return;
        }
        if (k < 0) {
                req_reply_message(r, 500, "Cannot store the resources");
                return;
        }
        reply_set(r, s);
}

/*
 * GET /api/resources/{set_name}: the YAML, verbatim. An old server answers the
 * ResourceSetResponse there (the Location of its PUT), and the YAML only to a client that asks
 * for it with an Accept naming yaml.
 */
static void on_resources_get(Req *r) {
        ResourceSet *s = set_of_path(r);
        const char *accept = req_header(r, "Accept");
        struct evbuffer *b;

        if (!s)
                return;
        if (is_old(r) && !(accept && strcasestr(accept, "yaml"))) {
                reply_set(r, s);
                return;
        }
        b = evbuffer_new();
        if (b)
                evbuffer_add(b, s->yaml, s->yaml_len);
        req_reply(r, 200, "application/yaml", b);
}

/* GET /api/resources/volume: the OLD client's AvatarVolume lookup. */
static void on_resources_volume(Req *r) {
        const char *purpose = req_query(r, "purpose"), *name = req_query(r, "volume_name");
        struct evbuffer *b;
        bool results;

        if (purpose && !streq(purpose, "input") && !streq(purpose, "results")) {
                req_reply_422(r, "query", "purpose", "Input should be 'input' or 'results'", "enum");
                return;
        }
        results = streq_ptr(purpose, "results");
        b = evbuffer_new();
        if (b) {
                evbuffer_add_printf(b, "kind: AvatarVolume\nmetadata:\n  name: %s\nspec:\n",
                                    name ? name : results ? "results" : "input");
                if (results)
                        evbuffer_add_printf(b, "  url: s3://%s/" SIM_RESULTS_PREFIX "\n",
                                            r->user->id);
                else
                        evbuffer_add_printf(b, "  url: s3://%s/%dd\n", r->user->id,
                                            SIM_UPLOAD_PREFIX_DAYS);
        }
        req_reply(r, 200, "application/yaml", b);
}

/* GET /api/results/{job}. */
static void on_results(Req *r) {
        Job *j = job_of_path(r, 2);

        if (!j)
                return;
        if (j->status != JOB_FINISHED || j->results_cleaned || !j->results) {
                req_reply_message(r, 404, "Results file for job %s not found", j->name);
                return;
        }
        req_reply_json(r, 200, results_urls(r->sim, j));
}

/* GET /api/upload_url: the per-user upload base, a JSON string. */
static void on_upload_url(Req *r) {
        _cleanup_free_ char *url = strprintf("s3://%s/%dd", r->user->id, SIM_UPLOAD_PREFIX_DAYS);

        req_reply_json(r, 200, url ? json_object_new_string(url) : NULL);
}

/*
 * The storage location an /access url names: an envelope ".../access?url=s3://b/k" (the inner
 * value last and not percent-encoded, or encoded) or a bare "s3://b/k". Returns 0, -EINVAL
 * (not a storage url), -EACCES (another user's bucket).
 */
static int access_check(User *u, const char *url) {
        const char *q = strstr(url, "/access?"), *inner = url, *rest, *slash;
        _cleanup_free_ char *decoded = NULL;

        if (q) {
                const char *p = q + STRLEN("/access?");
                /* the url parameter comes last: everything after "url=" belongs to it */
                inner = startswith(p, "url=") ? p + 4 : NULL;
                if (!inner) {
                        const char *m = strstr(p, "&url=");
                        inner = m ? m + 5 : NULL;
                }
                if (!inner)
                        return -EINVAL;
                if (strncasecmp(inner, "s3%3A", 5) == 0) {
                        decoded = url_decode(inner, strlen(inner), false);
                        if (!decoded)
                                return -EINVAL;
                        inner = decoded;
                }
        }
        rest = startswith(inner, "s3://");
        if (!rest)
                return -EINVAL;
        slash = strchr(rest, '/');
        if ((slash ? (size_t) (slash - rest) : strlen(rest)) != strlen(u->id) ||
            strncasecmp(rest, u->id, strlen(u->id)) != 0)
                return -EACCES;
        return 0;
}

/* A FileAccess object for a url. */
static json_object *file_access(Req *r, const char *url) {
        json_object *o = json_object_new_object(), *c = json_object_new_object();
        const char *id, *secret;

        if (!o || !c || user_storage_credentials(r->sim, r->user, &id, &secret) < 0) {
                json_object_put(o);
                json_object_put(c);
                return NULL;
        }
        json_object_object_add(c, "access_key_id", json_object_new_string(id));
        json_object_object_add(c, "secret_access_key", json_object_new_string(secret));
        json_object_object_add(o, "url", json_object_new_string(url));
        json_object_object_add(o, "credentials", c);
        return o;
}

/* GET /api/access?url=. */
static void on_access(Req *r) {
        const char *url = req_query(r, "url");
        int k;

        if (!url) {
                req_reply_422(r, "query", "url", "Field required", "missing");
                return;
        }
        k = access_check(r->user, url);
        if (k == -EINVAL) {
                req_reply_422(r, "query", "url", "Not a storage URL or /access envelope",
                              "value_error");
                return;
        }
        if (k < 0) {
                req_reply_message(r, 403, "Access denied to %s", url);
                return;
        }
        req_reply_json(r, 200, file_access(r, url));
}

/* POST /api/access/batch: a JSON array of urls; inaccessible ones are left out. */
static void on_access_batch(Req *r) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *out;
        size_t n;

        if (req_json_body(r, &body) < 0)
                return;
        if (!json_object_is_type(body, json_type_array)) {
                req_reply_422(r, "body", NULL, "Input should be a valid list", "list_type");
                return;
        }
        n = json_object_array_length(body);
        if (n > SIM_MAX_ACCESS_BATCH) {
                req_reply_422(r, "body", NULL, "List too long", "too_long");
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (!json_object_is_type(json_object_array_get_idx(body, i), json_type_string)) {
                        req_reply_422(r, "body", NULL, "Input should be a valid string",
                                      "string_type");
                        return;
                }
        out = json_object_new_array();
        for (size_t i = 0; out && i < n; i++) {
                const char *url = json_object_get_string(json_object_array_get_idx(body, i));
                if (access_check(r->user, url) == 0)
                        json_object_array_add(out, file_access(r, url));
        }
        req_reply_json(r, 200, out);
}

static const Route api_routes[] = {
        { EVHTTP_REQ_GET, "/", on_root, 0 },
        { EVHTTP_REQ_GET, "/api", on_root, 0 },
        { EVHTTP_REQ_GET, "/api/health", on_health, 0 },
        { EVHTTP_REQ_GET, "/api/health/db", on_health, 0 },
        { EVHTTP_REQ_GET, "/api/openapi.json", on_openapi, 0 },
        { EVHTTP_REQ_GET, "/api/check_client", on_check_client, 0 },
        { EVHTTP_REQ_POST, "/api/login", on_login, ROUTE_LEGACY },
        { EVHTTP_REQ_POST, "/api/refresh", on_refresh, ROUTE_LEGACY },
        { EVHTTP_REQ_GET, "/api/refresh", on_refresh, ROUTE_LEGACY },
        { EVHTTP_REQ_POST, "/api/login/forgotten_password", on_forgotten_password, ROUTE_LEGACY },
        { EVHTTP_REQ_POST, "/api/login/reset_password", on_reset_password, ROUTE_LEGACY },
        { EVHTTP_REQ_POST, "/api/logout", on_logout, ROUTE_LEGACY | ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/users/me", on_users_me, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/users/credits_info", on_credits_info, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/users/features_info", on_features_info, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/users", on_users, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/users/{id}", on_user, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/event-logs", on_event_logs, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/api-keys", on_api_keys_list, ROUTE_AUTH },
        { EVHTTP_REQ_POST, "/api/api-keys", on_api_keys_create, ROUTE_AUTH },
        { EVHTTP_REQ_DELETE, "/api/api-keys", on_api_keys_delete_all, ROUTE_AUTH },
        { EVHTTP_REQ_DELETE, "/api/api-keys/admin", on_api_keys_admin, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/api-keys/{api_key_id}", on_api_key_get, ROUTE_AUTH },
        { EVHTTP_REQ_DELETE, "/api/api-keys/{api_key_id}", on_api_key_delete, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/jobs", on_jobs_list, ROUTE_AUTH },
        { EVHTTP_REQ_POST, "/api/jobs", on_jobs_create, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/jobs/last_set", on_jobs_last_set, ROUTE_AUTH },
        { EVHTTP_REQ_POST, "/api/jobs/bulk-delete", on_jobs_bulk_delete, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/jobs/{name}", on_job_get, ROUTE_AUTH },
        { EVHTTP_REQ_DELETE, "/api/jobs/{name}", on_job_delete, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/resources/volume", on_resources_volume, ROUTE_AUTH },
        { EVHTTP_REQ_PUT, "/api/resources/{display_name}", on_resources_put, ROUTE_AUTH },
        { EVHTTP_REQ_POST, "/api/resources/{set_name}", on_resources_post, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/resources/{set_name}", on_resources_get, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/results/{job}", on_results, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/upload_url", on_upload_url, ROUTE_AUTH },
        { EVHTTP_REQ_GET, "/api/access", on_access, ROUTE_AUTH },
        { EVHTTP_REQ_POST, "/api/access/batch", on_access_batch, ROUTE_AUTH },
};

/* Routes an API request and authenticates it. */
void api_route(Req *r) {
        Sim *sim = r->sim;
        int k;

        k = route_match(r, api_routes, ELEMENTSOF(api_routes));
        if (k == -ENOENT) {
                (void) req_set_route(r, r->n_segs > 0 && streq(r->segs[0], "api") ? "/api/{unknown}"
                                                                                  : "/{unknown}");
                r->handler = on_not_found;
        } else if (k == -EMLINK)
                r->handler = on_method_not_allowed;
        else if (k < 0)
                r->handler = NULL;
        /* what an old server did not have, whatever the credentials */
        if (is_old(r) && r->handler == on_access_batch) {
                r->handler = on_not_found;
                r->flags = 0;
        } else if (is_old(r) && r->handler == on_refresh && r->method == EVHTTP_REQ_POST)
                r->handler = on_method_not_allowed;
        r->auth_error = auth_check(sim, req_header(r, "Authorization"), &r->user, &r->auth);
        if ((r->flags & ROUTE_LEGACY) && !sim->cfg.legacy_auth)
                r->handler = on_not_found;
        else if ((r->flags & ROUTE_AUTH) && !r->user && r->handler != on_method_not_allowed)
                r->handler = on_unauthenticated;
}
