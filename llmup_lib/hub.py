"""Is the Hugging Face Hub reachable? Asked before any Hub download, so offline fails in a second.

``datasets`` and ``huggingface_hub`` read ``HF_HUB_OFFLINE`` once, at import, and on a dead
network they retry for ~20-45 s before giving up; checking here honours a variable set later
and answers at once.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import huggingface_hub

_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_unreachable() -> bool:
    """True when told to stay offline, or when the Hub's host cannot be reached at all."""
    if any(os.environ.get(v, "").upper() in _TRUE
           for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False  # a proxy may reach what a direct connection cannot: let the library try
    url = urlparse(huggingface_hub.constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
    except OSError:
        return True
    return False
