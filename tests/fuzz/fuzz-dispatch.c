/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the whole way of a request through the daemon's own code: JSON-RPC
 * lines go through the real dispatcher (daemon/dispatch.c: lookup, role, params) into the
 * method handlers (daemon/methods-*.c), which use the real API client, cache, poller, storage
 * client and runners; only the network is fake — upstream answers come from the input's
 * script (fuzz-env.h), so what the handlers parse of the Avatar API's answers (login,
 * compatibility, jobs, results, access, advice, polls) and of S3's is fuzzed along with the
 * requests.
 *
 * Input (fuzz-env.h gives the sections after the requests): one request per line, as a
 * client sends them, each with the eight descriptors of fuzz-env.h, and lines starting with
 * '@' that steer the harness:
 *   @uid N    the following requests come from uid N, on its own connection (default 1000);
 *   @close    that connection closes: its calls are cancelled (a later request from the uid
 *             opens a new one);
 *   @wait     time runs on until that connection has no call in flight;
 *   @nofds    the following requests carry no descriptor (@fds: all of them again).
 * "$RUNNER" in a request is the id of the runner created last. After the last line time runs
 * on (polls, backoffs, deadlines) while calls are in flight, then every connection closes.
 *
 * Checked: every reply and notification is one line of JSON-RPC 2.0 with a documented error
 * code; the API key never appears in one (unless the requests hold it themselves, or create a
 * key, which the server may name); a runner of uid 1001 is left as it was unless uid 1001 or an admin called; every
 * call finishes once its caller is gone and time has run on (fuzz_env_end); nothing leaks.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "fuzz-check.h"
#include "fuzz-env.h"
#include "jsonrpc.h"
#include "runner.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEERS_MAX 8
/* Rounds of time running on while calls are in flight, before and after the callers leave. */
#define ROUNDS_BEFORE_CLOSE 32
#define ROUNDS_AFTER_CLOSE 512
#define REPLY_DEPTH_MAX 160

typedef struct FuzzPeer {
        Peer peer;               /* first: the Peer dispatch sees is its FuzzPeer */
        unsigned refs;
        bool closed;
        gid_t groups[1];
} FuzzPeer;

static FuzzPeer peers[PEERS_MAX];
static size_t n_peers;
static bool key_may_appear;
static unsigned long replies;
static bool trace;              /* $FUZZ_TRACE: print the requests and replies */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        trace = getenv("FUZZ_TRACE");
        fuzz_env_init();
        return 0;
}

/* One line on the wire. */
static void check_line(const char *text, size_t len) {
        json_object *o = NULL;
        int r;

        assert(len > 0 && text[len - 1] == '\n');
        assert(!memchr(text, '\n', len - 1));
        r = json_parse_strict(text, len - 1, REPLY_DEPTH_MAX, &o);
        if (r < 0) {
                fprintf(stderr, "a reply that is not valid JSON (%s): %.*s", strerror(-r), (int) len, text);
                abort();
        }
        if (json_object_is_type(o, json_type_array)) {
                assert(json_object_array_length(o) > 0);
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        fuzz_check_message(json_object_array_get_idx(o, i));
        } else
                fuzz_check_message(o);
        if (!key_may_appear && memmem(text, len, FUZZ_API_KEY, strlen(FUZZ_API_KEY))) {
                fprintf(stderr, "the API key reached a client: %.*s", (int) len, text);
                abort();
        }
        json_object_put(o);
        replies++;
        if (trace)
                fprintf(stderr, "<- %.*s", (int) len, text);
}

static int peer_send_text(Peer *p, char *text, size_t len) {
        FuzzPeer *f = (FuzzPeer *) p;

        check_line(text, len);
        free(text);
        return f->closed ? -ENOTCONN : 0;
}

static int peer_send_json(Peer *p, json_object *o) {
        char *text = NULL;
        size_t len = 0;
        int r;

        r = jsonrpc_serialize(o, &text, &len);
        assert(r == 0);
        return peer_send_text(p, text, len);
}

static bool peer_alive(Peer *p) {
        return !((FuzzPeer *) p)->closed;
}

static void peer_ref(Peer *p) {
        ((FuzzPeer *) p)->refs++;
}

static void peer_unref(Peer *p) {
        FuzzPeer *f = (FuzzPeer *) p;

        assert(f->refs > 0);
        f->refs--;
}

static void peer_call_finished(Peer *p) {
        (void) p;
}

static const PeerOps peer_ops = {
        .send_json = peer_send_json,
        .send_text = peer_send_text,
        .alive = peer_alive,
        .ref = peer_ref,
        .unref = peer_unref,
        .call_finished = peer_call_finished,
};

