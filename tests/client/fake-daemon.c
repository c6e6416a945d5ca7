/* SPDX-License-Identifier: MIT */
/*
 * The scripted fake daemon (see fake-daemon.h). Deliberately simple and blocking: one
 * thread, one connection at a time, whole lines read with recvmsg() so descriptors can be
 * checked the way the real daemon receives them.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "fake-daemon.h"
#include "macro.h"
#include "test-wait.h"

/* Longest request line the fake accepts (requests in the tests stay far below). */
#define FAKE_LINE_MAX (8u * 1024u * 1024u)
/* Descriptors kept per connection until a line claims them. */
#define FAKE_FDS_MAX 16

struct FakeDaemon {
        char dir[64];           /* the temporary directory, "" when the caller chose a path */
        char path[108];
        int listen_fd;
        int wake[2];            /* a byte on wake[1] stops the thread */
        pthread_t thread;
        bool running;
        json_object *scripts;   /* method → {"result"|"error", "skip"}: answers set by fake.script */
        json_object *requests;  /* [{"method", "params"}] received since the last fake.requests */
        char table[256];        /* the table of the last runner.add_table ("iris" before any) */
        json_object *run_jobs;  /* the jobs of the last runner.run (NULL: all five) */
};

typedef struct Conn {
        FakeDaemon *f;
        int fd;
        char *buf;
        size_t len;
        int fds[FAKE_FDS_MAX];
        size_t n_fds;
        json_object *late_id;   /* id of a "never" request, answered before the next reply */
        bool closed;
        json_object *record;    /* this line's entry in f->requests (borrowed), or NULL */
} Conn;

/* Writes all of buf to a socket (or, with sock false, a file or pipe); returns 0 or a
 * negative errno. Sockets are written with MSG_NOSIGNAL so a client that went away does not
 * kill the test with SIGPIPE. */
static int write_fd(int fd, const char *buf, size_t len, bool sock) {
        while (len > 0) {
                ssize_t n = sock ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Writes all of buf to a socket. */
static int write_all(int fd, const char *buf, size_t len) {
        return write_fd(fd, buf, len, true);
}

/* Sends a JSON value as one line. Takes o. */
static int send_json(Conn *c, json_object *o) {
        const char *s;
        char *line;
        size_t n;
        int r;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        n = strlen(s);
        line = malloc(n + 1);
        if (!line) {
                json_object_put(o);
                return -ENOMEM;
        }
        memcpy(line, s, n);
        line[n] = '\n';
        json_object_put(o);
        r = write_all(c->fd, line, n + 1);
        free(line);
        return r;
}

/* Builds {"jsonrpc":"2.0", "id": id, "result": result}. Borrows id, takes result. */
static json_object *reply_new(json_object *id, json_object *result) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
        json_object_object_add(o, "result", result);
        json_object_object_add(o, "id", json_object_get(id));
        return o;
}

/* Builds an error reply. Borrows id; takes data. */
static json_object *error_new(json_object *id, int code, const char *message, json_object *data) {
        json_object *o = json_object_new_object(), *e = json_object_new_object();

        json_object_object_add(e, "code", json_object_new_int(code));
        json_object_object_add(e, "message", json_object_new_string(message));
        if (data)
                json_object_object_add(e, "data", data);
        json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
        json_object_object_add(o, "error", e);
        json_object_object_add(o, "id", json_object_get(id));
        return o;
}

/* Builds a notification. Takes params. */
static json_object *notification_new(const char *method, json_object *params) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
        json_object_object_add(o, "method", json_object_new_string(method));
        json_object_object_add(o, "params", params);
        return o;
}

/* An integer member of params, or a default. */
static int64_t param_int(json_object *params, const char *key, int64_t def) {
        json_object *v;

        if (!json_object_object_get_ex(params, key, &v))
                return def;
        return json_object_get_int64(v);
}

/* A string of n 'x' as a JSON string. */
static json_object *big_string(size_t n) {
        char *s = malloc(n + 1);
        json_object *o;

        if (!s)
                return NULL;
        memset(s, 'x', n);
        s[n] = '\0';
        o = json_object_new_string_len(s, (int) n);
        free(s);
        return o;
}

/* The canned OpenRPC document. */
static json_object *discover_doc(void) {
        static const char text[] =
                "{\"openrpc\":\"1.2.6\",\"info\":{\"title\":\"avatard\",\"version\":\"0.1.0\"},"
                "\"methods\":["
                "{\"name\":\"rpc.discover\",\"summary\":\"Describe the API\",\"params\":[],"
                "\"result\":{\"name\":\"document\",\"schema\":{\"type\":\"object\"}}},"
                "{\"name\":\"daemon.status\",\"summary\":\"Daemon status and counters\",\"params\":[],"
                "\"result\":{\"name\":\"status\",\"schema\":{\"type\":\"object\"}},\"x-avatard-role\":\"read\"},"
                "{\"name\":\"manager.get_last_jobs\",\"summary\":\"The most recent jobs\","
                "\"params\":[{\"name\":\"count\",\"required\":false,\"description\":\"How many\","
                "\"schema\":{\"type\":\"integer\",\"minimum\":1,\"default\":1}},"
                "{\"name\":\"language\",\"required\":true,"
                "\"schema\":{\"type\":\"string\",\"enum\":[\"en\",\"fr\"]}},"
                "{\"name\":\"ids\",\"schema\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"format\":\"uuid\"}}}],"
                "\"result\":{\"name\":\"jobs\",\"schema\":{\"$ref\":\"#/components/schemas/Jobs\"}}},"
                "{\"name\":\"runner.add_table\",\"summary\":\"Add a table\",\"x-avatard-fds\":true,"
                "\"params\":[{\"$ref\":\"#/components/contentDescriptors/Table\"}],"
                "\"result\":{\"name\":\"ok\",\"schema\":{\"type\":\"boolean\"}}}"
                "],\"components\":{\"contentDescriptors\":{\"Table\":{\"name\":\"table\","
                "\"required\":true,\"description\":\"The table, by descriptor\","
                "\"schema\":{\"type\":\"object\"}}}}}";

        return json_tokener_parse(text);
}

/* The canned daemon.status object. */
static json_object *status_doc(void) {
        static const char text[] =
                "{\"version\":\"0.1.0\",\"protocol_version\":1,\"pid\":4242,\"uptime_s\":3723,"
                "\"limits\":{\"max_frame_bytes\":1048576,\"max_connections\":8192},"
                "\"connections\":{\"current\":1,\"total\":7,\"per_uid\":{\"0\":1}},"
                "\"requests_total\":7,"
                "\"requests\":{\"daemon.status\":5,\"rpc.discover\":2},"
                "\"errors\":{\"not_found\":1},"
                "\"upstream\":{\"api_url\":\"http://127.0.0.1:1/api\",\"breaker\":\"closed\","
                "\"credential\":{\"kind\":\"api-key\",\"source\":\"api_key_file /etc/avatard/api-key\"},"
                "\"compatibility\":{\"status\":\"compatible\"},"
                "\"http\":{\"requests\":{\"GET /health\":{\"200\":3}}}},"
                "\"runners\":{\"runners\":2,\"damaged_files\":[]}}";

        return json_tokener_parse(text);
}

