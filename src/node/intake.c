//  intake: the node's end of the compile channel (control.h): a Unix stream
//  socket, DIR/compile.sock, one connection per wrapper job, polled in the
//  node's zloop. Owns the listening socket and the connections: reading
//  and checking requests, the LOCAL fast path (a local slot is held by the
//  connection itself, which the compiler keeps open), writing replies, and
//  closing. The jobs themselves are origin.c's.
//
//  A connection's life:
//    READING ─ whole request ─ slot free ──> LOCAL (slot busy) ─ EOF ─> closed
//       │                      │                                  (jobs_local++)
//       │                      └─ else ─> WAITING (an origin job) ─ reply ─>
//       │                                   WRITING ─ written ─> closed
//       └─ malformed ─> WRITING FALLBACK
//    EOF while WAITING cancels the job; EOF while READING or WRITING, or
//    COMPILE_IO_TIMEOUT_MS spent there, just closes.
//
//  A closed connection's struct is freed at the next tick, never in the
//  iteration that closed it: zloop may still call the handler with it (it
//  is marked dead, so the handler ignores it), even if a new connection
//  got the same descriptor number meanwhile.

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "meshcc/control.h"
#include "meshcc/datadir.h"
#include "meshcc/node_log.h"
#include "node_private.h"

typedef enum {
    CONN_READING,
    CONN_WAITING,                   //  an origin job will answer
    CONN_LOCAL,                     //  holds a local slot until EOF
    CONN_WRITING,
    CONN_DEAD
} conn_state_t;

struct _intake_conn_t {
    node_t   *node;
    uint64_t  id;
    char      key [24];
    int       fd;
    conn_state_t state;
    zmq_pollitem_t item;
    uint8_t   prefix [4];
    size_t    prefix_got;
    uint8_t  *in;                   //  the request body once its size is known
    size_t    in_size, in_got;
    uint8_t  *out;                  //  the reply being written
    size_t    out_size, out_done;
    uint64_t  job;                  //  the origin job while WAITING
    int64_t   since;                //  zclock_mono when the state began
    int64_t   local_start;          //  zclock_usecs when LOCAL was sent
};

static int s_conn_event (zloop_t *loop, zmq_pollitem_t *item, void *arg);

static void
s_conn_free (intake_conn_t **conn_p)
{
    intake_conn_t *conn = *conn_p;
    if (conn) {
        free (conn->in);
        free (conn->out);
        free (conn);
        *conn_p = NULL;
    }
}

static void
s_poll (intake_conn_t *conn, short events)
{
    node_t *node = conn->node;
    if (conn->item.events == events)
        return;
    if (conn->item.events)
        zloop_poller_end (node->loop, &conn->item);
    conn->item.events = events;
    if (zloop_poller (node->loop, &conn->item, s_conn_event, conn) == 0)
        zloop_poller_set_tolerant (node->loop, &conn->item);
}

static void
s_close (intake_conn_t *conn)
{
    node_t *node = conn->node;
    if (conn->state == CONN_DEAD)
        return;
    if (conn->item.events && node->loop)
        zloop_poller_end (node->loop, &conn->item);
    conn->item.events = 0;
    close (conn->fd);
    conn->fd = -1;
    conn->state = CONN_DEAD;
    free (conn->in);
    conn->in = NULL;
    free (conn->out);
    conn->out = NULL;
    zhashx_delete (node->conns, conn->key);
    zlist_append (node->conns_closing, conn);
}

//  Writes what it can of the reply; closes when all is written.
static void
s_flush (intake_conn_t *conn)
{
    while (conn->out_done < conn->out_size) {
        ssize_t sent = send (conn->fd, conn->out + conn->out_done,
                             conn->out_size - conn->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s_poll (conn, ZMQ_POLLIN | ZMQ_POLLOUT);
            return;
        }
        if (sent <= 0) {
            s_close (conn);
            return;
        }
        conn->out_done += (size_t) sent;
    }
    s_close (conn);
}

//  Starts writing a RESULT or FALLBACK; the connection closes after it.
static void
s_reply (intake_conn_t *conn, int count, const void *const data [], const size_t sizes [])
{
    size_t size = 0;
    uint8_t *message = control_message_new (count, data, sizes, &size);
    if (!message) {
        s_close (conn);
        return;
    }
    free (conn->out);
    conn->out = message;
    conn->out_size = size;
    conn->out_done = 0;
    conn->state = CONN_WRITING;
    conn->since = zclock_mono ();
    s_flush (conn);
}

