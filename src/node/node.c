//  node: the event loop of meshccd (see node.h for what it owns).
//
//  Sockets, and why each is shaped the way it is:
//    router    ROUTER on the listen address. Receives SYNs (and the ACK2s
//              that complete exchanges other nodes started) and answers
//              through the same routing id, so a peer needs no socket
//              back to us to complete an exchange.
//    links     one DEALER per remote endpoint we start exchanges with,
//              made when gossip first names it as a target. IMMEDIATE and
//              DONTWAIT: a message to a peer that is not connected is
//              dropped, never queued, because the next round sends a
//              fresher one anyway. ACKs come back on it, ACK2 goes out
//              on it.
//    zap       our ZAP handler (RFC 27): with a mesh key the ROUTER is a
//              CURVE server and only the mesh's own public key may
//              connect. czmq's zauth would do, but it is an actor with its
//              own allow/deny model; one comparison is all we need and it
//              lets us log and count each refusal here.
//    monitor   handshake failures on the ROUTER. A client without CURVE, or
//              with another mesh's key, fails before ZAP is ever asked, so
//              only the monitor sees it.
//    beacon    UDP discovery (optional). A beacon is only a hint: it makes
//              gossip try the endpoint once; only an authenticated gossip
//              exchange makes a member.
//    control   ROUTER on ipc://DIR/control.sock for the CLI (control.h).
//    compile   a plain Unix stream socket, DIR/compile.sock, for the
//              wrappers' jobs (control.h; intake.c): no ZeroMQ, so the
//              wrapper need not load it.
//
//  Every frame from the mesh is decoded by wire_decode_gossip; refusals
//  are counted by reason and dropped, never fatal: the mesh is an
//  untrusted input even with CURVE (a member may run another version).

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meshcc/control.h"
#include "meshcc/datadir.h"
#include "meshcc/gossip.h"
#include "meshcc/meshkey.h"
#include "meshcc/node.h"
#include "meshcc/node_log.h"
#include "meshcc/node_store.h"
#include "meshcc/sysinfo.h"
#include "meshcc/wire.h"
#include "meshcc/executor.h"
#include "meshcc/job_wire.h"
#include "meshcc/placement.h"
#include "node_private.h"

#define ZAP_ENDPOINT        "inproc://zeromq.zap.01"
#define ZAP_DOMAIN          "meshcc"
//  Beacon: "MCB", u8 proto, u16 port, fingerprint, node id.
#define BEACON_PREFIX       "MCB"
#define BEACON_PREFIX_SIZE  3
#define BEACON_SIZE         (BEACON_PREFIX_SIZE + 1 + 2 + MESHKEY_FINGERPRINT_SIZE + MESHCC_ID_SIZE)

static void
s_hex (const uint8_t *bytes, size_t size, char *text)
{
    for (size_t i = 0; i < size; i++)
        sprintf (text + 2 * i, "%02x", bytes [i]);
}

//  "IP:PORT" of an endpoint, for display.
static const char *
s_addr (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0? endpoint + 6: endpoint;
}


//  --------------------------------------------------------------------------
//  Mesh sockets

//  Options every mesh socket shares. With a key, `server` selects the
//  CURVE role: the ROUTER serves with the mesh cert; a DEALER presents the
//  same cert and expects the same key from the server.
static void
s_secure (node_t *self, zsock_t *sock, bool server)
{
    //  Job frames carry inputs and outputs; gossip frames are still held
    //  to WIRE_MAX_FRAME by their decoder.
    zsock_set_maxmsgsize (sock, JOB_WIRE_MAX_FRAME);
    zsock_set_linger (sock, 0);
    if (!self->cert)
        return;
    zcert_apply (self->cert, sock);
    if (server) {
        zsock_set_curve_server (sock, 1);
        zsock_set_zap_domain (sock, ZAP_DOMAIN);
    }
    else
        zsock_set_curve_serverkey (sock, zcert_public_txt (self->cert));
}

static void
s_link_free (link_t **link_p)
{
    if (*link_p) {
        zsock_destroy (&(*link_p)->sock);
        free (*link_p);
        *link_p = NULL;
    }
}

//  zhashx destructor: a link leaving the table is taken out of the loop
//  at once but freed only at the next tick: zloop may still hold it in
//  this iteration's list of ready readers (see s_tick).
static void
s_link_retire (void **item_p)
{
    link_t *link = (link_t *) *item_p;
    if (link) {
        zloop_reader_end (link->node->loop, link->sock);
        zlist_append (link->node->closing, link);
        *item_p = NULL;
    }
}

static void s_handle_frame (node_t *self, zmsg_t *msg, zframe_t *routing_id, link_t *link);

static int
s_link_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    link_t *link = (link_t *) arg;
    zmsg_t *msg = zmsg_recv (sock);
    if (msg) {
        link->last_used = zclock_mono ();
        s_handle_frame (link->node, msg, NULL, link);
        zmsg_destroy (&msg);
    }
    return 0;
}

