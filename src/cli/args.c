#include "src/cli/args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/log.h"

static void print_value(FILE *out, const sslc_arg *a)
{
    switch (a->type) {
    case SSLC_ARG_INT:
        if (*(int64_t *)a->value == SSLC_ARG_AUTO)
            fprintf(out, "auto");
        else
            fprintf(out, "%" PRId64, *(int64_t *)a->value);
        break;
    case SSLC_ARG_FLOAT: {
        double v = *(double *)a->value;
        if (isnan(v))
            fprintf(out, "auto"); // NaN marks "not set: the recipe's default"
        else { // the shortest text that reads back as the same double
            char buf[32];
            for (int digits = 6; digits <= 17; digits++) {
                snprintf(buf, sizeof buf, "%.*g", digits, v);
                if (strtod(buf, NULL) == v)
                    break;
            }
            fprintf(out, "%s", buf);
        }
        break;
    }
    case SSLC_ARG_STRING:
    case SSLC_ARG_CHOICE: {
        const char *s = *(const char **)a->value;
        fprintf(out, "%s", s ? s : "");
        break;
    }
    case SSLC_ARG_FLAG: fprintf(out, "%s", *(bool *)a->value ? "true" : "false"); break;
    }
}

static void print_help(const sslc_command_help *help, const sslc_arg *args, size_t n)
{
    printf("usage: %s\n\n%s\n\noptions:\n", help->usage, help->description);
    for (size_t i = 0; i < n; i++) {
        const sslc_arg *a = &args[i];
        char left[96];
        const char *meta = a->type == SSLC_ARG_INT      ? "=N"
                           : a->type == SSLC_ARG_FLOAT  ? "=X"
                           : a->type == SSLC_ARG_STRING ? "=S"
                           : a->type == SSLC_ARG_CHOICE ? "=C"
                                                        : "";
        snprintf(left, sizeof left, "--%s%s", a->name, meta);
        printf("  %-26s %s", left, a->help);
        if (a->type == SSLC_ARG_CHOICE)
            printf(" {%s}", a->choices);
        printf(" (default: ");
        print_value(stdout, a);
        printf(")\n");
    }
    printf("  %-26s %s\n", "--verbose", "also print the resolved configuration and debug lines");
    printf("  %-26s %s\n", "--help", "show this help and exit");
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t len = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, v, n) == 0)
            return true;
        p += n + (bar ? 1 : 0);
    }
    return false;
}

static int set_value(const sslc_arg *a, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (a->type) {
    case SSLC_ARG_INT: {
        if (strcmp(v, "auto") == 0) {
            *(int64_t *)a->value = SSLC_ARG_AUTO;
            return SSLC_OK;
        }
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            return sslc_error(SSLC_ERR_INVALID, "--%s wants an integer, got '%s'", a->name, v);
        if (a->min < a->max && (x < a->min || x > a->max))
            return sslc_error(SSLC_ERR_INVALID, "--%s=%lld is outside [%lld, %lld]", a->name,
                              x, (long long)a->min, (long long)a->max);
        *(int64_t *)a->value = x;
        return SSLC_OK;
    }
    case SSLC_ARG_FLOAT: {
        if (strcmp(v, "auto") == 0) {
            *(double *)a->value = NAN;
            return SSLC_OK;
        }
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return sslc_error(SSLC_ERR_INVALID, "--%s wants a number, got '%s'", a->name,
                              v);
        if (a->min < a->max && (x < a->min || x > a->max))
            return sslc_error(SSLC_ERR_INVALID, "--%s=%g is outside [%g, %g]", a->name, x,
                              a->min, a->max);
        *(double *)a->value = x;
        return SSLC_OK;
    }
    case SSLC_ARG_CHOICE:
        if (!choice_ok(a->choices, v))
            return sslc_error(SSLC_ERR_INVALID, "--%s=%s is not one of {%s}", a->name, v,
                              a->choices);
        *(const char **)a->value = v;
        return SSLC_OK;
    case SSLC_ARG_STRING: *(const char **)a->value = v; return SSLC_OK;
    case SSLC_ARG_FLAG:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)a->value = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)a->value = false;
        else
            return sslc_error(SSLC_ERR_INVALID, "--%s wants true or false, got '%s'", a->name, v);
        return SSLC_OK;
    }
    return SSLC_ERR_INVALID;
}

int sslc_args_parse(const sslc_command_help *help, const sslc_arg *args, size_t n_args, int argc,
                    char **argv, const char **positional, int max_positional, int *n_positional)
{
    int npos = 0;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (only_positional || s[0] != '-' || s[1] == '\0') {
            if (npos >= max_positional)
                return sslc_error(SSLC_ERR_INVALID, "unexpected argument '%s' (see --help)",
                                  s);
            positional[npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            print_help(help, args, n_args);
            return SSLC_ARGS_HELP;
        }
        if (strcmp(s, "--verbose") == 0 || strcmp(s, "-v") == 0) {
            sslc_log_set_level(SSLC_LOG_DEBUG);
            continue;
        }
        if (s[1] != '-')
            return sslc_error(SSLC_ERR_INVALID, "unknown option '%s' (see --help)", s);
        const char *name = s + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const sslc_arg *match = NULL;
        bool negated = false;
        for (size_t k = 0; k < n_args && !match; k++) {
            if (strlen(args[k].name) == len && strncmp(args[k].name, name, len) == 0)
                match = &args[k];
            else if (args[k].type == SSLC_ARG_FLAG && len == strlen(args[k].name) + 3 &&
                     strncmp(name, "no-", 3) == 0 &&
                     strncmp(name + 3, args[k].name, len - 3) == 0) {
                match = &args[k];
                negated = true;
            }
        }
        if (!match)
            return sslc_error(SSLC_ERR_INVALID, "unknown option '--%.*s' (see --help)", (int)len, name);
        const char *value;
        if (match->type == SSLC_ARG_FLAG && !eq) {
            *(bool *)match->value = !negated;
            continue;
        }
        if (negated)
            return sslc_error(SSLC_ERR_INVALID, "--no-%s takes no value", match->name);
        if (eq)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return sslc_error(SSLC_ERR_INVALID, "--%s needs a value", match->name);
        int st = set_value(match, value);
        if (st != SSLC_OK)
            return st;
    }
    if (n_positional)
        *n_positional = npos;
    return SSLC_OK;
}

void sslc_args_print_verbose(const char *command, const char *config)
{
    if (sslc_log_get_level() >= SSLC_LOG_DEBUG)
        fprintf(stderr, "sslc %s: resolved configuration\n%s", command, config);
}

void sslc_args_print(FILE *out, const sslc_arg *args, size_t n_args)
{
    for (size_t i = 0; i < n_args; i++) {
        fprintf(out, "  --%s=", args[i].name);
        print_value(out, &args[i]);
        fputc('\n', out);
    }
}

char *sslc_args_format(const sslc_arg *args, size_t n_args)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        sslc_error(SSLC_ERR_NOMEM, "cannot format the configuration");
        return NULL;
    }
    sslc_args_print(mem, args, n_args);
    fclose(mem);
    return text;
}
