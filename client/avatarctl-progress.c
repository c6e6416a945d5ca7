/* SPDX-License-Identifier: MIT */
/*
 * avatarctl progress display (see avatarctl-progress.h): upload and download lines, and a
 * block of job lines, redrawn in place on a terminal or printed as plain lines otherwise.
 */
#include <inttypes.h>
#include <math.h>
#include <sys/ioctl.h>
#include <time.h>

#include "avatarctl-output.h"
#include "avatarctl-progress.h"

/* Width of the job name column ("privacy_metrics" and a margin). */
#define JOB_NAME_WIDTH 16
/* Width of the job status column ("finished" and a space; the percentage follows, right-aligned
 * in four columns: "pending   40%", "finished 100%"). */
#define JOB_STATUS_WIDTH 9
/* Most jobs the display keeps (a runner has six at most; a watched set a few more). */
#define JOBS_MAX 64
/* Plain upload lines come at most this often, in seconds (and always for the last bytes). */
#define PLAIN_UPLOAD_INTERVAL_S 1.0
/* Terminal width when it cannot be asked. */
#define COLUMNS_DEFAULT 80

/* What the next redraw replaces. */
typedef enum LiveRegion {
        LIVE_NONE,      /* nothing: the cursor is at the start of a fresh line */
        LIVE_LINE,      /* one line without its newline; the cursor is at its end */
        LIVE_JOBS,      /* the job block: n_drawn lines, the cursor below them */
} LiveRegion;

/* One job as last shown. */
typedef struct ProgressJob {
        char *name;             /* parameters_name */
        char *status;
        double progress;        /* 0..1; NAN: unknown */
        char *exception;        /* NULL or "" when none */
        char *plain;            /* the last plain line printed for it, to print changes only */
} ProgressJob;

struct Progress {
        FILE *f;
        ProgressMode mode;
        char *runner_id;        /* notifications of other runners are ignored; NULL: none */
        LiveRegion live;
        size_t n_drawn;         /* lines of the job block on the screen */

        char *upload_file;
        char *upload_key;       /* the "file" of the last upload notification */
        uint64_t upload_bytes;  /* the bytes it told */
        uint64_t upload_total;
        double upload_start;    /* monotonic seconds */
        double plain_last;      /* when the last plain upload line was printed */
        uint64_t plain_bytes;   /* the bytes that line showed */
        bool upload_plain_any;

        char *download_result;
        char *download_path;

        ProgressJob jobs[JOBS_MAX];
        size_t n_jobs;
        uint64_t stalled_shown; /* polls without news last said (0: news since) */
};

/* Seconds on the monotonic clock. */
static double now_s(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* The terminal's columns. */
static size_t columns(FILE *f) {
        struct winsize w = {};

        if (ioctl(fileno(f), TIOCGWINSZ, &w) < 0 || w.ws_col == 0)
                return COLUMNS_DEFAULT;
        return w.ws_col;
}

/* Replaces control characters and cuts s to at most `width` code points, in place. */
static void sanitize_cut(char *s, size_t width) {
        size_t n = 0;
        unsigned char *p;

        for (p = (unsigned char *) s; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        *p = '?';
                        p[1] = '?';
                }
                if ((*p & 0xc0) != 0x80) {
                        if (n == width) {
                                *p = '\0';
                                return;
                        }
                        n++;
                }
        }
}

/* Picks the mode from where stderr goes: -q silences it; otherwise a terminal gets lines
 * redrawn in place, anything else (a log, a pipe) a plain line per change. */
ProgressMode progress_mode_for(const Ctl *ctl) {
        const char *term = getenv("TERM");

        if (ctl->quiet)
                return PROGRESS_OFF;
        if (ctl->stderr_tty && !streq_ptr(term, "dumb"))
                return PROGRESS_TERMINAL;
        return PROGRESS_PLAIN;
}

/* The message hook: ends the live region before an error or warning is printed. */
static void on_message(void *userdata) {
        progress_break(userdata);
}

/* Creates a display. */
int progress_new(FILE *f, ProgressMode mode, Progress **ret) {
        Progress *p;

        assert_return(f && mode >= 0 && mode < _PROGRESS_MODE_MAX, -EINVAL);
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->f = f;
        p->mode = mode;
        if (mode == PROGRESS_TERMINAL)
                ctl_set_message_hook(on_message, p);
        *ret = p;
        return 0;
}

/* Frees one job's strings. */
static void job_done(ProgressJob *j) {
        free(j->name);
        free(j->status);
        free(j->exception);
        free(j->plain);
        *j = (ProgressJob) {};
}

