// Sub-commands of the sslc binary. Each takes argv with argv[0] = its name
// and returns a process exit code (0 ok, 1 failure, 2 usage error).
#ifndef SSLC_CLI_COMMANDS_H
#define SSLC_CLI_COMMANDS_H

int sslc_cmd_bench(int argc, char **argv);
int sslc_cmd_pretrain(int argc, char **argv);
int sslc_cmd_info(int argc, char **argv);
int sslc_cmd_export(int argc, char **argv);
int sslc_cmd_augment_preview(int argc, char **argv);
int sslc_cmd_linear_eval(int argc, char **argv);
int sslc_cmd_finetune(int argc, char **argv);
int sslc_cmd_supervised(int argc, char **argv);
int sslc_cmd_distill(int argc, char **argv);
int sslc_cmd_knn(int argc, char **argv);
int sslc_cmd_embed(int argc, char **argv);
int sslc_cmd_scan(int argc, char **argv);

// Peak resident memory of this process so far, MiB.
double sslc_peak_rss_mib(void);

// Prints "sslc <command>: <message>" for a failed status and returns the
// exit code for it (2 for invalid usage, 1 otherwise).
int sslc_cli_fail(const char *command, int status);

#endif
