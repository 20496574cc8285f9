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

/* A write error on stdout (error < 0): logs "cannot write output: ..." once, with note appended
 * when not NULL, and quietly for EPIPE without a note. Returns the first error. */
int output_failed(int error, const char *note);
/* Flushes stdout and calls output_failed() if anything written to it got lost; 0 if not. */
int check_output(const char *note);

/* Parses every ID argument, logging the first bad one. */
int parse_job_ids(char **args, size_t n, uint64_t **ret);

/* Each verb gets the arguments after the verb name and returns an exit code, or a negative errno
 * (already logged) for EXIT_ERROR. */
int verb_submit(int argc, char **argv);
int verb_watch(int argc, char **argv);
int verb_status(int argc, char **argv);
int verb_cancel(int argc, char **argv);
int verb_results(int argc, char **argv);