link_t *
node_link (node_t *self, const char *endpoint)
{
    link_t *link = (link_t *) zhashx_lookup (self->links, endpoint);
    if (link)
        return link;
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    s_secure (self, sock, false);
    zsock_set_immediate (sock, 1);
    zsock_set_sndhwm (sock, MESH_SNDHWM);
    if (zsock_connect (sock, "%s", endpoint)) {
        log_warn ("cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    link = (link_t *) zmalloc (sizeof (link_t));
    link->node = self;
    link->sock = sock;
    snprintf (link->endpoint, sizeof link->endpoint, "%s", endpoint);
    link->last_used = zclock_mono ();
    zloop_reader (self->loop, sock, s_link_readable, link);
    zhashx_insert (self->links, endpoint, link);
    log_debug ("link to %s opened", endpoint);
    return link;
}

//  Sends one frame to the member `id` on our link to it (made on first
//  use). Returns 0, or -1 if the member is unknown, the link is not
//  connected yet or its queue is full.
int
node_send_to_member (node_t *self, const uint8_t id [MESHCC_ID_SIZE], const uint8_t *data,
                     size_t size)
{
    const gossip_member_t *member = gossip_lookup (self->gossip, id);
    link_t *link = member ? node_link (self, member->state.endpoint) : NULL;
    if (!link || node_send_raw (self, link->sock, NULL, data, size))
        return -1;
    link->last_used = zclock_mono ();
    return 0;
}

//  The live member other than us whose endpoint `link` reaches, or NULL.
const gossip_member_t *
node_link_member (node_t *self, const link_t *link)
{
    for (size_t i = 0; i < gossip_size (self->gossip); i++) {
        const gossip_member_t *member = gossip_member (self->gossip, i);
        if (!member->is_self && streq (member->state.endpoint, link->endpoint))
            return member;
    }
    return NULL;
}

//  A FETCH answered on a worker (node_answer_fetch).
typedef struct {
    node_t *node;
    zframe_t *routing_id;
    fetch_request_msg_t request;
    char     *path;
    node_fetch_answer_fn *answer;
    uint64_t *served;
    uint8_t  *frame;
    size_t    frame_size;
    bool      held;
} s_answer_task_t;

static void
s_answer_fn (worker_ctx_t *ctx, void *arg)
{
    s_answer_task_t *task = (s_answer_task_t *) arg;
    fetch_chunk_msg_t *chunk = task->answer (ctx, &task->request, task->path);
    task->held = chunk->status == FETCH_STATUS_OK;
    if (fetch_wire_encode_chunk (chunk, &task->frame, &task->frame_size))
        task->frame = NULL;
    fetch_chunk_msg_destroy (&chunk);
}

static void
s_answer_done (void *arg, bool cancelled)
{
    s_answer_task_t *task = (s_answer_task_t *) arg;
    if (!cancelled && task->frame
    &&  node_send_raw (task->node, task->node->router, task->routing_id, task->frame,
                       task->frame_size) == 0 && task->held)
        (*task->served)++;
    free (task->frame);
    free (task->path);
    zframe_destroy (&task->routing_id);
    free (task);
}

void
node_answer_fetch (node_t *self, zframe_t *routing_id, const fetch_request_msg_t *request,
                   const char *path, node_fetch_answer_fn *answer, uint64_t *served_p)
{
    s_answer_task_t *task = (s_answer_task_t *) zmalloc (sizeof (s_answer_task_t));
    task->node = self;
    task->routing_id = zframe_dup (routing_id);
    task->request = *request;
    task->path = path ? strdup (path) : NULL;
    task->answer = answer;
    task->served = served_p;
    worker_pool_submit (self->workers, s_answer_fn, s_answer_done, task);
}

//  Sends one frame without blocking. Returns 0, or -1 if it was dropped
//  (no connection yet, or the queue is full).
int
node_send_raw (node_t *self, zsock_t *sock, zframe_t *routing_id, const uint8_t *data, size_t size)
{
    void *handle = zsock_resolve (sock);
    if (routing_id
    &&  zmq_send (handle, zframe_data (routing_id), zframe_size (routing_id),
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (zmq_send (handle, data, size, ZMQ_DONTWAIT) < 0)
        return -1;
    self->msgs_out++;
    self->bytes_out += size;
    return 0;
}

static int
s_send_msg (node_t *self, zsock_t *sock, zframe_t *routing_id, const gossip_msg_t *msg)
{
    uint8_t *data;
    size_t size;
    if (wire_encode_gossip (msg, &data, &size)) {
        log_error ("cannot encode a gossip message (%zu digests, %zu states)",
                   msg->digest_count, msg->state_count);
        return -1;
    }
    int rc = node_send_raw (self, sock, routing_id, data, size);
    free (data);
    return rc;
}

//  One message from the mesh: exactly one non-empty frame after the
//  routing id (ROUTER) or alone (DEALER). Replies go back on the same
//  path it came from.
static void
s_handle_frame (node_t *self, zmsg_t *msg, zframe_t *routing_id, link_t *link)
{
    self->msgs_in++;
    zframe_t *frame = zmsg_first (msg);
    if (zmsg_size (msg) != 1 || zframe_size (frame) == 0) {
        self->bytes_in += zmsg_content_size (msg);
        self->dropped [WIRE_MALFORMED]++;
        log_debug ("dropped a message of %zu frames from %s",
                   zmsg_size (msg), link? link->endpoint: "a connected peer");
        return;
    }
    self->bytes_in += zframe_size (frame);
    //  Transfers of toolchains and blobs (issue 4): FETCH comes in on the
    //  ROUTER (we hold the object), CHUNK on the link to the holder we
    //  asked; the kind says which module owns it.
    int fetch_type = fetch_wire_type (zframe_data (frame), zframe_size (frame));
    if (fetch_type) {
        wire_error_t error = WIRE_OK;
        if (fetch_type == FETCH_WIRE_FETCH && routing_id) {
            fetch_request_msg_t *request = NULL;
            error = fetch_wire_decode_request (zframe_data (frame), zframe_size (frame), &request);
            if (error == WIRE_OK && request->kind == FETCH_KIND_BLOB)
                blob_fetch_on_fetch (self->blob_fetch, routing_id, request);
            else
            if (error == WIRE_OK)
                toolchains_on_fetch (self->toolchains, routing_id, request);
            fetch_request_msg_destroy (&request);
        }
        else
        if (fetch_type == FETCH_WIRE_CHUNK && link) {
            fetch_chunk_msg_t *chunk = NULL;
            error = fetch_wire_decode_chunk (zframe_data (frame), zframe_size (frame), &chunk);
            if (error == WIRE_OK && chunk->kind == FETCH_KIND_BLOB)
                blob_fetch_on_chunk (self->blob_fetch, link, chunk);
            else
            if (error == WIRE_OK)
                toolchains_on_chunk (self->toolchains, link, chunk);
            fetch_chunk_msg_destroy (&chunk);
        }
        else
            error = WIRE_BAD_TYPE;
        if (error != WIRE_OK) {
            if (error < WIRE_ERROR_COUNT)
                self->dropped [error]++;
            log_debug ("dropped a %zu-byte %s frame: %s", zframe_size (frame),
                       fetch_wire_type_name (fetch_type), wire_error_name (error));
        }
        return;
    }
    if (job_wire_is_job (zframe_data (frame), zframe_size (frame))) {
        job_msg_t *job_msg = NULL;
        wire_error_t error = job_wire_decode (zframe_data (frame), zframe_size (frame), &job_msg);
        if (error != WIRE_OK) {
            if (error < WIRE_ERROR_COUNT)
                self->dropped [error]++;
            log_debug ("dropped a %zu-byte job frame: %s", zframe_size (frame),
                       wire_error_name (error));
            return;
        }
        //  Jobs come in on the ROUTER (we run them); everything about our
        //  own jobs comes back on the link we sent them through.
        if (routing_id && job_msg->type == JOB_WIRE_JOB)
            serve_on_msg (self->serve, routing_id, job_msg);
        else
        if (routing_id && job_msg->type == JOB_WIRE_BLOBS)
            serve_on_msg (self->serve, routing_id, job_msg);
        else
        if (link && job_msg->type != JOB_WIRE_JOB && job_msg->type != JOB_WIRE_BLOBS)
            origin_on_msg (self->origin, link, job_msg);
        else {
            self->stats.unknown_job++;
            log_debug ("dropped a %s arriving on the wrong socket",
                       job_wire_type_name (job_msg->type));
        }
        job_msg_destroy (&job_msg);
        return;
    }
    gossip_msg_t *gossip_msg = NULL;
    wire_error_t error = wire_decode_gossip (zframe_data (frame), zframe_size (frame), &gossip_msg);
    if (error != WIRE_OK) {
        if (error < WIRE_ERROR_COUNT)
            self->dropped [error]++;
        log_debug ("dropped a %zu-byte frame: %s", zframe_size (frame), wire_error_name (error));
        return;
    }
    gossip_msg_t *reply = gossip_receive (self->gossip, gossip_msg, zclock_mono ());
    gossip_msg_destroy (&gossip_msg);
    if (reply) {
        if (link)
            s_send_msg (self, link->sock, NULL, reply);
        else
            s_send_msg (self, self->router, routing_id, reply);
        gossip_msg_destroy (&reply);
    }
}

static int
s_router_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    node_t *self = (node_t *) arg;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return 0;
    zframe_t *routing_id = zmsg_pop (msg);
    s_handle_frame (self, msg, routing_id, NULL);
    zframe_destroy (&routing_id);
    zmsg_destroy (&msg);
    return 0;
}


//  --------------------------------------------------------------------------
//  Authentication

//  Logs a refused connection: always at debug, at warn at most once per
//  NODE_REFUSAL_LOG_MS (see limits.h), saying how many were not shown.
static void
s_log_refusal (node_t *self, const char *format, ...)
{
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    int64_t now = zclock_mono ();
    if (self->refusal_logged && now - self->refusal_logged < NODE_REFUSAL_LOG_MS) {
        self->refusals_unlogged++;
        log_debug ("%s", text);
        return;
    }
    if (self->refusals_unlogged)
        log_warn ("%s (and %llu more refusals in the last %d s, see refused_* in 'meshcc status')",
                  text, (unsigned long long) self->refusals_unlogged,
                  (int) ((now - self->refusal_logged) / 1000));
    else
        log_warn ("%s", text);
    self->refusal_logged = now;
    self->refusals_unlogged = 0;
}

//  RFC 27: version, request id, domain, address, routing id, mechanism,
//  credentials... Reply: version, request id, status, text, user id,
//  metadata. Anything but CURVE with the mesh's public key is refused.
static int
s_zap_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    node_t *self = (node_t *) arg;
    zmsg_t *request = zmsg_recv (sock);
    if (!request)
        return 0;
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *identity = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);

    const char *status = "200", *text = "OK";
    if (!version || strcmp (version, "1.0") || !request_id) {
        status = "400";
        text = "bad ZAP request";
    }
    else
    if (!mechanism || strcmp (mechanism, "CURVE")) {
        status = "400";
        text = "mechanism not allowed";
    }
    else
    if (!key || zframe_size (key) != 32
    ||  sodium_memcmp (zframe_data (key), zcert_public_key (self->cert), 32) != 0) {
        status = "400";
        text = "not a member of this mesh";
    }
    if (*status != '2') {
        self->refused_auth++;
        s_log_refusal (self, "refused a connection from %s: %s (mechanism %s)",
                  address && *address? address: "an unknown address", text,
                  mechanism? mechanism: "none");
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_append (reply, &request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, "");
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, sock);

    free (version);
    free (domain);
    free (address);
    free (mechanism);
    zframe_destroy (&request_id);
    zframe_destroy (&identity);
    zframe_destroy (&key);
    zmsg_destroy (&request);
    return 0;
}

//  zmonitor: event name, value, endpoint. The endpoint is our own bound
//  address (libzmq reports the listener, not the peer), so these lines
//  say what failed, not who; ZAP refusals above carry the peer address.
static int
s_monitor_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    node_t *self = (node_t *) arg;
    zmsg_t *msg = zmsg_recv (sock);
    if (!msg)
        return 0;
    char *event = zmsg_popstr (msg);
    char *value = zmsg_popstr (msg);
    char *address = zmsg_popstr (msg);
    if (event && (streq (event, "HANDSHAKE_FAILED_PROTOCOL")
              ||  streq (event, "HANDSHAKE_FAILED_NO_DETAIL"))) {
        self->refused_protocol++;
        s_log_refusal (self, "refused a connection on %s: handshake failed (%s, code %s): "
                       "a peer without this mesh's key, or not a meshcc node",
                       address? address: "?", event + 17, value? value: "?");
    }
    else
    if (event && streq (event, "HANDSHAKE_FAILED_AUTH"))
        //  Always a ZAP refusal, already counted and logged with the
        //  peer's address by s_zap_readable.
        log_debug ("handshake failed (auth, status %s)", value? value: "?");
    free (event);
    free (value);
    free (address);
    zmsg_destroy (&msg);
    return 0;
}


