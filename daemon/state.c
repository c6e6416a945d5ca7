/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Writes o as dir/name atomically and durably. */
int state_write_json_ext(const char *dir, const char *name, json_object *o, bool *ret_replaced) {
        _cleanup_free_ char *tmp = NULL, *dst = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        const char *text;
        int r;

        if (ret_replaced)
                *ret_replaced = false;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
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
        if (r >= 0)
                r = write_all(fd, "\n", 1);
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
