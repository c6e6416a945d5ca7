/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the configuration loader (daemon/config.c): a Config with every
 * default, the input loaded as the YAML file, then config_finalize() and config_to_json().
 * A refused input must come with an error message (one line once formatted); whatever is
 * accepted must turn into JSON that goes on the wire (daemon.status) and parses back.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks an error: a message, and a formatted form. */
static void check_error(int r, const ConfigError *e) {
        char *s;

        assert(r == -EINVAL || r == -ENOMEM);
        if (r == -ENOMEM)
                return;
        assert(e->message);
        assert(e->key);
        s = config_error_to_string(e);
        assert(s);
        free(s);
}

/* The effective configuration as daemon.status shows it: serialize and parse back. */
static void check_json(const Config *c) {
        json_object *o, *back = NULL;
        char *text = NULL;
        size_t len = 0;
        int r;

        o = config_to_json(c);
        assert(o);
        r = jsonrpc_serialize(o, &text, &len);
        assert(r == 0);
        r = json_parse_strict(text, len - 1, 16, &back);
        assert(r == 0);
        assert(json_object_equal(o, back));
        json_object_put(back);
        json_object_put(o);
        free(text);
}

/* One input: one configuration file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ConfigError err = {};
        Config *c = NULL;
        int r;

        r = config_new(&c);
        assert(r == 0);

        r = config_load_string(c, "fuzz.yaml", (const char *) data, size, &err);
        if (r < 0) {
                check_error(r, &err);
                goto out;
        }
        assert(!err.message);
        check_json(c);

        r = config_finalize(c, &err);
        if (r < 0) {
                check_error(r, &err);
                goto out;
        }
        assert(c->api_url && c->storage_url);
        assert(c->socket_path && c->socket_path[0] == '/');
        assert(c->retry_base_ms <= c->retry_max_ms);
        assert(c->poll_min_s <= c->poll_max_s);
        assert(c->max_connections_per_uid <= c->max_connections);
        check_json(c);

out:
        config_error_done(&err);
        config_free(c);
        return 0;
}
