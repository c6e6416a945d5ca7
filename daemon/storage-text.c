/* SPDX-License-Identifier: MIT */
/*
 * The text the storage client writes and reads: a growable string, canonical object URLs
 * (percent-encoded the SigV4 way), a minimal reader for S3's XML answers, and a server's text
 * made fit for a message. Pure code: no I/O, no event loop. See storage-internal.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonrpc.h"
#include "macro.h"
#include "scrub.h"
#include "storage-internal.h"

/* ---- strings ---------------------------------------------------------------------------- */

/* Makes room for n more bytes (plus a NUL). */
static bool strbuf_reserve(StrBuf *b, size_t n) {
        size_t want;
        char *p;

        if (b->failed)
                return false;
        if (n > SIZE_MAX / 2 - b->len) {
                b->failed = true;
                return false;
        }
        if (b->len + n + 1 <= b->alloc)
                return true;
        want = MAX(b->len + n + 1, MAX(b->alloc * 2, (size_t) 256));
        p = realloc(b->p, want);
        if (!p) {
                b->failed = true;
                return false;
        }
        b->p = p;
        b->alloc = want;
        b->p[b->len] = '\0';
        return true;
}

/* Appends n bytes. */
void strbuf_add(StrBuf *b, const char *s, size_t n) {
        if (!strbuf_reserve(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

/* Appends a C string. */
void strbuf_puts(StrBuf *b, const char *s) {
        strbuf_add(b, s, strlen(s));
}

/* Appends formatted text. */
void strbuf_printf(StrBuf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !strbuf_reserve(b, (size_t) n)) {
                b->failed = true;
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

/* Frees the contents. */
void strbuf_done(StrBuf *b) {
        b->p = mfree(b->p);
        b->len = b->alloc = 0;
        b->failed = false;
}

/* Hands the string over (NULL after a failure); the buffer is empty afterwards. */
static char *strbuf_steal(StrBuf *b) {
        char *p;

        if (b->failed || !strbuf_reserve(b, 0)) {
                strbuf_done(b);
                return NULL;
        }
        p = TAKE_PTR(b->p);
        b->len = b->alloc = 0;
        return p;
}

/* Whether a byte is an RFC 3986 unreserved character (the only ones SigV4 leaves bare). */
static bool char_is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends s percent-encoded the SigV4 way: unreserved bytes bare, every other byte "%XX"
 * with upper-case hex (UTF-8 sequences byte by byte), '/' bare only when keep_slash.
 * libcurl's curl_easy_escape() would do for segments, but this also serves whole keys. */
static void strbuf_add_encoded(StrBuf *b, const char *s, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";

        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                char e[3];

                if (char_is_unreserved(*p) || (keep_slash && *p == '/')) {
                        strbuf_add(b, (const char *) p, 1);
                        continue;
                }
                e[0] = '%';
                e[1] = hex[*p >> 4];
                e[2] = hex[*p & 0xf];
                strbuf_add(b, e, 3);
        }
}

/* A percent-encoded copy of s (see strbuf_add_encoded()), or NULL. */
static char *pct_encode(const char *s, bool keep_slash) {
        StrBuf b = {};

        strbuf_reserve(&b, strlen(s));
        strbuf_add_encoded(&b, s, keep_slash);
        return strbuf_steal(&b);
}

/* Appends s escaped for XML text. */
void strbuf_add_xml(StrBuf *b, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '&':
                        strbuf_puts(b, "&amp;");
                        break;
                case '<':
                        strbuf_puts(b, "&lt;");
                        break;
                case '>':
                        strbuf_puts(b, "&gt;");
                        break;
                default:
                        strbuf_add(b, s, 1);
                }
}

/* Replaces *slot with a copy of s (NULL allowed). Returns 0 or -ENOMEM. */
int free_and_strdup(char **slot, const char *s) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        free(*slot);
        *slot = c;
        return 0;
}

/* ---- minimal XML --------------------------------------------------------------------------
 *
 * S3 answers are small flat documents; we read a handful of text elements (UploadId, ETag,
 * Code, Message) and the root's name. No DTDs, no entity definitions: the five predefined
 * entities and character references are decoded, anything else is malformed. Every scan is
 * bounded by the body, which Upstream caps at STORAGE_XML_MAX.
 */

/* Whether c is XML white space. */
static bool xml_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether c ends an element name. */
static bool xml_ends_name(char c) {
        return xml_is_space(c) || c == '>' || c == '/';
}

/* Skips "<!--…-->", "<![CDATA[…]]>", "<!…>" or "<?…?>" starting at p. NULL if unterminated. */
static const char *xml_skip_markup(const char *p, const char *end) {
        const char *q;

        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
                q = memmem(p + 4, (size_t) (end - p - 4), "-->", 3);
                return q ? q + 3 : NULL;
        }
        if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
                q = memmem(p + 9, (size_t) (end - p - 9), "]]>", 3);
                return q ? q + 3 : NULL;
        }
        if (end - p >= 2 && p[1] == '?') {
                q = memmem(p + 2, (size_t) (end - p - 2), "?>", 2);
                return q ? q + 2 : NULL;
        }
        q = memchr(p, '>', (size_t) (end - p));
        return q ? q + 1 : NULL;
}

