//  tree_remove: see tree_remove.h. Recursion through directory file
//  descriptors (openat, unlinkat relative to the parent), so no path ever
//  grows long and no component can be swapped for a symlink between the
//  check and the use.

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "meshcc/tree_remove.h"

#define TREE_REMOVE_MAX_DEPTH 256

//  Removes NAME (relative to the directory open on `parent`, or a path)
//  and everything below it, on device `dev` only.
static void
s_remove_at (int parent, const char *name, dev_t dev, int depth)
{
    struct stat st;
    if (fstatat (parent, name, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != dev)
        return;
    if (!S_ISDIR (st.st_mode)) {
        unlinkat (parent, name, 0);
        return;
    }
    if ((st.st_mode & 0700) != 0700)
        fchmodat (parent, name, (st.st_mode & 07777) | 0700, 0);
    int fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
    if (dir && depth < TREE_REMOVE_MAX_DEPTH) {
        //  Names first, removals after: readdir while unlinking is allowed
        //  to skip entries.
        char **names = NULL;
        size_t count = 0, cap = 0;
        struct dirent *item;
        while ((item = readdir (dir))) {
            if (!strcmp (item->d_name, ".") || !strcmp (item->d_name, ".."))
                continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 32;
                names = (char **) realloc (names, cap * sizeof (char *));
                if (!names)
                    abort ();
            }
            if (!(names [count++] = strdup (item->d_name)))
                abort ();
        }
        for (size_t i = 0; i < count; i++) {
            s_remove_at (dirfd (dir), names [i], dev, depth + 1);
            free (names [i]);
        }
        free (names);
    }
    if (dir)
        closedir (dir);
    else
    if (fd >= 0)
        close (fd);
    unlinkat (parent, name, AT_REMOVEDIR);
}

void
tree_remove (const char *path)
{
    struct stat st;
    if (lstat (path, &st) == 0)
        s_remove_at (AT_FDCWD, path, st.st_dev, 0);
}

void
tree_remove_test (bool verbose)
{
    if (verbose)
        printf (" * tree_remove: ");
    char root [] = "/tmp/meshcc-tree-remove-XXXXXX";
    assert (mkdtemp (root));
    char path [256], outside [256];
    //  A tree with a 000 directory, a file and a symlink to a file outside
    snprintf (outside, sizeof outside, "%s.outside", root);
    FILE *file = fopen (outside, "w");
    assert (file);
    fclose (file);
    snprintf (path, sizeof path, "%s/a", root);
    assert (mkdir (path, 0755) == 0);
    snprintf (path, sizeof path, "%s/a/b", root);
    assert (mkdir (path, 0755) == 0);
    snprintf (path, sizeof path, "%s/a/b/f", root);
    file = fopen (path, "w");
    assert (file);
    fclose (file);
    snprintf (path, sizeof path, "%s/a/link", root);
    assert (symlink (outside, path) == 0);
    snprintf (path, sizeof path, "%s/a/b", root);
    assert (chmod (path, 0) == 0);
    tree_remove (root);
    struct stat st;
    assert (lstat (root, &st) == -1);
    assert (lstat (outside, &st) == 0);             //  the link was not followed
    unlink (outside);
    tree_remove (root);                             //  gone already: nothing happens
    if (verbose)
        printf ("OK\n");
}
