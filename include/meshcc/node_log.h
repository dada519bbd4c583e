//  node_log: the running node's log, with levels (czmq 4.2.1's zsys_*
//  logging has no level filter). Owns the log file descriptor and the
//  line format; one log per process, so it is module state, not an object.
//  Used by meshccd after its options are checked; configuration errors
//  before that go through usage.h's die() instead.
//
//  Line format: "2024-11-25 09:40:01.123 I message" (E W I D).

#ifndef MESHCC_NODE_LOG_H_INCLUDED
#define MESHCC_NODE_LOG_H_INCLUDED

#include <stdbool.h>

typedef enum {
    NODE_LOG_ERROR = 0,
    NODE_LOG_WARN = 1,
    NODE_LOG_INFO = 2,
    NODE_LOG_DEBUG = 3
} node_log_level_t;

//  Parses "error", "warn", "info", "debug". Returns 0, or -1 if unknown.
int node_log_parse_level (const char *text, node_log_level_t *level_p);
const char *node_log_level_name (node_log_level_t level);

//  Opens `path` for appending (NULL: no file) and sets the level; with
//  `to_stderr` every line is also written to stderr. May be called again
//  (e.g. after daemonizing). Returns 0, or -1 with errno set.
int  node_log_open (const char *path, node_log_level_t level, bool to_stderr);
//  The log file's descriptor, or -1 (meshccd points stderr at it once
//  daemonized, so that library messages land in the log too).
int  node_log_fd (void);
void node_log_set_stderr (bool to_stderr);
void node_log_close (void);
bool node_log_enabled (node_log_level_t level);

void node_log (node_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#define log_error(...) node_log (NODE_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  node_log (NODE_LOG_WARN, __VA_ARGS__)
#define log_info(...)  node_log (NODE_LOG_INFO, __VA_ARGS__)
#define log_debug(...) node_log (NODE_LOG_DEBUG, __VA_ARGS__)

void node_log_test (bool verbose);

#endif
