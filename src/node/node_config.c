//  node_config: meshccd's settings and their validation (see the header).

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "meshcc/node_config.h"
#include "meshcc/sysinfo.h"

//  Every key a file may hold, also the long option names. The index is
//  the bit in cmdline_set.
static const char *s_keys [] = {
    "dir", "listen", "advertise", "join", "slots", "name", "mesh-key",
    "insecure", "discovery", "beacon-port", "log-level", "foreground", "cache-size",
    "toolchain-cache-size", NULL
};

static int
s_key_index (const char *key)
{
    for (int i = 0; s_keys [i]; i++)
        if (strcmp (key, s_keys [i]) == 0)
            return i;
    return -1;
}

node_config_t *
node_config_new (void)
{
    node_config_t *self = (node_config_t *) zmalloc (sizeof (node_config_t));
    self->joins = zlist_new ();
    zlist_autofree (self->joins);
    self->discovery = -1;
    self->beacon_port = MESHCC_DEFAULT_BEACON_PORT;
    self->log_level = NODE_LOG_INFO;
    self->cache_size = NODE_CACHE_SIZE_DEFAULT;
    self->toolchain_cache_size = NODE_TOOLCHAIN_CACHE_SIZE_DEFAULT;
    return self;
}

void
node_config_destroy (node_config_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        node_config_t *self = *self_p;
        free (self->dir);
        free (self->config_file);
        free (self->mesh_key);
        zlist_destroy (&self->joins);
        free (self);
        *self_p = NULL;
    }
}

bool
node_config_is_loopback (const char *ip)
{
    struct in_addr addr;
    return inet_pton (AF_INET, ip, &addr) == 1 && (ntohl (addr.s_addr) >> 24) == 127;
}

const char *
node_config_security_name (node_security_t security)
{
    return security == NODE_SECURITY_CURVE? "curve":
           security == NODE_SECURITY_LOOPBACK? "loopback": "insecure";
}

//  Strict unsigned decimal: digits only, no sign, no spaces, no overflow
//  (strtoul alone accepts " -1" and wraps it).
//  A number of bytes with an optional K, M or G (powers of 1024), at least
//  `min`, at most 2^50. Returns 0 or -1.
static int
s_parse_size (const char *value, uint64_t min, uint64_t *size_p)
{
    char *end = NULL;
    errno = 0;
    unsigned long long size = strtoull (value, &end, 10);
    unsigned long long unit = 1;
    if (end && (*end == 'K' || *end == 'k'))
        unit = 1ULL << 10;
    else
    if (end && (*end == 'M' || *end == 'm'))
        unit = 1ULL << 20;
    else
    if (end && (*end == 'G' || *end == 'g'))
        unit = 1ULL << 30;
    if (unit > 1)
        end++;
    if (errno || end == value || !end || *end || *value == '-'
    ||  size > (1ULL << 50) / unit || size * unit < min)
        return -1;
    *size_p = size * unit;
    return 0;
}

