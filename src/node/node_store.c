//  node_store: identity and remembered peers in SQLite.
//
//  WAL mode because the node writes while nothing else should ever wait
//  for it, and because a node killed with -9 must reopen the database
//  cleanly (the WAL is replayed on the next open). synchronous=NORMAL:
//  in WAL mode a power loss may lose the last commits but never corrupts;
//  losing a peers refresh is harmless, and the incarnation is committed
//  with FULL sync (see node_store_next_incarnation).

#include <assert.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "meshcc/node_store.h"
#include "meshcc/schema.h"

struct _node_store_t {
    sqlite3 *db;
};

//  Each entry migrates the schema from version (index) to (index + 1).
//  Append, never edit: databases in the field have run the old ones.
static const char *const s_migrations [NODE_STORE_SCHEMA_VERSION] = {
    //  0 -> 1: identity and peers.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE peers (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "                    endpoint TEXT NOT NULL, last_seen INTEGER NOT NULL);"
    "CREATE INDEX peers_last_seen ON peers (last_seen);"
};

static int
s_exec (node_store_t *self, const char *sql)
{
    return sqlite3_exec (self->db, sql, NULL, NULL, NULL) == SQLITE_OK? 0: -1;
}

node_store_t *
node_store_new (const char *path, char *err, size_t err_size)
{
    node_store_t *self = (node_store_t *) calloc (1, sizeof (node_store_t));
    assert (self);
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
        != SQLITE_OK) {
        snprintf (err, err_size, "cannot open database %s: %s", path,
                  self->db? sqlite3_errmsg (self->db): "out of memory");
        goto fail;
    }
    //  Another process (a CLI reading peers, say) may hold a read lock for
    //  a moment; wait rather than fail.
    sqlite3_busy_timeout (self->db, 2000);
    if (s_exec (self, "PRAGMA journal_mode = WAL")
    ||  s_exec (self, "PRAGMA synchronous = NORMAL")) {
        snprintf (err, err_size, "cannot set up database %s: %s", path, sqlite3_errmsg (self->db));
        goto fail;
    }
    if (schema_migrate (self->db, path, s_migrations, NODE_STORE_SCHEMA_VERSION, err, err_size))
        goto fail;
    return self;

fail:
    node_store_destroy (&self);
    return NULL;
}

void
node_store_destroy (node_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        node_store_t *self = *self_p;
        sqlite3_close (self->db);
        free (self);
        *self_p = NULL;
    }
}

const char *
node_store_error (node_store_t *self)
{
    return sqlite3_errmsg (self->db);
}

static void
s_hex (const uint8_t *bytes, size_t size, char *text)
{
    for (size_t i = 0; i < size; i++)
        sprintf (text + 2 * i, "%02x", bytes [i]);
}

static int
s_unhex (const char *text, uint8_t *bytes, size_t size)
{
    if (!text || strlen (text) != size * 2)
        return -1;
    for (size_t i = 0; i < size; i++) {
        unsigned value;
        if (sscanf (text + 2 * i, "%2x", &value) != 1)
            return -1;
        bytes [i] = (uint8_t) value;
    }
    return 0;
}

//  Reads meta.value for `key` as text into `value`; returns 1 if found,
//  0 if not, -1 on error.
static int
s_meta_get (node_store_t *self, const char *key, char *value, size_t size)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "SELECT value FROM meta WHERE key = ?", -1, &stmt, NULL)
        != SQLITE_OK)
        return -1;
    sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    int found = rc == SQLITE_ROW? 1: rc == SQLITE_DONE? 0: -1;
    if (found == 1) {
        const char *text = (const char *) sqlite3_column_text (stmt, 0);
        snprintf (value, size, "%s", text? text: "");
    }
    sqlite3_finalize (stmt);
    return found;
}

static int
s_meta_set (node_store_t *self, const char *key, const char *value)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "INSERT INTO meta (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt) == SQLITE_DONE? 0: -1;
    sqlite3_finalize (stmt);
    return rc;
}