//  --------------------------------------------------------------------------
//  Discovery

static void
s_beacon_payload (node_t *self, uint8_t payload [BEACON_SIZE])
{
    memcpy (payload, BEACON_PREFIX, BEACON_PREFIX_SIZE);
    payload [3] = MESHCC_PROTO_VERSION;
    payload [4] = (uint8_t) (self->advertise_port >> 8);
    payload [5] = (uint8_t) self->advertise_port;
    memcpy (payload + 6, self->fingerprint, MESHKEY_FINGERPRINT_SIZE);
    memcpy (payload + 6 + MESHKEY_FINGERPRINT_SIZE, self->id, MESHCC_ID_SIZE);
}

static int
s_beacon_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    node_t *self = (node_t *) arg;
    char *sender = zstr_recv (sock);
    zframe_t *frame = sender? zframe_recv (sock): NULL;
    if (frame && zframe_size (frame) == BEACON_SIZE) {
        const uint8_t *data = zframe_data (frame);
        uint16_t port = (uint16_t) (data [4] << 8 | data [5]);
        struct in_addr addr;
        if (memcmp (data, BEACON_PREFIX, BEACON_PREFIX_SIZE) == 0
        &&  data [3] == MESHCC_PROTO_VERSION
        &&  memcmp (data + 6, self->fingerprint, MESHKEY_FINGERPRINT_SIZE) == 0
        &&  memcmp (data + 6 + MESHKEY_FINGERPRINT_SIZE, self->id, MESHCC_ID_SIZE) != 0
        &&  port != 0 && inet_pton (AF_INET, sender, &addr) == 1) {
            char endpoint [MESHCC_ENDPOINT_MAX + 1];
            snprintf (endpoint, sizeof endpoint, "tcp://%s:%u", sender, port);
            log_debug ("beacon from %s", endpoint);
            gossip_add_hint (self->gossip, endpoint);
        }
    }
    zframe_destroy (&frame);
    free (sender);
    return 0;
}

static int
s_beacon_start (node_t *self)
{
    self->beacon = zactor_new (zbeacon, NULL);
    if (!self->beacon)
        return -1;
    zsock_send (self->beacon, "si", "CONFIGURE", (int) self->config->beacon_port);
    char *hostname = zstr_recv (self->beacon);
    if (!hostname || !*hostname) {
        free (hostname);
        zactor_destroy (&self->beacon);
        return -1;
    }
    uint8_t payload [BEACON_SIZE];
    s_beacon_payload (self, payload);
    zsock_send (self->beacon, "sbi", "PUBLISH", payload, (size_t) BEACON_SIZE,
                MESHCC_BEACON_INTERVAL_MS);
    zsock_send (self->beacon, "sb", "SUBSCRIBE", BEACON_PREFIX, (size_t) BEACON_PREFIX_SIZE);
    log_info ("discovery on: beaconing from %s on UDP port %u", hostname,
              self->config->beacon_port);
    free (hostname);
    zloop_reader (self->loop, (zsock_t *) self->beacon, s_beacon_readable, self);
    return 0;
}


//  --------------------------------------------------------------------------
//  Membership

