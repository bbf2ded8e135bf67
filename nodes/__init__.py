# SPDX-License-Identifier: MIT
"""Nodes that stand on the Python client: rendering nodes (render.py) and the HTTP edge (edge/).

A site module needs only:

    from zeromesh.nodes import Part, Site
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Part": "gather",
    "PartFailed": "gather",
    "Gathered": "gather",
    "Site": "pages",
    "PageRequest": "pages",
    "RenderNode": "render",
    "FragmentCache": "fragments",
    "FeatureSwitches": "features",
    "TemplateFailure": "templating",
    "TemplateSets": "templating",
}


def __getattr__(name: str) -> Any:
    # Lazy, so importing zeromesh.nodes.edge does not pull in Jinja2 or gevent.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zeromesh.nodes' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_EXPORTS)
