/* SPDX-License-Identifier: MIT */
/*
 * Core: what every method sees of the daemon — the services of the layers beneath the
 * operations (daemon/LAYERS.md), the configuration in force, and the few things only the
 * server can do, as callbacks. The server embeds one Core, fills it in as it builds its
 * services and keeps `config` current across reloads; a method reaches it through its Call
 * (call.h) and never sees the server.
 */
#pragma once

#include <event2/event.h>
#include <json-c/json.h>
#include <stdbool.h>

typedef struct Api Api;
typedef struct Cache Cache;
typedef struct Config Config;
typedef struct OpenRpc OpenRpc;
typedef struct Poller Poller;
typedef struct Runners Runners;
typedef struct Storage Storage;
typedef struct Upstream Upstream;

/* The server's side, called with Core.userdata. */
typedef struct CoreOps {
        /* daemon.status as JSON (new reference; NULL on OOM). */
        json_object *(*status_json)(void *userdata);
        /* Re-reads the configuration: 0, or -EINVAL and (if ret_error) a malloc'd description;
         * the old configuration stays in force then. */
        int (*reload)(void *userdata, char **ret_error);
        /* The credential or the compatibility changed: the STATUS= line is due again. */
        void (*status_changed)(void *userdata);
} CoreOps;

typedef struct Core {
        struct event_base *base;
        Config *config;          /* in force; a reload replaces it */
        OpenRpc *openrpc;
        Upstream *upstream;
        Api *api;
        Cache *cache;
        Poller *poller;
        Runners *runners;        /* NULL until the server starts */
        Storage *storage;
        bool stopping;           /* the daemon is stopping: a call cancelled now is cancelled for that,
                                  * not because its caller left (dispatch_stop()) */
        const CoreOps *ops;
        void *userdata;
} Core;

static inline json_object *core_status_json(Core *c) {
        return c->ops->status_json(c->userdata);
}

static inline int core_reload(Core *c, char **ret_error) {
        return c->ops->reload(c->userdata, ret_error);
}

static inline void core_status_changed(Core *c) {
        c->ops->status_changed(c->userdata);
}