static void
s_malformed (intake_conn_t *conn, const char *why)
{
    node_t *node = conn->node;
    node->stats.fallbacks++;
    node->stats.fallback [FALLBACK_ERROR]++;
    log_info ("compile request: fallback (error): malformed COMPILE request: %s", why);
    char text [256];
    snprintf (text, sizeof text, "malformed COMPILE request: %s", why);
    const void *data [2] = { CONTROL_FALLBACK, text };
    size_t sizes [2] = { strlen (CONTROL_FALLBACK), strlen (text) };
    s_reply (conn, 2, data, sizes);
}

//  Hands a local slot to the connection: LOCAL goes out (a dozen bytes
//  into an empty socket buffer, so one send) and the slot is busy until
//  EOF. False if it could not be sent (the connection is then closed).
static bool
s_give_slot (intake_conn_t *conn)
{
    node_t *node = conn->node;
    uint8_t message [8 + sizeof CONTROL_LOCAL - 1];
    control_put_u32 (message, 4 + sizeof CONTROL_LOCAL - 1);
    control_put_u32 (message + 4, sizeof CONTROL_LOCAL - 1);
    memcpy (message + 8, CONTROL_LOCAL, sizeof CONTROL_LOCAL - 1);
    ssize_t sent;
    do
        sent = send (conn->fd, message, sizeof message, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t) sizeof message) {
        s_close (conn);
        return false;
    }
    conn->state = CONN_LOCAL;
    conn->since = zclock_mono ();
    conn->local_start = zclock_usecs ();
    node->local_running++;
    node_slot_taken (node);
    return true;
}

//  A NUL-terminated, NUL-free text field of at least one byte.
static bool
s_text_ok (const control_field_t *field)
{
    return field->size > 0 && memchr (field->data, 0, field->size) == NULL;
}

static void
s_request (intake_conn_t *conn)
{
    node_t *node = conn->node;
    control_field_t fields [CONTROL_MAX_FIELDS];
    int count = control_fields_parse (conn->in, conn->in_size, fields, CONTROL_MAX_FIELDS);
    if (count != CONTROL_COMPILE_FIELDS || !control_field_is (&fields [0], CONTROL_COMPILE)) {
        s_malformed (conn, "not a COMPILE request of six fields");
        return;
    }
    const control_field_t *cwd = &fields [1], *argv = &fields [2], *envp = &fields [3],
                          *compiler = &fields [4], *mask = &fields [5];
    bool mask_ok = mask->size >= 1 && mask->size <= 4;
    unsigned mask_value = 0;
    for (size_t i = 0; mask_ok && i < mask->size; i++) {
        mask_ok = mask->data [i] >= '0' && mask->data [i] <= '7';
        mask_value = mask_value * 8 + (unsigned) (mask->data [i] - '0');
    }
    if (!s_text_ok (cwd) || cwd->data [0] != '/' || !s_text_ok (compiler)
    ||  compiler->data [0] != '/' || !mask_ok || mask_value > 0777
    ||  argv->size < 2 || argv->data [0] == 0 || argv->data [argv->size - 1] != 0
    ||  (envp->size && envp->data [envp->size - 1] != 0)) {
        s_malformed (conn, "bad cwd, argv, envp, compiler or umask");
        return;
    }
    free (conn->out);
    conn->out = NULL;
    if (node_free_slots (node) > 0 && !node->saturation.saturated
    &&  !origin_peer_first (node->origin)) {
        //  The fast path: no job, no listing, no fork here. The wrapper
        //  execs the compiler, which keeps this connection open. (A
        //  saturated node places the job like any other: peers first;
        //  so does a node with a quota while a peer as fast has room.)
        s_give_slot (conn);
        return;
    }
    conn->state = CONN_WAITING;
    conn->since = zclock_mono ();
    //  The origin may answer at once (node_compile_reply), or later.
    conn->job = origin_compile (node->origin, conn->id, (const char *) cwd->data, cwd->size,
                                argv->data, argv->size, envp->data, envp->size,
                                (const char *) compiler->data, compiler->size,
                                (mode_t) mask_value);
}

