"""The time-stamp of every asiento: the register date-time made evidence (Ley 39/2015, art. 16).

The server takes the register date-time when it records an asiento; this feature
has it time-stamped by the sellado's TSA (RFC 3161). For each
``registro.asiento.registrado.v1`` it builds the asiento's canonical bytes (its
canonical JSON as recorded), keeps them verbatim with their SHA-256 in
``sellos_tiempo`` (``pendiente``) and sends ``sellado.sellotiempo.solicitar.v1``
in the same transaction. The sellado's reply settles the row: ``sellado`` with
the token, its genTime, serial and policy and the delay since the register
date-time, or ``fallido`` with why; a failed one may be asked for again.

The stamped bytes are kept rather than rebuilt on demand: the asiento's schema
grows (new SICRES fields), and a rebuilt JSON would no longer be what the token
proves. Anyone can check the evidence with the bytes, the token and the TSA's
root alone (``openssl ts -verify -data datos.json -in token.tst -token_in``).
"""
