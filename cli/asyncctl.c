/* SPDX-License-Identifier: MIT */
/* asyncctl: the command-line client of asyncd — option parsing, the verb table and main(). */
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asyncctl.h"
#include "config.h"
#include "job-result.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "utf8-util.h"

BusTransport arg_transport = BUS_TRANSPORT_SYSTEM;
const char *arg_address = NULL;
JsonMode arg_json = JSON_OFF;
bool arg_legend = true;
bool arg_quiet = false;
bool arg_verbose = false;
bool arg_wait = true;
const char *arg_directory = NULL;
const char *arg_input = NULL;
SubmitOptions arg_submit = { .overwrite = -1, .fsync = -1 };

/* The daemon's limit for the concurrency option (io.asyncd1(5)): checked here too, so that an
 * out-of-range -m is a usage error that says the range, not a refused job. */
#define CONCURRENCY_MAX 1000U

/* The first option given that only submit (or only submit and watch) uses, for the check in
 * dispatch_verb(): 0 when there is none. */
static int submit_option = 0;
static bool verbose_option = false;

/* The first write error on stdout, once it has been logged. */
static int output_error = 0;

static void help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n"
               "\n"
               "Submit downloads to asyncd and follow them.\n"
               "\n"
               "Commands:\n"
               "  submit URL...            Submit one job and show its results as they complete\n"
               "  status [ID...]           List the jobs, or show the details of some\n"
               "  cancel ID...             Cancel jobs\n"
               "  watch ID                 Replay a job's results so far, then follow it\n"
               "  results ID               Show every result of a job, in completion order\n"
               "\n"
               "Options:\n"
               "  -h --help                Show this help\n"
               "     --version             Show the package version\n"
               "     --system              Talk to the system instance (the default)\n"
               "     --user                Talk to the instance of the calling user\n"
               "     --bus-address=ADDRESS Talk to the instance on the bus at ADDRESS\n"
               "     --json=MODE           Output JSON: short, pretty, or off (text, the default)\n"
               "  -j                       Same as --json=pretty on a terminal, else --json=short\n"
               "     --no-legend           status, results: leave out the header row and the count line\n"
               "  -q --quiet               Show no progress and no summary\n"
               "\n"
               "Options of submit:\n"
               "  -o --output-dir=DIR      Create the files in DIR (default: the current directory)\n"
               "  -m --concurrency=N       At most N downloads of the job at once, 1 to 1000 (default: 5)\n"
               "  -i --input=FILE          Read \"URL [FILENAME]\" lines from FILE, or stdin for \"-\"\n"
               "     --name=NAME           Label the job\n"
               "     --overwrite           Replace existing files\n"
               "     --timeout=SEC         Limit each download to SEC (e.g. 30, 2.5, 500ms, 1min; 0: none)\n"
               "     --connect-timeout=SEC Limit each connection attempt to SEC\n"
               "     --stall-timeout=SEC   Fail a download that gets less than a byte a second for\n"
               "                           SEC (default: 5min; 0: never)\n"
               "     --max-bytes=BYTES     Fail downloads larger than BYTES (e.g. 512K, 10M; 0: none)\n"
               "     --fsync               Flush each file to disk before it appears\n"
               "     --no-wait             Print the job id and return at once\n"
               "  -v --verbose             One line per task as it completes, instead of the bar\n"
               "                           (submit and watch)\n"
               "\n"
               "With -v, a task is named by the file it creates (or would have created): its\n"
               "FILENAME, else the last segment of its URL. Ctrl-C cancels a submitted job and waits\n"
               "for its final results; during \"watch\" it detaches and leaves the job running.\n"
               "\n"
               "Exit status:\n"
               "  0    every task ok (or the command succeeded)\n"
               "  1    usage or connection error, or another failure\n"
               "  2    the daemon refused the job\n"
               "  3    the job finished with not-found or failed tasks\n"
               "  4    the job was cancelled\n"
               "  130  interrupted\n",
               program_invocation_short_name);
}

enum {
        ARG_VERSION = 0x100,
        ARG_SYSTEM,
        ARG_USER,
        ARG_BUS_ADDRESS,
        ARG_JSON,
        ARG_NO_LEGEND,
        ARG_NAME,
        ARG_OVERWRITE,
        ARG_TIMEOUT,
        ARG_CONNECT_TIMEOUT,
        ARG_STALL_TIMEOUT,
        ARG_MAX_BYTES,
        ARG_FSYNC,
        ARG_NO_WAIT,
};

