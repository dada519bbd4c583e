//  test_node_job_wire: the job codec (job_wire.c). Round trips of every
//  message type (plain and zstd), the encoder's refusals, and the decoder
//  against hostile input: every truncation, seeded mutations, random
//  frames, counts and lengths above their bounds, bad headers and flags.
//  Frames are decoded from heap buffers of exactly their size so ASan
//  catches any read past the end, and LSan any leak of a refused frame.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <czmq.h>
#include "meshcc/job_wire.h"
#include "meshcc/limits.h"

#define MUTATIONS       20000
#define RANDOM_FRAMES   20000

static uint64_t
s_rand (uint64_t *seed)
{
    uint64_t z = (*seed += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

//  Decodes a copy of exactly `size` bytes.
static wire_error_t
s_decode (const uint8_t *data, size_t size, job_msg_t **msg_p)
{
    uint8_t *copy = (uint8_t *) malloc (size? size: 1);
    if (size)
        memcpy (copy, data, size);
    wire_error_t error = job_wire_decode (copy, size, msg_p);
    free (copy);
    return error;
}

static char **
s_strings (int count, const char *prefix)
{
    char **strings = (char **) calloc ((size_t) count + 1, sizeof (char *));
    for (int i = 0; i < count; i++)
        if (asprintf (&strings [i], "%s%d", prefix, i) < 0)
            abort ();
    return strings;
}

static job_msg_t *
s_job (size_t entries, size_t blobs, size_t blob_size)
{
    job_msg_t *msg = job_msg_new (JOB_WIRE_JOB, 0x0102030405060708ULL);
    job_spec_t *spec = job_spec_new ();
    spec->argc = 5;
    spec->argv = s_strings (5, "-arg");
    spec->cwd = strdup ("/home/u/src");
    spec->envp = s_strings (2, "LANG=C");
    strcpy (spec->compiler.path, "/usr/bin/x86_64-linux-gnu-gcc-12");
    strcpy (spec->compiler.version, "12.2.0");
    strcpy (spec->compiler.target, "x86_64-linux-gnu");
    memset (spec->compiler.hash, 0xC0, BLOB_HASH_SIZE);
    spec->has_toolchain = entries % 2 == 1;
    memset (spec->toolchain, 0x7C, BLOB_HASH_SIZE);
    spec->toolchain_size = 27137316;
    spec->holder_count = 2;
    memset (spec->holders [0], 0xB1, MESHCC_ID_SIZE);
    memset (spec->holders [1], 0xB2, MESHCC_ID_SIZE);
    spec->entry_count = entries;
    spec->entries = (manifest_entry_t *) calloc (entries + 1, sizeof (manifest_entry_t));
    for (size_t i = 0; i < entries; i++) {
        manifest_entry_t *entry = &spec->entries [i];
        if (asprintf (&entry->path, "/usr/include/header-%zu.h", i) < 0)
            abort ();
        entry->kind = i % 3 == 0? MANIFEST_FILE: i % 3 == 1? MANIFEST_SYMLINK: MANIFEST_DIR;
        entry->mode = 0644;
        if (entry->kind == MANIFEST_FILE) {
            memset (entry->hash, (int) i, BLOB_HASH_SIZE);
            entry->size = 1000 + i;
        }
        if (entry->kind == MANIFEST_SYMLINK)
            entry->target = strdup ("../lib/x");
    }
    msg->spec = spec;
    for (size_t i = 0; i < blobs; i++) {
        uint8_t hash [BLOB_HASH_SIZE];
        memset (hash, (int) (0x40 + i), sizeof hash);
        uint8_t *data = (uint8_t *) malloc (blob_size? blob_size: 1);
        for (size_t b = 0; b < blob_size; b++)
            data [b] = (uint8_t) (b * 7 + i);
        job_msg_add_blob (msg, hash, &data, blob_size);
        assert_null (data);
    }
    return msg;
}

static job_msg_t *
s_result (bool failure, size_t outputs)
{
    job_msg_t *msg = job_msg_new (JOB_WIRE_RESULT, 77);
    job_result_t *result = job_result_new ();
    if (failure)
        job_result_fail (result, "missing input (%d blobs)", 3);
    result->status = 1;
    result->out = (uint8_t *) strdup ("out");
    result->out_size = 3;
    result->err = (uint8_t *) malloc (5);
    memcpy (result->err, "e\0r\nx", 5);         //  NUL allowed in output
    result->err_size = 5;
    result->output_count = outputs;
    result->outputs = (job_output_t *) calloc (outputs + 1, sizeof (job_output_t));
    for (size_t i = 0; i < outputs; i++) {
        if (asprintf (&result->outputs [i].path, "/home/u/src/out%zu.o", i) < 0)
            abort ();
        result->outputs [i].mode = 0644;
        result->outputs [i].size = 100 * i;
        result->outputs [i].data = (uint8_t *) calloc (1, 100 * i + 1);
    }
    result->fetch_us = 1;
    result->setup_us = 2;
    result->compile_us = UINT64_MAX;
    msg->result = result;
    return msg;
}

static void
s_check_prefixes (const uint8_t *data, size_t size)
{
    for (size_t length = 0; length < size; length++) {
        job_msg_t *msg = NULL;
        assert_int_not_equal (s_decode (data, length, &msg), WIRE_OK);
        assert_null (msg);
    }
}

static void
test_selftest (void **state)
{
    (void) state;
    job_wire_test (false);
}

static void
test_job_round_trip (void **state)
{
    (void) state;
    job_msg_t *msg = s_job (7, 2, 100);
    uint8_t *data;
    size_t size;
    assert_int_equal (job_wire_encode (msg, &data, &size), 0);
    assert_true (job_wire_is_job (data, size));
    job_msg_t *copy = NULL;
    assert_int_equal (s_decode (data, size, &copy), WIRE_OK);
    assert_int_equal (copy->type, JOB_WIRE_JOB);
    assert_true (copy->job_id == 0x0102030405060708ULL);
    job_spec_t *a = msg->spec, *b = copy->spec;
    assert_int_equal (b->argc, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal (a->argv [i], b->argv [i]);
    assert_null (b->argv [5]);
    assert_string_equal (b->cwd, "/home/u/src");
    assert_string_equal (b->envp [1], "LANG=C1");
    assert_null (b->envp [2]);
    assert_memory_equal (&a->compiler, &b->compiler, sizeof a->compiler);
    assert_true (b->has_toolchain);             //  7 entries: with a toolchain
    assert_memory_equal (a->toolchain, b->toolchain, BLOB_HASH_SIZE);
    assert_true (b->toolchain_size == 27137316);
    assert_int_equal (b->holder_count, 2);
    assert_memory_equal (a->holders, b->holders, 2 * MESHCC_ID_SIZE);
    assert_int_equal (b->entry_count, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal (a->entries [i].path, b->entries [i].path);
        assert_int_equal (a->entries [i].kind, b->entries [i].kind);
        assert_int_equal (a->entries [i].mode, b->entries [i].mode);
        if (a->entries [i].kind == MANIFEST_FILE) {
            assert_memory_equal (a->entries [i].hash, b->entries [i].hash, BLOB_HASH_SIZE);
            assert_true (a->entries [i].size == b->entries [i].size);
        }
        if (a->entries [i].kind == MANIFEST_SYMLINK)
            assert_string_equal (a->entries [i].target, b->entries [i].target);
    }
    assert_int_equal (copy->blob_count, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_memory_equal (copy->blobs [i].hash, msg->blobs [i].hash, BLOB_HASH_SIZE);
        assert_int_equal (copy->blobs [i].size, 100);
        assert_memory_equal (copy->blobs [i].data, msg->blobs [i].data, 100);
    }
    job_msg_destroy (&copy);
    //  Plain frame: every prefix refused, nothing leaked.
    if (!(data [4] & WIRE_FLAG_ZSTD))
        s_check_prefixes (data, size);
    free (data);
    job_msg_destroy (&msg);
    assert_null (msg);

    //  A big one is compressed and still round-trips.
    msg = s_job (3000, 10, 100000);
    assert_int_equal (job_wire_encode (msg, &data, &size), 0);
    assert_true (data [4] & WIRE_FLAG_ZSTD);
    assert_int_equal (s_decode (data, size, &copy), WIRE_OK);
    assert_int_equal (copy->spec->entry_count, 3000);
    assert_int_equal (copy->blob_count, 10);
    assert_memory_equal (copy->blobs [9].data, msg->blobs [9].data, 100000);
    job_msg_destroy (&copy);
    //  Truncated compressed frames are refused too.
    for (size_t cut = 1; cut < 200; cut += 7) {
        assert_int_not_equal (s_decode (data, size - cut, &copy), WIRE_OK);
        assert_null (copy);
    }
    free (data);
    job_msg_destroy (&msg);
}

//  The holders a JOB names (issue 4): none, one, the most; never more.
static void
test_holders (void **state)
{
    (void) state;
    size_t counts [] = { 0, 1, JOB_MAX_HOLDERS };
    uint8_t *frames [3];
    size_t sizes [3];
    for (size_t c = 0; c < 3; c++) {
        job_msg_t *msg = s_job (3, 0, 0);
        msg->spec->holder_count = counts [c];
        for (size_t i = 0; i < counts [c]; i++)
            memset (msg->spec->holders [i], (int) (i + 1), MESHCC_ID_SIZE);
        assert_int_equal (job_wire_encode (msg, &frames [c], &sizes [c]), 0);
        assert_false (frames [c][4] & WIRE_FLAG_ZSTD);
        job_msg_t *copy = NULL;
        assert_int_equal (s_decode (frames [c], sizes [c], &copy), WIRE_OK);
        assert_int_equal (copy->spec->holder_count, counts [c]);
        if (counts [c])
            assert_memory_equal (copy->spec->holders, msg->spec->holders,
                                 counts [c] * MESHCC_ID_SIZE);
        job_msg_destroy (&copy);
        s_check_prefixes (frames [c], sizes [c]);
        //  A trailing byte is refused.
        uint8_t *longer = (uint8_t *) malloc (sizes [c] + 1);
        memcpy (longer, frames [c], sizes [c]);
        longer [sizes [c]] = 0;
        assert_int_equal (s_decode (longer, sizes [c] + 1, &copy), WIRE_MALFORMED);
        assert_null (copy);
        free (longer);
        //  The encoder refuses more than JOB_MAX_HOLDERS.
        if (counts [c] == JOB_MAX_HOLDERS) {
            msg->spec->holder_count = JOB_MAX_HOLDERS + 1;
            uint8_t *data = NULL;
            size_t size = 0;
            assert_int_equal (job_wire_encode (msg, &data, &size), -1);
            assert_null (data);
        }
        job_msg_destroy (&msg);
    }
    assert_int_equal (sizes [1], sizes [0] + MESHCC_ID_SIZE);
    //  The count byte: where the frames with 0 and 1 holders first differ.
    size_t at = 0;
    while (at < sizes [0] && frames [0][at] == frames [1][at])
        at++;
    assert_true (at < sizes [0]);
    assert_int_equal (frames [0][at], 0);
    assert_int_equal (frames [1][at], 1);
    //  A count above the bound is oversized, whatever follows.
    uint8_t *work = (uint8_t *) malloc (sizes [2]);
    memcpy (work, frames [2], sizes [2]);
    job_msg_t *msg = NULL;
    for (unsigned count = JOB_MAX_HOLDERS + 1; count < 256; count++) {
        work [at] = (uint8_t) count;
        assert_int_equal (s_decode (work, sizes [2], &msg), WIRE_OVERSIZED);
        assert_null (msg);
    }
    //  A count naming more holders than the frame carries.
    memcpy (work, frames [0], sizes [0]);
    work [at] = JOB_MAX_HOLDERS;
    assert_int_not_equal (s_decode (work, sizes [0], &msg), WIRE_OK);
    assert_null (msg);
    free (work);
    for (size_t c = 0; c < 3; c++)
        free (frames [c]);
}

static void
test_small_messages (void **state)
{
    (void) state;
    job_wire_type_t types [] = { JOB_WIRE_ACCEPTED, JOB_WIRE_REFUSED, JOB_WIRE_NEED, JOB_WIRE_BLOBS };
    for (size_t t = 0; t < sizeof types / sizeof types [0]; t++) {
        job_msg_t *msg = job_msg_new (types [t], 9);
        if (types [t] == JOB_WIRE_REFUSED)
            msg->reason = strdup ("unavailable: no user namespaces");
        if (types [t] == JOB_WIRE_NEED) {
            msg->hash_count = 3;
            msg->hashes = (uint8_t (*) [BLOB_HASH_SIZE]) malloc (3 * BLOB_HASH_SIZE);
            memset (msg->hashes, 0xAB, 3 * BLOB_HASH_SIZE);
        }
        if (types [t] == JOB_WIRE_BLOBS) {
            msg->last = true;
            uint8_t hash [BLOB_HASH_SIZE] = { 1 };
            uint8_t *data = (uint8_t *) strdup ("");
            job_msg_add_blob (msg, hash, &data, 0);     //  an empty file
        }
        uint8_t *data;
        size_t size;
        assert_int_equal (job_wire_encode (msg, &data, &size), 0);
        job_msg_t *copy = NULL;
        assert_int_equal (s_decode (data, size, &copy), WIRE_OK);
        assert_int_equal (copy->type, types [t]);
        assert_true (copy->job_id == 9);
        if (types [t] == JOB_WIRE_REFUSED)
            assert_string_equal (copy->reason, msg->reason);
        if (types [t] == JOB_WIRE_NEED) {
            assert_int_equal (copy->hash_count, 3);
            assert_memory_equal (copy->hashes, msg->hashes, 3 * BLOB_HASH_SIZE);
        }
        if (types [t] == JOB_WIRE_BLOBS) {
            assert_true (copy->last);
            assert_int_equal (copy->blob_count, 1);
            assert_int_equal (copy->blobs [0].size, 0);
        }
        job_msg_destroy (&copy);
        s_check_prefixes (data, size);
        free (data);
        job_msg_destroy (&msg);
    }
}

static void
test_result_round_trip (void **state)
{
    (void) state;
    for (int failure = 0; failure < 2; failure++) {
        job_msg_t *msg = s_result (failure, failure? 0: 3);
        uint8_t *data;
        size_t size;
        assert_int_equal (job_wire_encode (msg, &data, &size), 0);
        job_msg_t *copy = NULL;
        assert_int_equal (s_decode (data, size, &copy), WIRE_OK);
        job_result_t *a = msg->result, *b = copy->result;
        if (failure)
            assert_string_equal (b->failure, "missing input (3 blobs)");
        else
            assert_null (b->failure);
        assert_int_equal (b->status, 1);
        assert_int_equal (b->out_size, 3);
        assert_int_equal (b->err_size, 5);
        assert_memory_equal (b->err, "e\0r\nx", 5);
        assert_int_equal (b->output_count, a->output_count);
        for (size_t i = 0; i < a->output_count; i++) {
            assert_string_equal (a->outputs [i].path, b->outputs [i].path);
            assert_int_equal (a->outputs [i].size, b->outputs [i].size);
            assert_int_equal (b->outputs [i].mode, 0644);
        }
        assert_true (b->compile_us == UINT64_MAX && b->setup_us == 2 && b->fetch_us == 1);
        job_msg_destroy (&copy);
        if (!(data [4] & WIRE_FLAG_ZSTD))
            s_check_prefixes (data, size);
        free (data);
        job_msg_destroy (&msg);
    }
    //  A negative status survives (as the u32 it is sent as).
    job_msg_t *msg = s_result (false, 0);
    msg->result->status = -1;
    uint8_t *data;
    size_t size;
    assert_int_equal (job_wire_encode (msg, &data, &size), 0);
    job_msg_t *copy = NULL;
    assert_int_equal (s_decode (data, size, &copy), WIRE_OK);
    assert_int_equal (copy->result->status, -1);
    job_msg_destroy (&copy);
    free (data);
    job_msg_destroy (&msg);
}

static void
test_encoder_refusals (void **state)
{
    (void) state;
    uint8_t *data = (uint8_t *) 1;
    size_t size = 1;
    job_msg_t *msg = s_job (3, 0, 0);
    msg->spec->entries [0].mode = 010000;
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    assert_null (data);
    assert_int_equal (size, 0);
    msg->spec->entries [0].mode = 0644;
    msg->spec->entries [0].kind = (manifest_kind_t) 'x';
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    msg->spec->entries [0].kind = MANIFEST_FILE;
    free (msg->spec->cwd);
    msg->spec->cwd = strdup ("");
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    job_msg_destroy (&msg);

    msg = job_msg_new (JOB_WIRE_JOB, 1);    //  no spec
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    job_msg_destroy (&msg);
    msg = job_msg_new (JOB_WIRE_NEED, 1);   //  nothing needed
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    job_msg_destroy (&msg);
    msg = s_result (false, 0);
    msg->result->output_count = JOB_MAX_OUTPUTS + 1;
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    msg->result->output_count = 0;
    job_msg_destroy (&msg);
    msg = job_msg_new ((job_wire_type_t) 3, 1);
    assert_int_equal (job_wire_encode (msg, &data, &size), -1);
    job_msg_destroy (&msg);
    assert_int_equal (job_wire_encode (NULL, &data, &size), -1);
}

//  Hand-made frames: bad header fields, counts above their bounds.
static void
test_bad_frames (void **state)
{
    (void) state;
    uint8_t frame [64];
    memset (frame, 0, sizeof frame);
    frame [0] = 'M';
    frame [1] = 'C';
    frame [2] = MESHCC_PROTO_VERSION;
    frame [3] = JOB_WIRE_NEED;
    job_msg_t *msg = NULL;
    //  header + id + count 0: malformed (a NEED asks for something)
    assert_int_equal (s_decode (frame, 5 + 8 + 4, &msg), WIRE_MALFORMED);
    //  count above its bound
    frame [13] = 0xFF;
    assert_int_equal (s_decode (frame, 5 + 8 + 4, &msg), WIRE_OVERSIZED);
    //  a plausible count with too few bytes
    frame [13] = 0;
    frame [16] = 5;
    assert_int_equal (s_decode (frame, 5 + 8 + 4 + 32, &msg), WIRE_TRUNCATED);
    frame [16] = 1;
    assert_int_equal (s_decode (frame, 5 + 8 + 4 + 32, &msg), WIRE_OK);
    job_msg_destroy (&msg);
    //  trailing byte
    assert_int_equal (s_decode (frame, 5 + 8 + 4 + 33, &msg), WIRE_MALFORMED);
    assert_null (msg);
    frame [4] = 0x80;
    assert_int_equal (s_decode (frame, 5 + 8 + 4 + 32, &msg), WIRE_MALFORMED);
    frame [4] = WIRE_FLAG_ZSTD;             //  compressed, raw size 0
    assert_int_equal (s_decode (frame, 5 + 8 + 4 + 32, &msg), WIRE_MALFORMED);
    frame [4] = 0;
    frame [3] = 3;                          //  a gossip type
    assert_false (job_wire_is_job (frame, 5 + 8 + 4 + 32));
    assert_int_equal (s_decode (frame, 5 + 8 + 4 + 32, &msg), WIRE_BAD_TYPE);
    frame [3] = JOB_WIRE_RESULT + 1;
    assert_int_equal (s_decode (frame, 20, &msg), WIRE_BAD_TYPE);
    frame [3] = JOB_WIRE_NEED;
    frame [2] = MESHCC_PROTO_VERSION + 1;
    assert_int_equal (s_decode (frame, 20, &msg), WIRE_BAD_VERSION);
    frame [0] = 'X';
    assert_int_equal (s_decode (frame, 20, &msg), WIRE_BAD_MAGIC);
    assert_int_equal (s_decode (frame, 3, &msg), WIRE_TRUNCATED);
    assert_int_equal (job_wire_decode (frame, (size_t) JOB_WIRE_MAX_FRAME + 1, &msg), WIRE_OVERSIZED);
    assert_null (msg);

    //  A compressed frame announcing more than JOB_WIRE_MAX_PAYLOAD.
    uint8_t bomb [5 + 4 + 16];
    memset (bomb, 0, sizeof bomb);
    memcpy (bomb, frame, 5);
    bomb [0] = 'M';
    bomb [2] = MESHCC_PROTO_VERSION;
    bomb [4] = WIRE_FLAG_ZSTD;
    bomb [5] = 0x7F;
    assert_int_equal (s_decode (bomb, sizeof bomb, &msg), WIRE_OVERSIZED);
    //  A string with a NUL inside: REFUSED "a\0b".
    uint8_t refused [5 + 8 + 2 + 3] = { 'M', 'C', MESHCC_PROTO_VERSION, JOB_WIRE_REFUSED, 0 };
    refused [14] = 3;
    refused [15] = 'a';
    refused [17] = 'b';
    assert_int_equal (s_decode (refused, sizeof refused, &msg), WIRE_MALFORMED);
    refused [16] = 'x';
    assert_int_equal (s_decode (refused, sizeof refused, &msg), WIRE_OK);
    assert_string_equal (msg->reason, "axb");
    job_msg_destroy (&msg);
}

//  Mutations of real frames and random frames: never a crash, a leak, or
//  an OK that does not re-encode.
static void
test_fuzz (void **state)
{
    (void) state;
    job_msg_t *samples [3] = { s_job (12, 3, 40), s_result (false, 2), s_result (true, 0) };
    uint64_t seed = 12345;
    size_t decoded = 0;
    for (int s = 0; s < 3; s++) {
        //  Plain frames (bytes under WIRE_COMPRESS_MIN are not compressed;
        //  these may be, so mutate whatever the encoder gives).
        uint8_t *data;
        size_t size;
        assert_int_equal (job_wire_encode (samples [s], &data, &size), 0);
        uint8_t *work = (uint8_t *) malloc (size + 16);
        for (int round = 0; round < MUTATIONS; round++) {
            memcpy (work, data, size);
            size_t length = size;
            int edits = 1 + (int) (s_rand (&seed) % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t) (s_rand (&seed) % length);
                switch (s_rand (&seed) % 3) {
                    case 0: work [at] = (uint8_t) s_rand (&seed); break;
                    case 1: work [at] ^= (uint8_t) (1u << (s_rand (&seed) % 8)); break;
                    case 2: length = at + 1; break;
                }
            }
            job_msg_t *msg = NULL;
            wire_error_t error = s_decode (work, length, &msg);
            if (error == WIRE_OK) {
                decoded++;
                assert_non_null (msg);
                job_msg_destroy (&msg);
            }
            else
                assert_null (msg);
        }
        free (work);
        free (data);
        job_msg_destroy (&samples [s]);
    }
    for (int round = 0; round < RANDOM_FRAMES; round++) {
        uint8_t frame [256];
        size_t length = (size_t) (s_rand (&seed) % sizeof frame);
        for (size_t i = 0; i < length; i++)
            frame [i] = (uint8_t) s_rand (&seed);
        if (length >= 5 && round % 2) {
            frame [0] = 'M';
            frame [1] = 'C';
            frame [2] = MESHCC_PROTO_VERSION;
            frame [3] = (uint8_t) (JOB_WIRE_TYPE_FIRST + s_rand (&seed) % 6);
            frame [4] = (uint8_t) (s_rand (&seed) % 2);
        }
        job_msg_t *msg = NULL;
        if (s_decode (frame, length, &msg) == WIRE_OK)
            job_msg_destroy (&msg);
        assert_null (msg);
    }
    (void) decoded;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test (test_job_round_trip),
        cmocka_unit_test (test_holders),
        cmocka_unit_test (test_small_messages),
        cmocka_unit_test (test_result_round_trip),
        cmocka_unit_test (test_encoder_refusals),
        cmocka_unit_test (test_bad_frames),
        cmocka_unit_test (test_fuzz),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
