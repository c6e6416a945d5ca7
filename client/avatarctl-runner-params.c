/* SPDX-License-Identifier: MIT */
/*
 * avatarctl runner set-parameters, update-parameters, delete-parameters and advise
 * (runner.set_parameters, runner.update_parameters, runner.delete_parameters,
 * runner.advise_parameters): one option per parameter of the contract, checked here before
 * anything is sent.
 */
#include <limits.h>
#include <math.h>

#include "avatarctl.h"
#include "avatarctl-output.h"
#include "avatarctl-runner.h"
#include "jsonrpc.h"

/* ---- the contract's enumerations ---------------------------------------------------- */

static const char *const exclude_methods[] = { "row_order", "coordinate_similarity" };
static const char *const imputation_methods[] = { "knn", "mode", "median", "mean", "fast_knn" };
static const char *const projection_types[] = { "fpca", "flatten" };
static const char *const time_series_methods[] = { "specified", "max", "min", "mean" };

/* ---- runner set-parameters, update-parameters, advise --------------------------------- */

/* How a parameter's option value is read. */
typedef enum ParamType {
        PARAM_INT,           /* a decimal integer in [min, max] */
        PARAM_NUMBER,        /* a number in (min, max] or [min, max] */
        PARAM_BOOL,          /* --x (true), --x=true|false|yes|no|1|0 */
        PARAM_STRING,        /* a non-empty string */
        PARAM_ENUM,          /* one of `values` */
        PARAM_LIST,          /* comma-separated strings; repeatable */
        PARAM_WEIGHTS,       /* COL=W[,COL=W...]; repeatable */
        PARAM_AUGMENTATION,  /* a number > 0, KEY=W[,KEY=W...], or a string */
        _PARAM_TYPE_MAX,
        _PARAM_TYPE_INVALID = -EINVAL,
} ParamType;

typedef struct ParamSpec {
        const char *name;            /* the param (snake_case); the option is its kebab-case */
        ParamType type;
        double min, max;             /* PARAM_INT, PARAM_NUMBER */
        bool min_exclusive;          /* PARAM_NUMBER: min itself is refused */
        const char *const *values;   /* PARAM_ENUM */
        size_t n_values;
} ParamSpec;

/* The params of runner.set_parameters, in the contract's order. */
enum {
        P_K,
        P_NCP,
        P_USE_CATEGORICAL_REDUCTION,
        P_COLUMN_WEIGHTS,
        P_EXCLUDE_VARIABLE_NAMES,
        P_EXCLUDE_REPLACEMENT_STRATEGY,
        P_EXCLUDE_VARIABLE_METHOD,
        P_IMPUTATION_METHOD,
        P_IMPUTATION_K,
        P_IMPUTATION_TRAINING_FRACTION,
        P_IMPUTATION_RETURN_DATA_IMPUTED,
        P_OPEN_DP_EPSILON,
        P_FAST_DP_EPSILON,
        P_TIME_SERIES_NF,
        P_TIME_SERIES_PROJECTION_TYPE,
        P_TIME_SERIES_NB_POINTS,
        P_TIME_SERIES_METHOD,
        P_KNOWN_VARIABLES,
        P_TARGET,
        P_QUANTILE_THRESHOLD,
        P_DATA_AUGMENTATION_STRATEGY,
        P_DATA_AUGMENTATION_TARGET_COLUMN,
        P_DATA_AUGMENTATION_SHOULD_ANONYMIZE_ORIGINAL_TABLE,
        P_USE_EXCLUDED_VARIABLES_IN_METRICS,
        _P_MAX,
};

/* A ParamSpec of each kind. */
#define P_PLAIN(n, t) { .name = n, .type = t, .min = 0, .max = 0, .min_exclusive = false, .values = NULL, .n_values = 0 }
#define P_INT(n, lo, hi) { .name = n, .type = PARAM_INT, .min = lo, .max = hi, .min_exclusive = false, .values = NULL, \
                           .n_values = 0 }
#define P_ABOVE(n, lo, hi) { .name = n, .type = PARAM_NUMBER, .min = lo, .max = hi, .min_exclusive = true, \
                             .values = NULL, .n_values = 0 }
