/* SPDX-License-Identifier: MIT */
/*
 * Secrets kept out of the texts the daemon passes on. The daemon holds secrets (the API key
 * or a login session's tokens, the password of a configured proxy, the storage credentials
 * that /access hands out) and passes on texts it did not write: upstream answers (error
 * messages, job exceptions, whole JSON answers, resource YAML) and S3 error messages. A server
 * that echoes a secret back, in whatever form it travelled or was stored in, must not get it
 * to a client, a log line or a state file. This module is the one place that knows the
 * secrets (a process-wide registry, like the not-dumpable flag: whoever learns a secret
 * registers it) and the one clean-up every such text goes through (scrub_clean()).
 *
 * Forms found, for each secret, anywhere in a text:
 *   - its bytes, each one raw or percent-encoded (%XX, either case of hex), in any mix: the
 *     raw and the URL-encoded forms;
 *   - each character also escaped: JSON's \uXXXX (a surrogate pair beyond the BMP), \/ \"
 *     and \\, and YAML's \xXX: the JSON-escaped forms, a hostile server's included;
 *   - base64, standard and URL-safe alphabets, of the secret at each of the three byte
 *     offsets it can have in a longer encoded text (an Authorization header, a token): the
 *     characters that depend on the secret alone.
 * Each occurrence is replaced by SCRUB_MARK. Secrets shorter than SCRUB_SECRET_MIN bytes are
 * not looked for: they would match ordinary text.
 *
 * Pure code but for the registry; no logging (the caller that finds a secret says so).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What a secret becomes. */
#define SCRUB_MARK "***"
/* Shortest secret looked for, and the longest (the credential code reads at most 4 KiB). */
#define SCRUB_SECRET_MIN 8u
#define SCRUB_SECRET_MAX 4096u
/* Former credentials and storage secrets remembered besides the current ones. */
#define SCRUB_RECENT_MAX 8u

/* The secrets the daemon holds at a time, one each. */
typedef enum ScrubSlot {
        SCRUB_CREDENTIAL,     /* the API key, or the login session's access token */
        SCRUB_REFRESH_TOKEN,  /* the login session's refresh token */
        SCRUB_PROXY,          /* the password in upstream.proxy */
        SCRUB_ENV_HTTP_PROXY, /* the password in the environment's http proxy */
        SCRUB_ENV_HTTPS_PROXY,
        _SCRUB_SLOT_MAX,
} ScrubSlot;

/* Sets the secret of a slot (copied; NULL or "" clears it). A secret it replaces is kept
 * among the recent ones: a former key may still be valid. Returns 0 or -ENOMEM. */
int scrub_set(ScrubSlot slot, const char *secret);

/* Remembers a secret among the recent ones (the oldest goes): the storage secret of each
 * /access answer. Returns 0 or -ENOMEM. */
int scrub_remember(const char *secret);

/* Forgets every secret, erasing the copies (at exit; between tests). */
void scrub_reset(void);

/* Finds the registered secrets (and `extra`, when not NULL) in text[0..len) and replaces
 * each occurrence. Returns the number replaced; when it is positive, *ret is a malloc'd,
 * NUL-terminated copy with them replaced (its length in *ret_len), else *ret is NULL and the
 * text stands as it is. -ENOMEM on allocation failure. */
int scrub_text(const char *text, size_t len, const char *extra, char **ret, size_t *ret_len);

/* Whether text[0..len) holds `secret` (NULL: any registered secret) in one of the forms. */
bool scrub_found(const char *text, size_t len, const char *secret);

/* The clean-up of a text from outside (a server's message, an S3 error, an exception) for a
 * message, an error's data or a log line: the secrets replaced (registered ones and
 * `extra`), then one line of valid UTF-8 (control characters, C1 controls and line
 * separators become spaces, bytes that are not UTF-8 '?'), at most `max` bytes of it, cut
 * between characters and followed by "…" when longer. Reads at most a little more than max
 * bytes of the text. Returns malloc'd, or NULL on OOM. */
char *scrub_clean(const char *text, size_t len, size_t max, const char *extra);
