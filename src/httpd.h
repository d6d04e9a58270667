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

/*
 * Listen on "ADDRESS:PORT" or "[IPv6]:PORT" (checked by config.c) and
 * serve.  Returns 0, or -1 with the reason in err.
 */
int httpd_start(const char *listen, char *err, size_t errlen);

#endif /* MILTERHOST_HTTPD_H */