#define P_ENUM(n, set) { .name = n, .type = PARAM_ENUM, .min = 0, .max = 0, .min_exclusive = false, .values = set, \
                         .n_values = ELEMENTSOF(set) }

static const ParamSpec param_specs[_P_MAX] = {
        [P_K] = P_INT("k", 2, 1000),
        [P_NCP] = P_INT("ncp", 1, 10000),
        [P_USE_CATEGORICAL_REDUCTION] = P_PLAIN("use_categorical_reduction", PARAM_BOOL),
        [P_COLUMN_WEIGHTS] = P_PLAIN("column_weights", PARAM_WEIGHTS),
        [P_EXCLUDE_VARIABLE_NAMES] = P_PLAIN("exclude_variable_names", PARAM_LIST),
        [P_EXCLUDE_REPLACEMENT_STRATEGY] = P_ENUM("exclude_replacement_strategy", exclude_methods),
        [P_EXCLUDE_VARIABLE_METHOD] = P_ENUM("exclude_variable_method", exclude_methods),
        [P_IMPUTATION_METHOD] = P_ENUM("imputation_method", imputation_methods),
        [P_IMPUTATION_K] = P_INT("imputation_k", 1, INT_MAX),
        [P_IMPUTATION_TRAINING_FRACTION] = P_ABOVE("imputation_training_fraction", 0, 1),
        [P_IMPUTATION_RETURN_DATA_IMPUTED] = P_PLAIN("imputation_return_data_imputed", PARAM_BOOL),
        [P_OPEN_DP_EPSILON] = P_ABOVE("open_dp_epsilon", 0, INFINITY),
        [P_FAST_DP_EPSILON] = P_ABOVE("fast_dp_epsilon", 0, INFINITY),
        [P_TIME_SERIES_NF] = P_INT("time_series_nf", 1, INT_MAX),
        [P_TIME_SERIES_PROJECTION_TYPE] = P_ENUM("time_series_projection_type", projection_types),
        [P_TIME_SERIES_NB_POINTS] = P_INT("time_series_nb_points", 1, INT_MAX),
        [P_TIME_SERIES_METHOD] = P_ENUM("time_series_method", time_series_methods),
        [P_KNOWN_VARIABLES] = P_PLAIN("known_variables", PARAM_LIST),
        [P_TARGET] = P_PLAIN("target", PARAM_STRING),
        [P_QUANTILE_THRESHOLD] = P_INT("quantile_threshold", 0, INT_MAX),
        [P_DATA_AUGMENTATION_STRATEGY] = P_PLAIN("data_augmentation_strategy", PARAM_AUGMENTATION),
        [P_DATA_AUGMENTATION_TARGET_COLUMN] = P_PLAIN("data_augmentation_target_column", PARAM_STRING),
        [P_DATA_AUGMENTATION_SHOULD_ANONYMIZE_ORIGINAL_TABLE] =
                P_PLAIN("data_augmentation_should_anonymize_original_table", PARAM_BOOL),
        [P_USE_EXCLUDED_VARIABLES_IN_METRICS] = P_PLAIN("use_excluded_variables_in_metrics", PARAM_BOOL),
};

#define PARAM_OPTION(id, opt, has_arg) { opt, has_arg, NULL, CTL_OPT_PARAMETER + (id) }

