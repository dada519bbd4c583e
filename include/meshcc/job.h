//  job: the values that describe one compile job as it travels from the
//  origin to an executor and back: the identical command, its working
//  directory and relevant environment, the compiler's identity, the
//  manifest of inputs (content-addressed) and, on return, the outputs.
//  Owns these values and their lifecycles only; encoding is the job codec's
//  business, running is the executor's.

#ifndef MESHCC_JOB_H_INCLUDED
#define MESHCC_JOB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "meshcc/blob_store.h"
#include "meshcc/limits.h"

typedef enum {
    MANIFEST_FILE = 'f',            //  regular file: hash + mode
    MANIFEST_SYMLINK = 'l',         //  symbolic link: target (as readlink gives it)
    MANIFEST_DIR = 'd'              //  directory that must exist (e.g. an -I dir)
} manifest_kind_t;

typedef struct {
    char    *path;                  //  absolute, lexically normalised, at the origin
    manifest_kind_t kind;
    uint8_t  hash [BLOB_HASH_SIZE]; //  MANIFEST_FILE
    uint64_t size;                  //  MANIFEST_FILE
    uint32_t mode;                  //  permission bits
    char    *target;                //  MANIFEST_SYMLINK
} manifest_entry_t;

//  Who the compiler is: an executor runs a job only with a compiler whose
//  identity equals the requester's.
typedef struct {
    char    path [1024];            //  resolved (realpath) compiler binary
    char    version [128];          //  -dumpfullversion (gcc) / --version first line (clang)
    char    target [128];           //  -dumpmachine
    uint8_t hash [BLOB_HASH_SIZE];  //  BLAKE2b of the binary
} compiler_identity_t;

typedef struct {
    uint64_t id;                    //  unique at the origin
    int      argc;
    char   **argv;                  //  NULL-terminated; the identical command
    char    *cwd;
    char   **envp;                  //  NULL-terminated "NAME=value", relevant ones only
    compiler_identity_t compiler;
    //  The compiler packaged as a toolchain (issue 4), when the origin has
    //  one: a peer without an identical compiler runs the job with it.
    bool     has_toolchain;
    uint8_t  toolchain [BLOB_HASH_SIZE];    //  BLAKE2b-256 of the archive
    uint64_t toolchain_size;                //  archive bytes
    //  Nodes that likely hold the job's input blobs (issue 4), in the
    //  order to ask them, the origin itself among them: a peer missing
    //  blobs fetches them from these before it asks the origin (NEED).
    size_t   holder_count;                  //  <= JOB_MAX_HOLDERS
    uint8_t  holders [JOB_MAX_HOLDERS][MESHCC_ID_SIZE];
    size_t   entry_count;
    manifest_entry_t *entries;
} job_spec_t;

typedef struct {
    char    *path;                  //  absolute path at the origin
    uint32_t mode;
    uint8_t *data;
    size_t   size;
} job_output_t;

typedef struct {
    //  When `failure` is set, the mesh failed (refused, identity mismatch,
    //  missing input, sandbox error, limit): the origin compiles locally.
    //  Otherwise the compiler ran and `status` is its exit status: the
    //  answer, errors included, never retried.
    char    *failure;
    int      status;
    uint8_t *out;   size_t out_size;    //  compiler stdout
    uint8_t *err;   size_t err_size;    //  compiler stderr
    size_t   output_count;
    job_output_t *outputs;
    //  Times spent at the executor, for `meshcc stats`.
    uint64_t fetch_us, setup_us, compile_us;
} job_result_t;

job_spec_t   *job_spec_new (void);
void          job_spec_destroy (job_spec_t **self_p);
job_result_t *job_result_new (void);
void          job_result_destroy (job_result_t **self_p);
//  Sets result->failure to a copy of `reason` (printf-style).
void          job_result_fail (job_result_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