/* The open connection of a uid, made when there is none. */
static FuzzPeer *peer_for(uid_t uid) {
        FuzzPeer *f;

        for (size_t i = n_peers; i > 0; i--)
                if (peers[i - 1].peer.cred.uid == uid && !peers[i - 1].closed)
                        return &peers[i - 1];
        if (n_peers >= PEERS_MAX)
                return NULL;
        f = &peers[n_peers++];
        *f = (FuzzPeer){ .groups = { (gid_t) uid } };
        peer_init(&f->peer, &peer_ops);
        f->peer.cred = (PeerCred){
                .uid = uid,
                .gid = (gid_t) uid,
                .pid = 4242,
                .groups = f->groups,
                .n_groups = 1,
                .comm = "fuzz-client",
        };
        return f;
}

/* The connection goes away: its calls are asked to stop. */
static void peer_close(FuzzPeer *f) {
        if (!f || f->closed)
                return;
        f->closed = true;
        dispatch_cancel_peer(&f->peer);
        fuzz_env_settle();
}

static unsigned inflight(void) {
        return dispatch_inflight(fuzz_env_dispatch());
}

/* Lets time run on while `f` (NULL: any connection) has calls in flight. */
static void run_while_busy(FuzzPeer *f, unsigned rounds) {
        for (unsigned i = 0; i < rounds && (f ? f->peer.n_inflight : inflight()) > 0; i++)
                if (!fuzz_env_advance())
                        break;
}

/* The status of the other user's runner, to see it left alone. */
static json_object *other_status(void) {
        Runner *r = runner_find(fuzz_env_core()->runners, FUZZ_RUNNER_OTHER);
        json_object *o;

        if (!r)
                return NULL;
        o = runner_status_json(r, true);
        json_object_object_del(o, "updated_at");
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *requests, *p, *end;
        json_object *other_before, *other_after;
        bool fds_on = true, other_may_change = false;
        FuzzPeer *cur;
        size_t len;

        requests = fuzz_env_begin((const char *) data, size, &len);
        /* the requests may name the key themselves, or create one the server names; without a
         * credential the daemon has no key to leak */
        key_may_appear = memmem(requests, len, FUZZ_API_KEY, strlen(FUZZ_API_KEY)) ||
                         memmem(requests, len, "create_api_key", 14) ||
                         !fuzz_env_has_key();
        n_peers = 0;
        cur = peer_for(1000);
        other_before = other_status();
        assert(other_before);

        for (p = requests, end = requests + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                const char *line = p;

                p += n + (nl ? 1 : 0);
                if (n > 0 && line[n - 1] == '\r')
                        n--;
                if (n == 0)
                        continue;
                if (line[0] == '@') {
                        if (n > 5 && memcmp(line, "@uid ", 5) == 0) {
                                uid_t uid = (uid_t) strtoul(line + 5, NULL, 10);

                                cur = peer_for(uid);
                                if (uid == 0 || uid == 1 || uid == 1001)
                                        other_may_change = true;
                        } else if (n == 6 && memcmp(line, "@close", 6) == 0)
                                peer_close(cur);
                        else if (n == 5 && memcmp(line, "@wait", 5) == 0) {
                                if (cur)
                                        run_while_busy(cur, ROUNDS_BEFORE_CLOSE);
                        } else if (n == 6 && memcmp(line, "@nofds", 6) == 0)
                                fds_on = false;
                        else if (n == 4 && memcmp(line, "@fds", 4) == 0)
                                fds_on = true;
                        continue;
                }
                if (!cur || cur->closed)
                        continue;
                {
                        size_t flen;
                        char *frame = fuzz_env_substitute(line, n, &flen);
                        int r;

                        if (trace)
                                fprintf(stderr, "-> uid %u: %s\n", (unsigned) cur->peer.cred.uid, frame);
                        r = dispatch_frame(fuzz_env_dispatch(), &cur->peer, frame, flen, fds_on ? fuzz_env_fds() : NULL,
                                           fds_on ? FUZZ_FDS : 0);
                        assert(r == 0 || r == -ENOMEM);
                        free(frame);
                }
                fuzz_env_settle();
        }

        /* time runs on for the calls in flight, then their callers leave */
        run_while_busy(NULL, ROUNDS_BEFORE_CLOSE);
        for (size_t i = 0; i < n_peers; i++)
                peer_close(&peers[i]);
        run_while_busy(NULL, ROUNDS_AFTER_CLOSE);
        for (size_t i = 0; i < n_peers; i++)
                assert(peers[i].refs == 0 || inflight() > 0);

        other_after = other_status();
        if (!other_may_change) {
                assert(other_after);
                if (!json_object_equal(other_before, other_after)) {
                        fprintf(stderr, "the runner of uid 1001 changed though only others called:\n%s\n%s\n",
                                json_object_to_json_string(other_before), json_object_to_json_string(other_after));
                        abort();
                }
        }
        json_object_put(other_before);
        json_object_put(other_after);
        fuzz_env_end();
        return 0;
}
