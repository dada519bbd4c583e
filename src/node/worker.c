//  worker: the node's pool of threads for blocking work (see worker.h).
//
//  One zactor per thread, kept for the node's life: a thread keeps its
//  SQLite connections (blob store, hash cache) and its executor open, so a
//  job pays no open cost. A task goes to an idle thread as a pointer over
//  the actor's pipe and comes back the same way when done; tasks that find
//  every thread busy wait in a FIFO here.

#include "meshcc/node_log.h"
#include "meshcc/worker.h"

typedef struct {
    worker_fn      *fn;
    worker_done_fn *done;
    void           *task;
} item_t;

struct _worker_ctx_t {
    const worker_env_t *env;
    blob_store_t *store;
    hash_cache_t *hashes;
    executor_t   *executor;
    bool store_failed, hashes_failed, executor_failed;
};

typedef struct {
    struct _worker_pool_t *pool;
    zactor_t *actor;
    item_t   *busy;                 //  the item it runs, or NULL
} worker_t;

struct _worker_pool_t {
    zloop_t     *loop;
    worker_env_t env;
    size_t       count;
    worker_t    *workers;
    zlist_t     *pending;           //  item_t waiting for a thread
};

blob_store_t *
worker_blob_store (worker_ctx_t *ctx)
{
    if (!ctx->store && !ctx->store_failed) {
        char err [512];
        ctx->store = blob_store_new (ctx->env->cache_dir, ctx->env->cache_size, err, sizeof err);
        if (!ctx->store) {
            ctx->store_failed = true;
            log_error ("cannot open the blob store in %s: %s", ctx->env->cache_dir, err);
        }
    }
    return ctx->store;
}

hash_cache_t *
worker_hash_cache (worker_ctx_t *ctx)
{
    if (!ctx->hashes && !ctx->hashes_failed) {
        char err [512];
        ctx->hashes = hash_cache_new (ctx->env->cache_dir, err, sizeof err);
        if (!ctx->hashes) {
            ctx->hashes_failed = true;
            log_error ("cannot open the hash cache in %s: %s", ctx->env->cache_dir, err);
        }
    }
    return ctx->hashes;
}

executor_t *
worker_executor (worker_ctx_t *ctx)
{
    if (!ctx->executor && !ctx->executor_failed) {
        blob_store_t *store = worker_blob_store (ctx);
        char err [512] = "no blob store";
        if (store)
            ctx->executor = executor_new (store, ctx->env->work_dir, &ctx->env->limits,
                                          err, sizeof err);
        if (!ctx->executor) {
            ctx->executor_failed = true;
            log_error ("cannot start the executor in %s: %s", ctx->env->work_dir, err);
        }
    }
    return ctx->executor;
}

const worker_env_t *
worker_env (worker_ctx_t *ctx)
{
    return ctx->env;
}

//  The thread: runs items until $TERM. Resources are closed here, on the
//  thread that opened them.
static void
s_worker_actor (zsock_t *pipe, void *args)
{
    worker_ctx_t ctx;
    memset (&ctx, 0, sizeof ctx);
    ctx.env = (const worker_env_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        zmsg_t *msg = zmsg_recv (pipe);
        if (!msg)
            break;
        zframe_t *frame = zmsg_first (msg);
        if (!frame || zframe_size (frame) != sizeof (item_t *)) {
            zmsg_destroy (&msg);
            break;                  //  $TERM (or anything else): stop
        }
        item_t *item;
        memcpy (&item, zframe_data (frame), sizeof item);
        zmsg_destroy (&msg);
        item->fn (&ctx, item->task);
        zsock_send (pipe, "p", item);
    }
    executor_destroy (&ctx.executor);
    hash_cache_destroy (&ctx.hashes);
    blob_store_destroy (&ctx.store);
}

static void
s_start (worker_t *worker, item_t *item)
{
    worker->busy = item;
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, &item, sizeof item);
    zmsg_send (&msg, worker->actor);
}

static int
s_worker_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    worker_t *worker = (worker_t *) arg;
    void *pointer = NULL;
    if (zsock_recv (sock, "p", &pointer) || !pointer)
        return 0;
    item_t *item = (item_t *) pointer;
    worker->busy = NULL;
    //  Next pending task first, so that done() submitting more keeps order.
    item_t *next = (item_t *) zlist_pop (worker->pool->pending);
    if (next)
        s_start (worker, next);
    item->done (item->task, false);
    free (item);
    return 0;
}

