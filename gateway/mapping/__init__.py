"""Declarative mappings: which mapping file applies to a message (routes.yaml ``mappings:``) and applying it."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config import MappingRule
from gateway.errors import GatewayError
from gateway.mapping.language import Mapping, load_mapping


class MappingTable:
    """The ``mappings:`` rules of routes.yaml in order; the first rule that matches wins."""

    def __init__(self, rules: Sequence[MappingRule]) -> None:
        self.rules = list(rules)
        self._loaded: dict[str, Mapping] = {}

    def find(
        self,
        *,
        format: str,
        message: str | None,
        version: str | None,
        partner: str | None,
        channel: str | None = None,
    ) -> Mapping:
        return self.find_rule(format=format, message=message, version=version, partner=partner, channel=channel)[1]

    def find_rule(
        self,
        *,
        format: str,
        message: str | None,
        version: str | None,
        partner: str | None,
        channel: str | None = None,
    ) -> tuple[MappingRule, Mapping]:
        """The first rule that matches, with its mapping (loaded once)."""
        for rule in self.rules:
            m = rule.match
            if m.format != format:
                continue
            if m.message is not None and m.message != message:
                continue
            if m.version is not None and m.version != version:
                continue
            if m.partner is not None and m.partner != partner:
                continue
            if m.channel is not None and m.channel != channel:
                continue
            key = str(rule.use)
            if key not in self._loaded:
                self._loaded[key] = load_mapping(rule.use)
            return rule, self._loaded[key]
        what = " ".join(x for x in (format, message, version) if x)
        raise GatewayError(
            "MAP-1", f"no mapping in routes.yaml matches {what} from partner {partner or '(unknown)'}", step="map"
        )
