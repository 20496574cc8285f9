/* SPDX-License-Identifier: MIT */
/* asyncd: the daemon's entry point — options, the descriptor limit, bus connection, signals, and the
 * event loop. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "parse-util.h"

typedef enum BusKind {
        BUS_SYSTEM,
        BUS_USER,
        BUS_ADDRESS,
} BusKind;

static BusKind arg_bus = BUS_SYSTEM;
static const char *arg_address = NULL;
static ManagerConfig arg_config;
static bool arg_exit_idle_set = false;

static void help(void) {
        printf("Usage: asyncd [OPTIONS...]\n\n"
               "Download daemon: runs download jobs submitted over D-Bus (io.asyncd1).\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "     --system                Serve on the system bus (default)\n"
               "     --user                  Serve on the user's session bus\n"
               "     --bus-address=ADDRESS   Serve on the bus at ADDRESS\n"
               "     --exit-idle-time=SEC    Exit after SEC seconds without jobs (0: never;\n"
               "                             default 30 when bus-activated, else 0)\n"
               "     --keep-finished=SEC     Keep finished jobs queryable this long (default 300)\n"
               "     --max-finished-jobs=N   Keep at most N finished jobs, removing the oldest\n"
               "                             first (default 10000)\n"
               "     --max-finished-tasks=N  Keep finished jobs of at most N tasks together,\n"
               "                             removing the oldest first (default 100000)\n"
               "     --keep-connections=SEC  Close idle connections SEC seconds after the last\n"
               "                             transfer (0: keep them; default 60)\n"
               "     --max-transfers=N       Transfers on the wire for all jobs together (default 1000)\n"
               "     --max-jobs-per-owner=N  Running jobs per user (default 64)\n"
               "     --max-tasks-per-job=N   Tasks in one job (default 1000000)\n"
               "     --disk-threads=N        Threads doing file I/O (default: CPUs, 2..4)\n"
               "     --disk-backlog=SIZE     Memory finished downloads may hold while their files\n"
               "                             wait for the disk; no new transfer starts while it\n"
               "                             is used up (default 2M)\n"
               "     --log-level=LEVEL       emerg, alert, crit, err, warning, notice, info or debug\n"
               "                             (default info)\n");
}

static int parse_unsigned(const char *s, const char *option, unsigned min, unsigned max, unsigned *ret) {
        uint64_t v = 0;

        if (parse_uint64(s, &v) < 0 || v < min || v > max)
                return log_error_errno(EINVAL, "Invalid value for %s: \"%s\" (expected %u..%u)", option, s, min, max);
        *ret = (unsigned) v;
        return 0;
}

static int parse_seconds(const char *s, const char *option, uint64_t *ret) {
        unsigned v = 0;
        int r;

        r = parse_unsigned(s, option, 0, 100U * 365 * 24 * 3600, &v);
        if (r < 0)
                return r;
        *ret = (uint64_t) v * USEC_PER_SEC;
        return 0;
}

static int parse_backlog(const char *s, size_t *ret) {
        uint64_t v;

        if (parse_size(s, &v) < 0 || v < 64 * 1024 || v > SIZE_MAX / 2)
                return log_error_errno(EINVAL, "Invalid value for --disk-backlog: \"%s\" (expected a size "
                                       "of at least 64K, e.g. 2M or 512K)", s);
        *ret = (size_t) v;
        return 0;
}

static unsigned disk_threads_default(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        return (unsigned) MIN(MAX(n, 2L), 4L);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SYSTEM,
                ARG_USER,
                ARG_BUS_ADDRESS,
                ARG_EXIT_IDLE_TIME,
                ARG_KEEP_FINISHED,
                ARG_MAX_FINISHED,
                ARG_MAX_FINISHED_TASKS,
                ARG_KEEP_CONNECTIONS,
                ARG_MAX_TRANSFERS,
                ARG_MAX_JOBS,
                ARG_MAX_TASKS,
                ARG_DISK_THREADS,
                ARG_DISK_BACKLOG,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "exit-idle-time", required_argument, NULL, ARG_EXIT_IDLE_TIME },
                { "keep-finished", required_argument, NULL, ARG_KEEP_FINISHED },
                { "max-finished-jobs", required_argument, NULL, ARG_MAX_FINISHED },
                { "max-finished-tasks", required_argument, NULL, ARG_MAX_FINISHED_TASKS },
                { "keep-connections", required_argument, NULL, ARG_KEEP_CONNECTIONS },
                { "max-transfers", required_argument, NULL, ARG_MAX_TRANSFERS },
                { "max-jobs-per-owner", required_argument, NULL, ARG_MAX_JOBS },
                { "max-tasks-per-job", required_argument, NULL, ARG_MAX_TASKS },
                { "disk-threads", required_argument, NULL, ARG_DISK_THREADS },
                { "disk-backlog", required_argument, NULL, ARG_DISK_BACKLOG },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("asyncd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_SYSTEM:
                        arg_bus = BUS_SYSTEM;
                        break;
                case ARG_USER:
                        arg_bus = BUS_USER;
                        break;
                case ARG_BUS_ADDRESS:
                        arg_bus = BUS_ADDRESS;
                        arg_address = optarg;
                        break;
                case ARG_EXIT_IDLE_TIME:
                        r = parse_seconds(optarg, "--exit-idle-time", &arg_config.exit_idle_usec);
                        arg_exit_idle_set = true;
                        break;
                case ARG_KEEP_FINISHED:
                        r = parse_seconds(optarg, "--keep-finished", &arg_config.keep_finished_usec);
                        break;
                case ARG_MAX_FINISHED:
                        r = parse_unsigned(optarg, "--max-finished-jobs", 1, 100000, &arg_config.max_finished_jobs);
                        break;
                case ARG_MAX_FINISHED_TASKS:
                        r = parse_unsigned(optarg, "--max-finished-tasks", 1, 100000000, &arg_config.max_finished_tasks);
                        break;
                case ARG_KEEP_CONNECTIONS:
                        r = parse_seconds(optarg, "--keep-connections", &arg_config.engine.keep_connections_usec);
                        break;
                case ARG_MAX_TRANSFERS:
                        r = parse_unsigned(optarg, "--max-transfers", 1, 100000, &arg_config.engine.max_transfers);
                        break;
                case ARG_MAX_JOBS:
                        r = parse_unsigned(optarg, "--max-jobs-per-owner", 1, 100000, &arg_config.max_jobs_per_owner);
                        break;
                case ARG_MAX_TASKS:
                        r = parse_unsigned(optarg, "--max-tasks-per-job", 1, 100000000, &arg_config.max_tasks_per_job);
                        break;
                case ARG_DISK_THREADS:
                        r = parse_unsigned(optarg, "--disk-threads", 1, 64, &arg_config.engine.disk_threads);
                        break;
                case ARG_DISK_BACKLOG:
                        r = parse_backlog(optarg, &arg_config.engine.commit_backlog_bytes);
                        break;
                case ARG_LOG_LEVEL:
                        r = log_level_from_string(optarg);
                        if (r < 0)
                                return log_error_errno(r, "Invalid log level \"%s\".", optarg);
                        log_set_max_level(r);
                        r = 0;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument \"%s\".", argv[optind]);

        /* dbus-daemon sets this when it started us for a caller: go away again when unused. */
        if (!arg_exit_idle_set && getenv("DBUS_STARTER_BUS_TYPE"))
                arg_config.exit_idle_usec = 30 * USEC_PER_SEC;
        return 1;
}

