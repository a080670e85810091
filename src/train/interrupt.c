#include "src/train/interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending;
static struct sigaction previous_int, previous_term;
static int installed;

static void on_signal(int sig)
{
    // Only async-signal-safe work here: record which signal came.
    pending = sig;
}

sslc_status sslc_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    // SA_RESETHAND: a second signal of the same kind takes the default
    // action (terminate) instead of waiting for the step to finish.
    sa.sa_flags = SA_RESETHAND;
    pending = 0;
    if (sigaction(SIGINT, &sa, &previous_int) != 0)
        return sslc_error(SSLC_ERR_INTERNAL, "cannot install a SIGINT handler: %s",
                          strerror(errno));
    if (sigaction(SIGTERM, &sa, &previous_term) != 0) {
        sigaction(SIGINT, &previous_int, NULL);
        return sslc_error(SSLC_ERR_INTERNAL, "cannot install a SIGTERM handler: %s",
                          strerror(errno));
    }
    installed = 1;
    return SSLC_OK;
}

void sslc_interrupt_restore(void)
{
    if (!installed)
        return;
    sigaction(SIGINT, &previous_int, NULL);
    sigaction(SIGTERM, &previous_term, NULL);
    installed = 0;
}

int sslc_interrupt_pending(void) { return (int)pending; }
