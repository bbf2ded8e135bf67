# SPDX-License-Identifier: MIT
"""The HTTP edge: gevent's WSGI server in front of the mesh (`zeromesh edge`).

routes.py        the route table (TOML) and matching
mapping.py       HTTP request <-> message headers (SPEC, "HTTP mapping")
cache.py         the full-page cache
invalidation.py  applying invalidations, gap replay from the Redis stream
redis_store.py   the stream and the feature switches in Redis
listener.py      the greenlet that applies pub/sub invalidations and switches
upstream.py      calls to the mesh, shared by concurrent misses, cancelled when browsers leave
sse.py           GET /events as server-sent events
metrics.py       Prometheus metrics
app.py           the WSGI app (make_app)
server.py        pywsgi handler and listener
main.py          one edge process; supervisor.py: --workers N
"""
