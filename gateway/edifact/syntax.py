"""ISO 9735 service characters and character repertoires.

Segments are cut at the byte level: every service character is ASCII, and ASCII bytes never occur inside the
multi-byte sequences of UTF-8 (UNOW, UNOY) nor mean anything else in the ISO 8859 repertoires, so the tokenizer
splits bytes and decodes each segment once, in the repertoire the UNB declares.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from gateway.errors import GatewayError, Position


@dataclass(frozen=True)
class Delimiters:
    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str | None = "?"
    repetition: str | None = None  # syntax 4 only; UNA position 5 is a reserved space in syntax 3
    segment: str = "'"
    declared: bool = field(default=False, compare=False)  # read from a UNA (not the defaults nor level B)

    @classmethod
    def from_una(cls, una: str) -> Delimiters:
        """``UNA:+.? '`` → delimiters; a space as release or repetition means "none"."""
        c = una[3:9]
        return cls(c[0], c[1], c[2], None if c[3] == " " else c[3], None if c[4] == " " else c[4], c[5], True)

    def una(self) -> str:
        chars = (self.component, self.element, self.decimal, self.release or " ", self.repetition or " ", self.segment)
        return "UNA" + "".join(chars)

    @functools.cached_property
    def service(self) -> str:
        """The characters a value must escape."""
        return "".join(c for c in (self.component, self.element, self.release, self.repetition, self.segment) if c)


DEFAULT = Delimiters()
# Level B (UNOB) without UNA: the information separators IS4/IS3/IS1, and no release character.
LEVEL_B = Delimiters(component="\x1f", element="\x1d", decimal=".", release=None, repetition=None, segment="\x1c")

# Which codec reads each repertoire, and which characters it does not admit (None: all the codec decodes).
# The tokenizer adds the interchange's own service characters to the admitted set.
_UNOA = re.compile(r"[^A-Z0-9 .,\-()/='+:?!\"%&*;<>\r\n]")
_UNOB = re.compile(r"[^A-Za-z0-9 .,\-()/='+:?!\"%&*;<>\r\n]")  # level A plus lower case (ISO 9735)
REPERTOIRES: dict[str, tuple[str, re.Pattern[str] | None]] = {
    "UNOA": ("ascii", _UNOA),
    "UNOB": ("ascii", _UNOB),
    "UNOC": ("latin-1", None),
    "UNOD": ("iso8859-2", None),
    "UNOE": ("iso8859-5", None),
    "UNOF": ("iso8859-7", None),
    "UNOG": ("iso8859-3", None),
    "UNOH": ("iso8859-4", None),
    "UNOI": ("iso8859-6", None),
    "UNOJ": ("iso8859-8", None),
    "UNOK": ("iso8859-9", None),
    "UNOW": ("utf-8", None),
    "UNOX": ("iso2022_jp", None),
    "UNOY": ("utf-8", None),
    "IATA": ("ascii", _UNOA),  # IATA's own syntax identifiers (PAORES and other airline messages)
    "IATB": ("ascii", _UNOB),
}


def decimal_marks(d: Delimiters, syntax_version: str) -> str:
    """The decimal marks a numeric value may use: the UNA's own in syntax versions 1-3, comma or full stop otherwise.

    ISO 9735 versions 1-3 make the decimal notation given in UNA position 3 the one to use; version 4 (ISO
    9735-1:1998) ignores that position and accepts both comma and full stop. Without a UNA, versions 1-3 would
    have the default mark (a comma in the standard, while most senders write a full stop without any UNA): the
    gateway accepts both there, as it does when a UNA names a character that is neither comma nor full stop.
    """
    if syntax_version in ("1", "2", "3") and d.declared and d.decimal in (".", ","):
        return d.decimal
    return ".,"


def syntax_error(code: str, text: str, **where: int | str | None) -> GatewayError:
    """A coded EDIFACT error; ``where`` takes Position's fields (segment_number, segment_tag, element, ...)."""
    return GatewayError(f"EDI-{code}", text, Position(**where), step="parse")  # type: ignore[arg-type]
