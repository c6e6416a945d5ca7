/* SPDX-License-Identifier: MIT */
/*
 * A runner's configuration: the Avatar resource documents (avatar-api.md §6) held as a JSON
 * array, and the operations of the Python Runner that edit them (add_table, add_link,
 * set_parameters, update_parameters, advice, reports). Pure code: no I/O, no logging.
 *
 * Documents are kept in the order the contract gives (AvatarMetadata, AvatarVolume,
 * AvatarSchema "schema", AvatarSchema "schema_avatarized", AvatarAdviceParameters,
 * AvatarParameters, AvatarPrivacyMetricsParameters, AvatarSignalMetricsParameters,
 * AvatarReportParameters "report" then "report_pia"), keys within a document in the
 * contract's order, and keys whose value would be null — or an empty map — left out.
 *
 * Errors are returned as -EINVAL with a malloc'd sentence in *ret_error; warnings are
 * appended (as strings) to a JSON array the caller passes.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

/* Creates the documents of a new runner: an AvatarMetadata for display_name, with `options`
 * (borrowed; members pia_data_recipient, pia_data_type, pia_data_subject,
 * pia_sensitivity_level, seed, max_distribution_plots, report_language, all optional).
 * Returns a new array or NULL on OOM. */
json_object *runner_config_new(const char *display_name, json_object *options);

/* The display name in the AvatarMetadata document, or NULL. Borrowed. */
const char *runner_config_display_name(json_object *docs);

/* Renames: AvatarMetadata metadata.name and spec.display_name. Returns 0 or -ENOMEM. */
int runner_config_set_display_name(json_object *docs, const char *display_name);

/* Checks imported documents: an array of objects each with a string kind and metadata.name,
 * kinds known, no duplicate (kind, name), an AvatarMetadata present. Reorders them into the
 * contract's order. Returns 0 or -EINVAL with *ret_error. */
int runner_config_validate(json_object *docs, char **ret_error);

/* The document of that kind and metadata.name (name NULL: the first of the kind), borrowed. */
json_object *runner_config_find(json_object *docs, const char *kind, const char *name);

/* Names of the tables of the "schema" document, in order: a new array of strings. */
json_object *runner_config_tables(json_object *docs);

/* Adds (or replaces) a table. `table` (borrowed) has the members of runner.add_table:
 * table_name, file (the uploaded object key), avatar_file, primary_key, foreign_keys,
 * time_series_time, types, individual_level. Returns 0, -EINVAL, -ENOMEM. */
int runner_config_add_table(json_object *docs, json_object *table, char **ret_error);

/* Adds a link parent_table.parent_field → child_table.child_field with method. */
int runner_config_add_link(json_object *docs, const char *parent_table, const char *parent_field,
                           const char *child_table, const char *child_field, const char *method,
                           char **ret_error);

/* set_parameters for one table (params borrowed: the members of runner.set_parameters,
 * table_name excluded). Applies the Python Runner's rules: k, open_dp_epsilon and
 * fast_dp_epsilon are mutually exclusive; k = 2 warns; exclude_replacement_strategy is a
 * deprecated alias of exclude_variable_method; previous parameters of the table are dropped;
 * privacy and signal metrics parameters are (re)created. */
int runner_config_set_parameters(json_object *docs, json_object *options, const char *table,
                                 json_object *params, json_object *warnings, char **ret_error);

/* The current parameters of a table, as set_parameters arguments (new object). */
json_object *runner_config_get_parameters(json_object *docs, const char *table);

/* update_parameters: current parameters of the table with `changes` applied (a null member
 * removes a parameter), then set_parameters. Fails when the table has no avatarization
 * parameters yet. */
int runner_config_update_parameters(json_object *docs, json_object *options, const char *table,
                                    json_object *changes, json_object *warnings, char **ret_error);

/* delete_table: removes the table from both schemas, every link that names it (its own and
 * those of the tables linking to it) and its parameters in every parameters document.
 * Returns 0, -ENOENT when there is no such table. */
int runner_config_delete_table(json_object *docs, const char *table);

/* delete_link: removes the link parent_table → child_table (and the parent's links member
 * when it was the last). Returns 0, -ENOENT when there is no such link. */
int runner_config_delete_link(json_object *docs, const char *parent_table, const char *child_table);

/* Whether `name` is a parameter of runner.set_parameters (table_name excluded). */
bool runner_config_parameter_known(const char *name);

/* delete_parameters: `names` NULL (or a JSON null) removes every parameter of the table;
 * an array of set_parameters names removes those and keeps the others (set_parameters again
 * with what is left). Returns 0; -ENOENT when there is no such table; -EINVAL when a name is
 * not a set_parameters parameter (nothing removed; *ret_unknown, when given, is set to a new
 * array of those names, and *ret_error says which); -ENOMEM. */
int runner_config_delete_parameters(json_object *docs, json_object *options, const char *table, json_object *names,
                                    json_object **ret_unknown, char **ret_error);

/* Whether some table has avatarization parameters (standard can run). */
bool runner_config_has_avatarization(json_object *docs);

/* Makes sure the documents a run of `jobs` (parameters names) needs exist: metrics documents,
 * and for "report" both report documents in options.report_language. Returns 0, -EINVAL (e.g. standard
 * without avatarization parameters) or -ENOMEM. */
int runner_config_prepare_run(json_object *docs, json_object *options, json_object *jobs, char **ret_error);

/* The runner options (seed, max_distribution_plots, report_language, pia_*) found in imported
 * documents, as a new object. */
json_object *runner_config_options_from_docs(json_object *docs);

/* Adds (or keeps) the AvatarAdviceParameters document for advisor type "parameters". */
int runner_config_add_advice(json_object *docs);

/* The set_parameters arguments of one table's advice (an advice file item's "advice"), in
 * either shape: nested {parameters: {k, ncp, use_categorical_reduction, imputation: {...}}}
 * or flat {k, ncp, ...}; imputation members become imputation_method, imputation_k, ...
 * Sets *ret to a new object. Returns 0, -EINVAL (*ret_error says why: not an object, or no
 * parameter found) or -ENOMEM. */
int runner_config_advice_parameters(json_object *advice, json_object **ret, char **ret_error);

/* The API path (relative to the API root, query kept) that a Location header names: a path
 * relative to the root ("/resources/x"), or an absolute one under it
 * ("https://host/api/resources/x", "/api/resources/x" with api_url ".../api"). Malloc'd;
 * NULL when it points outside the API (another host, "//host/...", a relative reference) or
 * on OOM. */
char *runner_location_api_path(const char *api_url, const char *loc);

/* The last path segment of a URL (query and trailing slashes dropped), percent-decoded;
 * malloc'd, NULL when there is none or on OOM. */
char *runner_location_last_segment(const char *loc);

/* Options: seed and max_distribution_plots go into the parameters documents the functions
 * above create; `options` is borrowed and may be NULL. */

/* The job kind of a parameters name ("report_pia" → "report", "advice_parameters" → "advice"). */
const char *runner_config_job_kind(const char *parameters_name);

/* Increments a display name's "-vN" suffix: "x" → "x-v1", "x-v9" → "x-v10". Malloc'd. */
char *runner_increment_display_name(const char *name);
