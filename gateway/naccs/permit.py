"""Which NACCS output means a customs permit: the rule that sets a deal's customs status from a NACCS reply.

Rule (an assumption, documented in docs/architecture.md "NACCS replies"): NACCS names its outputs by an output
information code whose first three characters are the system letter (S sea, A air), a letter for the kind of
output, and a letter for the group. The NACCS bulletin board files the outputs 輸出許可通知情報等 ("export permit
notice information and the like") under SAE (sea) and AAE (air), and 輸入許可通知情報等 under SAD and AAD
(bbs.naccscenter.com, 第7次NACCS 帳票仕様書 index). So an output whose code starts with SAE/AAE is read as an export
permit, SAD/AAD as an import permit, unless its result codes say error. The groups hold related notices as well
("等"); once the branch numbers (枝番, EDI仕様書 付録6) are transcribed, narrow the prefixes to the permit notices.
Result notices (codes starting with ``*``) never count: a declaration accepted is not yet permitted.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gateway.naccs.reply import Outcome, Reply

JST = timezone(timedelta(hours=9))
PERMIT_PREFIXES = {
    "SAE": "export_permitted",
    "AAE": "export_permitted",
    "SAD": "import_permitted",
    "AAD": "import_permitted",
}


def permit_status(reply: Reply) -> str | None:
    """``export_permitted``, ``import_permitted`` or None for ``reply`` (see the module's rule)."""
    if reply.outcome is Outcome.ERROR:
        return None
    return PERMIT_PREFIXES.get(reply.header.output_code.strip().upper()[:3])


def received_at(reply: Reply) -> datetime | None:
    """The output header's timestamp (yyyymmddhhmmss, Japan time, an assumption) as an aware datetime."""
    try:
        return datetime.strptime(reply.header.received_at, "%Y%m%d%H%M%S").replace(tzinfo=JST)
    except ValueError:
        return None
