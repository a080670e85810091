// sslc: self-supervised contrastive pretraining. One binary, sub-commands.
#include <stdio.h>
#include <string.h>

#include "src/cli/commands.h"
#include "src/core/gemm.h"
#include "src/core/log.h"
#include "src/core/status.h"
#include "src/core/threads.h"
#include "src/dist/dist.h"
#include "src/nn/layers.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    bool parallel; // splits its work over MPI ranks; else rank 0 runs it alone
} command;

static const command commands[] = {
    {"pretrain", sslc_cmd_pretrain, "contrastive pretraining (SimCLR, MoCo) of a ResNet encoder", true},
    {"bench", sslc_cmd_bench, "time encoder forward/backward (and compare with PyTorch)", false},
    {"info", sslc_cmd_info, "show what a checkpoint holds (model, step, tensors, config)", false},
    {"export", sslc_cmd_export, "write just the encoder of a checkpoint, for fine-tuning", false},
    {"augment-preview", sslc_cmd_augment_preview, "write a PNG contact sheet of an image's views", false},
    {"linear-eval", sslc_cmd_linear_eval, "linear probe of a frozen encoder on 1% / 10% / 100% of the labels", true},
    {"finetune", sslc_cmd_finetune, "fine-tune a pretrained encoder + classifier on a labelled subset", false},
    {"distill", sslc_cmd_distill, "distil a fine-tuned teacher into a student on unlabeled images (SimCLRv2)", false},
    {"supervised", sslc_cmd_supervised, "supervised baseline: the encoder from scratch on a labelled subset", false},
    {"knn", sslc_cmd_knn, "weighted kNN accuracy of an encoder's features (no training)", true},
    {"embed", sslc_cmd_embed, "write the features of every image of a dataset (HDF5 or .npy)", true},
    {"scan", sslc_cmd_scan, "decode every image of a dataset and summarise it (before a long run)", false},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sslc <command> [options]   (sslc <command> --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-16s %s\n", "version", "print the version, math backend, ISA and convolution layout");
}

static int run_command(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        const char *isa = sslc_math_isa();
        printf("sslc %s (math: %s%s%s, convolutions %s %s, %d threads; %s)\n", SSLC_VERSION,
               sslc_gemm_backend(), *isa ? " on " : "", isa, sslc_conv2d_impl(),
               sslc_conv2d_layout(), sslc_get_threads(), sslc_dist_describe());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            if (!commands[i].parallel && sslc_dist_size() > 1 && !sslc_dist_solo())
                return 0; // under mpirun, rank 0 does it alone
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "sslc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    sslc_flush_denormals(); // before any thread starts, so that they all inherit it
    // Under mpirun / srun every rank runs the command; rank 0 speaks for all.
    sslc_status st = sslc_dist_init();
    if (st) {
        fprintf(stderr, "sslc: %s\n", sslc_error_message());
        return 1;
    }
    if (sslc_dist_rank() > 0) { // rank 0 speaks and writes for all
        sslc_log_set_level(SSLC_LOG_WARN);
        if (!freopen("/dev/null", "w", stdout))
            return 1;
    }
    int code = run_command(argc, argv);
    if (code != 0 && sslc_dist_size() > 1 && !sslc_dist_is_in_step())
        sslc_dist_abort(); // the other ranks may wait in a collective
    sslc_dist_finalize();
    return code;
}
