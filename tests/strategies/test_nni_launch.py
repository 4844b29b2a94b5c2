"""strategies/nni_bridge/launch.py: NNI's launcher waits longer for a manager that is slow to start."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.strategies.nni_support import import_nni

import_nni()


class _Status(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "RUNNING"}')

    def log_message(self, *args):
        pass


def test_the_launcher_waits_for_a_manager_that_listens_after_its_three_seconds():
    from nni.experiment import launcher

    from strategies.nni_bridge import patient_launcher

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers = []

    def start_late():
        time.sleep(5)  # a manager still starting after NNI's own three tries
        server = HTTPServer(("127.0.0.1", port), _Status)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=start_late, daemon=True).start()
    original = launcher._check_rest_server
    try:
        with patient_launcher(seconds=30):
            launcher._check_rest_server(port)  # returns once the manager answers
        assert launcher._check_rest_server is original
    finally:
        for server in servers:
            server.shutdown()
