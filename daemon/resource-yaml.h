/* SPDX-License-Identifier: MIT */
/*
 * The Avatar resource YAML (avatar-api.md §6) as JSON documents, both ways, with libyaml.
 *
 * A resource set is a stream of YAML documents, each a mapping (kind, metadata, spec, and
 * for AvatarMetadata annotations). In memory it is a JSON array of objects, one per document,
 * keys in document order (json-c keeps insertion order). Runners edit that array; export
 * emits it; import parses it back, so export → import → export gives the same documents.
 *
 * Scalars: a plain scalar resolves as YAML 1.2's core schema does — null (~, null, Null, NULL,
 * empty), booleans (true/false in their three spellings), integers (decimal, 0x, 0o; beyond
 * [INT64_MIN, UINT64_MAX] an error), floats (a double, so 1.0 stays a float; .inf, .nan →
 * rejected: not representable in JSON), else a string; quoted and block scalars
 * are strings; the !!str/!!int/!!float/!!bool/!!null tags are honoured. Strings that would
 * resolve to something else when plain are emitted quoted (so are the YAML 1.1 forms such as
 * yes/no/on/off, 1_000 or 2024-01-01, which PyYAML readers would not take as strings).
 *
 * Untrusted input is bounded: at most RESOURCE_YAML_MAX_BYTES of text, RESOURCE_YAML_MAX_DEPTH
 * nesting, RESOURCE_YAML_MAX_NODES nodes and RESOURCE_YAML_MAX_DOCUMENTS documents; anchors
 * and aliases are refused (no billion laughs); duplicate keys are an error; a document that is
 * not a mapping is an error. Pure code: no I/O, no logging.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

#define RESOURCE_YAML_MAX_BYTES (8u * 1024u * 1024u)
#define RESOURCE_YAML_MAX_DEPTH 32
#define RESOURCE_YAML_MAX_NODES 200000
#define RESOURCE_YAML_MAX_DOCUMENTS 256

/* Parses YAML text into a new JSON array of document objects (empty documents are skipped).
 * Returns 0, -EINVAL for invalid or refused input with *ret_error a malloc'd one-line
 * description naming the line ("line 12: duplicate key 'k'"), -E2BIG beyond the limits (with
 * a description), -ENOMEM. ret_error may be NULL. */
int resource_yaml_parse(const char *text, size_t len, json_object **ret_docs, char **ret_error);

/* Emits a JSON array of document objects as a YAML stream with libyaml's emitter: block
 * style, two-space indentation, each document starting with "---" except the first, keys in
 * their JSON order. Returns 0 with a malloc'd NUL-terminated text (its length in *ret_len when
 * ret_len is not NULL), -EINVAL when docs is not an array of objects or holds a value YAML
 * cannot carry (NaN, infinity, invalid UTF-8), -E2BIG when the stream would break one of the
 * limits resource_yaml_parse() enforces (so whatever is emitted parses back to an equal
 * value), -ENOMEM. */
int resource_yaml_emit(json_object *docs, char **ret_text, size_t *ret_len);