static void
s_on_member (void *arg, const gossip_member_t *member, int old_status)
{
    node_t *self = (node_t *) arg;
    char id [MESHCC_ID_HEX_SIZE + 1];
    s_hex (member->state.id, MESHCC_ID_SIZE, id);
    id [MESHCC_SHORT_ID_SIZE] = 0;
    //  A newcomer is saved at the next tick rather than with the periodic
    //  save, so a node killed seconds after joining still finds the mesh.
    if (old_status < 0)
        self->peers_joined = true;
    //  Jobs at a member that died or left go elsewhere; handled at the
    //  next tick, since this handler must not call back into gossip.
    if ((member->status == PEER_DEAD || member->status == PEER_LEFT) && !member->is_self) {
        uint8_t *id = (uint8_t *) zmalloc (MESHCC_ID_SIZE);
        memcpy (id, member->state.id, MESHCC_ID_SIZE);
        zlist_append (self->lost_peers, id);
    }
    if (old_status < 0)
        log_info ("member %s (%s) %s joined as %s", member->state.name, id,
                  member->state.endpoint, peer_status_name (member->status));
    else
        log_info ("member %s (%s) %s %s -> %s", member->state.name, id, member->state.endpoint,
                  peer_status_name ((peer_status_t) old_status),
                  peer_status_name (member->status));
}

//  Remembers live members, so that a restart finds the mesh again.
static void
s_save_peers (node_t *self)
{
    size_t size = gossip_size (self->gossip);
    node_store_peer_t *peers = (node_store_peer_t *) zmalloc (size * sizeof *peers + 1);
    int64_t mono = zclock_mono (), wall = zclock_time ();
    size_t count = 0;
    for (size_t i = 0; i < size; i++) {
        const gossip_member_t *member = gossip_member (self->gossip, i);
        if (member->is_self || member->state.left
        ||  (member->status != PEER_ALIVE && member->status != PEER_SUSPECT))
            continue;
        node_store_peer_t *peer = &peers [count++];
        memcpy (peer->id, member->state.id, MESHCC_ID_SIZE);
        snprintf (peer->name, sizeof peer->name, "%s", member->state.name);
        snprintf (peer->endpoint, sizeof peer->endpoint, "%s", member->state.endpoint);
        peer->last_seen = wall - (mono - member->last_seen_ms);
    }
    if (count && node_store_save_peers (self->store, peers, count))
        log_warn ("cannot save peers: %s", node_store_error (self->store));
    free (peers);
    self->last_save = mono;
    self->peers_joined = false;
}

//  Retires DEALERs unused for MESH_IDLE_CLOSE_MS. Collected first, since
//  deleting from a zhashx while walking it is not allowed.
static void
s_close_idle_links (node_t *self, int64_t now)
{
    zlist_t *idle = zlist_new ();
    for (link_t *link = (link_t *) zhashx_first (self->links); link;
         link = (link_t *) zhashx_next (self->links))
        if (now - link->last_used >= MESH_IDLE_CLOSE_MS)
            zlist_append (idle, link->endpoint);
    for (char *endpoint = (char *) zlist_first (idle); endpoint;
         endpoint = (char *) zlist_next (idle)) {
        log_debug ("link to %s closed (idle)", endpoint);
        zhashx_delete (self->links, endpoint);
    }
    zlist_destroy (&idle);
}

//  The load we gossip. A node confined to a CPU cgroup with a quota (a
//  slice of a machine) reports the processes of its cgroup that want the
//  CPU and are not its own (a colleague's build, a busy loop), averaged
//  over NODE_LOAD_WINDOW_MS like the kernel's load average: the machine's
//  /proc/loadavg would count every other slice. Otherwise /proc/loadavg.
static void
s_read_load (node_t *self, int64_t now)
{
    uint32_t all, others;
    if (!self->share.dir [0]) {
        sysinfo_load_milli (&self->load_milli);
        return;
    }
    //  A cgroup's processes are read once per NODE_CGROUP_READ_MS, not
    //  every tick: a container may hold many.
    if (self->load_read && now - self->load_read < NODE_CGROUP_READ_MS)
        return;
    if (sysinfo_cgroup_runnable (self->share.dir, (int) getpid (), &all, &others)) {
        sysinfo_load_milli (&self->load_milli);
        return;
    }
    double elapsed = self->load_read? (double) (now - self->load_read): NODE_LOAD_WINDOW_MS;
    self->load_read = now;
    double keep = exp (-elapsed / NODE_LOAD_WINDOW_MS);
    self->cgroup_load = self->cgroup_load * keep + others * (1 - keep);
    self->load_milli = (uint32_t) (self->cgroup_load * 1000 + 0.5);
}

//  Whether a cgroup-confined node is saturated (saturation.h): the work it
//  has (make, libtool, the listings, a colleague's processes, the compiles
//  already in its slots) fills its quota, so one more local compile would
//  only split the same quota and be paid by the origin's work for every
//  remote job. Which counters say so, and the rules tried before, are in
//  saturation.h and docs/ARCHITECTURE.md.
static void
s_read_saturation (node_t *self, int64_t now)
{
    uint64_t periods, throttled, throttled_us;
    if (!self->share.dir [0]
    ||  sysinfo_cgroup_throttling (self->share.dir, &periods, &throttled, &throttled_us)) {
        self->saturation.saturated = false;
        return;
    }
    node_slot_taken (self);
    saturation_update (&self->saturation, now, periods, throttled, throttled_us, self->slots_peak,
                       self->share.quota_milli);
    self->slots_peak = self->local_running + self->serving;
}

void
node_slot_taken (node_t *self)
{
    uint32_t busy = self->local_running + self->serving;
    if (busy > self->slots_peak)
        self->slots_peak = busy;
}

static int
s_tick (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    node_t *self = (node_t *) arg;
    //  Links retired during the previous iteration: zloop has rebuilt its
    //  poll set since, so nothing refers to them any more.
    link_t *retired;
    while ((retired = (link_t *) zlist_pop (self->closing)))
        s_link_free (&retired);

    s_read_load (self, zclock_mono ());
    s_read_saturation (self, zclock_mono ());
    //  running: jobs executing here (ours in local slots and peers');
    //  queued: our jobs waiting for a slot anywhere.
    gossip_set_load (self->gossip, self->config->slots, self->local_running + self->serving,
                     (uint32_t) origin_queued (self->origin), self->load_milli, self->speed);
    int64_t now = zclock_mono ();
    uint8_t *lost;
    while ((lost = (uint8_t *) zlist_pop (self->lost_peers))) {
        origin_peer_lost (self->origin, lost);
        free (lost);
    }
    intake_tick (self, now);
    origin_tick (self->origin, now);
    serve_tick (self->serve, now);
    toolchains_tick (self->toolchains, now);
    blob_fetch_tick (self->blob_fetch, now);
    size_t count = gossip_tick (self->gossip, now, self->targets, GOSSIP_MAX_MEMBERS);
    if (count) {
        gossip_msg_t *syn = gossip_syn (self->gossip);
        uint8_t *data;
        size_t size;
        if (wire_encode_gossip (syn, &data, &size) == 0) {
            for (size_t i = 0; i < count; i++) {
                if (streq (self->targets [i], self->endpoint))
                    continue;       //  a seed that is ourselves
                link_t *link = node_link (self, self->targets [i]);
                if (!link)
                    continue;
                if (node_send_raw (self, link->sock, NULL, data, size) == 0)
                    link->last_used = now;
                else
                    log_debug ("SYN to %s dropped: not connected", self->targets [i]);
            }
            free (data);
        }
        else
            log_error ("cannot encode our SYN");
        gossip_msg_destroy (&syn);
    }
    s_close_idle_links (self, now);
    if (self->peers_joined || now - self->last_save >= NODE_PEERS_SAVE_MS)
        s_save_peers (self);
    return 0;
}


//  --------------------------------------------------------------------------
//  Control

