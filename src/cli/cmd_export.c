// sslc export: the encoder of a training checkpoint, alone, for fine-tuning
// elsewhere (scripts/sslc_torch.py loads it into torchvision).
#include <stdio.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/fs.h"
#include "src/io/checkpoint.h"

int sslc_cmd_export(int argc, char **argv)
{
    static const sslc_command_help help = {
        "export", "sslc export [options] CHECKPOINT.h5 --out ENCODER.h5",
        "Writes a file with only the model options and one part (the encoder by default) of a "
        "training checkpoint or run folder: no projector, optimizer or queue. The file is "
        "written atomically and loads with scripts/sslc_torch.py."};
    const char *out = NULL, *part = "encoder";
    const sslc_arg args[] = {
        {"out", SSLC_ARG_STRING, &out, "the file to write", NULL, 0, 0},
        {"part", SSLC_ARG_STRING, &part, "which part to export", NULL, 0, 0},
    };
    const char *src = NULL;
    int npos = 0;
    int st = sslc_args_parse(&help, args, sizeof args / sizeof args[0], argc, argv, &src, 1,
                             &npos);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st == SSLC_OK && npos != 1)
        st = sslc_error(SSLC_ERR_INVALID, "which checkpoint? (sslc export CKPT --out FILE)");
    if (st == SSLC_OK && !out)
        st = sslc_error(SSLC_ERR_INVALID, "--out FILE is required");
    char path[4096];
    if (st == SSLC_OK)
        st = sslc_ckpt_resolve(src, path, sizeof path);
    if (st == SSLC_OK)
        st = sslc_make_parent_dir(out, "--out");
    if (st == SSLC_OK)
        st = sslc_ckpt_export(out, path, part);
    if (st != SSLC_OK)
        return sslc_cli_fail("export", st);
    printf("sslc export: wrote %s (%s of %s)\n", out, part, path);
    return 0;
}