static int
s_parse_uint (const char *text, unsigned long max, unsigned long *value_p)
{
    if (!text || !*text || strlen (text) > 10)
        return -1;
    for (const char *c = text; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    unsigned long value = strtoul (text, NULL, 10);
    if (value > max)
        return -1;
    *value_p = value;
    return 0;
}

int
node_config_parse_address (const char *text, const char *what,
                           char ip [16], uint16_t *port_p, char *err, size_t err_size)
{
    const char *colon = text? strrchr (text, ':'): NULL;
    if (!colon || colon == text || colon - text > 15) {
        snprintf (err, err_size, "%s: '%s' is not an IPv4:PORT address (e.g. 192.168.1.10:%d)",
                  what, text? text: "", MESHCC_DEFAULT_PORT);
        return -1;
    }
    char host [16];
    memcpy (host, text, colon - text);
    host [colon - text] = 0;
    struct in_addr addr;
    if (inet_pton (AF_INET, host, &addr) != 1) {
        snprintf (err, err_size, "%s: '%s' is not an IPv4 address (in '%s')", what, host, text);
        return -1;
    }
    unsigned long port;
    if (s_parse_uint (colon + 1, 65535, &port) || port == 0) {
        snprintf (err, err_size, "%s: port '%s' is not a number from 1 to 65535 (in '%s')",
                  what, colon + 1, text);
        return -1;
    }
    //  Normalized (inet_pton accepts only dotted quads, so this is the
    //  same text) and bounded for the caller.
    snprintf (ip, 16, "%s", host);
    *port_p = (uint16_t) port;
    return 0;
}

static int
s_parse_bool (const char *text, bool *value_p)
{
    if (!text || !strcmp (text, "true") || !strcmp (text, "yes") || !strcmp (text, "on")
    ||  !strcmp (text, "1"))
        *value_p = true;
    else
    if (!strcmp (text, "false") || !strcmp (text, "no") || !strcmp (text, "off")
    ||  !strcmp (text, "0"))
        *value_p = false;
    else
        return -1;
    return 0;
}

static int s_apply (node_config_t *self, const char *key, const char *value,
                    char *err, size_t err_size);

int
node_config_set (node_config_t *self, const char *key, const char *value,
                 node_config_source_t source, char *err, size_t err_size)
{
    int index = s_key_index (key);
    if (index < 0) {
        snprintf (err, err_size, "unknown setting '%s'", key);
        return -1;
    }
    uint32_t bit = 1u << index;
    if (source == NODE_CONFIG_FILE && (self->cmdline_set & bit))
        return 0;
    //  The first --join replaces what a file said; later ones add up.
    if (strcmp (key, "join") == 0 && source == NODE_CONFIG_CMDLINE && !(self->cmdline_set & bit))
        zlist_purge (self->joins);
    int rc = s_apply (self, key, value, err, err_size);
    if (rc == 0 && source == NODE_CONFIG_CMDLINE)
        self->cmdline_set |= bit;
    return rc;
}

static int
s_apply (node_config_t *self, const char *key, const char *value, char *err, size_t err_size)
{
    bool is_flag = !strcmp (key, "insecure") || !strcmp (key, "foreground");
    if (!value && !is_flag) {
        snprintf (err, err_size, "%s needs a value", key);
        return -1;
    }
    char ip [16];
    uint16_t port;
    unsigned long number;
    if (!strcmp (key, "dir")) {
        if (!*value) {
            snprintf (err, err_size, "dir: empty directory name");
            return -1;
        }
        free (self->dir);
        self->dir = strdup (value);
    }
    else
    if (!strcmp (key, "listen") || !strcmp (key, "advertise")) {
        if (node_config_parse_address (value, key, ip, &port, err, err_size))
            return -1;
        char *target = !strcmp (key, "listen")? self->listen: self->advertise;
        snprintf (target, NODE_ADDRESS_MAX + 1, "%s:%u", ip, port);
    }
    else
    if (!strcmp (key, "join")) {
        if (node_config_parse_address (value, key, ip, &port, err, err_size))
            return -1;
        char endpoint [MESHCC_ENDPOINT_MAX + 1];
        snprintf (endpoint, sizeof endpoint, "tcp://%s:%u", ip, port);
        zlist_append (self->joins, endpoint);
    }
    else
    if (!strcmp (key, "slots")) {
        //  A node offering more slots than this is a typo, not a machine.
        //  0 is a node that compiles nothing itself: every job goes to peers.
        if (s_parse_uint (value, 4096, &number)) {
            snprintf (err, err_size, "slots: '%s' is not a number from 0 to 4096", value);
            return -1;
        }
        self->slots = (uint32_t) number;
        self->slots_set = true;
    }
    else
    if (!strcmp (key, "cache-size")) {
        //  At least 16 MiB, so one job's inputs fit.
        if (s_parse_size (value, 16ULL << 20, &self->cache_size)) {
            snprintf (err, err_size, "cache-size: '%s' is not a size from 16M to 1048576G "
                      "(a number with an optional K, M or G)", value);
            return -1;
        }
    }
    else
    if (!strcmp (key, "toolchain-cache-size")) {
        //  Archives and their unpacked trees; the toolchain a job needs
        //  now is kept even beyond it, so any bound works (tests use 1M).
        if (s_parse_size (value, 1ULL << 20, &self->toolchain_cache_size)) {
            snprintf (err, err_size, "toolchain-cache-size: '%s' is not a size from 1M to "
                      "1048576G (a number with an optional K, M or G)", value);
            return -1;
        }
    }
    else
    if (!strcmp (key, "name")) {
        size_t length = strlen (value);
        if (length == 0 || length > MESHCC_NAME_MAX) {
            snprintf (err, err_size, "name: '%s' must be 1 to %d characters", value, MESHCC_NAME_MAX);
            return -1;
        }
        for (const char *c = value; *c; c++)
            if (*c <= ' ' || *c >= 127) {
                snprintf (err, err_size, "name: '%s' may hold only printable ASCII without spaces", value);
                return -1;
            }
        snprintf (self->name, sizeof self->name, "%s", value);
    }
    else
    if (!strcmp (key, "mesh-key")) {
        if (!*value) {
            snprintf (err, err_size, "mesh-key: empty file name");
            return -1;
        }
        free (self->mesh_key);
        self->mesh_key = strdup (value);
    }
    else
    if (!strcmp (key, "insecure") || !strcmp (key, "foreground")) {
        bool flag;
        if (s_parse_bool (value, &flag)) {
            snprintf (err, err_size, "%s: '%s' is not true or false", key, value);
            return -1;
        }
        if (!strcmp (key, "insecure"))
            self->insecure = flag;
        else
            self->foreground = flag;
    }
    else
    if (!strcmp (key, "discovery")) {
        if (!strcmp (value, "on"))
            self->discovery = 1;
        else
        if (!strcmp (value, "off"))
            self->discovery = 0;
        else {
            snprintf (err, err_size, "discovery: '%s' is not on or off", value);
            return -1;
        }
    }
    else
    if (!strcmp (key, "beacon-port")) {
        if (s_parse_uint (value, 65535, &number) || number == 0) {
            snprintf (err, err_size, "beacon-port: '%s' is not a number from 1 to 65535", value);
            return -1;
        }
        self->beacon_port = (uint16_t) number;
    }
    else
    if (!strcmp (key, "log-level")) {
        if (node_log_parse_level (value, &self->log_level)) {
            snprintf (err, err_size, "log-level: '%s' is not error, warn, info or debug", value);
            return -1;
        }
    }
    return 0;
}

//  A config file is a few lines; anything past this is not one.
#define CONFIG_FILE_MAX     (64 * 1024)

static char *
s_read_text (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = (char *) zmalloc (CONFIG_FILE_MAX + 1);
    size_t size = fread (text, 1, CONFIG_FILE_MAX, file);
    fclose (file);
    text [size] = 0;
    return text;
}

//  zconfig reports syntax errors only through czmq's log, which goes to
//  stdout before czmq is initialized (stderr after), so both are pointed
//  at a scratch file for the duration of the parse and the message is
//  taken from there, to be given in our own one line.
static zconfig_t *
s_load_capturing (const char *path, char *message, size_t size)
{
    message [0] = 0;
    FILE *scratch = tmpfile ();
    int saved_out = dup (STDOUT_FILENO);
    int saved_err = dup (STDERR_FILENO);
    bool capturing = scratch && saved_out >= 0 && saved_err >= 0;
    if (capturing) {
        fflush (stdout);
        fflush (stderr);
        dup2 (fileno (scratch), STDOUT_FILENO);
        dup2 (fileno (scratch), STDERR_FILENO);
    }
    //  zconfig_load leaks its zfile when the text is malformed (czmq
    //  4.2.1), so the file is read here and parsed from memory.
    zconfig_t *root = NULL;
    char *text = s_read_text (path);
    if (text)
        root = zconfig_str_load (text);
    free (text);
    if (capturing) {
        fflush (stdout);
        fflush (stderr);
        dup2 (saved_out, STDOUT_FILENO);
        dup2 (saved_err, STDERR_FILENO);
        char line [160] = "";
        rewind (scratch);
        if (fgets (line, sizeof line, scratch)) {
            line [strcspn (line, "\n")] = 0;
            //  "YY-MM-DD HH:MM:SS E (zconfig): (3) missing \"" -> "line 3: ..."
            const char *text = strstr (line, "(zconfig): ");
            text = text? text + strlen ("(zconfig): "): line;
            int line_number;
            int consumed = 0;
            if (sscanf (text, "(%d) %n", &line_number, &consumed) == 1 && consumed)
                snprintf (message, size, "line %d: %s", line_number, text + consumed);
            else
                snprintf (message, size, "%s", text);
        }
    }
    if (saved_out >= 0)
        close (saved_out);
    if (saved_err >= 0)
        close (saved_err);
    if (scratch)
        fclose (scratch);
    return root;
}

int
node_config_load (node_config_t *self, const char *path, bool allow_dir,
                  char *err, size_t err_size)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (err, err_size, "cannot read config file %s: %s", path, strerror (errno));
        return -1;
    }
    //  zconfig_load returns an empty tree for an empty file but NULL for
    //  a file with nothing but comments; both are fine.
    int first = fgetc (file);
    fclose (file);
    if (first == EOF)
        return 0;
    char message [256];
    zconfig_t *root = s_load_capturing (path, message, sizeof message);
    if (!root) {
        snprintf (err, err_size, "config file %s is malformed: %s", path,
                  *message? message: "not ZPL (expected lines of key = \"value\")");
        return -1;
    }
    int rc = 0;
    for (zconfig_t *item = zconfig_child (root); item && rc == 0; item = zconfig_next (item)) {
        const char *key = zconfig_name (item);
        const char *value = zconfig_value (item);
        char inner [200];
        if (zconfig_child (item)) {
            snprintf (err, err_size, "config file %s: '%s' has nested settings; "
                      "meshccd settings are flat key = \"value\" lines", path, key);
            rc = -1;
        }
        else
        if (s_key_index (key) < 0) {
            snprintf (err, err_size, "config file %s: unknown setting '%s'", path, key);
            rc = -1;
        }
        else
        if (!allow_dir && !strcmp (key, "dir")) {
            snprintf (err, err_size, "config file %s: 'dir' cannot be set in the data "
                      "directory's own config (use --dir or --config)", path);
            rc = -1;
        }
        else
        if (node_config_set (self, key, value && *value? value: NULL, NODE_CONFIG_FILE,
                             inner, sizeof inner)) {
            snprintf (err, err_size, "config file %s: %s", path, inner);
            rc = -1;
        }
    }
    zconfig_destroy (&root);
    return rc;
}

