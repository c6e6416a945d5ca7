/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <strings.h>

#include "sim-echo.h"
#include "sim-http.h"

static const char *const shape_names[_ECHO_SHAPE_MAX] = {
        [ECHO_NONE] = "none",
        [ECHO_MESSAGE] = "message",
        [ECHO_ESCAPED] = "escaped",
        [ECHO_PERCENT] = "percent",
        [ECHO_BASE64] = "base64",
        [ECHO_TEXT] = "text",
        [ECHO_OK_RAW] = "ok-raw",
        [ECHO_OK_ESCAPED] = "ok-escaped",
        [ECHO_OK_PERCENT] = "ok-percent",
        [ECHO_OK_BASE64] = "ok-base64",
};

/* The name of a shape. */
const char *echo_shape_to_string(EchoShape s) {
        if (s < 0 || s >= _ECHO_SHAPE_MAX)
                return NULL;
        return shape_names[s];
}

/* The shape of a name. */
EchoShape echo_shape_from_string(const char *s) {
        for (size_t i = 0; s && i < _ECHO_SHAPE_MAX; i++)
                if (streq(s, shape_names[i]))
                        return (EchoShape) i;
        return _ECHO_SHAPE_INVALID;
}

/* The credential of the request: after "api-key-v1 " or "Bearer ", else "no-credential". */
static const char *credential_of(Req *r) {
        const char *h = req_header(r, "Authorization"), *sp;

        if (!h || !(sp = strchr(h, ' ')) || sp[1] == '\0')
                return "no-credential";
        return sp + 1;
}

/* Appends s base64-encoded (URL-safe alphabet without padding when url). */
static void add_base64(struct evbuffer *b, const char *s, bool url) {
        const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                              : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *p = (const unsigned char *) s;
        size_t n = strlen(s);

        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned) p[i] << 16 | (i + 1 < n ? (unsigned) p[i + 1] << 8 : 0) |
                             (i + 2 < n ? p[i + 2] : 0);
                char out[4] = { abc[v >> 18 & 63], abc[v >> 12 & 63], abc[v >> 6 & 63], abc[v & 63] };
                size_t k = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;

                evbuffer_add(b, out, k);
                if (!url)
                        evbuffer_add(b, "==", 4 - k);
        }
}

/* Appends the credential in a shape's form, inside a JSON string (or plain text). */
static void add_form(struct evbuffer *b, Req *r, EchoShape s) {
        const char *key = credential_of(r);

        switch (s) {
        case ECHO_ESCAPED:
        case ECHO_OK_ESCAPED:
                for (const unsigned char *p = (const unsigned char *) key; *p; p++)
                        evbuffer_add_printf(b, "\\u%04x", *p);
                break;
        case ECHO_PERCENT:
        case ECHO_OK_PERCENT:
                evbuffer_add_printf(b, "https://echo.invalid/?key=");
                for (const unsigned char *p = (const unsigned char *) key; *p; p++)
                        evbuffer_add_printf(b, "%%%02X", *p);
                break;
        case ECHO_BASE64:
                add_base64(b, req_header(r, "Authorization") ?: key, false);
                break;
        case ECHO_OK_BASE64:
                add_base64(b, key, true);
                break;
        default:
                /* raw: the credential is printable ASCII without quotes in every test */
                evbuffer_add(b, key, strlen(key));
        }
}

/* Answers with the error of an error shape. */
void echo_reply_error(Req *r, EchoShape s, int status) {
        struct evbuffer *b = evbuffer_new();

        if (!b) {
                req_drop(r);
                return;
        }
        if (s == ECHO_TEXT) {
                evbuffer_add_printf(b, "avatar-sim echoes the credential: ");
                add_form(b, r, s);
                evbuffer_add(b, "\n", 1);
                req_reply(r, status, "text/plain", b);
                return;
        }
        evbuffer_add_printf(b, "{\"message\":\"avatar-sim echoes the credential: ");
        add_form(b, r, s);
        evbuffer_add_printf(b, "\"}");
        req_reply(r, status, "application/json", b);
}

/* Gives every JSON object of the answer the member "echo". */
struct evbuffer *echo_body(Req *r, EchoShape s, struct evbuffer *body) {
        size_t n = evbuffer_get_length(body);
        const char *t = (const char *) evbuffer_pullup(body, -1);
        struct evbuffer *out;
        bool in_string = false;

        if (!t || n == 0 || !(out = evbuffer_new()))
                return body;
        for (size_t i = 0; i < n; i++) {
                evbuffer_add(out, t + i, 1);
                if (in_string) {
                        if (t[i] == '\\' && i + 1 < n)
                                evbuffer_add(out, t + ++i, 1);
                        else if (t[i] == '"')
                                in_string = false;
                        continue;
                }
                if (t[i] == '"') {
                        in_string = true;
                        continue;
                }
                if (t[i] != '{')
                        continue;
                evbuffer_add_printf(out, "\"echo\":\"");
                add_form(out, r, s);
                evbuffer_add(out, "\"", 1);
                /* a member follows unless the object is empty */
                for (size_t k = i + 1; k < n; k++) {
                        if (t[k] == ' ' || t[k] == '\n' || t[k] == '\r' || t[k] == '\t')
                                continue;
                        if (t[k] != '}')
                                evbuffer_add(out, ",", 1);
                        break;
                }
        }
        evbuffer_free(body);
        return out;
}
