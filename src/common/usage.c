//  usage: git-style messages and exits for the command-line programs.
//  Owns the program name used as the prefix; writes only to stderr.

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "meshcc/usage.h"

static const char *s_program = "meshcc";

void
usage_set_program (const char *name)
{
    s_program = name;
}

const char *
usage_program (void)
{
    return s_program;
}

static void
s_report (const char *prefix, const char *format, va_list args)
{
    fprintf (stderr, "%s: %s", s_program, prefix);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
}

void
die (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_report ("fatal: ", format, args);
    va_end (args);
    exit (128);
}

int
error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_report ("error: ", format, args);
    va_end (args);
    return -1;
}

void
warning (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_report ("warning: ", format, args);
    va_end (args);
}

void
usage_die (const char *usage_text)
{
    fprintf (stderr, "usage: %s\n", usage_text);
    exit (129);
}