int
node_store_node_id (node_store_t *self, uint8_t id [MESHCC_ID_SIZE])
{
    char text [MESHCC_ID_HEX_SIZE + 8];
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return -1;
    int found = s_meta_get (self, "node_id", text, sizeof text);
    if (found == 1 && s_unhex (text, id, MESHCC_ID_SIZE) == 0)
        return s_exec (self, "COMMIT");
    if (found == 1) {
        //  A damaged id cannot be repaired; inventing a new one silently
        //  would make this node a stranger to its own mesh.
        s_exec (self, "ROLLBACK");
        return -1;
    }
    if (found < 0) {
        s_exec (self, "ROLLBACK");
        return -1;
    }
    randombytes_buf (id, MESHCC_ID_SIZE);
    s_hex (id, MESHCC_ID_SIZE, text);
    if (s_meta_set (self, "node_id", text) || s_exec (self, "COMMIT")) {
        s_exec (self, "ROLLBACK");
        return -1;
    }
    return 0;
}

uint64_t
node_store_next_incarnation (node_store_t *self)
{
    char text [32];
    //  FULL sync for this one commit: a restart after a power loss must
    //  never reuse an incarnation the mesh has already seen.
    if (s_exec (self, "PRAGMA synchronous = FULL") || s_exec (self, "BEGIN IMMEDIATE"))
        return 0;
    int found = s_meta_get (self, "incarnation", text, sizeof text);
    uint64_t incarnation = 0;
    if (found == 1)
        incarnation = strtoull (text, NULL, 10);
    incarnation++;
    snprintf (text, sizeof text, "%llu", (unsigned long long) incarnation);
    if (found < 0 || s_meta_set (self, "incarnation", text) || s_exec (self, "COMMIT")) {
        s_exec (self, "ROLLBACK");
        incarnation = 0;
    }
    s_exec (self, "PRAGMA synchronous = NORMAL");
    return incarnation;
}

