//  listing_cache: reuse of dependency listings (see listing_cache.h).
//
//  Why the directory guards: the compiler finds `#include "a/b.h"` by
//  trying DIR/a/b.h in each search directory in turn. A listing stays
//  right while no such DIR/a/b.h appears in a directory tried before the
//  one that answered. We do not know the order (quote or angle form,
//  #include_next), so every search directory is treated as "before": for
//  each (directory, name) pair, the deepest directory that exists on the
//  way to DIR/a/ is stamped. Creating DIR/a/b.h, or DIR/a, changes that
//  directory's stamp; only then are the names under it looked up one by
//  one. So a build writing objects next to its sources costs a few
//  lookups, not a new listing.
//
//  Why the passed-over candidates: a name can exist in several search
//  directories (Open vSwitch has util.h in lib/ and include/openvswitch/).
//  The ones the compiler did not pick were there when it ran and cannot
//  shadow anything; only a new one can. So when a listing is stored, each
//  exactly stamped directory is read once and the unlisted candidates
//  that exist are remembered; a lookup that must look into a changed
//  directory (after a copy of the tree, every one) reads it once and
//  ignores them. In a directory that changed while being read, or within
//  the racy window, a candidate counts only if its inode's ctime is
//  older than the listing (s_older).

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include "meshcc/listing_cache.h"

#define S_MAX_GUARDS 50000          //  bases x name directories kept per entry
#define S_NONE UINT32_MAX
#define S_FINE_MARGIN_NS (50 * 1000000LL)

typedef struct {
    int64_t  mtime_ns, ctime_ns;
    uint64_t size, ino, dev;
} s_stamp_t;

typedef struct {
    char     *path;
    s_stamp_t stamp;
    bool      hashed;
    uint8_t   hash [LISTING_HASH_SIZE];
} s_file_t;

typedef struct {
    uint32_t  base, dir;            //  indexes into bases and dirs
    uint32_t  path;                 //  index into paths: the stamped directory
    bool      always;               //  stamped inside the racy window
    s_stamp_t stamp;
} s_guard_t;

typedef struct {
    char    *name;                  //  a name a file was found under ("a/b.h")
    uint32_t dir;                   //  index of its directory part ("a", or "")
} s_name_t;

typedef struct {
    uint8_t    key [LISTING_KEY_SIZE];
    zlist_t   *deps;                //  as printed
    s_file_t  *files;
    size_t     file_count;
    zhashx_t  *listed;              //  absolute listed paths (a set)
    zlist_t   *bases, *dirs, *paths;    //  strings, indexed through arrays below
    char     **base_at, **dir_at, **path_at;
    s_name_t  *names;
    size_t     name_count;
    uint32_t  *dir_first;           //  per name directory: its first name, or S_NONE
    uint32_t  *name_next;           //  per name: the next in its directory, or S_NONE
    zhashx_t  *passed;              //  unlisted candidates that existed (a set)
    s_guard_t *guards;
    size_t     guard_count;
    size_t     bytes;
    uint64_t   used;
} s_entry_t;

struct _listing_cache_t {
    pthread_mutex_t mutex;
    zhashx_t *entries;              //  hex key -> s_entry_t
    size_t    bytes, max_bytes;
    int64_t   racy_ns;
    uint64_t  clock;
    listing_cache_counts_t counts;
};

static void
s_entry_destroy (void **item)
{
    s_entry_t *entry = (s_entry_t *) *item;
    if (!entry)
        return;
    zlist_destroy (&entry->deps);
    for (size_t i = 0; i < entry->file_count; i++)
        free (entry->files [i].path);
    free (entry->files);
    zhashx_destroy (&entry->listed);
    zlist_destroy (&entry->bases);
    zlist_destroy (&entry->dirs);
    zlist_destroy (&entry->paths);
    free (entry->base_at);
    free (entry->dir_at);
    free (entry->path_at);
    for (size_t i = 0; i < entry->name_count; i++)
        free (entry->names [i].name);
    free (entry->names);
    free (entry->dir_first);
    free (entry->name_next);
    zhashx_destroy (&entry->passed);
    free (entry->guards);
    free (entry);
    *item = NULL;
}

listing_cache_t *
listing_cache_new (size_t max_bytes, int64_t racy_ms)
{
    listing_cache_t *self = (listing_cache_t *) zmalloc (sizeof (listing_cache_t));
    pthread_mutex_init (&self->mutex, NULL);
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_destroy);
    self->max_bytes = max_bytes;
    self->racy_ns = racy_ms * 1000000;
    return self;
}

void
listing_cache_destroy (listing_cache_t **self_p)
{
    listing_cache_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->entries);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

