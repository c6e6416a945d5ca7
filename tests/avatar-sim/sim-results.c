/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>

#include <event2/buffer.h>

#include "sim-auth.h"
#include "sim-results.h"
#include "sim-storage.h"

#define MAX_ROWS (20u * 1000 * 1000)
#define PROJECTION_DIMS 5

/* One record of a CSV file: where it starts and its length without the line end. */
typedef struct Rec {
        off_t start;
        size_t len;
} Rec;

/* The input object of one table, scanned. */
typedef struct Input {
        int fd;
        char *file; /* data.file as written in the YAML */
        bool csv;
        char ext[16];
        off_t size;
        Rec header;
        bool has_header;
        Rec *rows;
        size_t n_rows;
        size_t cap_rows;
        size_t n_cols;
} Input;

/* The state of one generation. */
typedef struct Gen {
        Sim *sim;
        Job *job;
        const char *bucket;
        char *prefix; /* "results/<set>/<job>" */
        json_object *map;
        char *exception;
} Gen;

/* Frees an input. */
static void input_done(Input *in) {
        in->fd = safe_close(in->fd);
        free(in->file);
        free(in->rows);
        memset(in, 0, sizeof(*in));
        in->fd = -1;
}

/* The escaped form of a table name used inside file names. */
char *results_escape_table(const char *table) {
        struct evbuffer *b = evbuffer_new();

        if (!b)
                return NULL;
        for (const char *p = table; *p; p++) {
                switch (*p) {
                case '.':
                        evbuffer_add(b, "_dot_", 5);
                        break;
                case '/':
                        evbuffer_add(b, "_slash_", 7);
                        break;
                case '&':
                        evbuffer_add(b, "_ampersand_", 11);
                        break;
                case '+':
                        evbuffer_add(b, "_plus_", 6);
                        break;
                default:
                        evbuffer_add(b, p, 1);
                }
        }
        return evbuffer_take_string(b);
}

/* The /access envelope of an object. */
char *results_envelope(Sim *sim, const char *bucket, const char *key) {
        return strprintf("%s/api/access?url=s3://%s/%s", sim->public_base, bucket, key);
}

/* Sets the exception of a failing generation; returns -EINVAL. */
static int gen_fail(Gen *g, const char *fmt, ...) _printf_(2, 3);
static int gen_fail(Gen *g, const char *fmt, ...) {
        va_list ap;

        free(g->exception);
        va_start(ap, fmt);
        if (vasprintf(&g->exception, fmt, ap) < 0)
                g->exception = NULL;
        va_end(ap);
        return -EINVAL;
}

/* Adds a result key to the map (keeps the contract's key order). */
static int gen_key(Gen *g, const char *key) {
        json_object *a;

        if (json_object_object_get_ex(g->map, key, NULL))
                return 0;
        a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        json_object_object_add(g->map, key, a);
        return 0;
}

/* Records a written file under a result key. */
static int gen_add(Gen *g, const char *key, const char *file) {
        json_object *a;

        if (gen_key(g, key) < 0 || !json_object_object_get_ex(g->map, key, &a))
                return -ENOMEM;
        return json_object_array_add(a, json_object_new_string(file)) < 0 ? -ENOMEM : 0;
}

/* Opens a result file for writing. */
static int gen_open(Gen *g, const char *file, StorageWriter *w) {
        _cleanup_free_ char *key = strprintf("%s/%s", g->prefix, file);

        if (!key)
                return -ENOMEM;
        return storage_writer_open(g->sim, g->bucket, key, w);
}

/* Commits a result file and records it under a result key. */
static int gen_commit(Gen *g, const char *result_key, const char *file, StorageWriter *w) {
        int r = storage_writer_commit(w);

        if (r < 0)
                return gen_fail(g, "Failed to write result %s: %s", file, strerror(-r));
        return gen_add(g, result_key, file);
}

/* Writes a whole result file from memory. */
static int gen_write(Gen *g, const char *result_key, const char *file, const void *data,
                     size_t len) {
        StorageWriter w;
        int r;

        r = gen_open(g, file, &w);
        if (r < 0)
                return gen_fail(g, "Failed to write result %s: %s", file, strerror(-r));
        if (len > 0 && fwrite(data, 1, len, w.f) != len) {
                storage_writer_abort(&w);
                return gen_fail(g, "Failed to write result %s", file);
        }
        return gen_commit(g, result_key, file, &w);
}

/* Writes a JSON result file. Takes ownership of obj. */
static int gen_write_json(Gen *g, const char *result_key, const char *file, json_object *obj) {
        const char *s;
        size_t len;
        int r;

        if (!obj)
                return -ENOMEM;
        s = json_object_to_json_string_length(obj,
                                              JSON_C_TO_STRING_PRETTY |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE,
                                              &len);
        r = gen_write(g, result_key, file, s, len);
        json_object_put(obj);
        return r;
}

