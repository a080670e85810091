// sslc info: what is inside a checkpoint, in a readable form.
#include <stdbool.h>
#include <stdio.h>

#include "src/cli/args.h"
#include "src/cli/ckpt_print.h"
#include "src/cli/commands.h"

int sslc_cmd_info(int argc, char **argv)
{
    static const sslc_command_help help = {
        "info", "sslc info [options] CHECKPOINT.h5",
        "Prints what a checkpoint holds: method, architecture and model options, training "
        "position, optimizer state, every tensor with its shape, and the configuration."};
    bool tensors = true;
    const sslc_arg args[] = {
        {"tensors", SSLC_ARG_FLAG, &tensors, "list every tensor and its shape", NULL, 0, 0},
    };
    const char *path = NULL;
    int npos = 0;
    int st = sslc_args_parse(&help, args, sizeof args / sizeof args[0], argc, argv, &path, 1,
                             &npos);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st == SSLC_OK && npos != 1)
        st = sslc_error(SSLC_ERR_INVALID, "which checkpoint? (sslc info CHECKPOINT.h5)");
    if (st == SSLC_OK)
        st = sslc_ckpt_print(stdout, path, tensors);
    return st == SSLC_OK ? 0 : sslc_cli_fail("info", st);
}
