//  control_client: requests to the local node and their presentation.

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "meshcc/control.h"
#include "meshcc/control_client.h"
#include "meshcc/datadir.h"
#include "meshcc/limits.h"
#include "meshcc/wire.h"

static const char *s_member_fields [] = {
    "id", "name", "addr", "state", "slots", "running", "queued", "load", "last_seen_ms",
    "version", "incarnation", "heartbeat", "speed", "self", NULL
};

static const char *s_toolchain_fields [] = {
    "hash", "compiler", "compiler_version", "target", "size", "holders", "here", "last_used",
    "created", NULL
};

static const char *s_status_head [] = {
    "id", "name", "addr", "dir", "pid", "uptime_ms", "incarnation", "security", "discovery",
    "slots", "running", "queued", "load", "speed", "members_alive", "members_suspect",
    "members_dead", "members_left", "msgs_in", "msgs_out", "bytes_in", "bytes_out",
    "dropped", NULL
};
static const char *s_status_tail [] = {
    "dropped_rejected", "refused", "refused_auth", "refused_protocol", NULL
};

control_client_result_t
control_client_request (const char *dir, const char *command, int timeout_ms,
                        zlist_t **records_p, char *err, size_t err_size)
{
    *records_p = NULL;
    err [0] = 0;
    //  Without a lock holder there is nobody to ask; checking first saves
    //  waiting out the timeout on a stale socket file.
    if (!datadir_locked (dir))
        return CONTROL_CLIENT_NO_NODE;
    zsock_t *sock = zsock_new (ZMQ_REQ);
    if (!sock) {
        snprintf (err, err_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        return CONTROL_CLIENT_FAILED;
    }
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, timeout_ms);
    zsock_set_rcvtimeo (sock, timeout_ms);
    char *path = datadir_path (dir, CONTROL_SOCKET_NAME);
    int rc = zsock_connect (sock, "ipc://%s", path);
    free (path);
    zmsg_t *reply = NULL;
    if (rc == 0 && zstr_send (sock, command) == 0)
        reply = zmsg_recv (sock);
    zsock_destroy (&sock);
    if (!reply)
        return CONTROL_CLIENT_NO_NODE;

    control_client_result_t result = CONTROL_CLIENT_OK;
    char *status = zmsg_popstr (reply);
    if (status && streq (status, CONTROL_OK)) {
        zlist_t *records = zlist_new ();
        zframe_t *frame;
        while ((frame = zmsg_pop (reply))) {
            zhash_t *record = zhash_unpack (frame);
            zframe_destroy (&frame);
            if (record)
                zlist_append (records, record);
        }
        *records_p = records;
    }
    else {
        char *message = zmsg_popstr (reply);
        snprintf (err, err_size, "the node answered: %s",
                  message? message: status? status: "nothing");
        free (message);
        result = CONTROL_CLIENT_FAILED;
    }
    free (status);
    zmsg_destroy (&reply);
    return result;
}

void
control_client_records_destroy (zlist_t **records_p)
{
    if (*records_p) {
        zhash_t *record;
        while ((record = (zhash_t *) zlist_pop (*records_p)))
            zhash_destroy (&record);
        zlist_destroy (records_p);
    }
}

void
control_client_json_string (FILE *out, const char *text)
{
    fputc ('"', out);
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf (out, "\\%c", *c);
        else
        if (*c == '\n')
            fputs ("\\n", out);
        else
        if (*c == '\t')
            fputs ("\\t", out);
        else
        if (*c < 0x20 || *c == 0x7f)
            fprintf (out, "\\u%04x", *c);
        else
            fputc (*c, out);
    }
    fputc ('"', out);
}

//  A JSON number: -?digits(.digits)?. Anything else a node sends for a
//  numeric field is quoted, so the output stays valid JSON.
static bool
s_is_number (const char *text)
{
    const char *c = text;
    if (*c == '-')
        c++;
    if (*c < '0' || *c > '9')
        return false;
    while (*c >= '0' && *c <= '9')
        c++;
    if (*c == '.') {
        c++;
        if (*c < '0' || *c > '9')
            return false;
        while (*c >= '0' && *c <= '9')
            c++;
    }
    return *c == 0;
}

