"""Seedream 4.0's hard limits, each with one owner (current BytePlus documentation)."""

from __future__ import annotations

MAX_IMAGES = 15  # references plus generated images in one request
MAX_REFERENCES = 14
MAX_REFERENCE_BYTES = 10 * 2**20
MAX_REFERENCE_PIXELS = 36_000_000
MIN_REFERENCE_SIDE = 15  # each side must be more than 14 px
MAX_ASPECT_RATIO = 16.0  # width:height and height:width, for references and outputs