/* Reads the descriptors a line brought and answers the "fds" method. */
static json_object *serve_fds(Conn *c) {
        json_object *result = json_object_new_object();
        char buf[65536];
        size_t len = 0;

        if (c->n_fds > 0) {
                ssize_t n;

                (void) lseek(c->fds[0], 0, SEEK_SET);
                while (len < sizeof(buf) && (n = read(c->fds[0], buf + len, sizeof(buf) - len)) > 0)
                        len += (size_t) n;
        }
        if (c->n_fds > 1)
                (void) write_fd(c->fds[1], "written by fake\n", 16, false);

        json_object_object_add(result, "n_fds", json_object_new_int((int) c->n_fds));
        json_object_object_add(result, "content", json_object_new_string_len(buf, (int) len));
        return result;
}

/* ---- Manager methods: canned answers like the real daemon's, scripted overrides ---- */

/* Jobs the canned answers share: a finished standard job and a pending privacy_metrics job
 * of one run ("iris"), and a failed report job without a display name. */
#define FAKE_RUN "9b1d5c7e-1111-4a4a-8b8b-000000000001"
#define FAKE_JOB_A \
        "{\"name\":\"job-standard-1\",\"set_name\":\"" FAKE_RUN "\",\"parameters_name\":\"standard\"," \
        "\"display_name\":\"iris\",\"created_at\":\"2026-05-01T09:12:03.120000+00:00\",\"kind\":\"standard\"," \
        "\"status\":\"finished\",\"exception\":\"\",\"done\":true,\"progress\":1.0,\"deleted_at\":null}"
#define FAKE_JOB_B \
        "{\"name\":\"job-privacy-2\",\"set_name\":\"" FAKE_RUN "\",\"parameters_name\":\"privacy_metrics\"," \
        "\"display_name\":\"iris\",\"created_at\":\"2026-05-01T09:13:00+00:00\",\"kind\":\"privacy_metrics\"," \
        "\"status\":\"pending\",\"exception\":\"\",\"done\":false,\"progress\":0.4,\"deleted_at\":null}"
#define FAKE_JOB_C \
        "{\"name\":\"job-report-3\",\"set_name\":\"0c2e0000-2222-4b4b-9c9c-000000000002\"," \
        "\"parameters_name\":\"report\",\"display_name\":\"\",\"created_at\":\"2026-05-01T10:00:00Z\"," \
        "\"kind\":\"report\",\"status\":\"error\",\"exception\":\"boom\",\"done\":true,\"progress\":null," \
        "\"deleted_at\":null}"

/* The canned results of the Manager methods whose answer does not depend on the params. */
static const struct {
        const char *method;
        const char *result;
} canned[] = {
        { "manager.get_health", "{\"message\":\"ok\",\"stale\":false,\"age_s\":0.5}" },
        { "manager.verify_compatibility",
          "{\"status\":\"compatible\",\"compatible\":true,\"message\":null,"
          "\"most_recent_compatible_client\":null,\"daemon_version\":\"0.1.0\","
          "\"user_agent\":\"avatard/0.1.0\",\"verification\":true,\"age_s\":125.5}" },
        { "manager.forgotten_password", "{\"sent\":true}" },
        { "manager.reset_password", "{\"reset\":true}" },
        { "manager.list_api_keys",
          "{\"api_keys\":["
          "{\"id\":\"11111111-aaaa-4bbb-8ccc-000000000001\",\"name\":\"ci\","
          "\"created_at\":\"2026-01-01T00:00:00+00:00\",\"expires_at\":\"2027-01-01T00:00:00+00:00\","
          "\"revoked_at\":null,\"last_used_at\":\"2026-05-01T08:00:00Z\"},"
          "{\"id\":\"11111111-aaaa-4bbb-8ccc-000000000002\",\"name\":\"old\","
          "\"created_at\":\"2025-01-01T00:00:00+00:00\",\"expires_at\":\"2025-03-02T00:00:00+00:00\","
          "\"revoked_at\":\"2025-02-01T12:30:00+00:00\",\"last_used_at\":null}]}" },
        { "manager.get_jobs", "{\"jobs\":[" FAKE_JOB_C "," FAKE_JOB_B "," FAKE_JOB_A "],\"stale\":false,\"age_s\":0.25}" },
        { "manager.get_job", "{\"name\":\"job-standard-1\",\"set_name\":\"" FAKE_RUN "\","
          "\"parameters_name\":\"standard\",\"display_name\":\"iris\","
          "\"created_at\":\"2026-05-01T09:12:03.120000+00:00\",\"kind\":\"standard\",\"status\":\"finished\","
          "\"exception\":\"\",\"done\":true,\"progress\":1.0,\"deleted_at\":null,\"stale\":false,\"age_s\":0}" },
        { "manager.get_last_jobs", "{\"jobs\":{\"job-report-3\":" FAKE_JOB_C ",\"job-privacy-2\":" FAKE_JOB_B "},"
          "\"stale\":false,\"age_s\":1}" },
        { "manager.get_last_results",
          "{\"results\":["
          "{\"job\":\"job-standard-1\",\"display_name\":\"iris\",\"kind\":\"standard\",\"status\":\"finished\","
          "\"results\":{\"shuffled\":[\"http://s/a.shuffled-0.csv\"],\"unshuffled\":[\"http://s/a.unshuffled-0.csv\"],"
          "\"figures\":[\"http://s/1.html\",\"http://s/2.html\",\"http://s/3.html\"]}},"
          "{\"job\":\"job-report-3\",\"display_name\":\"\",\"kind\":\"report\",\"status\":\"error\","
          "\"error\":{\"code\":-32005,\"name\":\"not_found\",\"message\":\"Results file for job job-report-3 not found\","
          "\"status\":404}}],\"stale\":false,\"age_s\":0}" },
        { "manager.find_ids_by_name",
          "{\"runs\":[{\"set_name\":\"" FAKE_RUN "\",\"jobs\":[" FAKE_JOB_A "," FAKE_JOB_B "],"
          "\"created_at\":\"2026-05-01T09:13:00+00:00\"}],\"stale\":false,\"age_s\":0.1}" },
        { "manager.delete_job", "{\"deleted_jobs\":[" FAKE_JOB_A "," FAKE_JOB_B "],\"failed_jobs\":[],\"errors\":[],\"batches\":1}" },
        { "manager.delete_job_by_id", "{\"deleted_jobs\":[" FAKE_JOB_A "," FAKE_JOB_B "],\"failed_jobs\":[],\"errors\":[],\"batches\":1}" },
};

/* The string member `key` of params, or "". */
static const char *param_string(json_object *params, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_string))
                return "";
        return json_object_get_string(v);
}

/* manager.authenticate: the session's user and the deprecation warning. */
static json_object *answer_authenticate(json_object *params) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "authenticated", json_object_new_boolean(1));
        json_object_object_add(o, "username", json_object_new_string(param_string(params, "username")));
        json_object_object_add(o, "warning", json_object_new_string(
                "Username/password authentication is deprecated. To create an API key, run: "
                "avatarctl apikey create --name my-key --days 365 --store"));
        return o;
}

