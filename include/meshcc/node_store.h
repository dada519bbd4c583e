//  node_store: the node's persistent state in SQLite (DIR/meshcc.db): its
//  identity (id, created once; incarnation, bumped on every start) and the
//  peers it has seen, so that a restarted node comes back as itself and
//  finds the mesh without --join. Owns the database connection and its
//  schema (versioned by PRAGMA user_version, migrated on open); knows
//  nothing about sockets or gossip.

#ifndef MESHCC_NODE_STORE_H_INCLUDED
#define MESHCC_NODE_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/limits.h"

//  Schema version this build writes; older databases are migrated up,
//  newer ones refused (a downgrade would misread them).
#define NODE_STORE_SCHEMA_VERSION   1

typedef struct _node_store_t node_store_t;

//  A remembered peer.
typedef struct {
    uint8_t id [MESHCC_ID_SIZE];
    char    name [MESHCC_NAME_MAX + 1];
    char    endpoint [MESHCC_ENDPOINT_MAX + 1];
    int64_t last_seen;              //  wall clock, ms since the epoch
} node_store_peer_t;

//  Opens (creating and migrating as needed) the database at `path`.
//  Returns NULL with a message in `err` on failure.
node_store_t *node_store_new (const char *path, char *err, size_t err_size);
void          node_store_destroy (node_store_t **self_p);

//  The node id: created from randombytes_buf on first use, then the same
//  for the life of the database.
int node_store_node_id (node_store_t *self, uint8_t id [MESHCC_ID_SIZE]);

//  Increments the stored incarnation, commits, and returns the new value
//  (1 on the first start), or 0 on error. Called on every start before
//  the node talks to anyone, so each run outbids the last.
uint64_t node_store_next_incarnation (node_store_t *self);

//  Inserts or updates `count` peers in one transaction, then prunes all
//  but the NODE_PEERS_KEEP most recently seen. Returns 0 or -1.
int node_store_save_peers (node_store_t *self, const node_store_peer_t *peers, size_t count);

//  Fills `peers` with up to `max` peers, most recently seen first.
//  Returns how many.
size_t node_store_recent_peers (node_store_t *self, node_store_peer_t *peers, size_t max);

//  The last error message of the database.
const char *node_store_error (node_store_t *self);

void node_store_test (bool verbose);

#endif
