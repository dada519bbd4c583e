//  wire_reader: the bounds-checked cursor every meshcc decoder reads
//  through (wire.c for gossip, job_wire.c for jobs). Owns nothing but the
//  cursor: a read past the end fails with WIRE_TRUNCATED, the first error
//  sticks, and every later read returns zeros without touching memory, so
//  a decoder can read a whole structure and check the error once.

#ifndef MESHCC_WIRE_READER_H_INCLUDED
#define MESHCC_WIRE_READER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "meshcc/wire.h"

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    wire_error_t error;
} wire_reader_t;

//  Records `error` unless an earlier one is already recorded.
static inline void
wire_reader_fail (wire_reader_t *self, wire_error_t error)
{
    if (self->error == WIRE_OK)
        self->error = error;
}

static inline size_t
wire_reader_left (wire_reader_t *self)
{
    return self->size - self->pos;
}

//  True if `bytes` more can be read; otherwise fails with truncated.
static inline bool
wire_reader_need (wire_reader_t *self, size_t bytes)
{
    if (self->error != WIRE_OK)
        return false;
    if (bytes > wire_reader_left (self)) {
        wire_reader_fail (self, WIRE_TRUNCATED);
        return false;
    }
    return true;
}

//  A big-endian unsigned integer of `bytes` bytes (1 to 8).
static inline uint64_t
wire_reader_uint (wire_reader_t *self, size_t bytes)
{
    uint64_t value = 0;
    if (wire_reader_need (self, bytes)) {
        for (size_t index = 0; index < bytes; index++)
            value = (value << 8) | self->data [self->pos + index];
        self->pos += bytes;
    }
    return value;
}

static inline void
wire_reader_bytes (wire_reader_t *self, void *dest, size_t bytes)
{
    if (wire_reader_need (self, bytes)) {
        memcpy (dest, self->data + self->pos, bytes);
        self->pos += bytes;
    }
}

#endif
