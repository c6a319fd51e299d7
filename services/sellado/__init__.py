"""sellado: electronic seals of the councils (sellos de órgano) and trusted time stamps.

The trust core lives here: a development PKI (:mod:`services.sellado.pki`), the
RFC 3161 / RFC 5816 time-stamping authority (:mod:`services.sellado.tsa`) and
its HTTP face (:mod:`services.sellado.tsa_api`).
"""