/* manager.create_api_key: the new key, with its plaintext unless params.store. */
static json_object *answer_create_api_key(json_object *params) {
        json_object *o = json_object_new_object(), *key = json_object_new_object(), *v;
        bool store = json_object_object_get_ex(params, "store", &v) && json_object_get_boolean(v);

        json_object_object_add(key, "id", json_object_new_string("22222222-aaaa-4bbb-8ccc-000000000003"));
        json_object_object_add(key, "name", json_object_new_string(param_string(params, "name")));
        json_object_object_add(key, "created_at", json_object_new_string("2026-05-01T09:00:00+00:00"));
        json_object_object_add(key, "expires_at", json_object_new_string("2027-05-01T09:00:00+00:00"));
        json_object_object_add(key, "revoked_at", NULL);
        json_object_object_add(key, "last_used_at", NULL);
        if (!store)
                json_object_object_add(key, "plaintext", json_object_new_string("avk_fake_PLAINTEXT_0123456789"));
        json_object_object_add(o, "api_key", key);
        json_object_object_add(o, "message", json_object_new_string("API key created"));
        json_object_object_add(o, "stored", json_object_new_boolean(store));
        json_object_object_add(o, "note", json_object_new_string(
                store ? "The new key is now the daemon's credential; it is not shown."
                      : "Save the plaintext key now: it is shown only once."));
        return o;
}

/* manager.revoke_api_key: the id back. */
static json_object *answer_revoke_api_key(json_object *params) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "revoked", json_object_new_boolean(1));
        json_object_object_add(o, "api_key_id", json_object_new_string(param_string(params, "api_key_id")));
        json_object_object_add(o, "response", NULL);
        return o;
}

/* manager.delete_jobs: names starting with "fail" fail, the others are deleted; batches of
 * 100 as the daemon makes them. */
static json_object *answer_delete_jobs(json_object *params) {
        json_object *o = json_object_new_object(), *deleted = json_object_new_array(),
                    *failed = json_object_new_array(), *names = NULL;
        size_t i, n;

        (void) json_object_object_get_ex(params, "job_names", &names);
        n = json_object_is_type(names, json_type_array) ? json_object_array_length(names) : 0;
        for (i = 0; i < n; i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(names, i));

                if (startswith(name, "fail"))
                        json_object_array_add(failed, json_object_new_string(name));
                else {
                        json_object *job = json_object_new_object();

                        json_object_object_add(job, "name", json_object_new_string(name));
                        json_object_object_add(job, "set_name", json_object_new_string(FAKE_RUN));
                        json_object_object_add(job, "status", json_object_new_string("finished"));
                        json_object_array_add(deleted, job);
                }
        }
        json_object_object_add(o, "deleted_jobs", deleted);
        json_object_object_add(o, "failed_jobs", failed);
        json_object_object_add(o, "errors", json_object_new_array());
        json_object_object_add(o, "batches", json_object_new_int64((int64_t) ((n + 99) / 100)));
        return o;
}

/* ---- Runner methods: computed from the params, with what came through the descriptors ---- */

/* The runner every manager.create_runner* makes, and the run of runner.run. */
#define FAKE_RUNNER "7c0a5a2e-2222-4b4b-9c9c-000000000002"
#define FAKE_SET "5e7d0c1a-3333-4c4c-8d8d-000000000003"

/* What runner.download writes for each result: text for tables and metrics, binary (NUL,
 * CR, bytes above 0x7f) for the reports, so that byte-exact copies can be checked. */
static const char content_shuffled[] = "sepal_length,species\n5.1,setosa\n4.9,versicolor\n";
static const char content_privacy[] = "{\"metadata\":{\"table_name\":\"iris\"},\"hidden_rate\":0.91}\n";
static const char content_signal[] = "{\"metadata\":{\"table_name\":\"iris\"},\"hellinger_mean\":0.12}\n";
static const char content_report[] = "%PDF-1.4\n\x00\x01\x02\xff\xfe\x80\r\n\x1a%%EOF\n";
static const char content_pia[] = "PK\x03\x04\x14\x00\x06\x00\xff\xd8\n\x00word/document.xml\x00";
static const char content_other[] = "{}\n";

/* The five jobs of a full run, in runner.run's order. */
static const char *const all_jobs[] = { "standard", "signal_metrics", "privacy_metrics", "report", "report_pia" };

/* Whether the last run made job `pname`. */
static bool run_has(FakeDaemon *f, const char *pname) {
        if (!f->run_jobs)
                return true;
        for (size_t i = 0; i < json_object_array_length(f->run_jobs); i++) {
                const char *j = json_object_get_string(json_object_array_get_idx(f->run_jobs, i));

                if (streq(j, pname) || (streq(j, "report") && streq(pname, "report_pia")))
                        return true;
        }
        return false;
}

/* A RunnerJob: {parameters_name, kind, name, status, progress, done, exception}. */
static json_object *runner_job(const char *pname, const char *status, double progress) {
        json_object *o = json_object_new_object();
        char name[64];

        (void) snprintf(name, sizeof(name), "job-%s-1", pname);
        json_object_object_add(o, "parameters_name", json_object_new_string(pname));
        json_object_object_add(o, "kind", json_object_new_string(streq(pname, "report_pia") ? "report" : pname));
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "status", json_object_new_string(status));
        json_object_object_add(o, "progress", progress < 0 ? NULL : json_object_new_double(progress));
        json_object_object_add(o, "done", json_object_new_boolean(streq(status, "finished")));
        json_object_object_add(o, "exception", json_object_new_string(""));
        return o;
}

/* The jobs of the last run, all in one status. */
static json_object *run_jobs_in(FakeDaemon *f, const char *status, double progress) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < ELEMENTSOF(all_jobs); i++)
                if (run_has(f, all_jobs[i]))
                        json_object_array_add(a, runner_job(all_jobs[i], status, progress));
        return a;
}

/* A RunnerStatus of the fake runner. */
static json_object *runner_status(FakeDaemon *f, const char *display_name, bool ran) {
        json_object *o = json_object_new_object(), *tables = json_object_new_array();

        json_object_array_add(tables, json_object_new_string(f->table));
        json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
        json_object_object_add(o, "display_name", json_object_new_string(display_name));
        json_object_object_add(o, "owner", json_object_new_int(1000));
        json_object_object_add(o, "state", json_object_new_string(ran ? "finished" : "configuring"));
        json_object_object_add(o, "set_name", ran ? json_object_new_string(FAKE_SET) : NULL);
        json_object_object_add(o, "previous_set_name", NULL);
        json_object_object_add(o, "tables", tables);
        json_object_object_add(o, "jobs", ran ? run_jobs_in(f, "finished", 1.0) : json_object_new_array());
        json_object_object_add(o, "warnings", json_object_new_array());
        json_object_object_add(o, "last_error", NULL);
        json_object_object_add(o, "created_at", json_object_new_int64(1777626723));
        json_object_object_add(o, "updated_at", json_object_new_int64(1777626783));
        return o;
}

/* The descriptor a param {"fd": N} names, or -1. */
static int param_fd(Conn *c, json_object *params, const char *key) {
        json_object *ref = NULL, *n = NULL;
        int64_t i;

        if (!json_object_object_get_ex(params, key, &ref) || !json_object_object_get_ex(ref, "fd", &n))
                return -1;
        i = json_object_get_int64(n);
        return i >= 0 && (size_t) i < c->n_fds ? c->fds[i] : -1;
}

/* Reads a descriptor to its end and notes what came in c->record's "read" list:
 * {"param", "bytes", "head"} with the first 32 bytes (non-printable ones as '.'). Sends an
 * "upload" runner.progress notification halfway and at the end when `notify`. Returns the
 * byte count, or -1. */
