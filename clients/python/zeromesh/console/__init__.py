# SPDX-License-Identifier: MIT
"""`zeromesh console`: the operator's web console (docs/CONSOLE.md).

One poller owns the figures (poller.py, computed by figures.py and alarms.py); the WSGI app
(app.py) renders them with Jinja2 and streams them over SSE (sse.py); actions.py turns a form
into admin ops; auth.py guards POSTs (password, CSRF, same origin); server.py runs it all on
gevent's pywsgi. The page's JavaScript (static/console.js) patches figures from the SSE
snapshots and draws the rates graph as inline SVG.
"""
