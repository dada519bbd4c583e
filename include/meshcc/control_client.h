//  control_client: the CLI's side of control.h. Asks the node of a data
//  directory one question over its ipc socket and prints the answer as a
//  table, key: value lines or JSON. Uses a plain REQ socket with timeouts,
//  never czmq actors: the CLI must stay cheap to start.

#ifndef MESHCC_CONTROL_CLIENT_H_INCLUDED
#define MESHCC_CONTROL_CLIENT_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdio.h>

typedef enum {
    CONTROL_CLIENT_OK = 0,
    CONTROL_CLIENT_NO_NODE = -1,    //  no lock holder, or no reply in time
    CONTROL_CLIENT_FAILED = -2      //  the node answered ERROR (message in err)
} control_client_result_t;

//  Sends `command` to the node of `dir`; on success sets *records_p to a
//  new list of zhash_t records (caller destroys with
//  control_client_records_destroy).
control_client_result_t control_client_request (const char *dir, const char *command,
                                                int timeout_ms, zlist_t **records_p,
                                                char *err, size_t err_size);
void control_client_records_destroy (zlist_t **records_p);

//  Field orders for output: members as in control.h; status as in
//  control.h with one dropped_<reason> per wire error. Fields a newer node
//  sends that we do not know follow, sorted.
void control_client_print_members (FILE *out, zlist_t *records, bool json);
void control_client_print_status (FILE *out, zhash_t *record, bool json);
//  TOOLCHAINS records: a table (hash prefix, compiler, version, target,
//  size, last used, holders), or a JSON array of objects.
void control_client_print_toolchains (FILE *out, zlist_t *records, bool json);
//  STATS (`meshcc stats`): a labelled table (mean times in ms) or JSON;
//  the fields meshcc knows first, fallback_<reason> after "fallbacks",
//  unknown ones sorted at the end.
void control_client_print_stats (FILE *out, zhash_t *record, bool json);

//  Writes `text` as a JSON string, quotes included.
void control_client_json_string (FILE *out, const char *text);

void control_client_test (bool verbose);

#endif