static const struct option options[] = {
        { "help",            no_argument,       NULL, 'h'                 },
        { "version",         no_argument,       NULL, ARG_VERSION         },
        { "system",          no_argument,       NULL, ARG_SYSTEM          },
        { "user",            no_argument,       NULL, ARG_USER            },
        { "bus-address",     required_argument, NULL, ARG_BUS_ADDRESS     },
        { "json",            required_argument, NULL, ARG_JSON            },
        { "no-legend",       no_argument,       NULL, ARG_NO_LEGEND       },
        { "quiet",           no_argument,       NULL, 'q'                 },
        { "verbose",         no_argument,       NULL, 'v'                 },
        { "output-dir",      required_argument, NULL, 'o'                 },
        { "concurrency",     required_argument, NULL, 'm'                 },
        { "input",           required_argument, NULL, 'i'                 },
        { "name",            required_argument, NULL, ARG_NAME            },
        { "overwrite",       no_argument,       NULL, ARG_OVERWRITE       },
        { "timeout",         required_argument, NULL, ARG_TIMEOUT         },
        { "connect-timeout", required_argument, NULL, ARG_CONNECT_TIMEOUT },
        { "stall-timeout",   required_argument, NULL, ARG_STALL_TIMEOUT   },
        { "max-bytes",       required_argument, NULL, ARG_MAX_BYTES       },
        { "fsync",           no_argument,       NULL, ARG_FSYNC           },
        { "no-wait",         no_argument,       NULL, ARG_NO_WAIT         },
        {}
};

/* "-o/--output-dir", "--name": every spelling of the option, for messages. */
static const char *option_name(int c, const char *arg) {
        static char buf[64];

        for (const struct option *o = options; o->name; o++)
                if (o->val == c) {
                        if (c < 0x100)
                                (void) snprintf(buf, sizeof(buf), "-%c/--%s", c, o->name);
                        else
                                (void) snprintf(buf, sizeof(buf), "--%s", o->name);
                        return buf;
                }
        return arg ?: "?";
}

/* The option a getopt_long() error is about, as the user wrote it (without any "=VALUE").
 * getopt_long() leaves only optopt (0 for an unknown long option), and argv[optind - 1] is the
 * offending argument only for a long option or the last of a cluster ("-qx"): in "--user -xq"
 * it is still "--user". So argv[optind - 1] counts only if it is a long option that names
 * optopt (abbreviations included); otherwise the error is about the short option optopt. */
static const char *option_as_written(const char *arg, int opt, char *buf, size_t size) {
        if (strncmp(arg, "--", 2) == 0) {
                size_t n = strcspn(arg + 2, "=");
                bool named = opt == 0 || opt >= 0x100;

                for (const struct option *o = options; o->name && !named; o++)
                        named = o->val == opt && strncmp(o->name, arg + 2, n) == 0;
                if (named) {
                        (void) snprintf(buf, size, "%.*s", (int) MIN(n + 2, size - 1), arg);
                        return buf;
                }
        }
        if (opt > 0 && opt < 0x100) {
                (void) snprintf(buf, size, "-%c", opt);
                return buf;
        }
        return arg;
}

/* Whether the abbreviation --NAME (the user's text, without "=VALUE") fits several long options. */
static bool option_is_ambiguous(const char *written) {
        size_t n = strlen(written + 2);
        unsigned k = 0;

        for (const struct option *o = options; o->name; o++)
                if (strncmp(o->name, written + 2, n) == 0)
                        k++;
        return k > 1;
}

