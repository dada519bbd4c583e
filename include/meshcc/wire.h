//  wire: the byte format of every message between nodes. It owns framing
//  (magic, protocol version, type, flags), zstd compression of large
//  payloads, and the encoders and decoders of each message type. It checks
//  every length before it reads, bounds every count and size by limits.h,
//  and reports why a frame was refused. It never touches sockets or state:
//  callers hand it bytes and get values back (and count the refusals).
//
//  Frame layout (all integers big-endian):
//    0  'M' 'C'            magic
//    2  u8  version        MESHCC_PROTO_VERSION
//    3  u8  type           wire_type_t
//    4  u8  flags          bit 0: payload is zstd-compressed
//    5  payload            (compressed: u32 raw size, then one zstd frame)

#ifndef MESHCC_WIRE_H_INCLUDED
#define MESHCC_WIRE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "meshcc/gossip.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WIRE_HEADER_SIZE    5
#define WIRE_FLAG_ZSTD      0x01

typedef enum {
    WIRE_GOSSIP_SYN = 1,
    WIRE_GOSSIP_ACK = 2,
    WIRE_GOSSIP_ACK2 = 3
} wire_type_t;

//  Why a frame was refused; each has a counter in the node.
typedef enum {
    WIRE_OK = 0,
    WIRE_TRUNCATED,         //  shorter than its header or its own lengths say
    WIRE_OVERSIZED,         //  frame, payload or a count above its bound
    WIRE_BAD_MAGIC,         //  not a meshcc frame at all
    WIRE_BAD_VERSION,       //  another protocol version
    WIRE_BAD_TYPE,          //  unknown message type
    WIRE_MALFORMED,         //  lengths fine, content invalid (bad flags,
                            //  bad zstd, trailing bytes, bad string, ...)
    WIRE_ERROR_COUNT
} wire_error_t;

//  "ok", "truncated", "oversized", "bad_magic", "bad_version", "bad_type",
//  "malformed": used as counter names in `meshcc status`.
const char *wire_error_name (wire_error_t error);

//  Encodes a gossip message into a newly allocated buffer (compressed when
//  the payload reaches WIRE_COMPRESS_MIN). Returns 0 and sets *data_p
//  (caller frees with free()) and *size_p, or -1 if the message is out of
//  bounds (a count above its limit, a string without its terminator).
int wire_encode_gossip (const gossip_msg_t *msg, uint8_t **data_p, size_t *size_p);

//  Decodes one frame. On WIRE_OK sets *msg_p to a new message the caller
//  owns; otherwise leaves *msg_p NULL and allocates nothing.
wire_error_t wire_decode_gossip (const uint8_t *data, size_t size, gossip_msg_t **msg_p);

//  Inflates a compressed payload (u32 raw size, then exactly one zstd
//  frame declaring that content size), refusing a raw size above
//  `max_raw` before allocating. Shared by every decoder of meshcc frames.
//  On WIRE_OK sets *raw_p (caller frees) and *raw_size_p.
wire_error_t wire_decompress (const uint8_t *data, size_t size, size_t max_raw,
                              uint8_t **raw_p, size_t *raw_size_p);

//  Checks a frame's header (size against max_frame, magic, version, a type
//  from type_first to type_last, flags) and gives its payload, inflated
//  when compressed (at most max_payload bytes; *raw_p is then the buffer to
//  free, else NULL). The first half of every meshcc decoder.
wire_error_t wire_open_frame (const uint8_t *data, size_t size, size_t max_frame,
                              size_t max_payload, uint8_t type_first, uint8_t type_last,
                              uint8_t *type_p, const uint8_t **payload_p,
                              size_t *payload_size_p, uint8_t **raw_p);

void wire_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
