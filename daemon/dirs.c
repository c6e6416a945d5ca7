/* SPDX-License-Identifier: MIT */
/* Directories the daemon owns, created safely. See dirs.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirs.h"
#include "macro.h"

#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

/* Fills *ret_error with "'PREFIX': WHY" for the first `len` bytes of path. Returns r. */
static int dirs_fail(int r, const char *path, size_t len, const char *why, char **ret_error) {
        if (ret_error && asprintf(ret_error, "'%.*s': %s", (int) len, path, why) < 0)
                *ret_error = NULL;
        return r;
}

/* Opens the component `name` below dirfd: never through a symbolic link that neither root nor
 * we own. Returns the descriptor or -errno; -EPERM for a refused link. */
static int open_component(int dirfd, const char *name) {
        struct stat st;
        int fd;

        fd = openat(dirfd, name, DIR_OPEN_FLAGS | O_NOFOLLOW);
        if (fd >= 0)
                return fd;
        if (errno != ELOOP && errno != ENOTDIR)
                return -errno;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISLNK(st.st_mode))
                return -ENOTDIR;
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return -EPERM;
        fd = openat(dirfd, name, DIR_OPEN_FLAGS);
        return fd >= 0 ? fd : -errno;
}

/* Creates a directory with its parents. */
int dirs_make(const char *path, mode_t mode, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        const char *p;
        char name[256];

        if (ret_error)
                *ret_error = NULL;
        if (isempty(path) || path[0] != '/')
                return dirs_fail(-EINVAL, path ?: "", path ? strlen(path) : 0, "not an absolute path",
                                 ret_error);
        fd = open("/", DIR_OPEN_FLAGS);
        if (fd < 0)
                return dirs_fail(-errno, "/", 1, strerror(errno), ret_error);

        for (p = path; *p;) {
                size_t n;
                bool last, created = false;
                int next, r;

                p += strspn(p, "/");
                n = strcspn(p, "/");
                if (n == 0)
                        break;
                last = p[n + strspn(p + n, "/")] == '\0';
                if (n >= sizeof(name))
                        return dirs_fail(-ENAMETOOLONG, path, (size_t) (p - path) + n,
                                         "name too long", ret_error);
                memcpy(name, p, n);
                name[n] = '\0';
                p += n;
                if (streq(name, ".") || streq(name, ".."))
                        return dirs_fail(-EINVAL, path, (size_t) (p - path),
                                         "'.' and '..' are not allowed", ret_error);

                next = open_component(fd, name);
                if (next == -ENOENT) {
                        if (mkdirat(fd, name, last ? mode : 0755) < 0 && errno != EEXIST) {
                                r = -errno;
                                if (r == -EACCES || r == -EPERM || r == -EROFS) {
                                        _cleanup_free_ char *why = NULL;

                                        if (asprintf(&why, "cannot create it: %s (uid %u may not write to its parent)",
                                                     strerror(-r), (unsigned) geteuid()) < 0)
                                                why = NULL;
                                        return dirs_fail(r, path, (size_t) (p - path),
                                                         why ?: strerror(-r), ret_error);
                                }
                                return dirs_fail(r, path, (size_t) (p - path), strerror(-r), ret_error);
                        }
                        created = true;
                        next = open_component(fd, name);
                }
                if (next == -EPERM)
                        return dirs_fail(-EPERM, path, (size_t) (p - path),
                                         "a symbolic link owned by another user, not followed", ret_error);
                if (next < 0)
                        return dirs_fail(next, path, (size_t) (p - path), strerror(-next), ret_error);
                /* the umask must not narrow or widen what we asked for */
                if (created && last && fchmod(next, mode) < 0) {
                        r = -errno;
                        (void) close(next);
                        return dirs_fail(r, path, (size_t) (p - path), strerror(-r), ret_error);
                }
                (void) close(fd);
                fd = next;
        }
        return 0;
}