static int64_t read_param_fd(Conn *c, json_object *params, const char *key, bool notify) {
        char buf[65536], head[33] = "";
        int fd = param_fd(c, params, key);
        int64_t total = 0;
        size_t hl = 0;
        ssize_t n;
        json_object *o, *list = NULL;

        if (fd < 0)
                return -1;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n && hl < 32; i++)
                        head[hl++] = buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '.';
                total += n;
        }
        head[hl] = '\0';
        o = json_object_new_object();
        json_object_object_add(o, "param", json_object_new_string(key));
        json_object_object_add(o, "bytes", json_object_new_int64(total));
        json_object_object_add(o, "head", json_object_new_string(head));
        if (c->record && !json_object_object_get_ex(c->record, "read", &list)) {
                list = json_object_new_array();
                json_object_object_add(c->record, "read", list);
        }
        if (list)
                json_object_array_add(list, o);
        else
                json_object_put(o);
        for (int step = 1; notify && step <= 2; step++) {
                json_object *p = json_object_new_object();

                json_object_object_add(p, "subscription", json_object_new_string("u1"));
                json_object_object_add(p, "seq", json_object_new_int(step));
                json_object_object_add(p, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(p, "event", json_object_new_string("upload"));
                json_object_object_add(p, "table_name", json_object_new_string(param_string(params, "table_name")));
                json_object_object_add(p, "file", json_object_new_string(streq(key, "data") ? "table" : "avatars"));
                json_object_object_add(p, "bytes", json_object_new_int64(step == 1 ? total / 2 : total));
                json_object_object_add(p, "total", json_object_new_int64(total));
                (void) send_json(c, notification_new("runner.progress", p));
        }
        return total;
}

/* Sends a runner.progress "jobs" notification. Takes jobs. */
static int notify_jobs(Conn *c, int seq, json_object *jobs) {
        json_object *p = json_object_new_object();

        json_object_object_add(p, "subscription", json_object_new_string("w1"));
        json_object_object_add(p, "seq", json_object_new_int(seq));
        json_object_object_add(p, "runner_id", json_object_new_string(FAKE_RUNNER));
        json_object_object_add(p, "event", json_object_new_string("jobs"));
        json_object_object_add(p, "jobs", jobs);
        return send_json(c, notification_new("runner.progress", p));
}

/* The bytes and server file name of a result for the current table. */
static void result_content(FakeDaemon *f, const char *result, const char **ret_data, size_t *ret_len,
                           char *name, size_t size) {
        if (streq(result, "shuffled")) {
                *ret_data = content_shuffled;
                *ret_len = sizeof(content_shuffled) - 1;
                (void) snprintf(name, size, "%s.shuffled-0.csv", f->table);
        } else if (streq(result, "privacy_metrics")) {
                *ret_data = content_privacy;
                *ret_len = sizeof(content_privacy) - 1;
                (void) snprintf(name, size, "%s.privacy.json", f->table);
        } else if (streq(result, "signal_metrics")) {
                *ret_data = content_signal;
                *ret_len = sizeof(content_signal) - 1;
                (void) snprintf(name, size, "%s.signal.json", f->table);
        } else if (streq(result, "report")) {
                *ret_data = content_report;
                *ret_len = sizeof(content_report) - 1;
                (void) snprintf(name, size, "report.pdf");
        } else if (streq(result, "report_pia")) {
                *ret_data = content_pia;
                *ret_len = sizeof(content_pia) - 1;
                (void) snprintf(name, size, "%s.report.pia.docx", f->table);
        } else {
                *ret_data = content_other;
                *ret_len = sizeof(content_other) - 1;
                (void) snprintf(name, size, "%s.%s.json", f->table, result);
        }
}

/* Base64 of data (the daemon's inline form of binary results). Malloc'd. */
static char *fake_base64(const char *data, size_t len) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *o = malloc((len + 2) / 3 * 4 + 1), *p = o;

        if (!o)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) (unsigned char) data[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t) (unsigned char) data[i + 1] << 8;
                if (i + 2 < len)
                        v |= (unsigned char) data[i + 2];
                *p++ = tab[(v >> 18) & 63];
                *p++ = tab[(v >> 12) & 63];
                *p++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
                *p++ = i + 2 < len ? tab[v & 63] : '=';
        }
        *p = '\0';
        return o;
}

/* runner.download: writes the result's bytes into the descriptor (in two writes with a
 * "download" notification between), or returns them inline. */
static int answer_download(Conn *c, json_object *id, json_object *params) {
        const char *result = param_string(params, "result"), *data;
        json_object *o = json_object_new_object(), *table = NULL;
        int fd = param_fd(c, params, "fd");
        char name[300];
        size_t len;

        result_content(c->f, result, &data, &len, name, sizeof(name));
        (void) json_object_object_get_ex(params, "table", &table);
        json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
        json_object_object_add(o, "result", json_object_new_string(result));
        json_object_object_add(o, "table", json_object_get(table));
        json_object_object_add(o, "file_name", json_object_new_string(name));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t) len));
        if (fd >= 0) {
                json_object *p = json_object_new_object();
                int flags = fcntl(fd, F_GETFL);

                if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY || write_fd(fd, data, len / 2, false) < 0) {
                        json_object *d = json_object_new_object();

                        json_object_put(o);
                        json_object_put(p);
                        json_object_object_add(d, "name", json_object_new_string("io_error"));
                        json_object_object_add(d, "retryable", json_object_new_boolean(0));
                        return send_json(c, error_new(id, -32015, "Cannot write into the descriptor", d));
                }
                json_object_object_add(p, "subscription", json_object_new_string("d1"));
                json_object_object_add(p, "seq", json_object_new_int(1));
                json_object_object_add(p, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(p, "event", json_object_new_string("download"));
                json_object_object_add(p, "file_name", json_object_new_string(name));
                json_object_object_add(p, "bytes", json_object_new_int64((int64_t) (len / 2)));
                json_object_object_add(p, "total", json_object_new_int64((int64_t) len));
                (void) send_json(c, notification_new("runner.progress", p));
                (void) write_fd(fd, data + len / 2, len - len / 2, false);
        } else if (memchr(data, '\0', len) || streq(result, "report") || streq(result, "report_pia")) {
                char *b64 = fake_base64(data, len);

                json_object_object_add(o, "encoding", json_object_new_string("base64"));
                json_object_object_add(o, "data", json_object_new_string(b64 ? b64 : ""));
                free(b64);
        } else {
                json_object_object_add(o, "encoding", json_object_new_string("utf-8"));
                json_object_object_add(o, "data", json_object_new_string_len(data, (int) len));
        }
        return send_json(c, reply_new(id, o));
}

/* A file of runner.list_results. */
static json_object *listed_file(const char *result, const char *name, const char *table) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "result", json_object_new_string(result));
        json_object_object_add(o, "file_name", json_object_new_string(name));
        json_object_object_add(o, "table", json_object_new_string(table));
        return o;
}

