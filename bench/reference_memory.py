"""Six 36-megapixel references checked as `/blend` checks them: peak memory and loop pauses.

    .venv/bin/python -m bench.reference_memory

Each format runs in a fresh process (see `tests/test_reference_normalise.py`). Targets: peak RSS
under 300 MiB, the event loop never paused for more than 50 ms.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.test_reference_normalise import measure_six_references


def main() -> None:
    for fmt in ("PNG", "TIFF"):
        with tempfile.TemporaryDirectory() as scratch:
            report = measure_six_references(Path(scratch), fmt)
        print(f"{fmt:5} six 6000x6000: peak {report['peak_mib']:.0f} MiB, longest loop pause "
              f"{report['worst_pause'] * 1000:.0f} ms, {report['seconds']:.1f} s")


if __name__ == "__main__":
    main()