int
node_config_finish (node_config_t *self, bool have_key,
                    char *err, size_t err_size, char *note, size_t note_size)
{
    note [0] = 0;
    if (!*self->listen)
        snprintf (self->listen, sizeof self->listen, "%s:%d",
                  have_key? "0.0.0.0": "127.0.0.1", MESHCC_DEFAULT_PORT);
    char ip [16];
    uint16_t port;
    if (node_config_parse_address (self->listen, "listen", ip, &port, err, err_size))
        return -1;
    bool loopback = node_config_is_loopback (ip);

    if (have_key) {
        self->security = NODE_SECURITY_CURVE;
        if (self->insecure)
            snprintf (note, note_size, "--insecure ignored: a mesh key is in use, so CURVE is on");
        self->insecure = false;
    }
    else
    if (loopback)
        self->security = NODE_SECURITY_LOOPBACK;
    else
    if (self->insecure)
        self->security = NODE_SECURITY_INSECURE;
    else {
        snprintf (err, err_size, "refusing to listen on %s without a mesh key: make one with "
                  "'meshcc keygen %s/mesh.key' (every node needs the same file), "
                  "or pass --insecure to accept anyone on the network",
                  self->listen, self->dir? self->dir: "DIR");
        return -1;
    }

    if (!*self->advertise) {
        if (strcmp (ip, "0.0.0.0") == 0) {
            char first [16];
            if (sysinfo_first_ipv4 (first, sizeof first)) {
                snprintf (first, sizeof first, "127.0.0.1");
                snprintf (note, note_size, "no non-loopback IPv4 interface: advertising "
                          "127.0.0.1:%u; other machines will not reach this node (set --advertise)",
                          port);
            }
            snprintf (self->advertise, sizeof self->advertise, "%s:%u", first, port);
        }
        else
            snprintf (self->advertise, sizeof self->advertise, "%s", self->listen);
    }
    char advertise_ip [16];
    uint16_t advertise_port;
    if (node_config_parse_address (self->advertise, "advertise", advertise_ip,
                                   &advertise_port, err, err_size))
        return -1;
    if (strcmp (advertise_ip, "0.0.0.0") == 0) {
        snprintf (err, err_size, "advertise: 0.0.0.0 is not an address others can reach");
        return -1;
    }
    if (self->discovery < 0)
        self->discovery = loopback? 0: 1;
    if (!self->slots_set) {
        sysinfo_share_t share;
        sysinfo_share (&share);
        self->slots = share.slots;
    }
    if (!*self->name)
        sysinfo_hostname (self->name, sizeof self->name);
    return 0;
}

