/* SPDX-License-Identifier: MIT */
/*
 * The daemon in a box (fuzz-env.h): services over the fake Upstream, a clock of our own, the
 * same three runners at the start of every input, and the descriptors requests carry.
 */
#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "credential.h"
#include "fuzz-env.h"
#include "log.h"
#include "macro.h"
#include "openrpc.h"
#include "poller.h"
#include "runner.h"
#include "storage.h"

extern const char openrpc_document_text[];
extern const size_t openrpc_document_text_len;

#define SCRIPT_MAX 64
#define SETTLE_PASSES_MAX 10000
#define SCAN_FDS_MAX 256
#define BIG_FILE_BYTES (6u * 1024u * 1024u)
#define PIPE_CONTENT_MAX (60u * 1024u)

/* ---- the clock --------------------------------------------------------------------------- */

static bool clock_frozen;
static struct timespec clock_base;  /* the monotonic time when it was frozen */
static uint64_t clock_shift_usec;   /* how far it was moved since */

static bool clock_is_monotonic(clockid_t id) {
        return id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE || id == CLOCK_MONOTONIC_RAW ||
               id == CLOCK_BOOTTIME;
}

/* Takes the place of the C library's for the whole process (the daemon's objects and
 * libevent call it); the wall clock is passed through. */
__attribute__((visibility("default"))) int clock_gettime(clockid_t id, struct timespec *ts) {
        static int (*real)(clockid_t, struct timespec *);
        uint64_t ns;

        if (!real) {
                real = (int (*)(clockid_t, struct timespec *)) dlsym(RTLD_NEXT, "clock_gettime");
                assert(real);
        }
        if (!clock_frozen || !clock_is_monotonic(id))
                return real(id, ts);
        ns = (uint64_t) clock_base.tv_nsec + clock_shift_usec % 1000000u * 1000u;
        ts->tv_sec = clock_base.tv_sec + (time_t) (clock_shift_usec / 1000000u) + (time_t) (ns / 1000000000u);
        ts->tv_nsec = (long) (ns % 1000000000u);
        return 0;
}

/* ---- what lives for the whole run -------------------------------------------------------- */

static struct event_base *base;
static struct event *sentinel;
static Config *configs[2];        /* [1]: with the compatibility gate */
static OpenRpc *openrpc;
static Dispatch *dispatch;
static Core core;
static char dir[PATH_MAX];
static char runners_dir[PATH_MAX + 16];
static char api_key_path[PATH_MAX + 16];

/* ---- the input under way ----------------------------------------------------------------- */

static char *arena;               /* a copy of the input, cut into strings */
static FakeAnswer script[SCRIPT_MAX];
static size_t n_script;
static const char *files[2];
static size_t file_len[2];
static size_t n_files;
static bool compat;
static bool nokey;
static int fds[FUZZ_FDS];

static const char default_table[] = "id,sepal_length,species\n1,5.1,setosa\n2,4.9,versicolor\n";

