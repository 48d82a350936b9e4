"""XML hostile input: entity and DTD attacks refused with FMT-5 and nothing fetched, size and depth limits, and
mutated example documents through the parser, the schema check and the pipeline.

Already proven in ``tests/unit/formats/test_xml.py`` (not repeated): an external entity to file:///etc/passwd
(``test_external_entity_is_refused``), billion laughs (``test_billion_laughs_is_refused``), an external DTD
(``test_external_dtd_is_refused``), an internal DTD (``test_internal_dtd_without_entities_is_refused``), too deep
(``test_too_deep_is_refused_with_the_line``) and too large (``test_too_large_is_refused_before_parsing``). Added
here: that nothing is fetched (a loopback listener counts connections), parameter entities, XInclude, a huge
attribute, deep nesting past libxml2's own limit, and the same attacks through ``Gateway.accept``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from lxml import etree

from gateway.app import Gateway
from gateway.errors import GatewayError
from gateway.formats import xml as xmlformat
from tests.hostile.conftest import XML_SEEDS, assert_coded, bounded, hostile
from tests.hostile.pipeline import accept_and_check

EXAMPLES = 500
SI = b'<ShippingInstruction xmlns="urn:port-gateway:xml:shipping-instruction:1">'


class Listener:
    """A TCP listener on a loopback port that counts the connections made to it (an HTTP fetch, an FTP one)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lis = Listener()
    yield lis
    lis.close()


def attacks(port: int, secret: Path) -> dict[str, bytes]:
    """Each attack by name; ``secret`` is a local file an external entity names (its text must never show)."""
    url = f"http://127.0.0.1:{port}"
    file_url = secret.as_uri()
    return {
        "xxe-file": f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "{file_url}">]><a>&x;</a>'.encode(),
        "xxe-http": f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "{url}/x">]><a>&x;</a>'.encode(),
        "xxe-parameter": (
            f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><a>&e;</a>'.encode()
        ),
        "external-dtd": f'<?xml version="1.0"?><!DOCTYPE a SYSTEM "{url}/a.dtd"><a>x</a>'.encode(),
        "external-dtd-public": (
            f'<?xml version="1.0"?><!DOCTYPE a PUBLIC "-//X//DTD X//EN" "{url}/a.dtd"><a>x</a>'.encode()
        ),
        "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE a ['
        + b'<!ENTITY l0 "lol">'
        + b"".join(b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10))
        + b"]><a>&l9;</a>",
        "quadratic-blowup": b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "'
        + b"x" * 100_000
        + b'">]><a>'
        + b"&x;" * 1000
        + b"</a>",
        "xinclude": (
            f'<?xml version="1.0"?><a xmlns:xi="http://www.w3.org/2001/XInclude">'
            f'<xi:include href="{url}/inc.xml"/><xi:include href="{file_url}" parse="text"/></a>'.encode()
        ),
        "xsi-schema-location": (
            f'<?xml version="1.0"?><a xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="urn:x {url}/x.xsd" xsi:noNamespaceSchemaLocation="{url}/y.xsd">x</a>'.encode()
        ),
        "stylesheet-pi": f'<?xml version="1.0"?><?xml-stylesheet href="{url}/s.xsl"?><a>x</a>'.encode(),
    }