int
node_store_save_peers (node_store_t *self, const node_store_peer_t *peers, size_t count)
{
    sqlite3_stmt *upsert = NULL, *prune = NULL;
    if (s_exec (self, "BEGIN IMMEDIATE"))
        return -1;
    if (sqlite3_prepare_v2 (self->db,
            "INSERT INTO peers (id, name, endpoint, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, endpoint = excluded.endpoint,"
            " last_seen = max (last_seen, excluded.last_seen)", -1, &upsert, NULL) != SQLITE_OK
    ||  sqlite3_prepare_v2 (self->db,
            "DELETE FROM peers WHERE id NOT IN"
            " (SELECT id FROM peers ORDER BY last_seen DESC LIMIT ?)", -1, &prune, NULL) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        char id [MESHCC_ID_HEX_SIZE + 1];
        s_hex (peers [i].id, MESHCC_ID_SIZE, id);
        sqlite3_reset (upsert);
        sqlite3_bind_text (upsert, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (upsert, 2, peers [i].name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text (upsert, 3, peers [i].endpoint, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (upsert, 4, peers [i].last_seen);
        if (sqlite3_step (upsert) != SQLITE_DONE)
            goto fail;
    }
    sqlite3_bind_int (prune, 1, NODE_PEERS_KEEP);
    if (sqlite3_step (prune) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize (upsert);
    sqlite3_finalize (prune);
    return s_exec (self, "COMMIT");

fail:
    sqlite3_finalize (upsert);
    sqlite3_finalize (prune);
    s_exec (self, "ROLLBACK");
    return -1;
}

size_t
node_store_recent_peers (node_store_t *self, node_store_peer_t *peers, size_t max)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2 (self->db, "SELECT id, name, endpoint, last_seen FROM peers "
                            "ORDER BY last_seen DESC LIMIT ?", -1, &stmt, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) max);
    size_t count = 0;
    while (count < max && sqlite3_step (stmt) == SQLITE_ROW) {
        node_store_peer_t *peer = &peers [count];
        memset (peer, 0, sizeof *peer);
        if (s_unhex ((const char *) sqlite3_column_text (stmt, 0), peer->id, MESHCC_ID_SIZE))
            continue;           //  not ours to fix; skip the row
        const char *name = (const char *) sqlite3_column_text (stmt, 1);
        const char *endpoint = (const char *) sqlite3_column_text (stmt, 2);
        snprintf (peer->name, sizeof peer->name, "%s", name? name: "");
        snprintf (peer->endpoint, sizeof peer->endpoint, "%s", endpoint? endpoint: "");
        peer->last_seen = sqlite3_column_int64 (stmt, 3);
        count++;
    }
    sqlite3_finalize (stmt);
    return count;
}

void
node_store_test (bool verbose)
{
    if (verbose)
        printf (" * node_store: ");
    char dir [] = "/tmp/node-store-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [64], err [256];
    snprintf (path, sizeof path, "%s/meshcc.db", dir);

    node_store_t *store = node_store_new (path, err, sizeof err);
    assert (store);
    uint8_t id [MESHCC_ID_SIZE], again [MESHCC_ID_SIZE], zero [MESHCC_ID_SIZE] = { 0 };
    assert (node_store_node_id (store, id) == 0);
    assert (memcmp (id, zero, sizeof id) != 0);
    assert (node_store_node_id (store, again) == 0);
    assert (memcmp (id, again, sizeof id) == 0);
    assert (node_store_next_incarnation (store) == 1);
    assert (node_store_next_incarnation (store) == 2);

    node_store_peer_t peers [NODE_PEERS_KEEP + 10];
    memset (peers, 0, sizeof peers);
    for (size_t i = 0; i < NODE_PEERS_KEEP + 10; i++) {
        peers [i].id [0] = (uint8_t) i;
        peers [i].id [1] = (uint8_t) (i >> 8);
        snprintf (peers [i].name, sizeof peers [i].name, "peer%zu", i);
        snprintf (peers [i].endpoint, sizeof peers [i].endpoint, "tcp://10.0.0.1:%zu", 7000 + i);
        peers [i].last_seen = 1000 + (int64_t) i;
    }
    assert (node_store_save_peers (store, peers, 3) == 0);
    node_store_peer_t recent [NODE_RESTART_SEEDS];
    assert (node_store_recent_peers (store, recent, NODE_RESTART_SEEDS) == 3);
    assert (strcmp (recent [0].name, "peer2") == 0);
    assert (memcmp (recent [0].id, peers [2].id, MESHCC_ID_SIZE) == 0);
    assert (recent [0].last_seen == 1002);
    //  An older sighting never moves last_seen back; a newer endpoint wins.
    peers [2].last_seen = 10;
    strcpy (peers [2].endpoint, "tcp://10.0.0.2:7002");
    assert (node_store_save_peers (store, &peers [2], 1) == 0);
    assert (node_store_recent_peers (store, recent, 1) == 1);
    assert (recent [0].last_seen == 1002);
    assert (strcmp (recent [0].endpoint, "tcp://10.0.0.2:7002") == 0);
    peers [2].last_seen = 1002;
    //  Pruned to NODE_PEERS_KEEP, the oldest going first.
    assert (node_store_save_peers (store, peers, NODE_PEERS_KEEP + 10) == 0);
    node_store_peer_t *all = (node_store_peer_t *) calloc (NODE_PEERS_KEEP + 10, sizeof *all);
    assert (node_store_recent_peers (store, all, NODE_PEERS_KEEP + 10) == NODE_PEERS_KEEP);
    assert (all [0].last_seen == 1000 + NODE_PEERS_KEEP + 9);
    assert (all [NODE_PEERS_KEEP - 1].last_seen == 1010);
    free (all);
    node_store_destroy (&store);
    assert (store == NULL);

    //  Reopened: same id, incarnation continues.
    store = node_store_new (path, err, sizeof err);
    assert (store);
    assert (node_store_node_id (store, again) == 0);
    assert (memcmp (id, again, sizeof id) == 0);
    assert (node_store_next_incarnation (store) == 3);
    node_store_destroy (&store);

    //  A database from a newer meshccd is refused, not misread.
    sqlite3 *db;
    assert (sqlite3_open (path, &db) == SQLITE_OK);
    assert (sqlite3_exec (db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (db);
    assert (node_store_new (path, err, sizeof err) == NULL);
    assert (strstr (err, "newer"));

    //  Not a database at all.
    char junk [64];
    snprintf (junk, sizeof junk, "%s/junk.db", dir);
    FILE *file = fopen (junk, "w");
    assert (file);
    fputs ("this is not a database, but it is long enough to have a header page.....\n", file);
    fclose (file);
    assert (node_store_new (junk, err, sizeof err) == NULL);

    char cleanup [128];
    snprintf (cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    assert (system (cleanup) == 0);
    if (verbose)
        printf ("OK\n");
}
