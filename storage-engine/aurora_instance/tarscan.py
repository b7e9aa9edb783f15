"""Follow a tar stream's member headers as its bytes pass by, keeping one member's contents. Pure.

Why it exists: ``pg_basebackup -F t -D -`` appends its ``backup_manifest`` (the backup's WAL range) to the
tar it writes to stdout, and a base backup must know that range. Parsing the stream with ``tarfile`` needs
a file object (a second copy of the stream through a pipe and a thread) and, once the stream is
compressed, a full decompression just to find the last member. The stream is compressed here, after this
scanner has seen the plain bytes: it reads only the 512-byte headers and counts its way over member data
without copying it (the wanted member excepted). It knows the ustar layout pg_basebackup writes (name and
prefix fields, octal or base-256 sizes); a malformed header is an error, never a guess.
"""

from __future__ import annotations

BLOCK = 512


class TarError(ValueError):
    pass


def _size(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes past 8 GiB
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.strip(b"\0 ")
    try:
        return int(text, 8) if text else 0
    except ValueError as err:
        raise TarError(f"tar header with a malformed size field {field!r}") from err


def _name(header: bytes) -> str:
    name = header[0:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar":
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode(errors="replace")


def _checked(header: bytes) -> None:
    stored = header[148:156].strip(b"\0 ")
    try:
        want = int(stored, 8)
    except ValueError as err:
        raise TarError(f"tar header with a malformed checksum field {stored!r}") from err
    got = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if got != want:
        raise TarError(f"tar header checksum {got} != {want}: not a tar stream, or a corrupted one")


class Scanner:
    """Feed it the stream in any pieces; ``wanted`` holds the named member's bytes once it has passed."""

    def __init__(self, name: str, limit: int = 256 * 1024 * 1024) -> None:
        self._want = name
        self._limit = limit
        self._header = bytearray()
        self._data_left = 0  # bytes of the current member's data still to pass
        self._pad_left = 0  # then its padding to the next 512-byte boundary
        self._capture: bytearray | None = None
        self.wanted: bytes | None = None
        self.members = 0
        self.ended = False  # the end-of-archive marker (a zero block) was seen

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view and not self.ended:
            if self._data_left:
                n = min(self._data_left, len(view))
                if self._capture is not None:
                    self._capture += view[:n]
                self._data_left -= n
                view = view[n:]
                if not self._data_left and self._capture is not None:
                    self.wanted, self._capture = bytes(self._capture), None
                continue
            if self._pad_left:
                n = min(self._pad_left, len(view))
                self._pad_left -= n
                view = view[n:]
                continue
            n = min(BLOCK - len(self._header), len(view))
            self._header += view[:n]
            view = view[n:]
            if len(self._header) == BLOCK:
                self._start_member(bytes(self._header))
                self._header.clear()

    def _start_member(self, header: bytes) -> None:
        if not any(header):
            self.ended = True
            return
        _checked(header)
        size = _size(header[124:136])
        self.members += 1
        self._data_left = size
        self._pad_left = -size % BLOCK
        if _name(header) == self._want and header[156:157] in (b"0", b"\0"):
            if size > self._limit:
                raise TarError(f"member {self._want} of {size} bytes exceeds {self._limit}")
            self._capture = bytearray()
            if size == 0:
                self.wanted, self._capture = b"", None
