/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the one clean-up every text from outside goes through before a client
 * or a log sees it (daemon/scrub.c): with the API key registered and a storage secret passed as
 * `extra`, the input is a server's text —
 *   - scrub_text() replaces the secrets; what it hands back holds none of them in any form
 *     scrub_found() knows (raw, percent-encoded, JSON- or YAML-escaped, base64), and when it
 *     replaces nothing the text held none;
 *   - scrub_clean() gives one line of valid UTF-8 without control characters (C0, DEL, C1, the
 *     Unicode line and paragraph separators), at most `max` bytes and "…", and no secret.
 * The first two bytes of the input choose `max` (1 .. 4096); the rest is the text, handed over
 * without a NUL after it.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "scrub.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Secrets without '?' or ' ': the clean-up writes those for bytes it drops, which must not
 * make a secret where there was none. */
#define KEY "fuzz-api-key-5ec7e7-do-not-show"
#define STORAGE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY=\"x\\y"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        assert(scrub_set(SCRUB_CREDENTIAL, KEY) == 0);
        return 0;
}

/* One line of valid UTF-8 without controls or line separators. */
static bool one_clean_line(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < n;) {
                size_t l = utf8_sequence_len(p + i, n - i);

                if (l == 0)
                        return false;
                if (l == 1 && (p[i] < 0x20 || p[i] == 0x7f))
                        return false;
                /* C1 controls (U+0080..U+009F), U+2028 and U+2029 */
                if (l == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)
                        return false;
                if (l == 3 && p[i] == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
                        return false;
                i += l;
        }
        return true;
}

static void fail(const char *what, const char *text, size_t len) {
        fprintf(stderr, "%s: %.*s\n", what, (int) len, text);
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text, *ret = NULL, *clean;
        size_t max, len, ret_len = 0, n;
        int r;

        if (size < 2)
                return 0;
        max = (((size_t) data[0] << 8 | data[1]) % 4096) + 1;
        len = size - 2;
        /* an exact-size copy: a read past the end is caught */
        text = malloc(len ? len : 1);
        assert(text);
        memcpy(text, data + 2, len);

        r = scrub_text(text, len, STORAGE_SECRET, &ret, &ret_len);
        assert(r >= 0);
        if (r == 0) {
                assert(!ret);
                if (scrub_found(text, len, NULL) || scrub_found(text, len, STORAGE_SECRET))
                        fail("scrub_text replaced nothing in a text that holds a secret", text, len);
        } else {
                assert(ret && strlen(ret) <= ret_len);
                if (scrub_found(ret, ret_len, NULL) || scrub_found(ret, ret_len, STORAGE_SECRET))
                        fail("a secret is left after scrub_text", ret, ret_len);
        }
        free(ret);

        clean = scrub_clean(text, len, max, STORAGE_SECRET);
        assert(clean);
        n = strlen(clean);
        if (n > max + strlen("…"))
                fail("scrub_clean went past its bound", clean, n);
        if (!one_clean_line(clean, n))
                fail("scrub_clean gave more than one line of valid UTF-8", clean, n);
        if (scrub_found(clean, n, NULL) || scrub_found(clean, n, STORAGE_SECRET))
                fail("a secret is left after scrub_clean", clean, n);
        free(clean);
        free(text);
        return 0;
}
