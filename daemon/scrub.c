/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"
#include "scrub.h"

/* Three byte offsets times two alphabets. */
#define B64_FORMS 6
/* Ambiguous steps (a '%' or '\' of the secret met by an escape) explored in one match
 * before the first way is taken without looking back. */
#define MATCH_BRANCH_MAX 16u
/* How far past `max` scrub_clean() looks: the longest form of the longest secret (six
 * bytes, \u00XX, for each byte). */
#define CLEAN_SLACK (6u * SCRUB_SECRET_MAX)

typedef struct Secret {
        char *value;             /* NULL: none */
        size_t len;
        char *b64[B64_FORMS];    /* the characters that encode the secret alone */
        size_t b64_len[B64_FORMS];
} Secret;

/* The registry. */
static Secret slots[_SCRUB_SLOT_MAX];
static Secret recent[SCRUB_RECENT_MAX];
static size_t recent_next;

/* The secrets of one scan and, for each byte, those whose escaped form (raw[]) or whose
 * base64 form (b64[]) can start with it: one bit per secret. */
typedef struct SecretSet {
        const Secret *s[_SCRUB_SLOT_MAX + SCRUB_RECENT_MAX + 1];
        size_t n;
        uint32_t raw[256];
        uint32_t b64[256];
} SecretSet;

/* Erases and frees what a secret holds. */
static void secret_clear(Secret *s) {
        if (s->value)
                explicit_bzero(s->value, s->len);
        free(s->value);
        for (size_t i = 0; i < B64_FORMS; i++) {
                if (s->b64[i])
                        explicit_bzero(s->b64[i], s->b64_len[i]);
                free(s->b64[i]);
        }
        *s = (Secret){};
}

/* The base64 characters (standard or URL-safe alphabet) that depend on v alone when v
 * starts `align` bytes into a 3-byte group: characters ceil(8·align/6) up to, not
 * including, floor(8·(align+n)/6). Malloc'd, or NULL. */
static char *b64_fragment(const char *v, size_t n, unsigned align, bool url, size_t *ret_len) {
        static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t total = align + n, groups = (total + 2) / 3, first = (8 * align + 5) / 6,
               end = (8 * (align + n)) / 6;
        _cleanup_erase_free_ char *enc = NULL;
        _cleanup_free_ unsigned char *buf = NULL;
        char *frag;

        buf = calloc(groups * 3, 1);
        enc = malloc(groups * 4 + 1);
        if (!buf || !enc)
                return NULL;
        memcpy(buf + align, v, n);
        for (size_t g = 0; g < groups; g++) {
                uint32_t w = (uint32_t) buf[3 * g] << 16 | (uint32_t) buf[3 * g + 1] << 8 | buf[3 * g + 2];

                for (unsigned k = 0; k < 4; k++) {
                        char ch = std[(w >> (18 - 6 * k)) & 0x3f];

                        if (url && ch == '+')
                                ch = '-';
                        else if (url && ch == '/')
                                ch = '_';
                        enc[4 * g + k] = ch;
                }
        }
        enc[groups * 4] = '\0'; /* for strndup() and the cleanup's erase */
        explicit_bzero(buf, groups * 3);
        frag = strndup(enc + first, end - first);
        if (frag)
                *ret_len = end - first;
        return frag;
}

/* Fills s with v and its base64 forms. A secret outside the length bounds leaves s empty
 * (it is not looked for). Returns 0 or -ENOMEM. */
static int secret_compile(Secret *s, const char *v) {
        size_t n = v ? strlen(v) : 0;

        *s = (Secret){};
        if (n < SCRUB_SECRET_MIN || n > SCRUB_SECRET_MAX)
                return 0;
        s->value = strdup(v);
        if (!s->value)
                return -ENOMEM;
        s->len = n;
        for (unsigned i = 0; i < B64_FORMS; i++) {
                s->b64[i] = b64_fragment(v, n, i % 3, i >= 3, &s->b64_len[i]);
                if (!s->b64[i]) {
                        secret_clear(s);
                        return -ENOMEM;
                }
        }
        return 0;
}

