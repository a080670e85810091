// sslc bench: times encoder forward + backward and eval-mode forward.
#include <stdio.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"

int sslc_cmd_bench(int argc, char **argv)
{
    static const sslc_command_help help = {
        "bench", "sslc bench [options]",
        "Times ResNet forward + backward (training mode) and eval-mode forward."};
    int64_t batch = 512;
    const sslc_arg args[] = {
        {"batch", SSLC_ARG_INT, &batch, "images per step", NULL, 1, 1 << 20},
    };
    int st = sslc_args_parse(&help, args, sizeof args / sizeof args[0], argc, argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st != SSLC_OK)
        return sslc_cli_fail("bench", st);
    return sslc_cli_fail("bench", sslc_error(SSLC_ERR_UNSUPPORTED, "not built yet"));
}
