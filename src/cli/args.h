// Declarative command-line options: each command lists its options once,
// with defaults already stored in the targets; the same table parses argv,
// checks ranges and choices, and prints --help. Unknown flags are errors.
#ifndef SSLC_CLI_ARGS_H
#define SSLC_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "src/core/status.h"

typedef enum sslc_arg_type {
    SSLC_ARG_INT,    // value: int64_t *
    SSLC_ARG_FLOAT,  // value: double *
    SSLC_ARG_STRING, // value: const char ** (points into argv)
    SSLC_ARG_CHOICE, // value: const char ** ; choices: "a|b|c"
    SSLC_ARG_FLAG,   // value: bool * ; --name sets, --no-name clears
} sslc_arg_type;

typedef struct sslc_arg {
    const char *name; // without the leading "--"
    sslc_arg_type type;
    void *value;
    const char *help;
    const char *choices; // SSLC_ARG_CHOICE only
    double min, max;     // numbers: checked when min < max
} sslc_arg;

typedef struct sslc_command_help {
    const char *name;        // "pretrain"
    const char *usage;       // "sslc pretrain [options]"
    const char *description; // a paragraph
} sslc_command_help;

enum { SSLC_ARGS_HELP = 1 }; // returned when --help was printed

// "auto": an option left to a default that depends on other options. Numbers
// hold SSLC_ARG_AUTO (ints) or NAN (floats), strings "auto"; the command
// resolves them before it prints the configuration.
#define SSLC_ARG_AUTO INT64_MIN

// Parses argv (argv[0] is the command name). Positional arguments are stored
// in positional[0..*n_positional) up to max_positional; more is an error.
// Returns SSLC_OK, SSLC_ARGS_HELP, or SSLC_ERR_INVALID with a message.
int sslc_args_parse(const sslc_command_help *help, const sslc_arg *args, size_t n_args, int argc,
                    char **argv, const char **positional, int max_positional, int *n_positional);

// Every command also takes --verbose (-v): debug lines, and the resolved
// configuration printed by sslc_args_print_verbose (else it is only stored:
// config.txt, checkpoints).
void sslc_args_print_verbose(const char *command, const char *config);

// Writes "  --name=value" lines of the resolved configuration to out.
void sslc_args_print(FILE *out, const sslc_arg *args, size_t n_args);

// The same lines as one malloc'd string (stored with runs and models);
// NULL with a message when out of memory.
char *sslc_args_format(const sslc_arg *args, size_t n_args);

#endif