static void
s_json_value (FILE *out, const char *field, const char *value)
{
    if (control_field_is_bool (field))
        fputs (streq (value, "true")? "true": "false", out);
    else
    if (!control_field_is_text (field) && s_is_number (value))
        fputs (value, out);
    else
        control_client_json_string (out, value);
}

static bool
s_in (const char *key, zlist_t *list)
{
    for (char *item = (char *) zlist_first (list); item; item = (char *) zlist_next (list))
        if (streq (item, key))
            return true;
    return false;
}

//  The output order of a record: `known` first (those present), then the
//  rest sorted.
static zlist_t *
s_order (zhash_t *record, zlist_t *known)
{
    zlist_t *order = zlist_new ();
    zlist_autofree (order);
    for (char *key = (char *) zlist_first (known); key; key = (char *) zlist_next (known))
        if (zhash_lookup (record, key))
            zlist_append (order, key);
    zlist_t *keys = zhash_keys (record);
    zlist_sort (keys, (zlist_compare_fn *) strcmp);
    for (char *key = (char *) zlist_first (keys); key; key = (char *) zlist_next (keys))
        if (!s_in (key, known))
            zlist_append (order, key);
    zlist_destroy (&keys);
    return order;
}

static zlist_t *
s_known (const char **head, bool with_drops, const char **tail)
{
    zlist_t *known = zlist_new ();
    zlist_autofree (known);
    for (int i = 0; head [i]; i++)
        zlist_append (known, (void *) head [i]);
    if (with_drops)
        for (int error = WIRE_OK + 1; error < WIRE_ERROR_COUNT; error++) {
            char key [64];
            snprintf (key, sizeof key, "dropped_%s", wire_error_name ((wire_error_t) error));
            zlist_append (known, key);
        }
    for (int i = 0; tail && tail [i]; i++)
        zlist_append (known, (void *) tail [i]);
    return known;
}

static void
s_json_object (FILE *out, zhash_t *record, zlist_t *known, const char *indent)
{
    zlist_t *order = s_order (record, known);
    fputs ("{", out);
    const char *separator = "\n";
    for (char *key = (char *) zlist_first (order); key; key = (char *) zlist_next (order)) {
        fprintf (out, "%s%s  ", separator, indent);
        control_client_json_string (out, key);
        fputs (": ", out);
        s_json_value (out, key, (const char *) zhash_lookup (record, key));
        separator = ",\n";
    }
    fprintf (out, "\n%s}", indent);
    zlist_destroy (&order);
}

//  Records as a JSON array of objects, `fields` first in each.
static void
s_json_array (FILE *out, zlist_t *records, const char **fields)
{
    zlist_t *known = s_known (fields, false, NULL);
    fputs ("[", out);
    const char *separator = "\n  ";
    for (zhash_t *record = (zhash_t *) zlist_first (records); record;
         record = (zhash_t *) zlist_next (records)) {
        fputs (separator, out);
        s_json_object (out, record, known, "  ");
        separator = ",\n  ";
    }
    fputs (zlist_size (records)? "\n]\n": "]\n", out);
    zlist_destroy (&known);
}

static const char *
s_get (zhash_t *record, const char *key)
{
    const char *value = (const char *) zhash_lookup (record, key);
    return value? value: "";
}

//  Members sorted by name, then id, so the table reads the same on
//  every node.
static int
s_compare_members (void *a, void *b)
{
    int by_name = strcmp (s_get ((zhash_t *) a, "name"), s_get ((zhash_t *) b, "name"));
    return by_name? by_name: strcmp (s_get ((zhash_t *) a, "id"), s_get ((zhash_t *) b, "id"));
}

