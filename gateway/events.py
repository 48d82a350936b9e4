"""The kinds of event the canonical model writes on a deal's timeline; routes subscribe to them by name."""

from __future__ import annotations

EVENT_KINDS: dict[str, str] = {
    "deal.opened": "a deal was created for a B/L or booking",
    "vessel_call.announced": "a vessel call was created or its schedule changed",
    "booking.announced": "a booking was announced or amended (COPARN, IFTMBC)",
    "container.announced": "a container was announced or amended: size, weights, VGM, seals, reefer, DG "
    "(COPARN, COPRAR, BAPLIE, VERMAS, IFTMIN, ...)",
    "shipment.updated": "a deal's shipment details or one of its forms changed (IFTMBC, IFTMIN, IFTMCS, IFTMAN, ...)",
    "container.gate_in": "a container entered a terminal or depot gate (CODECO, IFTSTA)",
    "container.gate_out": "a container left a terminal or depot gate (CODECO, IFTSTA)",
    "container.loaded": "a container was loaded on a vessel (COARRI, IFTSTA)",
    "container.discharged": "a container was discharged from a vessel (COARRI, IFTSTA)",
    "container.released": "a container was released for pick-up (COREOR)",
    "container.stuffed": "a container was stuffed (IFTSTA)",
    "container.stripped": "a container was stripped (IFTSTA)",
    "container.status": "another status of a container was reported (IFTSTA)",
    "acknowledgement.received": "a partner acknowledged a message we sent, accepting or rejecting it (APERAK)",
    "naccs.result": "NACCS answered a message we sent (matched by hand-over information): outcome success, warning "
    "or error, the result codes, the output information code",
    "conpas.answered": "CONPAS answered a pre-notification with its pre-matching answer: prematching_result 0-3 and "
    "terminal_check 0-2 (also on the container), or the answer's problems when it was not a valid answer",
    "customs.status": "customs answered about a deal: accepted, permitted, held, ... (CUSRES)",
    "edifact.received": "an EDIFACT payload from a partner whose agreement asks for CONTRL was processed (either way)",
    "edifact.application_error": "an EDIFACT message passed the syntax checks but mapping or persisting refused it "
    "(APERAK, for partners whose agreement asks for it)",
}