/* runner.list_results: the jobs of the last run with the files the server names. */
static json_object *answer_list_results(FakeDaemon *f) {
        json_object *o = json_object_new_object(), *jobs = run_jobs_in(f, "finished", 1.0);
        char a[300], b[300], d[300];

        for (size_t i = 0; i < json_object_array_length(jobs); i++) {
                json_object *job = json_object_array_get_idx(jobs, i), *files = json_object_new_array(), *pn;
                const char *pname;

                json_object_object_get_ex(job, "parameters_name", &pn);
                pname = json_object_get_string(pn);
                if (streq(pname, "standard")) {
                        (void) snprintf(a, sizeof(a), "%s.shuffled-0.csv", f->table);
                        (void) snprintf(b, sizeof(b), "%s.unshuffled-0.csv", f->table);
                        json_object_array_add(files, listed_file("shuffled", a, f->table));
                        json_object_array_add(files, listed_file("unshuffled", b, f->table));
                        (void) snprintf(a, sizeof(a), "%s.correlation.html", f->table);
                        (void) snprintf(b, sizeof(b), "%s.distribution.html", f->table);
                        json_object_array_add(files, listed_file("figures", a, f->table));
                        json_object_array_add(files, listed_file("figures", b, f->table));
                        json_object_array_add(files, listed_file("run_metadata", "run_metadata.avatarize.json", "run_metadata"));
                } else if (streq(pname, "privacy_metrics")) {
                        (void) snprintf(d, sizeof(d), "%s.privacy.json", f->table);
                        json_object_array_add(files, listed_file("privacy_metrics", d, f->table));
                        json_object_array_add(files, listed_file("privacy_metrics_summary", "privacy_metrics_summary.json",
                                                                 "privacy_metrics_summary"));
                } else if (streq(pname, "signal_metrics")) {
                        (void) snprintf(d, sizeof(d), "%s.signal.json", f->table);
                        json_object_array_add(files, listed_file("signal_metrics", d, f->table));
                } else if (streq(pname, "report"))
                        json_object_array_add(files, listed_file("report", "report.pdf", "report"));
                else if (streq(pname, "report_pia")) {
                        (void) snprintf(d, sizeof(d), "%s.report.pia.docx", f->table);
                        json_object_array_add(files, listed_file("report", d, f->table));
                }
                json_object_object_add(job, "files", files);
        }
        json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
        json_object_object_add(o, "set_name", json_object_new_string(FAKE_SET));
        json_object_object_add(o, "jobs", jobs);
        return o;
}

/* A Job of manager.watch_jobs (the Manager's job shape). */
static json_object *watched_job(const char *pname, const char *status, double progress) {
        json_object *o = runner_job(pname, status, progress);

        json_object_object_add(o, "set_name", json_object_new_string(FAKE_SET));
        json_object_object_add(o, "display_name", json_object_new_string("iris"));
        return o;
}

/* manager.watch_jobs: two jobs.changed notifications, then the jobs, done. */
static int answer_watch(Conn *c, json_object *id) {
        json_object *o = json_object_new_object(), *jobs = json_object_new_array();
        int r = 0;

        for (int seq = 1; seq <= 2 && r >= 0; seq++) {
                json_object *p = json_object_new_object(), *changed = json_object_new_array();

                json_object_array_add(changed, watched_job("standard", seq == 1 ? "pending" : "finished", seq == 1 ? 0.4 : 1.0));
                json_object_object_add(p, "subscription", json_object_new_string("j1"));
                json_object_object_add(p, "seq", json_object_new_int(seq));
                json_object_object_add(p, "set_name", json_object_new_string(FAKE_SET));
                json_object_object_add(p, "jobs", changed);
                r = send_json(c, notification_new("jobs.changed", p));
        }
        json_object_array_add(jobs, watched_job("standard", "finished", 1.0));
        json_object_object_add(o, "subscription", json_object_new_string("j1"));
        json_object_object_add(o, "set_name", json_object_new_string(FAKE_SET));
        json_object_object_add(o, "done", json_object_new_boolean(1));
        json_object_object_add(o, "jobs", jobs);
        json_object_object_add(o, "notifications", json_object_new_int(2));
        return r < 0 ? r : send_json(c, reply_new(id, o));
}

/* runner.wait: the jobs advance in three notifications, then all are finished. */
static int answer_wait(Conn *c, json_object *id) {
        FakeDaemon *f = c->f;
        json_object *o = json_object_new_object(), *a;
        int r;

        a = json_object_new_array();
        json_object_array_add(a, runner_job("standard", "pending", 0.4));
        r = notify_jobs(c, 1, a);
        a = json_object_new_array();
        json_object_array_add(a, runner_job("standard", "finished", 1.0));
        if (run_has(f, "signal_metrics"))
                json_object_array_add(a, runner_job("signal_metrics", "pending", 0.5));
        if (r >= 0)
                r = notify_jobs(c, 2, a);
        else
                json_object_put(a);
        if (r >= 0)
                r = notify_jobs(c, 3, run_jobs_in(f, "finished", 1.0));
        json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
        json_object_object_add(o, "done", json_object_new_boolean(1));
        json_object_object_add(o, "timed_out", json_object_new_boolean(0));
        json_object_object_add(o, "set_name", json_object_new_string(FAKE_SET));
        json_object_object_add(o, "jobs", run_jobs_in(f, "finished", 1.0));
        json_object_object_add(o, "subscription", json_object_new_string("w1"));
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        return send_json(c, reply_new(id, o));
}

/* The params of a request without runner_id and table_name. */
static json_object *params_rest(json_object *params) {
        json_object *o = json_object_new_object();

        json_object_object_foreach(params, k, v) {
                if (streq(k, "runner_id") || streq(k, "table_name"))
                        continue;
                json_object_object_add(o, k, json_object_get(v));
        }
        return o;
}

/* Answers manager.create_runner*, manager.watch_jobs and runner.*; returns 1 when the
 * method is not one of them (nothing sent), else what sending returned. */
