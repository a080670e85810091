#include "src/cli/commands.h"

#include <stdio.h>

#include "src/core/status.h"
#include "src/dist/dist.h"

int sslc_cli_fail(const char *command, int status)
{
    const char *msg = sslc_error_message();
    if (sslc_dist_size() > 1) // every rank reports; a relayed failure names its rank itself
        fprintf(stderr, "sslc %s (rank %d): %s\n", command, sslc_dist_rank(),
                msg[0] ? msg : sslc_status_string(status));
    else
        fprintf(stderr, "sslc %s: %s\n", command, msg[0] ? msg : sslc_status_string(status));
    return status == SSLC_ERR_INVALID ? 2 : 1;
}