/* The runners every input starts with (fuzz-env.h). */
static const char *const pristine_runners[] = {
        "{\"version\":1,\"id\":\"11111111-1111-4111-8111-111111111111\",\"owner\":1000,"
        "\"display_name\":\"patients\",\"set_name\":null,\"previous_set_name\":null,\"do"
        "cs\":[{\"kind\":\"AvatarMetadata\",\"metadata\":{\"name\":\"avatar-metadata-pati"
        "ents\"},\"spec\":{\"display_name\":\"patients\"}},{\"kind\":\"AvatarSchema\",\"met"
        "adata\":{\"name\":\"schema\"},\"spec\":{\"tables\":[{\"name\":\"patients\",\"data\":{"
        "\"volume\":\"input\",\"file\":\"patients.csv\"},\"individual_level\":true,\"colum"
        "ns\":[{\"field\":\"patient_id\",\"type\":\"int\",\"primary_key\":true}],\"links\":["
        "{\"field\":\"patient_id\",\"to\":{\"table\":\"visits\",\"field\":\"patient_id\"},\"me"
        "thod\":\"linear_sum_assignment\"}]},{\"name\":\"visits\",\"data\":{\"volume\":\"in"
        "put\",\"file\":\"visits.csv\"},\"individual_level\":false,\"columns\":[{\"field\""
        ":\"visit_id\",\"type\":\"int\",\"primary_key\":true},{\"field\":\"patient_id\",\"ty"
        "pe\":\"int\",\"identifier\":true}]}]}},{\"kind\":\"AvatarSchema\",\"metadata\":{\""
        "name\":\"schema_avatarized\"},\"spec\":{\"tables\":[{\"name\":\"patients\",\"avata"
        "rs_data\":{\"auto\":true}},{\"name\":\"visits\",\"avatars_data\":{\"auto\":true}}"
        "],\"schema_ref\":\"schema\"}},{\"kind\":\"AvatarParameters\",\"metadata\":{\"name"
        "\":\"standard\"},\"spec\":{\"schema\":\"schema\",\"avatarization\":{\"patients\":{\""
        "k\":5},\"visits\":{\"k\":3}},\"results\":{\"volume\":\"results\",\"path\":\"standard"
        "\"}}}],\"options\":{},\"tables\":{\"patients\":{\"file\":\"patients.csv\",\"bytes\""
        ":38,\"storage_url\":\"s3://avatar/upload/patients.csv\"}},\"warnings\":[],\"j"
        "obs\":[],\"created_at\":1764000000,\"updated_at\":1764000000}",
        "{\"version\":1,\"id\":\"22222222-2222-4222-8222-222222222222\",\"owner\":1000,"
        "\"display_name\":\"iris_k5\",\"set_name\":\"6e7f1c1a-0d55-4b1e-9a55-0a1b2c3d4"
        "e5f\",\"previous_set_name\":null,\"docs\":[{\"kind\":\"AvatarMetadata\",\"metada"
        "ta\":{\"name\":\"avatar-metadata-iris_k5\"},\"spec\":{\"display_name\":\"iris_k5"
        "\",\"pia_metadata\":{\"datarecipient\":\"unknown\",\"data_type\":\"unknown\",\"dat"
        "asubject\":\"unknown\",\"sensitivity_level\":\"Undefined\"}},\"annotations\":{\""
        "client_type\":\"python\",\"client_version\":\"1.29.0\"}},{\"kind\":\"AvatarSchem"
        "a\",\"metadata\":{\"name\":\"schema\"},\"spec\":{\"tables\":[{\"name\":\"iris\",\"data"
        "\":{\"volume\":\"input\",\"file\":\"iris.csv\"}}]}},{\"kind\":\"AvatarSchema\",\"met"
        "adata\":{\"name\":\"schema_avatarized\"},\"spec\":{\"tables\":[{\"name\":\"iris\",\""
        "avatars_data\":{\"auto\":true}}],\"schema_ref\":\"schema\"}},{\"kind\":\"AvatarP"
        "arameters\",\"metadata\":{\"name\":\"standard\"},\"spec\":{\"schema\":\"schema\",\"a"
        "vatarization\":{\"iris\":{\"k\":5}},\"results\":{\"volume\":\"results\",\"path\":\"s"
        "tandard\"}}},{\"kind\":\"AvatarPrivacyMetricsParameters\",\"metadata\":{\"name"
        "\":\"privacy_metrics\"},\"spec\":{\"schema\":\"schema_avatarized\",\"avatarizati"
        "on_ref\":\"standard\",\"results\":{\"volume\":\"results\",\"path\":\"privacy_metri"
        "cs\"}}},{\"kind\":\"AvatarSignalMetricsParameters\",\"metadata\":{\"name\":\"sig"
        "nal_metrics\"},\"spec\":{\"schema\":\"schema_avatarized\",\"avatarization_ref\""
        ":\"standard\",\"results\":{\"volume\":\"results\",\"path\":\"signal_metrics\"}}},{"
        "\"kind\":\"AvatarReportParameters\",\"metadata\":{\"name\":\"report\"},\"spec\":{\""
        "report_type\":\"basic\",\"output_format\":\"pdf\",\"language\":\"en\",\"results\":{"
        "\"volume\":\"results\",\"path\":\"report\"}}},{\"kind\":\"AvatarReportParameters\""
        ",\"metadata\":{\"name\":\"report_pia\"},\"spec\":{\"report_type\":\"pia\",\"output_"
        "format\":\"docx\",\"language\":\"en\",\"results\":{\"volume\":\"results\",\"path\":\"r"
        "eport_pia\"}}}],\"options\":{},\"tables\":{\"iris\":{\"file\":\"iris.csv\",\"bytes"
        "\":4551,\"storage_url\":\"s3://avatar/upload/iris.csv\"}},\"warnings\":[],\"jo"
        "bs\":[{\"parameters_name\":\"standard\",\"kind\":\"standard\",\"name\":\"job-stand"
        "ard\",\"location\":\"/jobs/job-standard\",\"job\":{\"name\":\"job-standard\",\"sta"
        "tus\":\"finished\",\"done\":true,\"progress\":1.0,\"created_at\":\"2025-12-01T10"
        ":00:00Z\"},\"results\":null,\"results_missing\":false},{\"parameters_name\":\""
        "privacy_metrics\",\"kind\":\"privacy_metrics\",\"name\":\"job-privacy\",\"locati"
        "on\":\"/jobs/job-privacy\",\"job\":{\"name\":\"job-privacy\",\"status\":\"error\",\""
        "done\":true,\"progress\":0.5,\"exception\":\"worker lost\"},\"results\":null,\"r"
        "esults_missing\":false},{\"parameters_name\":\"report\",\"kind\":\"report\",\"na"
        "me\":null,\"location\":null,\"job\":null,\"results\":null,\"results_missing\":f"
        "alse}],\"created_at\":1764000000,\"updated_at\":1764000000}",
        "{\"version\":1,\"id\":\"33333333-3333-4333-8333-333333333333\",\"owner\":1001,"
        "\"display_name\":\"someone-else\",\"set_name\":\"7f801d2b-1e66-4c2f-8b66-1b2c"
        "3d4e5f60\",\"previous_set_name\":null,\"docs\":[{\"kind\":\"AvatarMetadata\",\"m"
        "etadata\":{\"name\":\"avatar-metadata-iris_k5\"},\"spec\":{\"display_name\":\"ir"
        "is_k5\",\"pia_metadata\":{\"datarecipient\":\"unknown\",\"data_type\":\"unknown\""
        ",\"datasubject\":\"unknown\",\"sensitivity_level\":\"Undefined\"}},\"annotation"
        "s\":{\"client_type\":\"python\",\"client_version\":\"1.29.0\"}}],\"options\":{},\""
        "tables\":{\"iris\":{\"file\":\"iris.csv\",\"bytes\":4551,\"storage_url\":\"s3://av"
        "atar/upload/iris.csv\"}},\"warnings\":[],\"jobs\":[{\"parameters_name\":\"stan"
        "dard\",\"kind\":\"standard\",\"name\":\"job-other\",\"location\":null,\"job\":{\"nam"
        "e\":\"job-other\",\"status\":\"finished\",\"done\":true},\"results\":null,\"result"
        "s_missing\":false}],\"created_at\":1764000000,\"updated_at\":1764000000}",
};