static void
s_set (zhash_t *record, const char *key, const char *format, ...)
{
    char value [256];
    va_list args;
    va_start (args, format);
    vsnprintf (value, sizeof value, format, args);
    va_end (args);
    zhash_update (record, key, value);
}

static zhash_t *
s_member_record (node_t *self, const gossip_member_t *member, int64_t now)
{
    zhash_t *record = zhash_new ();
    zhash_autofree (record);
    const peer_state_t *state = &member->state;
    char id [MESHCC_ID_HEX_SIZE + 1];
    s_hex (state->id, MESHCC_ID_SIZE, id);
    s_set (record, "id", "%s", id);
    s_set (record, "name", "%s", state->name);
    s_set (record, "addr", "%s", s_addr (state->endpoint));
    s_set (record, "state", "%s", peer_status_name (member->status));
    s_set (record, "slots", "%u", state->slots);
    s_set (record, "running", "%u", state->running);
    s_set (record, "queued", "%u", state->queued);
    s_set (record, "load", "%.2f", state->load_milli / 1000.0);
    s_set (record, "last_seen_ms", "%lld",
           member->is_self? 0LL: (long long) (now - member->last_seen_ms));
    s_set (record, "version", "%u", state->proto);
    s_set (record, "incarnation", "%llu", (unsigned long long) state->incarnation);
    s_set (record, "heartbeat", "%llu", (unsigned long long) state->version);
    s_set (record, "speed", "%u", state->speed);
    s_set (record, "self", "%s", member->is_self? "true": "false");
    (void) self;
    return record;
}

zhash_t *
node_status (node_t *self)
{
    zhash_t *record = zhash_new ();
    zhash_autofree (record);
    const peer_state_t *state = gossip_self (self->gossip);
    s_set (record, "id", "%s", self->id_hex);
    s_set (record, "name", "%s", state->name);
    s_set (record, "addr", "%s", s_addr (self->endpoint));
    s_set (record, "dir", "%s", self->config->dir);
    s_set (record, "pid", "%ld", (long) getpid ());
    s_set (record, "uptime_ms", "%lld", (long long) (zclock_mono () - self->started));
    s_set (record, "incarnation", "%llu", (unsigned long long) self->incarnation);
    s_set (record, "security", "%s", node_config_security_name (self->config->security));
    s_set (record, "discovery", "%s", self->beacon? "on": "off");
    s_set (record, "slots", "%u", state->slots);
    s_set (record, "running", "%u", state->running);
    s_set (record, "queued", "%u", state->queued);
    if (self->share.quota_milli) {
        s_set (record, "cpu_quota", "%.3f", self->share.quota_milli / 1000.0);
        s_set (record, "cpu_saturated", "%s", self->saturation.saturated? "true": "false");
        s_set (record, "cpu_throttled", "%.2f", self->saturation.share);
    }
    s_set (record, "load", "%.2f", state->load_milli / 1000.0);
    s_set (record, "speed", "%u", state->speed);
    s_set (record, "members_alive", "%zu", gossip_count (self->gossip, PEER_ALIVE));
    s_set (record, "members_suspect", "%zu", gossip_count (self->gossip, PEER_SUSPECT));
    s_set (record, "members_dead", "%zu", gossip_count (self->gossip, PEER_DEAD));
    s_set (record, "members_left", "%zu", gossip_count (self->gossip, PEER_LEFT));
    s_set (record, "msgs_in", "%llu", (unsigned long long) self->msgs_in);
    s_set (record, "msgs_out", "%llu", (unsigned long long) self->msgs_out);
    s_set (record, "bytes_in", "%llu", (unsigned long long) self->bytes_in);
    s_set (record, "bytes_out", "%llu", (unsigned long long) self->bytes_out);
    uint64_t rejected = gossip_stats (self->gossip)->rejected;
    uint64_t dropped = rejected + self->stats.unknown_job;
    for (int error = WIRE_OK + 1; error < WIRE_ERROR_COUNT; error++) {
        char key [64];
        snprintf (key, sizeof key, "dropped_%s", wire_error_name ((wire_error_t) error));
        s_set (record, key, "%llu", (unsigned long long) self->dropped [error]);
        dropped += self->dropped [error];
    }
    s_set (record, "dropped", "%llu", (unsigned long long) dropped);
    s_set (record, "dropped_rejected", "%llu", (unsigned long long) rejected);
    s_set (record, "refused", "%llu",
           (unsigned long long) (self->refused_auth + self->refused_protocol));
    s_set (record, "refused_auth", "%llu", (unsigned long long) self->refused_auth);
    s_set (record, "refused_protocol", "%llu", (unsigned long long) self->refused_protocol);
    s_set (record, "dropped_unknown_job", "%llu", (unsigned long long) self->stats.unknown_job);
    if (self->executor_why)
        s_set (record, "executor", "unavailable: %s", self->executor_why);
    else
        s_set (record, "executor", "available");
    s_set (record, "running_local", "%u", self->local_running);
    s_set (record, "running_for_peers", "%u", self->serving);
    toolchains_status (self->toolchains, record);
    return record;
}

static void
s_append_record (zmsg_t *reply, zhash_t **record_p)
{
    zframe_t *frame = zhash_pack (*record_p);
    zmsg_append (reply, &frame);
    zhash_destroy (record_p);
}

//  A request from a REQ socket carries an empty delimiter after the
//  routing id; one from a DEALER may not. Either way the envelope is
//  echoed back as received.
static int
s_control_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    node_t *self = (node_t *) arg;
    zmsg_t *request = zmsg_recv (sock);
    if (!request)
        return 0;
    zmsg_t *reply = zmsg_new ();
    zframe_t *frame = zmsg_pop (request);
    zmsg_append (reply, &frame);
    frame = zmsg_first (request);
    if (frame && zframe_size (frame) == 0) {
        frame = zmsg_pop (request);
        zmsg_append (reply, &frame);
    }
    char *command = zmsg_popstr (request);
    if (command && streq (command, CONTROL_MEMBERS)) {
        zmsg_addstr (reply, CONTROL_OK);
        int64_t now = zclock_mono ();
        for (size_t i = 0; i < gossip_size (self->gossip); i++) {
            zhash_t *record = s_member_record (self, gossip_member (self->gossip, i), now);
            s_append_record (reply, &record);
        }
    }
    else
    if (command && streq (command, CONTROL_STATS)) {
        zmsg_addstr (reply, CONTROL_OK);
        zhash_t *record = zhash_new ();
        zhash_autofree (record);
        origin_stats (self->origin, record);
        toolchains_stats (self->toolchains, record);
        blob_fetch_stats (self->blob_fetch, record);
        s_append_record (reply, &record);
    }
    else
    if (command && streq (command, CONTROL_TOOLCHAINS)) {
        zmsg_addstr (reply, CONTROL_OK);
        zlist_t *records = toolchains_list (self->toolchains);
        zhash_t *record;
        while ((record = (zhash_t *) zlist_pop (records)))
            s_append_record (reply, &record);
        zlist_destroy (&records);
    }
    else
    if (command && streq (command, CONTROL_STATUS)) {
        zmsg_addstr (reply, CONTROL_OK);
        zhash_t *record = node_status (self);
        s_append_record (reply, &record);
    }
    else {
        zmsg_addstr (reply, CONTROL_ERROR);
        //  (Compiling is on the compile socket, not here: control.h.)
        zmsg_addstrf (reply, "unknown command '%s' (this node knows %s, %s, %s and %s)",
                      command? command: "", CONTROL_MEMBERS, CONTROL_STATUS, CONTROL_STATS,
                      CONTROL_TOOLCHAINS);
    }
    free (command);
    zmsg_destroy (&request);
    if (zmsg_send (&reply, sock))
        zmsg_destroy (&reply);
    return 0;
}