static void
s_key_hex (const uint8_t key [LISTING_KEY_SIZE], char hex [2 * LISTING_KEY_SIZE + 1])
{
    static const char digits [] = "0123456789abcdef";
    for (int i = 0; i < LISTING_KEY_SIZE; i++) {
        hex [2 * i] = digits [key [i] >> 4];
        hex [2 * i + 1] = digits [key [i] & 15];
    }
    hex [2 * LISTING_KEY_SIZE] = 0;
}

//  The stamp of `path`; its stat in *st_p when given.
static int
s_stamp_stat (const char *path, s_stamp_t *stamp, struct stat *st_p)
{
    struct stat own;
    struct stat *st_ptr = st_p ? st_p : &own;
    if (stat (path, st_ptr))
        return -1;
    const struct stat st = *st_ptr;
    stamp->mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    stamp->ctime_ns = (int64_t) st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    stamp->size = (uint64_t) st.st_size;
    stamp->ino = (uint64_t) st.st_ino;
    stamp->dev = (uint64_t) st.st_dev;
    return 0;
}

static int
s_stamp (const char *path, s_stamp_t *stamp)
{
    return s_stamp_stat (path, stamp, NULL);
}

static bool
s_stamp_equal (const s_stamp_t *a, const s_stamp_t *b)
{
    return a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns
        && a->size == b->size && a->ino == b->ino && a->dev == b->dev;
}

static bool
s_racy (const listing_cache_t *self, const s_stamp_t *stamp, int64_t started_ns)
{
    //  mtime only: tests (and tools like make's own) set it into the past
    //  to say "old"; ctime still takes part in the comparison.
    return stamp->mtime_ns >= started_ns - self->racy_ns;
}

//  `path` against `cwd`, by plain joining (the compiler does the same).
static char *
s_absolute (const char *cwd, const char *path)
{
    char *out = NULL;
    if (path [0] == '/')
        return strdup (path);
    if (asprintf (&out, "%s/%s", cwd, path) < 0)
        abort ();
    return out;
}

//  Adds `string` to the set `index` (string -> position + 1) and the list
//  `list` (autofree: both keep copies); returns its position.
static uint32_t
s_intern (zhashx_t *index, zlist_t *list, const char *string)
{
    uintptr_t at = (uintptr_t) zhashx_lookup (index, string);
    if (at)
        return (uint32_t) (at - 1);
    zlist_append (list, (void *) string);
    at = zlist_size (list);
    zhashx_insert (index, string, (void *) at);
    return (uint32_t) (at - 1);
}

static char **
s_array (zlist_t *list)
{
    char **array = (char **) zmalloc ((zlist_size (list) + 1) * sizeof (char *));
    size_t i = 0;
    for (char *s = (char *) zlist_first (list); s; s = (char *) zlist_next (list))
        array [i++] = s;
    return array;
}

//  BASE/DIR into `out` ("/" for the root); -1 if too long.
static int
s_join_dir (const char *base, const char *dir, char out [PATH_MAX])
{
    if ((size_t) snprintf (out, PATH_MAX, "%s%s%s", streq (base, "/") ? "" : base,
                           *dir ? "/" : "", dir) >= PATH_MAX)
        return -1;
    if (!out [0])
        strcpy (out, "/");
    return 0;
}

static void
s_set_destroy (void **item)
{
    zhashx_t *set = (zhashx_t *) *item;
    zhashx_destroy (&set);
    *item = NULL;
}

//  The names in directory `path` (a set), read once per `reads` (path ->
//  set); NULL if it cannot be read.
static zhashx_t *
s_dir_names (zhashx_t *reads, const char *path)
{
    zhashx_t *names = (zhashx_t *) zhashx_lookup (reads, path);
    if (names)
        return zhashx_size (names) ? names : NULL;
    names = zhashx_new ();
    DIR *dir = opendir (path);
    if (dir) {
        zhashx_insert (names, ".", (void *) 1);
        for (struct dirent *de = readdir (dir); de; de = readdir (dir))
            zhashx_insert (names, de->d_name, (void *) 1);
        closedir (dir);
    }
    zhashx_insert (reads, path, names);
    return zhashx_size (names) ? names : NULL;
}

//  The last component of `name`.
static const char *
s_leaf (const char *name)
{
    const char *slash = strrchr (name, '/');
    return slash ? slash + 1 : name;
}

