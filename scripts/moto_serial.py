"""moto's server with every request applied atomically, one at a time.

moto (5.2.x) applies a DynamoDB TransactWriteItems without a lock and rolls a failed one back by
restoring a copy of the whole table, so two requests arriving together can both pass a condition,
or one can erase the other's committed write. DynamoDB itself guarantees that each request is
atomic and that conditional writes serialise. Holding one lock around the application gives the
stand-in that guarantee for every test at once; connections are still accepted concurrently.

Usage: python moto_serial.py HOST PORT   (same app, handler and IAM behaviour as `moto_server`)
"""
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            # Consume the body inside the lock: the response is part of the request's effect.
            return list(app(environ, start_response))

    run_simple(host, port, serial, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
