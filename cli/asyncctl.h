/* SPDX-License-Identifier: MIT */
/* asyncctl: the command-line options shared by the verbs, and the verbs themselves. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "bus-client.h"
#include "output.h"

extern BusTransport arg_transport;
extern const char *arg_address;
extern JsonMode arg_json;
extern bool arg_legend;
extern bool arg_quiet;
extern bool arg_verbose;
extern bool arg_wait;
extern const char *arg_directory;
extern const char *arg_input;
extern SubmitOptions arg_submit;

/* Connects to the bus chosen on the command line; logs the failure. */
int connect_bus(sd_bus **ret);

/* Parses every ID argument, logging the first bad one. */
int parse_job_ids(char **args, size_t n, uint64_t **ret);

/* Each verb gets the arguments after the verb name and returns an exit code, or a negative errno
 * (already logged) for EXIT_ERROR. */
int verb_submit(int argc, char **argv);
int verb_watch(int argc, char **argv);
int verb_status(int argc, char **argv);
int verb_cancel(int argc, char **argv);
int verb_results(int argc, char **argv);