/* The options of set-parameters and update-parameters: the kebab-case of each param. */
const struct option ctl_parameter_options[] = {
        PARAM_OPTION(P_K, "k", required_argument),
        PARAM_OPTION(P_NCP, "ncp", required_argument),
        PARAM_OPTION(P_USE_CATEGORICAL_REDUCTION, "use-categorical-reduction", optional_argument),
        PARAM_OPTION(P_COLUMN_WEIGHTS, "column-weights", required_argument),
        PARAM_OPTION(P_EXCLUDE_VARIABLE_NAMES, "exclude-variable-names", required_argument),
        PARAM_OPTION(P_EXCLUDE_REPLACEMENT_STRATEGY, "exclude-replacement-strategy", required_argument),
        PARAM_OPTION(P_EXCLUDE_VARIABLE_METHOD, "exclude-variable-method", required_argument),
        PARAM_OPTION(P_IMPUTATION_METHOD, "imputation-method", required_argument),
        PARAM_OPTION(P_IMPUTATION_K, "imputation-k", required_argument),
        PARAM_OPTION(P_IMPUTATION_TRAINING_FRACTION, "imputation-training-fraction", required_argument),
        PARAM_OPTION(P_IMPUTATION_RETURN_DATA_IMPUTED, "imputation-return-data-imputed", optional_argument),
        PARAM_OPTION(P_OPEN_DP_EPSILON, "open-dp-epsilon", required_argument),
        PARAM_OPTION(P_FAST_DP_EPSILON, "fast-dp-epsilon", required_argument),
        PARAM_OPTION(P_TIME_SERIES_NF, "time-series-nf", required_argument),
        PARAM_OPTION(P_TIME_SERIES_PROJECTION_TYPE, "time-series-projection-type", required_argument),
        PARAM_OPTION(P_TIME_SERIES_NB_POINTS, "time-series-nb-points", required_argument),
        PARAM_OPTION(P_TIME_SERIES_METHOD, "time-series-method", required_argument),
        PARAM_OPTION(P_KNOWN_VARIABLES, "known-variables", required_argument),
        PARAM_OPTION(P_TARGET, "target", required_argument),
        PARAM_OPTION(P_QUANTILE_THRESHOLD, "quantile-threshold", required_argument),
        PARAM_OPTION(P_DATA_AUGMENTATION_STRATEGY, "data-augmentation-strategy", required_argument),
        PARAM_OPTION(P_DATA_AUGMENTATION_TARGET_COLUMN, "data-augmentation-target-column", required_argument),
        PARAM_OPTION(P_DATA_AUGMENTATION_SHOULD_ANONYMIZE_ORIGINAL_TABLE,
                     "data-augmentation-should-anonymize-original-table", optional_argument),
        PARAM_OPTION(P_USE_EXCLUDED_VARIABLES_IN_METRICS, "use-excluded-variables-in-metrics", optional_argument),
        { "params-json", required_argument, NULL, CTL_OPT_PARAMS_JSON },
        { "unset", required_argument, NULL, CTL_OPT_UNSET },
        {}
};

/* "--name" of a param, for messages. */
static void option_name(const ParamSpec *s, char *buf, size_t size) {
        size_t i;

        (void) snprintf(buf, size, "--%s", s->name);
        for (i = 2; buf[i]; i++)
                if (buf[i] == '_')
                        buf[i] = '-';
}

/* The param named `name` (snake_case or kebab-case, with or without "--"), or NULL. */
static const ParamSpec *param_by_name(const char *name) {
        size_t i, k;

        if (startswith(name, "--"))
                name += 2;
        for (i = 0; i < _P_MAX; i++) {
                const char *s = param_specs[i].name;

                for (k = 0; s[k] && (name[k] == s[k] || (name[k] == '-' && s[k] == '_')); k++)
                        ;
                if (s[k] == '\0' && name[k] == '\0')
                        return &param_specs[i];
        }
        return NULL;
}

/* Parses a number (finite). Returns true with *ret set. */
static bool parse_number(const char *s, double *ret) {
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
                return false;
        *ret = v;
        return true;
}

/* Adds "KEY=W[,KEY=W...]" to the object `map`. Returns CTL_EXIT_OK or the exit code. */
static int add_weights(const char *command, const char *what, const char *value, json_object *map) {
        _cleanup_free_ char *copy = strdup(value);
        char *p, *item;

        if (!copy)
                return ctl_fail_oom(command);
        for (p = copy; (item = strsep(&p, ","));) {
                char *eq = strrchr(item, '=');
                double w;

                if (!eq || eq == item || !parse_number(eq + 1, &w))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected COLUMN=NUMBER[,...], got '%s'", what, value);
                *eq = '\0';
                if (ctl_add_member(map, item, json_object_new_double(w)) < 0)
                        return ctl_fail_oom(command);
        }
        return CTL_EXIT_OK;
}