static int parse_time_option(int c, const char *value, uint64_t *ret) {
        if (parse_timespan(value, ret) < 0)
                return log_error_errno(EINVAL, "invalid time span for %s: %s", option_name(c, NULL), value);
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        char written[64];
        int c, r;

        /* '+' would stop at the verb; options may follow it, like systemctl's. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hqvjo:m:i:", options, NULL)) >= 0) {
                if (IN_SET(c, 'o', 'm', 'i', ARG_NAME, ARG_OVERWRITE, ARG_TIMEOUT, ARG_CONNECT_TIMEOUT,
                           ARG_STALL_TIMEOUT, ARG_MAX_BYTES, ARG_FSYNC, ARG_NO_WAIT) && submit_option == 0)
                        submit_option = c;

                switch (c) {

                case 'h':
                        help();
                        return 0;

                case ARG_VERSION:
                        printf("asyncctl %s\n", PACKAGE_VERSION);
                        return 0;

                case ARG_SYSTEM:
                        arg_transport = BUS_TRANSPORT_SYSTEM;
                        break;

                case ARG_USER:
                        arg_transport = BUS_TRANSPORT_USER;
                        break;

                case ARG_BUS_ADDRESS:
                        if (!*optarg)
                                return log_error_errno(EINVAL, "--bus-address= needs an address");
                        arg_transport = BUS_TRANSPORT_ADDRESS;
                        arg_address = optarg;
                        break;

                case ARG_JSON:
                        arg_json = json_mode_from_string(optarg);
                        if (arg_json < 0)
                                return log_error_errno(EINVAL, "invalid --json= mode \"%s\" (expected short, pretty or off)", optarg);
                        break;

                case 'j':
                        arg_json = isatty(STDOUT_FILENO) ? JSON_PRETTY : JSON_SHORT;
                        break;

                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;

                case 'q':
                        arg_quiet = true;
                        break;

                case 'v':
                        arg_verbose = true;
                        verbose_option = true;
                        break;

                case 'o':
                        arg_directory = optarg;
                        break;

                case 'm':
                        r = parse_uint32(optarg, &arg_submit.concurrency);
                        if (r < 0 || arg_submit.concurrency == 0 || arg_submit.concurrency > CONCURRENCY_MAX)
                                return log_error_errno(EINVAL, "%s: expected a number from 1 to %u, not \"%s\"",
                                                       option_name(c, NULL), CONCURRENCY_MAX, optarg);
                        arg_submit.set_concurrency = true;
                        break;

                case 'i':
                        arg_input = optarg;
                        break;

                case ARG_NAME:
                        /* D-Bus strings must be UTF-8: sd-bus would only say "Invalid argument". */
                        if (!utf8_is_valid(optarg))
                                return log_error_errno(EINVAL, "--name: not valid UTF-8");
                        arg_submit.name = optarg;
                        break;

                case ARG_OVERWRITE:
                        arg_submit.overwrite = true;
                        break;

                case ARG_TIMEOUT:
                        r = parse_time_option(c, optarg, &arg_submit.timeout_usec);
                        if (r < 0)
                                return r;
                        arg_submit.set_timeout = true;
                        break;

                case ARG_CONNECT_TIMEOUT:
                        r = parse_time_option(c, optarg, &arg_submit.connect_timeout_usec);
                        if (r < 0)
                                return r;
                        arg_submit.set_connect_timeout = true;
                        break;

                case ARG_STALL_TIMEOUT:
                        r = parse_time_option(c, optarg, &arg_submit.stall_timeout_usec);
                        if (r < 0)
                                return r;
                        arg_submit.set_stall_timeout = true;
                        break;

                case ARG_MAX_BYTES:
                        if (parse_size(optarg, &arg_submit.max_bytes) < 0)
                                return log_error_errno(EINVAL, "invalid size for --max-bytes: %s", optarg);
                        arg_submit.set_max_bytes = true;
                        break;

                case ARG_FSYNC:
                        arg_submit.fsync = true;
                        break;

                case ARG_NO_WAIT:
                        arg_wait = false;
                        break;

                case ':':
                        return log_error_errno(EINVAL, "option '%s' needs a value",
                                               option_as_written(argv[optind - 1], optopt, written, sizeof(written)));

                case '?': {
                        const char *o = option_as_written(argv[optind - 1], optopt, written, sizeof(written));

                        /* A known long option with "=VALUE" that takes none. */
                        if (optopt != 0 && strncmp(o, "--", 2) == 0)
                                return log_error_errno(EINVAL, "option '%s' takes no value", o);
                        if (optopt == 0 && option_is_ambiguous(o))
                                return log_error_errno(EINVAL, "option '%s' is ambiguous (see --help)", o);
                        return log_error_errno(EINVAL, "unknown option '%s' (see --help)", o);
                }

                default:
                        return log_error_errno(EINVAL, "unhandled option %s", option_name(c, NULL));
                }
        }

        return 1;
}

int output_failed(int error, const char *note) {
        if (output_error != 0)
                return output_error;
        output_error = error;

        /* A reader that closed the pipe (head, a pager quit early) left on purpose: no message,
         * unless it is about something the caller must not lose. */
        if (note)
                log_error_errno(error, "cannot write output: %m; %s", note);
        else if (error != -EPIPE)
                log_error_errno(error, "cannot write output: %m");
        return error;
}

int check_output(const char *note) {
        errno = 0;
        if (fflush(stdout) != 0 || ferror(stdout))
                return output_failed(errno > 0 ? -errno : -EIO, note);
        return output_error;
}

/* At exit: a write error may also show only when the buffer is flushed or the file closed. */
static int close_output(void) {
        int r;

        r = check_output(NULL);
        if (r < 0)
                return r;
        if (fclose(stdout) != 0)
                return output_failed(errno > 0 ? -errno : -EIO, NULL);
        return 0;
}