//  --------------------------------------------------------------------------
//  Life cycle

static void
s_seed (node_t *self)
{
    for (char *endpoint = (char *) zlist_first (self->config->joins); endpoint;
         endpoint = (char *) zlist_next (self->config->joins))
        if (!streq (endpoint, self->endpoint))
            gossip_add_seed (self->gossip, endpoint);
    node_store_peer_t peers [NODE_RESTART_SEEDS];
    size_t count = node_store_recent_peers (self->store, peers, NODE_RESTART_SEEDS);
    for (size_t i = 0; i < count; i++)
        if (*peers [i].endpoint && !streq (peers [i].endpoint, self->endpoint)
        &&  memcmp (peers [i].id, self->id, MESHCC_ID_SIZE) != 0) {
            gossip_add_seed (self->gossip, peers [i].endpoint);
            log_debug ("seed %s (%s, remembered)", peers [i].endpoint, peers [i].name);
        }
    if (count)
        log_info ("%zu remembered peer%s added as seeds", count, count == 1? "": "s");
}

//  --------------------------------------------------------------------------
//  Compiling

uint32_t
node_free_slots (node_t *self)
{
    uint32_t used = self->local_running + self->serving;
    return used >= self->config->slots? 0: self->config->slots - used;
}

int
node_send_job_msg (node_t *self, zsock_t *sock, zframe_t *routing_id, const job_msg_t *msg)
{
    uint8_t *data;
    size_t size;
    if (job_wire_encode (msg, &data, &size)) {
        log_error ("cannot encode a %s message", job_wire_type_name (msg->type));
        return -1;
    }
    int rc = node_send_raw (self, sock, routing_id, data, size);
    free (data);
    return rc;
}

static void
s_executor_limits (executor_limits_t *limits)
{
    limits->cpu_seconds = EXECUTOR_CPU_SECONDS;
    limits->memory_bytes = EXECUTOR_MEMORY_BYTES;
    limits->output_bytes = EXECUTOR_OUTPUT_BYTES;
    limits->wall_seconds = EXECUTOR_WALL_SECONDS;
}

//  The blob store (DIR/cache), the executor's work dir (DIR/work), the
//  worker threads, and whether this machine can run peers' jobs at all
//  (asked once here; a node without a sandbox still compiles its own
//  jobs and sends jobs to peers, it only refuses theirs).
static int
s_jobs_start (node_t *self, char *err, size_t err_size)
{
    worker_env_t env;
    memset (&env, 0, sizeof env);
    snprintf (env.cache_dir, sizeof env.cache_dir, "%s/cache", self->config->dir);
    snprintf (env.work_dir, sizeof env.work_dir, "%s/work", self->config->dir);
    env.cache_size = self->config->cache_size;
    s_executor_limits (&env.limits);
    if ((mkdir (env.cache_dir, 0700) && errno != EEXIST)
    ||  (mkdir (env.work_dir, 0700) && errno != EEXIST)) {
        snprintf (err, err_size, "cannot create %s or %s: %s", env.cache_dir, env.work_dir,
                  strerror (errno));
        return -1;
    }
    char why [512] = "";
    blob_store_t *store = blob_store_new (env.cache_dir, env.cache_size, why, sizeof why);
    if (!store) {
        snprintf (err, err_size, "cannot open the blob store in %s: %s", env.cache_dir, why);
        return -1;
    }
    executor_t *executor = executor_new (store, env.work_dir, &env.limits, why, sizeof why);
    const char *reason = NULL;
    if (!executor)
        self->executor_why = strdup (*why? why: "the executor cannot start");
    else
    if (!executor_available (executor, &reason))
        self->executor_why = strdup (reason? reason: "no sandbox");
    executor_destroy (&executor);
    blob_store_destroy (&store);
    if (self->executor_why)
        log_warn ("this node will not run jobs for peers: %s", self->executor_why);

    size_t threads = self->config->slots + NODE_WORKERS_EXTRA;
    if (threads > NODE_WORKERS_MAX)
        threads = NODE_WORKERS_MAX;
    self->workers = worker_pool_new (self->loop, threads, &env);
    self->origin = origin_new (self);
    self->serve = serve_new (self);
    self->toolchains = toolchains_new (self);
    self->blob_fetch = blob_fetch_new (self);
    randombytes_buf (&self->rng, sizeof self->rng);
    return 0;
}