void
control_client_print_members (FILE *out, zlist_t *records, bool json)
{
    zlist_sort (records, s_compare_members);
    if (json) {
        s_json_array (out, records, s_member_fields);
        return;
    }
    //  Column widths from the data: names and addresses vary widely.
    enum { COLUMNS = 10 };
    static const char *headers [COLUMNS] = {
        "ID", "NAME", "ADDR", "STATE", "SLOTS", "RUN", "QUEUE", "LOAD", "SEEN", "VER"
    };
    static const char *fields [COLUMNS] = {
        "id", "name", "addr", "state", "slots", "running", "queued", "load", "last_seen_ms", "version"
    };
    size_t width [COLUMNS];
    for (int i = 0; i < COLUMNS; i++)
        width [i] = strlen (headers [i]);
    size_t rows = zlist_size (records);
    char (*cells) [COLUMNS][80] = calloc (rows + 1, sizeof *cells);
    assert (cells);
    size_t row = 0;
    for (zhash_t *record = (zhash_t *) zlist_first (records); record;
         record = (zhash_t *) zlist_next (records), row++)
        for (int i = 0; i < COLUMNS; i++) {
            const char *value = s_get (record, fields [i]);
            if (i == 0)
                snprintf (cells [row][i], sizeof cells [row][i], "%.*s", MESHCC_SHORT_ID_SIZE, value);
            else
            if (i == 8)
                snprintf (cells [row][i], sizeof cells [row][i], "%sms", value);
            else
                snprintf (cells [row][i], sizeof cells [row][i], "%s", value);
            if (strlen (cells [row][i]) > width [i])
                width [i] = strlen (cells [row][i]);
        }
    for (int i = 0; i < COLUMNS; i++)
        fprintf (out, i < 4? "%-*s%s": "%*s%s", (int) width [i], headers [i],
                 i == COLUMNS - 1? "\n": "  ");
    for (row = 0; row < rows; row++)
        for (int i = 0; i < COLUMNS; i++)
            fprintf (out, i < 4? "%-*s%s": "%*s%s", (int) width [i], cells [row][i],
                     i == COLUMNS - 1? "\n": "  ");
    free (cells);
}

void
control_client_print_toolchains (FILE *out, zlist_t *records, bool json)
{
    if (json) {
        s_json_array (out, records, s_toolchain_fields);
        return;
    }
    if (zlist_size (records) == 0) {
        fputs ("no toolchains yet (a node packages its compiler when it first sends a job)\n", out);
        return;
    }
    fprintf (out, "%-16s  %-32s  %-8s  %-18s  %8s  %-19s  %s\n",
             "HASH", "COMPILER", "VERSION", "TARGET", "SIZE", "LAST USED", "HOLDERS");
    for (zhash_t *record = (zhash_t *) zlist_first (records); record;
         record = (zhash_t *) zlist_next (records)) {
        char used [32] = "-";
        time_t when = (time_t) (strtoll (s_get (record, "last_used"), NULL, 10) / 1000);
        struct tm tm;
        if (when > 0 && localtime_r (&when, &tm))
            strftime (used, sizeof used, "%Y-%m-%d %H:%M:%S", &tm);
        double size = strtod (s_get (record, "size"), NULL) / (1024.0 * 1024.0);
        fprintf (out, "%-16.16s  %-32s  %-8s  %-18s  %6.1fMB  %-19s  %s\n",
                 s_get (record, "hash"), s_get (record, "compiler"), s_get (record, "compiler_version"),
                 s_get (record, "target"), size, used, s_get (record, "holders"));
    }
}

void
control_client_print_status (FILE *out, zhash_t *record, bool json)
{
    zlist_t *known = s_known (s_status_head, true, s_status_tail);
    if (json) {
        s_json_object (out, record, known, "");
        fputs ("\n", out);
    }
    else {
        zlist_t *order = s_order (record, known);
        for (char *key = (char *) zlist_first (order); key; key = (char *) zlist_next (order))
            fprintf (out, "%s: %s\n", key, s_get (record, key));
        zlist_destroy (&order);
    }
    zlist_destroy (&known);
}

