"""Ends its own process with status 0 at import."""
import os

os._exit(0)
