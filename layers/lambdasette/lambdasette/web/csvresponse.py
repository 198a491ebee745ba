"""CSV responses: the one way table, row and query pages answer `.csv`.

`_header=off` drops the header line, `_dl` makes the answer a download, and the body stops at
`max_csv_mb` (and `max_response_bytes`, where a response must fit a Lambda answer; and the
response budget of `query.render` for an answer held whole, not streamed) on the last whole
row that fits, ending with a line that says why. A page is written at once only when its
worst case fits what is left; otherwise row by row, so that no more than one row beyond the
cap is ever rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from operator import length_hint
from typing import Any

from starlette.responses import Response, StreamingResponse

from lambdasette.errors import ApiError
from lambdasette.query.csvout import CsvWriter
from lambdasette.query.render import response_budget
from lambdasette.web.context import Context
from lambdasette.web.responses import attachment

PLAIN = "text/plain; charset=utf-8"
DOWNLOAD = "text/csv; charset=utf-8"


def _worst(page: list[Sequence[Any]]) -> int:
    """An upper bound on the UTF-8 CSV of `page`'s rows: 4 bytes a character, doubled where a
    quote is doubled, plus a number's or link's worth per cell."""
    cells = sum(map(len, page))
    return 8 * sum(map(length_hint, chain.from_iterable(page))) + 320 * cells


def byte_limit(max_csv_mb: int, max_response_bytes: int) -> int:
    """The tighter of the two caps in bytes; 0 means no cap."""
    limits = [x for x in (max_csv_mb * 1024 * 1024, max_response_bytes) if x]
    return min(limits) if limits else 0


def csv_response(
    ctx: Context,
    header: Sequence[str],
    pages: Iterable[Iterable[Sequence[Any]]],
    *,
    filename: str,
    stream: bool = False,
    headers: dict[str, str] | None = None,
    close: Callable[[], None] | None = None,
    cut: Callable[[], bool] | None = None,
) -> Response:
    """CSV of `header` and the rows of `pages` (cells ready for CSV). `stream`: send pages as
    they come (`_stream=on`) rather than one buffered body. `close` runs once the body is
    done, e.g. to close a connection the pages read from. `cut()` true once `pages` are done:
    their rows were stopped at the byte cap before they were fetched (the body ends as one
    stopped here does). An ApiError raised by `pages` ends the body with its message: the
    status line has already been sent."""
    settings = ctx.ds.settings
    limit = byte_limit(settings.max_csv_mb, settings.max_response_bytes)
    if not stream:
        # Held whole before it is sent: the response budget too.
        limit = min(limit, response_budget(settings)) if limit else response_budget(settings)
    want_header = ctx.args.get("_header") not in ("off", "0", "false")
    headers = dict(headers or {})
    media = PLAIN
    if ctx.args.flag("_dl"):
        media = DOWNLOAD
        headers["Content-Disposition"] = attachment(f"{filename}.csv")

    def generate() -> Iterator[bytes]:
        writer = CsvWriter()
        pending = b""
        try:
            if want_header:
                writer.write(header)
                pending = writer.take().encode("utf-8")
            sent = len(pending)
            for page in pages:
                page = list(page)
                if limit and sent + _worst(page) > limit:
                    # This page could pass the cap: row by row, stopping at the last that fits.
                    for cells in page:
                        writer.write(cells)
                        line = writer.take().encode("utf-8")
                        if sent + len(line) > limit:
                            yield pending + f"CSV contains more than {limit} bytes".encode()
                            return
                        pending += line
                        sent += len(line)
                    yield pending
                    pending = b""
                    continue
                writer.write_all(page)  # its worst case fits: at once
                chunk = writer.take().encode("utf-8")
                sent += len(chunk)
                yield pending + chunk
                pending = b""
            if cut is not None and cut():
                yield pending + f"CSV contains more than {limit} bytes".encode()
                return
            if pending:
                yield pending
        except ApiError as exc:
            yield pending + writer.take().encode("utf-8") + f"\n{exc}".encode()
        finally:
            if close is not None:
                close()

    if stream:
        return StreamingResponse(generate(), headers=headers, media_type=media)
    return Response(b"".join(generate()), headers=headers, media_type=media)