REFUSED = {  # attack → the code it must get from xmlformat.parse (None: parses, and must fetch nothing)
    "xxe-file": "FMT-5",
    "xxe-http": "FMT-5",
    "xxe-parameter": "FMT-5",
    "external-dtd": "FMT-5",
    "external-dtd-public": "FMT-5",
    "billion-laughs": "FMT-5",
    "quadratic-blowup": "FMT-5",
    "xinclude": None,  # XInclude is never processed: lxml parses the element as an unknown one
    "xsi-schema-location": None,  # the schema comes from the catalog, never from the document's hint
    "stylesheet-pi": None,
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_attack_is_refused_and_nothing_is_fetched(name: str, listener: Listener, tmp_path: Path) -> None:
    """Breaks if the parser resolves an entity, loads a DTD, follows an XInclude or a schema location (the loopback
    listener would count a connection, or the secret's text would appear), or an attack is not FMT-5."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    raw = attacks(listener.port, secret)[name]
    try:
        root = xmlformat.parse(raw)
    except GatewayError as refused:
        assert refused.code == REFUSED[name], refused
        assert "TOP-SECRET" not in refused.text
    else:
        assert REFUSED[name] is None, f"{name} parsed"
        assert b"TOP-SECRET" not in etree.tostring(root)
        with pytest.raises(GatewayError) as err:  # and the schema check does not fetch its hints either
            xmlformat.catalog().validate(root)
        assert err.value.code == "FMT-7"
    assert listener.connections == 0


def test_attacks_through_the_pipeline_fail_with_fmt_codes(
    pipeline_gateway: Gateway, listener: Listener, tmp_path: Path
) -> None:
    """The same attacks through Gateway.accept: each ends failed with FMT-5 (or FMT-7 for the documents that
    parse), the listener sees no connection. Breaks on an INT-1 or a fetch from the validate or map step."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    for name, raw in attacks(listener.port, secret).items():
        assert accept_and_check(pipeline_gateway, raw) == "failed", name
    assert listener.connections == 0


def test_an_attack_inside_a_real_form_is_refused(listener: Listener) -> None:
    """An XXE in front of a real shipping instruction root: FMT-5, whatever the root element."""
    raw = (
        (
            f'<?xml version="1.0"?><!DOCTYPE ShippingInstruction [<!ENTITY x SYSTEM "http://127.0.0.1:{listener.port}/">]>'
        ).encode()
        + SI
        + b"&x;</ShippingInstruction>"
    )
    with pytest.raises(GatewayError) as err:
        xmlformat.parse(raw)
    assert err.value.code == "FMT-5"
    assert listener.connections == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"<a>" * 100_000 + b"x" + b"</a>" * 100_000, "FMT-5"),  # deeper than MAX_DEPTH and libxml2's 256
        (b"<a " + b'x="' + b"y" * 20_000_000 + b'"/>', "FMT-5"),  # a 20 MB attribute: over libxml2's 10 MB
        (b"<a>" + b"<b " + b" ".join(b'a%d="1"' % i for i in range(100_000)) + b"/></a>", None),  # many attributes
        (b"<a>" + b"<![CDATA[" + b"x" * 1_000_000 + b"]]></a>", None),
        (b"<" + b"a" * 100_000 + b"/>", "FMT-5"),  # a 100,000-character name: over libxml2's 50,000
        (b"<a>" + b"x" * 12_000_000 + b"</a>", "FMT-5"),  # a 12 MB text node: over libxml2's 10 MB
    ],
    ids=["deep", "huge-attribute", "many-attributes", "big-cdata", "long-name", "huge-text"],
)
def test_big_and_deep_documents_are_refused_or_read_whole(raw: bytes, code: str | None) -> None:
    """Breaks if depth is not refused, or one of libxml2's own size limits is reported as FMT-4 "not well-formed"
    (it was: the sender would be told to fix broken XML) instead of FMT-5 "refused for safety"."""
    try:
        xmlformat.parse(raw)
    except GatewayError as err:
        assert err.code == code, err
        return
    assert code is None


@bounded(EXAMPLES)
@given(hostile(XML_SEEDS))
def test_the_parser_and_schema_check_give_a_result_or_a_coded_error(data: bytes) -> None:
    """500 examples (mutated example forms and any bytes): parse, then the catalog's schema check."""
    try:
        root = xmlformat.parse(data)
        xmlformat.catalog().validate(root)
    except GatewayError as err:
        assert_coded(err.code, "FMT")


@bounded(EXAMPLES)
@given(hostile(XML_SEEDS))
def test_a_hostile_xml_document_ends_done_or_failed_with_a_code(pipeline_gateway: Gateway, data: bytes) -> None:
    """500 examples through Gateway.accept on SQLite."""
    accept_and_check(pipeline_gateway, data)