int connect_bus(sd_bus **ret) {
        int r;

        r = bus_connect(arg_transport, arg_address, ret);
        if (r < 0) {
                /* sd-bus's way of saying there is no session bus to look for. */
                if (r == -ENOMEDIUM && arg_transport == BUS_TRANSPORT_USER)
                        return log_error_errno(r, "cannot connect to the user bus: neither $DBUS_SESSION_BUS_ADDRESS "
                                               "nor $XDG_RUNTIME_DIR is set");
                if (arg_transport == BUS_TRANSPORT_ADDRESS)
                        return log_error_errno(r, "cannot connect to the bus at %s: %m", arg_address);
                return log_error_errno(r, "cannot connect to the %s: %m", bus_transport_to_string(arg_transport));
        }
        return 0;
}

int parse_job_ids(char **args, size_t n, uint64_t **ret) {
        _cleanup_free_ uint64_t *ids = NULL;

        ids = calloc(MAX(n, (size_t) 1), sizeof(uint64_t));
        if (!ids)
                return log_oom();

        for (size_t i = 0; i < n; i++)
                if (parse_job_id(args[i], ids + i) < 0)
                        return log_error_errno(EINVAL, "invalid job id \"%s\": expected a number from 1 to %" PRIu64,
                                               args[i], UINT64_MAX);

        *ret = TAKE_PTR(ids);
        return 0;
}

static const struct {
        const char *name;
        int min_args;           /* after the verb */
        int max_args;           /* -1: any */
        int (*run)(int argc, char **argv);
        const char *args_help;
} verbs[] = {
        { "submit",  1, -1, verb_submit,  "URL..." },
        { "status",  0, -1, verb_status,  "[ID...]" },
        { "cancel",  1, -1, verb_cancel,  "ID..." },
        { "watch",   1,  1, verb_watch,   "ID" },
        { "results", 1,  1, verb_results, "ID" },
};

static int dispatch_verb(int argc, char **argv) {
        const char *name = argc > 0 ? argv[0] : "status";
        int n = argc > 0 ? argc - 1 : 0;

        if (strcmp(name, "help") == 0) {
                help();
                return EXIT_ALL_OK;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (strcmp(name, verbs[i].name) != 0)
                        continue;

                /* submit may get its URLs from -i instead. */
                if (n < verbs[i].min_args && !(verbs[i].run == verb_submit && arg_input))
                        return log_error_errno(EINVAL, "%s needs %s (usage: asyncctl %s %s)",
                                               name, verbs[i].max_args == 1 ? "an argument" : "arguments",
                                               name, verbs[i].args_help);
                if (verbs[i].max_args >= 0 && n > verbs[i].max_args)
                        return log_error_errno(EINVAL, "too many arguments for %s (usage: asyncctl %s %s)",
                                               name, name, verbs[i].args_help);

                /* An option the verb does not use is a mistake, not something to ignore. */
                if (submit_option != 0 && verbs[i].run != verb_submit)
                        return log_error_errno(EINVAL, "option %s is only for submit, not for %s",
                                               option_name(submit_option, NULL), name);
                if (verbose_option && verbs[i].run != verb_submit && verbs[i].run != verb_watch)
                        return log_error_errno(EINVAL, "option %s is only for submit and watch, not for %s",
                                               option_name('v', NULL), name);

                return verbs[i].run(n, argv + 1);
        }

        return log_error_errno(EINVAL, "unknown command \"%s\" (see --help)", name);
}

int main(int argc, char *argv[]) {
        int r;

        (void) setlocale(LC_ALL, "");
        log_set_prefix("asyncctl", false);
        /* Debug output (signal replay, de-duplication, gaps) for bug reports. */
        if (getenv("ASYNCCTL_LOG_LEVEL")) {
                r = log_level_from_string(getenv("ASYNCCTL_LOG_LEVEL"));
                if (r >= 0)
                        log_set_max_level(r);
        }

        /* A closed stdout is an EPIPE to handle, not a silent death: submit cancels its job then,
         * as for SIGTERM, instead of leaving it running. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = parse_argv(argc, argv);
        if (r > 0)
                r = dispatch_verb(argc - optind, argv + optind);
        if (r < 0)
                r = EXIT_ERROR;

        /* Output that did not get out (a full disk, a closed pipe) is a failure of every command;
         * an interrupted submit keeps its 130. */
        if (close_output() < 0 && r != EXIT_INTERRUPTED)
                r = EXIT_ERROR;
        return r;
}
