#!/usr/bin/python3
"""A real SMTP server for automon's email tests, on Debian's python3-aiosmtpd.

serve OUTDIR [--starttls CERT KEY] [--tls CERT KEY] [--auth USER:PASS] [--reject CODE TEXT]
    Listens on 127.0.0.1 on a free port and prints "READY <port>". Each message received is
    parsed with Python's own email package (an independent MIME parser) and written to
    OUTDIR/NNN.json: envelope, session facts (TLS, AUTH login) and the decoded headers and
    parts. With --reject every RCPT is answered with CODE TEXT. Runs until stdin closes.
parse FILE
    Prints the same JSON for a raw message file (used on the Maildir that
    `python3 -m aiosmtpd -c aiosmtpd.handlers.Mailbox` writes).
"""
import email
import email.policy
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def describe(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    for p in msg.walk():
        if p.is_multipart():
            continue
        parts.append({"content_type": p.get_content_type(), "content": p.get_content()})
    return {
        "subject": str(msg["Subject"]),
        "from": str(msg["From"]),
        "to": str(msg["To"]),
        "date": str(msg["Date"]),
        "message_id": str(msg["Message-ID"]),
        "content_type": msg.get_content_type(),
        "parts": parts,
    }


class Handler:
    def __init__(self, outdir, reject):
        self.outdir = outdir
        self.reject = reject
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return self.reject
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        info = describe(envelope.original_content or envelope.content)
        info.update({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            # session.ssl is set by STARTTLS; an implicit-TLS transport carries its own.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data if session.authenticated else None,
            "helo": session.host_name,
        })
        path = os.path.join(self.outdir, "%03d.json" % self.n)
        with open(path + ".tmp", "w") as f:
            json.dump(info, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as automon-test-%d" % self.n


def context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(args):
    outdir = args.pop(0)
    kw = {}
    reject = None
    while args:
        opt = args.pop(0)
        if opt == "--starttls":
            kw["tls_context"] = context(args.pop(0), args.pop(0))
            kw["require_starttls"] = True
        elif opt == "--tls":
            kw["ssl_context"] = context(args.pop(0), args.pop(0))
        elif opt == "--auth":
            user, password = args.pop(0).split(":", 1)

            def check(server, session, envelope, mechanism, auth_data, user=user, password=password):
                ok = auth_data.login.decode() == user and auth_data.password.decode() == password
                return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

            kw["authenticator"] = check
            kw["auth_required"] = True
            kw["auth_require_tls"] = "tls_context" in kw or "ssl_context" in kw
        elif opt == "--reject":
            reject = args.pop(0) + " " + args.pop(0)
        else:
            sys.exit("unknown option " + opt)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    ctl = Controller(Handler(outdir, reject), hostname="127.0.0.1", port=port, **kw)
    ctl.start()
    print("READY %d" % port, flush=True)
    sys.stdin.read()
    ctl.stop()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2:])
    elif sys.argv[1] == "parse":
        with open(sys.argv[2], "rb") as f:
            print(json.dumps(describe(f.read())))