/* Sets a param from its option value, in params (repeated list and map options add to what
 * is there). Returns CTL_EXIT_OK or the exit code. */
static int apply_param(const char *command, const ParamSpec *s, const char *arg, json_object *params) {
        json_object *cur = ctl_member(params, s->name), *v = NULL;
        char what[96];
        double d;
        long long n;
        int code;

        option_name(s, what, sizeof(what));
        switch (s->type) {
        case PARAM_INT:
                code = ctl_parse_int(what, arg, (long long) s->min, (long long) s->max, &n);
                if (code != CTL_EXIT_OK)
                        return code;
                v = json_object_new_int64(n);
                break;
        case PARAM_NUMBER:
                if (!parse_number(arg, &d) || d < s->min || (s->min_exclusive && !(d > s->min)) || d > s->max) {
                        if (isinf(s->max))
                                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected a number %s %g, got '%s'", what,
                                                s->min_exclusive ? "above" : "of at least", s->min, arg);
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected a number %s %g and at most %g, got '%s'",
                                        what, s->min_exclusive ? "above" : "of at least", s->min, s->max, arg);
                }
                v = json_object_new_double(d);
                break;
        case PARAM_BOOL:
                if (!arg || streq(arg, "true") || streq(arg, "yes") || streq(arg, "1"))
                        v = json_object_new_boolean(true);
                else if (streq(arg, "false") || streq(arg, "no") || streq(arg, "0"))
                        v = json_object_new_boolean(false);
                else
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected true or false, got '%s'", what, arg);
                break;
        case PARAM_STRING:
                if (isempty(arg))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: the value is empty", what);
                v = json_object_new_string(arg);
                break;
        case PARAM_ENUM:
                code = ctl_check_choice(command, what, arg, s->values, s->n_values);
                if (code != CTL_EXIT_OK)
                        return code;
                v = json_object_new_string(arg);
                break;
        case PARAM_LIST:
                if (!json_object_is_type(cur, json_type_array)) {
                        v = json_object_new_array();
                        if (!v || ctl_add_member(params, s->name, v) < 0)
                                return ctl_fail_oom(command);
                        cur = v;
                }
                return add_list_values(command, what, arg, cur, NULL, 0);
        case PARAM_WEIGHTS:
                if (!json_object_is_type(cur, json_type_object)) {
                        v = json_object_new_object();
                        if (!v || ctl_add_member(params, s->name, v) < 0)
                                return ctl_fail_oom(command);
                        cur = v;
                }
                return add_weights(command, what, arg, cur);
        case PARAM_AUGMENTATION:
                if (isempty(arg))
                        return ctl_fail(CTL_EXIT_USAGE, command, "%s: the value is empty", what);
                if (parse_number(arg, &d)) {
                        if (!(d > 0))
                                return ctl_fail(CTL_EXIT_USAGE, command, "%s: expected a number above 0, got '%s'", what, arg);
                        v = json_object_new_double(d);
                } else if (strchr(arg, '=')) {
                        v = json_object_new_object();
                        if (!v)
                                return ctl_fail_oom(command);
                        code = add_weights(command, what, arg, v);
                        if (code != CTL_EXIT_OK) {
                                json_object_put(v);
                                return code;
                        }
                } else
                        v = json_object_new_string(arg);
                break;
        default:
                assert(false);
                return CTL_EXIT_FAILED;
        }
        if (ctl_add_member(params, s->name, v) < 0)
                return ctl_fail_oom(command);
        return CTL_EXIT_OK;
}

/* Builds the params of set_parameters (`update` false) or update_parameters: --params-json first
 * (the whole param object), then each option in command-line order, then --unset. Returns
 * CTL_EXIT_OK with the new params in *ret, or the exit code. */
