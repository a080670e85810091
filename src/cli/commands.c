#include "src/cli/commands.h"

#include <stdio.h>

#include "src/core/status.h"

int sslc_cli_fail(const char *command, int status)
{
    const char *msg = sslc_error_message();
    fprintf(stderr, "sslc %s: %s\n", command, msg[0] ? msg : sslc_status_string(status));
    return status == SSLC_ERR_INVALID ? 2 : 1;
}
