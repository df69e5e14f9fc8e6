"""The job id and result file-name formats: written and read back here, nowhere else.

A job id is 8 characters of lowercase base32 (40 random bits), short enough for a button's
custom_id. A result image is posted as `seedream-<job>-<n>.<ext>` (n is 1-based), which is how
a result message's attachments are mapped back to a job's images after a restart.
"""

from __future__ import annotations

import base64
import re
import secrets

JOB_ID = re.compile(r"[a-z2-7]{8}")
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}


def new_job_id() -> str:
    return base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()


def typed_job_id(text: str) -> str:
    """What a member typed for a job id (`Job AB3DK2QZ`, `` `ab3dk2qz` ``), normalised; check it
    with `JOB_ID.fullmatch` before looking it up."""
    return text.strip().strip("`").lower().removeprefix("job").strip()


def result_filename(job_id: str, index: int, content_type: str) -> str:
    """The attachment name of image `index` (0-based) of a job."""
    safe_id = re.sub(r"[^A-Za-z0-9_-]+", "-", job_id).strip("-") or "job"
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "bin")
    return f"seedream-{safe_id}-{index + 1}.{extension}"


def image_index(filename: str, job_id: str) -> int | None:
    """The 0-based image index in a result attachment's name, or None if it is not the job's."""
    match = re.fullmatch(rf"seedream-{re.escape(job_id)}-(\d+)\.\w+", filename)
    return int(match.group(1)) - 1 if match else None
