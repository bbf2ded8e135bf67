# SPDX-License-Identifier: MIT
"""The demo ecard site: templates, page functions (site.py), back-end workers (workers.py), routes.toml."""