//  STATS: the fields this client knows, in display order, with their
//  labels. Times (*_us) are mean microseconds per job and show as ms;
//  fallback_<reason> counters are listed under "fallbacks"; anything else
//  a node sends follows, sorted, under its own name.
static const char *s_stats_fields [][2] = {
    { "jobs_local",                 "jobs compiled locally" },
    { "jobs_remote",                "jobs sent to peers" },
    { "jobs_executed_for_peers",    "jobs executed for peers" },
    { "jobs_refused_for_peers",     "jobs refused for peers" },
    { "jobs_failed_for_peers",      "jobs failed for peers" },
    { "jobs_retried",               "jobs retried on another peer" },
    { "refusals_received",          "refusals received from peers" },
    { "jobs_queued",                "jobs that waited in the queue" },
    { "queued",                     "jobs queued now" },
    { "running_local",              "jobs running locally now" },
    { "running_for_peers",          "jobs running for peers now" },
    { "in_flight",                  "jobs at peers now" },
    { "fallbacks",                  "fallbacks (compiled by the wrapper)" },
    { "blobs_sent",                 "blobs sent" },
    { "blob_bytes_sent",            "blob bytes sent" },
    { "blobs_received",             "blobs received" },
    { "blob_bytes_received",        "blob bytes received" },
    { "hash_cache_hits",            "hash-cache hits" },
    { "hash_cache_misses",          "hash-cache misses" },
    { "mean_listing_us",            "mean time per job: listing" },
    { "mean_hashing_us",            "mean time per job: hashing" },
    { "mean_transfer_us",           "mean time per job: transfer" },
    { "mean_queue_us",              "mean time per job: queueing" },
    { "mean_setup_us",              "mean time per job: job root setup" },
    { "mean_compile_us",            "mean time per job: compiling" },
    { NULL, NULL }
};

static const char *
s_stats_label (const char *key)
{
    for (int i = 0; s_stats_fields [i][0]; i++)
        if (streq (key, s_stats_fields [i][0]))
            return s_stats_fields [i][1];
    return NULL;
}

//  NAME_us_total and NAME_count are the parts of mean_NAME_us: the table
//  shows only the mean (JSON keeps everything).
static bool
s_stats_is_mean_part (zhash_t *record, const char *key)
{
    size_t length = strlen (key);
    size_t suffix = length > 9 && streq (key + length - 9, "_us_total")? 9:
                    length > 6 && streq (key + length - 6, "_count")? 6: 0;
    if (!suffix)
        return false;
    char mean [128];
    snprintf (mean, sizeof mean, "mean_%.*s_us", (int) (length - suffix), key);
    return zhash_lookup (record, mean) != NULL;
}

static void
s_stats_line (FILE *out, const char *label, const char *key, const char *value)
{
    size_t length = strlen (key);
    if (length > 3 && streq (key + length - 3, "_us") && s_is_number (value))
        fprintf (out, "%-40s %12.1f ms\n", label, atof (value) / 1000.0);
    else
        fprintf (out, "%-40s %12s\n", label, value);
}

void
control_client_print_stats (FILE *out, zhash_t *record, bool json)
{
    zlist_t *known = zlist_new ();
    zlist_autofree (known);
    for (int i = 0; s_stats_fields [i][0]; i++) {
        zlist_append (known, (void *) s_stats_fields [i][0]);
        if (streq (s_stats_fields [i][0], "fallbacks")) {
            //  The reasons right after the total, sorted.
            zlist_t *keys = zhash_keys (record);
            zlist_sort (keys, (zlist_compare_fn *) strcmp);
            for (char *key = (char *) zlist_first (keys); key; key = (char *) zlist_next (keys))
                if (strncmp (key, "fallback_", 9) == 0)
                    zlist_append (known, key);
            zlist_destroy (&keys);
        }
    }
    if (json) {
        s_json_object (out, record, known, "");
        fputs ("\n", out);
    }
    else {
        zlist_t *order = s_order (record, known);
        for (char *key = (char *) zlist_first (order); key; key = (char *) zlist_next (order)) {
            if (s_stats_is_mean_part (record, key))
                continue;
            const char *label = s_stats_label (key);
            char reason [128];
            if (!label && strncmp (key, "fallback_", 9) == 0) {
                snprintf (reason, sizeof reason, "  %s", key + 9);
                label = reason;
            }
            s_stats_line (out, label? label: key, key, s_get (record, key));
        }
        zlist_destroy (&order);
    }
    zlist_destroy (&known);
}

