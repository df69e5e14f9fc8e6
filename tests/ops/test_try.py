"""`python -m bot try "prompt"`: the relay path alone, images written as they arrive, one-line errors."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from tests.fakes.fake_relay import FakeRelay, ark_error
from tests.ops.conftest import Cli


def image_file(path: Path, fmt: str, size: tuple[int, int] = (64, 48)) -> Path:
    Image.new("RGB", size, (200, 40, 40)).save(path, fmt)
    return path


async def test_try_writes_each_image_and_shows_progress(cli: Cli, relay: FakeRelay, tmp_path: Path) -> None:
    out = tmp_path / "images"
    result = await cli("try", "a lighthouse at dusk --ar 16:9", "--count", "3", "-o", str(out))
    assert result.code == 0, result.text
    files = sorted(out.iterdir())
    assert len(files) == 3 and all(f.read_bytes() == relay.served_images[i] for i, f in enumerate(files))
    lines = result.out.splitlines()
    assert lines[0].startswith(f"asking {relay.base_url} (doubao-seedream-4-0-250828) for 3 image(s) at 2736x1536")
    assert [line.split()[0] for line in lines[1:4]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert lines[-1].startswith("3 of 3 image(s) in ")
    body = relay.requests[0].body
    assert body["prompt"] == "a lighthouse at dusk" and body["size"] == "2736x1536"
    assert body["sequential_image_generation_options"] == {"max_images": 3}
    assert relay.api_key not in result.text


async def test_try_writes_to_the_current_directory_by_default(cli: Cli, tmp_path: Path) -> None:
    result = await cli("try", "a fox", "--size", "1K")
    assert result.code == 0, result.text
    assert len(list((tmp_path / "work").glob("seedream-try-*-1.jpg"))) == 1


async def test_a_reference_file_is_normalised_like_an_upload(cli: Cli, relay: FakeRelay, tmp_path: Path) -> None:
    bmp = image_file(tmp_path / "sketch.bmp", "BMP")
    jpeg = image_file(tmp_path / "photo.jpg", "JPEG")
    result = await cli("try", "image 1 in the style of image 2", "--reference", str(bmp), str(jpeg),
                       "-o", str(tmp_path / "out"))
    assert result.code == 0, result.text
    assert "2 reference(s)" in result.out.splitlines()[0]
    first, second = relay.requests[0].body["image"]
    assert first.startswith("data:image/png;base64,")  # BMP is not sent as it is
    assert Image.open(io.BytesIO(base64.b64decode(first.split(",", 1)[1]))).size == (64, 48)
    assert second == "data:image/jpeg;base64," + base64.b64encode(jpeg.read_bytes()).decode()


async def test_a_file_that_is_not_an_image_is_refused_before_the_relay(cli: Cli, relay: FakeRelay,
                                                                      tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not really a picture")
    result = await cli("try", "a cat", "--reference", str(notes))
    assert result.code == 1
    assert result.err.startswith("error: ") and "notes.png" in result.err
    assert relay.requests == []


async def test_a_missing_reference_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = await cli("try", "a cat", "--reference", str(tmp_path / "gone.png"))
    assert result.code == 1
    assert result.err.strip() == f"error: cannot read {tmp_path / 'gone.png'}: No such file or directory"


async def test_a_bad_size_is_refused_before_the_relay(cli: Cli, relay: FakeRelay) -> None:
    result = await cli("try", "a cat", "--size", "10x10")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1 and result.err.startswith("error: ")
    assert relay.requests == []


async def test_a_relay_error_is_one_english_line_and_a_failure(cli: Cli, relay: FakeRelay) -> None:
    relay.fail_next(400, ark_error("InputTextSensitiveContentDetected", "The request failed because the input "
                                   "text may contain sensitive information."))
    result = await cli("try", "something blocked")
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "error: Your prompt was blocked by the image service's safety filter. Please rephrase it. "
        "(InputTextSensitiveContentDetected)"]
    assert "Traceback" not in result.text


async def test_a_wrong_key_says_so_without_showing_it(cli: Cli, env: dict[str, str]) -> None:
    env["IMAGE_API_KEY"] = "sk-wrong-key-456789"
    result = await cli("try", "a cat")
    assert result.code == 1
    assert result.err.strip() == "error: the relay rejected IMAGE_API_KEY"
    assert "sk-wrong-key-456789" not in result.text


async def test_one_failed_image_of_a_set_fails_the_run(cli: Cli, relay: FakeRelay, tmp_path: Path) -> None:
    relay.image_errors = {1: "OutputImageSensitiveContentDetected"}
    result = await cli("try", "three panels", "--count", "3", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert "failed: " in result.line("[2/3]")
    assert len(list((tmp_path / "out").iterdir())) == 2
    assert result.out.splitlines()[-1].endswith(", 1 failed")


async def test_try_needs_no_discord_token(cli: Cli, env: dict[str, str], tmp_path: Path) -> None:
    del env["DISCORD_TOKEN"]
    assert (await cli("try", "a cat", "-o", str(tmp_path / "out"))).code == 0
    del env["IMAGE_API_KEY"]
    result = await cli("try", "a cat")
    assert result.code == 2 and "IMAGE_API_KEY is required" in result.err