//  Is any name under guard `g` now present where it was not listed, and
//  was not there (passed over) when the listing was made? `reads` holds
//  the directories read during this lookup.
static bool
s_guard_shadowed (const s_entry_t *entry, const s_guard_t *g, zhashx_t *reads)
{
    const char *base = entry->base_at [g->base];
    const char *stamped = entry->path_at [g->path];
    char full [PATH_MAX];
    if (s_join_dir (base, entry->dir_at [g->dir], full))
        return true;
    //  One read of the stamped directory answers for all its names when
    //  they sit right in it, and for none of them when the directory on
    //  their way is missing; otherwise each is looked up.
    zhashx_t *names = s_dir_names (reads, stamped);
    bool exact = streq (full, stamped);
    if (names && !exact) {
        size_t len = streq (stamped, "/") ? 0 : strlen (stamped);
        if (strncmp (full, stamped, len) == 0 && full [len] == '/') {
            char first [PATH_MAX];
            snprintf (first, sizeof first, "%s", full + len + 1);
            char *slash = strchr (first, '/');
            if (slash)
                *slash = 0;
            if (!zhashx_lookup (names, first))
                return false;
        }
        names = NULL;
    }
    for (uint32_t i = entry->dir_first [g->dir]; i != S_NONE; i = entry->name_next [i]) {
        const char *name = entry->names [i].name;
        if (names && !zhashx_lookup (names, s_leaf (name)))
            continue;
        char candidate [PATH_MAX];
        if ((size_t) snprintf (candidate, sizeof candidate, "%s/%s", base, name)
            >= sizeof candidate)
            return true;
        if (zhashx_lookup (entry->listed, candidate) || zhashx_lookup (entry->passed, candidate))
            continue;
        if (names)
            return true;
        struct stat st;
        if (lstat (candidate, &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
            return true;
    }
    return false;
}

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  Whether the entry still holds. A listed file with a new stamp but the
//  same size and content hash (a copy of the tree) holds, and its stamp
//  is updated; one written within the racy window does not.
static bool
s_entry_fresh (listing_cache_t *self, s_entry_t *entry, listing_hash_fn *hash, void *hash_arg,
               bool *rehashed_p)
{
    int64_t now_ns = 0;
    for (size_t i = 0; i < entry->file_count; i++) {
        s_file_t *file = &entry->files [i];
        s_stamp_t now;
        struct stat st;
        if (s_stamp_stat (file->path, &now, &st))
            return false;
        if (s_stamp_equal (&now, &file->stamp))
            continue;
        if (!hash || !file->hashed || now.size != file->stamp.size)
            return false;
        if (!now_ns)
            now_ns = s_now_ns ();
        uint8_t content [LISTING_HASH_SIZE];
        if (s_racy (self, &now, now_ns) || hash (hash_arg, file->path, &st, content)
        ||  memcmp (content, file->hash, LISTING_HASH_SIZE) != 0)
            return false;
        file->stamp = now;
        *rehashed_p = true;
    }
    //  Guards share stamped directories: stat each once, read each once.
    size_t path_count = zlist_size (entry->paths);
    uint8_t *state = (uint8_t *) zmalloc (path_count + 1);     //  0 unchecked, 1 same, 2 changed, 3 gone
    s_stamp_t *stamps = (s_stamp_t *) zmalloc ((path_count + 1) * sizeof (s_stamp_t));
    zhashx_t *reads = zhashx_new ();
    zhashx_set_destructor (reads, s_set_destroy);
    bool fresh = true;
    for (size_t i = 0; fresh && i < entry->guard_count; i++) {
        const s_guard_t *g = &entry->guards [i];
        if (!state [g->path])
            state [g->path] = s_stamp (entry->path_at [g->path], &stamps [g->path]) ? 3
                            : s_stamp_equal (&stamps [g->path], &g->stamp) ? 1 : 2;
        if ((state [g->path] > 1 || g->always) && s_guard_shadowed (entry, g, reads))
            fresh = false;
    }
    //  Looked into and found unshadowed: keep the directories' new stamps
    //  (taken before they were read), unless within the racy window, so
    //  the next lookup need not read them again.
    if (fresh) {
        if (!now_ns)
            now_ns = s_now_ns ();
        for (size_t i = 0; i < entry->guard_count; i++) {
            s_guard_t *g = &entry->guards [i];
            if ((state [g->path] == 2 || g->always) && state [g->path] != 3
            &&  !s_racy (self, &stamps [g->path], now_ns)) {
                g->stamp = stamps [g->path];
                g->always = false;
            }
        }
    }
    zhashx_destroy (&reads);
    free (state);
    free (stamps);
    return fresh;
}

static zlist_t *
s_copy (zlist_t *list)
{
    zlist_t *copy = zlist_new ();
    zlist_autofree (copy);
    for (char *s = (char *) zlist_first (list); s; s = (char *) zlist_next (list))
        zlist_append (copy, s);
    return copy;
}

zlist_t *
listing_cache_lookup (listing_cache_t *self, const uint8_t key [LISTING_KEY_SIZE],
                      listing_hash_fn *hash, void *hash_arg)
{
    char hex [2 * LISTING_KEY_SIZE + 1];
    s_key_hex (key, hex);
    zlist_t *deps = NULL;
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, hex);
    bool rehashed = false;
    if (!entry)
        self->counts.misses++;
    else
    if (!s_entry_fresh (self, entry, hash, hash_arg, &rehashed)) {
        self->counts.stale++;
        self->bytes -= entry->bytes;
        zhashx_delete (self->entries, hex);
    }
    else {
        self->counts.hits++;
        self->counts.rehashed += rehashed;
        entry->used = ++self->clock;
        deps = s_copy (entry->deps);
    }
    pthread_mutex_unlock (&self->mutex);
    return deps;
}

//  Whether `ctime` is surely before `started_ns`: by the racy window on a
//  file system with whole-second times (a zero nanosecond part), by
//  S_FINE_MARGIN_NS elsewhere (the kernel stamps inodes from a clock that
//  ticks once per jiffy, 1-10 ms). A build restores its tree and starts
//  compiling within a second: the whole window would call every header
//  of the copy new.
static bool
s_older (const listing_cache_t *self, const struct timespec *ctime, int64_t started_ns)
{
    int64_t ns = (int64_t) ctime->tv_sec * 1000000000 + ctime->tv_nsec;
    return ns < started_ns - (ctime->tv_nsec? S_FINE_MARGIN_NS: self->racy_ns);
}

//  Remembers the unlisted candidates that exist in the exactly stamped
//  directories (read once each); returns the bytes they take. Where the
//  directory changed within the racy window (a build writes its objects
//  into the source directories all the time) or while it was read, only
//  candidates whose inode last changed before the window count: making a
//  name refer to an inode (create, link, rename) sets its ctime.
static size_t
s_entry_passed (listing_cache_t *self, s_entry_t *entry, int64_t started_ns)
{
    size_t bytes = 0;
    zhashx_t *reads = zhashx_new ();
    zhashx_set_destructor (reads, s_set_destroy);
    for (size_t i = 0; i < entry->guard_count; i++) {
        const s_guard_t *g = &entry->guards [i];
        const char *base = entry->base_at [g->base];
        const char *stamped = entry->path_at [g->path];
        char full [PATH_MAX];
        if (s_join_dir (base, entry->dir_at [g->dir], full) || !streq (full, stamped))
            continue;
        bool known = zhashx_lookup (reads, stamped) != NULL;
        zhashx_t *names = s_dir_names (reads, stamped);
        if (!names)
            continue;
        s_stamp_t after;
        if (!known && (g->always || s_stamp (stamped, &after) || !s_stamp_equal (&after, &g->stamp)))
            zhashx_insert (names, "", (void *) 1);     //  mark: not trusted as a whole
        bool trusted = !zhashx_lookup (names, "");
        for (uint32_t n = entry->dir_first [g->dir]; n != S_NONE; n = entry->name_next [n]) {
            const char *name = entry->names [n].name;
            char candidate [PATH_MAX];
            if (!zhashx_lookup (names, s_leaf (name))
            ||  (size_t) snprintf (candidate, sizeof candidate, "%s/%s", base, name)
                >= sizeof candidate
            ||  zhashx_lookup (entry->listed, candidate)
            ||  zhashx_lookup (entry->passed, candidate))
                continue;
            struct stat st;
            if (!trusted
            &&  (lstat (candidate, &st) || !s_older (self, &st.st_ctim, started_ns)))
                continue;
            zhashx_insert (entry->passed, candidate, (void *) 1);
            bytes += strlen (candidate) + 48;
        }
    }
    zhashx_destroy (&reads);
    return bytes;
}

//  Builds the entry outside the lock; NULL if it cannot be trusted.
static s_entry_t *
s_entry_build (listing_cache_t *self, const char *cwd, zlist_t *deps, zlist_t *search_dirs,
               int64_t started_ns, listing_hash_fn *hash, void *hash_arg)
{
    s_entry_t *entry = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    entry->deps = s_copy (deps);
    entry->listed = zhashx_new ();
    entry->bases = zlist_new ();
    zlist_autofree (entry->bases);
    entry->dirs = zlist_new ();
    zlist_autofree (entry->dirs);
    entry->paths = zlist_new ();
    zlist_autofree (entry->paths);
    zhashx_t *base_index = zhashx_new ();
    zhashx_t *dir_index = zhashx_new ();
    zhashx_t *path_index = zhashx_new ();
    zhashx_t *name_index = zhashx_new ();
    bool ok = true;
    size_t bytes = sizeof (s_entry_t);

    //  Listed files, stamped.
    entry->files = (s_file_t *) zmalloc ((zlist_size (deps) + 1) * sizeof (s_file_t));
    for (const char *dep = (const char *) zlist_first (deps); ok && dep;
         dep = (const char *) zlist_next (deps)) {
        char *path = s_absolute (cwd, dep);
        if (zhashx_lookup (entry->listed, path)) {
            free (path);
            continue;
        }
        s_file_t *file = &entry->files [entry->file_count];
        struct stat st;
        if (s_stamp_stat (path, &file->stamp, &st) || s_racy (self, &file->stamp, started_ns)
        ||  (hash && hash (hash_arg, path, &st, file->hash))) {
            free (path);
            ok = false;
            break;
        }
        file->hashed = hash != NULL;
        file->path = path;
        entry->file_count++;
        zhashx_insert (entry->listed, path, (void *) 1);
        bytes += 2 * strlen (path) + strlen (dep) + sizeof (s_file_t) + 64;
    }
    //  Search directories: the compiler's, and every listed file's own.
    for (const char *dir = (const char *) zlist_first (search_dirs); ok && dir;
         dir = (const char *) zlist_next (search_dirs)) {
        char *path = s_absolute (cwd, dir);
        size_t len = strlen (path);
        while (len > 1 && path [len - 1] == '/')
            path [--len] = 0;
        s_intern (base_index, entry->bases, path);
        free (path);
    }
    for (size_t i = 0; ok && i < entry->file_count; i++) {
        char *path = strdup (entry->files [i].path);
        char *slash = strrchr (path, '/');
        if (slash == path)
            slash [1] = 0;
        else
            *slash = 0;
        s_intern (base_index, entry->bases, path);
        free (path);
    }
    //  Names: each listed path relative to each base above it.
    entry->base_at = s_array (entry->bases);
    size_t base_count = zlist_size (entry->bases);
    size_t names_cap = 64;
    entry->names = (s_name_t *) zmalloc (names_cap * sizeof (s_name_t));
    for (size_t i = 0; ok && i < entry->file_count; i++) {
        const char *path = entry->files [i].path;
        for (size_t b = 0; b < base_count; b++) {
            const char *base = entry->base_at [b];
            size_t len = strlen (base);
            if (streq (base, "/"))
                len = 0;
            else
            if (strncmp (path, base, len) != 0)
                continue;
            if (path [len] != '/' || !path [len + 1])
                continue;
            const char *name = path + len + 1;
            if (zhashx_lookup (name_index, name))
                continue;
            if (entry->name_count == names_cap) {
                names_cap *= 2;
                entry->names = (s_name_t *) realloc (entry->names, names_cap * sizeof (s_name_t));
                if (!entry->names)
                    abort ();
            }
            s_name_t *n = &entry->names [entry->name_count++];
            n->name = strdup (name);
            zhashx_insert (name_index, n->name, (void *) 1);
            const char *last = strrchr (name, '/');
            char *dir = last ? strndup (name, (size_t) (last - name)) : strdup ("");
            n->dir = s_intern (dir_index, entry->dirs, dir);
            free (dir);
            bytes += 2 * strlen (name) + sizeof (s_name_t) + 32;
        }
    }
    entry->dir_at = s_array (entry->dirs);
    size_t dir_count = zlist_size (entry->dirs);
    entry->dir_first = (uint32_t *) zmalloc ((dir_count + 1) * sizeof (uint32_t));
    entry->name_next = (uint32_t *) zmalloc ((entry->name_count + 1) * sizeof (uint32_t));
    for (size_t d = 0; d < dir_count; d++)
        entry->dir_first [d] = S_NONE;
    for (size_t i = entry->name_count; i-- > 0; ) {
        entry->name_next [i] = entry->dir_first [entry->names [i].dir];
        entry->dir_first [entry->names [i].dir] = (uint32_t) i;
    }
    bytes += (dir_count + entry->name_count) * sizeof (uint32_t);
    //  Guards: for each (base, name directory), the deepest existing
    //  directory on the way, stamped (stat'ed once per distinct path).
    if (ok && base_count * dir_count > S_MAX_GUARDS)
        ok = false;
    if (ok) {
        entry->guards = (s_guard_t *) zmalloc ((base_count * dir_count + 1) * sizeof (s_guard_t));
        zhashx_t *stamped = zhashx_new ();        //  path -> s_stamp_t copy
        zhashx_set_destructor (stamped, NULL);
        s_stamp_t *stamps = (s_stamp_t *) zmalloc ((base_count * dir_count + 1) * sizeof (s_stamp_t));
        size_t stamp_count = 0;
        for (size_t b = 0; b < base_count; b++)
            for (size_t d = 0; d < dir_count; d++) {
                char path [PATH_MAX];
                if (s_join_dir (entry->base_at [b], entry->dir_at [d], path))
                    continue;
                s_stamp_t stamp;
                s_stamp_t *known = NULL;
                while (true) {
                    known = (s_stamp_t *) zhashx_lookup (stamped, path);
                    if (known || s_stamp (path, &stamp) == 0)
                        break;
                    char *slash = strrchr (path, '/');
                    if (!slash || slash == path) {
                        strcpy (path, "/");
                        if (s_stamp (path, &stamp))
                            ok = false;
                        break;
                    }
                    *slash = 0;
                }
                if (!ok)
                    break;
                if (!known) {
                    known = &stamps [stamp_count++];
                    *known = stamp;
                    zhashx_insert (stamped, path, known);
                }
                s_guard_t *g = &entry->guards [entry->guard_count++];
                g->base = (uint32_t) b;
                g->dir = (uint32_t) d;
                g->stamp = *known;
                g->always = s_racy (self, known, started_ns);
                g->path = s_intern (path_index, entry->paths, path);
            }
        zhashx_destroy (&stamped);
        free (stamps);
        bytes += entry->guard_count * sizeof (s_guard_t);
    }
    entry->path_at = s_array (entry->paths);
    entry->passed = zhashx_new ();
    if (ok)
        bytes += s_entry_passed (self, entry, started_ns);
    for (char *s = (char *) zlist_first (entry->bases); s; s = (char *) zlist_next (entry->bases))
        bytes += strlen (s) + 32;
    for (char *s = (char *) zlist_first (entry->paths); s; s = (char *) zlist_next (entry->paths))
        bytes += strlen (s) + 32;
    entry->bytes = bytes;
    zhashx_destroy (&base_index);
    zhashx_destroy (&dir_index);
    zhashx_destroy (&path_index);
    zhashx_destroy (&name_index);
    if (!ok) {
        void *item = entry;
        s_entry_destroy (&item);
        return NULL;
    }
    return entry;
}

bool
listing_cache_store (listing_cache_t *self, const uint8_t key [LISTING_KEY_SIZE],
                     const char *cwd, zlist_t *deps, zlist_t *search_dirs, int64_t started_ns,
                     listing_hash_fn *hash, void *hash_arg)
{
    s_entry_t *entry = NULL;
    if (deps && zlist_size (deps) > 0 && search_dirs && zlist_size (search_dirs) > 0)
        entry = s_entry_build (self, cwd, deps, search_dirs, started_ns, hash, hash_arg);
    pthread_mutex_lock (&self->mutex);
    if (!entry || entry->bytes > self->max_bytes) {
        self->counts.not_kept++;
        pthread_mutex_unlock (&self->mutex);
        if (entry) {
            void *item = entry;
            s_entry_destroy (&item);
        }
        return false;
    }
    memcpy (entry->key, key, LISTING_KEY_SIZE);
    char hex [2 * LISTING_KEY_SIZE + 1];
    s_key_hex (key, hex);
    s_entry_t *old = (s_entry_t *) zhashx_lookup (self->entries, hex);
    if (old) {
        self->bytes -= old->bytes;
        zhashx_delete (self->entries, hex);
    }
    //  Least recently used out until it fits (a linear scan: eviction is
    //  rare and the table holds at most a few thousand entries).
    while (self->bytes + entry->bytes > self->max_bytes && zhashx_size (self->entries) > 0) {
        s_entry_t *oldest = NULL;
        for (s_entry_t *e = (s_entry_t *) zhashx_first (self->entries); e;
             e = (s_entry_t *) zhashx_next (self->entries))
            if (!oldest || e->used < oldest->used)
                oldest = e;
        char oldest_hex [2 * LISTING_KEY_SIZE + 1];
        s_key_hex (oldest->key, oldest_hex);
        self->bytes -= oldest->bytes;
        zhashx_delete (self->entries, oldest_hex);
    }
    entry->used = ++self->clock;
    zhashx_insert (self->entries, hex, entry);
    self->bytes += entry->bytes;
    pthread_mutex_unlock (&self->mutex);
    return true;
}

void
listing_cache_counts (listing_cache_t *self, listing_cache_counts_t *counts)
{
    pthread_mutex_lock (&self->mutex);
    *counts = self->counts;
    counts->entries = zhashx_size (self->entries);
    counts->bytes = self->bytes;
    pthread_mutex_unlock (&self->mutex);
}

//  --------------------------------------------------------------------------
//  Self test: the rules on a scratch tree, without a compiler (inputs.c's
//  tests and test_node_listing run the real one).

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
}

