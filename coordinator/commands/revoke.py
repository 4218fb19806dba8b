"""``greenfed-coordinator revoke ID --state-dir DIR``: refuse a device from now on.

Sets the device's ``revoked`` flag in the store (a device never seen before gets a row that is
revoked from the start). A running coordinator reads the flag on every call, so the board gets
PERMISSION_DENIED on its next call, whatever certificate it holds. ``--undo`` lifts it.

Exit codes: 0 done; 2 bad id or no store in DIR.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "revoke (or with --undo restore) a device by id: every call it makes is refused"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device_id", metavar="ID", help="the device id (its certificate's CN)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("runs/default"),
        help="the coordinator's state directory (default runs/default)",
    )
    parser.add_argument("--undo", action="store_true", help="lift a revocation")


def run(args: argparse.Namespace) -> int:
    from coordinator.certs import DEVICE_ID_RE
    from coordinator.store import Store

    dev: str = args.device_id
    if not DEVICE_ID_RE.match(dev):
        print(f"revoke: {dev!r} is not a device id", file=sys.stderr)
        return 2
    db = Path(args.state_dir).expanduser() / "greenfed.sqlite"
    if not db.exists():
        print(f"revoke: no coordinator store at {db} (give --state-dir)", file=sys.stderr)
        return 2
    store = Store(db)
    try:
        known = store.get_device(dev) is not None
        if not known and not args.undo:
            store.upsert_device(dev, {"samples": 0, "revoked": 1})
        else:
            store.set_revoked(dev, not args.undo)
        what = "restored" if args.undo else "revoked"
        store.event(what, f"device {dev} {what} by the operator", device_id=dev)
    finally:
        store.close()
    if args.undo:
        print(f"{dev}: revocation lifted; it may register again")
    else:
        extra = "" if known else " (not seen yet: refused from its first call)"
        print(f"{dev}: revoked{extra}")
    return 0
