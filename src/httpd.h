/*
 * httpd - the /metrics endpoint (metrics_listen), served by libmicrohttpd
 * on a thread of its own.
 *
 * GET /metrics answers metrics.c's text; any other path is 404 and any
 * other method 405.  Meant for a Prometheus on the same host or a trusted
 * network: no TLS, no authentication.
 */
#ifndef MILTERHOST_HTTPD_H
#define MILTERHOST_HTTPD_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Listen on addr (an AF_INET or AF_INET6 address with its port, parsed by
 * config.c from metrics_listen, whose text is label) and serve.  Returns
 * 0, or -1 with the reason in err.
 */
int httpd_start(const struct sockaddr *addr, const char *label, char *err,
		size_t errlen);

#endif /* MILTERHOST_HTTPD_H */