static int parameters_params(const CtlArgs *args, bool update, json_object **ret) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *json_text = ctl_opt(args, CTL_OPT_PARAMS_JSON);
        size_t i;
        int code, r;

        if (!update && ctl_opt_given(args, CTL_OPT_UNSET))
                return ctl_fail(CTL_EXIT_USAGE, args->command, "--unset is for runner update-parameters");
        if (json_text) {
                r = json_parse_strict(json_text, strlen(json_text), 32, &params);
                if (r == -ENOMEM)
                        return ctl_fail_oom(args->command);
                if (r < 0 || !json_object_is_type(params, json_type_object))
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--params-json: expected a JSON object of parameters");
                json_object_object_del(params, "runner_id");
                json_object_object_del(params, "table_name");
        } else {
                params = json_object_new_object();
                if (!params)
                        return ctl_fail_oom(args->command);
        }
        for (i = 0; i < args->n_opts; i++) {
                int id = args->opts[i].id - CTL_OPT_PARAMETER;

                if (id < 0 || id >= _P_MAX)
                        continue;
                code = apply_param(args->command, &param_specs[id], args->opts[i].arg, params);
                if (code != CTL_EXIT_OK)
                        return code;
        }
        for (i = 0; i < args->n_opts; i++) {
                const ParamSpec *s;

                if (args->opts[i].id != CTL_OPT_UNSET)
                        continue;
                s = param_by_name(args->opts[i].arg);
                if (!s)
                        return ctl_fail(CTL_EXIT_USAGE, args->command, "--unset: no parameter named '%s'",
                                        args->opts[i].arg);
                if (json_object_object_add(params, s->name, NULL) < 0)
                        return ctl_fail_oom(args->command);
        }
        if (update && json_object_object_length(params) == 0)
                return ctl_fail(CTL_EXIT_USAGE, args->command, "nothing to change: give parameter options or --unset NAME");
        *ret = TAKE_PTR(params);
        return CTL_EXIT_OK;
}

/* Prints an object's members as "  name  value" lines, names as they are (they are the
 * params' names, or a table's columns), values as output_value_text() writes them. Returns 0
 * or -ENOMEM. */
static int print_members(json_object *o, unsigned indent) {
        size_t width = 0;

        json_object_object_foreach(o, k0, v0) {
                (void) v0;
                width = MAX(width, output_width(k0));
        }
        json_object_object_foreach(o, key, v) {
                _cleanup_free_ char *text = NULL;
                int r;

                r = output_value_text(v, &text);
                if (r < 0)
                        return r;
                (void) printf("%*s", (int) indent, "");
                output_padded(stdout, key, width, OUTPUT_ALIGN_LEFT);
                (void) fputs("  ", stdout);
                output_sanitized(stdout, text);
                (void) putchar('\n');
        }
        return 0;
}

