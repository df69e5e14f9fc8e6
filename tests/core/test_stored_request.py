"""The job row's request is one typed record that round-trips through its JSON."""

from __future__ import annotations

from bot.core.jobs.naming import JOB_ID, image_index, new_job_id, result_filename, typed_job_id
from bot.core.jobs.spec import StoredReference, StoredRequest


def test_a_stored_request_with_references_round_trips_through_json():
    request = StoredRequest(
        prompt="a fox", size="2048x2048", count=3, watermark=True, reference_count=2,
        references=(
            StoredReference(attachment_id=1, filename="a.png", url="https://cdn/a.png", message_id=5, channel_id=6),
            StoredReference(attachment_id=2, filename="b.png", url="https://cdn/b.png"),
        ),
    )
    assert StoredRequest.from_json(request.to_json()) == request
    assert request.references_complete


def test_a_row_written_before_references_were_recorded_reads_with_defaults():
    old = StoredRequest.from_json({"prompt": "lost", "size": "2K", "count": 4, "reference_count": 1})
    assert old == StoredRequest(prompt="lost", size="2K", count=4, reference_count=1)
    assert not old.references_complete  # Reroll must refuse: the image's origin is unknown


def test_result_file_names_map_back_to_their_job_and_image():
    job_id = new_job_id()
    assert JOB_ID.fullmatch(job_id)
    name = result_filename(job_id, 4, "image/jpeg")
    assert name == f"seedream-{job_id}-5.jpg"
    assert image_index(name, job_id) == 4
    assert image_index(name, "otherjob") is None
    assert typed_job_id(f"  `Job {job_id.upper()}` ") == job_id
