"""A local HTTP server for download tests: nothing touches the real network."""

import http.server
import pathlib
import threading


class LocalHTTPServer:
    """A `http.server` on 127.0.0.1 (port 0) serving files from a folder.

    Extra routes: `/truncated` promises 1000 bytes and sends 10; `/page.html`
    answers with a text/html page; `routes[path] = fn(handler)` answers
    `path` with a test's own function.
    """

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.requests = []
        self.routes = {}
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                if self.path in server.routes:
                    try:
                        server.routes[self.path](self)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up (a timeout test)
                    self.close_connection = True
                    return
                if self.path == "/truncated":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"0123456789")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if self.path == "/page.html":
                    body = b"<html><body>sign in</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
