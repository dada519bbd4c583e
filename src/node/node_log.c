//  node_log: levelled log lines to the node's log file and, in the
//  foreground, to stderr. Each line is formatted whole and written with a
//  single write(2) on an O_APPEND descriptor, so lines from the node's
//  threads (czmq actors log through stderr) never interleave mid-line.

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "meshcc/limits.h"
#include "meshcc/node_log.h"

static int s_fd = -1;
static bool s_stderr = true;
static node_log_level_t s_level = NODE_LOG_INFO;

static const char *s_names [] = { "error", "warn", "info", "debug" };

int
node_log_parse_level (const char *text, node_log_level_t *level_p)
{
    for (int level = NODE_LOG_ERROR; level <= NODE_LOG_DEBUG; level++)
        if (strcmp (text, s_names [level]) == 0) {
            *level_p = (node_log_level_t) level;
            return 0;
        }
    return -1;
}

const char *
node_log_level_name (node_log_level_t level)
{
    return level <= NODE_LOG_DEBUG? s_names [level]: "?";
}

int
node_log_open (const char *path, node_log_level_t level, bool to_stderr)
{
    int fd = -1;
    if (path) {
        fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
    }
    node_log_close ();
    s_fd = fd;
    s_level = level;
    s_stderr = to_stderr;
    return 0;
}

int
node_log_fd (void)
{
    return s_fd;
}

void
node_log_set_stderr (bool to_stderr)
{
    s_stderr = to_stderr;
}

void
node_log_close (void)
{
    if (s_fd >= 0)
        close (s_fd);
    s_fd = -1;
}

bool
node_log_enabled (node_log_level_t level)
{
    return level <= s_level;
}

void
node_log (node_log_level_t level, const char *format, ...)
{
    if (!node_log_enabled (level))
        return;
    char line [NODE_LOG_LINE_MAX];
    struct timeval now;
    gettimeofday (&now, NULL);
    struct tm tm;
    localtime_r (&now.tv_sec, &tm);
    size_t size = strftime (line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    size += snprintf (line + size, sizeof line - size, ".%03ld %c ",
                      (long) now.tv_usec / 1000, "EWID" [level]);
    va_list args;
    va_start (args, format);
    int body = vsnprintf (line + size, sizeof line - size, format, args);
    va_end (args);
    //  vsnprintf reports the untruncated length; keep room for the newline.
    size = body < 0? size: size + (size_t) body;
    if (size > sizeof line - 2)
        size = sizeof line - 2;
    line [size++] = '\n';
    if (s_fd >= 0 && write (s_fd, line, size) < 0) {
        //  Nowhere better to report a failing log; keep running.
    }
    if (s_stderr && s_fd != STDERR_FILENO && write (STDERR_FILENO, line, size) < 0) {
    }
}

void
node_log_test (bool verbose)
{
    if (verbose)
        printf (" * node_log: ");
    node_log_level_t level;
    assert (node_log_parse_level ("debug", &level) == 0 && level == NODE_LOG_DEBUG);
    assert (node_log_parse_level ("warn", &level) == 0 && level == NODE_LOG_WARN);
    assert (node_log_parse_level ("verbose", &level) == -1);
    assert (strcmp (node_log_level_name (NODE_LOG_INFO), "info") == 0);

    char path [] = "/tmp/node-log-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    close (fd);
    assert (node_log_open (path, NODE_LOG_WARN, false) == 0);
    log_info ("hidden %d", 1);
    log_warn ("shown %d", 2);
    //  An overlong message is truncated to one line, not split.
    char big [NODE_LOG_LINE_MAX * 2];
    memset (big, 'x', sizeof big - 1);
    big [sizeof big - 1] = 0;
    log_error ("%s", big);
    node_log_close ();

    FILE *file = fopen (path, "r");
    assert (file);
    char buffer [NODE_LOG_LINE_MAX * 2];
    assert (fgets (buffer, sizeof buffer, file));
    assert (strstr (buffer, " W shown 2\n"));
    assert (fgets (buffer, sizeof buffer, file));
    assert (strlen (buffer) == NODE_LOG_LINE_MAX - 1);
    assert (buffer [strlen (buffer) - 1] == '\n');
    assert (!fgets (buffer, sizeof buffer, file));
    fclose (file);
    unlink (path);
    node_log_open (NULL, NODE_LOG_INFO, true);
    if (verbose)
        printf ("OK\n");
}
