/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "state.h"

/* Largest state file read back (a runner with many jobs is a few tens of KiB). */
#define STATE_FILE_MAX (16u * 1024u * 1024u)
#define STATE_JSON_DEPTH 64

/* Creates dir (and its parent) with mode 0700. */
int state_mkdir(const char *dir) {
        _cleanup_free_ char *parent = NULL;
        char *slash;

        if (mkdir(dir, 0700) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        parent = strdup(dir);
        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        if (!slash || slash == parent)
                return -ENOENT;
        *slash = '\0';
        if (mkdir(parent, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Writes all bytes. */
static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* The text of a state file. */
char *state_json_text(json_object *o) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *s = NULL;

        if (!t || asprintf(&s, "%s\n", t) < 0)
                return NULL;
        return s;
}

/* Writes text as dir/name atomically and durably (any thread). */
static int write_text(const char *dir, const char *name, const char *text, bool *ret_replaced) {
        _cleanup_free_ char *tmp = NULL, *dst = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        int r;

        if (ret_replaced)
                *ret_replaced = false;
        if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, name) < 0 || asprintf(&dst, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        /* opened first: without a descriptor of the directory the write could not be made
         * durable, and nothing is replaced */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = fchmod(fd, 0600) < 0 ? -errno : 0;
        if (r >= 0)
                r = write_all(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        /* a close that fails (NFS) reports a write that did not reach the server */
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, dst) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        if (ret_replaced)
                *ret_replaced = true;
        /* the rename is durable only once the directory is */
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

/* Writes o as dir/name atomically and durably. */
int state_write_json_ext(const char *dir, const char *name, json_object *o, bool *ret_replaced) {
        _cleanup_free_ char *text = state_json_text(o);

        if (ret_replaced)
                *ret_replaced = false;
        if (!text)
                return -ENOMEM;
        return write_text(dir, name, text, ret_replaced);
}

int state_write_json(const char *dir, const char *name, json_object *o) {
        return state_write_json_ext(dir, name, o, NULL);
}

/* Whether a failed write may succeed when tried again. */
bool state_error_retryable(int error) {
        switch (error) {
        case -ENOSPC:
        case -EDQUOT:
        case -EIO:
        case -ENOMEM:
        case -EAGAIN:
        case -EINTR:
        case -EMFILE:
        case -ENFILE:
        case -ENOBUFS:
        case -EBUSY:
        case -ETIMEDOUT:
        case -ESTALE:
                return true;
        default:
                return false;
        }
}

/* Whether a name is one of state_write_json()'s temporary files: ".NAME.XXXXXX" (mkostemp's
 * six characters of [A-Za-z0-9]). */
static bool is_temp_name(const char *n) {
        size_t len = strlen(n);
        const char *dot;

        if (n[0] != '.' || len < 9)
                return false;
        dot = n + len - 7;
        if (*dot != '.')
                return false;
        for (const char *p = dot + 1; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

/* Removes the temporary files a stopped daemon left. */
int state_remove_temp_files(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                struct stat st;

                if (!is_temp_name(de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        log_warning_errno(errno, "Cannot remove the stale temporary file '%s/%s': %m", dir, de->d_name);
                        continue;
                }
                log_notice("Removed '%s/%s', a state file a stopped daemon did not finish writing.", dir, de->d_name);
                n++;
        }
        closedir(d);
        return n;
}

/* Removes dir/name. */
int state_remove(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;

        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        if (unlink(p) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* Reads a whole regular file from a descriptor (from offset 0, bounded). */
int state_read_fd(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = pread(fd, buf + n, (size_t) st.st_size - n, (off_t) n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

/* Reads a whole state file (bounded). */
static int read_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        return state_read_fd(fd, STATE_FILE_MAX, ret, ret_len);
}

/* Moves dir/name aside as name.damaged-<time>; appends the new name to damaged. */
static void move_aside(const char *dir, const char *name, int reason, json_object *damaged) {
        _cleanup_free_ char *from = NULL, *to = NULL, *to_name = NULL;

        if (asprintf(&to_name, "%s.damaged-%lld", name, (long long) time(NULL)) < 0 ||
            asprintf(&from, "%s/%s", dir, name) < 0 || asprintf(&to, "%s/%s", dir, to_name) < 0)
                return;
        if (rename(from, to) < 0) {
                log_error_errno(errno, "State file '%s' is damaged (%s) and could not be moved aside: %m", from,
                                strerror(-reason));
                return;
        }
        log_error("State file '%s' is damaged (%s); kept as '%s'.", from, strerror(-reason), to);
        if (damaged)
                json_object_array_add(damaged, json_object_new_string(to_name));
}

/* Orders directory entries by name. */
static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Loads every *.json file of dir. */
int state_load_dir(const char *dir, state_load_cb cb, void *userdata, json_object *damaged) {
        DIR *d = opendir(dir);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int loaded = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".json"))
                        continue;
                if (n == cap) {
                        char **nn = reallocarray(names, cap ? cap * 2 : 64, sizeof(char *));

                        if (!nn)
                                break;
                        names = nn;
                        cap = cap ? cap * 2 : 64;
                }
                names[n] = strdup(de->d_name);
                if (names[n])
                        n++;
        }
        closedir(d);
        if (n > 0)
                qsort(names, n, sizeof(char *), cmp_names);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *text = NULL;
                json_object *o = NULL;
                size_t len = 0;
                int r;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        free(names[i]);
                        continue;
                }
                r = read_file(path, &text, &len);
                if (r >= 0)
                        r = json_parse_strict(text, len, STATE_JSON_DEPTH, &o);
                if (r >= 0 && !json_object_is_type(o, json_type_object))
                        r = -EBADMSG;
                if (r >= 0)
                        r = cb(names[i], o, userdata);
                json_object_put(o);
                if (r < 0)
                        move_aside(dir, names[i], r, damaged);
                else
                        loaded++;
                free(names[i]);
        }
        free(names);
        return loaded;
}

/* ---- the writer thread ----------------------------------------------------------------------- */

typedef struct WriteCallback {
        state_written_cb cb;
        void *userdata;
} WriteCallback;

typedef struct StateWrite StateWrite;
struct StateWrite {
        char *dir, *name, *text;
        WriteCallback *cbs;
        size_t n_cbs;
        bool now;                /* state_writer_write_now() waits for it */
        bool done;
        int error;
        bool replaced;
        StateWrite *next;
};

struct StateWriter {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t work;     /* a write was queued, or the writer stops */
        pthread_cond_t written;  /* a write ended */
        StateWrite *queue, *queue_tail;   /* not begun */
        StateWrite *current;              /* being written */
        StateWrite *finished, *finished_tail; /* for the event loop */
        bool stopping;
        int efd;                 /* eventfd: finished writes wait */
        struct event *ev;
        uint64_t written_total, failed_total, queued, slowest_usec;
        /* the event loop's own: the text of slowest_ms for slowest_text_usec */
        char slowest_text[64];
        size_t slowest_text_len;
        uint64_t slowest_text_usec;
        bool slowest_text_valid;
};

static void state_write_free(StateWrite *j) {
        if (!j)
                return;
        free(j->dir);
        free(j->name);
        free(j->text);
        free(j->cbs);
        free(j);
}

static StateWrite *state_write_new(const char *dir, const char *name, char *text) {
        StateWrite *j = calloc(1, sizeof(StateWrite));

        if (!j) {
                free(text);
                return NULL;
        }
        j->text = text;
        j->dir = strdup(dir);
        j->name = strdup(name);
        if (!j->dir || !j->name) {
                state_write_free(j);
                return NULL;
        }
        return j;
}

static int state_write_add_cb(StateWrite *j, state_written_cb cb, void *userdata) {
        WriteCallback *n;

        if (!cb)
                return 0;
        n = reallocarray(j->cbs, j->n_cbs + 1, sizeof(WriteCallback));
        if (!n)
                return -ENOMEM;
        j->cbs = n;
        j->cbs[j->n_cbs++] = (WriteCallback){ cb, userdata };
        return 0;
}

/* Queues a write for the thread (lock held). */
static void writer_enqueue_locked(StateWriter *w, StateWrite *j) {
        if (w->queue_tail)
                w->queue_tail->next = j;
        else
                w->queue = j;
        w->queue_tail = j;
        w->queued++;
        pthread_cond_signal(&w->work);
}

/* Hands a finished write to the event loop (lock held). */
static void finish_locked(StateWriter *w, StateWrite *j) {
        uint64_t one = 1;

        j->next = NULL;
        if (w->finished_tail)
                w->finished_tail->next = j;
        else
                w->finished = j;
        w->finished_tail = j;
        (void) !write(w->efd, &one, sizeof(one));
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* The thread: one write after the other until stopped with nothing queued. */
static void *writer_thread(void *userdata) {
        StateWriter *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                StateWrite *j;
                uint64_t t0, t;

                while (!w->queue && !w->stopping)
                        pthread_cond_wait(&w->work, &w->lock);
                if (!w->queue)
                        break;
                j = w->queue;
                w->queue = j->next;
                if (!w->queue)
                        w->queue_tail = NULL;
                w->queued--;
                w->current = j;
                pthread_mutex_unlock(&w->lock);

                t0 = now_usec();
                j->error = write_text(j->dir, j->name, j->text, &j->replaced);
                t = now_usec() - t0;

                pthread_mutex_lock(&w->lock);
                w->current = NULL;
                if (j->error < 0)
                        w->failed_total++;
                else
                        w->written_total++;
                w->slowest_usec = MAX(w->slowest_usec, t);
                if (j->now)
                        j->done = true;
                else
                        finish_locked(w, j);
                pthread_cond_broadcast(&w->written);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Runs the callbacks of the finished writes (event loop). */
static void deliver_finished(StateWriter *w) {
        StateWrite *j, *next;

        pthread_mutex_lock(&w->lock);
        j = w->finished;
        w->finished = w->finished_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        for (; j; j = next) {
                next = j->next;
                for (size_t i = 0; i < j->n_cbs; i++)
                        j->cbs[i].cb(j->error, j->replaced, j->cbs[i].userdata);
                state_write_free(j);
        }
}

static void on_writer_event(evutil_socket_t fd, short what, void *userdata) {
        uint64_t n;

        (void) what;
        (void) !read(fd, &n, sizeof(n));
        deliver_finished(userdata);
}

int state_writer_new(struct event_base *base, StateWriter **ret) {
        StateWriter *w = calloc(1, sizeof(StateWriter));
        sigset_t all, old;
        int r;

        if (!w)
                return -ENOMEM;
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = -errno;
                free(w);
                return r;
        }
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->work, NULL);
        pthread_cond_init(&w->written, NULL);
        w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_writer_event, w);
        if (!w->ev || event_add(w->ev, NULL) < 0) {
                if (w->ev)
                        event_free(w->ev);
                safe_close(w->efd);
                free(w);
                return -ENOMEM;
        }
        /* the thread takes no signal: they are the event loop's */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&w->thread, NULL, writer_thread, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                event_free(w->ev);
                safe_close(w->efd);
                free(w);
                return r;
        }
        *ret = w;
        return 0;
}

StateWriter *state_writer_free(StateWriter *w) {
        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_broadcast(&w->work);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        /* a callback may ask for another write: made here, the thread is gone */
        for (;;) {
                StateWrite *j;

                deliver_finished(w);
                j = w->queue;
                if (!j)
                        break;
                w->queue = j->next;
                if (!w->queue)
                        w->queue_tail = NULL;
                w->queued--;
                j->error = write_text(j->dir, j->name, j->text, &j->replaced);
                finish_locked(w, j);
        }
        event_free(w->ev);
        safe_close(w->efd);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->written);
        free(w);
        return NULL;
}

int state_writer_submit(StateWriter *w, const char *dir, const char *name, char *text, state_written_cb cb,
                        void *userdata) {
        StateWrite *j;
        int r;

        pthread_mutex_lock(&w->lock);
        /* a write of the same file not begun yet carries the newer text instead */
        for (j = w->queue; j; j = j->next)
                if (!j->now && streq(j->name, name) && streq(j->dir, dir))
                        break;
        if (j) {
                r = state_write_add_cb(j, cb, userdata);
                if (r >= 0) {
                        free(j->text);
                        j->text = text;
                } else
                        free(text);
                pthread_mutex_unlock(&w->lock);
                return r;
        }
        pthread_mutex_unlock(&w->lock);

        j = state_write_new(dir, name, text);
        if (!j)
                return -ENOMEM;
        if (state_write_add_cb(j, cb, userdata) < 0) {
                state_write_free(j);
                return -ENOMEM;
        }
        pthread_mutex_lock(&w->lock);
        writer_enqueue_locked(w, j);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

int state_writer_write_now(StateWriter *w, const char *dir, const char *name, const char *text,
                           bool *ret_replaced) {
        StateWrite *j;
        char *copy;
        int r;

        if (!w)
                return write_text(dir, name, text, ret_replaced);
        pthread_mutex_lock(&w->lock);
        if (w->stopping) {
                /* from a callback of state_writer_free(): the thread is gone, and before it
                 * every queued write was made */
                pthread_mutex_unlock(&w->lock);
                return write_text(dir, name, text, ret_replaced);
        }
        pthread_mutex_unlock(&w->lock);
        copy = strdup(text);
        j = copy ? state_write_new(dir, name, copy) : NULL;
        if (!j)
                return -ENOMEM;
        j->now = true;
        pthread_mutex_lock(&w->lock);
        writer_enqueue_locked(w, j);
        while (!j->done)
                pthread_cond_wait(&w->written, &w->lock);
        pthread_mutex_unlock(&w->lock);
        r = j->error;
        if (ret_replaced)
                *ret_replaced = j->replaced;
        state_write_free(j);
        return r;
}

void state_writer_forget(StateWriter *w, const char *dir, const char *name) {
        StateWrite *j, *prev = NULL, *next;

        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        for (j = w->queue; j; j = next) {
                next = j->next;
                if (j->now || !streq(j->name, name) || !streq(j->dir, dir)) {
                        prev = j;
                        continue;
                }
                if (prev)
                        prev->next = next;
                else
                        w->queue = next;
                if (w->queue_tail == j)
                        w->queue_tail = prev;
                w->queued--;
                j->error = -ECANCELED;
                finish_locked(w, j);
        }
        while (w->current && streq(w->current->name, name) && streq(w->current->dir, dir))
                pthread_cond_wait(&w->written, &w->lock);
        pthread_mutex_unlock(&w->lock);
}

json_object *state_writer_stats_json(StateWriter *w) {
        json_object *o = json_object_new_object();

        if (!o || !w)
                return o;
        pthread_mutex_lock(&w->lock);
        json_object_object_add(o, "written", json_object_new_uint64(w->written_total));
        json_object_object_add(o, "failed", json_object_new_uint64(w->failed_total));
        json_object_object_add(o, "queued", json_object_new_uint64(w->queued));
        json_object_object_add(o, "slowest_ms", json_object_new_double((double) w->slowest_usec / 1000.0));
        pthread_mutex_unlock(&w->lock);
        return o;
}

/* state_writer_stats_json()'s text, byte for byte, appended to t (daemon.status); the text of
 * slowest_ms is kept while it does not change. */
void state_writer_stats_text(StateWriter *w, JsonText *t) {
        _cleanup_(json_object_putp) json_object *d = NULL;
        uint64_t written, failed, queued, slowest;
        const char *s = w ? w->slowest_text : NULL;
        size_t n = w ? w->slowest_text_len : 0;

        if (!w) {
                json_text_add_literal(t, "{}");
                return;
        }
        pthread_mutex_lock(&w->lock);
        written = w->written_total;
        failed = w->failed_total;
        queued = w->queued;
        slowest = w->slowest_usec;
        pthread_mutex_unlock(&w->lock);
        if (!w->slowest_text_valid || w->slowest_text_usec != slowest) {
                d = json_object_new_double((double) slowest / 1000.0);
                s = d ? json_object_to_json_string_length(d, JSONRPC_WIRE_FLAGS, &n) : NULL;
                if (!s) {
                        t->oom = true;
                        return;
                }
                w->slowest_text_valid = n < sizeof(w->slowest_text);
                if (w->slowest_text_valid) {
                        memcpy(w->slowest_text, s, n);
                        w->slowest_text_len = n;
                        w->slowest_text_usec = slowest;
                }
        }
        json_text_add_literal(t, "{\"written\":");
        json_text_add_u64(t, written);
        json_text_add_literal(t, ",\"failed\":");
        json_text_add_u64(t, failed);
        json_text_add_literal(t, ",\"queued\":");
        json_text_add_u64(t, queued);
        json_text_add_literal(t, ",\"slowest_ms\":");
        json_text_add(t, s, n);
        json_text_add_literal(t, "}");
}
