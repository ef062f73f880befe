"""A real SMTP server for latchkey's tests, built on aiosmtpd.

Every message it accepts is parsed with Python's email package and written to
OUTDIR as <n>.json (envelope, headers, each body part, the links found in each)
next to the raw <n>.eml. Recipients whose local part starts with "reject" are
refused with a permanent 550, so tests can see how latchkey handles a mail that
can never be delivered. With --auth USER:PASSWORD, clients must log in first. Prints "ready <port>" once it accepts connections and
runs until terminated.
"""

import argparse
import email
import email.policy
import html.parser
import json
import os
import re
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links += [value for name, value in attrs if name == "href"]


class Recorder:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if not part.is_multipart():
                parts.setdefault(part.get_content_type(), part.get_content())
        text = parts.get("text/plain", "")
        html_body = parts.get("text/html", "")
        links = _Links()
        links.feed(html_body)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "part_types": [p.get_content_type() for p in message.walk()],
            "text": text,
            "html": html_body,
            "text_links": re.findall(r"https?://\S+", text),
            "html_links": links.links,
        }
        with self.lock:
            self.count += 1
            name = f"{self.count:05d}"
        with open(os.path.join(self.outdir, name + ".eml"), "wb") as f:
            f.write(raw)
        tmp = os.path.join(self.outdir, name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.outdir, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--auth", help="USER:PASSWORD that clients must log in with (over plain TCP: tests only)")
    args = parser.parse_args()
    options = {}
    if args.auth:
        user, password = args.auth.encode().split(b":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (user, password)
            return AuthResult(success=ok)

        options = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    controller = Controller(Recorder(args.outdir), hostname="127.0.0.1", port=args.port, **options)
    controller.start()
    print(f"ready {args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
