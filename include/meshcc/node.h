//  node: one running meshccd. Owns the mesh sockets (a ROUTER on the
//  listen address, one DEALER per peer it talks to), the ZAP handler and
//  handshake monitor that keep other meshes out, the discovery beacon, the
//  control socket for the CLI, the gossip state machine and the node
//  store, all driven by one zloop. It does not parse options (node_config)
//  and does not own the data directory lock (meshccd takes it first).

#ifndef MESHCC_NODE_H_INCLUDED
#define MESHCC_NODE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "meshcc/node_config.h"

typedef struct _node_t node_t;

//  Opens the store (bumping the incarnation), measures the speed figure,
//  binds every socket and seeds gossip from --join and remembered peers.
//  `config` must be finished (node_config_finish) and outlive the node;
//  `cert_p` is the mesh key (taken over and set to NULL) or points to
//  NULL when there is none. Returns NULL with a one-line message in `err`
//  if anything cannot be set up (a busy port, say).
node_t *node_new (const node_config_t *config, zcert_t **cert_p, char *err, size_t err_size);

//  Runs until SIGINT/SIGTERM (zsys_interrupted), then leaves the mesh
//  gracefully: announces "left" to live members (waiting up to
//  MESH_LEAVE_LINGER_MS for it to go out) and saves the peers. Returns 0.
int node_run (node_t *self);

void node_destroy (node_t **self_p);

//  Used by tests: runs the loop for about `duration_ms`, without leaving.
void node_run_for (node_t *self, int duration_ms);
//  Used by tests: the endpoint of the mesh socket ("tcp://IP:PORT").
const char *node_endpoint (node_t *self);
//  Used by tests: fills a new zhash with the STATUS record (caller
//  destroys).
zhash_t *node_status (node_t *self);

void node_test (bool verbose);

#endif
