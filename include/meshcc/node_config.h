//  node_config: meshccd's settings, from its command line and ZPL config
//  files (the same keys as the long options), with the defaults that
//  depend on each other (listen address on the mesh key, advertised
//  address on the listen address, discovery on both). Owns the values and
//  their validation; knows nothing of sockets. Error messages are one
//  line naming the key, the value and what is wrong.

#ifndef MESHCC_NODE_CONFIG_H_INCLUDED
#define MESHCC_NODE_CONFIG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "meshcc/limits.h"
#include "meshcc/node_log.h"

//  "255.255.255.255:65535"
#define NODE_ADDRESS_MAX    21

typedef enum {
    NODE_CONFIG_CMDLINE,            //  wins over a file
    NODE_CONFIG_FILE
} node_config_source_t;

typedef enum {
    NODE_SECURITY_CURVE,            //  mesh key: CURVE on every mesh socket
    NODE_SECURITY_LOOPBACK,         //  no key: plain, 127.0.0.0/8 only
    NODE_SECURITY_INSECURE          //  no key, --insecure: plain anywhere
} node_security_t;

typedef struct {
    char    *dir;                   //  absolute data directory (resolved)
    char    *config_file;           //  --config, or NULL
    char    *mesh_key;              //  --mesh-key, or NULL
    char     listen [NODE_ADDRESS_MAX + 1];     //  IP:PORT ("" = default)
    char     advertise [NODE_ADDRESS_MAX + 1];  //  IP:PORT ("" = default)
    zlist_t *joins;                 //  "tcp://IP:PORT" strings
    uint32_t slots;                 //  0 = compile nothing here (a laptop)
    bool     slots_set;             //  false: default to the online CPUs
    uint64_t cache_size;            //  bound of DIR/cache in bytes (--cache-size)
    uint64_t toolchain_cache_size;  //  bound of DIR/toolchains (--toolchain-cache-size)
    char     name [MESHCC_NAME_MAX + 1];        //  "" = default (hostname)
    bool     insecure;
    int      discovery;             //  -1 default, 0 off, 1 on
    uint16_t beacon_port;
    node_log_level_t log_level;
    bool     foreground;
    //  Filled by node_config_finish:
    node_security_t security;
    //  Which keys the command line set (a file may not override them).
    uint32_t cmdline_set;
} node_config_t;

node_config_t *node_config_new (void);
void           node_config_destroy (node_config_t **self_p);

//  Sets one option by its long name ("listen", "join", "mesh-key", ...).
//  `value` is NULL for flags given on the command line (--insecure,
//  --foreground); in a file they take true/false. A key the command line
//  already set is left alone when the source is a file (for "join", any
//  --join replaces every join of the file). Returns 0, or -1 with a
//  message in `err`.
int node_config_set (node_config_t *self, const char *key, const char *value,
                     node_config_source_t source, char *err, size_t err_size);

//  Reads a ZPL file of `key = value` lines at the top level. `allow_dir`
//  is false for DIR/meshccd.cfg (it cannot move itself). Returns 0, or -1
//  with a message (unreadable, malformed, unknown key, bad value).
int node_config_load (node_config_t *self, const char *path, bool allow_dir,
                      char *err, size_t err_size);

//  Applies the defaults that depend on other settings, given whether a
//  mesh key was found, and checks the combination (a non-loopback listen
//  address needs a key or --insecure). Returns 0, or -1 with a message.
//  `note` receives a warning for the log, or "" if none.
int node_config_finish (node_config_t *self, bool have_key,
                        char *err, size_t err_size, char *note, size_t note_size);

//  Parses "IPv4:PORT" (port 1-65535). Returns 0, or -1 with a message
//  naming `what` (e.g. "--listen").
int node_config_parse_address (const char *text, const char *what,
                               char ip [16], uint16_t *port_p, char *err, size_t err_size);

//  True for an address in 127.0.0.0/8.
bool node_config_is_loopback (const char *ip);

const char *node_config_security_name (node_security_t security);

void node_config_test (bool verbose);

#endif