/* Whether the tag name at p (up to end) is `name`, with or without a namespace prefix. On a
 * match, *ret_after points past the name. */
static bool xml_name_matches(const char *p, const char *end, const char *name,
                             const char **ret_after) {
        const char *n = p, *colon = NULL;
        size_t l = strlen(name);

        while (p < end && !xml_ends_name(*p)) {
                if (*p == ':')
                        colon = p;
                p++;
        }
        if (colon)
                n = colon + 1;
        if ((size_t) (p - n) != l || memcmp(n, name, l) != 0)
                return false;
        *ret_after = p;
        return true;
}

/* Whether the root element of a document is called `name`. */
bool xml_root_is(const char *xml, size_t len, const char *name) {
        const char *p = xml, *end = xml + len, *after;

        if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;
        while (p < end) {
                if (xml_is_space(*p)) {
                        p++;
                        continue;
                }
                if (*p != '<' || end - p < 2)
                        return false;
                if (p[1] == '?' || p[1] == '!') {
                        p = xml_skip_markup(p, end);
                        if (!p)
                                return false;
                        continue;
                }
                return xml_name_matches(p + 1, end, name, &after);
        }
        return false;
}

/* Appends code point cp as UTF-8. */
static int utf8_put(StrBuf *b, unsigned long cp) {
        char u[4];
        size_t n;

        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return -EBADMSG;
        if (cp < 0x80) {
                u[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char) (0xC0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char) (0xE0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char) (0x80 | (cp & 0x3F));
                n = 3;
        } else {
                u[0] = (char) (0xF0 | (cp >> 18));
                u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char) (0x80 | (cp & 0x3F));
                n = 4;
        }
        strbuf_add(b, u, n);
        return 0;
}

/* Decodes the text between s and e: entities and character references, CDATA sections kept
 * verbatim, surrounding white space trimmed. Child elements are malformed here. */