worker_pool_t *
worker_pool_new (zloop_t *loop, size_t threads, const worker_env_t *env)
{
    worker_pool_t *self = (worker_pool_t *) zmalloc (sizeof (worker_pool_t));
    self->loop = loop;
    self->env = *env;
    self->count = threads? threads: 1;
    self->workers = (worker_t *) zmalloc (self->count * sizeof (worker_t));
    self->pending = zlist_new ();
    for (size_t i = 0; i < self->count; i++) {
        worker_t *worker = &self->workers [i];
        worker->pool = self;
        worker->actor = zactor_new (s_worker_actor, &self->env);
        assert (worker->actor);
        zloop_reader (loop, (zsock_t *) worker->actor, s_worker_readable, worker);
    }
    return self;
}

void
worker_pool_destroy (worker_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_pool_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        worker_t *worker = &self->workers [i];
        if (worker->busy) {
            void *pointer = NULL;
            //  Waits for the running task: its thread cannot be stopped
            //  mid-compile, and the executor bounds how long that is.
            zsock_recv (worker->actor, "p", &pointer);
            item_t *item = worker->busy;
            worker->busy = NULL;
            item->done (item->task, true);
            free (item);
        }
        zloop_reader_end (self->loop, (zsock_t *) worker->actor);
        zactor_destroy (&worker->actor);
    }
    item_t *item;
    while ((item = (item_t *) zlist_pop (self->pending))) {
        item->done (item->task, true);
        free (item);
    }
    zlist_destroy (&self->pending);
    free (self->workers);
    free (self);
    *self_p = NULL;
}

void
worker_pool_submit (worker_pool_t *self, worker_fn *fn, worker_done_fn *done, void *task)
{
    item_t *item = (item_t *) zmalloc (sizeof (item_t));
    item->fn = fn;
    item->done = done;
    item->task = task;
    for (size_t i = 0; i < self->count; i++)
        if (!self->workers [i].busy) {
            s_start (&self->workers [i], item);
            return;
        }
    zlist_append (self->pending, item);
}

size_t
worker_pool_pending (worker_pool_t *self)
{
    return zlist_size (self->pending);
}

size_t
worker_pool_busy (worker_pool_t *self)
{
    size_t busy = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->workers [i].busy)
            busy++;
    return busy;
}


//  --------------------------------------------------------------------------
//  Self test: tasks run off the loop and come back in done.

typedef struct {
    int value;
    bool ran, done, cancelled;
} test_task_t;

static int s_test_done;

static void
s_test_fn (worker_ctx_t *ctx, void *arg)
{
    (void) ctx;
    test_task_t *task = (test_task_t *) arg;
    zclock_sleep (5);
    task->value *= 2;
    task->ran = true;
}

static void
s_test_done_fn (void *arg, bool cancelled)
{
    test_task_t *task = (test_task_t *) arg;
    task->done = true;
    task->cancelled = cancelled;
    s_test_done++;
}

static int
s_test_check (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return s_test_done >= 5? -1: 0;
}

void
worker_test (bool verbose)
{
    if (verbose)
        printf (" * worker: ");
    zloop_t *loop = zloop_new ();
    worker_env_t env;
    memset (&env, 0, sizeof env);
    worker_pool_t *pool = worker_pool_new (loop, 2, &env);
    test_task_t tasks [5];
    memset (tasks, 0, sizeof tasks);
    s_test_done = 0;
    for (int i = 0; i < 5; i++) {
        tasks [i].value = i;
        worker_pool_submit (pool, s_test_fn, s_test_done_fn, &tasks [i]);
    }
    assert (worker_pool_busy (pool) == 2 && worker_pool_pending (pool) == 3);
    zloop_timer (loop, 5, 0, s_test_check, NULL);
    zloop_start (loop);
    for (int i = 0; i < 5; i++)
        assert (tasks [i].ran && tasks [i].done && !tasks [i].cancelled && tasks [i].value == 2 * i);
    //  Destroying with work in flight: every task is handed back.
    test_task_t more [3];
    memset (more, 0, sizeof more);
    for (int i = 0; i < 3; i++)
        worker_pool_submit (pool, s_test_fn, s_test_done_fn, &more [i]);
    worker_pool_destroy (&pool);
    for (int i = 0; i < 3; i++)
        assert (more [i].done && more [i].cancelled);
    zloop_destroy (&loop);
    if (verbose)
        printf ("OK\n");
}
