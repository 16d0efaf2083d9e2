"""Streaming multipart upload: the file part goes to the file store chunk by chunk, never into memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from fabzone.filestore import FileStore, IncomingFile, TooLarge

MAX_FIELD_BYTES = 4096  # name, profile, language...: short text fields


class UploadError(ValueError):
    """The request is not a usable multipart upload; `code` is a stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Upload:
    file: IncomingFile | None = None
    file_name: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def _content_disposition(value: bytes) -> tuple[str | None, str | None]:
    _, params = parse_options_header(value)
    name = params.get(b"name")
    filename = params.get(b"filename")
    # RFC 7578 §4.2: browsers send the UTF-8 bytes of the name as they are.
    return (
        name.decode("utf-8", "replace") if name is not None else None,
        filename.decode("utf-8", "replace") if filename is not None else None,
    )


async def receive_upload(request: Request, store: FileStore, limit: int) -> Upload:
    """Parse the body as it arrives. Raises TooLarge as soon as the file passes `limit` (the rest of the
    body is not read), UploadError for a malformed request. On error nothing is left on disk."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError("upload.not_multipart", "send the file as multipart/form-data with a 'file' field")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(limit)

    upload = Upload()
    part: dict[str, object] = {}
    header_field = bytearray()
    header_value = bytearray()
    problems: list[Exception] = []

    def on_part_begin() -> None:
        part.clear()
        part["headers"] = {}
        part["buf"] = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers = part["headers"]
        assert isinstance(headers, dict)
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        headers = part["headers"]
        assert isinstance(headers, dict)
        name, filename = _content_disposition(headers.get(b"content-disposition", b""))
        part["name"] = name
        if name == "file" and filename is not None and upload.file is None:
            upload.file_name = filename
            upload.file = store.incoming(limit)
            part["is_file"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if problems:
            return
        try:
            if part.get("is_file"):
                assert upload.file is not None
                upload.file.write(data[start:end])
            else:
                buf = part["buf"]
                assert isinstance(buf, bytearray)
                buf.extend(data[start:end])
                if len(buf) > MAX_FIELD_BYTES:
                    raise UploadError("upload.field_too_long", f"field {part.get('name')!r} is too long")
        except Exception as exc:
            problems.append(exc)

    def on_part_end() -> None:
        name = part.get("name")
        if not part.get("is_file") and isinstance(name, str):
            buf = part["buf"]
            assert isinstance(buf, bytearray)
            upload.fields[name] = buf.decode("utf-8", "replace").strip()

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if problems:
                raise problems[0]
        parser.finalize()
    except TooLarge:
        if upload.file:
            upload.file.discard()
        raise
    except UploadError:
        if upload.file:
            upload.file.discard()
        raise
    except Exception as exc:
        if upload.file:
            upload.file.discard()
        raise UploadError("upload.malformed", f"the upload could not be read: {exc}") from exc
    if upload.file is None:
        raise UploadError("upload.no_file", "the request has no 'file' part")
    return upload