node_t *
node_new (const node_config_t *config, zcert_t **cert_p, char *err, size_t err_size)
{
    node_t *self = (node_t *) zmalloc (sizeof (node_t));
    self->compile_fd = -1;
    self->config = config;
    self->cert = *cert_p;
    *cert_p = NULL;
    self->started = zclock_mono ();
    self->links = zhashx_new ();
    zhashx_set_destructor (self->links, s_link_retire);
    self->closing = zlist_new ();
    self->lost_peers = zlist_new ();
    self->targets = (endpoint_t *) zmalloc (GOSSIP_MAX_MEMBERS * sizeof (endpoint_t));

    char *path = datadir_path (config->dir, DATADIR_DB_NAME);
    self->store = node_store_new (path, err, err_size);
    free (path);
    if (!self->store)
        goto fail;
    if (node_store_node_id (self->store, self->id)) {
        snprintf (err, err_size, "cannot read or create the node id: %s",
                  node_store_error (self->store));
        goto fail;
    }
    s_hex (self->id, MESHCC_ID_SIZE, self->id_hex);
    //  Committed before we talk to anyone: a node restarted after a crash
    //  must outbid every state the mesh still holds for it.
    self->incarnation = node_store_next_incarnation (self->store);
    if (!self->incarnation) {
        snprintf (err, err_size, "cannot record this start in the database: %s",
                  node_store_error (self->store));
        goto fail;
    }
    snprintf (self->endpoint, sizeof self->endpoint, "tcp://%s", config->advertise);
    self->advertise_port = (uint16_t) atoi (strrchr (config->advertise, ':') + 1);
    if (self->cert)
        meshkey_fingerprint (self->cert, self->fingerprint);
    //  A slot's speed: one core's, times the share of a core the cgroup's
    //  quota leaves each slot (a quarter-core slice runs a compile at a
    //  quarter of the speed; the sample counts CPU time, not the quota's).
    self->speed = sysinfo_speed (NODE_SPEED_SAMPLE_MS);
    sysinfo_share (&self->share);
    if (self->share.quota_milli && config->slots
    &&  self->share.quota_milli < 1000 * config->slots)
        self->speed = (uint32_t) ((uint64_t) self->speed * self->share.quota_milli
                                  / (1000 * config->slots));
    if (self->speed == 0)
        self->speed = 1;
    s_read_load (self, zclock_mono ());

    peer_state_t state;
    memset (&state, 0, sizeof state);
    memcpy (state.id, self->id, MESHCC_ID_SIZE);
    state.incarnation = self->incarnation;
    snprintf (state.name, sizeof state.name, "%s", config->name);
    snprintf (state.endpoint, sizeof state.endpoint, "%s", self->endpoint);
    state.proto = MESHCC_PROTO_VERSION;
    state.slots = config->slots;
    state.load_milli = self->load_milli;
    state.speed = self->speed;
    uint64_t seed;
    randombytes_buf (&seed, sizeof seed);
    self->gossip = gossip_new (&state, NULL, seed, zclock_mono ());
    if (!self->gossip) {
        snprintf (err, err_size, "cannot start gossip");
        goto fail;
    }
    gossip_set_event_handler (self->gossip, s_on_member, self);
    s_seed (self);

    self->loop = zloop_new ();
    //  The ZAP handler must exist before the ROUTER binds, or libzmq
    //  accepts CURVE clients without asking anyone.
    if (self->cert) {
        self->zap = zsock_new (ZMQ_REP);
        if (!self->zap || zsock_bind (self->zap, ZAP_ENDPOINT)) {
            snprintf (err, err_size, "cannot start the authentication handler: %s",
                      zmq_strerror (zmq_errno ()));
            goto fail;
        }
        zloop_reader (self->loop, self->zap, s_zap_readable, self);
    }
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router) {
        snprintf (err, err_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        goto fail;
    }
    s_secure (self, self->router, true);
    self->monitor = zactor_new (zmonitor, self->router);
    zstr_sendx (self->monitor, "LISTEN", "HANDSHAKE_FAILED_NO_DETAIL",
                "HANDSHAKE_FAILED_PROTOCOL", "HANDSHAKE_FAILED_AUTH", NULL);
    zstr_send (self->monitor, "START");
    zsock_wait (self->monitor);
    zloop_reader (self->loop, (zsock_t *) self->monitor, s_monitor_readable, self);
    if (zsock_bind (self->router, "tcp://%s", config->listen) < 0) {
        snprintf (err, err_size, "cannot listen on %s: %s", config->listen,
                  zmq_strerror (zmq_errno ()));
        goto fail;
    }
    zloop_reader (self->loop, self->router, s_router_readable, self);

    //  The lock is ours (meshccd took it), so a socket file left by a node
    //  killed with -9 is stale and must go, or the bind would fail.
    self->control_path = datadir_path (config->dir, CONTROL_SOCKET_NAME);
    unlink (self->control_path);
    self->control = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (self->control, 0);
    if (zsock_bind (self->control, "ipc://%s", self->control_path) < 0) {
        snprintf (err, err_size, "cannot create the control socket %s: %s", self->control_path,
                  zmq_strerror (zmq_errno ()));
        goto fail;
    }
    zloop_reader (self->loop, self->control, s_control_readable, self);
    if (intake_start (self, err, err_size))
        goto fail;

    if (config->discovery && s_beacon_start (self))
        log_warn ("discovery off: no broadcast-capable interface for UDP port %u",
                  config->beacon_port);

    if (s_jobs_start (self, err, err_size))
        goto fail;
    zloop_timer (self->loop, GOSSIP_INTERVAL_MS, 0, s_tick, self);
    self->last_save = zclock_mono ();
    return self;

fail:
    node_destroy (&self);
    return NULL;
}

const char *
node_endpoint (node_t *self)
{
    return self->endpoint;
}

//  A one-shot timer that ends zloop_start (node_run_for).
static int
s_stop_loop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;
}

void
node_run_for (node_t *self, int duration_ms)
{
    zloop_timer (self->loop, (size_t) duration_ms, 1, s_stop_loop, NULL);
    zloop_start (self->loop);
}

//  Announces our departure: the final SYN carries our state marked left.
//  Links made now have had no time to connect, so sends that find no
//  connection are retried until MESH_LEAVE_LINGER_MS has passed; what is
//  queued by then gets the same time to reach the wire (ZMQ_LINGER).
static void
s_leave (node_t *self)
{
    size_t count = gossip_leave (self->gossip, self->targets, GOSSIP_MAX_MEMBERS);
    gossip_msg_t *syn = gossip_syn (self->gossip);
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = wire_encode_gossip (syn, &data, &size);
    gossip_msg_destroy (&syn);
    if (rc) {
        log_error ("cannot encode our leaving SYN");
        return;
    }
    bool *pending = (bool *) zmalloc (count + 1);
    size_t left = 0;
    for (size_t i = 0; i < count; i++)
        if (!streq (self->targets [i], self->endpoint)) {
            pending [i] = true;
            left++;
        }
    int64_t deadline = zclock_mono () + MESH_LEAVE_LINGER_MS;
    while (left) {
        for (size_t i = 0; i < count; i++) {
            if (!pending [i])
                continue;
            link_t *link = node_link (self, self->targets [i]);
            if (!link) {
                pending [i] = false;
                left--;
                continue;
            }
            zsock_set_linger (link->sock, MESH_LEAVE_LINGER_MS);
            if (node_send_raw (self, link->sock, NULL, data, size) == 0) {
                pending [i] = false;
                left--;
            }
        }
        if (!left || zclock_mono () >= deadline)
            break;
        zclock_sleep (NODE_LEAVE_RETRY_MS);
    }
    log_info ("left the mesh: told %zu of %zu live member%s", count - left, count,
              count == 1? "": "s");
    free (pending);
    free (data);
}

int
node_run (node_t *self)
{
    log_info ("node %s (%.8s) %s running: incarnation %llu, %u slot%s, speed %u, security %s",
              self->config->name, self->id_hex, self->endpoint,
              (unsigned long long) self->incarnation, self->config->slots,
              self->config->slots == 1? "": "s", self->speed,
              node_config_security_name (self->config->security));
    zloop_start (self->loop);
    log_info ("stopping");
    s_leave (self);
    s_save_peers (self);
    return 0;
}