/* The same, parsed: what a registry that can be kept for the next input must still hold. */
static json_object *pristine_json[3];

/* CoreOps: what the server would answer. daemon.status gathers the services' statistics. */
static json_object *env_status_json(void *userdata) {
        json_object *o = json_object_new_object();

        (void) userdata;
        json_object_object_add(o, "state", json_object_new_string("running"));
        json_object_object_add(o, "upstream", upstream_stats_json(core.upstream));
        json_object_object_add(o, "api", api_stats_json(core.api));
        json_object_object_add(o, "cache", cache_stats_json(core.cache));
        json_object_object_add(o, "poller", poller_stats_json(core.poller));
        json_object_object_add(o, "runners", runners_stats_json(core.runners));
        json_object_object_add(o, "storage", storage_stats_json(core.storage));
        json_object_object_add(o, "requests", dispatch_requests_json(dispatch));
        json_object_object_add(o, "errors", dispatch_errors_json(dispatch));
        return o;
}

static int env_reload(void *userdata, char **ret_error) {
        (void) userdata;
        if (ret_error)
                *ret_error = strdup("the configuration file cannot be read here");
        return -EINVAL;
}

static void env_status_changed(void *userdata) {
        (void) userdata;
}

static const CoreOps env_core_ops = {
        .status_json = env_status_json,
        .reload = env_reload,
        .status_changed = env_status_changed,
};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        return ftw->level > 0 && remove(path) < 0 ? -1 : 0;
}