void
control_client_test (bool verbose)
{
    if (verbose)
        printf (" * control_client: ");
    char *buffer = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buffer, &size);
    control_client_json_string (out, "a\"b\\c\n\x01");
    fclose (out);
    assert (streq (buffer, "\"a\\\"b\\\\c\\n\\u0001\""));
    free (buffer);

    zlist_t *records = zlist_new ();
    for (int i = 0; i < 2; i++) {
        zhash_t *record = zhash_new ();
        zhash_autofree (record);
        zhash_insert (record, "id", i? "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        zhash_insert (record, "name", i? "alpha": "we\"ird");
        zhash_insert (record, "addr", "127.0.0.1:7400");
        zhash_insert (record, "state", "alive");
        zhash_insert (record, "slots", "2");
        zhash_insert (record, "load", "0.42");
        zhash_insert (record, "last_seen_ms", "oops");
        zhash_insert (record, "self", i? "true": "false");
        zhash_insert (record, "future_field", "7");
        zlist_append (records, record);
    }
    out = open_memstream (&buffer, &size);
    control_client_print_members (out, records, true);
    fclose (out);
    //  Sorted by name; numbers bare, text quoted, booleans bare, a bad
    //  number quoted, unknown fields kept.
    assert (strstr (buffer, "\"name\": \"alpha\""));
    assert (strstr (buffer, "\"name\": \"we\\\"ird\""));
    assert (strstr (buffer, "alpha") < strstr (buffer, "we"));
    assert (strstr (buffer, "\"slots\": 2,"));
    assert (strstr (buffer, "\"load\": 0.42,"));
    assert (strstr (buffer, "\"self\": true"));
    assert (strstr (buffer, "\"last_seen_ms\": \"oops\""));
    assert (strstr (buffer, "\"future_field\": 7"));
    assert (buffer [0] == '[');
    free (buffer);

    out = open_memstream (&buffer, &size);
    control_client_print_members (out, records, false);
    fclose (out);
    assert (strncmp (buffer, "ID", 2) == 0);
    assert (strstr (buffer, "bbbbbbbb  alpha"));
    assert (!strstr (buffer, "bbbbbbbbb"));
    free (buffer);
    control_client_records_destroy (&records);
    assert (records == NULL);

    zhash_t *status = zhash_new ();
    zhash_autofree (status);
    zhash_insert (status, "refused", "3");
    zhash_insert (status, "id", "abc");
    zhash_insert (status, "dropped_truncated", "1");
    out = open_memstream (&buffer, &size);
    control_client_print_status (out, status, false);
    fclose (out);
    assert (streq (buffer, "id: abc\ndropped_truncated: 1\nrefused: 3\n"));
    free (buffer);
    zhash_destroy (&status);

    zhash_t *stats = zhash_new ();
    zhash_autofree (stats);
    zhash_insert (stats, "zz_new", "1");
    zhash_insert (stats, "fallback_peer_died", "2");
    zhash_insert (stats, "fallbacks", "2");
    zhash_insert (stats, "jobs_local", "5");
    zhash_insert (stats, "mean_compile_us", "12500");
    zhash_insert (stats, "compile_us_total", "25000");
    zhash_insert (stats, "compile_count", "2");
    out = open_memstream (&buffer, &size);
    control_client_print_stats (out, stats, false);
    fclose (out);
    assert (strstr (buffer, "jobs compiled locally") == buffer);
    assert (strstr (buffer, "fallbacks") < strstr (buffer, "  peer_died"));
    assert (strstr (buffer, "12.5 ms"));
    assert (strstr (buffer, "zz_new"));
    assert (!strstr (buffer, "compile_count"));
    free (buffer);
    out = open_memstream (&buffer, &size);
    control_client_print_stats (out, stats, true);
    fclose (out);
    assert (strstr (buffer, "\"jobs_local\": 5,"));
    assert (strstr (buffer, "\"fallback_peer_died\": 2,"));
    assert (strstr (buffer, "\"compile_count\": 2"));
    free (buffer);
    zhash_destroy (&stats);

    //  No node: answered at once from the lock, no waiting.
    char dir [] = "/tmp/control-client-test-XXXXXX";
    assert (mkdtemp (dir));
    char err [256];
    int64_t start = zclock_mono ();
    assert (control_client_request (dir, CONTROL_STATUS, 2000, &records, err, sizeof err)
            == CONTROL_CLIENT_NO_NODE);
    assert (zclock_mono () - start < 1000);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
