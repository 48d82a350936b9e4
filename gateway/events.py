"""The kinds of event the canonical model writes on a deal's timeline; routes subscribe to them by name."""

from __future__ import annotations

EVENT_KINDS: dict[str, str] = {
    "deal.opened": "a deal was created for a B/L or booking",
    "vessel_call.announced": "a vessel call was created or its schedule changed",
    "booking.announced": "a booking was announced or amended (COPARN, IFTMBC)",
    "container.announced": "a container was announced or amended for a booking (COPARN)",
    "edifact.received": "an EDIFACT payload from a partner whose agreement asks for CONTRL was processed (either way)",
    "edifact.application_error": "an EDIFACT message passed the syntax checks but mapping or persisting refused it "
    "(APERAK, for partners whose agreement asks for it)",
}