static int serve_runner(Conn *c, json_object *id, const char *method, json_object *params) {
        FakeDaemon *f = c->f;
        json_object *o = NULL;

        if (streq(method, "manager.create_runner"))
                o = runner_status(f, param_string(params, "set_name"), false);
        else if (streq(method, "manager.create_runner_from_yaml")) {
                (void) read_param_fd(c, params, "fd", false);
                o = runner_status(f, "from-yaml-v1", false);
        } else if (streq(method, "manager.create_runner_from_id") || streq(method, "manager.create_runner_from_name"))
                o = runner_status(f, "iris-v1", true);
        else if (streq(method, "manager.watch_jobs"))
                return answer_watch(c, id);
        else if (streq(method, "runner.add_table")) {
                json_object *up = json_object_new_object(), *tables = json_object_new_array();
                int64_t n = read_param_fd(c, params, "data", true), m;

                (void) snprintf(f->table, sizeof(f->table), "%s", param_string(params, "table_name"));
                m = read_param_fd(c, params, "avatar_data", true);
                o = json_object_new_object();
                json_object_object_add(up, "file", json_object_new_string("iris.csv"));
                json_object_object_add(up, "bytes", json_object_new_int64(n < 0 ? 0 : n));
                if (m >= 0)
                        json_object_object_add(up, "avatar_bytes", json_object_new_int64(m));
                json_object_array_add(tables, json_object_new_string(f->table));
                json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(o, "table_name", json_object_new_string(f->table));
                json_object_object_add(o, "upload", up);
                json_object_object_add(o, "tables", tables);
                json_object_object_add(o, "subscription", json_object_new_string("u1"));
        } else if (streq(method, "runner.add_link") || streq(method, "runner.get_status") ||
                   streq(method, "runner.delete_table") || streq(method, "runner.delete_link"))
                o = runner_status(f, "iris", streq(method, "runner.get_status"));
        else if (streq(method, "runner.set_parameters") || streq(method, "runner.update_parameters") ||
                 streq(method, "runner.delete_parameters")) {
                json_object *w = json_object_new_array(), *k = NULL;

                if (json_object_object_get_ex(params, "k", &k) && json_object_get_int(k) == 2)
                        json_object_array_add(w, json_object_new_string("You have set k = 2, the minimum."));
                o = json_object_new_object();
                json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(o, "table_name", json_object_new_string(param_string(params, "table_name")));
                json_object_object_add(o, "parameters", params_rest(params));
                json_object_object_add(o, "warnings", w);
        } else if (streq(method, "runner.advise_parameters")) {
                json_object *p = json_object_new_object(), *t = json_object_new_object();

                json_object_object_add(t, "k", json_object_new_int(12));
                json_object_object_add(t, "ncp", json_object_new_int(4));
                json_object_object_add(p, f->table, t);
                o = json_object_new_object();
                json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(o, "set_name", NULL);
                json_object_object_add(o, "advice", json_object_new_object());
                json_object_object_add(o, "parameters", p);
                json_object_object_add(o, "warnings", json_object_new_array());
        } else if (streq(method, "runner.run")) {
                json_object *jobs = NULL;

                json_object_put(f->run_jobs);
                f->run_jobs = json_object_object_get_ex(params, "jobs", &jobs) ? json_object_get(jobs) : NULL;
                o = json_object_new_object();
                json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(o, "set_name", json_object_new_string(FAKE_SET));
                json_object_object_add(o, "replaced", json_object_new_boolean(0));
                json_object_object_add(o, "previous_set_name", NULL);
                json_object_object_add(o, "jobs", run_jobs_in(f, "pending", 0));
                json_object_object_add(o, "warnings", json_object_new_array());
        } else if (streq(method, "runner.wait"))
                return answer_wait(c, id);
        else if (streq(method, "runner.list_results"))
                o = answer_list_results(f);
        else if (streq(method, "runner.download"))
                return answer_download(c, id, params);
        else if (streq(method, "runner.export_yaml")) {
                o = json_object_new_object();
                json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(o, "display_name", json_object_new_string("iris"));
                json_object_object_add(o, "yaml", json_object_new_string(
                        "kind: AvatarMetadata\nmetadata:\n  name: avatar-metadata-iris\nspec:\n  display_name: iris\n"));
        } else if (streq(method, "runner.delete")) {
                o = json_object_new_object();
                json_object_object_add(o, "deleted_jobs", run_jobs_in(f, "finished", 1.0));
                json_object_object_add(o, "failed_jobs", json_object_new_array());
        } else if (streq(method, "runner.list")) {
                json_object *a = json_object_new_array();

                json_object_array_add(a, runner_status(f, "iris", true));
                o = json_object_new_object();
                json_object_object_add(o, "runners", a);
        } else if (streq(method, "runner.close")) {
                o = json_object_new_object();
                json_object_object_add(o, "runner_id", json_object_new_string(FAKE_RUNNER));
                json_object_object_add(o, "closed", json_object_new_boolean(1));
                json_object_object_add(o, "set_name", json_object_new_string(FAKE_SET));
        } else
                return 1;
        return send_json(c, reply_new(id, o));
}

/* Waits up to ms milliseconds, or until the client hangs up (then the connection is
 * closed). */
static void pause_or_hangup(Conn *c, int64_t ms) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        char b;

        if (poll(&p, 1, (int) MIN(ms, (int64_t) INT_MAX)) > 0 && recv(c->fd, &b, 1, MSG_PEEK) <= 0)
                c->closed = true;
}

/* Sends the notifications of a script ("notify": [{"method", "params"}]). */
static int send_script_notifications(Conn *c, json_object *script) {
        json_object *list = NULL;
        int r = 0;

        if (!json_object_object_get_ex(script, "notify", &list))
                return 0;
        for (size_t i = 0; r >= 0 && i < json_object_array_length(list); i++) {
                json_object *n = json_object_array_get_idx(list, i), *m = NULL, *p = NULL;

                (void) json_object_object_get_ex(n, "method", &m);
                (void) json_object_object_get_ex(n, "params", &p);
                r = send_json(c, notification_new(json_object_get_string(m), json_object_get(p)));
        }
        return r;
}

/* Sends a script's answer: its error, else its result. */
static int serve_scripted(Conn *c, json_object *id, json_object *script) {
        json_object *v = NULL;

        if (json_object_object_get_ex(script, "error", &v)) {
                json_object *code = NULL, *msg = NULL, *data = NULL;

                (void) json_object_object_get_ex(v, "code", &code);
                (void) json_object_object_get_ex(v, "message", &msg);
                (void) json_object_object_get_ex(v, "data", &data);
                return send_json(c, error_new(id, code ? json_object_get_int(code) : -32603,
                                              msg ? json_object_get_string(msg) : "failed", json_object_get(data)));
        }
        (void) json_object_object_get_ex(script, "result", &v);
        return send_json(c, reply_new(id, json_object_get(v)));
}

/* Answers a manager.* or runner.* request: the scripted answer when one is set (after its
 * "skip" count of default answers; its "notify" notifications and "delay_ms" pause first;
 * with "hangup", the connection is closed instead of an answer;
 * with "times", only that many times), else the canned or computed one, else Method not
 * found. */
static int serve_manager(Conn *c, json_object *id, const char *method, json_object *params) {
        json_object *script = NULL, *v, *result = NULL;
        size_t i;

        if (json_object_object_get_ex(c->f->scripts, method, &script)) {
                json_object *skip = NULL;
                bool answers = json_object_object_get_ex(script, "error", NULL) ||
                               json_object_object_get_ex(script, "result", NULL), skipped = false;
                int r;

                if (json_object_object_get_ex(script, "skip", &skip) && json_object_get_int64(skip) > 0) {
                        json_object_set_int64(skip, json_object_get_int64(skip) - 1);
                        skipped = true;
                } else {
                        r = send_script_notifications(c, script);
                        if (r < 0)
                                return r;
                        if (param_int(script, "delay_ms", 0) > 0) {
                                pause_or_hangup(c, param_int(script, "delay_ms", 0));
                                if (c->closed)
                                        return 0;
                        }
                        if (param_int(script, "hangup", 0)) {
                                /* the daemon going away in the middle of the call */
                                c->closed = true;
                                return 0;
                        }
                }
                if (!skipped && answers && param_int(script, "times", 0) > 0) {
                        /* the last of its answers: back to the default afterwards */
                        json_object *times = NULL;

                        (void) json_object_object_get_ex(script, "times", &times);
                        json_object_set_int64(times, json_object_get_int64(times) - 1);
                        if (json_object_get_int64(times) == 0) {
                                json_object_get(script);
                                json_object_object_del(c->f->scripts, method);
                                r = serve_scripted(c, id, script);
                                json_object_put(script);
                                return r;
                        }
                }
                if (!skipped && answers)
                        return serve_scripted(c, id, script);
        }

        {
                int r = serve_runner(c, id, method, params);

                if (r != 1)
                        return r;
        }

        if (streq(method, "manager.authenticate"))
                result = answer_authenticate(params);
        else if (streq(method, "manager.create_api_key"))
                result = answer_create_api_key(params);
        else if (streq(method, "manager.revoke_api_key"))
                result = answer_revoke_api_key(params);
        else if (streq(method, "manager.delete_jobs"))
                result = answer_delete_jobs(params);
        for (i = 0; !result && i < ELEMENTSOF(canned); i++)
                if (streq(method, canned[i].method))
                        result = json_tokener_parse(canned[i].result);
        if (result)
                return send_json(c, reply_new(id, result));

        v = json_object_new_object();
        json_object_object_add(v, "name", json_object_new_string("method_not_found"));
        json_object_object_add(v, "retryable", json_object_new_boolean(0));
        json_object_object_add(v, "method", json_object_new_string(method));
        return send_json(c, error_new(id, -32601, "Method not found", v));
}