/* Adds the record [start, end) (minus a trailing \r) as the header or as a row. */
static int input_add_record(Input *in, off_t start, off_t end, size_t n_cols) {
        size_t len = (size_t) (end - start);
        uint8_t last;

        if (len > 0 && pread(in->fd, &last, 1, end - 1) == 1 && last == '\r')
                len--;
        if (len == 0)
                return 0; /* blank lines are not rows */
        if (!in->has_header) {
                in->header = (Rec) { .start = start, .len = len };
                in->has_header = true;
                in->n_cols = n_cols;
                return 0;
        }
        if (in->n_rows >= MAX_ROWS)
                return -E2BIG;
        if (in->n_rows == in->cap_rows) {
                size_t cap = in->cap_rows ? in->cap_rows * 2 : 1024;
                Rec *nr = realloc(in->rows, cap * sizeof(Rec));
                if (!nr)
                        return -ENOMEM;
                in->rows = nr;
                in->cap_rows = cap;
        }
        in->rows[in->n_rows++] = (Rec) { .start = start, .len = len };
        return 0;
}

/* Scans a CSV input into header and row records (quoted fields may hold line ends). */
static int input_scan_csv(Input *in) {
        uint8_t buf[65536];
        bool quoted = false;
        off_t off = 0, start = 0;
        size_t n_cols = 1;
        int r;

        for (;;) {
                ssize_t k = pread(in->fd, buf, sizeof(buf), off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                for (ssize_t i = 0; i < k; i++) {
                        if (buf[i] == '"')
                                quoted = !quoted;
                        else if (buf[i] == ',' && !quoted && !in->has_header)
                                n_cols++;
                        else if (buf[i] == '\n' && !quoted) {
                                r = input_add_record(in, start, off + i, n_cols);
                                if (r < 0)
                                        return r;
                                start = off + i + 1;
                        }
                }
                off += k;
        }
        /* the last record may have no line end */
        return input_add_record(in, start, off, n_cols);
}

/* Opens and scans the input object of a table. Sets g->exception when it is missing. */
static int input_open(Gen *g, const SetDoc *schema, const char *table, Input *in) {
        const ResourceModel *m = &g->job->set->model;
        const SetTable *t = resource_model_source_table(m, schema, table);
        _cleanup_free_ char *key = NULL;
        const char *bucket = g->bucket, *dot;
        struct stat st;
        int r;

        memset(in, 0, sizeof(*in));
        in->fd = -1;
        if (!t || !t->file)
                return gen_fail(g, "Input file for table %s not found", table);
        in->file = strdup(t->file);
        if (!in->file)
                return -ENOMEM;
        if (!t->volume || streq(t->volume, "input"))
                key = strprintf("%dd/%s", SIM_UPLOAD_PREFIX_DAYS, t->file);
        else {
                const SetDoc *v = resource_model_find(m, t->volume);
                const char *rest = v && v->url ? startswith(v->url, "s3://") : NULL;
                const char *slash = rest ? strchr(rest, '/') : NULL;
                _cleanup_free_ char *vb = rest ? strndup(rest, slash ? (size_t) (slash - rest)
                                                                     : strlen(rest))
                                               : NULL;

                if (!vb || strcasecmp(vb, g->bucket) != 0)
                        return gen_fail(g, "Input file %s not found", t->file);
                key = slash && slash[1] ? strprintf("%s/%s", slash + 1, t->file)
                                        : strdup(t->file);
        }
        if (!key)
                return -ENOMEM;
        in->fd = storage_open_object(g->sim, bucket, key);
        if (in->fd < 0)
                return gen_fail(g, "Input file %s not found", t->file);
        if (fstat(in->fd, &st) < 0)
                return -errno;
        in->size = st.st_size;
        dot = strrchr(t->file, '.');
        snprintf(in->ext, sizeof(in->ext), "%s",
                 dot && dot[1] && !strchr(dot, '/') && strlen(dot + 1) < sizeof(in->ext) ? dot + 1
                                                                                        : "bin");
        in->csv = strcasecmp(in->ext, "csv") == 0;
        if (in->csv) {
                snprintf(in->ext, sizeof(in->ext), "csv");
                r = input_scan_csv(in);
                if (r < 0)
                        return gen_fail(g, "Input file %s could not be read: %s", t->file,
                                        strerror(-r));
        }
        return 0;
}

/* Copies len bytes of the input from start to out. */
static int copy_range(const Input *in, off_t start, size_t len, FILE *out) {
        uint8_t buf[65536];
        size_t done = 0;

        while (done < len) {
                size_t want = MIN(sizeof(buf), len - done);
                ssize_t k = pread(in->fd, buf, want, start + (off_t) done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                if (fwrite(buf, 1, (size_t) k, out) != (size_t) k)
                        return -EIO;
                done += (size_t) k;
        }
        return 0;
}

/* Copies one record of the input to out, with a line end. */
static int copy_rec(const Input *in, const Rec *rec, FILE *out) {
        int r = copy_range(in, rec->start, rec->len, out);

        if (r < 0)
                return r;
        return fputc('\n', out) == EOF ? -EIO : 0;
}

/* Writes the avatars of a table: header and every row, in input order or reversed. */
static int gen_avatars(Gen *g, const Input *in, const char *te, bool shuffled) {
        _cleanup_free_ char *file = strprintf("%s.%s-0.%s", te, shuffled ? "shuffled" : "unshuffled",
                                              in->ext);
        StorageWriter w;
        int r;

        if (!file)
                return -ENOMEM;
        r = gen_open(g, file, &w);
        if (r < 0)
                return gen_fail(g, "Failed to write result %s: %s", file, strerror(-r));
        if (!in->csv)
                r = copy_range(in, 0, (size_t) in->size, w.f);
        else {
                r = in->has_header ? copy_rec(in, &in->header, w.f) : 0;
                /* "shuffled": the rows in reverse input order, a fixed permutation */
                for (size_t i = 0; r >= 0 && i < in->n_rows; i++)
                        r = copy_rec(in, &in->rows[shuffled ? in->n_rows - 1 - i : i], w.f);
        }
        if (r < 0) {
                storage_writer_abort(&w);
                return gen_fail(g, "Failed to write result %s: %s", file, strerror(-r));
        }
        return gen_commit(g, shuffled ? "shuffled" : "unshuffled", file, &w);
}

/* Writes a projections CSV (deterministic coordinates, one row per input row). */
static int gen_projections(Gen *g, const Input *in, const char *te, bool avatars) {
        _cleanup_free_ char *file = strprintf("%s.projections.%s-0.csv", te,
                                              avatars ? "avatars" : "original");
        size_t dims = CLAMP(in->n_cols, (size_t) 1, (size_t) PROJECTION_DIMS);
        StorageWriter w;
        int r;

        if (!file)
                return -ENOMEM;
        r = gen_open(g, file, &w);
        if (r < 0)
                return gen_fail(g, "Failed to write result %s: %s", file, strerror(-r));
        for (size_t d = 0; d < dims; d++)
                fprintf(w.f, "%sDim.%zu", d ? "," : "", d + 1);
        fputc('\n', w.f);
        for (size_t i = 0; i < in->n_rows; i++) {
                for (size_t d = 0; d < dims; d++) {
                        long v = (long) ((i * 7919 + d * 104729 + (avatars ? 13 : 0)) % 2001) - 1000;
                        fprintf(w.f, "%s%.3f", d ? "," : "", (double) v / 250.0);
                }
                fputc('\n', w.f);
        }
        return gen_commit(g, avatars ? "avatar_projections" : "original_projections", file, &w);
}

/* Writes one HTML figure and adds its figures_metadata entry. */
static int gen_figure(Gen *g, const char *table, const char *te, const char *kind,
                      json_object *meta) {
        _cleanup_free_ char *file = strprintf("%s.%s.html", te, kind);
        _cleanup_free_ char *html = NULL;
        json_object *e;
        int r;

        if (!file)
                return -ENOMEM;
        html = strprintf("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>"
                         "</head><body><h1>%s</h1><p>avatar-sim figure for table %s of job %s"
                         "</p></body></html>\n",
                         kind, kind, te, g->job->name);
        if (!html)
                return -ENOMEM;
        r = gen_write(g, "figures", file, html, strlen(html));
        if (r < 0)
                return r;
        e = json_object_new_object();
        if (!e)
                return -ENOMEM;
        json_object_object_add(e, "kind", json_object_new_string(kind));
        json_object_object_add(e, "filename", json_object_new_string(file));
        json_object_object_add(e, "table_name", json_object_new_string(table));
        return json_object_array_add(meta, e) < 0 ? -ENOMEM : 0;
}

/* A deterministic value in [0, 1) from a table name and a salt. */
static double det_unit(const char *table, const char *salt) {
        return (double) (fnv1a(fnv1a(FNV1A_INIT, table), salt) % 10000) / 10000.0;
}

/* Adds a number with two decimals (short form on the wire). */
static void add_num(json_object *o, const char *key, double v) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%.2f", v);
        json_object_object_add(o, key, json_object_new_double_s(v, buf));
}

/* The run_metadata object of the job. */
static json_object *run_metadata(Gen *g, json_object *tables) {
        json_object *o = json_object_new_object();

        if (!o) {
                json_object_put(tables);
                return NULL;
        }
        json_object_object_add(o, "job_name", json_object_new_string(g->job->name));
        json_object_object_add(o, "set_name", json_object_new_string(g->job->set->name));
        json_object_object_add(o, "parameters_name",
                               json_object_new_string(g->job->parameters_name));
        json_object_object_add(o, "kind", json_object_new_string(g->job->kind));
        json_object_object_add(o, "display_name",
                               json_object_new_string(g->job->set->display_name));
        json_object_object_add(o, "created_at", json_time_or_null(g->job->created_at));
        json_object_object_add(o, "finished_at", json_time_or_null(now_usec()));
        json_object_object_add(o, "tables", tables);
        json_object_object_add(o, "generator", json_object_new_string("avatar-sim"));
        return o;
}

/* The tables of the schema a job works on. */
static const SetDoc *job_schema(const Job *j) {
        const SetDoc *params = resource_model_find(&j->set->model, j->parameters_name);

        return resource_model_schema(&j->set->model, params);
}

/* Results of a standard job. */
static int gen_standard(Gen *g) {
        const SetDoc *schema = job_schema(g->job);
        json_object *meta = json_object_new_array(), *tables = json_object_new_array();
        static const char *const keys[] = { "shuffled",         "unshuffled", "original_projections",
                                            "avatar_projections", "figures",  "figures_metadata",
                                            "run_metadata" };
        int r = 0;

        if (!meta || !tables) {
                json_object_put(meta);
                json_object_put(tables);
                return -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(keys); i++)
                r = gen_key(g, keys[i]);
        if (r >= 0 && (!schema || schema->n_tables == 0))
                r = gen_fail(g, "The set has no tables to anonymize");
        for (size_t i = 0; r >= 0 && i < schema->n_tables; i++) {
                const char *t = schema->tables[i].name;
                _cleanup_free_ char *te = results_escape_table(t);
                Input in;
                json_object *ti;

                if (!te) {
                        r = -ENOMEM;
                        break;
                }
                r = input_open(g, schema, t, &in);
                if (r >= 0)
                        r = gen_avatars(g, &in, te, true);
                if (r >= 0)
                        r = gen_avatars(g, &in, te, false);
                if (r >= 0)
                        r = gen_projections(g, &in, te, false);
                if (r >= 0)
                        r = gen_projections(g, &in, te, true);
                if (r >= 0)
                        r = gen_figure(g, t, te, "2d_projection", meta);
                if (r >= 0)
                        r = gen_figure(g, t, te, "distribution", meta);
                ti = json_object_new_object();
                if (ti) {
                        json_object_object_add(ti, "name", json_object_new_string(t));
                        json_object_object_add(ti, "rows", json_object_new_int64((int64_t) in.n_rows));
                        json_object_object_add(ti, "columns",
                                               json_object_new_int64((int64_t) in.n_cols));
                        json_object_array_add(tables, ti);
                }
                input_done(&in);
        }
        if (r >= 0)
                r = gen_write_json(g, "figures_metadata", "figures_metadata.json",
                                   json_object_get(meta));
        if (r >= 0)
                r = gen_write_json(g, "run_metadata", "run_metadata.avatarize.json",
                                   run_metadata(g, json_object_get(tables)));
        json_object_put(meta);
        json_object_put(tables);
        return r;
}

/* One metrics document for a table. */
static json_object *metrics_doc(const char *table, bool privacy) {
        json_object *o = json_object_new_object(), *md = json_object_new_object(),
                    *targets = json_object_new_object();

        if (!o || !md || !targets) {
                json_object_put(o);
                json_object_put(md);
                json_object_put(targets);
                return NULL;
        }
        json_object_object_add(md, "table_name", json_object_new_string(table));
        json_object_object_add(md, "computation_type", json_object_new_string("standalone"));
        json_object_object_add(md, "reference", json_object_new_string("avatars"));
        json_object_object_add(o, "metadata", md);
        if (privacy) {
                json_object_object_add(targets, "hidden_rate", json_object_new_string(">= 90"));
                json_object_object_add(targets, "local_cloaking", json_object_new_string(">= 5"));
                json_object_object_add(targets, "distance_to_closest",
                                       json_object_new_string(">= 0.2"));
                json_object_object_add(targets, "closest_distances_ratio",
                                       json_object_new_string(">= 0.3"));
                json_object_object_add(targets, "column_direct_match_protection",
                                       json_object_new_string(">= 50"));
                json_object_object_add(targets, "row_direct_match_protection",
                                       json_object_new_string(">= 90"));
                json_object_object_add(o, "targets", targets);
                add_num(o, "hidden_rate", 90.0 + 9.9 * det_unit(table, "hr"));
                add_num(o, "local_cloaking", 5.0 + 20.0 * det_unit(table, "lc"));
                add_num(o, "distance_to_closest", 0.2 + det_unit(table, "dc"));
                add_num(o, "closest_distances_ratio", 0.3 + 0.6 * det_unit(table, "cdr"));
                add_num(o, "column_direct_match_protection", 50.0 + 50.0 * det_unit(table, "cd"));
                add_num(o, "row_direct_match_protection", 90.0 + 10.0 * det_unit(table, "rd"));
                add_num(o, "categorical_hidden_rate", 90.0 + 9.9 * det_unit(table, "chr"));
        } else {
                json_object_object_add(targets, "hellinger_mean", json_object_new_string("<= 0.1"));
                json_object_object_add(targets, "correlation_difference_ratio",
                                       json_object_new_string("<= 10"));
                json_object_object_add(o, "targets", targets);
                add_num(o, "hellinger_mean", 0.1 * det_unit(table, "hm"));
                add_num(o, "hellinger_std", 0.05 * det_unit(table, "hs"));
                add_num(o, "correlation_difference_ratio", 10.0 * det_unit(table, "cdr"));
        }
        return o;
}

/* Results of a privacy_metrics or signal_metrics job. */
static int gen_metrics(Gen *g, bool privacy) {
        const SetDoc *schema = job_schema(g->job);
        const char *key = privacy ? "privacy_metrics" : "signal_metrics",
                   *summary_key = privacy ? "privacy_metrics_summary" : "signal_metrics_summary";
        json_object *summary = json_object_new_array();
        int r;

        if (!summary)
                return -ENOMEM;
        r = gen_key(g, key);
        if (r >= 0 && schema && schema->n_tables > 1)
                r = gen_key(g, summary_key);
        if (r >= 0)
                r = gen_key(g, "run_metadata");
        if (r >= 0 && (!schema || schema->n_tables == 0))
                r = gen_fail(g, "The set has no tables to evaluate");
        for (size_t i = 0; r >= 0 && i < schema->n_tables; i++) {
                const char *t = schema->tables[i].name;
                _cleanup_free_ char *te = results_escape_table(t), *file = NULL;
                json_object *list = json_object_new_array(), *doc = metrics_doc(t, privacy);

                file = te ? strprintf("%s.%s.json", te, privacy ? "privacy" : "signal") : NULL;
                if (!file || !list || !doc) {
                        json_object_put(list);
                        json_object_put(doc);
                        r = -ENOMEM;
                        break;
                }
                json_object_array_add(summary, json_object_get(doc));
                json_object_array_add(list, doc);
                r = gen_write_json(g, key, file, list);
        }
        if (r >= 0 && schema->n_tables > 1)
                r = gen_write_json(g, summary_key,
                                   privacy ? "privacy_metrics_summary.json"
                                           : "signal_metrics_summary.json",
                                   json_object_get(summary));
        if (r >= 0)
                r = gen_write_json(g, "run_metadata",
                                   privacy ? "run_metadata.privacy-metrics.json"
                                           : "run_metadata.signal-metrics.json",
                                   run_metadata(g, json_object_new_array()));
        json_object_put(summary);
        return r;
}

/* Appends text escaped for a PDF literal string (ASCII only). */
static void pdf_escape(struct evbuffer *b, const char *s) {
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == '(' || c == ')' || c == '\\')
                        evbuffer_add_printf(b, "\\%c", c);
                else if (c < 0x20 || c > 0x7e)
                        evbuffer_add(b, "?", 1);
                else
                        evbuffer_add(b, s, 1);
        }
}