/* Adds a secret to the set of a scan. */
static void set_add(SecretSet *set, const Secret *s) {
        uint32_t bit;

        if (!s->value || set->n >= ELEMENTSOF(set->s))
                return;
        bit = UINT32_C(1) << set->n;
        set->s[set->n++] = s;
        set->raw[(unsigned char) s->value[0]] |= bit;
        set->raw['%'] |= bit;
        set->raw['\\'] |= bit;
        for (size_t i = 0; i < B64_FORMS; i++)
                if (s->b64_len[i] > 0)
                        set->b64[(unsigned char) s->b64[i][0]] |= bit;
}

/* The registered secrets, plus `extra` (compiled into *x, which the caller clears). */
static int set_build(SecretSet *set, const char *extra, Secret *x) {
        int r;

        *set = (SecretSet){};
        for (size_t i = 0; i < ELEMENTSOF(slots); i++)
                set_add(set, &slots[i]);
        for (size_t i = 0; i < ELEMENTSOF(recent); i++)
                set_add(set, &recent[i]);
        r = secret_compile(x, extra);
        if (r < 0)
                return r;
        set_add(set, x);
        return 0;
}

/* The value of n hex digits (either case) at t, or -1. */
static long hexn(const unsigned char *t, size_t n) {
        static const char digits[] = "0123456789abcdef";
        long v = 0;

        for (size_t i = 0; i < n; i++) {
                const char *d = t[i] ? strchr(digits, tolower(t[i])) : NULL;

                if (!d)
                        return -1;
                v = v * 16 + (d - digits);
        }
        return v;
}

/* The code point of the character at v (its length in *ret_len); a byte that starts no
 * UTF-8 character stands for itself. */
static uint32_t code_point(const unsigned char *v, size_t n, size_t *ret_len) {
        size_t l = utf8_sequence_len(v, n);
        uint32_t cp;

        if (l <= 1) {
                *ret_len = 1;
                return v[0];
        }
        cp = v[0] & (0xff >> (l + 1));
        for (size_t i = 1; i < l; i++)
                cp = cp << 6 | (v[i] & 0x3f);
        *ret_len = l;
        return cp;
}

/* The length of an escape at t (t[0] is '\') that stands for the character at v, or 0;
 * the character's length goes to *ret_cl. */
static size_t escape_len(const unsigned char *v, size_t vn, const unsigned char *t, size_t tn, size_t *ret_cl) {
        uint32_t cp = code_point(v, vn, ret_cl);

        if (tn < 2)
                return 0;
        if (t[1] == 'u' && tn >= 6) {
                long u = hexn(t + 2, 4);

                if (cp < 0x10000)
                        return u == (long) cp ? 6 : 0;
                if (u == (long) (0xd800 + ((cp - 0x10000) >> 10)) && tn >= 12 && t[6] == '\\' && t[7] == 'u' &&
                    hexn(t + 8, 4) == (long) (0xdc00 + ((cp - 0x10000) & 0x3ff)))
                        return 12;
                return 0;
        }
        if (t[1] == 'x' && tn >= 4)
                return hexn(t + 2, 2) == (long) cp ? 4 : 0;
        if ((cp == '/' || cp == '"' || cp == '\\') && t[1] == cp)
                return 2;
        return 0;
}

/* Where a match of v[si..n) that starts at t[p] ends (each byte raw or %XX, each
 * character also escaped), or 0. A match takes at least one byte, so 0 is never an end. */
