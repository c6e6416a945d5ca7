/* SPDX-License-Identifier: MIT */
#include <strings.h>

#include "sim-jobs.h"
#include "sim-results.h"

static const char *const job_status_table[_JOB_STATUS_MAX] = {
        [JOB_NONE] = "",
        [JOB_QUEUED] = "queued",
        [JOB_CREATED] = "created",
        [JOB_PENDING] = "pending",
        [JOB_FINISHED] = "finished",
        [JOB_ERROR] = "error",
        [JOB_PARENT_ERROR] = "parent_error",
        [JOB_LOST] = "lost",
        [JOB_ORPHANED] = "orphaned",
};

static const struct {
        const char *doc_kind;
        const char *job_kind;
} kind_table[] = {
        { "AvatarParameters", "standard" },
        { "AvatarPrivacyMetricsParameters", "privacy_metrics" },
        { "AvatarSignalMetricsParameters", "signal_metrics" },
        { "AvatarReportParameters", "report" },
        { "AvatarAdviceParameters", "advice" },
};

/* "queued", "created", ... */
const char *job_status_to_string(JobStatus s) {
        if (s < 0 || s >= _JOB_STATUS_MAX)
                return NULL;
        return job_status_table[s];
}

/* The status of a name, or _JOB_STATUS_INVALID. */
JobStatus job_status_from_string(const char *s) {
        for (int i = 0; s && i < _JOB_STATUS_MAX; i++)
                if (streq(job_status_table[i], s))
                        return (JobStatus) i;
        return _JOB_STATUS_INVALID;
}

/* True for the statuses a job never leaves. */
bool job_status_is_terminal(JobStatus s) {
        return s == JOB_FINISHED || s == JOB_ERROR || s == JOB_PARENT_ERROR || s == JOB_LOST ||
               s == JOB_ORPHANED;
}

/* The JobKind of a parameters document kind. */
const char *job_kind_of_doc(const char *doc_kind) {
        for (size_t i = 0; doc_kind && i < ELEMENTSOF(kind_table); i++)
                if (streq(kind_table[i].doc_kind, doc_kind))
                        return kind_table[i].job_kind;
        return NULL;
}

/* True when s is a JobKind name. */
bool job_kind_is_valid(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(kind_table); i++)
                if (streq(kind_table[i].job_kind, s))
                        return true;
        return false;
}

/* Frees a set. Returns NULL. */
static ResourceSet *set_free(ResourceSet *s) {
        if (!s)
                return NULL;
        free(s->display_name);
        free(s->yaml);
        resource_model_done(&s->model);
        free(s);
        return NULL;
}

/* Frees a job. Returns NULL. */
static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        free(j->parameters_name);
        free(j->exception);
        free(j->depends_on);
        free(j->fail_exception);
        json_object_put(j->results);
        free(j);
        return NULL;
}

/* Appends p to a growable array of pointers; the capacity is 8, then the next power of two.
 * Evaluates to 0 or -ENOMEM. */
#define PTR_ARRAY_PUSH(array, n, p)                                                       \
        ({                                                                                \
                int _r_ = 0;                                                              \
                if ((n) == 0 || ((n) >= 8 && ((n) & ((n) - 1)) == 0)) {                   \
                        typeof(array) _na_ = realloc((array),                             \
                                                     ((n) ? (n) * 2 : 8) * sizeof(*(array))); \
                        if (_na_)                                                         \
                                (array) = _na_;                                           \
                        else                                                              \
                                _r_ = -ENOMEM;                                            \
                }                                                                         \
                if (_r_ == 0)                                                             \
                        (array)[(n)++] = (p);                                             \
                _r_;                                                                      \
        })

