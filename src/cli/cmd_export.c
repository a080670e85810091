// sslc export: the encoder of a training checkpoint, alone, for fine-tuning
// elsewhere (scripts/sslc_torch.py loads it into torchvision); with --merge,
// an adapter folded into its weights first.
#include <stdio.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/fs.h"
#include "src/eval/adapter.h"
#include "src/eval/encoder.h"
#include "src/io/checkpoint.h"

// The encoder of src with the adapter folded in (LoRA: W + (alpha / r) B A),
// written as a plain encoder: the same tensors as the base, so it loads
// wherever the base does.
static sslc_status export_merged(const char *out, const char *src, const char *adapter)
{
    sslc_encoder enc = {0};
    sslc_encoder_info info;
    sslc_ckpt_info ci = {0};
    sslc_status st;
    if ((st = sslc_ckpt_read_info(src, &ci)) || (st = sslc_encoder_load(&enc, &info, src, 0)) ||
        (st = sslc_adapter_apply(&enc, adapter)))
        goto done;
    if (sslc_encoder_prompts(&enc)) {
        st = sslc_error(SSLC_ERR_INVALID,
                        "export --merge: %s holds visual prompts, extra input tokens rather than "
                        "a change of weights: they cannot be folded into a plain encoder (use it "
                        "with --adapter on %s)",
                        adapter, src);
        goto done;
    }
    st = sslc_encoder_save(out, &enc, NULL, info.method, ci.config, info.image_size, ci.seed,
                           info.step, info.epoch);
done:
    sslc_encoder_destroy(&enc);
    sslc_ckpt_info_free(&ci);
    return st;
}

int sslc_cmd_export(int argc, char **argv)
{
    static const sslc_command_help help = {
        "export", "sslc export [options] CHECKPOINT.h5 --out ENCODER.h5",
        "Writes a file with only the model options and one part (the encoder by default) of a "
        "training checkpoint or run folder: no projector, optimizer or queue. --merge "
        "ADAPTER folds an adapter of that checkpoint (finetune --out DIR/adapter.h5: LoRA, "
        "bias, bn-head) into the encoder's weights. The file is written atomically and loads "
        "with scripts/sslc_torch.py."};
    const char *out = NULL, *part = "encoder", *merge = "";
    const sslc_arg args[] = {
        {"out", SSLC_ARG_STRING, &out, "the file to write", NULL, 0, 0},
        {"part", SSLC_ARG_STRING, &part, "which part to export", NULL, 0, 0},
        {"merge", SSLC_ARG_STRING, &merge, "an adapter file of CHECKPOINT to fold into the encoder", NULL, 0, 0},
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
    if (st == SSLC_OK && merge[0] && strcmp(part, "encoder"))
        st = sslc_error(SSLC_ERR_INVALID, "--merge adapts the encoder: it goes with --part encoder");
    char path[4096];
    if (st == SSLC_OK)
        st = sslc_ckpt_resolve(src, path, sizeof path);
    if (st == SSLC_OK)
        st = sslc_make_parent_dir(out, "--out");
    if (st == SSLC_OK)
        st = merge[0] ? export_merged(out, path, merge) : sslc_ckpt_export(out, path, part);
    if (st != SSLC_OK)
        return sslc_cli_fail("export", st);
    if (merge[0])
        printf("sslc export: wrote %s (encoder of %s with %s merged)\n", out, path, merge);
    else
        printf("sslc export: wrote %s (%s of %s)\n", out, part, path);
    return 0;
}
