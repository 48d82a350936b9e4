"""The NACCS EDI frame: the input common header (user → NACCS) and the output common header (NACCS → user).

A NACCS EDI message is a fixed 398-byte common header, CRLF, then the business part, in which every item is a
fixed-length field followed by CRLF. Lengths are bytes in the message encoding (EUC-JP unless configured).
The message length (input header 392:6) is the whole message, header and its CRLF included, written last.

Both headers are written below as data tables of (name, offset, length); ``tests/unit/naccs/test_frame.py``
checks that each table is contiguous and adds up to 398 bytes.

The password (input header 37:8) is never put into a repr, an exception text or a log line. The rendered
message holds it, necessarily; :func:`mask_password` blanks it in a copy that can be stored, and
:func:`set_password` puts it back just before sending.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from gateway.errors import GatewayError, Position

HEADER_LENGTH = 398
CRLF = b"\r\n"
MAX_MESSAGE_BYTES = 700_000
DEFAULT_ENCODING = "euc_jp"
# Encodings a business part may be written in. ``j`` items need a double-byte Japanese encoding (a kanji is 2
# bytes), so UTF-8 is not offered. Names are Python codec names; aliases (EUC-JP, Shift_JIS) are accepted.
SUPPORTED_ENCODINGS = ("euc_jp", "shift_jis", "cp932")


@dataclass(frozen=True)
class Field:
    """One header field: where it starts (0-based byte offset) and how many bytes it has."""

    name: str
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


# Input common header (入力共通項目), ../shared/domain.md §4.
INPUT_HEADER: tuple[Field, ...] = (
    Field("control", 0, 3),  # blank
    Field("business_code", 3, 5),  # left-justified: "EDA  ", "ACL01"
    Field("reserved_8", 8, 21),
    Field("user_code", 29, 5),
    Field("user_id", 34, 3),
    Field("password", 37, 8),  # never logged
    Field("reserved_45", 45, 174),
    Field("handover", 219, 26),  # hand-over information: echoed in every reply, the correlation id
    Field("reserved_245", 245, 8),
    Field("input_id", 253, 10),  # input identification number
    Field("inquiry_continuation", 263, 100),
    Field("reserved_363", 363, 1),
    Field("system_id", 364, 1),
    Field("reserved_365", 365, 27),
    Field("message_length", 392, 6),  # zero-padded decimal, the whole message including header and CRLF
)

# Output common header (出力共通項目), ../shared/domain.md §4; offsets are the running sum of its lengths.
OUTPUT_HEADER: tuple[Field, ...] = (
    Field("reserved_0", 0, 3),
    Field("business_code", 3, 5),
    Field("output_code", 8, 7),  # output information code; result notices: "*" + A/S/C + business code
    Field("received_at", 15, 14),  # yyyymmddhhmmss
    Field("user_code", 29, 5),
    Field("reserved_34", 34, 17),
    Field("destination", 51, 64),
    Field("subject", 115, 64),
    Field("reserved_179", 179, 40),
    Field("handover", 219, 26),
    Field("split_sequence", 245, 3),
    Field("last_part", 248, 1),  # "E" on the last part
    Field("kind", 249, 1),  # R result notice, P form output, C screen, M inquiry result, T in-house, U stored
    Field("reserved_250", 250, 3),
    Field("input_id", 253, 10),
    Field("inquiry_continuation", 263, 100),
    Field("destination_form", 363, 1),
    Field("reserved_364", 364, 28),
    Field("message_length", 392, 6),
)

_IN = {f.name: f for f in INPUT_HEADER}
_OUT = {f.name: f for f in OUTPUT_HEADER}

MESSAGE_KINDS = {
    "R": "result notice",
    "P": "form output",
    "C": "screen",
    "M": "inquiry result",
    "T": "in-house interface",
    "U": "stored",
}


def check_encoding(encoding: str) -> str:
    """The codec name of ``encoding`` if the frame supports it, else OUT-16."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = ""
    if name not in SUPPORTED_ENCODINGS:
        raise GatewayError(
            "OUT-16",
            f"NACCS message encoding {encoding!r} is not supported (use one of {', '.join(SUPPORTED_ENCODINGS)})",
        )
    return name


