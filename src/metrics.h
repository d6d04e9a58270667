/*
 * metrics - the daemon's counters, in the Prometheus text format.
 *
 * Kept only when metrics_listen is set (httpd.c serves them).  Every
 * plugin instance has a block of counters found by its name, so that an
 * instance keeps its counters across reloads; a plugin set's instances
 * point at their blocks (struct instance's host_data), set once when the
 * set is installed.  On the hot path (every callback, every message) the
 * counters are only added to, with relaxed atomic operations: no lock is
 * shared between connections.  Rendering reads them the same way.
 *
 * Metric names, labels and help texts are listed in the README
 * ("Metrics").
 */
#ifndef MILTERHOST_METRICS_H
#define MILTERHOST_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "chain.h"
#include "kv.h"
#include "loader.h"
#include "summary.h"

/* Start keeping counters; libmilter_version goes into the build info. */
void metrics_enable(const char *libmilter_version);
bool metrics_enabled(void);

/*
 * Point set's instances at their counters (made for names not seen
 * before).  Returns 0, or -1 if out of memory (the set then counts
 * nothing for the instances left without).  Before the set serves.
 */
int metrics_attach(struct plugin_set *set);

/* The chain_io hooks: one callback, one message. */
void metrics_call(void *arg, const struct call_report *r);
void metrics_message(void *arg, const struct msg_summary *m);

/* A connection (SMTP session) opened, or closed. */
void metrics_connection(int delta);
/*
 * Report on the daemon's key-value store too: its calls are counted and
 * timed from now on (kv_stats_enable()), and rendering reads kv_stats().
 * Returns 0, or -1 if out of memory.  After metrics_enable(), before
 * the store serves and before httpd_start().
 */
int metrics_set_kv(struct kv_store *kv);

/* A plugin set was installed; a reload succeeded or failed. */
void metrics_set_installed(void);
void metrics_reload(bool succeeded);

/* Everything, in the Prometheus text format (version 0.0.4): a string
 * to free, its length in *len; NULL if out of memory. */
char *metrics_render(size_t *len);

#endif /* MILTERHOST_METRICS_H */
