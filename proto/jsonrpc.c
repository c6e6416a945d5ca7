/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 messages: strict parsing of untrusted text, classification of request
 * objects, and the reply builders.
 *
 * json-c's strict mode still accepts a few things that are not JSON (NaN, Infinity, "1.",
 * raw control characters inside strings, surrogates and overlong forms in UTF-8). So the text
 * first goes through json_text_check(), a single linear pass over the tokens of RFC 8259,
 * and json-c then builds the tree with its own depth limit.
 */
#include <assert.h>
#include <errno.h>
#include <json-c/printbuf.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "errors.h"
#include "frame.h"
#include "jsonrpc.h"
#include "macro.h"

/* Cleanup helper for jsonrpc_message_free(). */
static void message_freep(JsonRpcMessage **p) {
        jsonrpc_message_free(*p);
}

/* Adds a string member. */
static int object_add_string(json_object *o, const char *key, const char *s) {
        json_object *v;

        v = json_object_new_string(s);
        if (!v)
                return -ENOMEM;
        return json_object_add_or_put(o, key, v);
}

/* Whitespace as RFC 8259 defines it. */
static bool json_is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether c is an ASCII digit. */
static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Whether c is a hexadecimal digit. */
static bool is_xdigit(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 when it is not
 * well-formed (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
size_t utf8_sequence_len(const unsigned char *s, size_t n) {
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                if (s[0] == 0xe0)
                        lo = 0xa0; /* overlong */
                else if (s[0] == 0xed)
                        hi = 0x9f; /* surrogates */
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                if (s[0] == 0xf0)
                        lo = 0x90; /* overlong */
                else if (s[0] == 0xf4)
                        hi = 0x8f; /* above U+10FFFF */
        } else
                return 0;

        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return len;
}

/* Checks a string token starting after its opening quote; advances *i past the closing one
 * and tells whether the string holds an escaped NUL. */
static int json_check_string(const char *s, size_t n, size_t *i, bool *ret_nul) {
        size_t k = *i;

        *ret_nul = false;

        for (;;) {
                unsigned char c;
                size_t l;

                if (k >= n)
                        return -EBADMSG;
                c = (unsigned char) s[k];
                if (c == '"') {
                        *i = k + 1;
                        return 0;
                }
                if (c == '\\') {
                        if (k + 1 >= n)
                                return -EBADMSG;
                        switch (s[k + 1]) {
                        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                                k += 2;
                                break;
                        case 'u':
                                if (n - k < 6)
                                        return -EBADMSG;
                                for (size_t j = 2; j < 6; j++)
                                        if (!is_xdigit(s[k + j]))
                                                return -EBADMSG;
                                if (memcmp(s + k + 2, "0000", 4) == 0)
                                        *ret_nul = true;
                                k += 6;
                                break;
                        default:
                                return -EBADMSG;
                        }
                        continue;
                }
                if (c < 0x20) /* control characters must be escaped */
                        return -EBADMSG;
                l = utf8_sequence_len((const unsigned char *) s + k, n - k);
                if (l == 0)
                        return -EBADMSG;
                k += l;
        }
}

/* Whether an integer token (no fraction, no exponent) is one json-c cannot hold: below
 * -2^63 or above 2^64-1 (it clamps them) or "-0" (it keeps 0). Number tokens with a fraction
 * or an exponent keep their text in json-c, whatever their value. */
static bool json_integer_is_inexact(const char *s, size_t n) {
        bool neg = s[0] == '-';
        const char *d = s + neg, *limit = neg ? "9223372036854775808" : "18446744073709551615";
        size_t nd = n - neg, nl = strlen(limit);

        if (neg && nd == 1 && d[0] == '0')
                return true;
        /* no leading zeros (json_check_number), so more digits is a larger number */
        return nd > nl || (nd == nl && memcmp(d, limit, nl) > 0);
}

/* Checks a number token (RFC 8259 grammar); advances *i past it and sets *inexact when it is
 * an integer json-c cannot hold exactly. */
static int json_check_number(const char *s, size_t n, size_t *i, bool *inexact) {
        size_t k = *i;
        bool integer = true;

        if (k < n && s[k] == '-')
                k++;
        if (k >= n || !is_digit(s[k]))
                return -EBADMSG;
        if (s[k] == '0') {
                k++;
                if (k < n && is_digit(s[k])) /* no leading zeros */
                        return -EBADMSG;
        } else
                while (k < n && is_digit(s[k]))
                        k++;
        if (k < n && s[k] == '.') {
                integer = false;
                k++;
                if (k >= n || !is_digit(s[k]))
                        return -EBADMSG;
                while (k < n && is_digit(s[k]))
                        k++;
        }
        if (k < n && (s[k] == 'e' || s[k] == 'E')) {
                integer = false;
                k++;
                if (k < n && (s[k] == '+' || s[k] == '-'))
                        k++;
                if (k >= n || !is_digit(s[k]))
                        return -EBADMSG;
                while (k < n && is_digit(s[k]))
                        k++;
        }
        if (integer && json_integer_is_inexact(s + *i, k - *i))
                *inexact = true;
        *i = k;
        return 0;
}

/* Checks that every token of the text is a JSON token (the structure is json-c's job); sets
 * *inexact when an integer json-c would not hold exactly is among them. */
static int json_text_check(const char *s, size_t n, bool *inexact) {
        static const char *const literals[] = { "true", "false", "null" };
        size_t i = 0;
        int r;

        while (i < n) {
                char c = s[i];

                if (json_is_ws(c) || c == '{' || c == '}' || c == '[' || c == ']' ||
                    c == ',' || c == ':') {
                        i++;
                        continue;
                }
                if (c == '"') {
                        bool nul;

                        i++;
                        r = json_check_string(s, n, &i, &nul);
                        if (r < 0)
                                return r;
                        if (nul) {
                                /* json-c keeps member names as C strings: "a\u0000b" would
                                 * silently become "a". Refuse what we cannot hold exactly. */
                                size_t k = i;

                                while (k < n && json_is_ws(s[k]))
                                        k++;
                                if (k < n && s[k] == ':')
                                        return -EBADMSG;
                        }
                        continue;
                }
                if (c == '-' || is_digit(c)) {
                        r = json_check_number(s, n, &i, inexact);
                        if (r < 0)
                                return r;
                        continue;
                }

                r = -EBADMSG;
                for (size_t j = 0; j < ELEMENTSOF(literals); j++) {
                        size_t l = strlen(literals[j]);

                        if (n - i >= l && memcmp(s + i, literals[j], l) == 0) {
                                i += l;
                                r = 0;
                                break;
                        }
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One tokener per thread and depth is kept for the next parse: allocating a tokener and its
 * depth stack for every frame was a measurable share of a call's cost. A cache, not state:
 * every parse starts from json_tokener_reset(). */
static __thread struct json_tokener *cached_tok;
static __thread unsigned cached_depth;

/* A tokener for max_depth: the cached one when it fits, else a new one. */
static struct json_tokener *tokener_get(unsigned max_depth) {
        struct json_tokener *tok;

        if (cached_tok && cached_depth == max_depth) {
                tok = TAKE_PTR(cached_tok);
                json_tokener_reset(tok);
                return tok;
        }
        tok = json_tokener_new_ex((int) max_depth);
        /* no JSON_TOKENER_VALIDATE_UTF8: json_text_check() already took every byte of a string
         * through utf8_sequence_len() (stricter) and refuses non-ASCII outside strings */
        if (tok)
                json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        return tok;
}

/* Gives a tokener back to the cache (replacing one of another depth). */
static void tokener_put(struct json_tokener *tok, unsigned max_depth) {
        if (cached_tok)
                json_tokener_free(cached_tok);
        cached_tok = tok;
        cached_depth = max_depth;
}

/* json_parse_strict(), also telling whether the text holds an integer json-c rounded. */
static int parse_strict(const char *text, size_t len, unsigned max_depth, json_object **ret,
                        bool *ret_inexact) {
        struct json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        enum json_tokener_error e;
        size_t end;
        int r;

        assert_return(text || len == 0, -EINVAL);
        assert_return(max_depth > 0 && max_depth <= INT_MAX, -EINVAL);
        assert_return(ret, -EINVAL);

        if (len > INT_MAX)
                return -EBADMSG;
        if (!text)
                text = "";

        *ret_inexact = false;
        r = json_text_check(text, len, ret_inexact);
        if (r < 0)
                return r;

        tok = tokener_get(max_depth);
        if (!tok)
                return -ENOMEM;

        o = json_tokener_parse_ex(tok, text, (int) len);
        e = json_tokener_get_error(tok);
        if (e == json_tokener_continue) {
                /* A top-level number or literal (or a truncated text) waits for more input;
                 * the end of our text is the end of the input, which json-c reads as a NUL. */
                json_object_put(TAKE_PTR(o));
                o = json_tokener_parse_ex(tok, "", 1);
                e = json_tokener_get_error(tok);
                end = len;
        } else
                end = json_tokener_get_parse_end(tok);
        tokener_put(tok, max_depth);
        if (e != json_tokener_success)
                return -EBADMSG;

        /* Trailing whitespace is fine, anything else is a second text or garbage. */
        for (; end < len; end++)
                if (!json_is_ws(text[end]))
                        return -EBADMSG;

        *ret = TAKE_PTR(o);
        return 0;
}

/* Parses untrusted JSON text exactly, see jsonrpc.h. */
int json_parse_strict(const char *text, size_t len, unsigned max_depth, json_object **ret) {
        bool inexact;

        return parse_strict(text, len, max_depth, ret, &inexact);
}

/* Where the value of a request's "id" member was written, when it is a number. */
typedef struct IdText {
        const char *p; /* NULL: no number (no id, or an id of another type) */
        size_t n;
} IdText;

/* Whether the raw text of a JSON string (between its quotes, well-formed) is exactly
 * `want` (ASCII) once its escapes are decoded: "\u0069d" is "id" to json-c too. */
static bool json_string_is(const char *s, size_t n, const char *want) {
        size_t k = 0;

        for (; k < n; want++) {
                char c = s[k];

                if (c == '\\') {
                        char e = s[k + 1];

                        if (e == 'u') {
                                unsigned cp = 0;

                                for (size_t j = 2; j < 6; j++) {
                                        char h = s[k + j];

                                        cp = cp << 4 | (unsigned) (is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
                                }
                                if (cp == 0 || cp > 0x7f)
                                        return false;
                                c = (char) cp;
                                k += 6;
                        } else {
                                c = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' :
                                    e == 't' ? '\t' : e;
                                k += 2;
                        }
                } else
                        k++;
                if (*want == '\0' || c != *want)
                        return false;
        }
        return *want == '\0';
}

/* Finds, in a frame json-c parsed (so well-formed), the text of the "id" member of each
 * request object: the entries of a batch (depth 2) or the single object (depth 1); the last
 * of duplicate members, as json-c keeps the last. Only numbers are recorded. */
static void id_texts_find(const char *s, size_t n, bool is_batch, IdText *ids, size_t n_ids) {
        const unsigned level = is_batch ? 2 : 1;
        unsigned depth = 0;
        size_t entry = 0, i = 0;
        /* the entry at `level` is an object, where a key is due next, that is "id" */
        bool in_object = false, expect_key = false, key_is_id = false;

        while (i < n) {
                char c = s[i];
                /* a value of the entry object's current member starts here */
                bool member_value = depth == level && in_object && !expect_key && key_is_id &&
                                    entry < n_ids;
                size_t k;

                if (json_is_ws(c) || c == ':') {
                        i++;
                        continue;
                }
                if (c == '{' || c == '[') {
                        if (member_value)
                                ids[entry] = (IdText) {};
                        if (++depth == level) {
                                in_object = c == '{';
                                expect_key = in_object;
                                key_is_id = false;
                        }
                        i++;
                        continue;
                }
                if (c == '}' || c == ']') {
                        depth--;
                        i++;
                        continue;
                }
                if (c == ',') {
                        if (depth == level && in_object) {
                                expect_key = true;
                                key_is_id = false;
                        }
                        if (is_batch && depth == 1)
                                entry++;
                        i++;
                        continue;
                }
                if (c == '"') {
                        for (k = i + 1; s[k] != '"'; k += s[k] == '\\' ? 2 : 1)
                                ;
                        if (depth == level && in_object && expect_key) {
                                key_is_id = json_string_is(s + i + 1, k - i - 1, "id");
                                expect_key = false;
                        } else if (member_value)
                                ids[entry] = (IdText) {};
                        i = k + 1;
                        continue;
                }
                /* a number or a literal */
                for (k = i; k < n && !json_is_ws(s[k]) && s[k] != ',' && s[k] != '}' && s[k] != ']'; k++)
                        ;
                if (member_value)
                        ids[entry] = c == '-' || is_digit(c) ? (IdText) { s + i, k - i } : (IdText) {};
                i = k;
        }
}

/* Makes an integer id json-c rounded serialize as it was written. */
static int id_keep_text(json_object *id, const IdText *t) {
        const char *printed;
        size_t len;
        char *copy;

        if (!t->p || !json_object_is_type(id, json_type_int))
                return 0;
        printed = json_object_to_json_string_length(id, JSONRPC_WIRE_FLAGS, &len);
        if (printed && len == t->n && memcmp(printed, t->p, len) == 0)
                return 0;
        copy = strndup(t->p, t->n);
        if (!copy)
                return -ENOMEM;
        json_object_set_serializer(id, json_object_userdata_to_json_string, copy,
                                   json_object_free_userdata);
        return 0;
}

/* Marks a call as an invalid request. The specification wants a reply even when the entry
 * had no id (with id null), so has_id is set and a valid id read earlier is kept. */
static void call_invalid(JsonRpcCall *c, const char *detail) {
        c->error = RPC_INVALID_REQUEST;
        c->error_detail = detail;
        c->has_id = true;
}

/* Reads one entry of a message into c, following the specification's request object. */
static int call_classify(json_object *o, JsonRpcCall *c) {
        json_object *v, *params = NULL;
        const char *s;
        size_t n;

        *c = (JsonRpcCall) {};

        if (!json_object_is_type(o, json_type_object)) {
                call_invalid(c, "a request must be an object");
                return 0;
        }

        if (json_object_object_get_ex(o, "id", &v)) {
                if (v && !json_object_is_type(v, json_type_string) &&
                    !json_object_is_type(v, json_type_int) &&
                    !json_object_is_type(v, json_type_double)) {
                        call_invalid(c, "\"id\" must be a string, a number or null");
                        return 0;
                }
                c->has_id = true;
                c->id = json_object_get(v);
        }

        if (!json_object_object_get_ex(o, "jsonrpc", &v)) {
                call_invalid(c, "missing member \"jsonrpc\"");
                return 0;
        }
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 3 ||
            memcmp(json_object_get_string(v), "2.0", 3) != 0) {
                call_invalid(c, "\"jsonrpc\" must be exactly \"2.0\"");
                return 0;
        }

        if (!json_object_object_get_ex(o, "method", &v)) {
                call_invalid(c, "missing member \"method\"");
                return 0;
        }
        if (!json_object_is_type(v, json_type_string)) {
                call_invalid(c, "\"method\" must be a string");
                return 0;
        }
        s = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);

        if (json_object_object_get_ex(o, "params", &params) &&
            !json_object_is_type(params, json_type_object) &&
            !json_object_is_type(params, json_type_array)) {
                call_invalid(c, "\"params\" must be an object or an array");
                return 0;
        }

        if (memchr(s, '\0', n)) {
                /* A valid request, but no method of ours can have this name, and a C string
                 * cannot carry it to the dispatcher (its prefix could name a real method). */
                c->error = RPC_METHOD_NOT_FOUND;
                c->error_detail = "the method name contains a NUL character";
                return 0;
        }

        c->method = strndup(s, n);
        if (!c->method)
                return -ENOMEM;
        c->params = json_object_get(params);
        return 0;
}

/* Builds the reply for a message that cannot be parsed; returns r, or -ENOMEM. Takes data. */
static int parse_fail(json_object **ret_error_reply, int code, json_object *data, int r) {
        json_object *reply;

        if (!ret_error_reply) {
                json_object_put(data);
                return r;
        }
        reply = jsonrpc_error_new(NULL, code, NULL, data);
        if (!reply)
                return -ENOMEM;
        *ret_error_reply = reply;
        return r;
}

/* Builds {"detail": detail} plus an optional "limit". */
static json_object *detail_new(const char *detail, size_t limit) {
        _cleanup_(json_object_putp) json_object *d = NULL;
        json_object *v;

        d = json_object_new_object();
        if (!d)
                return NULL;
        if (object_add_string(d, "detail", detail) < 0)
                return NULL;
        if (limit > 0) {
                v = json_object_new_uint64(limit);
                if (!v || json_object_add_or_put(d, "limit", v) < 0)
                        return NULL;
        }
        return TAKE_PTR(d);
}

/* The fast path of jsonrpc_parse() for the shape nearly every request has: one object whose
 * members are "jsonrpc": "2.0", "method" and "id" (a plain integer, a plain string or null),
 * nothing else, no params. "Plain" is printable ASCII without escapes. It gives the message
 * the full parse would give, without json-c's tokener (which switches the thread's locale for
 * every text) and without a tree; anything else (params, other members, escapes, non-ASCII,
 * a number json-c would not hold as such, a repeated member, a wrong "jsonrpc") returns 0 and
 * goes the full way, errors included. Returns 1 with *ret, 0, or -ENOMEM. */

/* The plain string token at s[*i] (its opening quote): advances *i past it and returns the
 * length of its content, or -1 when it is not plain. */
/* The bytes json-c writes between quotes as they are, and a plain string holds: printable
 * ASCII but '"' and '\\'. */
static const bool plain_byte[256] = {
        [0x20 ... 0x21] = true, /* '"' is 0x22 */
        [0x23 ... 0x5b] = true, /* '\\' is 0x5c */
        [0x5d ... 0x7e] = true,
};

static ssize_t fast_string(const char *s, size_t n, size_t *i) {
        size_t k = *i + 1, start = k;

        while (k < n && plain_byte[(unsigned char) s[k]])
                k++;
        if (k >= n || s[k] != '"')
                return -1;
        *i = k + 1;
        return (ssize_t) (k - start);
}

/* The integer token at s[*i] when json-c holds it as an int64 that prints as it was written:
 * no fraction, no exponent, no leading zero, not "-0", within int64. */
static bool fast_integer(const char *s, size_t n, size_t *i, int64_t *ret) {
        size_t k = *i;
        bool neg = false;
        uint64_t v = 0, limit;

        if (k < n && s[k] == '-') {
                neg = true;
                k++;
        }
        if (k >= n || !is_digit(s[k]) || (s[k] == '0' && (neg || (k + 1 < n && is_digit(s[k + 1])))))
                return false;
        limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
        for (; k < n && is_digit(s[k]); k++) {
                unsigned d = (unsigned) (s[k] - '0');

                if (v > (limit - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        if (k < n && (s[k] == '.' || s[k] == 'e' || s[k] == 'E'))
                return false;
        *ret = neg ? (int64_t) (0 - v) : (int64_t) v;
        *i = k;
        return true;
}

int jsonrpc_parse_fast(const char *s, size_t n, JsonRpcMessage **ret) {
        enum { HAVE_JSONRPC = 1, HAVE_METHOD = 2, HAVE_ID = 4 };
        const char *method = NULL;
        size_t i = 0, method_len = 0;
        unsigned have = 0;
        bool id_null = false, id_string = false;
        const char *id_s = NULL;
        size_t id_len = 0;
        int64_t id_int = 0;
        JsonRpcMessage *m;
        JsonRpcCall *c;

        while (i < n && json_is_ws(s[i]))
                i++;
        if (i >= n || s[i] != '{')
                return 0;
        i++;
        for (;;) {
                const char *key;
                ssize_t kl, vl;
                size_t v;

                while (i < n && json_is_ws(s[i]))
                        i++;
                if (i >= n || s[i] != '"')
                        return 0;
                key = s + i + 1;
                kl = fast_string(s, n, &i);
                if (kl < 0)
                        return 0;
                while (i < n && json_is_ws(s[i]))
                        i++;
                if (i >= n || s[i] != ':')
                        return 0;
                i++;
                while (i < n && json_is_ws(s[i]))
                        i++;
                if (i >= n)
                        return 0;
                v = i;
                if (kl == 7 && memcmp(key, "jsonrpc", 7) == 0 && !(have & HAVE_JSONRPC)) {
                        if (s[i] != '"' || fast_string(s, n, &i) != 3 || memcmp(s + v + 1, "2.0", 3) != 0)
                                return 0;
                        have |= HAVE_JSONRPC;
                } else if (kl == 6 && memcmp(key, "method", 6) == 0 && !(have & HAVE_METHOD)) {
                        if (s[i] != '"' || (vl = fast_string(s, n, &i)) < 0)
                                return 0;
                        method = s + v + 1;
                        method_len = (size_t) vl;
                        have |= HAVE_METHOD;
                } else if (kl == 2 && memcmp(key, "id", 2) == 0 && !(have & HAVE_ID)) {
                        if (s[i] == '"') {
                                if ((vl = fast_string(s, n, &i)) < 0)
                                        return 0;
                                id_string = true;
                                id_s = s + v + 1;
                                id_len = (size_t) vl;
                        } else if (s[i] == 'n') {
                                if (n - i < 4 || memcmp(s + i, "null", 4) != 0)
                                        return 0;
                                i += 4;
                                id_null = true;
                        } else if (!fast_integer(s, n, &i, &id_int))
                                return 0;
                        have |= HAVE_ID;
                } else
                        return 0;
                while (i < n && json_is_ws(s[i]))
                        i++;
                if (i >= n)
                        return 0;
                if (s[i] == ',') {
                        i++;
                        continue;
                }
                if (s[i] != '}')
                        return 0;
                i++;
                break;
        }
        for (; i < n; i++)
                if (!json_is_ws(s[i]))
                        return 0;
        if ((have & (HAVE_JSONRPC | HAVE_METHOD)) != (HAVE_JSONRPC | HAVE_METHOD))
                return 0;

        /* the message and its one call in one block (jsonrpc_message_free() knows) */
        m = calloc(1, sizeof(JsonRpcMessage) + sizeof(JsonRpcCall));
        if (!m)
                return -ENOMEM;
        m->calls = c = (JsonRpcCall *) (m + 1);
        m->n_calls = 1;
        c->method = strndup(method, method_len);
        if (!c->method) {
                free(m);
                return -ENOMEM;
        }
        if (have & HAVE_ID) {
                c->has_id = true;
                if (!id_null) {
                        c->id = id_string ? json_object_new_string_len(id_s, (int) id_len) :
                                            json_object_new_int64(id_int);
                        if (!c->id) {
                                jsonrpc_message_free(m);
                                return -ENOMEM;
                        }
                }
        }
        *ret = m;
        return 1;
}

/* Parses one frame into a message, see jsonrpc.h. */
int jsonrpc_parse(const char *text, size_t len, unsigned max_depth, size_t max_batch,
                  JsonRpcMessage **ret, json_object **ret_error_reply) {
        int r;

        assert_return(text || len == 0, -EINVAL);
        assert_return(ret, -EINVAL);

        if (len <= INT_MAX) {
                r = jsonrpc_parse_fast(text ?: "", len, ret);
                if (r != 0) {
                        if (ret_error_reply)
                                *ret_error_reply = NULL;
                        return r < 0 ? r : 0;
                }
        }
        return jsonrpc_parse_full(text, len, max_depth, max_batch, ret, ret_error_reply);
}

/* jsonrpc_parse() without its fast path. */
int jsonrpc_parse_full(const char *text, size_t len, unsigned max_depth, size_t max_batch,
                       JsonRpcMessage **ret, json_object **ret_error_reply) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(message_freep) JsonRpcMessage *m = NULL;
        _cleanup_free_ IdText *ids = NULL;
        json_object *data;
        bool is_batch, inexact;
        size_t n;
        int r;

        assert_return(text || len == 0, -EINVAL);
        assert_return(ret, -EINVAL);
        assert_return(max_depth > 0 && max_depth <= INT_MAX, -EINVAL);

        if (ret_error_reply)
                *ret_error_reply = NULL;

        r = parse_strict(text, len, max_depth, &root, &inexact);
        if (r == -EBADMSG)
                return parse_fail(ret_error_reply, RPC_PARSE_ERROR, NULL, -EBADMSG);
        if (r < 0)
                return r;

        is_batch = json_object_is_type(root, json_type_array);
        if (is_batch) {
                n = json_object_array_length(root);
                if (n == 0) {
                        data = detail_new("empty batch", 0);
                        if (!data)
                                return -ENOMEM;
                        return parse_fail(ret_error_reply, RPC_INVALID_REQUEST, data, -EINVAL);
                }
                if (n > max_batch) {
                        char buf[128];

                        (void) snprintf(buf, sizeof(buf),
                                        "batch of %zu entries exceeds the limit of %zu entries",
                                        n, max_batch);
                        data = detail_new(buf, max_batch);
                        if (!data)
                                return -ENOMEM;
                        return parse_fail(ret_error_reply, RPC_INVALID_REQUEST, data, -E2BIG);
                }
        } else if (json_object_is_type(root, json_type_object))
                n = 1;
        else {
                data = detail_new("a request must be an object or an array", 0);
                if (!data)
                        return -ENOMEM;
                return parse_fail(ret_error_reply, RPC_INVALID_REQUEST, data, -EINVAL);
        }

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->calls = calloc(n, sizeof(JsonRpcCall));
        if (!m->calls)
                return -ENOMEM;
        m->is_batch = is_batch;
        /* json-c rounds some integers (see json_integer_is_inexact()); an id is echoed as it was
         * written, so an id json-c rounded gets its text back. Only a frame holding such an
         * integer, anywhere, pays for the search. */
        if (inexact) {
                ids = calloc(n, sizeof(IdText));
                if (!ids)
                        return -ENOMEM;
                id_texts_find(text, len, is_batch, ids, n);
        }

        for (size_t i = 0; i < n; i++) {
                json_object *entry = is_batch ? json_object_array_get_idx(root, i) : root;

                r = call_classify(entry, &m->calls[i]);
                m->n_calls = i + 1;
                if (r >= 0 && ids)
                        r = id_keep_text(m->calls[i].id, &ids[i]);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(m);
        return 0;
}

/* Frees a message and every call still in it. */
JsonRpcMessage *jsonrpc_message_free(JsonRpcMessage *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_calls; i++)
                jsonrpc_call_done(&m->calls[i]);
        if (m->calls != (JsonRpcCall *) (m + 1))
                free(m->calls);
        free(m);
        return NULL;
}

/* Moves a call out of the message. */
void jsonrpc_call_take(JsonRpcMessage *m, size_t i, JsonRpcCall *ret) {
        assert(m);
        assert(i < m->n_calls);
        assert(ret);

        *ret = m->calls[i];
        m->calls[i] = (JsonRpcCall) {};
}

/* Releases the members of a call. */
void jsonrpc_call_done(JsonRpcCall *c) {
        if (!c)
                return;
        json_object_put(c->id);
        free(c->method);
        json_object_put(c->params);
        *c = (JsonRpcCall) {};
}

/* Builds {"jsonrpc":"2.0"} as the start of every message. */
static json_object *message_new(void) {
        json_object *o;

        o = json_object_new_object();
        if (!o)
                return NULL;
        if (object_add_string(o, "jsonrpc", "2.0") < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* Builds a result reply. */
json_object *jsonrpc_result_new(json_object *id, json_object *result) {
        _cleanup_(json_object_putp) json_object *res = result, *o = NULL;

        o = message_new();
        if (!o)
                return NULL;
        if (json_object_add_or_put(o, "result", TAKE_PTR(res)) < 0)
                return NULL;
        if (json_object_add_or_put(o, "id", json_object_get(id)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Builds an error reply around an error object. */
json_object *jsonrpc_error_reply_new(json_object *id, json_object *error) {
        _cleanup_(json_object_putp) json_object *err = error, *o = NULL;

        assert_return(error, NULL);

        o = message_new();
        if (!o)
                return NULL;
        if (json_object_add_or_put(o, "error", TAKE_PTR(err)) < 0)
                return NULL;
        if (json_object_add_or_put(o, "id", json_object_get(id)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Builds an error reply from a code. */
json_object *jsonrpc_error_new(json_object *id, int code, const char *message, json_object *data) {
        json_object *e;

        e = rpc_error_object_new(code, message, data);
        if (!e)
                return NULL;
        return jsonrpc_error_reply_new(id, e);
}

/* Builds a notification. */
json_object *jsonrpc_notification_new(const char *method, json_object *params) {
        _cleanup_(json_object_putp) json_object *p = params, *o = NULL;

        assert_return(method, NULL);

        o = message_new();
        if (!o)
                return NULL;
        if (object_add_string(o, "method", method) < 0)
                return NULL;
        if (p && json_object_add_or_put(o, "params", TAKE_PTR(p)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Builds a request (client side). */
json_object *jsonrpc_request_new(const char *method, json_object *params, long long id) {
        _cleanup_(json_object_putp) json_object *p = params, *o = NULL;
        json_object *v;

        assert_return(method, NULL);

        o = message_new();
        if (!o)
                return NULL;
        if (object_add_string(o, "method", method) < 0)
                return NULL;
        if (p && json_object_add_or_put(o, "params", TAKE_PTR(p)) < 0)
                return NULL;
        v = json_object_new_int64(id);
        if (!v || json_object_add_or_put(o, "id", v) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* The last defence of the wire against bytes that are not UTF-8: json-c copies a string's
 * bytes as they are (escaping control characters only), so a text from outside that reached a
 * reply without its clean-up would make the reply invalid JSON (RFC 8259 §8.1). Each byte that
 * does not belong to a well-formed sequence (utf8_sequence_len()) becomes U+FFFD; json-c's text
 * is ASCII outside strings, so such bytes are always inside one. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* The number of bytes of s[0..n) that are not part of a well-formed UTF-8 sequence. */
static size_t utf8_bad_bytes(const char *s, size_t n) {
        size_t bad = 0;

        for (size_t i = 0, l; i < n; i += l) {
                uint64_t w;

                /* 32, then eight ASCII bytes at a time: a reply is mostly ASCII */
                if (n - i >= 32) {
                        uint64_t v[4];

                        memcpy(v, s + i, 32);
                        if (((v[0] | v[1] | v[2] | v[3]) & UINT64_C(0x8080808080808080)) == 0) {
                                l = 32;
                                continue;
                        }
                }
                if (n - i >= 8 && (memcpy(&w, s + i, 8), (w & UINT64_C(0x8080808080808080)) == 0)) {
                        l = 8;
                        continue;
                }
                if ((unsigned char) s[i] < 0x80) {
                        l = 1;
                        continue;
                }
                l = utf8_sequence_len((const unsigned char *) s + i, n - i);
                if (l == 0) {
                        bad++;
                        l = 1;
                }
        }
        return bad;
}

/* Whether every byte of s[0..n) is printable ASCII or DEL (0x20-0x7f): the common case of a
 * reply's text, which then holds neither a line break nor a byte that is not UTF-8. Sixteen
 * bytes at a time where SSE2 is there: a signed byte below 0x20 is one of 0x00-0x1f or
 * 0x80-0xff. */
static bool text_printable_ascii(const char *s, size_t n) {
        size_t i = 0;

#ifdef __SSE2__
        const __m128i lim = _mm_set1_epi8(0x20);
        __m128i bad = _mm_setzero_si128();

        for (; n - i >= 16; i += 16)
                bad = _mm_or_si128(bad, _mm_cmplt_epi8(_mm_loadu_si128((const __m128i *) (const void *) (s + i)), lim));
        if (_mm_movemask_epi8(bad) != 0)
                return false;
#endif
        for (; i < n; i++)
                if ((signed char) s[i] < 0x20)
                        return false;
        return true;
}

/* Copies s[0..n) to p with each byte utf8_bad_bytes() counts replaced by U+FFFD (bad of them:
 * n + 2 * bad bytes written). Returns the end of what it wrote. */
static char *utf8_copy_repaired(char *p, const char *s, size_t n, size_t bad) {
        if (bad == 0)
                return mempcpy(p, s, n);
        for (size_t i = 0, l; i < n; i += l) {
                l = utf8_sequence_len((const unsigned char *) s + i, n - i);
                if (l == 0) {
                        p = mempcpy(p, UTF8_REPLACEMENT, STRLEN(UTF8_REPLACEMENT));
                        l = 1;
                } else
                        p = mempcpy(p, s + i, l);
        }
        return p;
}

/* Serializes one message as a wire frame. */
int jsonrpc_serialize(json_object *o, char **ret, size_t *ret_len) {
        const char *s;
        size_t n, bad;
        char *buf, *p;

        assert_return(ret, -EINVAL);
        assert_return(ret_len, -EINVAL);

        s = json_object_to_json_string_length(o, JSONRPC_WIRE_FLAGS, &n);
        if (!s)
                return -ENOMEM;
        /* json-c escapes control characters in strings, so this only fires for a value built
         * with a hand-written serializer; never put such a value on the wire. */
        if (frame_check_encodable(s, n) < 0)
                return -EINVAL;

        bad = utf8_bad_bytes(s, n);
        buf = malloc(n + 2 * bad + 2);
        if (!buf)
                return -ENOMEM;
        p = utf8_copy_repaired(buf, s, n, bad);
        *p++ = '\n';
        *p = '\0';

        *ret = buf;
        *ret_len = (size_t) (p - buf);
        return 0;
}

/* A raw value: JSON text that json-c and the reply writer copy as it is. Its userdata holds
 * the text behind a mark, so that jsonrpc_result_text() knows it without json-c's printbuf. */
#define RAW_MAGIC 0x77617221u

typedef struct RawText {
        uint32_t magic;
        size_t len;
        char text[];
} RawText;

/* json-c's serializer of a raw value. */
static int raw_to_json_string(json_object *o, struct printbuf *pb, int level, int flags) {
        const RawText *t = json_object_get_userdata(o);

        (void) level;
        (void) flags;
        return printbuf_memappend(pb, t->text, (int) t->len);
}

/* Frees a raw value's text. */
static void raw_free(json_object *o, void *userdata) {
        (void) o;
        free(userdata);
}

/* A value serialized as the JSON text given (copied), see jsonrpc.h. */
json_object *json_raw_new(const char *text, size_t len) {
        size_t bad;
        RawText *t;
        json_object *o;
        char *p;

        if (len > INT_MAX / 2)
                return NULL;
        if (text_printable_ascii(text, len))
                bad = 0; /* neither a line break nor a byte that is not UTF-8 */
        else if (frame_check_encodable(text, len) < 0)
                return NULL;
        else
                bad = utf8_bad_bytes(text, len);
        t = malloc(sizeof(RawText) + len + 2 * bad + 1);
        if (!t)
                return NULL;
        t->magic = RAW_MAGIC;
        p = utf8_copy_repaired(t->text, text, len, bad);
        *p = '\0';
        t->len = (size_t) (p - t->text);
        /* a boolean: the smallest json-c object that takes a serializer */
        o = json_object_new_boolean(false);
        if (!o) {
                free(t);
                return NULL;
        }
        json_object_set_serializer(o, raw_to_json_string, t, raw_free);
        return o;
}

/* The text of a raw value; false for any other value. */
bool json_raw_get(json_object *o, const char **ret, size_t *ret_len) {
        const RawText *t;

        if (!o || !json_object_is_type(o, json_type_boolean))
                return false;
        t = json_object_get_userdata(o);
        if (!t || t->magic != RAW_MAGIC)
                return false;
        *ret = t->text;
        *ret_len = t->len;
        return true;
}

/* ---- a faster serializer for the values of replies ----
 * json-c prints every integer with snprintf and grows a printbuf per value; replies are
 * written on every call. json_write() gives the same bytes as
 * json_object_to_json_string_ext(JSONRPC_WIRE_FLAGS) (tests/proto/test-jsonrpc-fast): it
 * writes objects, arrays, integers, booleans, null and strings of printable ASCII itself, and
 * leaves every other value (doubles, strings to escape, values with a serializer of their
 * own) to json-c, one value at a time. */

typedef struct WBuf {
        char *p;
        size_t n, cap;
} WBuf;

/* Room for `more` bytes. */
static int wbuf_reserve(WBuf *b, size_t more) {
        size_t cap;
        char *p;

        if (b->cap - b->n >= more)
                return 0;
        cap = MAX(b->cap * 2, b->n + more + 256);
        p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

static int wbuf_put(WBuf *b, const char *s, size_t n) {
        if (wbuf_reserve(b, n) < 0)
                return -ENOMEM;
        memcpy(b->p + b->n, s, n);
        b->n += n;
        return 0;
}

/* Whether json-c would write s[0..n) between quotes as it is (with NOSLASHESCAPE):
 * printable ASCII without '"' and '\\'. */
static bool json_string_plain(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!plain_byte[(unsigned char) s[i]])
                        return false;
        return true;
}

/* A value json-c writes (and the text it gives). */
static int json_write_by_json_c(WBuf *b, json_object *o) {
        const char *s;
        size_t n;

        s = json_object_to_json_string_length(o, JSONRPC_WIRE_FLAGS, &n);
        if (!s)
                return -ENOMEM;
        return wbuf_put(b, s, n);
}

static int json_write(WBuf *b, json_object *o, unsigned depth) {
        const char *s;
        size_t n;
        int r;

        if (!o)
                return wbuf_put(b, "null", 4);
        /* a value with a serializer of its own (a raw value, a number kept as written), or
         * nested deeper than any reply: json-c's way */
        if (depth > 64 || json_object_get_userdata(o)) {
                if (json_raw_get(o, &s, &n))
                        return wbuf_put(b, s, n);
                return json_write_by_json_c(b, o);
        }
        switch (json_object_get_type(o)) {
        case json_type_null:
                return wbuf_put(b, "null", 4);
        case json_type_boolean:
                return json_object_get_boolean(o) ? wbuf_put(b, "true", 4) : wbuf_put(b, "false", 5);
        case json_type_int: {
                int64_t v = json_object_get_int64(o);
                uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
                char tmp[24], *q = tmp + sizeof(tmp);

                if (v == INT64_MAX) /* or a larger uint64 */
                        return json_write_by_json_c(b, o);
                do
                        *--q = (char) ('0' + u % 10);
                while ((u /= 10) > 0);
                if (v < 0)
                        *--q = '-';
                return wbuf_put(b, q, (size_t) (tmp + sizeof(tmp) - q));
        }
        case json_type_string:
                s = json_object_get_string(o);
                n = (size_t) json_object_get_string_len(o);
                if (!json_string_plain(s, n))
                        return json_write_by_json_c(b, o);
                if (wbuf_reserve(b, n + 2) < 0)
                        return -ENOMEM;
                b->p[b->n++] = '"';
                memcpy(b->p + b->n, s, n);
                b->n += n;
                b->p[b->n++] = '"';
                return 0;
        case json_type_array: {
                size_t len = json_object_array_length(o);

                if (wbuf_put(b, "[", 1) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < len; i++) {
                        if (i > 0 && wbuf_put(b, ",", 1) < 0)
                                return -ENOMEM;
                        r = json_write(b, json_object_array_get_idx(o, i), depth + 1);
                        if (r < 0)
                                return r;
                }
                return wbuf_put(b, "]", 1);
        }
        case json_type_object: {
                bool first = true;

                /* a key json-c would escape: the whole object its way */
                json_object_object_foreach(o, k, v) {
                        (void) v;
                        if (!json_string_plain(k, strlen(k)))
                                return json_write_by_json_c(b, o);
                }
                if (wbuf_put(b, "{", 1) < 0)
                        return -ENOMEM;
                json_object_object_foreach(o, key, val) {
                        size_t kl = strlen(key);

                        if (wbuf_reserve(b, kl + 4) < 0)
                                return -ENOMEM;
                        if (!first)
                                b->p[b->n++] = ',';
                        first = false;
                        b->p[b->n++] = '"';
                        memcpy(b->p + b->n, key, kl);
                        b->n += kl;
                        b->p[b->n++] = '"';
                        b->p[b->n++] = ':';
                        r = json_write(b, val, depth + 1);
                        if (r < 0)
                                return r;
                }
                return wbuf_put(b, "}", 1);
        }
        default: /* doubles */
                return json_write_by_json_c(b, o);
        }
}

/* The buffer result texts are written into, kept for the next reply unless it grew large. */
#define WBUF_KEEP_BYTES (64u * 1024u)
static __thread WBuf result_wbuf;

/* Serializes a value as json-c does with JSONRPC_WIRE_FLAGS, see jsonrpc.h. */
int json_to_wire_text(json_object *o, char **ret, size_t *ret_len) {
        WBuf b = {};
        int r;

        r = json_write(&b, o, 0);
        if (r >= 0)
                r = wbuf_reserve(&b, 1);
        if (r < 0) {
                free(b.p);
                return r;
        }
        b.p[b.n] = '\0';
        *ret = b.p;
        *ret_len = b.n;
        return 0;
}

/* ---- JsonText: a text written piece by piece (jsonrpc.h) ---- */

bool json_text_reserve(JsonText *t, size_t n) {
        WBuf b;

        if (t->oom)
                return false;
        b = (WBuf) { t->p, t->n, t->cap };
        if (wbuf_reserve(&b, n) < 0) {
                t->oom = true;
                return false;
        }
        t->p = b.p;
        t->cap = b.cap;
        return true;
}

void json_text_add_u64(JsonText *t, uint64_t v) {
        size_t n = 1;
        char *q;

        if (t->cap - t->n < 20 && !json_text_reserve(t, 20))
                return;
        for (uint64_t x = v; x >= 10; x /= 10)
                n++;
        t->n += n;
        q = t->p + t->n;
        do
                *--q = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
}

void json_text_add_i64(JsonText *t, int64_t v) {
        if (v < 0) {
                json_text_add(t, "-", 1);
                json_text_add_u64(t, 0 - (uint64_t) v);
        } else
                json_text_add_u64(t, (uint64_t) v);
}

void json_text_add_value(JsonText *t, json_object *o) {
        WBuf b;

        if (t->oom)
                return;
        b = (WBuf) { t->p, t->n, t->cap };
        if (json_write(&b, o, 0) < 0)
                t->oom = true;
        /* what was written before a failure stays allocated: the writer frees it */
        t->p = b.p;
        t->n = b.n;
        t->cap = b.cap;
}

void json_text_add_str(JsonText *t, const char *s) {
        size_t n;

        if (!s) {
                json_text_add(t, "null", 4);
                return;
        }
        n = strlen(s);
        if (json_string_plain(s, n)) {
                if (t->cap - t->n < n + 2 && !json_text_reserve(t, n + 2))
                        return;
                t->p[t->n++] = '"';
                memcpy(t->p + t->n, s, n);
                t->n += n;
                t->p[t->n++] = '"';
        } else {
                json_object *o = json_object_new_string_len(s, (int) n);

                if (!o)
                        t->oom = true;
                else
                        json_text_add_value(t, o);
                json_object_put(o);
        }
}

bool json_text_memo_hit(JsonTextMemo *m, JsonText *t, const uint64_t *key, size_t n_key, size_t *ret_start) {
        if (m->valid && m->n_key == n_key && memcmp(m->key, key, n_key * sizeof(uint64_t)) == 0) {
                json_text_add(t, m->text, m->len);
                return true;
        }
        m->valid = false;
        if (n_key <= JSON_TEXT_MEMO_KEY_MAX) {
                memcpy(m->key, key, n_key * sizeof(uint64_t));
                m->n_key = n_key;
        } else
                m->n_key = SIZE_MAX; /* never kept */
        *ret_start = t->n;
        return false;
}

void json_text_memo_keep(JsonTextMemo *m, const JsonText *t, size_t start) {
        size_t n;

        if (t->oom || m->n_key > JSON_TEXT_MEMO_KEY_MAX || start > t->n)
                return;
        n = t->n - start;
        if (m->cap < n) {
                char *p = realloc(m->text, n);

                if (!p)
                        return;
                m->text = p;
                m->cap = n;
        }
        memcpy(m->text, t->p + start, n);
        m->len = n;
        m->valid = true;
}

void json_text_memo_done(JsonTextMemo *m) {
        m->text = mfree(m->text);
        m->len = m->cap = 0;
        m->valid = false;
}

/* The wire text of a result reply, built from the serialized result and id (no reply object
 * is made: this is every successful call's path). */
int jsonrpc_result_text(json_object *id, json_object *result, char **ret, size_t *ret_len) {
        static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":", mid[] = ",\"id\":";
        const char *rs = "null", *is = "null";
        size_t rn = 4, in = 4, n, rbad, ibad;
        char idbuf[24];
        int64_t iv;
        bool raw = false;
        int r;
        char *buf, *p;

        assert_return(ret && ret_len, -EINVAL);
        if (json_raw_get(result, &rs, &rn))
                raw = true; /* checked and repaired when it was made */
        else if (result) {
                result_wbuf.n = 0;
                r = json_write(&result_wbuf, result, 0);
                if (r < 0)
                        goto finish;
                rs = result_wbuf.p;
                rn = result_wbuf.n;
        }
        if (id && json_object_is_type(id, json_type_int) && !json_object_get_userdata(id) &&
            (iv = json_object_get_int64(id)) != INT64_MAX && iv != INT64_MIN) {
                /* an integer id (the common case) as json-c prints it, without a printbuf:
                 * INT64_MAX may stand for a larger uint64, and an id kept as written
                 * (id_keep_text()) has userdata */
                uint64_t u = iv < 0 ? 0 - (uint64_t) iv : (uint64_t) iv;
                char *q = idbuf + sizeof(idbuf);

                do
                        *--q = (char) ('0' + u % 10);
                while ((u /= 10) > 0);
                if (iv < 0)
                        *--q = '-';
                is = q;
                in = (size_t) (idbuf + sizeof(idbuf) - q);
        } else if (id && !(is = json_object_to_json_string_length(id, JSONRPC_WIRE_FLAGS, &in))) {
                r = -ENOMEM;
                goto finish;
        }
        if ((!raw && frame_check_encodable(rs, rn) < 0) || frame_check_encodable(is, in) < 0) {
                r = -EINVAL;
                goto finish;
        }
        rbad = raw ? 0 : utf8_bad_bytes(rs, rn);
        ibad = utf8_bad_bytes(is, in);
        n = STRLEN(head) + rn + 2 * rbad + STRLEN(mid) + in + 2 * ibad + 2;
        buf = malloc(n + 1);
        if (!buf) {
                r = -ENOMEM;
                goto finish;
        }
        p = mempcpy(buf, head, STRLEN(head));
        p = utf8_copy_repaired(p, rs, rn, rbad);
        p = mempcpy(p, mid, STRLEN(mid));
        p = utf8_copy_repaired(p, is, in, ibad);
        *p++ = '}';
        *p++ = '\n';
        *p = '\0';
        *ret = buf;
        *ret_len = n;
        r = 0;
finish:
        /* a large reply does not keep its buffer */
        if (result_wbuf.cap > WBUF_KEEP_BYTES) {
                result_wbuf.p = mfree(result_wbuf.p);
                result_wbuf.n = result_wbuf.cap = 0;
        }
        return r;
}

/* Writes v as "%.*f" does, see jsonrpc.h. */
size_t json_rounded_text(double v, int decimals, char buf[static JSON_ROUNDED_TEXT_MAX]) {
        static const double scale[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
        int d = CLAMP(decimals, 0, 9);

        /* the common case without printf: a value from 0 to 1e6 (a duration, an age), scaled
         * and rounded here when the scaled value is not within 1e-6 of a tie, where the error
         * of the product could decide it otherwise than printf's exact rounding */
        if (v >= 0 && v < 1e6) {
                double t = v * scale[d], f = floor(t), frac = t - f;

                if (fabs(frac - 0.5) > 1e-6) {
                        uint64_t u = (uint64_t) f + (frac > 0.5), ip = u / (uint64_t) scale[d],
                                 fp = u % (uint64_t) scale[d];
                        char tmp[24], *p = buf;
                        size_t k = 0;

                        do
                                tmp[k++] = (char) ('0' + ip % 10);
                        while ((ip /= 10) > 0);
                        while (k > 0)
                                *p++ = tmp[--k];
                        if (d > 0) {
                                *p++ = '.';
                                for (int i = d - 1; i >= 0; i--, fp /= 10)
                                        p[i] = (char) ('0' + fp % 10);
                                p += d;
                        }
                        *p = '\0';
                        return (size_t) (p - buf);
                }
        }
        return (size_t) snprintf(buf, JSON_ROUNDED_TEXT_MAX, "%.*f", d, v);
}

/* A number printed with a fixed number of decimals. */
json_object *json_new_rounded(double v, int decimals) {
        char buf[JSON_ROUNDED_TEXT_MAX];

        /* JSON has no NaN or infinity, and "%f" of a huge value would not fit the buffer (a
         * cut text would be another number): those go out as 0 and in json-c's own form. */
        if (isnan(v) || isinf(v))
                v = 0;
        if (v >= 1e15 || v <= -1e15)
                return json_object_new_double(v);
        (void) json_rounded_text(v, decimals, buf);
        return json_object_new_double_s(strtod(buf, NULL), buf);
}

void json_text_add_rounded(JsonText *t, double v, int decimals) {
        char b[JSON_ROUNDED_TEXT_MAX];

        if (isnan(v) || isinf(v))
                v = 0;
        if (v >= 1e15 || v <= -1e15) {
                json_object *o = json_new_rounded(v, decimals);

                if (!o)
                        t->oom = true;
                else
                        json_text_add_value(t, o);
                json_object_put(o);
                return;
        }
        json_text_add(t, b, json_rounded_text(v, decimals, b));
}