void
node_config_test (bool verbose)
{
    if (verbose)
        printf (" * node_config: ");
    char err [512], note [256], ip [16];
    uint16_t port;
    assert (node_config_parse_address ("127.0.0.1:7400", "x", ip, &port, err, sizeof err) == 0);
    assert (streq (ip, "127.0.0.1") && port == 7400);
    assert (node_config_parse_address ("127.0.0.1:0", "x", ip, &port, err, sizeof err) == -1);
    assert (node_config_parse_address ("127.0.0.1:65536", "x", ip, &port, err, sizeof err) == -1);
    assert (strstr (err, "65536"));
    assert (node_config_parse_address ("127.0.0.1:-1", "x", ip, &port, err, sizeof err) == -1);
    assert (node_config_parse_address ("127.0.0.1", "x", ip, &port, err, sizeof err) == -1);
    assert (node_config_parse_address ("300.0.0.1:1", "x", ip, &port, err, sizeof err) == -1);
    assert (node_config_parse_address ("host:1", "x", ip, &port, err, sizeof err) == -1);
    assert (node_config_parse_address (":1", "x", ip, &port, err, sizeof err) == -1);
    assert (node_config_is_loopback ("127.1.2.3"));
    assert (!node_config_is_loopback ("10.0.0.1"));

    node_config_t *config = node_config_new ();
    assert (node_config_set (config, "slots", "abc", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "slots", "4097", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "slots", "0", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (config->slots == 0 && config->slots_set);
    assert (node_config_set (config, "cache-size", "1G", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (config->cache_size == 1ULL << 30);
    assert (node_config_set (config, "cache-size", "1K", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "cache-size", "12X", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "cache-size", "2147483648", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (config->toolchain_cache_size == NODE_TOOLCHAIN_CACHE_SIZE_DEFAULT);
    assert (node_config_set (config, "toolchain-cache-size", "1M", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (config->toolchain_cache_size == 1ULL << 20);
    assert (node_config_set (config, "toolchain-cache-size", "10K", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "toolchain-cache-size", "-1G", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "slots", "4", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (node_config_set (config, "bogus", "4", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "discovery", "maybe", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "log-level", "loud", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "name", "has space", NODE_CONFIG_CMDLINE, err, sizeof err) == -1);
    assert (node_config_set (config, "join", "127.0.0.1:1", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (node_config_set (config, "insecure", NULL, NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (config->insecure);

    //  A file: the command line wins, unknown keys and bad values fail.
    char path [] = "/tmp/node-config-test-XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    const char *text = "# comment\nlisten = \"127.0.0.1:7401\"\nslots = 9\n"
                       "join = 127.0.0.1:2\nname = \"box\"\n";
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    close (fd);
    assert (node_config_load (config, path, true, err, sizeof err) == 0);
    assert (streq (config->listen, "127.0.0.1:7401"));
    assert (config->slots == 4);
    assert (zlist_size (config->joins) == 1);
    assert (streq ((char *) zlist_first (config->joins), "tcp://127.0.0.1:1"));
    assert (streq (config->name, "box"));

    FILE *file = fopen (path, "w");
    fputs ("colour = \"blue\"\n", file);
    fclose (file);
    assert (node_config_load (config, path, true, err, sizeof err) == -1);
    assert (strstr (err, "unknown setting 'colour'"));
    file = fopen (path, "w");
    fputs ("listen = \"127.0.0.1\n", file);
    fclose (file);
    assert (node_config_load (config, path, true, err, sizeof err) == -1);
    assert (strstr (err, "malformed"));
    file = fopen (path, "w");
    fputs ("beacon-port = 70000\n", file);
    fclose (file);
    assert (node_config_load (config, path, true, err, sizeof err) == -1);
    assert (strstr (err, "beacon-port"));
    file = fopen (path, "w");
    fputs ("dir = /tmp\n", file);
    fclose (file);
    assert (node_config_load (config, path, false, err, sizeof err) == -1);
    unlink (path);
    assert (node_config_load (config, path, true, err, sizeof err) == -1);
    assert (strstr (err, "cannot read"));

    //  Defaults that depend on the key.
    assert (node_config_finish (config, false, err, sizeof err, note, sizeof note) == 0);
    assert (config->security == NODE_SECURITY_LOOPBACK);
    assert (config->discovery == 0);
    assert (streq (config->advertise, "127.0.0.1:7401"));
    node_config_destroy (&config);

    config = node_config_new ();
    assert (node_config_set (config, "listen", "10.1.2.3:7400", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (node_config_finish (config, false, err, sizeof err, note, sizeof note) == -1);
    assert (strstr (err, "without a mesh key"));
    config->insecure = true;
    assert (node_config_finish (config, false, err, sizeof err, note, sizeof note) == 0);
    assert (config->security == NODE_SECURITY_INSECURE);
    assert (config->discovery == 1);
    node_config_destroy (&config);

    config = node_config_new ();
    assert (node_config_finish (config, true, err, sizeof err, note, sizeof note) == 0);
    assert (config->security == NODE_SECURITY_CURVE);
    assert (streq (config->listen, "0.0.0.0:7370"));
    assert (strncmp (config->advertise, "0.0.0.0", 7) != 0);
    assert (config->slots >= 1 && *config->name);
    node_config_destroy (&config);
    assert (config == NULL);
    if (verbose)
        printf ("OK\n");
}
