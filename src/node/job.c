//  job: lifecycles of the job description and result values (job.h).

#include <czmq.h>
#include <stdarg.h>
#include "meshcc/job.h"

static void
s_free_strings (char **strings)
{
    if (strings) {
        for (char **s = strings; *s; s++)
            free (*s);
        free (strings);
    }
}

job_spec_t *
job_spec_new (void)
{
    return (job_spec_t *) zmalloc (sizeof (job_spec_t));
}

void
job_spec_destroy (job_spec_t **self_p)
{
    if (self_p && *self_p) {
        job_spec_t *self = *self_p;
        s_free_strings (self->argv);
        s_free_strings (self->envp);
        free (self->cwd);
        for (size_t i = 0; i < self->entry_count; i++) {
            free (self->entries [i].path);
            free (self->entries [i].target);
        }
        free (self->entries);
        free (self);
        *self_p = NULL;
    }
}

job_result_t *
job_result_new (void)
{
    return (job_result_t *) zmalloc (sizeof (job_result_t));
}

void
job_result_destroy (job_result_t **self_p)
{
    if (self_p && *self_p) {
        job_result_t *self = *self_p;
        free (self->failure);
        free (self->out);
        free (self->err);
        for (size_t i = 0; i < self->output_count; i++) {
            free (self->outputs [i].path);
            free (self->outputs [i].data);
        }
        free (self->outputs);
        free (self);
        *self_p = NULL;
    }
}

void
job_result_fail (job_result_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *reason = NULL;
    if (vasprintf (&reason, format, args) < 0)
        abort ();
    va_end (args);
    free (self->failure);
    self->failure = reason;
}