//  The slot a LOCAL connection held is free: its compiler has exited.
static void
s_local_ended (intake_conn_t *conn)
{
    node_t *node = conn->node;
    if (node->local_running)
        node->local_running--;
    node->stats.jobs_local++;
    node->stats.compile_us += (uint64_t) (zclock_usecs () - conn->local_start);
    node->stats.compile_n++;
}

static void
s_eof (intake_conn_t *conn)
{
    node_t *node = conn->node;
    conn_state_t state = conn->state;
    uint64_t job = conn->job;
    s_close (conn);
    if (state == CONN_WAITING && job)
        origin_cancel (node->origin, job);
    if (state == CONN_LOCAL) {
        s_local_ended (conn);
        origin_dispatch (node->origin);
    }
}

//  Reads the request; after it, only end of file (anything else sent is
//  read and dropped).
static void
s_readable (intake_conn_t *conn)
{
    while (conn->state == CONN_READING) {
        uint8_t *at;
        size_t want;
        if (conn->prefix_got < 4) {
            at = conn->prefix + conn->prefix_got;
            want = 4 - conn->prefix_got;
        }
        else {
            at = conn->in + conn->in_got;
            want = conn->in_size - conn->in_got;
        }
        ssize_t got = want? recv (conn->fd, at, want, MSG_DONTWAIT): 0;
        if (want && got < 0 && errno == EINTR)
            continue;
        if (want && got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (want && got <= 0) {
            s_eof (conn);
            return;
        }
        if (conn->prefix_got < 4) {
            conn->prefix_got += (size_t) got;
            if (conn->prefix_got == 4) {
                uint32_t size = control_get_u32 (conn->prefix);
                if (size > COMPILE_REQUEST_MAX) {
                    s_malformed (conn, "too large");
                    return;
                }
                conn->in_size = size;
                conn->in = (uint8_t *) zmalloc (size? size: 1);
            }
            continue;
        }
        conn->in_got += (size_t) got;
        if (conn->in_got == conn->in_size) {
            s_request (conn);
            return;
        }
    }
    if (conn->state == CONN_DEAD)
        return;
    uint8_t drop [512];
    while (true) {
        ssize_t got = recv (conn->fd, drop, sizeof drop, MSG_DONTWAIT);
        if (got > 0)
            continue;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        s_eof (conn);
        return;
    }
}

static int
s_conn_event (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    intake_conn_t *conn = (intake_conn_t *) arg;
    if (conn->state == CONN_DEAD)
        return 0;
    if ((item->revents & ZMQ_POLLOUT) && conn->state == CONN_WRITING)
        s_flush (conn);
    if (conn->state != CONN_DEAD && (item->revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
        s_readable (conn);
    return 0;
}

static int
s_listener_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    node_t *self = (node_t *) arg;
    //  A bounded batch: the loop has other sockets to serve.
    for (int i = 0; i < 64; i++) {
        int fd = accept4 (self->compile_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn ("compile socket: accept: %s", strerror (errno));
            return 0;
        }
        //  The directory is 0700 and the socket 0600; the credentials are
        //  checked anyway, cheaply.
        struct ucred cred;
        socklen_t length = sizeof cred;
        if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) || cred.uid != geteuid ()) {
            close (fd);
            continue;
        }
        if (zhashx_size (self->conns) >= COMPILE_CONN_MAX) {
            log_debug ("compile socket: %d connections open, one refused", COMPILE_CONN_MAX);
            close (fd);     //  its wrapper compiles locally
            continue;
        }
        intake_conn_t *conn = (intake_conn_t *) zmalloc (sizeof (intake_conn_t));
        conn->node = self;
        conn->id = ++self->next_conn;
        snprintf (conn->key, sizeof conn->key, "%llu", (unsigned long long) conn->id);
        conn->fd = fd;
        conn->state = CONN_READING;
        conn->since = zclock_mono ();
        conn->item.fd = fd;
        zhashx_insert (self->conns, conn->key, conn);
        s_poll (conn, ZMQ_POLLIN);
    }
    return 0;
}

//  --------------------------------------------------------------------------

