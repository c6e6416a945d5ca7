/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "errors.h"
#include "protocol.h"

/* Finishes a call with a result. */
int call_reply(Call *c, json_object *result) {
        c->ops->reply(c, result);
        return 0;
}

/* Finishes a call with an error. */
int call_reply_error(Call *c, int code, const char *message, json_object *data) {
        c->ops->reply_error(c, code, message, data);
        return 0;
}

/* Finishes a call with an error and a formatted message. */
int call_reply_errorf(Call *c, int code, json_object *data, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        return call_reply_error(c, code, r < 0 ? NULL : m, data);
}

/* Finishes a call with the class of a negative errno. */
int call_reply_errno(Call *c, int r, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        json_object *data = NULL;
        va_list ap;
        int q = -1;

        if (fmt) {
                int saved = errno;

                errno = r < 0 ? -r : r;
                va_start(ap, fmt);
                q = vasprintf(&m, fmt, ap);
                va_end(ap);
                errno = saved;
        }
        data = json_object_new_object();
        if (data) {
                json_object_object_add(data, "errno", json_object_new_string(strerrorname_np(r < 0 ? -r : r) ?: "unknown"));
        }
        return call_reply_error(c, rpc_error_code_from_errno(r), q < 0 ? NULL : m, data);
}

/* Sends a notification to the caller while it is connected. */
void call_notify(Call *c, const char *method, json_object *params) {
        if (c->peer)
                c->ops->notify(c, method, params);
        else
                json_object_put(params);
}

/* Registers or clears the cancel callback. */
void call_on_cancel(Call *c, CallCancelHandler cb, void *userdata) {
        c->cancel_cb = cb;
        c->cancel_userdata = userdata;
}

/* Asks the call to stop. */
bool call_cancel(Call *c) {
        CallCancelHandler cb = c->cancel_cb;

        if (!cb || c->finished)
                return false;
        c->cancel_cb = NULL;
        cb(c, c->cancel_userdata);
        return true;
}

/* Claims a descriptor of the message. */
int call_take_fd(Call *c, unsigned index) {
        int fd;

        if (!c->in_handler || !c->fds || index >= c->n_fds)
                return -EBADF;
        fd = fcntl(c->fds[index], F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? -errno : fd;
}

/* Resolves a {"fd": N} param. */
int call_take_fd_param(Call *c, json_object *param) {
        json_object *v;
        int64_t n;

        if (!json_object_is_type(param, json_type_object) ||
            !json_object_object_get_ex(param, "fd", &v) || !json_object_is_type(v, json_type_int))
                return -EINVAL;
        n = json_object_get_int64(v);
        if (n < 0 || n >= PROTO_FDS_PER_MESSAGE_MAX)
                return -EBADF;
        return call_take_fd(c, (unsigned) n);
}

/* The role of the calling peer. */
Role call_role(const Call *c) {
        const PeerCred *p = c->peer;

        if (!p)
                return ROLE_NONE;
        return config_role_for(c->core->config, p->uid, p->gid, p->groups, p->n_groups);
}
