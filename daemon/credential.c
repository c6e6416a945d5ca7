/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "credential.h"
#include "macro.h"

/* Longest key accepted from a file (keys are short; this only bounds the read). */
#define KEY_MAX 4096

static const char *const kind_table[_CREDENTIAL_KIND_MAX] = {
        [CREDENTIAL_NONE] = "none",
        [CREDENTIAL_API_KEY] = "api-key",
        [CREDENTIAL_LOGIN] = "login",
};

/* Returns the name of a kind. */
const char *credential_kind_to_string(CredentialKind k) {
        if (k < 0 || k >= _CREDENTIAL_KIND_MAX)
                return NULL;
        return kind_table[k];
}

/* Frees, zeroing the secrets. */
Credential *credential_free(Credential *c) {
        if (!c)
                return NULL;
        erase_and_free(c->secret);
        erase_and_free(c->refresh_token);
        free(c->source);
        free(c->username);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Credential *, credential_free);

/* Checks that a key is one printable line without spaces around it. */
static int key_valid(const char *k) {
        if (isempty(k))
                return -EINVAL;
        for (const char *p = k; *p; p++)
                if ((unsigned char) *p < 0x21 || (unsigned char) *p == 0x7f)
                        return -EINVAL;
        return 0;
}

/* Creates an API-key credential. */
int credential_new_api_key(const char *key, const char *source, Credential **ret) {
        _cleanup_(credential_freep) Credential *c = NULL;

        if (key_valid(key) < 0)
                return -EINVAL;
        c = calloc(1, sizeof(Credential));
        if (!c)
                return -ENOMEM;
        c->kind = CREDENTIAL_API_KEY;
        c->secret = strdup(key);
        c->source = strdup(source ?: "unknown");
        if (!c->secret || !c->source)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Creates a credential from a login session. */
int credential_new_login(const char *username, const char *access_token,
                         const char *refresh_token, Credential **ret) {
        _cleanup_(credential_freep) Credential *c = NULL;

        if (key_valid(access_token) < 0)
                return -EINVAL;
        c = calloc(1, sizeof(Credential));
        if (!c)
                return -ENOMEM;
        c->kind = CREDENTIAL_LOGIN;
        c->secret = strdup(access_token);
        c->username = strdup(username ?: "");
        if (asprintf(&c->source, "login as %s", username ?: "?") < 0)
                c->source = NULL;
        if (refresh_token && !(c->refresh_token = strdup(refresh_token)))
                return -ENOMEM;
        if (!c->secret || !c->username || !c->source)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Reads a key file: one line, trailing newline and surrounding blanks removed. When
 * `private` is set, refuses a file that others may read. When `optional` is set, a missing
 * file returns -ENOENT without a message (the caller looks further). */
static int read_key_file(const char *path, bool private, bool optional, char **ret, char **ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_erase_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0, start = 0;
        ssize_t k;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0) {
                int r = -errno;

                if (r == -ENOENT && optional)
                        return r;
                if (ret_error && asprintf(ret_error, "cannot open key file '%s': %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                if (ret_error && asprintf(ret_error, "key file '%s' is not a regular file", path) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        if (private && (st.st_mode & 0077)) {
                if (ret_error && asprintf(ret_error,
                                          "key file '%s' is readable by group or others (mode %04o); chmod 0600 it",
                                          path, (unsigned) (st.st_mode & 07777)) < 0)
                        *ret_error = NULL;
                return -EPERM;
        }
        buf = calloc(1, KEY_MAX + 1);
        if (!buf)
                return -ENOMEM;
        while (n < KEY_MAX && (k = read(fd, buf + n, KEY_MAX - n)) != 0) {
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                n += (size_t) k;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
                buf[--n] = '\0';
        while (start < n && (buf[start] == ' ' || buf[start] == '\t'))
                start++;
        if (key_valid(buf + start) < 0) {
                if (ret_error && asprintf(ret_error, "key file '%s' does not hold one key on one line", path) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        *ret = strdup(buf + start);
        return *ret ? 0 : -ENOMEM;
}

/* Takes AVATAR_API_KEY out of the environment, erasing the original bytes too. The whole
 * entry is erased, name included, so that a later load (a reload) finds no variable rather
 * than an empty one. */
static char *take_env_key(char *const *envp) {
        static const char name[] = "AVATAR_API_KEY=";
        char *key = NULL;

        for (char *const *e = envp; e && *e; e++)
                if (strncasecmp(*e, name, STRLEN(name)) == 0) {
                        if (!key)
                                key = strdup(*e + STRLEN(name));
                        explicit_bzero(*e, strlen(*e));
                }
        return key;
}

/* Loads the key from its sources. */
int credential_load(const Config *c, char *const *envp, Credential **ret, char **ret_error) {
        _cleanup_erase_free_ char *key = NULL, *env_key = NULL;
        _cleanup_free_ char *path = NULL, *source = NULL;
        const char *creds;
        int r;

        /* read (and erase) the environment variable whatever wins, so it does not linger */
        env_key = take_env_key(envp);

        /* 1. a key the daemon stored */
        if (c->state_directory && asprintf(&path, "%s/api-key", c->state_directory) >= 0) {
                r = read_key_file(path, true, true, &key, ret_error);
                if (r >= 0) {
                        source = strdup("state directory");
                        goto found;
                }
                if (r != -ENOENT)
                        return r;
        }
        path = mfree(path);

        /* 2. the systemd credential */
        creds = getenv("CREDENTIALS_DIRECTORY");
        if (creds && asprintf(&path, "%s/api-key", creds) >= 0) {
                r = read_key_file(path, false, true, &key, ret_error);
                if (r >= 0) {
                        source = strdup("systemd credential api-key");
                        goto found;
                }
                if (r != -ENOENT)
                        return r;
        }

        /* 3. upstream.api_key_file */
        if (c->api_key_file) {
                r = read_key_file(c->api_key_file, true, false, &key, ret_error);
                if (r < 0)
                        return r;
                if (asprintf(&source, "api_key_file %s", c->api_key_file) < 0)
                        source = NULL;
                goto found;
        }

        /* 4. AVATAR_API_KEY */
        if (env_key) {
                if (key_valid(env_key) < 0) {
                        if (ret_error)
                                *ret_error = strdup("AVATAR_API_KEY is empty or holds blanks or control characters");
                        return -EINVAL;
                }
                key = TAKE_PTR(env_key);
                source = strdup("AVATAR_API_KEY");
                goto found;
        }

        *ret = calloc(1, sizeof(Credential));
        return *ret ? 0 : -ENOMEM;

found:
        return credential_new_api_key(key, source ?: "unknown", ret);
}

/* Writes the key into the state directory atomically. */
int credential_store_api_key(const char *state_directory, const char *key) {
        _cleanup_free_ char *tmp = NULL, *dst = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        size_t len, off = 0;
        int r;

        if (key_valid(key) < 0)
                return -EINVAL;
        if (asprintf(&tmp, "%s/.api-key.XXXXXX", state_directory) < 0 ||
            asprintf(&dst, "%s/api-key", state_directory) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0600) < 0) {
                r = -errno;
                goto fail;
        }
        len = strlen(key);
        while (off < len) {
                ssize_t n = write(fd, key + off, len - off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                off += (size_t) n;
        }
        if (write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, dst) < 0) {
                r = -errno;
                goto fail;
        }
        dfd = open(state_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}

/* The Authorization header line. */
char *credential_header(const Credential *c) {
        char *h = NULL;

        if (!c || c->kind == CREDENTIAL_NONE || !c->secret)
                return NULL;
        if (asprintf(&h, "Authorization: %s %s", c->kind == CREDENTIAL_API_KEY ? "api-key-v1" : "Bearer",
                     c->secret) < 0)
                return NULL;
        return h;
}