static int open_bus(sd_bus **ret) {
        const char *starter = getenv("DBUS_STARTER_BUS_TYPE");
        sd_bus *bus = NULL;
        int r;

        /* Started by a bus for a caller: talk to the bus that started us, wherever it lives. */
        if (starter && ((arg_bus == BUS_USER && strcmp(starter, "session") == 0) ||
                        (arg_bus == BUS_SYSTEM && strcmp(starter, "system") == 0))) {
                r = sd_bus_open_with_description(&bus, "asyncd");
                if (r < 0)
                        return log_error_errno(r, "Failed to connect to the bus that activated us: %m");
                *ret = bus;
                return 0;
        }

        switch (arg_bus) {
        case BUS_SYSTEM:
                r = sd_bus_open_system_with_description(&bus, "asyncd");
                break;
        case BUS_USER:
                r = sd_bus_open_user_with_description(&bus, "asyncd");
                break;
        default:
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, arg_address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_negotiate_fds(bus, true);
                if (r >= 0)
                        r = sd_bus_negotiate_creds(bus, true, SD_BUS_CREDS_EUID);
                if (r >= 0)
                        r = sd_bus_start(bus);
                break;
        }
        if (r < 0) {
                sd_bus_unref(bus);
                if (arg_bus == BUS_ADDRESS)
                        return log_error_errno(r, "Failed to connect to the bus at \"%s\": %m%s", arg_address,
                                               strchr(arg_address, ':') ? "" :
                                               " (an address looks like unix:path=/run/dbus/system_bus_socket)");
                /* sd-bus's way of saying there is no session bus to look for (as asyncctl says it). */
                if (r == -ENOMEDIUM && arg_bus == BUS_USER)
                        return log_error_errno(r, "Failed to connect to the session bus: neither "
                                               "$DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR is set.");
                return log_error_errno(r, "Failed to connect to the %s bus: %m",
                                       arg_bus == BUS_SYSTEM ? "system" : "session");
        }
        *ret = bus;
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_begin_shutdown(userdata, strsignal((int) si->ssi_signo));
        return 0;
}