/* A one-page PDF 1.4 with correct cross-reference offsets. Returns a new buffer or NULL. */
static struct evbuffer *make_pdf(const char *title, const char *line2) {
        struct evbuffer *b = evbuffer_new(), *content = evbuffer_new();
        size_t off[6], xref;

        if (!b || !content) {
                if (b)
                        evbuffer_free(b);
                if (content)
                        evbuffer_free(content);
                return NULL;
        }
        evbuffer_add_printf(content, "BT /F1 18 Tf 72 720 Td (");
        pdf_escape(content, title);
        evbuffer_add_printf(content, ") Tj 0 -28 Td /F1 11 Tf (");
        pdf_escape(content, line2);
        evbuffer_add_printf(content, ") Tj ET\n");

        evbuffer_add_printf(b, "%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n");
        off[1] = evbuffer_get_length(b);
        evbuffer_add_printf(b, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
        off[2] = evbuffer_get_length(b);
        evbuffer_add_printf(b, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
        off[3] = evbuffer_get_length(b);
        evbuffer_add_printf(b, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                               "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>\n"
                               "endobj\n");
        off[4] = evbuffer_get_length(b);
        evbuffer_add_printf(b, "4 0 obj\n<< /Length %zu >>\nstream\n",
                            evbuffer_get_length(content));
        evbuffer_add_buffer(b, content);
        evbuffer_free(content);
        evbuffer_add_printf(b, "endstream\nendobj\n");
        off[5] = evbuffer_get_length(b);
        evbuffer_add_printf(b, "5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                               ">>\nendobj\n");
        xref = evbuffer_get_length(b);
        evbuffer_add_printf(b, "xref\n0 6\n0000000000 65535 f \n");
        for (int i = 1; i <= 5; i++)
                evbuffer_add_printf(b, "%010zu 00000 n \n", off[i]);
        evbuffer_add_printf(b, "trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                            xref);
        return b;
}

/* CRC-32 (ISO-HDLC), for the ZIP container of .docx files. */
static uint32_t crc32_buf(const void *p, size_t n) {
        const uint8_t *q = p;
        uint32_t c = 0xffffffffu;

        for (size_t i = 0; i < n; i++) {
                c ^= q[i];
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
        return ~c;
}

/* Appends a little-endian 16-bit integer. */
static void le16(struct evbuffer *b, uint16_t v) {
        uint8_t x[2] = { (uint8_t) v, (uint8_t) (v >> 8) };
        evbuffer_add(b, x, 2);
}

/* Appends a little-endian 32-bit integer. */
static void le32(struct evbuffer *b, uint32_t v) {
        uint8_t x[4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24) };
        evbuffer_add(b, x, 4);
}

/* A minimal valid .docx (a stored ZIP with the three required parts). NULL on OOM. */
static struct evbuffer *make_docx(const char *text) {
        static const char content_types[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
                "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
                "<Default Extension=\"rels\" ContentType=\"application/"
                "vnd.openxmlformats-package.relationships+xml\"/>"
                "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
                "<Override PartName=\"/word/document.xml\" ContentType=\"application/"
                "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>"
                "</Types>\n";
        static const char rels[] =
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
                "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/"
                "relationships\"><Relationship Id=\"rId1\" Type=\"http://"
                "schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" "
                "Target=\"word/document.xml\"/></Relationships>\n";
        struct evbuffer *doc = evbuffer_new(), *zip = evbuffer_new(), *cd = evbuffer_new();
        struct {
                const char *name;
                const void *data;
                size_t len;
        } parts[3];
        size_t offsets[3];
        _cleanup_free_ char *doc_xml = NULL;
        size_t doc_len, cd_off;

        if (!doc || !zip || !cd)
                goto fail;
        evbuffer_add_printf(doc, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
                                 "<w:document xmlns:w=\"http://schemas.openxmlformats.org/"
                                 "wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>");
        xml_escape(doc, text);
        evbuffer_add_printf(doc, "</w:t></w:r></w:p></w:body></w:document>\n");
        doc_len = evbuffer_get_length(doc);
        doc_xml = malloc(doc_len);
        if (!doc_xml)
                goto fail;
        evbuffer_remove(doc, doc_xml, doc_len);
        parts[0].name = "[Content_Types].xml";
        parts[0].data = content_types;
        parts[0].len = STRLEN(content_types);
        parts[1].name = "_rels/.rels";
        parts[1].data = rels;
        parts[1].len = STRLEN(rels);
        parts[2].name = "word/document.xml";
        parts[2].data = doc_xml;
        parts[2].len = doc_len;
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                uint32_t crc = crc32_buf(parts[i].data, parts[i].len);
                uint16_t nl = (uint16_t) strlen(parts[i].name);

                offsets[i] = evbuffer_get_length(zip);
                le32(zip, 0x04034b50); /* local file header */
                le16(zip, 20);
                le16(zip, 0);
                le16(zip, 0); /* stored */
                le16(zip, 0);
                le16(zip, 0x21); /* 1980-01-01 */
                le32(zip, crc);
                le32(zip, (uint32_t) parts[i].len);
                le32(zip, (uint32_t) parts[i].len);
                le16(zip, nl);
                le16(zip, 0);
                evbuffer_add(zip, parts[i].name, nl);
                evbuffer_add(zip, parts[i].data, parts[i].len);

                le32(cd, 0x02014b50); /* central directory entry */
                le16(cd, 20);
                le16(cd, 20);
                le16(cd, 0);
                le16(cd, 0);
                le16(cd, 0);
                le16(cd, 0x21);
                le32(cd, crc);
                le32(cd, (uint32_t) parts[i].len);
                le32(cd, (uint32_t) parts[i].len);
                le16(cd, nl);
                le16(cd, 0);
                le16(cd, 0);
                le16(cd, 0);
                le16(cd, 0);
                le32(cd, 0);
                le32(cd, (uint32_t) offsets[i]);
                evbuffer_add(cd, parts[i].name, nl);
        }
        cd_off = evbuffer_get_length(zip);
        {
                size_t cd_len = evbuffer_get_length(cd);
                evbuffer_add_buffer(zip, cd);
                le32(zip, 0x06054b50); /* end of central directory */
                le16(zip, 0);
                le16(zip, 0);
                le16(zip, ELEMENTSOF(parts));
                le16(zip, ELEMENTSOF(parts));
                le32(zip, (uint32_t) cd_len);
                le32(zip, (uint32_t) cd_off);
                le16(zip, 0);
        }
        evbuffer_free(doc);
        evbuffer_free(cd);
        return zip;
fail:
        if (doc)
                evbuffer_free(doc);
        if (zip)
                evbuffer_free(zip);
        if (cd)
                evbuffer_free(cd);
        return NULL;
}

/* Writes a whole evbuffer as a result file and frees it. */
static int gen_write_buffer(Gen *g, const char *key, const char *file, struct evbuffer *b) {
        unsigned char *p;
        int r;

        if (!b)
                return -ENOMEM;
        p = evbuffer_pullup(b, -1);
        r = p || evbuffer_get_length(b) == 0 ? gen_write(g, key, file, p, evbuffer_get_length(b))
                                             : -ENOMEM;
        evbuffer_free(b);
        return r;
}

/* Results of a report job (basic: one PDF or DOCX; pia: one DOCX per table). */
static int gen_report(Gen *g) {
        const SetDoc *params = resource_model_find(&g->job->set->model, g->job->parameters_name);
        const SetDoc *schema = resource_model_schema(&g->job->set->model, NULL);
        const char *name = g->job->set->display_name;
        int r;

        r = gen_key(g, "report");
        if (r < 0)
                return r;
        if (params && streq_ptr(params->report_type, "pia")) {
                if (!schema || schema->n_tables == 0)
                        return gen_fail(g, "The set has no tables to report on");
                for (size_t i = 0; r >= 0 && i < schema->n_tables; i++) {
                        _cleanup_free_ char *te = results_escape_table(schema->tables[i].name),
                                            *file = NULL, *text = NULL;
                        file = te ? strprintf("%s.report.pia.docx", te) : NULL;
                        text = strprintf("Privacy impact assessment: %s (table %s)", name,
                                         schema->tables[i].name);
                        if (!file || !text)
                                return -ENOMEM;
                        r = gen_write_buffer(g, "report", file, make_docx(text));
                }
                return r;
        }
        if (params && streq_ptr(params->output_format, "docx")) {
                _cleanup_free_ char *text = strprintf("Avatar report: %s", name);
                if (!text)
                        return -ENOMEM;
                return gen_write_buffer(g, "report", "report.docx", make_docx(text));
        }
        {
                _cleanup_free_ char *title = strprintf("Avatar report: %s", name),
                                    *line2 = strprintf("Job %s of set %s", g->job->name,
                                                       g->job->set->name);
                if (!title || !line2)
                        return -ENOMEM;
                return gen_write_buffer(g, "report", "report.pdf", make_pdf(title, line2));
        }
}

/*
 * Results of an advice job: {table_name, advice: {k, ncp, use_categorical_reduction,
 * imputation, summary}} as avatar-api.md §5.6 has it; an old-generation server nests the
 * parameters: {table_name, advice: {parameters: {k, ncp, use_categorical_reduction,
 * imputation}, summary}}.
 */
static int gen_advice(Gen *g) {
        const SetDoc *schema = job_schema(g->job);
        int r;

        r = gen_key(g, "advice");
        if (r >= 0 && (!schema || schema->n_tables == 0))
                r = gen_fail(g, "The set has no tables to advise on");
        for (size_t i = 0; r >= 0 && i < schema->n_tables; i++) {
                const char *t = schema->tables[i].name;
                _cleanup_free_ char *te = results_escape_table(t), *file = NULL;
                json_object *list, *item, *advice, *params, *imp, *summary;
                Input in;

                r = input_open(g, schema, t, &in);
                if (r < 0) {
                        input_done(&in);
                        break;
                }
                file = te ? strprintf("%s.advice.json", te) : NULL;
                list = json_object_new_array();
                item = json_object_new_object();
                advice = json_object_new_object();
                params = g->sim->cfg.generation == SIM_GENERATION_OLD ? json_object_new_object()
                                                                      : json_object_get(advice);
                imp = json_object_new_object();
                summary = json_object_new_object();
                if (!file || !list || !item || !advice || !params || !imp || !summary) {
                        json_object_put(list);
                        json_object_put(item);
                        json_object_put(advice);
                        json_object_put(params);
                        json_object_put(imp);
                        json_object_put(summary);
                        input_done(&in);
                        return -ENOMEM;
                }
                json_object_object_add(imp, "method", json_object_new_string("knn"));
                json_object_object_add(imp, "k", json_object_new_int(5));
                json_object_object_add(imp, "training_fraction", json_object_new_double_s(0.3, "0.3"));
                json_object_object_add(imp, "return_data_imputed", json_object_new_boolean(false));
                json_object_object_add(summary, "n_rows", json_object_new_int64((int64_t) in.n_rows));
                json_object_object_add(summary, "n_columns",
                                       json_object_new_int64((int64_t) in.n_cols));
                json_object_object_add(summary, "missing_values_ratio",
                                       json_object_new_double_s(0.0, "0.0"));
                json_object_object_add(params, "k",
                                       json_object_new_int((int) CLAMP(in.n_rows / 10, (size_t) 2,
                                                                      (size_t) 20)));
                json_object_object_add(params, "ncp",
                                       json_object_new_int((int) CLAMP(in.n_cols, (size_t) 1,
                                                                      (size_t) 5)));
                json_object_object_add(params, "use_categorical_reduction",
                                       json_object_new_boolean(false));
                json_object_object_add(params, "imputation", imp);
                if (params != advice)
                        json_object_object_add(advice, "parameters", params);
                else
                        json_object_put(params);
                json_object_object_add(advice, "summary", summary);
                json_object_object_add(item, "table_name", json_object_new_string(t));
                json_object_object_add(item, "advice", advice);
                json_object_array_add(list, item);
                input_done(&in);
                r = gen_write_json(g, "advice", file, list);
        }
        return r;
}

/* Writes the result files of a job that just finished. */
int results_generate(Sim *sim, Job *j, char **ret_exception) {
        Gen g = { .sim = sim, .job = j, .bucket = j->owner->id };
        int r;

        *ret_exception = NULL;
        g.prefix = strprintf(SIM_RESULTS_PREFIX "/%s/%s", j->set->name, j->name);
        g.map = json_object_new_object();
        if (!g.prefix || !g.map) {
                free(g.prefix);
                json_object_put(g.map);
                return -ENOMEM;
        }
        if (streq(j->kind, "standard"))
                r = gen_standard(&g);
        else if (streq(j->kind, "privacy_metrics"))
                r = gen_metrics(&g, true);
        else if (streq(j->kind, "signal_metrics"))
                r = gen_metrics(&g, false);
        else if (streq(j->kind, "report"))
                r = gen_report(&g);
        else
                r = gen_advice(&g);
        if (r < 0) {
                (void) storage_remove_prefix(sim, g.bucket, g.prefix);
                json_object_put(g.map);
                *ret_exception = g.exception ? g.exception : strdup(strerror(-r));
        } else {
                json_object_put(j->results);
                j->results = g.map;
                free(g.exception);
        }
        free(g.prefix);
        return r;
}

/* Deletes the result files of a job. */
int results_cleanup(Sim *sim, Job *j) {
        _cleanup_free_ char *prefix = strprintf(SIM_RESULTS_PREFIX "/%s/%s", j->set->name,
                                                j->name);

        if (!prefix)
                return -ENOMEM;
        j->results_cleaned = true;
        return storage_remove_prefix(sim, j->owner->id, prefix);
}

/* The {key: [envelope URL, ...]} map of a finished job. */
json_object *results_urls(Sim *sim, const Job *j) {
        json_object *out = json_object_new_object();

        if (!out || !j->results)
                return out;
        json_object_object_foreach(j->results, key, files) {
                json_object *a = json_object_new_array();
                if (!a) {
                        json_object_put(out);
                        return NULL;
                }
                for (size_t i = 0; i < json_object_array_length(files); i++) {
                        const char *f = json_object_get_string(json_object_array_get_idx(files, i));
                        _cleanup_free_ char *k = strprintf(SIM_RESULTS_PREFIX "/%s/%s/%s",
                                                           j->set->name, j->name, f);
                        char *url = k ? results_envelope(sim, j->owner->id, k) : NULL;
                        if (!url) {
                                json_object_put(a);
                                json_object_put(out);
                                return NULL;
                        }
                        json_object_array_add(a, json_object_new_string(url));
                        free(url);
                }
                json_object_object_add(out, key, a);
        }
        return out;
}
