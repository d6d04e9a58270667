#!/usr/bin/python3
"""dkim_verify.py - verify every DKIM-Signature of a message, without DNS.

    dkim_verify.py --key KEYFILE [--covers HEADER]... [--not-covers HEADER]...
                   MESSAGE

MESSAGE is an RFC 5322 message file, with CR LF or LF line ends: what
smtp-sink -d writes (its own X-Client-Addr, X-Helo-Args, X-Mail-Args and
X-Rcpt-Args lines come first; no signature covers them, so they change
nothing).  KEYFILE is the public key as opendkim-genkey writes it (the DNS
TXT record of SELECTOR._domainkey: its quoted strings joined), a bare
"v=DKIM1; k=rsa; p=..." record, or the PEM private key, from which the
public key is derived.  python's dkim module (Debian: python3-dkim) is
handed that key through its dnsfunc hook: no DNS is asked.  A zone file
record answers only for its own name (SELECTOR._domainkey.*); a record or
a private key answers for any name.

For each signature, topmost first, it prints one line,

    signature 1 of 1: d=milterhost.test s=test c=relaxed/relaxed: verifies

("does not verify: REASON" otherwise) and then the header fields the
signature covers, its h= tag, lowercased, without spaces:

      h=from:to:subject:date:message-id:x-added

--covers HEADER requires every signature's h= to list HEADER, and
--not-covers HEADER that none does (both ignore case; each may be given
several times).  The exit status is 0 only if the message has at least one
signature, all verify and the coverage holds; 1 otherwise, 2 for a usage
error or a file that cannot be read.
"""

import argparse
import base64
import logging
import re
import sys

try:
    import dkim
    import dkim.crypto
    import dkim.util
except ImportError:
    sys.stderr.write("dkim_verify.py: python's dkim module is missing"
                     " (Debian: apt-get install python3-dkim)\n")
    sys.exit(2)


def der_length(n):
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def der_integer(n):
    octets = n.to_bytes(n.bit_length() // 8 + 1, "big")  # leading 0 bit
    return b"\x02" + der_length(len(octets)) + octets


def public_record_from_private(pem):
    """The TXT record of the RSA public key of a PEM private key: its
    RSAPublicKey (modulus, exponent) in DER, which dkim takes as p=."""
    key = dkim.crypto.parse_pem_private_key(pem)
    body = der_integer(key["modulus"]) + der_integer(key["publicExponent"])
    der = b"\x30" + der_length(len(body)) + body
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def load_key(path):
    """(owner name or None, TXT record bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    if b"PRIVATE KEY-----" in data:
        return None, public_record_from_private(data)
    quoted = re.findall(rb'"([^"]*)"', data)
    if quoted:
        owner = data.split()[0].lower()
        return owner, b"".join(quoted)
    return None, data.strip()


class Reasons(logging.Handler):
    """Keeps what the dkim module logs, to say why a signature failed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main():
    parser = argparse.ArgumentParser(
        description="Verify every DKIM-Signature of a message with a"
        " given key, without DNS.")
    parser.add_argument("--key", required=True,
                        help="opendkim-genkey's .txt, a TXT record, or the"
                        " PEM private key")
    parser.add_argument("--covers", action="append", default=[],
                        metavar="HEADER",
                        help="every signature's h= must list HEADER")
    parser.add_argument("--not-covers", action="append", default=[],
                        metavar="HEADER",
                        help="no signature's h= may list HEADER")
    parser.add_argument("message")
    args = parser.parse_args()

    try:
        owner, record = load_key(args.key)
        with open(args.message, "rb") as f:
            message = f.read()
    except (OSError, dkim.crypto.UnparsableKeyError) as e:
        sys.stderr.write("dkim_verify.py: %s\n" % e)
        return 2

    asked = []

    def dnsfunc(name, timeout=5):
        asked.append(name.decode("ascii", "replace") if
                     isinstance(name, bytes) else name)
        qname = name if isinstance(name, bytes) else name.encode()
        qname = qname.lower()
        if owner is not None and not qname.startswith(owner + b"."):
            return None
        return record

    reasons = Reasons()
    logger = logging.getLogger("dkim_verify")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(reasons)

    try:
        d = dkim.DKIM(message, logger=logger, minkey=1024)
    except dkim.DKIMException as e:
        print("message: cannot parse it: %s" % e)
        return 1
    sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
    if not sigs:
        print("message: no DKIM-Signature")
        return 1

    ok = True
    covers = [h.lower() for h in args.covers]
    not_covers = [h.lower() for h in args.not_covers]
    for i, raw in enumerate(sigs):
        try:
            tags = dkim.util.parse_tag_value(raw)
        except dkim.DKIMException:
            tags = {}
        h = [x.decode("ascii", "replace").strip().lower() for x in
             re.split(rb"\s*:\s*", re.sub(rb"\s+", b"", tags.get(b"h", b"")))
             if x]
        desc = "signature %d of %d: d=%s s=%s c=%s" % (
            i + 1, len(sigs),
            tags.get(b"d", b"?").decode("ascii", "replace"),
            tags.get(b"s", b"?").decode("ascii", "replace"),
            tags.get(b"c", b"simple/simple").decode("ascii", "replace"))
        del reasons.lines[:]
        asked[:] = []
        try:
            good = d.verify(idx=i, dnsfunc=dnsfunc)
            why = "; ".join(line for line in reasons.lines
                            if not line.startswith(("sig:", "bh:")) and
                            " valid: " not in line)
        except dkim.DKIMException as e:
            good = False
            why = str(e)
        if good:
            print("%s: verifies" % desc)
        else:
            ok = False
            if not why:
                why = ("b= does not match the header fields signed (or"
                       " the key is not the signer's)")
            if asked and owner is not None and \
                    not asked[-1].lower().startswith(
                        owner.decode("ascii", "replace") + "."):
                why += " (the key is %s, the signature asks for %s)" % (
                    owner.decode("ascii", "replace"), asked[-1])
            print("%s: does not verify: %s" % (desc, why))
        print("  h=%s" % ":".join(h))
        for name in covers:
            if name not in h:
                ok = False
                print("  does not cover %s" % name)
        for name in not_covers:
            if name in h:
                ok = False
                print("  covers %s" % name)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