/* What one transfer may hold at once: its connection (curl keeps at most --max-transfers of them,
 * idle ones included), its file, and the threaded resolver's socket pair. */
#define FDS_PER_TRANSFER 4U
/* The bus, the loop's own descriptors, the disk pool's, and those arriving with calls. A full table
 * makes the kernel drop a descriptor passed with SubmitJob, and sd-bus then drops the connection. */
#define FDS_RESERVED 64U

/* Every transfer is a socket; a thousand of them need more than the default 1024. What the limit
 * allows then bounds the transfers, so a busy daemon never runs out of descriptors. */
static int fit_transfers_to_fd_limit(ManagerConfig *c) {
        struct rlimit rl;
        rlim_t reserved = FDS_RESERVED + c->max_jobs_per_owner;        /* a directory per running job */
        unsigned fit;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return log_error_errno(errno, "Failed to read RLIMIT_NOFILE: %m");
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        (void) getrlimit(RLIMIT_NOFILE, &rl);
        }
        fit = rl.rlim_cur > reserved ? (unsigned) MIN((rl.rlim_cur - reserved) / FDS_PER_TRANSFER, (rlim_t) UINT_MAX) : 0;
        if (fit == 0)
                return log_error_errno(EMFILE, "RLIMIT_NOFILE is %ju: too low for any transfer (at least %ju needed "
                                       "with --max-jobs-per-owner=%u).", (uintmax_t) rl.rlim_cur,
                                       (uintmax_t) (reserved + FDS_PER_TRANSFER), c->max_jobs_per_owner);
        if (c->engine.max_transfers > fit) {
                log_warning("RLIMIT_NOFILE is %ju: running at most %u transfers, not %u (each may need %u descriptors).",
                            (uintmax_t) rl.rlim_cur, fit, c->engine.max_transfers, FDS_PER_TRANSFER);
                c->engine.max_transfers = fit;
        }
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        log_set_prefix("asyncd", true);
        arg_config = MANAGER_CONFIG_DEFAULT;
        arg_config.engine.disk_threads = disk_threads_default();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        r = fit_transfers_to_fd_limit(&arg_config);
        if (r < 0)
                return r;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error_errno(EIO, "Failed to initialize libcurl.");

        /* Block before any thread exists, so only the loop's signalfd ever sees these. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        (void) sd_event_set_watchdog(event, true);

        r = open_bus(&bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the loop: %m");

        r = manager_new(&m, event, bus, arg_bus == BUS_SYSTEM, &arg_config);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");

        /* SIGHUP too: there is no configuration to reload, and its default action would kill us
         * with named temporary files still in the job directories. */
        r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGHUP, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        r = manager_start(m);
        if (r < 0)
                return r;

        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        log_info("Exiting.");
        return r;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);

        curl_global_cleanup();
        /* r > 0: the exit code the manager chose (losing the bus is a failure). */
        return r < 0 ? EXIT_FAILURE : r;
}