static size_t match_from(const unsigned char *v, size_t n, size_t si, const unsigned char *t, size_t len, size_t p,
                         unsigned *branches) {
        while (si < n) {
                size_t next_si[3], next_p[3];
                unsigned k = 0;
                unsigned char c = v[si];

                if (p >= len)
                        return 0;
                if (t[p] == c) {
                        next_si[k] = si + 1;
                        next_p[k++] = p + 1;
                }
                if (t[p] == '%' && len - p >= 3 && hexn(t + p + 1, 2) == c) {
                        next_si[k] = si + 1;
                        next_p[k++] = p + 3;
                }
                if (t[p] == '\\' && (c & 0xc0) != 0x80) {
                        size_t cl, el = escape_len(v + si, n - si, t + p, len - p, &cl);

                        if (el > 0) {
                                next_si[k] = si + cl;
                                next_p[k++] = p + el;
                        }
                }
                if (k == 0)
                        return 0;
                /* the other ways first (rare: the secret has a '%' or '\'), then the first */
                for (unsigned i = 1; i < k && *branches < MATCH_BRANCH_MAX; i++) {
                        size_t e;

                        (*branches)++;
                        e = match_from(v, n, next_si[i], t, len, next_p[i], branches);
                        if (e > 0)
                                return e;
                }
                si = next_si[0];
                p = next_p[0];
        }
        return p;
}

/* The end of the longest form of a secret of the set that starts at t[p], or 0. */
static size_t match_at(const SecretSet *set, const unsigned char *t, size_t len, size_t p) {
        uint32_t raw = set->raw[t[p]], b64 = set->b64[t[p]];
        size_t best = 0;

        for (size_t i = 0; (raw | b64) >> i; i++) {
                const Secret *s = set->s[i];

                if (raw & (UINT32_C(1) << i)) {
                        unsigned branches = 0;

                        best = MAX(best, match_from((const unsigned char *) s->value, s->len, 0, t, len, p, &branches));
                }
                if (!(b64 & (UINT32_C(1) << i)))
                        continue;
                for (size_t k = 0; k < B64_FORMS; k++)
                        if (s->b64_len[k] > 0 && s->b64[k][0] == (char) t[p] && len - p >= s->b64_len[k] &&
                            memcmp(t + p, s->b64[k], s->b64_len[k]) == 0)
                                best = MAX(best, p + s->b64_len[k]);
        }
        return best;
}

/* Scans text with a set: counts the forms found and, when out is not NULL, writes the text
 * with each replaced into it (it has room for len + 1 bytes: a mark is never longer than a
 * form). Returns the count; *ret_len gets the length written. */
static size_t scan(const SecretSet *set, const char *text, size_t len, char *out, size_t *ret_len) {
        const unsigned char *t = (const unsigned char *) text;
        size_t hits = 0, o = 0, last = 0;

        for (size_t p = 0; set->n > 0 && p < len;) {
                size_t e = match_at(set, t, len, p);

                if (e == 0) {
                        p++;
                        continue;
                }
                hits++;
                if (out) {
                        memcpy(out + o, text + last, p - last);
                        o += p - last;
                        memcpy(out + o, SCRUB_MARK, STRLEN(SCRUB_MARK));
                        o += STRLEN(SCRUB_MARK);
                }
                p = last = e;
        }
        if (out) {
                memcpy(out + o, text + last, len - last);
                o += len - last;
                out[o] = '\0';
                *ret_len = o;
        }
        return hits;
}

/* Finds and replaces the secrets of a text. */
int scrub_text(const char *text, size_t len, const char *extra, char **ret, size_t *ret_len) {
        SecretSet set;
        Secret x;
        size_t hits, n = 0;
        char *out;
        int r;

        *ret = NULL;
        if (ret_len)
                *ret_len = len;
        r = set_build(&set, extra, &x);
        if (r < 0)
                return r;
        hits = scan(&set, text, len, NULL, NULL);
        if (hits == 0) {
                secret_clear(&x);
                return 0;
        }
        out = malloc(len + 1);
        if (!out) {
                secret_clear(&x);
                return -ENOMEM;
        }
        (void) scan(&set, text, len, out, &n);
        secret_clear(&x);
        *ret = out;
        if (ret_len)
                *ret_len = n;
        return (int) MIN(hits, (size_t) INT32_MAX);
}