/* Empties the state directory (keeping it). */
static void clean_state(void) {
        (void) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_state(void) {
        clean_state();
        (void) rmdir(dir);
}

static void on_sentinel(evutil_socket_t fd, short what, void *userdata) {
        (void) fd;
        (void) what;
        (void) userdata;
}

/* A configuration: the harness's state directory, an https API, the roles of fuzz-env.h. */
static Config *make_config(bool gate) {
        ConfigError err = {};
        Config *c = NULL;
        char *yaml = NULL;
        int r;

        r = asprintf(&yaml,
                     "state_directory: %s\n"
                     "limits:\n"
                     "  max_inflight_per_connection: 8\n"
                     "upstream:\n"
                     "  base_url: https://avatar.example.com\n"
                     "  verify_compatibility: %s\n"
                     "runners:\n"
                     "  multipart_threshold_bytes: 5MiB\n"
                     "  multipart_part_bytes: 5MiB\n"
                     "  max_runners_per_uid: 8\n"
                     "access:\n"
                     "  admin:\n"
                     "    users: [1]\n"
                     "  operate:\n"
                     "    users: [1000, 1001]\n"
                     "  read:\n"
                     "    users: [2000]\n",
                     dir, gate ? "yes" : "no");
        assert(r > 0);
        r = config_new(&c);
        assert(r == 0);
        r = config_load_string(c, "fuzz.yaml", yaml, strlen(yaml), &err);
        if (r >= 0)
                r = config_finalize(c, &err);
        if (r < 0) {
                fprintf(stderr, "fuzz-env: configuration: %s\n", err.message ? err.message : strerror(-r));
                abort();
        }
        free(yaml);
        return c;
}

/* The clock must be ours in libevent too: a timer 10 s away fires once it is moved by 10 s. */
static bool fired;

static void on_check(evutil_socket_t fd, short what, void *userdata) {
        (void) fd;
        (void) what;
        (void) userdata;
        fired = true;
}

static void check_clock(void) {
        struct timeval ten = { 10, 0 };
        struct event *ev = evtimer_new(base, on_check, NULL);

        evtimer_add(ev, &ten);
        event_base_loop(base, EVLOOP_NONBLOCK);
        assert(!fired);
        clock_shift_usec += 10u * 1000000u;
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (!fired) {
                fprintf(stderr, "fuzz-env: libevent does not read the harness's clock (clock_gettime not "
                                "interposed)\n");
                abort();
        }
        event_free(ev);
}

void fuzz_env_init(void) {
        const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        const char *error = NULL;
        int r;

        log_set_max_level(LOG_EMERG);
        /* as the daemon does: a write to a pipe whose reader left is EPIPE, not a signal */
        signal(SIGPIPE, SIG_IGN);

        assert(clock_gettime(CLOCK_MONOTONIC, &clock_base) == 0);
        clock_frozen = true;

        snprintf(dir, sizeof(dir), "%s/avatard-fuzz-XXXXXX", tmp);
        assert(mkdtemp(dir));
        atexit(remove_state);
        snprintf(runners_dir, sizeof(runners_dir), "%s/runners", dir);
        snprintf(api_key_path, sizeof(api_key_path), "%s/api-key", dir);

        base = event_base_new();
        assert(base);
        sentinel = evtimer_new(base, on_sentinel, NULL);
        assert(sentinel);
        check_clock();

        configs[0] = make_config(false);
        configs[1] = make_config(true);
        r = openrpc_load(openrpc_document_text, openrpc_document_text_len, &openrpc, &error);
        assert(r == 0);
        for (size_t i = 0; i < 3; i++) {
                pristine_json[i] = json_tokener_parse(pristine_runners[i]);
                assert(pristine_json[i]);
        }
        core = (Core){ .base = base, .config = configs[0], .openrpc = openrpc, .ops = &env_core_ops };
        r = dispatch_new(&core, openrpc, NULL, NULL, &dispatch, &error);
        if (r < 0) {
                fprintf(stderr, "fuzz-env: dispatch_new: %s\n", error ? error : strerror(-r));
                abort();
        }
}

Core *fuzz_env_core(void) {
        return &core;
}

Dispatch *fuzz_env_dispatch(void) {
        return dispatch;
}

struct event_base *fuzz_env_base(void) {
        return base;
}

const int *fuzz_env_fds(void) {
        return fds;
}

/* ---- the input's sections ---------------------------------------------------------------- */

/* One "%%% " line (NUL-terminated, cut in place) and the text after it. */
static void parse_section(char *line, const char *body, size_t body_len) {
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        FakeAnswer *a;

        if (!tok)
                return;
        if (strcmp(tok, "compat") == 0) {
                compat = true;
                return;
        }
        if (strcmp(tok, "nokey") == 0) {
                nokey = true;
                return;
        }
        if (strcmp(tok, "file") == 0) {
                if (n_files < 2) {
                        files[n_files] = body;
                        file_len[n_files++] = body_len;
                }
                return;
        }
        if (n_script >= SCRIPT_MAX)
                return;
        a = &script[n_script++];
        *a = (FakeAnswer){ .status = 200, .body = body, .body_len = body_len };
        if (tok[0] == '!') {
                static const struct {
                        const char *name;
                        int error;
                } errors[] = {
                        { "!refused", -ECONNREFUSED }, { "!reset", -ECONNRESET },
                        { "!timeout", -ETIMEDOUT },    { "!toolarge", -EMSGSIZE },
                };

                a->error = -EIO;
                for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
                        if (strcmp(tok, errors[i].name) == 0)
                                a->error = errors[i].error;
                return;
        }
        if (tok[0] >= '0' && tok[0] <= '9') {
                long s = strtol(tok, NULL, 10);

                a->status = s < 100 ? 100 : s > 999 ? 999 : s;
        }
        while ((tok = strtok_r(NULL, " ", &save)) && a->n_headers < FAKE_HEADERS_MAX) {
                char *colon = strchr(tok, ':');

                if (!colon || colon == tok)
                        continue;
                *colon = '\0';
                a->headers[a->n_headers].name = tok;
                a->headers[a->n_headers].value = colon + 1;
                a->n_headers++;
        }
}

/* Cuts the input: the harness's part, then the sections. */
static const char *parse_input(const char *data, size_t size, size_t *ret_len) {
        char *p, *end;
        size_t head;

        arena = malloc(size + 1);
        assert(arena);
        memcpy(arena, data, size);
        arena[size] = '\0';
        end = arena + size;
        n_script = n_files = 0;
        compat = nokey = false;

        if (size >= 4 && memcmp(arena, "%%% ", 4) == 0)
                p = arena;
        else {
                p = memmem(arena, size, "\n%%% ", 5);
                p = p ? p + 1 : end;
        }
        head = (size_t) (p - arena);
        while (p < end) {
                char *line = p + 4, *nl = memchr(line, '\n', (size_t) (end - line)), *body, *next;

                body = nl ? nl + 1 : end;
                next = memmem(body, (size_t) (end - body), "\n%%% ", 5);
                if (nl)
                        *nl = '\0';
                /* a section's text ends before the newline of the next "%%% " line */
                parse_section(line, body, next ? (size_t) (next - body) : (size_t) (end - body));
                p = next ? next + 1 : end;
        }
        *ret_len = head;
        return arena;
}

/* ---- descriptors ------------------------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                assert(k > 0);
                p += k;
                n -= (size_t) k;
        }
}

static int make_memfd(const char *p, size_t n) {
        int fd = memfd_create("fuzz-table", MFD_CLOEXEC);

        assert(fd >= 0);
        write_all(fd, p, n);
        assert(lseek(fd, 0, SEEK_SET) == 0);
        return fd;
}

static void make_fds(void) {
        const char *second = n_files > 1 ? files[1] : n_files > 0 ? files[0] : default_table;
        size_t second_len = n_files > 1 ? file_len[1] : n_files > 0 ? file_len[0] : strlen(default_table);
        int p[2], s[2];

        if (second_len > PIPE_CONTENT_MAX)
                second_len = PIPE_CONTENT_MAX;
        fds[0] = n_files > 0 ? make_memfd(files[0], file_len[0]) : make_memfd(default_table, strlen(default_table));

        assert(pipe2(p, O_CLOEXEC) == 0);
        write_all(p[1], second, second_len);
        close(p[1]);
        fds[1] = p[0];

        fds[2] = open("/dev/null", O_RDWR | O_CLOEXEC);
        fds[3] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) == 0);
        write_all(s[1], second, second_len);
        close(s[1]);
        fds[4] = s[0];

        fds[5] = make_memfd("", 0);
        fds[6] = make_memfd("", 0);
        assert(ftruncate(fds[6], BIG_FILE_BYTES) == 0);
        fds[7] = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        for (size_t i = 0; i < FUZZ_FDS; i++)
                assert(fds[i] >= 0);
}

/* ---- an input ---------------------------------------------------------------------------- */

static void write_runner_file(const char *text) {
        char path[PATH_MAX + 64];
        const char *id = strstr(text, "\"id\":\"");
        int fd;

        assert(id);
        snprintf(path, sizeof(path), "%s/%.36s.json", runners_dir, id + 6);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert(fd >= 0);
        write_all(fd, text, strlen(text));
        close(fd);
}

/* Whether a string member of a runner file equals s (both may be absent). */
static bool str_matches(json_object *file, const char *key, const char *s) {
        json_object *v = json_object_object_get(file, key);
        const char *f = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

        return f && s ? strcmp(f, s) == 0 : !f && !s;
}

static bool json_matches(json_object *file, const char *key, json_object *o) {
        return json_object_equal(json_object_object_get(file, key), o);
}

/* Whether a runner is exactly as its file was loaded: nothing of it changed, in memory or on
 * disk, and nothing refers to it (no operation, waiter, watch). */
static bool runner_pristine(const Runner *r, json_object *file) {
        json_object *jobs = json_object_object_get(file, "jobs");

        if (r->busy || r->watch || r->last_error || r->closed || r->n_ref != 1 || !TAILQ_EMPTY(&r->waiters) ||
            !str_matches(file, "id", r->id) || !str_matches(file, "display_name", r->display_name) ||
            !str_matches(file, "set_name", r->set_name) ||
            !str_matches(file, "previous_set_name", r->previous_set_name) ||
            json_object_get_int64(json_object_object_get(file, "owner")) != (int64_t) r->owner ||
            !json_matches(file, "docs", r->docs) || !json_matches(file, "options", r->options) ||
            !json_matches(file, "tables", r->tables) || !json_matches(file, "warnings", r->warnings) ||
            json_object_array_length(jobs) != r->n_jobs)
                return false;
        for (size_t i = 0; i < r->n_jobs; i++) {
                json_object *j = json_object_array_get_idx(jobs, i);
                const RunnerJob *rj = &r->jobs[i];

                if (!str_matches(j, "parameters_name", rj->parameters_name) || !str_matches(j, "kind", rj->kind) ||
                    !str_matches(j, "name", rj->name) || !str_matches(j, "location", rj->location) ||
                    !json_matches(j, "job", rj->job) || !json_matches(j, "results", rj->results) ||
                    json_object_get_boolean(json_object_object_get(j, "results_missing")) != rj->results_missing)
                        return false;
        }
        return true;
}

/* Whether the registry of the last input can serve the next one: it wrote nothing, lost and
 * gained no runner, and each runner is as loaded. Loading the three files again is most of
 * the cost of an input otherwise. */
static bool runners_reusable(const Runners *rs) {
        struct stat st;
        size_t i = 0;
        Runner *r;

        if (!rs || rs->n != 3 || rs->saves != 0 || rs->save_errors != 0 || rs->access_batch_missing ||
            json_object_array_length(rs->damaged) != 0)
                return false;
        TAILQ_FOREACH(r, &rs->list, link)
                if (!runner_pristine(r, pristine_json[i++]))
                        return false;
        /* nothing else written to the state directory (a stored API key) */
        return stat(api_key_path, &st) < 0;
}

const char *fuzz_env_begin(const char *data, size_t size, size_t *ret_len) {
        StorageOptions so;
        Credential *cred = NULL;
        const char *requests;
        int r;

        requests = parse_input(data, size, ret_len);
        core.config = configs[compat];

        if (!core.runners) {
                clean_state();
                assert(mkdir(runners_dir, 0700) == 0);
                for (size_t i = 0; i < sizeof(pristine_runners) / sizeof(pristine_runners[0]); i++)
                        write_runner_file(pristine_runners[i]);
        }
        make_fds();

        r = upstream_new(base, NULL, &core.upstream);
        assert(r == 0);
        fake_upstream_set_script(core.upstream, script, n_script);
        r = api_new(base, core.upstream, core.config, &core.api);
        assert(r == 0);
        if (!nokey) {
                r = credential_new_api_key(FUZZ_API_KEY, "fuzz", &cred);
                assert(r == 0);
                api_set_credential(core.api, cred);
        }
        r = cache_new(core.api, &core.cache);
        assert(r == 0);
        r = poller_new(base, core.api, core.cache, core.config, &core.poller);
        assert(r == 0);
        so = (StorageOptions){
                .endpoint_url = core.config->storage_url,
                .multipart_threshold = core.config->multipart_threshold_bytes,
                .part_size = core.config->multipart_part_bytes,
        };
        r = storage_new(base, core.upstream, &so, &core.storage);
        assert(r == 0);
        if (core.runners)
                core.runners->poller = core.poller; /* kept from the last input */
        else {
                r = runners_new(core.poller, dir, &core.runners);
                assert(r == 0);
                assert(core.runners->n == 3);
        }
        return requests;
}

char *fuzz_env_substitute(const char *line, size_t len, size_t *ret_len) {
        const char *id = FUZZ_RUNNER_CONFIGURING, *p;
        Runner *last = TAILQ_LAST(&core.runners->list, RunnerList);
        size_t pl = strlen(FUZZ_RUNNER_PLACEHOLDER), o = 0;
        char *out;

        if (last)
                id = last->id;
        out = malloc(len * (RUNNER_ID_LEN / 7 + 1) + 1);
        assert(out);
        for (p = line; p < line + len;) {
                if ((size_t) (line + len - p) >= pl && memcmp(p, FUZZ_RUNNER_PLACEHOLDER, pl) == 0) {
                        memcpy(out + o, id, RUNNER_ID_LEN);
                        o += RUNNER_ID_LEN;
                        p += pl;
                } else
                        out[o++] = *p++;
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

/* Whether the input runs with the credential. */
bool fuzz_env_has_key(void) {
        return !nokey;
}

/* What the loop has to do at the present time, and when its next timer is due. */
typedef struct Scan {
        struct timeval now;
        bool due;
        bool have_next;
        struct timeval next;
        struct pollfd pfd[SCAN_FDS_MAX];
        size_t n_pfd;
} Scan;

static int scan_event(const struct event_base *b, const struct event *ev, void *userdata) {
        Scan *s = userdata;
        struct timeval tv;
        short what;

        (void) b;
        if (ev == sentinel)
                return 0;
        if (event_pending(ev, EV_TIMEOUT, &tv)) {
                if (timercmp(&tv, &s->now, <=))
                        s->due = true;
                else if (!s->have_next || timercmp(&tv, &s->next, <)) {
                        s->next = tv;
                        s->have_next = true;
                }
        }
        what = (short) event_pending(ev, EV_READ | EV_WRITE, NULL);
        if (what && event_get_fd(ev) >= 0 && s->n_pfd < SCAN_FDS_MAX)
                s->pfd[s->n_pfd++] = (struct pollfd){
                        .fd = event_get_fd(ev),
                        .events = (short) ((what & EV_READ ? POLLIN : 0) | (what & EV_WRITE ? POLLOUT : 0)),
                };
        return 0;
}

static void scan(Scan *s) {
        static const struct timeval zero = { 0, 0 };

        *s = (Scan){};
        /* a timer added now expires now: its expiry is the present, in the timers' terms */
        evtimer_add(sentinel, &zero);
        assert(event_pending(sentinel, EV_TIMEOUT, &s->now));
        event_base_foreach_event(base, scan_event, s);
        evtimer_del(sentinel);
        if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0)
                s->due = true;
        if (!s->due && s->n_pfd > 0 && poll(s->pfd, s->n_pfd, 0) > 0)
                s->due = true;
}

void fuzz_env_settle(void) {
        Scan s;

        for (unsigned i = 0; i < SETTLE_PASSES_MAX; i++) {
                event_base_loop(base, EVLOOP_NONBLOCK);
                scan(&s);
                if (!s.due)
                        return;
        }
        fprintf(stderr, "fuzz-env: the loop still has work due after %u passes at the same time: a busy loop\n",
                SETTLE_PASSES_MAX);
        abort();
}

bool fuzz_env_advance(void) {
        Scan s;
        uint64_t usec;

        scan(&s);
        if (!s.have_next)
                return false;
        usec = (uint64_t) (s.next.tv_sec - s.now.tv_sec) * 1000000u + (uint64_t) s.next.tv_usec -
               (uint64_t) s.now.tv_usec;
        clock_shift_usec += usec > 0 ? usec : 1;
        fuzz_env_settle();
        return true;
}

void fuzz_env_end(void) {
        if (dispatch_inflight(dispatch) > 0) {
                fprintf(stderr, "fuzz-env: %u call(s) never finished, though time ran on and their "
                                "callers left\n", dispatch_inflight(dispatch));
                abort();
        }
        if (!runners_reusable(core.runners))
                core.runners = runners_free(core.runners);
        core.storage = storage_free(core.storage);
        core.poller = poller_free(core.poller);
        core.cache = cache_free(core.cache);
        core.api = api_free(core.api);
        core.upstream = upstream_free(core.upstream);
        fuzz_env_settle();
        for (size_t i = 0; i < FUZZ_FDS; i++)
                fds[i] = safe_close(fds[i]);
        free(arena);
        arena = NULL;
}
