/* SPDX-License-Identifier: MIT */
/* Methods about the daemon itself: rpc.discover, daemon.status, daemon.reload. */
#include <stdlib.h>

#include "call.h"
#include "core.h"
#include "errors.h"
#include "openrpc.h"

/* rpc.discover: the OpenRPC document this daemon serves. The reply takes a reference on the
 * loaded document rather than a copy: call_reply() only serializes it. */
static int method_rpc_discover(Call *c, json_object *params) {
        (void) params;
        return call_reply(c, json_object_get(openrpc_document(c->core->openrpc)));
}

/* daemon.status: version, limits, connections, requests and errors. */
static int method_daemon_status(Call *c, json_object *params) {
        json_object *o;

        (void) params;
        o = core_status_json(c->core);
        if (!o)
                return -ENOMEM;
        return call_reply(c, o);
}

/* daemon.ping: answers at once with `echo` (or "pong"); for liveness checks and latency. */
static int method_daemon_ping(Call *c, json_object *params) {
        json_object *echo = NULL;

        if (json_object_object_get_ex(params, "echo", &echo))
                return call_reply(c, json_object_get(echo));
        return call_reply(c, json_object_new_string("pong"));
}

/* daemon.reload: re-reads the configuration as SIGHUP does and says whether it took. */
static int method_daemon_reload(Call *c, json_object *params) {
        _cleanup_free_ char *err = NULL;
        json_object *o;
        int r;

        (void) params;
        r = core_reload(c->core, &err);
        if (r < 0) {
                json_object *data = json_object_new_object();

                if (data && err)
                        json_object_object_add(data, "detail", json_object_new_string(err));
                return call_reply_errorf(c, RPC_INVALID_STATE, data,
                                         "The new configuration was rejected and the current one kept: %s",
                                         err ?: "unknown error");
        }
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "reloaded", json_object_new_boolean(true));
        json_object_object_add(o, "config", c->core->config->source ?
                               json_object_new_string(c->core->config->source) : NULL);
        return call_reply(c, o);
}

const MethodDef methods_daemon[] = {
        { "rpc.discover", method_rpc_discover, METHOD_NO_PARAMS },
        { "daemon.ping", method_daemon_ping, 0 },
        { "daemon.status", method_daemon_status, METHOD_NO_PARAMS },
        { "daemon.reload", method_daemon_reload, METHOD_MUTATING },
        {}
};