void
node_destroy (node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    node_t *self = *self_p;
    //  Workers first (they hand running jobs back; a packaging gives up),
    //  then the jobs, which answer their wrappers on the compile socket,
    //  then that socket.
    toolchains_stop (self->toolchains);
    worker_pool_destroy (&self->workers);
    origin_destroy (&self->origin);
    blob_fetch_destroy (&self->blob_fetch);
    serve_destroy (&self->serve);
    toolchains_destroy (&self->toolchains);
    intake_destroy (self);
    free (self->executor_why);
    if (self->lost_peers) {
        uint8_t *lost;
        while ((lost = (uint8_t *) zlist_pop (self->lost_peers)))
            free (lost);
        zlist_destroy (&self->lost_peers);
    }
    //  Links first: their destructor needs the loop.
    zhashx_destroy (&self->links);
    link_t *link;
    while ((link = (link_t *) zlist_pop (self->closing)))
        s_link_free (&link);
    zlist_destroy (&self->closing);
    zactor_destroy (&self->beacon);
    zactor_destroy (&self->monitor);
    zsock_destroy (&self->router);
    zsock_destroy (&self->zap);
    zsock_destroy (&self->control);
    if (self->control_path && self->loop)
        unlink (self->control_path);
    zloop_destroy (&self->loop);
    gossip_destroy (&self->gossip);
    node_store_destroy (&self->store);
    zcert_destroy (&self->cert);
    free (self->control_path);
    free (self->targets);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Self-test: one node on loopback, driven by raw sockets playing peer and
//  CLI. Two nodes with CURVE cannot share a process (one ZAP handler per
//  context), so the multi-node checks live in the integration tests.

static char *
s_status_value (node_t *self, const char *key)
{
    zhash_t *status = node_status (self);
    char *value = strdup ((char *) zhash_lookup (status, key));
    zhash_destroy (&status);
    return value;
}

static uint64_t
s_status_number (node_t *self, const char *key)
{
    char *value = s_status_value (self, key);
    uint64_t number = strtoull (value, NULL, 10);
    free (value);
    return number;
}

void
node_test (bool verbose)
{
    if (verbose)
        printf (" * node: ");
    char dir [] = "/tmp/node-test-XXXXXX";
    assert (mkdtemp (dir));
    node_log_open (NULL, NODE_LOG_ERROR, true);
    //  A free port: bind to an ephemeral one and release it; another
    //  process may take it first, so try a few.
    node_config_t *config = NULL;
    node_t *node = NULL;
    zcert_t *cert = NULL;
    int port = 0;
    char err [512], note [256], value [64];
    for (int attempt = 0; attempt < 5 && !node; attempt++) {
        node_config_destroy (&config);
        zsock_t *probe = zsock_new (ZMQ_ROUTER);
        port = zsock_bind (probe, "tcp://127.0.0.1:*");
        assert (port > 0);
        zsock_destroy (&probe);
        config = node_config_new ();
        snprintf (value, sizeof value, "127.0.0.1:%d", port);
        assert (node_config_set (config, "listen", value, NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
        assert (node_config_set (config, "name", "testnode", NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
        config->dir = strdup (dir);
        assert (node_config_finish (config, false, err, sizeof err, note, sizeof note) == 0);
        node = node_new (config, &cert, err, sizeof err);
    }
    assert (node);
    char *text = s_status_value (node, "security");
    assert (streq (text, "loopback"));
    free (text);
    assert (s_status_number (node, "incarnation") == 1);

    //  A second node on the same port fails with a message, not a crash.
    zcert_t *none = NULL;
    node_config_t *other_config = node_config_new ();
    char other_dir [] = "/tmp/node-test-other-XXXXXX";
    assert (mkdtemp (other_dir));
    other_config->dir = strdup (other_dir);
    assert (node_config_set (other_config, "listen", value, NODE_CONFIG_CMDLINE, err, sizeof err) == 0);
    assert (node_config_finish (other_config, false, err, sizeof err, note, sizeof note) == 0);
    assert (node_new (other_config, &none, err, sizeof err) == NULL);
    assert (strstr (err, "cannot listen on"));
    node_config_destroy (&other_config);
    char cleanup [128];
    snprintf (cleanup, sizeof cleanup, "rm -rf '%s'", other_dir);
    assert (system (cleanup) == 0);

    //  Garbage, an empty frame and a two-frame message: counted, dropped.
    zsock_t *peer = zsock_new (ZMQ_DEALER);
    assert (zsock_connect (peer, "tcp://127.0.0.1:%d", port) == 0);
    zstr_send (peer, "not a meshcc frame");
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, NULL, 0);
    zmsg_send (&msg, peer);
    zstr_sendx (peer, "two", "frames", NULL);
    uint8_t truncated [] = { 'M', 'C' };
    zframe_t *frame = zframe_new (truncated, sizeof truncated);
    zframe_send (&frame, peer, 0);

    //  A real SYN from a fake peer gets an ACK and makes it a member.
    peer_state_t state;
    memset (&state, 0, sizeof state);
    randombytes_buf (state.id, MESHCC_ID_SIZE);
    state.incarnation = 1;
    strcpy (state.name, "fakepeer");
    strcpy (state.endpoint, "tcp://127.0.0.1:9");
    state.proto = MESHCC_PROTO_VERSION;
    state.slots = 2;
    gossip_t *fake = gossip_new (&state, NULL, 1, zclock_mono ());
    gossip_msg_t *syn = gossip_syn (fake);
    uint8_t *data;
    size_t size;
    assert (wire_encode_gossip (syn, &data, &size) == 0);
    gossip_msg_destroy (&syn);
    frame = zframe_new (data, size);
    zframe_send (&frame, peer, 0);
    free (data);

    node_run_for (node, 300);
    assert (s_status_number (node, "dropped_bad_magic") == 1);
    assert (s_status_number (node, "dropped_malformed") == 2);
    assert (s_status_number (node, "dropped_truncated") == 1);
    assert (s_status_number (node, "dropped") >= 4);
    assert (s_status_number (node, "members_alive") == 2);
    zsock_set_rcvtimeo (peer, 1000);
    frame = zframe_recv (peer);
    assert (frame);
    gossip_msg_t *ack = NULL;
    assert (wire_decode_gossip (zframe_data (frame), zframe_size (frame), &ack) == WIRE_OK);
    assert (ack->type == GOSSIP_ACK);
    gossip_msg_destroy (&ack);
    zframe_destroy (&frame);
    zsock_destroy (&peer);
    gossip_destroy (&fake);

    //  The control socket answers as control.h says.
    zsock_t *cli = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (cli, 1000);
    assert (zsock_connect (cli, "ipc://%s/%s", dir, CONTROL_SOCKET_NAME) == 0);
    zstr_send (cli, CONTROL_MEMBERS);
    node_run_for (node, 50);
    zmsg_t *reply = zmsg_recv (cli);
    assert (reply);
    char *status = zmsg_popstr (reply);
    assert (streq (status, CONTROL_OK));
    free (status);
    assert (zmsg_size (reply) == 2);
    bool found_self = false, found_peer = false;
    while ((frame = zmsg_pop (reply))) {
        zhash_t *record = zhash_unpack (frame);
        assert (record);
        const char *name = (const char *) zhash_lookup (record, "name");
        if (streq (name, "testnode")) {
            found_self = true;
            assert (streq ((char *) zhash_lookup (record, "self"), "true"));
            assert (streq ((char *) zhash_lookup (record, "last_seen_ms"), "0"));
        }
        if (streq (name, "fakepeer")) {
            found_peer = true;
            assert (streq ((char *) zhash_lookup (record, "addr"), "127.0.0.1:9"));
            assert (streq ((char *) zhash_lookup (record, "state"), "alive"));
        }
        assert (strlen ((char *) zhash_lookup (record, "id")) == MESHCC_ID_HEX_SIZE);
        zhash_destroy (&record);
        zframe_destroy (&frame);
    }
    assert (found_self && found_peer);
    zmsg_destroy (&reply);
    zstr_send (cli, "NONSENSE");
    node_run_for (node, 50);
    reply = zmsg_recv (cli);
    assert (reply);
    status = zmsg_popstr (reply);
    assert (streq (status, CONTROL_ERROR));
    free (status);
    zmsg_destroy (&reply);
    zsock_destroy (&cli);

    node_destroy (&node);
    assert (node == NULL);

    //  A restart keeps the id and bumps the incarnation.
    node = node_new (config, &cert, err, sizeof err);
    assert (node);
    assert (s_status_number (node, "incarnation") == 2);
    node_destroy (&node);
    node_config_destroy (&config);

    snprintf (cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    assert (system (cleanup) == 0);
    if (verbose)
        printf ("OK\n");
}