int
intake_start (node_t *self, char *err, size_t err_size)
{
    self->conns = zhashx_new ();
    self->conns_closing = zlist_new ();
    self->compile_fd = -1;
    self->compile_path = datadir_path (self->config->dir, COMPILE_SOCKET_NAME);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (strlen (self->compile_path) >= sizeof address.sun_path) {
        snprintf (err, err_size, "the compile socket path %s is too long (at most %zu bytes)",
                  self->compile_path, sizeof address.sun_path - 1);
        return -1;
    }
    strcpy (address.sun_path, self->compile_path);
    //  The lock is ours: a socket file left by a node killed -9 is stale.
    unlink (self->compile_path);
    self->compile_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    //  Created 0600 (the umask is only for the bind: the mode a socket
    //  file gets is the only one a connecting process sees).
    mode_t mask = umask (0177);
    int rc = self->compile_fd < 0? -1
           : bind (self->compile_fd, (struct sockaddr *) &address, sizeof address);
    umask (mask);
    if (rc || chmod (self->compile_path, 0600) || listen (self->compile_fd, 128)) {
        snprintf (err, err_size, "cannot create the compile socket %s: %s", self->compile_path,
                  strerror (errno));
        return -1;
    }
    zmq_pollitem_t item = { NULL, self->compile_fd, ZMQ_POLLIN, 0 };
    if (zloop_poller (self->loop, &item, s_listener_readable, self)) {
        snprintf (err, err_size, "cannot poll the compile socket");
        return -1;
    }
    zloop_poller_set_tolerant (self->loop, &item);
    return 0;
}

void
intake_destroy (node_t *self)
{
    if (self->conns) {
        zlistx_t *open = zhashx_values (self->conns);
        for (intake_conn_t *conn = (intake_conn_t *) zlistx_first (open); conn;
             conn = (intake_conn_t *) zlistx_next (open)) {
            if (conn->state == CONN_LOCAL && self->local_running)
                self->local_running--;
            s_close (conn);
        }
        zlistx_destroy (&open);
        zhashx_destroy (&self->conns);
    }
    if (self->conns_closing) {
        intake_conn_t *conn;
        while ((conn = (intake_conn_t *) zlist_pop (self->conns_closing)))
            s_conn_free (&conn);
        zlist_destroy (&self->conns_closing);
    }
    if (self->compile_fd >= 0) {
        if (self->loop) {
            zmq_pollitem_t item = { NULL, self->compile_fd, ZMQ_POLLIN, 0 };
            zloop_poller_end (self->loop, &item);
        }
        close (self->compile_fd);
        self->compile_fd = -1;
        unlink (self->compile_path);
    }
    free (self->compile_path);
    self->compile_path = NULL;
}

void
intake_tick (node_t *self, int64_t now)
{
    intake_conn_t *conn;
    while ((conn = (intake_conn_t *) zlist_pop (self->conns_closing)))
        s_conn_free (&conn);
    zlist_t *stale = zlist_new ();
    for (conn = (intake_conn_t *) zhashx_first (self->conns); conn;
         conn = (intake_conn_t *) zhashx_next (self->conns))
        if ((conn->state == CONN_READING || conn->state == CONN_WRITING)
        &&  now - conn->since >= COMPILE_IO_TIMEOUT_MS)
            zlist_append (stale, conn);
    while ((conn = (intake_conn_t *) zlist_pop (stale))) {
        log_info ("compile socket: a wrapper took over %d s to %s; closed",
                  COMPILE_IO_TIMEOUT_MS / 1000,
                  conn->state == CONN_READING? "send its request": "read its reply");
        s_close (conn);
    }
    zlist_destroy (&stale);
}

static intake_conn_t *
s_waiting (node_t *self, uint64_t id)
{
    if (!id || !self->conns)
        return NULL;
    char key [24];
    snprintf (key, sizeof key, "%llu", (unsigned long long) id);
    intake_conn_t *conn = (intake_conn_t *) zhashx_lookup (self->conns, key);
    return conn && conn->state == CONN_WAITING? conn: NULL;
}

int
node_compile_reply (node_t *self, uint64_t conn_id, int count, const void *const data [],
                    const size_t sizes [])
{
    intake_conn_t *conn = s_waiting (self, conn_id);
    if (!conn)
        return -1;
    conn->job = 0;
    s_reply (conn, count, data, sizes);
    return 0;
}

bool
node_compile_local (node_t *self, uint64_t conn_id)
{
    intake_conn_t *conn = s_waiting (self, conn_id);
    if (!conn)
        return false;
    conn->job = 0;
    return s_give_slot (conn);
}
