/* A GNU make plugin (the Makefile loads it with `-load`): $(exit-status PREFIX) reads the exit code
 * a recipe wrote to PREFIX.<make's pid>, deletes the file, and if the code is not 0 ends make with
 * it. GNU make itself ends with 2 whenever a recipe fails, whatever the recipe's code was; this is
 * how `make plan` returns the program's own code (docs/reliability.md, "Exit codes"). Without a C
 * compiler the Makefile falls back to failing the recipe: make then exits 2 and its
 * "*** [...] Error N" line carries the code.
 *
 * The few declarations of make's loadable-object API it uses are repeated here (gnumake.h is
 * not installed everywhere make is). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int plugin_is_GPL_compatible;

typedef char *(*gmk_func_ptr)(const char *name, unsigned int argc, char **argv);
void gmk_add_function(const char *name, gmk_func_ptr func, unsigned int min_args,
                      unsigned int max_args, unsigned int flags);

static char *exit_status(const char *name, unsigned int argc, char **argv) {
    char path[4096];
    int code = 0;
    FILE *file;
    (void)name;
    (void)argc;
    snprintf(path, sizeof path, "%s.%ld", argv[0], (long)getpid());
    file = fopen(path, "r");
    if (file == NULL)
        return NULL;
    if (fscanf(file, "%d", &code) != 1)
        code = 0;
    fclose(file);
    unlink(path);
    if (code == 0)
        return NULL;
    fflush(stdout);
    fflush(stderr);
    while (wait(NULL) > 0) /* as make does on an error: let the other jobs (make -j) finish */
        ;
    exit(code);
}

int exit_status_gmk_setup(const void *floc) {
    (void)floc;
    gmk_add_function("exit-status", exit_status, 1, 1, 0);
    return 1;
}