/* Whether a text holds a secret. */
bool scrub_found(const char *text, size_t len, const char *secret) {
        SecretSet set = {};
        Secret x;
        bool found;

        if (!text)
                return false;
        if (!secret) {
                if (set_build(&set, NULL, &x) < 0)
                        return false;
        } else {
                if (secret_compile(&x, secret) < 0)
                        return false;
                set_add(&set, &x);
        }
        found = scan(&set, text, len, NULL, NULL) > 0;
        secret_clear(&x);
        return found;
}

/* The clean-up of a text from outside. */
char *scrub_clean(const char *text, size_t len, size_t max, const char *extra) {
        _cleanup_free_ char *scrubbed = NULL;
        const unsigned char *p, *end;
        size_t window = len - MIN(len, max) > CLEAN_SLACK ? max + CLEAN_SLACK : len, n = window, o = 0;
        char *out;

        if (!text)
                text = "";
        if (scrub_text(text, window, extra, &scrubbed, &n) < 0)
                return NULL;
        p = (const unsigned char *) (scrubbed ?: text);
        end = p + n;
        out = malloc(MIN(n, max) + STRLEN("…") + 1);
        if (!out)
                return NULL;
        while (p < end) {
                size_t l = utf8_sequence_len(p, (size_t) (end - p));
                const char *put = (const char *) p;
                size_t put_len = l;

                if (l == 0) {
                        put = "?";
                        put_len = l = 1;
                } else if ((l == 1 && (*p < 0x20 || *p == 0x7f)) || (l == 2 && p[0] == 0xc2 && p[1] < 0xa0) ||
                           (l == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))) {
                        /* C0 and C1 controls, DEL, U+2028 and U+2029 */
                        put = " ";
                        put_len = 1;
                }
                if (o + put_len > max) {
                        memcpy(out + o, "…", STRLEN("…"));
                        o += STRLEN("…");
                        break;
                }
                memcpy(out + o, put, put_len);
                o += put_len;
                p += l;
        }
        if (p >= end && window < len) {
                /* the text went on past what was read */
                memcpy(out + o, "…", STRLEN("…"));
                o += STRLEN("…");
        }
        out[o] = '\0';
        return out;
}

/* Sets the secret of a slot. */
int scrub_set(ScrubSlot slot, const char *secret) {
        Secret n;
        int r;

        assert_return((unsigned) slot < _SCRUB_SLOT_MAX, -EINVAL);
        if (streq_ptr(slots[slot].value, secret))
                return 0;
        r = secret_compile(&n, secret);
        if (r < 0)
                return r;
        if (slots[slot].value) {
                /* a former key may still be valid: keep looking for it */
                secret_clear(&recent[recent_next]);
                recent[recent_next] = slots[slot];
                recent_next = (recent_next + 1) % SCRUB_RECENT_MAX;
        }
        slots[slot] = n;
        return 0;
}

/* Remembers a secret among the recent ones. */
int scrub_remember(const char *secret) {
        Secret n;
        int r;

        if (!secret)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(slots); i++)
                if (streq_ptr(slots[i].value, secret))
                        return 0;
        for (size_t i = 0; i < ELEMENTSOF(recent); i++)
                if (streq_ptr(recent[i].value, secret))
                        return 0;
        r = secret_compile(&n, secret);
        if (r < 0 || !n.value)
                return r;
        secret_clear(&recent[recent_next]);
        recent[recent_next] = n;
        recent_next = (recent_next + 1) % SCRUB_RECENT_MAX;
        return 0;
}

/* Forgets every secret. */
void scrub_reset(void) {
        for (size_t i = 0; i < ELEMENTSOF(slots); i++)
                secret_clear(&slots[i]);
        for (size_t i = 0; i < ELEMENTSOF(recent); i++)
                secret_clear(&recent[i]);
        recent_next = 0;
}