//  Sets mtime 10 s into the past: older than the racy window.
static void
s_backdate (const char *path)
{
    struct timespec times [2];
    clock_gettime (CLOCK_REALTIME, &times [0]);
    times [0].tv_sec -= 10;
    times [1] = times [0];
    assert (utimensat (AT_FDCWD, path, times, 0) == 0);
}

//  Stores the listing as started at `started_ns`, then looks it up: reused?
static bool
s_store_reused (listing_cache_t *cache, const uint8_t *key, const char *cwd, zlist_t *deps,
                zlist_t *dirs, int64_t started_ns)
{
    assert (listing_cache_store (cache, key, cwd, deps, dirs, started_ns, NULL, NULL));
    zlist_t *got = listing_cache_lookup (cache, key, NULL, NULL);
    bool reused = got != NULL;
    zlist_destroy (&got);
    return reused;
}

void
listing_cache_test (bool verbose)
{
    if (verbose)
        printf (" * listing_cache: ");
    char root [] = "/tmp/meshcc-listing-test-XXXXXX";
    assert (mkdtemp (root));
    char src [256], inc [256], first [256], sub [256];
    char source [PATH_MAX], header [PATH_MAX], path [PATH_MAX];
    snprintf (src, sizeof src, "%s/src", root);
    snprintf (inc, sizeof inc, "%s/inc", root);
    snprintf (first, sizeof first, "%s/first", root);
    snprintf (sub, sizeof sub, "%s/inc/sub", root);
    snprintf (source, sizeof source, "%s/x.c", src);
    snprintf (header, sizeof header, "%s/sub/h.h", inc);
    assert (mkdir (src, 0755) == 0 && mkdir (inc, 0755) == 0 && mkdir (first, 0755) == 0);
    assert (mkdir (sub, 0755) == 0);
    s_write (source, "#include \"sub/h.h\"\n");
    s_write (header, "int x;\n");
    const char *old [] = { source, header, sub, src, inc, first, root, NULL };
    for (int i = 0; old [i]; i++)
        s_backdate (old [i]);

    zlist_t *deps = zlist_new ();
    zlist_append (deps, "x.c");
    zlist_append (deps, header);
    zlist_t *dirs = zlist_new ();
    zlist_append (dirs, first);
    zlist_append (dirs, inc);
    uint8_t key [LISTING_KEY_SIZE] = { 1 };
    listing_cache_t *cache = listing_cache_new (1 << 20, 2000);
    assert (listing_cache_lookup (cache, key, NULL, NULL) == NULL);
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    zlist_t *got = listing_cache_lookup (cache, key, NULL, NULL);
    assert (got && zlist_size (got) == 2 && streq ((char *) zlist_first (got), "x.c"));
    zlist_destroy (&got);

    //  An unrelated file in a search directory: looked into, still fresh.
    snprintf (path, sizeof path, "%s/x.o", src);
    s_write (path, "object");
    got = listing_cache_lookup (cache, key, NULL, NULL);
    assert (got);
    zlist_destroy (&got);

    //  A directory on the way to a shadowing header appears: still fresh
    //  (no header yet); then the header appears: stale, and dropped.
    snprintf (path, sizeof path, "%s/sub", first);
    assert (mkdir (path, 0755) == 0);
    got = listing_cache_lookup (cache, key, NULL, NULL);
    assert (got);
    zlist_destroy (&got);
    snprintf (path, sizeof path, "%s/sub/h.h", first);
    s_write (path, "int shadow;\n");
    assert (listing_cache_lookup (cache, key, NULL, NULL) == NULL);
    listing_cache_counts_t counts;
    listing_cache_counts (cache, &counts);
    assert (counts.hits == 3 && counts.stale == 1 && counts.misses == 1);
    assert (counts.entries == 0 && counts.bytes == 0);
    unlink (path);

    //  Directories changed within the racy window are looked into every
    //  time: a shadow next to the source (quote includes look there first).
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    snprintf (path, sizeof path, "%s/sub", src);
    assert (mkdir (path, 0755) == 0);
    snprintf (path, sizeof path, "%s/sub/h.h", src);
    s_write (path, "int shadow;\n");
    assert (listing_cache_lookup (cache, key, NULL, NULL) == NULL);
    unlink (path);

    //  A listed file changes: stale. A listed file too new: not kept.
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    s_write (header, "int x, y;\n");
    assert (listing_cache_lookup (cache, key, NULL, NULL) == NULL);
    assert (!listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    s_backdate (header);
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    //  A listed file removed: stale.
    unlink (source);
    assert (listing_cache_lookup (cache, key, NULL, NULL) == NULL);
    listing_cache_counts (cache, &counts);
    assert (counts.not_kept == 1 && counts.stale == 4);
    listing_cache_destroy (&cache);

    //  A header of the same name already in an earlier directory when the
    //  listing is made (the compiler passed over it): its directory
    //  changing is no reason to relist, a new name there is.
    s_write (source, "#include \"sub/h.h\"\n");
    s_backdate (source);
    snprintf (path, sizeof path, "%s/sub/h.h", first);
    s_write (path, "int passed;\n");
    s_backdate (path);
    snprintf (path, sizeof path, "%s/sub", first);
    s_backdate (path);
    s_backdate (first);
    cache = listing_cache_new (1 << 20, 2000);
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    snprintf (path, sizeof path, "%s/sub/other.h", first);
    s_write (path, "int other;\n");
    got = listing_cache_lookup (cache, key, NULL, NULL);
    assert (got);
    zlist_destroy (&got);
    snprintf (path, sizeof path, "%s/h.h", first);
    s_write (path, "int new_shadow;\n");           //  h.h is a name (inc/sub/h.h)
    assert (listing_cache_lookup (cache, key, NULL, NULL) == NULL);
    unlink (path);
    //  Its directory changed within the racy window of the listing (a
    //  build writes next to its sources): what was there is then known
    //  by the inode's ctime. One made as the listing started counts ...
    s_backdate (first);
    snprintf (path, sizeof path, "%s/sub", first);
    struct timespec later [2];
    clock_gettime (CLOCK_REALTIME, &later [0]);
    later [0].tv_sec += 5;
    later [1] = later [0];
    assert (utimensat (AT_FDCWD, path, later, 0) == 0);
    struct stat st;
    snprintf (path, sizeof path, "%s/sub/h.h", first);
    assert (stat (path, &st) == 0);
    int64_t made = (int64_t) st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    assert (!s_store_reused (cache, key, src, deps, dirs, made + 1000000));
    //  ... one made 3 s before the listing started does not (a listing
    //  that starts 3 s later), nor, with nanosecond times, one made 0.2 s
    //  before; 20 ms before, it still counts.
    assert (s_store_reused (cache, key, src, deps, dirs, made + 3000000000LL));
    if (st.st_ctim.tv_nsec) {
        assert (s_store_reused (cache, key, src, deps, dirs, made + 200000000LL));
        assert (!s_store_reused (cache, key, src, deps, dirs, made + 20000000LL));
    }
    assert (s_store_reused (cache, key, src, deps, dirs, made + 3000000000LL));
    listing_cache_destroy (&cache);
    snprintf (path, sizeof path, "%s/sub/other.h", first);
    unlink (path);
    snprintf (path, sizeof path, "%s/sub/h.h", first);
    unlink (path);

    //  Bounded: an entry bigger than the whole cache is not kept; a full
    //  cache drops its least recently used entry.
    cache = listing_cache_new (1, 2000);
    assert (!listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    listing_cache_destroy (&cache);
    cache = listing_cache_new (1 << 20, 2000);
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    listing_cache_counts (cache, &counts);
    size_t one = counts.bytes;
    listing_cache_destroy (&cache);
    cache = listing_cache_new (one * 2 + one / 2, 2000);
    uint8_t key2 [LISTING_KEY_SIZE] = { 2 }, key3 [LISTING_KEY_SIZE] = { 3 };
    assert (listing_cache_store (cache, key, src, deps, dirs, s_now_ns (), NULL, NULL));
    assert (listing_cache_store (cache, key2, src, deps, dirs, s_now_ns (), NULL, NULL));
    got = listing_cache_lookup (cache, key, NULL, NULL);       //  key is now the newer
    assert (got);
    zlist_destroy (&got);
    assert (listing_cache_store (cache, key3, src, deps, dirs, s_now_ns (), NULL, NULL));
    listing_cache_counts (cache, &counts);
    assert (counts.entries == 2 && counts.bytes <= one * 2 + one / 2);
    got = listing_cache_lookup (cache, key2, NULL, NULL);
    assert (got == NULL);
    got = listing_cache_lookup (cache, key, NULL, NULL);
    assert (got);
    zlist_destroy (&got);
    listing_cache_destroy (&cache);

    zlist_destroy (&deps);
    zlist_destroy (&dirs);
    char command [PATH_MAX + 16];
    snprintf (command, sizeof command, "rm -rf '%s'", root);
    assert (system (command) == 0);
    if (verbose)
        printf ("OK\n");
}
