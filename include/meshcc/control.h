//  control: the local protocol between the `meshcc` CLI and its node, over
//  the ipc socket in the data directory (CONTROL_SOCKET_NAME; the data
//  directory is mode 0700, so only its owner can connect). Owns the
//  command names and field names shared by both sides; no code beyond
//  that. One request, one reply:
//
//    request:  one frame, the command ("MEMBERS" or "STATUS")
//    reply:    "OK", then one frame per record, each a zhash_pack()ed map
//              of field name -> text value (MEMBERS: one per member,
//              STATUS: one); or "ERROR" and a message frame.
//
//  Values are text; control_field_is_text() says which fields are text in
//  JSON output (all others are numbers).

#ifndef MESHCC_CONTROL_H_INCLUDED
#define MESHCC_CONTROL_H_INCLUDED

#include <stdbool.h>
#include <string.h>

#define CONTROL_MEMBERS     "MEMBERS"
#define CONTROL_STATUS      "STATUS"
#define CONTROL_OK          "OK"
#define CONTROL_ERROR       "ERROR"

//  Member fields (MEMBERS), in display order:
//    id            32 hex digits
//    name          node name
//    addr          IP:PORT
//    state         alive | suspect | dead | left
//    slots running queued
//    load          1-minute load average, e.g. 0.42
//    last_seen_ms  ms since its heartbeat last advanced (0 for self)
//    version       protocol version
//    incarnation   start count of the node
//    heartbeat     its heartbeat version
//    speed         speed figure
//    self          true for this node
//
//  Status fields (STATUS): id name addr dir pid uptime_ms incarnation
//  security (curve | loopback | insecure) discovery (on | off) slots
//  running queued load speed members_alive members_suspect members_dead
//  members_left msgs_in msgs_out bytes_in bytes_out dropped
//  dropped_<wire_error_name> dropped_rejected refused refused_auth
//  refused_protocol

static inline bool
control_field_is_text (const char *field)
{
    static const char *text_fields [] = {
        "id", "name", "addr", "state", "dir", "security", "discovery", NULL
    };
    for (int i = 0; text_fields [i]; i++)
        if (strcmp (field, text_fields [i]) == 0)
            return true;
    return false;
}

//  "self" is a JSON boolean.
static inline bool
control_field_is_bool (const char *field)
{
    return strcmp (field, "self") == 0;
}

#endif
