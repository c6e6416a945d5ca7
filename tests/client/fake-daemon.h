/* SPDX-License-Identifier: MIT */
/*
 * A scripted stand-in for avatard, for testing libavatar-client and avatarctl: it listens on
 * a Unix socket in a temporary directory, serves one connection at a time in a thread, and
 * answers by method name:
 *
 *   echo                result = params
 *   fail                error {code, message, data} from params {code, message, name, data}
 *   notify_then_reply   params.count "test.event" notifications {seq}, then result "done"
 *   subscribe           result {"subscription":"s1"}, then params.count "job.progress"
 *                       notifications; closes the connection after them when params.close
 *   split               result: a string of params.size bytes, written params.chunk bytes at
 *                       a time with a short pause between writes
 *   oversize            result: a string of params.size bytes, in one write
 *   close_mid           writes half a reply, then closes the connection
 *   never               no reply; the next request on the connection first gets this one's
 *                       (late) reply, which the client must drop as stray
 *   stray_first         a reply with an id nobody used, then the real one
 *   fds                 reads descriptor 0 (up to 64 KiB), writes "written by fake\n" to
 *                       descriptor 1 when present; result {n_fds, content}
 *   batch               the reply wrapped in an array
 *   garbage             a line that is not JSON
 *   null_id_error       an Invalid Request error with id null
 *   bad_reply           a reply with both result and error
 *   server_request      a request from the "daemon" (method and id), then the real reply
 *   size                result {"length": N}: the byte length of the request line
 *   rpc.discover        a small OpenRPC document
 *   daemon.status       a canned status object
 *   manager.*           what the real daemon answers, canned (a few jobs of a run "iris",
 *                       two API keys, ...) or computed from the params (authenticate,
 *                       create_api_key, revoke_api_key, delete_jobs: names starting with
 *                       "fail" fail); unknown manager methods: Method not found
 *   manager.create_runner*, manager.watch_jobs, runner.*
 *                       a fake runner (one id, one run id) answering like the daemon:
 *                       runner.add_table and manager.create_runner_from_yaml read the
 *                       descriptors their params name and note, in the request's entry of
 *                       fake.requests, "read": [{param, bytes, head}] (head: the first 32
 *                       bytes, non-printable ones as '.'), with "upload" runner.progress
 *                       notifications; runner.download writes known bytes (text for tables
 *                       and metrics, binary for report and report_pia) into the descriptor
 *                       in two writes with a "download" notification between, or returns
 *                       them inline (base64 for binary); runner.wait sends three "jobs"
 *                       notifications before its answer; manager.watch_jobs two jobs.changed
 *                       notifications; runner.list_results lists the server's file names for
 *                       the table of the last add_table and the jobs of the last run
 *   fake.script         params {"method", "result" | "error": {code, message, data},
 *                       "skip": N, "times": N, "notify": [{method, params}], "delay_ms": N}:
 *                       from now on answer that method so (after N default answers; only N
 *                       times with "times"), sending the notifications first and pausing
 *                       up to delay_ms (less when the client hangs up); without result and
 *                       error, the default answer (after the notifications and pause); with
 *                       none of these, back to the default
 *   fake.requests       result: [{"method", "params"}] of every request but fake.* ones
 *                       ("fds": [{type, access}] too when descriptors came with it)
 *                       since the previous fake.requests (scripts and requests outlive the
 *                       connection)
 *   anything else       Method not found
 */
#pragma once

typedef struct FakeDaemon FakeDaemon;

/* Starts serving at `path` (NULL: a fresh path in a new temporary directory).
 * Returns 0 or a negative errno. */
int fake_daemon_start(const char *path, FakeDaemon **ret);

/* The socket path; borrowed. */
const char *fake_daemon_path(const FakeDaemon *f);

/* Stops the thread, closes everything, removes the socket (and the directory it made).
 * NULL-safe; returns NULL. */
FakeDaemon *fake_daemon_stop(FakeDaemon *f);