@dataclass(frozen=True)
class InputHeader:
    """The caller-supplied fields of the input common header. Blank fields are written as spaces.

    ``password`` is left out of the repr (and so of ``str``) on purpose.
    """

    business_code: str
    user_code: str
    user_id: str
    password: str = field(default="", repr=False)
    handover: str = ""
    input_id: str = ""
    system_id: str = ""
    inquiry_continuation: str = ""


def _header_value(name: str, value: str, *, secret: bool = False) -> bytes:
    """``value`` left-justified and space-padded to the field's length; OUT-16 if it does not fit."""
    spec = _IN[name]
    shown = "(hidden)" if secret else repr(value)
    if any(not (" " <= ch <= "~") for ch in value):
        raise GatewayError(
            "OUT-16",
            f"input common header field {name} {shown} must be half-width printable characters",
            Position(path=f"header/{name}"),
        )
    raw = value.encode("ascii")
    if len(raw) > spec.length:
        raise GatewayError(
            "OUT-16",
            f"input common header field {name} {shown} is {len(raw)} bytes, the field has {spec.length}",
            Position(path=f"header/{name}"),
        )
    return raw.ljust(spec.length, b" ")


def build_header(header: InputHeader, message_length: int) -> bytes:
    """The 398-byte input common header for a message of ``message_length`` bytes (header and CRLF included)."""
    if not header.business_code.strip():
        raise GatewayError("OUT-16", "input common header field business_code is blank", Position(path="header"))
    if message_length > MAX_MESSAGE_BYTES:
        raise GatewayError(
            "OUT-14",
            f"NACCS message {header.business_code.strip()} is {message_length:,} bytes, the limit is "
            f"{MAX_MESSAGE_BYTES:,}",
        )
    buf = bytearray(b" " * HEADER_LENGTH)
    values = {
        "business_code": _header_value("business_code", header.business_code),
        "user_code": _header_value("user_code", header.user_code),
        "user_id": _header_value("user_id", header.user_id),
        "password": _header_value("password", header.password, secret=True),
        "handover": _header_value("handover", header.handover),
        "input_id": _header_value("input_id", header.input_id),
        "system_id": _header_value("system_id", header.system_id),
        "inquiry_continuation": _header_value("inquiry_continuation", header.inquiry_continuation),
        "message_length": str(message_length).rjust(_IN["message_length"].length, "0").encode("ascii"),
    }
    for name, raw in values.items():
        spec = _IN[name]
        buf[spec.offset : spec.end] = raw
    return bytes(buf)


def build_message(header: InputHeader, business_part: bytes | str, encoding: str = DEFAULT_ENCODING) -> bytes:
    """Header, CRLF and the business part (as rendered by :mod:`gateway.naccs.render`); the length is set last.

    A ``str`` business part is encoded with ``encoding`` (OUT-11 for a character it cannot encode).
    """
    codec = check_encoding(encoding)
    if isinstance(business_part, str):
        try:
            business = business_part.encode(codec)
        except UnicodeEncodeError as exc:
            raise GatewayError(
                "OUT-11",
                f"NACCS message {header.business_code.strip()}: character {exc.object[exc.start]!r} at "
                f"position {exc.start} of the business part cannot be written in {codec}",
            ) from None
    else:
        business = business_part
    total = HEADER_LENGTH + len(CRLF) + len(business)
    return build_header(header, total) + CRLF + business


def read_input_header(message: bytes) -> InputHeader:
    """The fields of an input message's header (used by tests and a NACCS stand-in). OUT-20 if it is too short."""
    if len(message) < HEADER_LENGTH:
        raise GatewayError("OUT-20", f"NACCS input message is {len(message)} bytes, shorter than its header")

    def text(name: str) -> str:
        spec = _IN[name]
        return message[spec.offset : spec.end].decode("ascii", errors="replace").rstrip(" ")

    return InputHeader(
        business_code=text("business_code"),
        user_code=text("user_code"),
        user_id=text("user_id"),
        password=text("password"),
        handover=text("handover"),
        input_id=text("input_id"),
        system_id=text("system_id"),
        inquiry_continuation=text("inquiry_continuation"),
    )


