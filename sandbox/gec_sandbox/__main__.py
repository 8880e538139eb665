"""Command line: `serve`, `seed` and `test` (see sandbox/README.md)."""

from __future__ import annotations

import argparse
import os
import sys

SANDBOX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gec-sandbox", description="Local AWS sandbox (moto + extensions)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the sandbox server on 127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (0: pick a free one)")
    serve.add_argument("--port-file", help="also write the URL to this file once serving")

    seed = sub.add_parser("seed", help="create the fleet a YAML file describes")
    seed.add_argument("--endpoint", required=True, help="sandbox URL, e.g. http://127.0.0.1:5000")
    seed.add_argument("fleet", help="fleet YAML file")

    sub.add_parser("test", help="run the sandbox's own pytest suite (further arguments go to pytest)")

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["test"]:  # everything after `test` goes to pytest as is
        import pytest

        return pytest.main([os.path.join(SANDBOX_DIR, "tests"), "-q", *argv[1:]])
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .server import serve as run

        run(args.port, args.port_file)
        return 0
    if args.command == "seed":
        from botocore.exceptions import BotoCoreError, ClientError

        from .seed import FleetError, seed_file

        try:
            print(seed_file(args.endpoint, args.fleet))
        except (FleetError, OSError) as err:
            print(f"gec-sandbox seed: {err}", file=sys.stderr)
            return 2
        except (ClientError, BotoCoreError) as err:
            print(f"gec-sandbox seed: the sandbox refused the fleet: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
