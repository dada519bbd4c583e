//  usage: git-style reporting for the command-line programs (meshcc and
//  meshccd's option and configuration handling). Owns the program name and
//  the message format; never used inside the running node's event loop,
//  which logs instead (die() there would skip the graceful leave).
//
//    die ("...")      prints "PROG: fatal: ..." and exits 128
//    error ("...")    prints "PROG: error: ...", returns -1
//    warning ("...")  prints "PROG: warning: ..."
//    usage_die ("...") prints the usage text given and exits 129

#ifndef MESHCC_USAGE_H_INCLUDED
#define MESHCC_USAGE_H_INCLUDED

#include <stdnoreturn.h>

void usage_set_program (const char *name);
const char *usage_program (void);

noreturn void die (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
int  error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
void warning (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
noreturn void usage_die (const char *usage_text);

#endif
