/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for what the storage client reads from an S3 server (daemon/storage-text.c):
 *   - the input as an XML answer: xml_root_is() for the roots the client looks for, and
 *     xml_element_text() for every element it reads (Code, Message, UploadId, ETag) and a few
 *     it does not; what it decodes then goes through server_text_sanitize() as an error's code
 *     and message do, with the secret access key of the operation;
 *   - the input as the storage URL the API hands out (GET /access): storage_parse_url(), then
 *     for an accepted one object_name_is_valid() and object_url() as a request would build it.
 *
 * Checked: every result is one of the documented ones; decoded text is never longer than the
 * answer; a message is one line of valid UTF-8 within its bound and never holds the secret;
 * a canonical URL is the endpoint followed by nothing but unreserved bytes, '/' and "%XX".
 * The answer is handed over without a terminating NUL, so a read past its end is caught.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "storage-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The secret an operation signs with ("id:secret" in its userpwd); never shown. */
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define ENDPOINT "https://storage.example.com/base"

/* Whether s (n bytes) is well-formed UTF-8 without control characters. */
static bool one_clean_line(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                size_t l = utf8_sequence_len((const unsigned char *) s + i, n - i);

                if (l == 0)
                        return false;
                if (l == 1 && ((unsigned char) s[i] < 0x20 || s[i] == 0x7f))
                        return false;
                i += l;
        }
        return true;
}

/* A text of the server made fit for a message, as storage_op_set_error_answer() does. */
static void check_sanitized(const char *raw, size_t max, const char *secret) {
        char *m = server_text_sanitize(raw, max, secret);
        size_t n;

        assert(m);
        n = strlen(m);
        /* cut between characters, then "…" (3 bytes) */
        assert(n <= max + 3);
        assert(one_clean_line(m, n));
        if (secret)
                assert(!strstr(m, secret));
        free(m);
}

/* One element as the client reads it. */
static void check_element(const char *xml, size_t len, const char *name) {
        char *text = (char *) 0x1;
        int r;

        r = xml_element_text(xml, len, name, &text);
        assert(r == 0 || r == -ENOENT || r == -EBADMSG || r == -ENOMEM);
        if (r < 0) {
                /* nothing handed out on failure */
                assert(text == (char *) 0x1);
                return;
        }
        assert(text);
        /* entities and character references decode to fewer bytes than they take */
        assert(strlen(text) <= len);
        check_sanitized(text, STORAGE_ERROR_CODE_MAX, SECRET);
        check_sanitized(text, STORAGE_ERROR_MESSAGE_MAX, SECRET);
        check_sanitized(text, STORAGE_ERROR_MESSAGE_MAX, NULL);
        free(text);
}

/* Whether a byte may stand bare in a canonical key or bucket. */
static bool canonical_byte(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_' || c == '~' || c == '/';
}

/* The input as the s3:// URL of an object. */
static void check_url(const char *s) {
        static const char *const query[] = { "partNumber", "7", "uploadId", "a b/c+d", NULL };
        char *bucket = NULL, *key = NULL, *url;
        const char *p;
        int r;

        r = storage_parse_url(s, &bucket, &key);
        if (r < 0) {
                assert(r == -EINVAL || r == -ENOMEM);
                return;
        }
        assert(bucket[0] && key[0]);
        assert(!strchr(bucket, '/'));
        if (!object_name_is_valid(bucket, key))
                goto out;

        url = object_url(ENDPOINT, bucket, key, query);
        assert(url);
        assert(strncmp(url, ENDPOINT "/", strlen(ENDPOINT "/")) == 0);
        for (p = url + strlen(ENDPOINT "/"); *p && *p != '?'; p++) {
                if (*p == '%') {
                        assert(strchr("0123456789ABCDEF", p[1]) && p[1]);
                        assert(strchr("0123456789ABCDEF", p[2]) && p[2]);
                        p += 2;
                        continue;
                }
                assert(canonical_byte(*p));
        }
        /* the query is sorted by name: partNumber before uploadId */
        assert(strcmp(p, "?partNumber=7&uploadId=a%20b%2Fc%2Bd") == 0);
        free(url);
out:
        free(bucket);
        free(key);
}

/* One input: one answer body, and the same bytes as a storage URL. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const elements[] = { "Code", "Message", "UploadId", "ETag", "Key", "Error" };
        static const char *const roots[] = { "Error", "InitiateMultipartUploadResult",
                                             "CompleteMultipartUploadResult" };
        const char *xml;
        char *copy, *text;

        if (size > STORAGE_XML_MAX)
                return 0;
        /* an exact-size copy: no NUL after it, so any read past the end is an overflow */
        copy = malloc(size ? size : 1);
        assert(copy);
        memcpy(copy, data, size);
        xml = copy;

        for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
                (void) xml_root_is(xml, size, roots[i]);
        for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++)
                check_element(xml, size, elements[i]);
        free(copy);

        /* the whole body as a server's text (a body that is not XML) and as a URL */
        text = strndup((const char *) data, size);
        assert(text);
        check_sanitized(text, STORAGE_ERROR_MESSAGE_MAX, SECRET);
        check_url(text);
        free(text);
        return 0;
}
