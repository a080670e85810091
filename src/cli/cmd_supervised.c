// sslc supervised: the baseline, the same encoder trained from random
// initialisation on the labelled subset only (cmd_finetune.c does the work).
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"

int sslc_cmd_supervised(int argc, char **argv)
{
    return sslc_cli_train_classifier(argc, argv, true);
}
