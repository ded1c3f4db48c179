#!/usr/bin/python3
"""A test SMTP server on a loopback port, for the integration tests (smtpd.rs).

Run with Debian's /usr/bin/python3 and its python3-aiosmtpd.  Listens on
--host/--port (port 0: a free one), prints "READY <port>" on stdout once it
accepts connections, and exits when its standard input closes (the test that
started it is gone) or on SIGTERM/SIGKILL.

Every message accepted is written to --dir as <id>.eml (the DATA exactly as
received, CRLF line ends) and <id>.json (envelope, session, headers and the
decoded text body, with \n line ends); each is written to a hidden temporary name and renamed, the
.json last, so that a reader that sees the .json sees both whole.  Ids sort in
arrival order, across restarts.  The files are on disk before the server says
250 to the DATA.

--starttls CERT KEY offers STARTTLS with that certificate.  --reject "CODE TEXT"
answers every DATA with that reply (such as "451 4.3.0 try again later") and
keeps nothing; with --reject-containing TEXT, only the messages that hold TEXT.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys
import threading
import time

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, directory, reject, containing):
        self.dir = directory
        self.reject = reject
        self.containing = containing.encode("utf-8") if containing else None
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            data = envelope.original_content or envelope.content or b""
            if isinstance(data, str):
                data = data.encode("utf-8", "surrogateescape")
            if self.containing is None or self.containing in data:
                return self.reject
        self.n += 1
        ident = "%020d-%d-%04d" % (time.time_ns(), os.getpid(), self.n)
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options or []),
            "helo": session.host_name,
            "tls": session.ssl is not None,
            "headers": [],
            "body": None,
            "error": None,
        }
        try:
            # Parsed with \n line ends, as a mail file is: the body's text then
            # has \n line ends too.
            text = raw.replace(b"\r\n", b"\n")
            msg = email.message_from_bytes(text, policy=email.policy.default)
            info["headers"] = [[k, str(v)] for k, v in msg.items()]
            if not msg.is_multipart():
                info["body"] = msg.get_content()
        except Exception as e:  # the test reads the error, not a traceback
            info["error"] = "%s: %s" % (type(e).__name__, e)
        write(os.path.join(self.dir, ident + ".eml"), raw)
        write(
            os.path.join(self.dir, ident + ".json"),
            json.dumps(info, ensure_ascii=False).encode("utf-8"),
        )
        return "250 OK queued as " + ident


def write(path, data):
    d, name = os.path.split(path)
    tmp = os.path.join(d, "." + name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--reject")
    p.add_argument("--reject-containing")
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    tls = None
    if a.starttls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.starttls[0], a.starttls[1])

    handler = Handler(a.dir, a.reject, a.reject_containing)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(
            handler,
            hostname="smtpd.test",
            tls_context=tls,
            require_starttls=False,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=30,
        )

    server = loop.run_until_complete(
        loop.create_server(factory, host=a.host, port=a.port, reuse_address=True)
    )
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