static int xml_decode_text(const char *s, const char *e, char **ret) {
        static const struct {
                const char *name;
                char c;
        } entities[] = {
                { "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' }, { "apos;", '\'' },
        };
        _cleanup_(strbuf_done) StrBuf b = {};
        char *out;
        size_t l;

        while (s < e && xml_is_space(*s))
                s++;
        while (e > s && xml_is_space(e[-1]))
                e--;
        if (!strbuf_reserve(&b, (size_t) (e - s)))
                return -ENOMEM;

        while (s < e) {
                const char *amp = s, *semi;
                bool known = false;

                if (*s == '<') {
                        if (e - s >= 9 && memcmp(s, "<![CDATA[", 9) == 0) {
                                const char *q = memmem(s + 9, (size_t) (e - s - 9), "]]>", 3);
                                if (!q)
                                        return -EBADMSG;
                                strbuf_add(&b, s + 9, (size_t) (q - s - 9));
                                s = q + 3;
                                continue;
                        }
                        if (e - s >= 4 && memcmp(s, "<!--", 4) == 0) {
                                s = xml_skip_markup(s, e);
                                if (!s)
                                        return -EBADMSG;
                                continue;
                        }
                        return -EBADMSG;
                }
                if (*s != '&') {
                        const char *next = s;

                        while (next < e && *next != '&' && *next != '<')
                                next++;
                        strbuf_add(&b, s, (size_t) (next - s));
                        s = next;
                        continue;
                }
                semi = memchr(amp, ';', (size_t) MIN(e - amp, (ptrdiff_t) 12));
                if (!semi)
                        return -EBADMSG;
                if (amp[1] == '#') {
                        unsigned long cp = 0;
                        bool hexa = amp[2] == 'x' || amp[2] == 'X';
                        const char *d = amp + (hexa ? 3 : 2);
                        int r;

                        if (d == semi)
                                return -EBADMSG;
                        for (; d < semi; d++) {
                                int v;

                                if (*d >= '0' && *d <= '9')
                                        v = *d - '0';
                                else if (hexa && *d >= 'a' && *d <= 'f')
                                        v = *d - 'a' + 10;
                                else if (hexa && *d >= 'A' && *d <= 'F')
                                        v = *d - 'A' + 10;
                                else
                                        return -EBADMSG;
                                cp = cp * (hexa ? 16 : 10) + (unsigned long) v;
                                if (cp > 0x10FFFF)
                                        return -EBADMSG;
                        }
                        r = utf8_put(&b, cp);
                        if (r < 0)
                                return r;
                        s = semi + 1;
                        continue;
                }
                l = (size_t) (semi - amp);
                for (size_t i = 0; i < ELEMENTSOF(entities) && !known; i++)
                        if (strlen(entities[i].name) == l &&
                            memcmp(amp + 1, entities[i].name, l) == 0) {
                                strbuf_add(&b, &entities[i].c, 1);
                                known = true;
                        }
                if (!known)
                        return -EBADMSG;
                s = semi + 1;
        }
        out = strbuf_steal(&b);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* The decoded text of the first element called `name` (any depth, namespace prefix
 * ignored). Returns 0, -ENOENT when there is none, -EBADMSG when malformed, -ENOMEM. */
int xml_element_text(const char *xml, size_t len, const char *name, char **ret) {
        const char *p = xml, *end = xml + len;

        while (p < end) {
                const char *lt = memchr(p, '<', (size_t) (end - p)), *after, *gt, *content;
                char quote = 0;

                if (!lt || end - lt < 2)
                        return -ENOENT;
                if (lt[1] == '!' || lt[1] == '?') {
                        p = xml_skip_markup(lt, end);
                        if (!p)
                                return -EBADMSG;
                        continue;
                }
                if (lt[1] == '/' || !xml_name_matches(lt + 1, end, name, &after)) {
                        p = lt + 1;
                        continue;
                }
                /* the end of the start tag, past attributes (which may hold a '>') */
                for (gt = after; gt < end; gt++) {
                        if (quote) {
                                if (*gt == quote)
                                        quote = 0;
                        } else if (*gt == '"' || *gt == '\'')
                                quote = *gt;
                        else if (*gt == '>')
                                break;
                }
                if (gt >= end)
                        return -EBADMSG;
                if (gt[-1] == '/') {
                        *ret = strdup("");
                        return *ret ? 0 : -ENOMEM;
                }
                content = gt + 1;
                /* the matching end tag: "</" [prefix:] name S? ">" */
                for (const char *q = content; q < end; q++) {
                        const char *c;

                        if (*q != '<' || end - q < 2 || q[1] != '/')
                                continue;
                        if (!xml_name_matches(q + 2, end, name, &c))
                                continue;
                        while (c < end && xml_is_space(*c))
                                c++;
                        if (c >= end || *c != '>')
                                return -EBADMSG;
                        return xml_decode_text(content, q, ret);
                }
                return -EBADMSG;
        }
        return -ENOENT;
}

/* ---- URLs --------------------------------------------------------------------------------- */

typedef struct QueryPair {
        char *name;
        char *value;
} QueryPair;

/* Orders encoded query pairs by name, then value (byte order, as SigV4 does). */
static int query_pair_compare(const void *a, const void *b) {
        const QueryPair *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

/* Builds <endpoint>/<bucket>/<key>[?query] in canonical form. */
char *object_url(const char *endpoint, const char *bucket, const char *key,
                        const char *const *query) {
        _cleanup_(strbuf_done) StrBuf b = {};
        QueryPair pairs[STORAGE_QUERY_MAX] = {};
        size_t n = 0;
        char *url = NULL;

        for (const char *const *q = query; q && q[0]; q += 2) {
                if (n >= ELEMENTSOF(pairs))
                        goto out;
                pairs[n].name = pct_encode(q[0], false);
                pairs[n].value = pct_encode(q[1] ?: "", false);
                n++;
                if (!pairs[n - 1].name || !pairs[n - 1].value)
                        goto out;
        }
        if (n > 1)
                qsort(pairs, n, sizeof(QueryPair), query_pair_compare);

        strbuf_puts(&b, endpoint);
        strbuf_puts(&b, "/");
        strbuf_add_encoded(&b, bucket, false);
        strbuf_puts(&b, "/");
        strbuf_add_encoded(&b, key, true);
        for (size_t i = 0; i < n; i++) {
                strbuf_puts(&b, i == 0 ? "?" : "&");
                strbuf_puts(&b, pairs[i].name);
                strbuf_puts(&b, "=");
                strbuf_puts(&b, pairs[i].value);
        }
        url = strbuf_steal(&b);
out:
        for (size_t i = 0; i < n; i++) {
                free(pairs[i].name);
                free(pairs[i].value);
        }
        return url;
}

/* Splits "s3://bucket/key" into bucket and key. */
int storage_parse_url(const char *s3url, char **ret_bucket, char **ret_key) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        const char *p, *slash;

        assert_return(s3url, -EINVAL);
        assert_return(ret_bucket, -EINVAL);
        assert_return(ret_key, -EINVAL);

        if (strncasecmp(s3url, "s3://", 5) != 0)
                return -EINVAL;
        p = s3url + 5;
        slash = strchr(p, '/');
        if (!slash || slash == p || slash[1] == '\0')
                return -EINVAL;
        bucket = strndup(p, (size_t) (slash - p));
        key = strdup(slash + 1);
        if (!bucket || !key)
                return -ENOMEM;
        *ret_bucket = TAKE_PTR(bucket);
        *ret_key = TAKE_PTR(key);
        return 0;
}

/* Whether a bucket and key can be addressed: bounded lengths, and no "." or ".." segment in
 * the key (libcurl removes dot segments from a URL path, which would change the object). */
bool object_name_is_valid(const char *bucket, const char *key) {
        size_t bl = strlen(bucket), kl = strlen(key);

        if (bl == 0 || bl > STORAGE_BUCKET_MAX || streq(bucket, ".") || streq(bucket, ".."))
                return false;
        if (kl == 0 || kl > STORAGE_KEY_MAX)
                return false;
        for (const char *p = key;;) {
                const char *slash = strchr(p, '/');
                size_t l = slash ? (size_t) (slash - p) : strlen(p);

                if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

/* ---- messages ----------------------------------------------------------------------------- */

/* A server's text made fit for a message shown to people and logs: scrub_clean(), the one
 * clean-up of texts from outside (valid UTF-8 on one line, at most max bytes then "…", and
 * no secret of the daemon's, this operation's storage secret included). Returns malloc'd
 * or NULL on OOM. */
char *server_text_sanitize(const char *s, size_t max, const char *secret) {
        return scrub_clean(s, strlen(s), max, secret);
}
