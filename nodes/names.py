# SPDX-License-Identifier: MIT
"""Names the mesh agrees on for invalidation, feature switches and render requests.

Any process in any language may publish these topics or read these keys; the
HTTP mapping (protocol/SPEC.md, "HTTP mapping") is where they are specified.
"""

from __future__ import annotations

INVALIDATE_PREFIX = "zeromesh.invalidate."
"""Every invalidation topic starts with this (the broker records them in a Redis stream)."""

INVALIDATE_PATH = "zeromesh.invalidate.path"
"""Body: a path prefix (UTF-8); pages whose path starts with it are dropped."""

INVALIDATE_TAG = "zeromesh.invalidate.tag"
"""Body: one tag, e.g. "card:42"; pages and fragments carrying it are dropped."""

INVALIDATE_ALL = "zeromesh.invalidate.all"
"""Body ignored: drop everything."""

FEATURE_TOPIC = "zeromesh.feature"
"""Body: JSON {"name": "recommendations", "on": false}."""

FEATURES_KEY = "zeromesh:features"
"""Redis hash: feature name -> "on" | "off". A name not in it is on."""

FEATURE_TAG_PREFIX = "feature:"
"""Pages whose content depends on feature NAME carry the tag "feature:NAME"; switching
the feature publishes an invalidation of that tag, so cached pages follow the switch."""

# REQUEST application headers (see the HTTP mapping).
H_METHOD = "http.method"
H_PATH = "http.path"
H_QUERY = "http.query"
H_HEADERS = "http.headers"
H_HOST = "http.host"
H_CLIENT = "http.client"
H_ROUTE = "http.route"
H_PARAMS = "http.params"
H_TEMPLATE = "render.template"
H_SITE = "render.site"

# REPLY application headers.
H_STATUS = "http.status"
H_CACHE_TAGS = "cache.tags"
H_CACHE_TTL = "cache.ttl"