/* Prints a ParametersResult for people. */
static int print_parameters(Ctl *ctl, json_object *result, void *userdata) {
        json_object *params = ctl_member(result, "parameters");
        int r;

        (void) ctl;
        (void) userdata;
        (void) fputs("Parameters of table ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "table_name") ?: "?");
        if (json_object_len(params) == 0)
                (void) puts(": none");
        else {
                (void) puts(":");
                r = print_members(params, 2);
                if (r < 0)
                        return r;
        }
        print_warnings(result);
        return 0;
}

/* set-parameters and update-parameters. */
static int set_or_update(Ctl *ctl, const CtlArgs *args, bool update) {
        _cleanup_(unref_jsonp) json_object *params = NULL, *p = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &p);
        if (code != CTL_EXIT_OK)
                return code;
        code = check_name(args->command, "TABLE", args->pos[1], TABLE_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        code = parameters_params(args, update, &params);
        if (code != CTL_EXIT_OK)
                return code;
        /* runner_id and table_name first, as a reader of the request expects. */
        if (ctl_add_member(p, "table_name", json_object_new_string(args->pos[1])) < 0)
                return ctl_fail_oom(args->command);
        json_object_object_foreach(params, key, v)
                if (json_object_object_add(p, key, json_object_get(v)) < 0)
                        return ctl_fail_oom(args->command);
        return call_print_warn(ctl, update ? "runner.update_parameters" : "runner.set_parameters", p, ctl->timeout_ms,
                               print_parameters, NULL);
}

/* "avatarctl runner set-parameters RUNNER TABLE [PARAMETERS]": runner.set_parameters. */
int ctl_cmd_runner_set_parameters(Ctl *ctl, const CtlArgs *args) {
        return set_or_update(ctl, args, false);
}

/* "avatarctl runner update-parameters RUNNER TABLE [PARAMETERS] [--unset NAME]...":
 * runner.update_parameters. */
int ctl_cmd_runner_update_parameters(Ctl *ctl, const CtlArgs *args) {
        return set_or_update(ctl, args, true);
}

/* Prints runner.advise_parameters for people. */
static int print_advice(Ctl *ctl, json_object *result, void *userdata) {
        json_object *params = ctl_member(result, "parameters");
        int r;

        (void) ctl;
        (void) userdata;
        (void) fputs("Applied the server's advice to runner ", stdout);
        output_sanitized(stdout, ctl_member_string(result, "runner_id") ?: "?");
        (void) puts(":");
        if (!json_object_is_type(params, json_type_object))
                r = output_tree(stdout, result, 2);
        else {
                /* {table: {param: value}} */
                r = 0;
                json_object_object_foreach(params, table, tp) {
                        (void) fputs("  ", stdout);
                        output_sanitized(stdout, table);
                        (void) puts(":");
                        r = json_object_is_type(tp, json_type_object) ? print_members(tp, 4) : output_tree(stdout, tp, 4);
                        if (r < 0)
                                break;
                }
        }
        if (r < 0)
                return r;
        print_warnings(result);
        return 0;
}

/* "avatarctl runner advise RUNNER [--table T]": runner.advise_parameters (it runs an advice
 * job upstream and waits for it). */
int ctl_cmd_runner_advise(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *params = NULL;
        const char *table = ctl_opt(args, CTL_OPT_TABLE);
        int code;

        code = runner_params(args->command, args->pos[0], &params);
        if (code != CTL_EXIT_OK)
                return code;
        if (table) {
                code = check_name(args->command, "--table", table, TABLE_NAME_MAX);
                if (code != CTL_EXIT_OK)
                        return code;
                if (ctl_add_member(params, "table_name", json_object_new_string(table)) < 0)
                        return ctl_fail_oom(args->command);
        }
        return call_print_warn(ctl, "runner.advise_parameters", params, long_call_timeout(ctl), print_advice, NULL);
}

/* "avatarctl runner delete-parameters RUNNER TABLE [NAME...]": runner.delete_parameters, the
 * named parameters (snake_case or kebab-case, as --unset takes them) or, without NAME, every
 * parameter of the table. Prints the parameters left. */
int ctl_cmd_runner_delete_parameters(Ctl *ctl, const CtlArgs *args) {
        _cleanup_(unref_jsonp) json_object *p = NULL, *names = NULL;
        int code;

        code = runner_params(args->command, args->pos[0], &p);
        if (code != CTL_EXIT_OK)
                return code;
        code = check_name(args->command, "TABLE", args->pos[1], TABLE_NAME_MAX);
        if (code != CTL_EXIT_OK)
                return code;
        if (args->n_pos > 2) {
                names = json_object_new_array();
                if (!names)
                        return ctl_fail_oom(args->command);
        }
        for (int i = 2; i < args->n_pos; i++) {
                const ParamSpec *s = param_by_name(args->pos[i]);
                bool seen = false;

                if (!s)
                        return ctl_fail(CTL_EXIT_USAGE, args->command,
                                        "no parameter named '%s' (see avatarctl help runner set-parameters)", args->pos[i]);
                for (size_t k = 0; k < json_object_array_length(names) && !seen; k++)
                        seen = streq(json_object_get_string(json_object_array_get_idx(names, k)), s->name);
                if (!seen && json_object_array_add(names, json_object_new_string(s->name)) < 0)
                        return ctl_fail_oom(args->command);
        }
        if (ctl_add_member(p, "table_name", json_object_new_string(args->pos[1])) < 0 ||
            (names && ctl_add_member(p, "parameters_names", TAKE_PTR(names)) < 0))
                return ctl_fail_oom(args->command);
        return call_print_warn(ctl, "runner.delete_parameters", p, ctl->timeout_ms, print_parameters, NULL);
}
