"""The NACCS EDI codec: the message frame, business layouts as data, rendering and reading replies.

- :mod:`gateway.naccs.frame`: the 398-byte input common header and the output common header, byte by byte.
- :mod:`gateway.naccs.layout`: business layouts (``naccs/layouts/*.yaml``) loaded and validated.
- :mod:`gateway.naccs.render`: item values → the business part (each item its byte length, CRLF after each).
- :mod:`gateway.naccs.reply`: NACCS output messages → header, result codes, outcome; split parts reassembled.

Pure functions and small classes; no database, no network and no logging of header values (the password is
never in a repr, an exception text or a log line).
"""