/* Stores a new resource set. */
int set_create(Sim *sim, User *owner, const char *display_name, const char *yaml, size_t len,
               ResourceSet **ret, char **ret_error) {
        ResourceSet *s;
        int r;

        *ret_error = NULL;
        if (sim->n_sets >= SIM_MAX_SETS)
                return -E2BIG;
        s = calloc(1, sizeof(ResourceSet));
        if (!s)
                return -ENOMEM;
        r = resource_model_parse(yaml, len, &s->model, ret_error);
        if (r < 0) {
                set_free(s);
                return r;
        }
        uuid4(s->name);
        s->display_name = strdup(display_name);
        s->yaml = strndup(yaml, len);
        s->yaml_len = len;
        s->owner = owner;
        s->created_at = now_usec();
        if (!s->display_name || !s->yaml ||
            PTR_ARRAY_PUSH(sim->sets, sim->n_sets, s) < 0) {
                set_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* Appends YAML documents to a set. */
int set_append(Sim *sim _unused_, ResourceSet *set, const char *yaml, size_t len,
               char **ret_error) {
        _cleanup_free_ char *joined = NULL;
        ResourceModel m;
        size_t n;
        int r;

        *ret_error = NULL;
        if (set->yaml_len + len + 5 > SIM_MAX_YAML_BODY)
                return -E2BIG;
        joined = strprintf("%s\n---\n%.*s", set->yaml, (int) len, yaml);
        if (!joined)
                return -ENOMEM;
        n = strlen(joined);
        r = resource_model_parse(joined, n, &m, ret_error);
        if (r < 0)
                return r;
        resource_model_done(&set->model);
        set->model = m;
        free(set->yaml);
        set->yaml = TAKE_PTR(joined);
        set->yaml_len = n;
        return 0;
}

/* The set of owner called name, or NULL. */
ResourceSet *set_find(Sim *sim, User *owner, const char *name) {
        for (size_t i = 0; i < sim->n_sets; i++)
                if (sim->sets[i]->owner == owner && strcasecmp(sim->sets[i]->name, name) == 0)
                        return sim->sets[i];
        return NULL;
}

/* The job of owner called name, or NULL. */
Job *job_find(Sim *sim, User *owner, const char *name) {
        for (size_t i = sim->n_jobs; i > 0; i--)
                if (sim->jobs[i - 1]->owner == owner && streq(sim->jobs[i - 1]->name, name))
                        return sim->jobs[i - 1];
        return NULL;
}

/* The job name a depends_on entry refers to: its last path segment. Returns a new string. */
static char *dependency_name(const char *ref) {
        size_t end = strcspn(ref, "?#"), start;

        while (end > 0 && ref[end - 1] == '/')
                end--;
        start = end;
        while (start > 0 && ref[start - 1] != '/')
                start--;
        return strndup(ref + start, end - start);
}

/* Takes the first planned failure for parameters_name, if any, into j. */
static int job_take_planned_failure(Sim *sim, Job *j) {
        for (JobFailure **p = &sim->failures; *p; p = &(*p)->next) {
                JobFailure *f = *p;
                if (!streq(f->parameters_name, j->parameters_name))
                        continue;
                j->fail_status = f->status;
                j->fail_exception = strdup(f->exception);
                if (!j->fail_exception)
                        return -ENOMEM;
                if (--f->count == 0) {
                        *p = f->next;
                        free(f->parameters_name);
                        free(f->exception);
                        free(f);
                }
                return 0;
        }
        return 0;
}

/* Creates a job. */
int job_create(Sim *sim, User *owner, ResourceSet *set, const char *parameters_name,
               const char *const *depends_on, size_t n_depends_on, Job **ret,
               char **ret_error) {
        const SetDoc *doc = resource_model_find(&set->model, parameters_name);
        const char *kind = doc ? job_kind_of_doc(doc->kind) : NULL;
        Job *j;
        int r;

        *ret_error = NULL;
        if (!kind) {
                *ret_error = strprintf("No parameters named '%s' in set %s", parameters_name,
                                       set->name);
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        if (sim->n_jobs >= SIM_MAX_JOBS)
                return -E2BIG;
        if (n_depends_on > JOB_MAX_DEPENDS) {
                *ret_error = strprintf("At most %d dependencies", JOB_MAX_DEPENDS);
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        j->depends_on = calloc(n_depends_on ? n_depends_on : 1, sizeof(Job *));
        j->parameters_name = strdup(parameters_name);
        j->exception = strdup("");
        if (!j->depends_on || !j->parameters_name || !j->exception) {
                job_free(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_depends_on; i++) {
                _cleanup_free_ char *name = dependency_name(depends_on[i]);
                Job *dep;

                if (!name) {
                        job_free(j);
                        return -ENOMEM;
                }
                dep = job_find(sim, owner, name);
                if (!dep) {
                        *ret_error = strprintf("Dependency '%s' is not a known job",
                                               depends_on[i]);
                        job_free(j);
                        return *ret_error ? -ESRCH : -ENOMEM;
                }
                j->depends_on[j->n_depends_on++] = dep;
        }
        uuid4(j->name);
        j->set = set;
        j->owner = owner;
        j->kind = kind;
        j->status = JOB_QUEUED;
        j->created_at = now_usec();
        j->seq = ++sim->job_seq;
        r = job_take_planned_failure(sim, j);
        if (r < 0 || PTR_ARRAY_PUSH(sim->jobs, sim->n_jobs, j) < 0) {
                job_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* An ISO-8601 time, with a space instead of the 'T' for an old-generation server. */
static json_object *job_time_or_null(int64_t usec, SimGeneration g) {
        char buf[ISO8601_LEN], *t;

        if (usec == 0)
                return NULL;
        format_iso8601(usec, buf);
        if (g == SIM_GENERATION_OLD && (t = strchr(buf, 'T')))
                *t = ' ';
        return json_object_new_string(buf);
}

/* The JobResponse JSON, as a server of generation g writes it. */
json_object *job_to_json_gen(const Job *j, SimGeneration g) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(j->name));
        json_object_object_add(o, "set_name", json_object_new_string(j->set->name));
        json_object_object_add(o, "parameters_name", json_object_new_string(j->parameters_name));
        json_object_object_add(o, "display_name", json_object_new_string(j->set->display_name));
        json_object_object_add(o, "created_at", job_time_or_null(j->created_at, g));
        json_object_object_add(o, "kind", json_object_new_string(j->kind));
        json_object_object_add(o, "status", json_object_new_string(job_status_to_string(j->status)));
        json_object_object_add(o, "exception", json_object_new_string(j->exception));
        json_object_object_add(o, "done", json_object_new_boolean(job_status_is_terminal(j->status)));
        if (j->has_progress) {
                char p[16];
                size_t n;

                /* The short decimal form on the wire: 0.0, 0.25, 0.5, 1.0. */
                snprintf(p, sizeof(p), "%.2f", j->progress);
                n = strlen(p);
                while (n > 2 && p[n - 1] == '0' && p[n - 2] != '.')
                        p[--n] = '\0';
                json_object_object_add(o, "progress", json_object_new_double_s(j->progress, p));
        } else
                json_object_object_add(o, "progress", NULL);
        json_object_object_add(o, "deleted_at", job_time_or_null(j->deleted_at, g));
        return o;
}

/* The JobResponse JSON of the current generation. */
json_object *job_to_json(const Job *j) {
        return job_to_json_gen(j, SIM_GENERATION_CURRENT);
}

/* Ends a job in a terminal status with an exception text. */
static void job_end(Job *j, JobStatus status, const char *exception) {
        char *e = strdup(exception ? exception : "");

        if (e) {
                free(j->exception);
                j->exception = e;
        }
        j->status = status;
        j->finished_at = now_usec();
}

/* Plans the end of one existing job. */
int job_plan_failure(Job *j, JobStatus status, const char *exception) {
        char *e;

        if (job_status_is_terminal(j->status))
                return -EBUSY;
        e = strdup(exception);
        if (!e)
                return -ENOMEM;
        free(j->fail_exception);
        j->fail_exception = e;
        j->fail_status = status;
        return 0;
}

/* Plans failures for the next count jobs of parameters_name. */
int job_failure_add(Sim *sim, const char *parameters_name, JobStatus status,
                    const char *exception, unsigned count) {
        JobFailure *f = calloc(1, sizeof(JobFailure)), **p;

        if (!f)
                return -ENOMEM;
        f->parameters_name = strdup(parameters_name);
        f->exception = strdup(exception);
        if (!f->parameters_name || !f->exception) {
                free(f->parameters_name);
                free(f->exception);
                free(f);
                return -ENOMEM;
        }
        f->status = status;
        f->count = count;
        for (p = &sim->failures; *p; p = &(*p)->next)
                ;
        *p = f;
        return 0;
}

/* Forgets every planned failure. */
void job_failures_clear(Sim *sim) {
        while (sim->failures) {
                JobFailure *f = sim->failures;
                sim->failures = f->next;
                free(f->parameters_name);
                free(f->exception);
                free(f);
        }
}

/* Moves a created job on when its dependencies allow. */
static void job_step_created(Job *j) {
        for (size_t i = 0; i < j->n_depends_on; i++) {
                Job *d = j->depends_on[i];
                if (d->status == JOB_FINISHED)
                        continue;
                if (job_status_is_terminal(d->status)) {
                        _cleanup_free_ char *e = strprintf(
                                "Parent job %s (%s) ended with status %s: %s", d->name,
                                d->parameters_name, job_status_to_string(d->status),
                                isempty(d->exception) ? "internal error" : d->exception);
                        job_end(j, JOB_PARENT_ERROR, e ? e : "Parent job failed");
                }
                return;
        }
        j->status = JOB_PENDING;
        j->has_progress = true;
        j->progress = 0.0;
}

/* Advances a pending job; writes its results when it finishes. */
static void job_step_pending(Sim *sim, Job *j) {
        _cleanup_free_ char *exception = NULL;

        if (j->fail_status == JOB_LOST && j->progress >= 0.5) {
                job_end(j, JOB_LOST, j->fail_exception);
                return;
        }
        if (j->progress < 0.70) {
                j->progress += 0.25;
                return;
        }
        if (j->fail_status == JOB_ERROR) {
                job_end(j, JOB_ERROR, j->fail_exception);
                return;
        }
        if (results_generate(sim, j, &exception) < 0) {
                job_end(j, JOB_ERROR, exception ? exception : "Failed to write the results");
                return;
        }
        j->progress = 1.0;
        job_end(j, JOB_FINISHED, "");
}

/* Advances every job by one step. */
void jobs_tick(Sim *sim) {
        for (size_t i = 0; i < sim->n_jobs; i++) {
                Job *j = sim->jobs[i];

                switch (j->status) {
                case JOB_NONE:
                case JOB_QUEUED:
                        if (j->fail_status == JOB_ORPHANED)
                                job_end(j, JOB_ORPHANED, j->fail_exception);
                        else
                                j->status = JOB_CREATED;
                        break;
                case JOB_CREATED:
                        job_step_created(j);
                        break;
                case JOB_PENDING:
                        job_step_pending(sim, j);
                        break;
                default:
                        break;
                }
        }
}

/* Timer callback of the job clock. */
static void on_job_tick(evutil_socket_t fd _unused_, short what _unused_, void *arg) {
        jobs_tick(arg);
}

/* (Re)arms the job clock. */
int jobs_clock_set(Sim *sim, unsigned step_ms) {
        struct timeval tv = { .tv_sec = step_ms / 1000, .tv_usec = (step_ms % 1000) * 1000 };

        if (sim->job_timer) {
                event_free(sim->job_timer);
                sim->job_timer = NULL;
        }
        sim->cfg.job_step_ms = step_ms;
        if (step_ms == 0)
                return 0;
        sim->job_timer = event_new(sim->base, -1, EV_PERSIST, on_job_tick, sim);
        if (!sim->job_timer)
                return -ENOMEM;
        if (event_add(sim->job_timer, &tv) < 0)
                return -EIO;
        return 0;
}

/* Frees every set, job and planned failure, and the clock. */
void jobs_done(Sim *sim) {
        if (sim->job_timer)
                event_free(sim->job_timer);
        sim->job_timer = NULL;
        for (size_t i = 0; i < sim->n_jobs; i++)
                job_free(sim->jobs[i]);
        free(sim->jobs);
        sim->jobs = NULL;
        sim->n_jobs = 0;
        for (size_t i = 0; i < sim->n_sets; i++)
                set_free(sim->sets[i]);
        free(sim->sets);
        sim->sets = NULL;
        sim->n_sets = 0;
        job_failures_clear(sim);
}
