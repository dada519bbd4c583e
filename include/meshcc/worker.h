//  worker: a small pool of threads for the node's blocking work (running a
//  compiler, listing a compile's inputs, hashing, the executor, encoding
//  big job frames), so the zloop never blocks. A task is a pointer the
//  caller owns; `fn` runs on a worker thread, then `done` runs on the loop
//  thread (the pipe back is an inproc PAIR read by the loop). Each thread
//  opens its own blob store, hash cache and executor, lazily, on first use:
//  SQLite connections are per thread.
//
//  Owns the threads and their per-thread resources; knows nothing of jobs.

#ifndef MESHCC_WORKER_H_INCLUDED
#define MESHCC_WORKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include "meshcc/blob_store.h"
#include "meshcc/executor.h"
#include "meshcc/hash_cache.h"

typedef struct _worker_pool_t worker_pool_t;
typedef struct _worker_ctx_t worker_ctx_t;

//  On a worker thread.
typedef void (worker_fn) (worker_ctx_t *ctx, void *task);
//  On the loop thread once fn returned; `cancelled` when the pool is being
//  destroyed (fn may not have run): the owner frees the task, nothing else.
typedef void (worker_done_fn) (void *task, bool cancelled);

typedef struct {
    char     cache_dir [1024];      //  blob store and hash cache
    char     work_dir [1024];       //  executor job roots
    uint64_t cache_size;            //  bound of the blob store
    executor_limits_t limits;
} worker_env_t;

worker_pool_t *worker_pool_new (zloop_t *loop, size_t threads, const worker_env_t *env);
//  Waits for running tasks (their done gets cancelled = true), hands the
//  pending ones to their done with cancelled = true, joins the threads.
void           worker_pool_destroy (worker_pool_t **self_p);
void           worker_pool_submit (worker_pool_t *self, worker_fn *fn, worker_done_fn *done, void *task);
//  Tasks waiting for a thread / running now.
size_t         worker_pool_pending (worker_pool_t *self);
size_t         worker_pool_busy (worker_pool_t *self);

//  Per-thread resources, opened on first use; NULL (logged) if they cannot
//  be opened.
blob_store_t *worker_blob_store (worker_ctx_t *ctx);
hash_cache_t *worker_hash_cache (worker_ctx_t *ctx);
executor_t   *worker_executor (worker_ctx_t *ctx);
const worker_env_t *worker_env (worker_ctx_t *ctx);

void worker_test (bool verbose);

#endif
