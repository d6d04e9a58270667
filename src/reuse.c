/*
 * reuse - what the adapter remembers of a milter connection between the
 * SMTP sessions an MTA runs on it.  See reuse.h.
 *
 * A hash table of records keyed by the connection's handle, chained per
 * bucket, under one mutex.  Stale records are swept bucket by bucket as
 * new ones arrive, so the table never needs a pass of its own.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "reuse.h"

#define BUCKETS 1024

struct record {
	const void *conn;
	struct mta_offer offer;
	time_t used;             /* negotiation or last session, monotonic */
	struct record *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct record *buckets[BUCKETS];

static time_t
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct record **
bucket_of(const void *conn)
{
	uintptr_t h = (uintptr_t)conn;

	/* Handles are malloc()ed: the low bits are alignment. */
	h = (h >> 4) ^ (h >> 14);
	return &buckets[h % BUCKETS];
}

/* The link pointing at conn's record in its bucket, or NULL. */
static struct record **
find(const void *conn)
{
	struct record **link;

	for (link = bucket_of(conn); *link != NULL; link = &(*link)->next)
		if ((*link)->conn == conn)
			return link;
	return NULL;
}

static void
unlink_record(struct record **link)
{
	struct record *r = *link;

	*link = r->next;
	free(r);
}

bool
reuse_remember(const void *conn, const struct mta_offer *offer,
    unsigned idle_seconds)
{
	struct record *r, **link;
	time_t t = now();

	if ((r = malloc(sizeof *r)) == NULL)
		return false;
	r->conn = conn;
	r->offer = *offer;
	r->used = t;
	pthread_mutex_lock(&lock);
	for (link = bucket_of(conn); *link != NULL;) {
		if ((*link)->conn == conn || t - (*link)->used > idle_seconds)
			unlink_record(link);
		else
			link = &(*link)->next;
	}
	link = bucket_of(conn);
	r->next = *link;
	*link = r;
	pthread_mutex_unlock(&lock);
	return true;
}

bool
reuse_recall(const void *conn, struct mta_offer *offer)
{
	struct record **link;

	pthread_mutex_lock(&lock);
	if ((link = find(conn)) != NULL) {
		*offer = (*link)->offer;
		(*link)->used = now();
	}
	pthread_mutex_unlock(&lock);
	return link != NULL;
}

bool
reuse_forget(const void *conn)
{
	struct record **link;

	pthread_mutex_lock(&lock);
	if ((link = find(conn)) != NULL)
		unlink_record(link);
	pthread_mutex_unlock(&lock);
	return link != NULL;
}