/* Ends the live region and frees. */
Progress *progress_free(Progress *p) {
        size_t i;

        if (!p)
                return NULL;
        progress_break(p);
        if (p->mode == PROGRESS_TERMINAL)
                ctl_set_message_hook(NULL, NULL);
        for (i = 0; i < p->n_jobs; i++)
                job_done(&p->jobs[i]);
        free(p->runner_id);
        free(p->upload_file);
        free(p->upload_key);
        free(p->download_result);
        free(p->download_path);
        free(p);
        return NULL;
}

/* Replaces a string member with a copy of s. Returns 0 or -ENOMEM. */
static int set_string(char **dst, const char *s) {
        char *c = NULL;

        if (s && !(c = strdup(s)))
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

/* Sets the runner whose notifications count. */
int progress_set_runner(Progress *p, const char *runner_id) {
        if (!p)
                return 0;
        return set_string(&p->runner_id, runner_id);
}

/* Ends the live region. */
void progress_break(Progress *p) {
        if (!p)
                return;
        if (p->live == LIVE_LINE)
                (void) fputc('\n', p->f);
        p->live = LIVE_NONE;
        p->n_drawn = 0;
        (void) fflush(p->f);
}

/* Draws `text` as the live line (terminal mode), replacing the previous one. */
static void draw_line(Progress *p, const char *text) {
        _cleanup_free_ char *t = strdup(text);

        if (!t)
                return;
        if (p->live == LIVE_JOBS)
                progress_break(p);
        sanitize_cut(t, columns(p->f) - 1);
        (void) fprintf(p->f, "\r%s\033[K", t);
        p->live = LIVE_LINE;
        (void) fflush(p->f);
}

/* Prints a finished line: replaces the live line on a terminal, else a line of its own. */
static void print_line(Progress *p, const char *text) {
        _cleanup_free_ char *t = strdup(text);

        if (!t)
                return;
        if (p->mode == PROGRESS_TERMINAL) {
                if (p->live == LIVE_JOBS)
                        progress_break(p);
                sanitize_cut(t, columns(p->f) - 1);
                (void) fprintf(p->f, "\r%s\033[K\n", t);
        } else {
                sanitize_cut(t, SIZE_MAX);
                (void) fprintf(p->f, "%s\n", t);
        }
        p->live = LIVE_NONE;
        (void) fflush(p->f);
}

/* Formats a byte count for people. */
void progress_format_bytes(uint64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) bytes;
        size_t u = 0;

        if (bytes < 1024) {
                (void) snprintf(buf, size, "%" PRIu64 " B", bytes);
                return;
        }
        v /= 1024.0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        (void) snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* Starts an upload. */
void progress_upload_begin(Progress *p, const char *file, uint64_t total) {
        char line[512], t[32];

        if (!p || p->mode == PROGRESS_OFF)
                return;
        (void) set_string(&p->upload_file, file);
        p->upload_key = mfree(p->upload_key);
        p->upload_bytes = 0;
        p->upload_total = total;
        p->upload_start = now_s();
        p->plain_last = 0;
        p->plain_bytes = 0;
        p->upload_plain_any = false;
        if (p->mode != PROGRESS_TERMINAL)
                return;
        progress_format_bytes(total, t, sizeof(t));
        if (total > 0)
                (void) snprintf(line, sizeof(line), "upload  %s  0 B / %s    0%%", file ?: "", t);
        else
                (void) snprintf(line, sizeof(line), "upload  %s  0 B", file ?: "");
        draw_line(p, line);
}

/* The terminal upload line: bytes, percentage, rate. */
static void upload_terminal_line(Progress *p, uint64_t bytes, uint64_t total, char *line, size_t size) {
        char done[32], all[32], rate[32] = "";
        double elapsed = now_s() - p->upload_start;

        progress_format_bytes(bytes, done, sizeof(done));
        if (elapsed > 0.2 && bytes > 0) {
                progress_format_bytes((uint64_t) ((double) bytes / elapsed), rate, sizeof(rate) - 2);
                strcat(rate, "/s");
        }
        if (total > 0) {
                progress_format_bytes(total, all, sizeof(all));
                (void) snprintf(line, size, "upload  %s  %s / %s  %3.0f%%%s%s", p->upload_file ?: "", done, all,
                                floor(100.0 * (double) MIN(bytes, total) / (double) total), *rate ? "  " : "", rate);
        } else
                (void) snprintf(line, size, "upload  %s  %s%s%s", p->upload_file ?: "", done, *rate ? "  " : "",
                                rate);
}

/* The plain upload line. */
static void upload_plain_line(Progress *p, uint64_t bytes, uint64_t total) {
        char line[128];

        if (total > 0)
                (void) snprintf(line, sizeof(line), "upload %" PRIu64 "/%" PRIu64 " bytes", bytes, total);
        else
                (void) snprintf(line, sizeof(line), "upload %" PRIu64 " bytes", bytes);
        print_line(p, line);
        p->plain_last = now_s();
        p->plain_bytes = bytes;
        p->upload_plain_any = true;
}

/* Upload progress. */
void progress_upload(Progress *p, uint64_t bytes, uint64_t total) {
        char line[512];

        if (!p || p->mode == PROGRESS_OFF)
                return;
        p->upload_bytes = bytes;
        if (total > 0)
                p->upload_total = total;
        if (p->mode == PROGRESS_TERMINAL) {
                upload_terminal_line(p, bytes, p->upload_total, line, sizeof(line));
                draw_line(p, line);
                return;
        }
        if (!p->upload_plain_any || (p->upload_total > 0 && bytes >= p->upload_total) ||
            now_s() - p->plain_last >= PLAIN_UPLOAD_INTERVAL_S)
                upload_plain_line(p, bytes, p->upload_total);
}

/* The upload is complete. */
void progress_upload_end(Progress *p, uint64_t bytes) {
        char line[512];

        if (!p || p->mode == PROGRESS_OFF)
                return;
        if (p->upload_total == 0)
                p->upload_total = bytes;
        if (p->mode == PROGRESS_TERMINAL) {
                upload_terminal_line(p, bytes, p->upload_total, line, sizeof(line));
                print_line(p, line);
                return;
        }
        if (!p->upload_plain_any || p->plain_bytes != bytes)
                upload_plain_line(p, bytes, p->upload_total);
}

/* The job named `name`, added when new; NULL when the table is full or on OOM. */
static ProgressJob *job_get(Progress *p, const char *name) {
        size_t i;

        for (i = 0; i < p->n_jobs; i++)
                if (streq(p->jobs[i].name, name))
                        return &p->jobs[i];
        if (p->n_jobs >= JOBS_MAX)
                return NULL;
        p->jobs[p->n_jobs] = (ProgressJob) { .progress = NAN };
        if (set_string(&p->jobs[p->n_jobs].name, name) < 0)
                return NULL;
        return &p->jobs[p->n_jobs++];
}

/* The terminal line of a job: "standard         pending   40%". */
static void job_terminal_line(const ProgressJob *j, char *line, size_t size) {
        char pct[16] = "-";

        if (!isnan(j->progress))
                (void) snprintf(pct, sizeof(pct), "%.0f%%", floor(100.0 * CLAMP(j->progress, 0.0, 1.0)));
        (void) snprintf(line, size, "%-*s %-*s%4s%s%s", JOB_NAME_WIDTH, j->name, JOB_STATUS_WIDTH,
                        isempty(j->status) ? "-" : j->status, pct, isempty(j->exception) ? "" : "  ",
                        j->exception ?: "");
}

/* The plain line of a job: "job standard pending 0.4". The progress goes by tenths, so that
 * a log gets a line when the state changes and at every tenth, not at every poll. */
static void job_plain_line(const ProgressJob *j, char *line, size_t size) {
        char pct[32] = "-";

        if (!isnan(j->progress))
                (void) snprintf(pct, sizeof(pct), "%g", floor(CLAMP(j->progress, 0.0, 1.0) * 10.0 + 1e-9) / 10.0);
        (void) snprintf(line, size, "job %s %s %s", j->name, isempty(j->status) ? "-" : j->status, pct);
}

/* Redraws the job block in place. */
static void draw_jobs(Progress *p) {
        size_t i, width = columns(p->f) - 1;

        if (p->live == LIVE_LINE)
                progress_break(p);
        if (p->live == LIVE_JOBS && p->n_drawn > 0)
                (void) fprintf(p->f, "\033[%zuA", p->n_drawn);
        for (i = 0; i < p->n_jobs; i++) {
                char line[512];

                job_terminal_line(&p->jobs[i], line, sizeof(line));
                sanitize_cut(line, width);
                (void) fprintf(p->f, "\r%s\033[K\n", line);
        }
        p->live = LIVE_JOBS;
        p->n_drawn = p->n_jobs;
        (void) fflush(p->f);
}

/* Jobs changed. */
void progress_jobs(Progress *p, json_object *jobs) {
        size_t i, n;

        if (!p || p->mode == PROGRESS_OFF || !json_object_is_type(jobs, json_type_array))
                return;
        n = json_object_array_length(jobs);
        for (i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(jobs, i), *v = NULL;
                const char *name = ctl_member_string(o, "parameters_name") ?: ctl_member_string(o, "name");
                ProgressJob *j;

                if (!name)
                        continue;
                j = job_get(p, name);
                if (!j)
                        continue;
                (void) set_string(&j->status, ctl_member_string(o, "status"));
                (void) set_string(&j->exception, ctl_member_string(o, "exception"));
                if (json_object_object_get_ex(o, "progress", &v) &&
                    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
                        j->progress = json_object_get_double(v);
                        if (j->progress > 1.0) /* a percentage already */
                                j->progress /= 100.0;
                } else if (json_object_object_get_ex(o, "progress", NULL))
                        j->progress = NAN;

                /* A job the server has not reported yet is no news in a log. */
                if (p->mode == PROGRESS_PLAIN && !isempty(j->status)) {
                        char line[512];

                        job_plain_line(j, line, sizeof(line));
                        if (!streq_ptr(line, j->plain)) {
                                print_line(p, line);
                                (void) set_string(&j->plain, line);
                        }
                }
        }
        if (p->mode == PROGRESS_TERMINAL && p->n_jobs > 0)
                draw_jobs(p);
}

/* Starts a download. */
void progress_download_begin(Progress *p, const char *result, const char *path) {
        char line[512];

        if (!p || p->mode == PROGRESS_OFF)
                return;
        (void) set_string(&p->download_result, result);
        (void) set_string(&p->download_path, path);
        if (p->mode != PROGRESS_TERMINAL)
                return;
        (void) snprintf(line, sizeof(line), "download %s -> %s", result ?: "", path ?: "");
        draw_line(p, line);
}

/* Download progress (terminal mode only). */
void progress_download(Progress *p, uint64_t bytes, uint64_t total) {
        char line[512], done[32], all[32];

        if (!p || p->mode != PROGRESS_TERMINAL)
                return;
        progress_format_bytes(bytes, done, sizeof(done));
        if (total > 0) {
                progress_format_bytes(total, all, sizeof(all));
                (void) snprintf(line, sizeof(line), "download %s -> %s  %s / %s  %3.0f%%", p->download_result ?: "",
                                p->download_path ?: "", done, all,
                                floor(100.0 * (double) MIN(bytes, total) / (double) total));
        } else
                (void) snprintf(line, sizeof(line), "download %s -> %s  %s", p->download_result ?: "",
                                p->download_path ?: "", done);
        draw_line(p, line);
}

/* The download is complete. */
void progress_download_end(Progress *p, uint64_t bytes) {
        char line[1024];

        if (!p || p->mode == PROGRESS_OFF)
                return;
        (void) snprintf(line, sizeof(line), "downloaded %s -> %s (%" PRIu64 " bytes)", p->download_result ?: "",
                        p->download_path ?: "", bytes);
        print_line(p, line);
}

/* The daemon's polls of the run's jobs brought nothing new `polls` times in a row: said
 * once, then again each time the count doubles (a wait of hours says it a few times). */
static void progress_stalled(Progress *p, uint64_t polls, const char *last_error) {
        char line[1024];

        if (p->mode == PROGRESS_OFF || polls == 0 || (p->stalled_shown > 0 && polls < 2 * p->stalled_shown))
                return;
        p->stalled_shown = polls;
        (void) snprintf(line, sizeof(line),
                        "no news of the jobs from the Avatar server in %" PRIu64 " polls%s%s%s; still waiting", polls,
                        last_error ? " (last error: " : "", last_error ?: "", last_error ? ")" : "");
        print_line(p, line);
}

/* An unsigned integer member, 0 when absent or not a number. */
static uint64_t u64_member(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        return json_object_get_uint64(v);
}

/* Feeds runner.progress notifications to the display. */
void progress_on_notification(const char *method, json_object *params, void *userdata) {
        Progress *p = userdata;
        const char *event, *runner;

        if (!p || !streq_ptr(method, "runner.progress") || !json_object_is_type(params, json_type_object))
                return;
        runner = ctl_member_string(params, "runner_id");
        if (p->runner_id && runner && !streq(runner, p->runner_id))
                return;
        event = ctl_member_string(params, "event");
        if (streq_ptr(event, "upload")) {
                const char *file = ctl_member_string(params, "file");

                /* The table's avatars come after the table, as another file. */
                if (file && p->upload_key && !streq(file, p->upload_key)) {
                        progress_upload_end(p, p->upload_bytes);
                        progress_upload_begin(p, file, u64_member(params, "total"));
                }
                if (file && !streq_ptr(file, p->upload_key))
                        (void) set_string(&p->upload_key, file);
                progress_upload(p, u64_member(params, "bytes"), u64_member(params, "total"));
        }
        else if (streq_ptr(event, "download"))
                progress_download(p, u64_member(params, "bytes"), u64_member(params, "total"));
        else if (streq_ptr(event, "jobs")) {
                json_object *jobs = NULL;

                p->stalled_shown = 0;
                if (json_object_object_get_ex(params, "jobs", &jobs))
                        progress_jobs(p, jobs);
        } else if (streq_ptr(event, "stalled"))
                progress_stalled(p, u64_member(params, "stalled_polls"), ctl_member_string(params, "last_error"));
}