/* fake.script {"method", "result" | "error" {code, message, data}, "skip"}: sets how the
 * method is answered from now on; without result and error, back to the default. */
static json_object *fake_script(FakeDaemon *f, json_object *params) {
        const char *method = param_string(params, "method");
        json_object *s = json_object_new_object(), *v;

        if (json_object_object_get_ex(params, "result", &v))
                json_object_object_add(s, "result", json_object_get(v));
        if (json_object_object_get_ex(params, "error", &v))
                json_object_object_add(s, "error", json_object_get(v));
        if (json_object_object_get_ex(params, "notify", &v))
                json_object_object_add(s, "notify", json_object_get(v));
        if (json_object_object_get_ex(params, "delay_ms", &v))
                json_object_object_add(s, "delay_ms", json_object_get(v));
        if (json_object_object_get_ex(params, "hangup", &v))
                json_object_object_add(s, "hangup", json_object_new_int(json_object_get_boolean(v)));
        if (json_object_object_get_ex(params, "times", &v))
                json_object_object_add(s, "times", json_object_new_int64(json_object_get_int64(v)));
        json_object_object_add(s, "skip", json_object_new_int64(param_int(params, "skip", 0)));
        if (json_object_object_length(s) > 1)
                json_object_object_add(f->scripts, method, s);
        else {
                json_object_object_del(f->scripts, method);
                json_object_put(s);
        }
        return json_object_new_boolean(1);
}

/* What kind of file a descriptor is, and how it is open: {"type", "access"}. */
static json_object *fd_kind(int fd) {
        json_object *o = json_object_new_object();
        struct stat st;
        const char *type = "other", *access = "?";
        int flags = fcntl(fd, F_GETFL);

        if (fstat(fd, &st) == 0)
                type = S_ISREG(st.st_mode) ? "regular" : S_ISFIFO(st.st_mode) ? "fifo" :
                       S_ISSOCK(st.st_mode) ? "socket" : S_ISCHR(st.st_mode) ? "chr" : "other";
        if (flags >= 0)
                access = (flags & O_ACCMODE) == O_RDONLY ? "r" : (flags & O_ACCMODE) == O_WRONLY ? "w" : "rw";
        json_object_object_add(o, "type", json_object_new_string(type));
        json_object_object_add(o, "access", json_object_new_string(access));
        return o;
}

/* Keeps {"method", "params"} of a request for fake.requests, with "fds": [{"type",
 * "access"}] when descriptors came with it; the entry becomes c->record. */
static void record_request(Conn *c, const char *method, json_object *params) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "method", json_object_new_string(method));
        json_object_object_add(o, "params", json_object_get(params));
        if (c->n_fds > 0) {
                json_object *fds = json_object_new_array();

                for (size_t i = 0; i < c->n_fds; i++)
                        json_object_array_add(fds, fd_kind(c->fds[i]));
                json_object_object_add(o, "fds", fds);
        }
        json_object_array_add(c->f->requests, o);
        c->record = o;
}

/* Answers one request line. Returns 0, or a negative errno to drop the connection. */
static int serve_line(Conn *c, const char *line, size_t line_len) {
        json_object *req, *id = NULL, *m = NULL, *params = NULL;
        const char *method;
        int r = 0;

        req = json_tokener_parse(line);
        if (!req)
                return send_json(c, error_new(NULL, -32700, "Parse error", NULL));
        (void) json_object_object_get_ex(req, "id", &id);
        (void) json_object_object_get_ex(req, "method", &m);
        (void) json_object_object_get_ex(req, "params", &params);
        method = json_object_get_string(m);
        if (!method)
                method = "";
        c->record = NULL;
        if (!startswith(method, "fake."))
                record_request(c, method, params);

        if (c->late_id) {
                r = send_json(c, reply_new(c->late_id, json_object_new_string("late")));
                json_object_put(c->late_id);
                c->late_id = NULL;
                if (r < 0)
                        goto out;
        }

        if (streq(method, "echo"))
                r = send_json(c, reply_new(id, json_object_get(params)));
        else if (streq(method, "fail")) {
                json_object *data = json_object_new_object(), *extra = NULL, *name = NULL, *msg = NULL;

                if (json_object_object_get_ex(params, "name", &name))
                        json_object_object_add(data, "name", json_object_get(name));
                json_object_object_add(data, "retryable", json_object_new_boolean(0));
                if (json_object_object_get_ex(params, "data", &extra)) {
                        json_object_object_foreach(extra, k, v)
                                json_object_object_add(data, k, json_object_get(v));
                }
                if (param_int(params, "no_data", 0)) {
                        json_object_put(data);
                        data = NULL;
                }
                (void) json_object_object_get_ex(params, "message", &msg);
                r = send_json(c, error_new(id, (int) param_int(params, "code", -32603),
                                           json_object_get_string(msg) ?: "failed", data));
        } else if (streq(method, "notify_then_reply")) {
                int64_t i, n = param_int(params, "count", 0);

                for (i = 0; i < n && r >= 0; i++) {
                        json_object *p = json_object_new_object();

                        json_object_object_add(p, "seq", json_object_new_int64(i));
                        r = send_json(c, notification_new("test.event", p));
                }
                if (r >= 0)
                        r = send_json(c, reply_new(id, json_object_new_string("done")));
        } else if (streq(method, "subscribe")) {
                json_object *res = json_object_new_object();
                int64_t i, n = param_int(params, "count", 0);

                json_object_object_add(res, "subscription", json_object_new_string("s1"));
                r = send_json(c, reply_new(id, res));
                for (i = 0; i < n && r >= 0; i++) {
                        json_object *p = json_object_new_object();

                        json_object_object_add(p, "subscription", json_object_new_string("s1"));
                        json_object_object_add(p, "seq", json_object_new_int64(i));
                        r = send_json(c, notification_new("job.progress", p));
                }
                if (param_int(params, "close", 0))
                        c->closed = true;
        } else if (streq(method, "split") || streq(method, "oversize")) {
                json_object *o = reply_new(id, big_string((size_t) param_int(params, "size", 1)));
                const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
                size_t n = strlen(s), chunk = (size_t) param_int(params, "chunk", (int64_t) n + 1);
                size_t off = 0;

                if (streq(method, "oversize"))
                        chunk = n + 1;
                while (off < n && r >= 0) {
                        size_t k = MIN(chunk, n - off);

                        r = write_all(c->fd, s + off, k);
                        off += k;
                        /* a daemon whose reply comes in pieces: the client gets them one
                         * read at a time */
                        if (off < n)
                                test_fake_pause_ms(1);
                }
                if (r >= 0)
                        r = write_all(c->fd, "\n", 1);
                json_object_put(o);
        } else if (streq(method, "close_mid")) {
                json_object *o = reply_new(id, json_object_new_string("this reply is cut in half"));
                const char *s = json_object_to_json_string(o);

                (void) write_all(c->fd, s, strlen(s) / 2);
                json_object_put(o);
                c->closed = true;
        } else if (streq(method, "never"))
                c->late_id = json_object_get(id);
        else if (streq(method, "stray_first")) {
                json_object *stray = json_object_new_int64(999999);

                r = send_json(c, reply_new(stray, json_object_new_string("stray")));
                json_object_put(stray);
                if (r >= 0)
                        r = send_json(c, reply_new(id, json_object_new_string("real")));
        } else if (streq(method, "fds"))
                r = send_json(c, reply_new(id, serve_fds(c)));
        else if (streq(method, "batch")) {
                json_object *a = json_object_new_array();

                json_object_array_add(a, reply_new(id, json_object_new_string("in a batch")));
                r = send_json(c, a);
        } else if (streq(method, "garbage"))
                r = write_all(c->fd, "this is not json\n", 17);
        else if (streq(method, "null_id_error"))
                r = send_json(c, error_new(NULL, -32600, "Invalid Request", NULL));
        else if (streq(method, "bad_reply")) {
                json_object *o = reply_new(id, json_object_new_int(1));

                json_object_object_add(o, "error", json_object_new_object());
                r = send_json(c, o);
        } else if (streq(method, "server_request")) {
                json_object *o = notification_new("client.ping", NULL);

                json_object_object_add(o, "id", json_object_new_int(7));
                r = send_json(c, o);
                if (r >= 0)
                        r = send_json(c, reply_new(id, json_object_new_string("real")));
        } else if (streq(method, "size")) {
                json_object *res = json_object_new_object();

                json_object_object_add(res, "length", json_object_new_int64((int64_t) line_len));
                json_object_object_add(res, "n_fds", json_object_new_int((int) c->n_fds));
                r = send_json(c, reply_new(id, res));
        } else if (streq(method, "rpc.discover"))
                r = send_json(c, reply_new(id, discover_doc()));
        else if (streq(method, "daemon.status"))
                r = send_json(c, reply_new(id, status_doc()));
        else if (startswith(method, "manager.") || startswith(method, "runner."))
                r = serve_manager(c, id, method, params);
        else if (streq(method, "fake.script"))
                r = send_json(c, reply_new(id, fake_script(c->f, params)));
        else if (streq(method, "fake.requests")) {
                json_object *list = c->f->requests;

                c->f->requests = json_object_new_array();
                r = send_json(c, reply_new(id, list));
        }
        else {
                json_object *data = json_object_new_object();

                json_object_object_add(data, "name", json_object_new_string("method_not_found"));
                json_object_object_add(data, "retryable", json_object_new_boolean(0));
                json_object_object_add(data, "method", json_object_new_string(method));
                r = send_json(c, error_new(id, -32601, "Method not found", data));
        }

out:
        json_object_put(req);
        return r;
}

