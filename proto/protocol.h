/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol's version and every limit, each with the reason for its value.
 * Limits that the configuration can change name their configuration key; the value here is
 * the default. All of them are announced by rpc.discover (x-avatard-limits) and
 * daemon.status (limits), see PROTOCOL.md.
 */
#pragma once

/* Bumped on every addition to the protocol (new method, new optional param, new error
 * class). Changes are additive only: a method's meaning never changes and a retired name is
 * never reused. */
#define PROTOCOL_VERSION 6

/* Largest frame (one JSON text plus its newline) accepted from a client, in bytes.
 * Configurable as limits.max_frame_bytes. A line longer than this closes the connection
 * after an error reply. 1 MiB leaves room for inline table data of small files; anything
 * larger goes by descriptor. */
#define PROTO_FRAME_MAX_DEFAULT (1024u * 1024u)

/* Bounds of limits.max_frame_bytes: a frame must fit any request we define (4 KiB) and we
 * never buffer more than 64 MiB per connection. */
#define PROTO_FRAME_MAX_MIN (4u * 1024u)
#define PROTO_FRAME_MAX_MAX (64u * 1024u * 1024u)

/* Deepest JSON nesting accepted in a request (arrays and objects). Our params are at most
 * five levels deep; 32 leaves room for free-form column weights and still keeps json-c's
 * recursive parser far from the stack limit. */
#define PROTO_JSON_DEPTH_MAX 32

/* Most entries in one batch. A batch is answered as one reply; capping it caps the work and
 * the reply size a single line can ask for. */
#define PROTO_BATCH_MAX 64

/* Most descriptors that may travel with one message (SCM_RIGHTS). A run uploads at most a
 * few tables per call; more descriptors than this in one message is a protocol error. */
#define PROTO_FDS_PER_MESSAGE_MAX 8

/* Requests a connection may have in flight before the daemon stops reading from it.
 * Configurable as limits.max_inflight_per_connection. */
#define PROTO_INFLIGHT_PER_CONN_DEFAULT 64

/* Connections accepted in total and per peer uid. Configurable as limits.max_connections
 * and limits.max_connections_per_uid; the total is also clamped to what RLIMIT_NOFILE
 * allows after the daemon raises its soft limit. */
#define PROTO_CONNECTIONS_DEFAULT 8192
#define PROTO_CONNECTIONS_PER_UID_DEFAULT 4096

/* Bytes of output queued for one connection before the daemon stops reading its requests
 * (backpressure); reading resumes when the queue drains below half of it.
 * Configurable as limits.max_output_bytes. */
#define PROTO_OUTPUT_MAX_DEFAULT (4u * 1024u * 1024u)

/* Seconds a connection may stay idle (no request in flight, no request received, nothing
 * written) before it is closed. Configurable as limits.idle_timeout_s; 0 disables. */
#define PROTO_IDLE_TIMEOUT_DEFAULT_S 600

/* Seconds a request line may take from its first byte to its newline. A line that is not
 * complete by then closes the connection, however many bytes keep trickling in: a peer
 * cannot hold memory and a connection slot by sending one byte now and then. A real client
 * writes a line at once. Configurable as limits.frame_timeout_s; 0 disables. */
#define PROTO_FRAME_TIMEOUT_DEFAULT_S 30

/* Bytes of unprocessed input (unfinished lines, and lines waiting behind the in-flight limit)
 * all connections together may hold. A connection whose input would pass it gets an
 * overloaded error, is read no more and is closed once its calls in flight ended.
 * Configurable as limits.max_buffered_bytes (at least limits.max_frame_bytes). */
#define PROTO_BUFFERED_MAX_DEFAULT (64u * 1024u * 1024u)

/* Frames handled per read wakeup before yielding to other connections (fairness). */
#define PROTO_FRAMES_PER_WAKEUP 16

/* Longest method name accepted; longer names get Method not found without a lookup. */
#define PROTO_METHOD_NAME_MAX 128

/* Inline payloads ("data" strings) are bounded by the frame size; results returned inline by
 * runner.download are at most this many bytes, larger ones need a descriptor. */
#define PROTO_INLINE_RESULT_MAX (512u * 1024u)