def mask_password(message: bytes) -> bytes:
    """A copy of an input message with the password field blanked: what may be stored or shown."""
    spec = _IN["password"]
    if len(message) < spec.end:
        return message
    return message[: spec.offset] + b" " * spec.length + message[spec.end :]


def set_password(message: bytes, password: str) -> bytes:
    """A copy of an input message with ``password`` written into its field (OUT-16 if it does not fit)."""
    spec = _IN["password"]
    if len(message) < HEADER_LENGTH:
        raise GatewayError("OUT-16", "NACCS input message is shorter than its header; cannot set the password")
    return message[: spec.offset] + _header_value("password", password, secret=True) + message[spec.end :]


@dataclass(frozen=True)
class OutputHeader:
    """The output common header of a NACCS output message, fields stripped of their trailing spaces."""

    business_code: str
    output_code: str
    received_at: str  # yyyymmddhhmmss as sent
    user_code: str
    destination: str
    subject: str
    handover: str
    split_sequence: int | None  # None when the field is blank (a message that was not split)
    last_part: bool
    kind: str
    input_id: str
    inquiry_continuation: str
    destination_form: str
    message_length: int


def _reply_error(text: str) -> GatewayError:
    return GatewayError("OUT-20", text)


def parse_output_header(data: bytes, encoding: str = DEFAULT_ENCODING) -> OutputHeader:
    """Read the output common header at the start of ``data``; OUT-20 if it cannot be read.

    Checks: at least 398 bytes followed by CRLF; the message length is digits and equals ``len(data)``; the split
    sequence is blank or digits; the message kind is one of R, P, C, M, T, U. Each field is decoded with
    ``encoding`` on its own (a field cut inside a character is an error).
    """
    codec = check_encoding(encoding)
    if len(data) < HEADER_LENGTH + len(CRLF):
        raise _reply_error(f"NACCS output message is {len(data)} bytes, shorter than its common header and CRLF")
    if data[HEADER_LENGTH : HEADER_LENGTH + len(CRLF)] != CRLF:
        raise _reply_error(f"NACCS output message: no CRLF after the {HEADER_LENGTH}-byte common header")

    def text(name: str) -> str:
        spec = _OUT[name]
        try:
            return data[spec.offset : spec.end].decode(codec).rstrip(" ")
        except UnicodeDecodeError:
            raise _reply_error(
                f"NACCS output header field {name} (offset {spec.offset}, {spec.length} bytes) is not valid {codec}"
            ) from None

    length_text = text("message_length")
    if not (length_text.isascii() and length_text.isdigit()):
        raise _reply_error(f"NACCS output header message length {length_text!r} is not a number")
    if int(length_text) != len(data):
        raise _reply_error(f"NACCS output header says {int(length_text)} bytes, the message has {len(data)}")
    seq_text = text("split_sequence").strip()
    if seq_text and not (seq_text.isascii() and seq_text.isdigit()):
        raise _reply_error(f"NACCS output header split sequence {seq_text!r} is not a number")
    kind = text("kind")
    if kind not in MESSAGE_KINDS:
        raise _reply_error(f"NACCS output header message kind {kind!r} is not one of {', '.join(MESSAGE_KINDS)}")
    last = text("last_part")
    if last not in ("", "E"):
        raise _reply_error(f"NACCS output header last-part flag {last!r} is neither 'E' nor blank")
    return OutputHeader(
        business_code=text("business_code"),
        output_code=text("output_code"),
        received_at=text("received_at"),
        user_code=text("user_code"),
        destination=text("destination"),
        subject=text("subject"),
        handover=text("handover"),
        split_sequence=int(seq_text) or None if seq_text else None,  # "000" is read as blank: not split
        last_part=last == "E",
        kind=kind,
        input_id=text("input_id"),
        inquiry_continuation=text("inquiry_continuation"),
        destination_form=text("destination_form"),
        message_length=int(length_text),
    )