/* Closes the descriptors the last line brought. */
static void conn_close_fds(Conn *c) {
        size_t i;

        for (i = 0; i < c->n_fds; i++)
                (void) safe_close(c->fds[i]);
        c->n_fds = 0;
}

/* Keeps descriptors from a message's control data. */
static void conn_collect_fds(Conn *c, struct msghdr *mh) {
        struct cmsghdr *cmsg;

        for (cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
                size_t i, n;

                if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
                        if (c->n_fds < FAKE_FDS_MAX)
                                c->fds[c->n_fds++] = fd;
                        else
                                (void) safe_close(fd);
                }
        }
}

/* Serves one connection until EOF, an error, a scripted close, or a stop request. */
static void serve_conn(FakeDaemon *f, int fd) {
        Conn c = { .f = f, .fd = fd };

        c.buf = malloc(FAKE_LINE_MAX);
        if (!c.buf)
                return;

        while (!c.closed) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * FAKE_FDS_MAX)];
                } control;
                struct pollfd p[2] = {
                        { .fd = fd, .events = POLLIN },
                        { .fd = f->wake[0], .events = POLLIN },
                };
                struct iovec iov = { .iov_base = c.buf + c.len, .iov_len = FAKE_LINE_MAX - c.len };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                ssize_t n;
                char *nl;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                if (iov.iov_len == 0)
                        break;
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                conn_collect_fds(&c, &mh);
                c.len += (size_t) n;

                while (!c.closed && (nl = memchr(c.buf, '\n', c.len))) {
                        size_t l = (size_t) (nl - c.buf);

                        *nl = '\0';
                        if (serve_line(&c, c.buf, l + 1) < 0)
                                c.closed = true;
                        conn_close_fds(&c);
                        memmove(c.buf, nl + 1, c.len - l - 1);
                        c.len -= l + 1;
                }
        }

        conn_close_fds(&c);
        json_object_put(c.late_id);
        free(c.buf);
}

/* The thread: accept, serve, repeat, until woken. */
static void *fake_thread(void *userdata) {
        FakeDaemon *f = userdata;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = f->listen_fd, .events = POLLIN },
                        { .fd = f->wake[0], .events = POLLIN },
                };
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                serve_conn(f, fd);
                (void) close(fd);
        }
        return NULL;
}

/* Binds the socket and starts the serving thread. */
int fake_daemon_start(const char *path, FakeDaemon **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        FakeDaemon *f;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->listen_fd = -1;
        f->wake[0] = f->wake[1] = -1;
        f->scripts = json_object_new_object();
        f->requests = json_object_new_array();
        strcpy(f->table, "iris");
        if (!f->scripts || !f->requests) {
                r = -ENOMEM;
                goto fail;
        }

        if (path) {
                if (strlen(path) >= sizeof(f->path)) {
                        r = -ENAMETOOLONG;
                        goto fail;
                }
                strcpy(f->path, path);
        } else {
                const char *tmp = getenv("TMPDIR");

                if (isempty(tmp) || strlen(tmp) > 40)
                        tmp = "/tmp";
                (void) snprintf(f->dir, sizeof(f->dir), "%s/avatar-fake-XXXXXX", tmp);
                if (!mkdtemp(f->dir)) {
                        r = -errno;
                        goto fail;
                }
                (void) snprintf(f->path, sizeof(f->path), "%s/avatard.sock", f->dir);
        }
        strcpy(sa.sun_path, f->path);

        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (f->listen_fd < 0 || pipe2(f->wake, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        (void) unlink(f->path);
        if (bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(f->listen_fd, 16) < 0) {
                r = -errno;
                goto fail;
        }
        r = -pthread_create(&f->thread, NULL, fake_thread, f);
        if (r < 0)
                goto fail;
        f->running = true;
        *ret = f;
        return 0;

fail:
        fake_daemon_stop(f);
        return r;
}

/* The socket path. */
const char *fake_daemon_path(const FakeDaemon *f) {
        return f->path;
}

/* Wakes and joins the thread, then cleans up. */
FakeDaemon *fake_daemon_stop(FakeDaemon *f) {
        if (!f)
                return NULL;
        if (f->running) {
                (void) write_fd(f->wake[1], "x", 1, false);
                (void) pthread_join(f->thread, NULL);
        }
        (void) safe_close(f->listen_fd);
        (void) safe_close(f->wake[0]);
        (void) safe_close(f->wake[1]);
        json_object_put(f->scripts);
        json_object_put(f->requests);
        json_object_put(f->run_jobs);
        if (f->path[0])
                (void) unlink(f->path);
        if (f->dir[0])
                (void) rmdir(f->dir);
        free(f);
        return NULL;
}
