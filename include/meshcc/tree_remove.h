//  tree_remove: removes a directory tree that something untrusted may have
//  filled (a sandboxed compile's job root, a refused archive's half
//  unpacking): never follows a symlink, never leaves the file system the
//  tree starts on, and makes every directory writable and searchable by
//  its owner before reading it (a hostile tree may hold 000 directories).
//  Shared by the executor, the toolchain store and the node's toolchain
//  eviction. Owns nothing; reads and removes only below `path`.

#ifndef MESHCC_TREE_REMOVE_H_INCLUDED
#define MESHCC_TREE_REMOVE_H_INCLUDED

#include <stdbool.h>

//  Removes `path` and everything below it, as far as it can (errors are
//  not reported: a caller that must know checks that the path is gone).
void tree_remove (const char *path);

void tree_remove_test (bool verbose);

#endif
