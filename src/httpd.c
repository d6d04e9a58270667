/*
 * httpd - the /metrics endpoint.  See httpd.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *daemon_handle;

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text),
	    (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result rc;
	size_t len;
	char *text;

	(void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "only GET /metrics\n");
	if (strcmp(url, "/metrics") != 0)
		return respond(conn, MHD_HTTP_NOT_FOUND, "only GET /metrics\n");
	if ((text = metrics_render(&len)) == NULL)
		return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory\n");
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

int
httpd_start(const struct sockaddr *addr, const char *label, char *err,
    size_t errlen)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
	uint16_t port;

	if (addr->sa_family == AF_INET6) {
		flags |= MHD_USE_IPv6;
		port = ntohs(((const struct sockaddr_in6 *)(const void *)
		    addr)->sin6_port);
	} else {
		port = ntohs(((const struct sockaddr_in *)(const void *)
		    addr)->sin_port);
	}
	errno = 0;
	daemon_handle = MHD_start_daemon(flags, port, NULL, NULL,
	    handle, NULL, MHD_OPTION_SOCK_ADDR, addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (daemon_handle == NULL) {
		snprintf(err, errlen, "metrics_listen %s: cannot listen%s%s",
		    label, errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	log_msg(LOG_INFO, "metrics on http://%s/metrics", label);
	return 0;
}
